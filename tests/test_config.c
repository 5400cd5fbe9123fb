/*
 * test_config: every key's default, the unit parsers, and every rejection
 * path of config_load(), each naming file:line and the key.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "rc_test.h"
#include "ringcast/config.h"

struct fixture {
	char	*dir;
	char	 err[4096];
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL || (f->dir = rc_test_tmpdir()) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	rc_test_rmdir(f->dir);
	free(f);
	return 0;
}

/* Load text as a config file; returns config_load's result. */
static int
load(struct fixture *f, const char *text, struct config *conf)
{
	char	*path = rc_test_write(f->dir, "ringcast.conf", text);
	int	 rc;

	assert_non_null(path);
	rc = config_load(conf, path, f->err, sizeof(f->err));
	free(path);
	return rc;
}

static void
assert_error(struct fixture *f, const char *text, const char *want)
{
	struct config	 conf;

	conf.workers = 4242;
	assert_int_equal(load(f, text, &conf), -1);
	if (strstr(f->err, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", f->err, want);
	/* Nothing is half-applied on failure. */
	assert_int_equal(conf.workers, 4242);
}

static void
test_config_defaults_match_the_design(void **state)
{
	struct config	 c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0].text, "127.0.0.1:8080");
	assert_int_equal(c.nadmin_listen, 1);
	assert_string_equal(c.admin_listen[0].text, "127.0.0.1:8081");
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.user, "");
	assert_int_equal(c.drain_timeout_ms, 25000);
	assert_int_equal(c.reload_spread_ms, 5000);
	assert_int_equal(c.ring_size, 64 << 20);
	assert_int_equal(c.ring_slots, 262144);
	assert_int_equal(c.ring_sync, CONFIG_SYNC_OFF);
	assert_int_equal(c.catalog_map_size, 64 << 20);
	assert_int_equal(c.auto_create_topics, 0);
	/* History is off unless set. */
	assert_int_equal(c.history_keep, 0);
	assert_int_equal(c.history_max_age_ms, 0);
	assert_true(c.history_map_size == 1ULL << 30);
	assert_int_equal(c.require_token, 1);
	assert_int_equal(c.heartbeat_ms, 15000);
	assert_int_equal(c.retry_ms, 3000);
	assert_int_equal(c.max_connections, 0);
	assert_int_equal(c.max_connections_per_address, 0);
	assert_int_equal(c.header_timeout_ms, 5000);
	assert_int_equal(c.max_header_bytes, 16 << 10);
	assert_int_equal(c.max_event_bytes, 1 << 20);
	assert_int_equal(c.norigins, 0);
	assert_int_equal(c.allow_any_origin, 0);
	assert_string_equal(c.log_target, "syslog");
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_non_null(strstr(c.ring_path, "/lib/ringcast/ring"));
	assert_non_null(strstr(c.pidfile, "/ringcast/ringcastd.pid"));
}

