/*
 * test_stream_index: the topic index of stream.c through the real conn,
 * route and stream modules on socketpairs (tests/worker_fixture.c): join,
 * leave, multi-topic streams, a close during a fan-out, and that a fan-out
 * visits only the streams of the topics that got events.
 */
#include "rc_test.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include "ringcast/conn.h"
#include "ringcast/ring.h"
#include "ringcast/stream.h"
#include "worker_fixture.h"

#define READ_MAX	(256 * 1024)

static char	 rbuf[READ_MAX];

static int
setup(void **state)
{
	struct worker_fixture	*f = calloc(1, sizeof(*f));
	char			*dir = rc_test_tmpdir();

	if (f == NULL || dir == NULL ||
	    worker_fixture_init(f, dir, 256 * 1024, 256) == -1)
		return -1;
	rc_test_rmdir(dir);
	*state = f;
	return 0;
}

/* A ring and a window that hold a thousand events and more. */
static int
setup_big(void **state)
{
	struct worker_fixture	*f = calloc(1, sizeof(*f));
	char			*dir = rc_test_tmpdir();

	if (f == NULL || dir == NULL ||
	    worker_fixture_init(f, dir, 4 * 1024 * 1024, 4096) == -1)
		return -1;
	rc_test_rmdir(dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	worker_fixture_free(*state);
	free(*state);
	return 0;
}

static uint32_t
topic(struct worker_fixture *f, const char *name)
{
	return worker_fixture_topic_add(f, name);
}

static uint64_t
publish(struct worker_fixture *f, const char *name, const char *data)
{
	uint64_t	 seq;

	assert_int_equal(worker_fixture_publish(f, topic(f, name), data, &seq),
	    0);
	return seq;
}

static void
request(struct worker_fixture *f, struct conn *c, int fd, const char *text)
{
	size_t	 len = strlen(text);

	assert_int_equal(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
	worker_fixture_event(f, c, EPOLLIN | EPOLLOUT);
}

static size_t
client_read(int fd)
{
	size_t	 len = 0;

	worker_fixture_read(fd, rbuf, sizeof(rbuf) - 1, &len);
	rbuf[len] = '\0';
	return len;
}

/* Open a stream of url; returns the conn and the client end. */
static struct conn *
subscribe(struct worker_fixture *f, const char *url, int *client)
{
	struct conn	*c = worker_fixture_connect(f, 0, client);
	char		 req[512];

	assert_non_null(c);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", url);
	request(f, c, *client, req);
	assert_int_equal(c->state, CONN_STREAM);
	client_read(*client);
	return c;
}

/* The data: lines of every event the client has been sent since. */
static size_t
received(int client, char *out, size_t cap)
{
	char	*p, *line;
	size_t	 n = 0;

	client_read(client);
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
	struct worker_fixture	*f = *state;
	struct conn		*c[4];
	int			 fd[4], i;
	uint32_t		 a = topic(f, "a");
	uint32_t		 b = topic(f, "b");

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
	struct worker_fixture	*f = *state;
	struct conn		*c;
	char			 got[1024];
	int			 fd;

	c = subscribe(f, "/events?topic=a&topic=x/y:z", &fd);
	assert_int_equal(stream_index_count(f->serve.topics,
	    topic(f, "a")), 1);
	assert_int_equal(stream_index_count(f->serve.topics,
	    topic(f, "x/y:z")), 1);
	publish(f, "a", "1");
	publish(f, "b", "2");
	publish(f, "x/y:z", "3");
	publish(f, "a", "4");
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
	struct worker_fixture	*f = *state;
	char			 got[1024];
	int			 fd[101], i;

	for (i = 0; i < 100; i++)
		subscribe(f, "/events/b", &fd[i]);
	subscribe(f, "/events/a", &fd[100]);
	publish(f, "a", "only-a");
	assert_int_equal(stream_fanout(&f->serve), 1);
	assert_int_equal(received(fd[100], got, sizeof(got)), 1);
	assert_string_equal(got, "only-a,");
	for (i = 0; i < 100; i++)
		assert_int_equal(received(fd[i], got, sizeof(got)), 0);
	publish(f, "b", "to-b");
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
	struct worker_fixture	*f = *state;
	struct conn		*c[3];
	char			 got[1024];
	int			 fd[3], i;

	for (i = 0; i < 3; i++)
		c[i] = subscribe(f, "/events/a", &fd[i]);
	/* The first and last peers vanish: their writes fail mid fan-out. */
	close(fd[0]);
	close(fd[2]);
	publish(f, "a", "x");
	stream_fanout(&f->serve);
	assert_false(worker_fixture_conn_alive(f, c[0]));
	assert_false(worker_fixture_conn_alive(f, c[2]));
	assert_true(worker_fixture_conn_alive(f, c[1]));
	assert_int_equal(received(fd[1], got, sizeof(got)), 1);
	assert_int_equal(stream_index_count(f->serve.topics,
	    topic(f, "a")), 1);
	/* Closed while queued: the queue must not touch it after reap. */
	publish(f, "a", "y");
	window_refresh(&f->serve.window, f->serve.ring);
	conn_close(&f->serve, c[1]);
	stream_fanout(&f->serve);
	conn_reap(&f->serve);
	assert_int_equal(stream_index_topics(f->serve.topics), 0);
	close(fd[1]);
}

/* ntopics streams, one per topic; nevents events round the topics (k * 7
 * apart), a fan-out every `every` events (0: only at the end); each stream
 * must get exactly its topic's events, in order. */
static void
many_topics(struct worker_fixture *f, int ntopics, int nevents, int every)
{
	static char	 got[16384], want[16384];
	char		 name[24], data[16];
	int		 fd[64], i, k, n;

	assert_true(ntopics <= 64);
	for (i = 0; i < ntopics; i++) {
		snprintf(name, sizeof(name), "/events/t%d", i);
		topic(f, name + 8);
		subscribe(f, name, &fd[i]);
	}
	for (k = 0; k < nevents; k++) {
		snprintf(name, sizeof(name), "t%d", (k * 7) % ntopics);
		snprintf(data, sizeof(data), "%d", k);
		publish(f, name, data);
		if (every > 0 && k % every == 0)
			stream_fanout(&f->serve);
	}
	for (k = 0; k < 64 && stream_fanout(&f->serve) > 0; k++)
		;
	for (i = 0; i < ntopics; i++) {
		want[0] = '\0';
		for (n = 0, k = 0; k < nevents; k++)
			if ((k * 7) % ntopics == i) {
				snprintf(data, sizeof(data), "%d,", k);
				strcat(want, data);
				n++;
			}
		assert_int_equal(received(fd[i], got, sizeof(got)), n);
		assert_string_equal(got, want);
		close(fd[i]);
	}
}

static void
test_stream_many_topics_each_gets_exactly_its_events(void **state)
{
	many_topics(*state, 20, 100, 13);
}

/* A quiet topic in a busy window: its frames are found on the topic's
 * chain, not by scanning every frame since its cursor. */
static void
test_stream_sparse_topics_are_walked_on_their_chain(void **state)
{
	many_topics(*state, 40, 1200, 0);
}

/* More of its frames than one write takes: the chain walk gives up and
 * the scan sends them in order. */
static void
test_stream_busy_topics_fall_back_to_the_scan(void **state)
{
	many_topics(*state, 8, 1000, 0);
}

static void
test_stream_resume_replays_only_its_topic_from_the_ring(void **state)
{
	struct worker_fixture	*f = *state;
	struct conn		*c;
	char			 got[1024];
	uint64_t		 first;
	int			 fd, k;

	first = publish(f, "a", "a0");
	for (k = 0; k < 10; k++)
		publish(f, k % 2 ? "a" : "b", k % 2 ? "a" : "b");
	c = worker_fixture_connect(f, 0, &fd);
	snprintf(got, sizeof(got), "GET /events/a HTTP/1.1\r\nHost: t\r\n"
	    "Last-Event-ID: %llu\r\n\r\n", (unsigned long long)first);
	request(f, c, fd, got);
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
		    test_stream_sparse_topics_are_walked_on_their_chain,
		    setup_big, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_busy_topics_fall_back_to_the_scan, setup_big,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_resume_replays_only_its_topic_from_the_ring,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
