/*
 * rc_test: fixtures shared by the cmocka drivers: a private temporary
 * directory per test and a way to write a file into it.
 */
#ifndef RINGCAST_RC_TEST_H
#define RINGCAST_RC_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Make a fresh directory under $TMPDIR; the caller owns the string. */
static inline char *
rc_test_tmpdir(void)
{
	const char	*base = getenv("TMPDIR");
	char		*dir;

	if (base == NULL)
		base = "/tmp";
	if (asprintf(&dir, "%s/ringcast-test.XXXXXX", base) == -1)
		return NULL;
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return NULL;
	}
	return dir;
}

/* Remove a directory made by rc_test_tmpdir and everything in it. */
static inline void
rc_test_rmdir(char *dir)
{
	char	*cmd;

	if (dir == NULL)
		return;
	if (asprintf(&cmd, "rm -rf '%s'", dir) != -1) {
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		free(cmd);
	}
	free(dir);
}

/* Write text to dir/name; returns the path, owned by the caller. */
static inline char *
rc_test_write(const char *dir, const char *name, const char *text)
{
	char	*path;
	FILE	*fp;

	if (asprintf(&path, "%s/%s", dir, name) == -1)
		return NULL;
	if ((fp = fopen(path, "w")) == NULL) {
		free(path);
		return NULL;
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

#endif
