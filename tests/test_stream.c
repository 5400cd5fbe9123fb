/*
 * test_stream: delivery through the real conn, route and stream modules
 * on socketpairs: the topic index (join, leave, multi-topic, close during a
 * fan-out) and that a fan-out visits only the streams of the topics that
 * got events.
 */
#include "rc_test.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include "ringcast/conn.h"
#include "ringcast/ring.h"
#include "ringcast/stream.h"
#include "serve_fixture.h"

#define READ_MAX	(256 * 1024)

static char	 rbuf[READ_MAX];

static int
setup(void **state)
{
	struct serve_fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	serve_fixture_init(f, 0, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	serve_fixture_free(*state);
	free(*state);
	return 0;
}

/* Open a stream of url; returns the conn and the client end. */
static struct conn *
subscribe(struct serve_fixture *f, const char *url, int *client)
{
	struct conn	*c = serve_fixture_connect(f, client);
	char		 req[512];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", url);
	serve_fixture_request(f, c, *client, req);
	assert_int_equal(c->state, CONN_STREAM);
	serve_fixture_read(*client, rbuf, sizeof(rbuf));
	return c;
}

/* The data: lines of every event the client has been sent since. */
static size_t
received(int client, char *out, size_t cap)
{
	char	*p, *line;
	size_t	 n = 0;

	serve_fixture_read(client, rbuf, sizeof(rbuf));
	out[0] = '\0';
	for (p = rbuf; (line = strstr(p, "data: ")) != NULL; p = line + 6) {
		char	*end = strchr(line, '\n');

		if (end == NULL)
			break;
		n++;
		strncat(out, line + 6, (size_t)(end - line - 6) < cap -
		    strlen(out) - 2 ? (size_t)(end - line - 6) : 0);
		strncat(out, ",", cap - strlen(out) - 1);
	}
	return n;
}

static void
test_stream_index_counts_join_and_leave(void **state)
{
	struct serve_fixture	*f = *state;
	struct conn		*c[4];
	int			 fd[4], i;
	uint32_t		 a = serve_fixture_topic(f, "a");
	uint32_t		 b = serve_fixture_topic(f, "b");

	for (i = 0; i < 3; i++)
		c[i] = subscribe(f, "/events/a", &fd[i]);
	c[3] = subscribe(f, "/events/b", &fd[3]);
	assert_int_equal(stream_index_count(f->serve.topics, a), 3);
	assert_int_equal(stream_index_count(f->serve.topics, b), 1);
	assert_int_equal(stream_index_topics(f->serve.topics), 2);
	conn_close(&f->serve, c[1]);
	assert_int_equal(stream_index_count(f->serve.topics, a), 2);
	conn_close(&f->serve, c[3]);
	assert_int_equal(stream_index_count(f->serve.topics, b), 0);
	assert_int_equal(stream_index_topics(f->serve.topics), 1);
	conn_close(&f->serve, c[0]);
	conn_close(&f->serve, c[2]);
	assert_int_equal(stream_index_topics(f->serve.topics), 0);
	conn_reap(&f->serve);
	for (i = 0; i < 4; i++)
		close(fd[i]);
}

static void
test_stream_multi_topic_stream_sits_in_each_topic(void **state)
{
	struct serve_fixture	*f = *state;
	struct conn		*c;
	char			 got[1024];
	int			 fd;

	c = subscribe(f, "/events?topic=a&topic=x/y:z", &fd);
	assert_int_equal(stream_index_count(f->serve.topics,
	    serve_fixture_topic(f, "a")), 1);
	assert_int_equal(stream_index_count(f->serve.topics,
	    serve_fixture_topic(f, "x/y:z")), 1);
	serve_fixture_publish(f, "a", "1");
	serve_fixture_publish(f, "b", "2");
	serve_fixture_publish(f, "x/y:z", "3");
	serve_fixture_publish(f, "a", "4");
	stream_fanout(&f->serve);
	assert_int_equal(received(fd, got, sizeof(got)), 3);
	assert_string_equal(got, "1,3,4,");
	conn_close(&f->serve, c);
	assert_int_equal(stream_index_topics(f->serve.topics), 0);
	close(fd);
}

static void
test_stream_fanout_visits_only_the_topics_streams(void **state)
{
	struct serve_fixture	*f = *state;
	char			 got[1024];
	int			 fd[101], i;

	for (i = 0; i < 100; i++)
		subscribe(f, "/events/b", &fd[i]);
	subscribe(f, "/events/a", &fd[100]);
	serve_fixture_publish(f, "a", "only-a");
	assert_int_equal(stream_fanout(&f->serve), 1);
	assert_int_equal(received(fd[100], got, sizeof(got)), 1);
	assert_string_equal(got, "only-a,");
	for (i = 0; i < 100; i++)
		assert_int_equal(received(fd[i], got, sizeof(got)), 0);
	serve_fixture_publish(f, "b", "to-b");
	assert_int_equal(stream_fanout(&f->serve), 100);
	for (i = 0; i < 100; i++) {
		assert_int_equal(received(fd[i], got, sizeof(got)), 1);
		assert_string_equal(got, "to-b,");
	}
	for (i = 0; i < 101; i++)
		close(fd[i]);
}

static void
test_stream_close_during_fanout_spares_the_others(void **state)
{
	struct serve_fixture	*f = *state;
	struct conn		*c[3];
	char			 got[1024];
	int			 fd[3], i;

	for (i = 0; i < 3; i++)
		c[i] = subscribe(f, "/events/a", &fd[i]);
	/* The first and last peers vanish: their writes fail mid fan-out. */
	close(fd[0]);
	close(fd[2]);
	serve_fixture_publish(f, "a", "x");
	stream_fanout(&f->serve);
	assert_false(serve_fixture_alive(f, c[0]));
	assert_false(serve_fixture_alive(f, c[2]));
	assert_true(serve_fixture_alive(f, c[1]));
	assert_int_equal(received(fd[1], got, sizeof(got)), 1);
	assert_int_equal(stream_index_count(f->serve.topics,
	    serve_fixture_topic(f, "a")), 1);
	/* Closed while queued: the queue must not touch it after reap. */
	serve_fixture_publish(f, "a", "y");
	window_refresh(&f->serve.window, f->ring);
	conn_close(&f->serve, c[1]);
	stream_fanout(&f->serve);
	conn_reap(&f->serve);
	assert_int_equal(stream_index_topics(f->serve.topics), 0);
	close(fd[1]);
}

static void
test_stream_many_topics_each_gets_exactly_its_events(void **state)
{
	struct serve_fixture	*f = *state;
	char			 name[16], data[16], got[4096], want[4096];
	int			 fd[20], i, k;

	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "/events/t%d", i);
		serve_fixture_topic(f, name + 8);
		subscribe(f, name, &fd[i]);
	}
	for (k = 0; k < 100; k++) {
		snprintf(name, sizeof(name), "t%d", (k * 7) % 20);
		snprintf(data, sizeof(data), "%d", k);
		serve_fixture_publish(f, name, data);
		if (k % 13 == 0)
			stream_fanout(&f->serve);
	}
	stream_fanout(&f->serve);
	for (i = 0; i < 20; i++) {
		want[0] = '\0';
		for (k = 0; k < 100; k++)
			if ((k * 7) % 20 == i) {
				snprintf(data, sizeof(data), "%d,", k);
				strcat(want, data);
			}
		assert_int_equal(received(fd[i], got, sizeof(got)), 5);
		assert_string_equal(got, want);
		close(fd[i]);
	}
}

static void
test_stream_resume_replays_only_its_topic_from_the_ring(void **state)
{
	struct serve_fixture	*f = *state;
	struct conn		*c;
	char			 got[1024];
	uint64_t		 first;
	int			 fd, k;

	first = serve_fixture_publish(f, "a", "a0");
	for (k = 0; k < 10; k++)
		serve_fixture_publish(f, k % 2 ? "a" : "b", k % 2 ? "a" : "b");
	c = serve_fixture_connect(f, &fd);
	snprintf(got, sizeof(got), "GET /events/a HTTP/1.1\r\nHost: t\r\n"
	    "Last-Event-ID: %llu\r\n\r\n", (unsigned long long)first);
	serve_fixture_request(f, c, fd, got);
	stream_fanout(&f->serve);
	assert_int_equal(received(fd, got, sizeof(got)), 5);
	assert_string_equal(got, "a,a,a,a,a,");
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_stream_index_counts_join_and_leave, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_multi_topic_stream_sits_in_each_topic, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_fanout_visits_only_the_topics_streams, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_close_during_fanout_spares_the_others, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_many_topics_each_gets_exactly_its_events, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_resume_replays_only_its_topic_from_the_ring,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
