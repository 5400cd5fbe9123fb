/*
 * replay: run a harness over files instead of libFuzzer, so every build (gcc
 * included) replays the seed corpus and the crash reproducers in make check.
 * Arguments are files or directories (every regular file in them).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

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
