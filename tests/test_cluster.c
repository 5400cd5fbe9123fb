/*
 * test_cluster: the parts of cluster mode that need no NATS server: a
 * topic's subject and back (every topic name the catalog takes), the
 * epoch base in a stream's description and the base a new epoch gets, the
 * relay's start sequence with its hole and conflict cases, the relay's
 * state file, and the [cluster] configuration checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_test.h"
#include "ringcast/catalog.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/relay.h"

static void
subject_round_trip(const char *topic, const char *want)
{
	char	 subject[CLUSTER_SUBJECT_MAX], back[TOPIC_NAME_MAX + 1];

	assert_int_equal(cluster_subject(subject, sizeof(subject), topic), 0);
	assert_string_equal(subject, want);
	/* A NATS subject: no empty token, no wildcard, no space. */
	assert_null(strstr(subject, ".."));
	assert_null(strchr(subject, '*'));
	assert_null(strchr(subject, '>'));
	assert_null(strchr(subject, ' '));
	assert_int_equal(subject[strlen(subject) - 1] != '.', 1);
	assert_int_equal(cluster_subject_topic(subject, back, sizeof(back)),
	    0);
	assert_string_equal(back, topic);
}

static void
test_cluster_subject_escapes_dots_and_round_trips(void **state)
{
	(void)state;
	subject_round_trip("news", "ringcast.news");
	subject_round_trip("user/42", "ringcast.user/42");
	subject_round_trip("room:lobby", "ringcast.room:lobby");
	/* Dots are token separators in NATS: "a..b" would be an empty
	 * token, ".x" and "x." too. */
	subject_round_trip("a..b", "ringcast.a%2E%2Eb");
	subject_round_trip(".hidden", "ringcast.%2Ehidden");
	subject_round_trip("v1.2", "ringcast.v1%2E2");
	subject_round_trip("100%", "ringcast.100%25");
}

static void
test_cluster_subject_refuses_what_it_did_not_make(void **state)
{
	char	 topic[TOPIC_NAME_MAX + 1], small[12];

	(void)state;
	assert_int_equal(cluster_subject_topic("other.news", topic,
	    sizeof(topic)), -1);
	assert_int_equal(cluster_subject_topic("ringcast.", topic,
	    sizeof(topic)), -1);
	assert_int_equal(cluster_subject_topic("ringcast.a%2", topic,
	    sizeof(topic)), -1);
	assert_int_equal(cluster_subject_topic("ringcast.a%zz", topic,
	    sizeof(topic)), -1);
	assert_int_equal(cluster_subject_topic("ringcast.a%00b", topic,
	    sizeof(topic)), -1);
	/* Too small a buffer either way is refused, never cut. */
	assert_int_equal(cluster_subject(small, sizeof(small),
	    "a-long-topic"), -1);
	assert_int_equal(cluster_subject_topic("ringcast.abcdef", topic, 4),
	    -1);
}

static void
test_cluster_base_parse_and_next(void **state)
{
	(void)state;
	assert_int_equal(cluster_base_parse(NULL), 0);
	assert_int_equal(cluster_base_parse(""), 0);
	assert_int_equal(cluster_base_parse("some stream"), 0);
	assert_int_equal(cluster_base_parse("ringcast base=0 (ids...)"), 0);
	assert_int_equal(cluster_base_parse("ringcast base=2000000 (ids are "
	    "base + sequence)"), 2000000);
	assert_int_equal(cluster_base_parse("ringcast base=x"), 0);
	assert_int_equal(cluster_base_parse("ringcast base="
	    "99999999999999999999999"), 0);
	/* A first deployment keeps ids = sequences. */
	assert_int_equal(cluster_base_next(0), 0);
	/* Above the maker's newest id by at least one step. */
	assert_true(cluster_base_next(1) > 1 + CLUSTER_BASE_STEP - 1);
	assert_int_equal(cluster_base_next(6), 2 * CLUSTER_BASE_STEP);
	assert_int_equal(cluster_base_next(CLUSTER_BASE_STEP),
	    3 * CLUSTER_BASE_STEP);
	assert_true(cluster_base_next(5 * CLUSTER_BASE_STEP - 1) >=
	    6 * CLUSTER_BASE_STEP - 1);
	assert_int_equal(cluster_base_next(UINT64_MAX - 5), UINT64_MAX - 5);
}