static void
test_config_loads_every_key(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(load(f,
	    "; full example\n"
	    "[server]\n"
	    "listen = 127.0.0.1:9000, [::1]:9001 ; two\n"
	    "admin_listen =\n"
	    "workers = 3\n"
	    "user = nobody\n"
	    "pidfile = /tmp/x.pid\n"
	    "drain_timeout = 500ms\n"
	    "reload_spread = 2m\n"
	    "[ring]\n"
	    "path = /tmp/ring\n"
	    "size = 2G\n"
	    "slots = 1024\n"
	    "sync = interval\n"
	    "[catalog]\n"
	    "path = /tmp/cat\n"
	    "map_size = 1G\n"
	    "auto_create_topics = yes\n"
	    "[history]\n"
	    "keep = 100\n"
	    "max_age = 2h\n"
	    "map_size = 4G\n"
	    "[publish]\n"
	    "require_token = off\n"
	    "[stream]\n"
	    "heartbeat = 0\n"
	    "retry = 1h\n"
	    "[limits]\n"
	    "max_connections = 100\n"
	    "max_connections_per_address = 10\n"
	    "header_timeout = 1s\n"
	    "max_header_bytes = 8K\n"
	    "max_event_bytes = 2048\n"
	    "[cors]\n"
	    "allow_origins = http://a.example, https://b.example:8443\n"
	    "[log]\n"
	    "target = stderr\n"
	    "level = debug\n", &c), 0);
	assert_int_equal(c.nlisten, 2);
	assert_int_equal(c.listen[0].ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c.listen[0].ss)->sin_port),
	    9000);
	assert_int_equal(c.listen[1].ss.ss_family, AF_INET6);
	assert_int_equal(c.nadmin_listen, 0);
	assert_int_equal(c.workers, 3);
	assert_int_equal(config_workers(&c), 3);
	assert_string_equal(c.user, "nobody");
	assert_string_equal(c.pidfile, "/tmp/x.pid");
	assert_int_equal(c.drain_timeout_ms, 500);
	assert_int_equal(c.reload_spread_ms, 120000);
	assert_string_equal(c.ring_path, "/tmp/ring");
	assert_true(c.ring_size == 2ULL << 30);
	assert_int_equal(c.ring_slots, 1024);
	assert_int_equal(c.ring_sync, CONFIG_SYNC_INTERVAL);
	assert_string_equal(c.catalog_path, "/tmp/cat");
	assert_true(c.catalog_map_size == 1ULL << 30);
	assert_int_equal(c.auto_create_topics, 1);
	assert_int_equal(c.history_keep, 100);
	assert_int_equal(c.history_max_age_ms, 7200000);
	assert_true(c.history_map_size == 4ULL << 30);
	assert_int_equal(c.require_token, 0);
	assert_int_equal(c.heartbeat_ms, 0);
	assert_int_equal(c.retry_ms, 3600000);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.max_connections_per_address, 10);
	assert_int_equal(c.header_timeout_ms, 1000);
	assert_int_equal(c.max_header_bytes, 8192);
	assert_int_equal(c.max_event_bytes, 2048);
	assert_int_equal(c.norigins, 2);
	assert_true(config_origin_allowed(&c, "http://a.example", 16));
	assert_false(config_origin_allowed(&c, "http://evil.example", 19));
	assert_string_equal(c.log_target, "stderr");
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
}

static void
test_config_admin_token_is_empty_unless_set(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(load(f, "[server]\nlisten = 127.0.0.1:9000\n", &c),
	    0);
	assert_string_equal(c.admin_token, "");
	assert_int_equal(load(f, "[server]\nadmin_token = s3cret-Token\n",
	    &c), 0);
	assert_string_equal(c.admin_token, "s3cret-Token");
}

static void
test_config_workers_auto_is_one_per_cpu(void **state)
{
	struct config	 c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_workers(&c), sysconf(_SC_NPROCESSORS_ONLN));
}

static void
test_config_cors_star_allows_any_origin(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(load(f, "[cors]\nallow_origins = *\n", &c), 0);
	assert_true(config_origin_allowed(&c, "http://x", 8));
}

static void
test_config_cors_named_origin_beats_star(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(load(f, "[cors]\nallow_origins = http://a.example, "
	    "*\n", &c), 0);
	assert_int_equal(config_origin_allowed(&c, "http://a.example", 16),
	    CONFIG_ORIGIN_LISTED);
	assert_int_equal(config_origin_allowed(&c, "http://b.example", 16),
	    CONFIG_ORIGIN_ANY);
}

