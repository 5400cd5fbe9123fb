/*
 * test_log: lines reach the file target whole, filtered by level, with the
 * process name and errno text; SIGUSR1-style reopen follows a rotated file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "rc_test.h"
#include "ringcast/log.h"

static char *
slurp(const char *path)
{
	static char	 buf[8192];
	FILE		*fp = fopen(path, "r");
	size_t		 n = 0;

	if (fp != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
	return buf;
}

static void
test_log_file_gets_level_filtered_lines(void **state)
{
	char	*dir = rc_test_tmpdir(), *path, *text;

	(void)state;
	assert_non_null(dir);
	assert_int_equal(asprintf(&path, "%s/log", dir), (int)strlen(dir) + 4);
	assert_int_equal(log_init(path, LOG_LEVEL_INFO), 0);
	log_procname("worker 3");
	log_info("hello %d", 42);
	log_debug("hidden %d", 7);
	log_warnx("careful");
	text = slurp(path);
	assert_non_null(strstr(text, "worker 3: hello 42\n"));
	assert_non_null(strstr(text, "worker 3: careful\n"));
	assert_null(strstr(text, "hidden"));
	assert_int_equal(log_init("stderr", LOG_LEVEL_INFO), 0);
	free(path);
	rc_test_rmdir(dir);
}

static void
test_log_warn_appends_strerror(void **state)
{
	char	*dir = rc_test_tmpdir(), *path;

	(void)state;
	assert_int_equal(asprintf(&path, "%s/log", dir), (int)strlen(dir) + 4);
	assert_int_equal(log_init(path, LOG_LEVEL_WARN), 0);
	log_procname("master");
	errno = ENOENT;
	log_warn("ring %s: open", "/x/ring");
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(slurp(path),
	    "master: ring /x/ring: open: No such file or directory\n"));
	assert_int_equal(log_init("stderr", LOG_LEVEL_INFO), 0);
	free(path);
	rc_test_rmdir(dir);
}

static void
test_log_reopen_follows_rotation(void **state)
{
	char	*dir = rc_test_tmpdir(), *path, *old;

	(void)state;
	assert_int_equal(asprintf(&path, "%s/log", dir), (int)strlen(dir) + 4);
	assert_int_equal(asprintf(&old, "%s/log.1", dir), (int)strlen(dir) + 6);
	assert_int_equal(log_init(path, LOG_LEVEL_INFO), 0);
	log_info("before");
	assert_int_equal(rename(path, old), 0);
	assert_int_equal(log_reopen(), 0);
	log_info("after");
	assert_non_null(strstr(slurp(path), "after"));
	assert_null(strstr(slurp(path), "before"));
	assert_non_null(strstr(slurp(old), "before"));
	assert_int_equal(log_init("stderr", LOG_LEVEL_INFO), 0);
	free(path);
	free(old);
	rc_test_rmdir(dir);
}

static void
test_log_init_unwritable_file_fails(void **state)
{
	(void)state;
	assert_int_equal(log_init("/nonexistent-dir/ringcast.log",
	    LOG_LEVEL_INFO), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(log_init("stderr", LOG_LEVEL_INFO), 0);
}

static void
test_log_level_parse_accepts_known_names_only(void **state)
{
	enum log_level	 level;

	(void)state;
	assert_int_equal(log_level_parse("debug", &level), 0);
	assert_int_equal(level, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("error", &level), 0);
	assert_int_equal(level, LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("verbose", &level), -1);
	assert_int_equal(log_level_parse("", &level), -1);
}

static void
test_log_long_line_is_truncated_not_overflowed(void **state)
{
	char	*dir = rc_test_tmpdir(), *path, big[5000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(asprintf(&path, "%s/log", dir), (int)strlen(dir) + 4);
	assert_int_equal(log_init(path, LOG_LEVEL_INFO), 0);
	log_info("%s", big);
	log_info("next");
	assert_non_null(strstr(slurp(path), "xxx\n"));
	assert_non_null(strstr(slurp(path), "next\n"));
	assert_int_equal(log_init("stderr", LOG_LEVEL_INFO), 0);
	free(path);
	rc_test_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_file_gets_level_filtered_lines),
		cmocka_unit_test(test_log_warn_appends_strerror),
		cmocka_unit_test(test_log_reopen_follows_rotation),
		cmocka_unit_test(test_log_init_unwritable_file_fails),
		cmocka_unit_test(test_log_level_parse_accepts_known_names_only),
		cmocka_unit_test(test_log_long_line_is_truncated_not_overflowed),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
