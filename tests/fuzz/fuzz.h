/*
 * fuzz: what every harness shares.  A harness defines LLVMFuzzerTestOneInput
 * (and may define LLVMFuzzerInitialize); libFuzzer drives it in the fuzzing
 * build, replay.c over files in every build.  A broken invariant aborts with
 * its file and line, which both drivers report as a crash.
 */
#ifndef RINGCAST_FUZZ_H
#define RINGCAST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ftw.h>
#include <unistd.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static char	 fuzz_dir[256];

static inline int
fuzz_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static inline void
fuzz_tmpdir_remove(void)
{
	if (fuzz_dir[0] != '\0')
		nftw(fuzz_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private directory under $TMPDIR for the process's files, made once and
 * removed at exit (harnesses rewrite the files in it for each input). */
static inline const char *
fuzz_tmpdir(void)
{
	char		*dir = fuzz_dir;
	const char	*base;

	if (dir[0] != '\0')
		return dir;
	if ((base = getenv("TMPDIR")) == NULL)
		base = "/tmp";
	snprintf(dir, sizeof(fuzz_dir), "%s/ringcast-fuzz.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	atexit(fuzz_tmpdir_remove);
	return dir;
}

/* A small deterministic generator for choices derived from the input. */
static inline uint64_t
fuzz_rand(uint64_t *state)
{
	uint64_t	 x = *state += 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#endif
