/*
 * test_upgrade: the environment a binary upgrade passes to the new master
 * (RINGCAST_LISTEN_FDS, RINGCAST_UPGRADE): what is formatted parses back,
 * and every malformed value is refused with a message naming the problem.
 */
#include "rc_test.h"

#include "ringcast/upgrade.h"

static void
test_upgrade_listen_round_trips(void **state)
{
	struct upgrade_listener	 out[UPGRADE_LISTEN_MAX];
	char			 buf[256] = "", err[256];
	size_t			 n = 0;

	(void)state;
	assert_int_equal(upgrade_format_listen(buf, sizeof(buf), 5,
	    "127.0.0.1:8080"), 0);
	assert_int_equal(upgrade_format_listen(buf, sizeof(buf), 12,
	    "[::1]:8081"), 0);
	assert_string_equal(buf, "5:127.0.0.1:8080,12:[::1]:8081");
	assert_int_equal(upgrade_parse_listen(buf, out, UPGRADE_LISTEN_MAX,
	    &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].fd, 5);
	assert_string_equal(out[0].addr, "127.0.0.1:8080");
	assert_int_equal(out[1].fd, 12);
	assert_string_equal(out[1].addr, "[::1]:8081");
}

static void
test_upgrade_listen_format_refuses_a_comma_or_overflow(void **state)
{
	char	 buf[16] = "";

	(void)state;
	assert_int_equal(upgrade_format_listen(buf, sizeof(buf), 5, "a,b"),
	    -1);
	assert_int_equal(upgrade_format_listen(buf, sizeof(buf), 5,
	    "127.0.0.1:8080"), -1);
	assert_string_equal(buf, "");
}

static void
refuse_listen(const char *text, const char *why)
{
	struct upgrade_listener	 out[4];
	char			 err[256] = "";
	size_t			 n = 0;

	assert_int_equal(upgrade_parse_listen(text, out, 4, &n, err,
	    sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, why);
	assert_non_null(strstr(err, UPGRADE_ENV_LISTEN));
}

static void
test_upgrade_listen_refuses_bad_values(void **state)
{
	char	 longaddr[UPGRADE_ADDR_MAX + 8];

	(void)state;
	refuse_listen("", "empty");
	refuse_listen("5", "want fd:address");
	refuse_listen(":127.0.0.1:80", "want fd:address");
	refuse_listen("-5:127.0.0.1:80", "want fd:address");
	refuse_listen("x:127.0.0.1:80", "want fd:address");
	refuse_listen("2:127.0.0.1:80", "above 2");
	refuse_listen("1234567890:127.0.0.1:80", "want fd:address");
	refuse_listen("5:", "address empty");
	refuse_listen("5:127.0.0.1:80,", "entry 2");
	refuse_listen("5:127.0.0.1:80,,6:x", "entry 2");
	refuse_listen("5:a,5:b", "named twice");
	refuse_listen("5:a,6:b,7:c,8:d,9:e", "more than 4");
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[0] = '5';
	longaddr[1] = ':';
	longaddr[sizeof(longaddr) - 1] = '\0';
	refuse_listen(longaddr, "longer than");
}

static void
test_upgrade_state_round_trips(void **state)
{
	struct upgrade_state	*in, *out;
	char			 buf[512], err[256];
	unsigned int		 i;

	(void)state;
	in = calloc(1, sizeof(*in));
	out = calloc(1, sizeof(*out));
	assert_non_null(in);
	assert_non_null(out);
	in->ctl = 9;
	in->generation = 4;
	in->nslots = 3;
	in->metrics_fd = 10;
	in->wake_fd = 11;
	for (i = 0; i < 3; i++) {
		in->inbox_send[i] = 20 + 2 * (int)i;
		in->inbox_recv[i] = 21 + 2 * (int)i;
	}
	assert_int_equal(upgrade_format_state(buf, sizeof(buf), in), 0);
	assert_string_equal(buf, "1:9:4:3:10:11:20:21:22:23:24:25");
	assert_int_equal(upgrade_parse_state(buf, out, err, sizeof(err)), 0);
	assert_memory_equal(in, out, sizeof(*in));
	assert_int_equal(upgrade_format_state(buf, 12, in), -1);
	free(in);
	free(out);
}

static void
refuse_state(const char *text, const char *why)
{
	struct upgrade_state	*st;
	char			 err[256] = "";

	st = calloc(1, sizeof(*st));
	assert_non_null(st);
	assert_int_equal(upgrade_parse_state(text, st, err, sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, why);
	assert_non_null(strstr(err, UPGRADE_ENV_STATE));
	free(st);
}

static void
test_upgrade_state_refuses_bad_values(void **state)
{
	(void)state;
	refuse_state("", "version: not a decimal");
	refuse_state("2:9:4:1:10:11:20:21", "version 2");
	refuse_state("1:9:4:1:10", "ends at the metrics memory file");
	refuse_state("1:9:4:1:10:x", "wake memory file: not a decimal");
	refuse_state("1:x:4:1:10:11:20:21", "control socket");
	refuse_state("1:9:4:0:10:11", "slot count 0");
	refuse_state("1:9:4:2000:10:11:20:21", "slot count 2000");
	refuse_state("1:9:4:1:10:11", "inbox 0");
	refuse_state("1:9:4:1:10:11:20", "inbox 0");
	refuse_state("1:9:4:1:10:11:20:", "inbox 0");
	refuse_state("1:9:4:2:10:11:20:21", "1 inboxes, want 2");
	refuse_state("1:9:4:1:10:11:20:21:22:23", "more inboxes");
	refuse_state("1:9:4:1:10:11:20:21:", "more inboxes");
	refuse_state("1:9:4:1:10:11:20:9", "descriptor 9");
	refuse_state("1:2:4:1:10:11:20:21", "descriptor 2");
	refuse_state("1:9:4:1:10:11:20:21 ", "inbox 0: not a decimal");
}

static void
test_upgrade_ring_parses_and_refuses(void **state)
{
	uint64_t	 size = 0;
	uint32_t	 slots = 0;
	char		 path[16], err[256];

	(void)state;
	assert_int_equal(upgrade_parse_ring("8388608:16384:/var/a:b", &size,
	    &slots, path, sizeof(path), err, sizeof(err)), 0);
	assert_true(size == 8388608);
	assert_int_equal(slots, 16384);
	assert_string_equal(path, "/var/a:b");
	assert_int_equal(upgrade_parse_ring("8:16:", &size, &slots, path,
	    sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "path empty"));
	assert_int_equal(upgrade_parse_ring("8:16:/a/very/long/path/x", &size,
	    &slots, path, sizeof(path), err, sizeof(err)), -1);
	assert_int_equal(upgrade_parse_ring("-8:16:/r", &size, &slots, path,
	    sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, UPGRADE_ENV_RING));
	assert_int_equal(upgrade_parse_ring("8:4294967296:/r", &size, &slots,
	    path, sizeof(path), err, sizeof(err)), -1);
	assert_int_equal(upgrade_parse_ring("8/r", &size, &slots, path,
	    sizeof(path), err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_listen_round_trips),
		cmocka_unit_test(
		    test_upgrade_listen_format_refuses_a_comma_or_overflow),
		cmocka_unit_test(test_upgrade_listen_refuses_bad_values),
		cmocka_unit_test(test_upgrade_state_round_trips),
		cmocka_unit_test(test_upgrade_state_refuses_bad_values),
		cmocka_unit_test(test_upgrade_ring_parses_and_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