static void
test_config_auth_defaults_and_key_file(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;
	char		*secret, text[1024];

	config_defaults(&c);
	assert_string_equal(c.jwt_key_file, "");
	assert_null(c.auth);
	assert_string_equal(c.auth_cookie, "ringcast_token");
	assert_int_equal(c.clock_skew_ms, 30000);
	secret = rc_test_write(f->dir, "secret",
	    "0123456789abcdef0123456789abcdef\n");
	snprintf(text, sizeof(text), "[auth]\njwt_key_file = %s\n"
	    "jwt_algorithms = HS256\njwt_audience = rc\njwt_issuer = app\n"
	    "clock_skew = 5s\ncookie = rc_jwt\n", secret);
	assert_int_equal(load(f, text, &c), 0);
	assert_non_null(c.auth);
	assert_string_equal(c.jwt_audience, "rc");
	assert_string_equal(c.auth_cookie, "rc_jwt");
	assert_int_equal(c.clock_skew_ms, 5000);
	config_free(&c);
	assert_null(c.auth);
	free(secret);
}

static void
test_config_rejects_bad_jwt_settings(void **state)
{
	struct fixture	*f = *state;
	char		*shortkey, text[1024];

	assert_error(f, "[auth]\njwt_algorithms = HS256, none\n",
	    ":2: [auth] jwt_algorithms: 'none' is never accepted");
	assert_error(f, "[auth]\ncookie = a b\n", "[auth] cookie");
	assert_error(f, "[auth]\njwt_key_file = /nonexistent/k\n",
	    "[auth] jwt_key_file: /nonexistent/k");
	shortkey = rc_test_write(f->dir, "short", "short\n");
	snprintf(text, sizeof(text), "[auth]\njwt_key_file = %s\n", shortkey);
	assert_error(f, text, "at least 32");
	free(shortkey);
}

