/*
 * replay: run a harness over files instead of libFuzzer, so every build (gcc
 * included) replays the seed corpus and the crash reproducers in make check.
 * Arguments are files or directories (every regular file in them); with
 * none, replay_NAME replays $top_srcdir/tests/fuzz/{corpus,regressions}/NAME.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

/* The default arguments of replay_NAME: its seeds and reproducers. */
static char **
replay_defaults(const char *argv0, int *argc)
{
	static char	 dirs[2][4096];
	static char	*args[4];
	const char	*top = getenv("top_srcdir"), *base, *name;
	struct stat	 st;
	int		 i, n = 1;

	base = strrchr(argv0, '/') != NULL ? strrchr(argv0, '/') + 1 : argv0;
	name = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
	if (top == NULL)
		top = ".";
	args[0] = (char *)argv0;
	snprintf(dirs[0], sizeof(dirs[0]), "%s/tests/fuzz/corpus/%s", top,
	    name);
	snprintf(dirs[1], sizeof(dirs[1]), "%s/tests/fuzz/regressions/%s",
	    top, name);
	for (i = 0; i < 2; i++)
		if (stat(dirs[i], &st) == 0)
			args[n++] = dirs[i];
	args[n] = NULL;
	*argc = n;
	return args;
}

static int
replay_file(const char *path)
{
	FILE		*fp;
	uint8_t		*data;
	long		 len;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) == -1 || (len = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) == -1) {
		perror(path);
		fclose(fp);
		return -1;
	}
	/* One byte more, so an empty file is not a NULL buffer. */
	if ((data = malloc((size_t)len + 1)) == NULL ||
	    fread(data, 1, (size_t)len, fp) != (size_t)len) {
		perror(path);
		free(data);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, (size_t)len);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*dir;
	char		 path[4096];
	int		 i, n = 0, failed = 0;

	if (argc == 1)
		argv = replay_defaults(argv[0], &argc);
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			perror(argv[i]);
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]) == -1;
			n++;
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL) {
			perror(argv[i]);
			failed = 1;
			continue;
		}
		while ((de = readdir(dir)) != NULL) {
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (de->d_name[0] == '.' || stat(path, &st) == -1 ||
			    !S_ISREG(st.st_mode))
				continue;
			failed |= replay_file(path) == -1;
			n++;
		}
		closedir(dir);
	}
	printf("%s: replayed %d inputs\n", argv[0], n);
	return failed;
}