static void
test_relay_start_seq(void **state)
{
	int	 hole, conflict;

	(void)state;
	/* Fresh node, fresh stream. */
	assert_int_equal(relay_start_seq(0, 0, 0, 0, &hole, &conflict), 1);
	assert_false(hole);
	assert_false(conflict);
	/* Caught up, and behind within what the stream holds. */
	assert_int_equal(relay_start_seq(10, 0, 1, 10, &hole, &conflict), 11);
	assert_false(hole || conflict);
	assert_int_equal(relay_start_seq(4, 0, 1, 10, &hole, &conflict), 5);
	assert_false(hole || conflict);
	/* Behind what the stream still holds: a hole, start at its first. */
	assert_int_equal(relay_start_seq(4, 0, 8, 10, &hole, &conflict), 8);
	assert_true(hole);
	assert_false(conflict);
	/* A fresh node joining a stream that dropped its head. */
	assert_int_equal(relay_start_seq(0, 0, 8, 10, &hole, &conflict), 8);
	assert_true(hole);
	/* A new epoch above the ring: start at its first. */
	assert_int_equal(relay_start_seq(6, 2000000, 1, 3, &hole, &conflict),
	    1);
	assert_true(hole);
	assert_false(conflict);
	/* Within the epoch, ids = base + sequence. */
	assert_int_equal(relay_start_seq(2000002, 2000000, 1, 3, &hole,
	    &conflict), 3);
	assert_false(hole || conflict);
	/* The ring is ahead of the stream: a conflict. */
	assert_int_equal(relay_start_seq(50, 0, 1, 10, &hole, &conflict), 11);
	assert_true(conflict);
	assert_false(hole);
}

static void
test_relay_state_file(void **state)
{
	char		 dir[] = "/tmp/rc-cluster-XXXXXX", path[256];
	int64_t		 created = 0;
	uint64_t	 base = 0;
	FILE		*fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(relay_state_path(path, sizeof(path), dir), 0);
	assert_int_equal(relay_state_read(path, &created, &base), -1);
	assert_int_equal(relay_state_write(path, 1796183673620890521LL,
	    2000000), 0);
	assert_int_equal(relay_state_read(path, &created, &base), 0);
	assert_int_equal(created, 1796183673620890521LL);
	assert_int_equal(base, 2000000);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("garbage\n", fp);
	fclose(fp);
	assert_int_equal(relay_state_read(path, &created, &base), -1);
	assert_int_equal(relay_state_path(path, 8, dir), -1);
	unlink(path);
	snprintf(path, sizeof(path), "%s.cluster", dir);
	unlink(path);
	rmdir(dir);
}

static int
load(const char *text, char *err, size_t errlen)
{
	char		 path[] = "/tmp/rc-cluster-conf-XXXXXX";
	struct config	 conf;
	int		 fd, rc;

	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rc = config_load(&conf, path, err, errlen);
	if (rc == 0)
		config_free(&conf);
	unlink(path);
	return rc;
}

static void
test_cluster_config(void **state)
{
	struct config	 conf;
	char		 err[1024];

	(void)state;
	config_defaults(&conf);
	assert_false(cluster_enabled(&conf));
	assert_string_equal(conf.cluster_stream, "RINGCAST");
	assert_int_equal(conf.cluster_replicas, 1);
	assert_int_equal(conf.cluster_publish_timeout_ms, 5000);
	assert_int_equal(load("[cluster]\nnats = nats://127.0.0.1:4222, "
	    "nats://127.0.0.1:4223\nreplicas = 3\n", err, sizeof(err)), 0);
	assert_int_equal(load("[cluster]\nnats = 127.0.0.1:4222\n", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "[cluster] nats: '127.0.0.1:4222' is "
	    "not a NATS URL"));
	assert_int_equal(load("[cluster]\nnats = nats://a:1,,nats://b:2\n",
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[cluster] nats"));
	assert_int_equal(load("[cluster]\nreplicas = 2\n", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "[cluster] replicas: 2"));
	assert_int_equal(load("[cluster]\nstream = a.b\n", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "[cluster] stream: 'a.b'"));
	assert_int_equal(load("[cluster]\npublish_timeout = 10ms\n", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "[cluster] publish_timeout"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_cluster_subject_escapes_dots_and_round_trips),
		cmocka_unit_test(
		    test_cluster_subject_refuses_what_it_did_not_make),
		cmocka_unit_test(test_cluster_base_parse_and_next),
		cmocka_unit_test(test_relay_start_seq),
		cmocka_unit_test(test_relay_state_file),
		cmocka_unit_test(test_cluster_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