static void
test_config_parse_size_units(void **state)
{
	uint64_t	 v;

	(void)state;
	assert_int_equal(config_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(config_parse_size("16K", &v), 0);
	assert_int_equal(v, 16384);
	assert_int_equal(config_parse_size("64M", &v), 0);
	assert_int_equal(v, 64 << 20);
	assert_int_equal(config_parse_size("3G", &v), 0);
	assert_true(v == 3ULL << 30);
	assert_int_equal(config_parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(config_parse_size("", &v), -1);
	assert_int_equal(config_parse_size("M", &v), -1);
	assert_int_equal(config_parse_size("-1", &v), -1);
	assert_int_equal(config_parse_size("12X", &v), -1);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(config_parse_size("99999999999G", &v), -1);
}

static void
test_config_parse_duration_units(void **state)
{
	uint64_t	 v;

	(void)state;
	assert_int_equal(config_parse_duration("500ms", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(config_parse_duration("25s", &v), 0);
	assert_int_equal(v, 25000);
	assert_int_equal(config_parse_duration("25", &v), 0);
	assert_int_equal(v, 25000);
	assert_int_equal(config_parse_duration("2m", &v), 0);
	assert_int_equal(v, 120000);
	assert_int_equal(config_parse_duration("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(config_parse_duration("1d", &v), -1);
	assert_int_equal(config_parse_duration("s", &v), -1);
	assert_int_equal(config_parse_duration("1.5s", &v), -1);
}

static void
test_config_parse_addr_forms(void **state)
{
	struct config_addr	 a;

	(void)state;
	assert_int_equal(config_parse_addr("127.0.0.1:80", &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(config_parse_addr("[::1]:8080", &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(config_parse_addr("127.0.0.1", &a), -1);
	assert_int_equal(config_parse_addr("127.0.0.1:0", &a), -1);
	assert_int_equal(config_parse_addr("127.0.0.1:65536", &a), -1);
	assert_int_equal(config_parse_addr("::1:8080", &a), -1);
	assert_int_equal(config_parse_addr("[::1]8080", &a), -1);
	assert_int_equal(config_parse_addr("localhost:80", &a), -1);
	assert_int_equal(config_parse_addr(":80", &a), -1);
}

static void
test_config_rejects_unknown_key_with_file_line(void **state)
{
	struct fixture	*f = *state;

	assert_error(f, "[server]\nworkers = 2\n\nlisten_on = 1\n",
	    "ringcast.conf:4: [server] listen_on: unknown key");
}

static void
test_config_rejects_unknown_section(void **state)
{
	assert_error(*state, "[servre]\nworkers = 2\n",
	    "ringcast.conf:2: [servre] workers: unknown key");
}

static void
test_config_rejects_bad_size(void **state)
{
	assert_error(*state, "[ring]\nsize = lots\n",
	    ":2: [ring] size: bad size 'lots'");
}

static void
test_config_rejects_size_out_of_range(void **state)
{
	assert_error(*state, "[ring]\nsize = 1K\n",
	    ":2: [ring] size: '1K' is out of range");
}

static void
test_config_rejects_bad_duration(void **state)
{
	assert_error(*state, "[stream]\nheartbeat = soon\n",
	    ":2: [stream] heartbeat: bad duration 'soon'");
}

static void
test_config_rejects_duration_out_of_range(void **state)
{
	assert_error(*state, "[stream]\nretry = 10ms\n",
	    ":2: [stream] retry: '10ms' is out of range");
}

static void
test_config_rejects_bad_bool(void **state)
{
	assert_error(*state, "[publish]\nrequire_token = maybe\n",
	    ":2: [publish] require_token: bad value 'maybe' (want yes or no)");
}

static void
test_config_rejects_bad_workers(void **state)
{
	assert_error(*state, "[server]\nworkers = 0\n",
	    ":2: [server] workers: '0' is too small");
	assert_error(*state, "[server]\nworkers = many\n",
	    ":2: [server] workers: 'many' is invalid");
}

static void
test_config_rejects_bad_slots(void **state)
{
	assert_error(*state, "[ring]\nslots = 8\n",
	    ":2: [ring] slots: '8' is too small");
}

static void
test_config_rejects_bad_listen(void **state)
{
	assert_error(*state, "[server]\nlisten = 127.0.0.1:8080, nowhere\n",
	    ":2: [server] listen: bad address 'nowhere'");
	assert_error(*state, "[server]\nlisten =\n",
	    ":2: [server] listen: at least one address is required");
}

static void
test_config_listen_marks_proxy_protocol_listeners(void **state)
{
	struct config	 conf;

	assert_int_equal(load(*state, "[server]\nlisten = 127.0.0.1:8080, "
	    "127.0.0.1:8443 proxy_protocol, [::1]:8444  proxy_protocol\n"
	    "trusted_proxies = 127.0.0.1, 10.0.0.0/8 , fd00::/8\n", &conf), 0);
	assert_int_equal(conf.nlisten, 3);
	assert_false(conf.listen[0].proxy_protocol);
	assert_true(conf.listen[1].proxy_protocol);
	assert_true(conf.listen[2].proxy_protocol);
	/* The text names the socket alone, so a reload that only adds the
	 * mark keeps the socket. */
	assert_string_equal(conf.listen[1].text, "127.0.0.1:8443");
	assert_string_equal(conf.listen[2].text, "[::1]:8444");
	assert_int_equal(conf.ntrusted_proxies, 3);
	assert_int_equal(conf.trusted_proxies[1].prefix, 8);
	assert_int_equal(conf.trusted_proxies[2].family, AF_INET6);
}

static void
test_config_rejects_bad_proxy_settings(void **state)
{
	assert_error(*state, "[server]\nlisten = 127.0.0.1:8443 "
	    "proxy_protocol\n", "[server] listen: 127.0.0.1:8443 "
	    "proxy_protocol needs [server] trusted_proxies");
	assert_error(*state, "[server]\nlisten = 127.0.0.1:8443 proxy\n",
	    ":2: [server] listen: unknown option 'proxy' after "
	    "127.0.0.1:8443");
	assert_error(*state, "[server]\nadmin_listen = 127.0.0.1:8443 "
	    "proxy_protocol\n", ":2: [server] admin_listen: unknown option");
	assert_error(*state, "[server]\ntrusted_proxies = 10.1.2.3/8\n",
	    ":2: [server] trusted_proxies: bad network '10.1.2.3/8'");
	assert_error(*state, "[server]\ntrusted_proxies = nginx\n",
	    ":2: [server] trusted_proxies: bad network 'nginx'");
}

static void
test_config_rejects_bad_sync(void **state)
{
	assert_error(*state, "[ring]\nsync = always\n",
	    ":2: [ring] sync: bad value 'always'");
}

static void
test_config_rejects_bad_origin(void **state)
{
	assert_error(*state, "[cors]\nallow_origins = example.com\n",
	    ":2: [cors] allow_origins: 'example.com' is not an origin");
}

static void
test_config_rejects_bad_log_level(void **state)
{
	assert_error(*state, "[log]\nlevel = loud\n",
	    ":2: [log] level: bad value 'loud'");
}

static void
test_config_rejects_empty_paths(void **state)
{
	assert_error(*state, "[ring]\npath =\n", "[ring] path: must not be empty");
	assert_error(*state, "[log]\ntarget =\n",
	    "[log] target: must not be empty");
}

static void
test_config_rejects_key_set_twice(void **state)
{
	assert_error(*state, "[stream]\nretry = 1s\nretry = 2s\n",
	    ":3: [stream] retry: set twice");
}

static void
test_config_rejects_syntax_error(void **state)
{
	assert_error(*state, "[server]\nworkers 2\n",
	    "ringcast.conf:2: syntax error");
}

static void
test_config_rejects_missing_file(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(config_load(&c, "/nonexistent/ringcast.conf", f->err,
	    sizeof(f->err)), -1);
	assert_string_equal(f->err,
	    "/nonexistent/ringcast.conf: cannot open: No such file or directory");
}

static void
test_config_rejects_event_larger_than_ring_allows(void **state)
{
	assert_error(*state, "[ring]\nsize = 1M\n[limits]\n"
	    "max_event_bytes = 512K\n",
	    "[limits] max_event_bytes: 524288 does not fit the ring");
}

static void
test_config_reports_every_error(void **state)
{
	struct fixture	*f = *state;
	struct config	 c;

	assert_int_equal(load(f, "[server]\nworkers = x\n[ring]\nsize = y\n"
	    "bogus = 1\n", &c), -1);
	assert_non_null(strstr(f->err, ":2: [server] workers"));
	assert_non_null(strstr(f->err, "\n"));
	assert_non_null(strstr(f->err, ":4: [ring] size"));
	assert_non_null(strstr(f->err, ":5: [ring] bogus: unknown key"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_match_the_design),
		cmocka_unit_test(test_config_workers_auto_is_one_per_cpu),
		cmocka_unit_test(test_config_parse_size_units),
		cmocka_unit_test(test_config_parse_duration_units),
		cmocka_unit_test(test_config_parse_addr_forms),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_config_loads_every_key),
		T(test_config_admin_token_is_empty_unless_set),
		T(test_config_cors_star_allows_any_origin),
		T(test_config_cors_named_origin_beats_star),
		T(test_config_auth_defaults_and_key_file),
		T(test_config_rejects_bad_jwt_settings),
		T(test_config_rejects_unknown_key_with_file_line),
		T(test_config_rejects_unknown_section),
		T(test_config_rejects_bad_size),
		T(test_config_rejects_size_out_of_range),
		T(test_config_rejects_bad_duration),
		T(test_config_rejects_duration_out_of_range),
		T(test_config_rejects_bad_bool),
		T(test_config_rejects_bad_workers),
		T(test_config_rejects_bad_slots),
		T(test_config_rejects_bad_listen),
		T(test_config_listen_marks_proxy_protocol_listeners),
		T(test_config_rejects_bad_proxy_settings),
		T(test_config_rejects_bad_sync),
		T(test_config_rejects_bad_origin),
		T(test_config_rejects_bad_log_level),
		T(test_config_rejects_empty_paths),
		T(test_config_rejects_key_set_twice),
		T(test_config_rejects_syntax_error),
		T(test_config_rejects_missing_file),
		T(test_config_rejects_event_larger_than_ring_allows),
		T(test_config_reports_every_error),
#undef T
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
