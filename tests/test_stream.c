/*
 * test_stream: stream delivery through the public conn and stream API, on
 * an in-process worker (tests/worker_fixture.c): a client subscribes over a
 * socketpair,
 * events are appended to the ring, the test plays the worker's loop, and
 * only what the client received is judged, so these tests hold wherever the
 * delivery code lives.  A seam (-Wl,--wrap=ring_topic_evicted) lets one test
 * evict events at the worst moment of a read.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <http_parser.h>

#include "rc_test.h"
#include "ringcast/conn.h"
#include "ringcast/handoff.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/stream.h"
#include "ringcast/window.h"
#include "worker_fixture.h"

#define CLIENT_MAX	(512 * 1024)	/* bytes a client keeps */
#define IDS_MAX		1024		/* events a client keeps */
#define ROUNDS_MAX	1000		/* bound of every delivery loop */

struct fixture {
	char			*dir;
	struct worker_fixture	 fx;
};

/* What a client received: raw bytes, then the SSE blocks of the body. */
struct client {
	int		 fd;
	struct conn	*conn;
	char		*raw;
	size_t		 rawlen;
	int		 eof;		/* the server closed */
	char		*body;		/* the response body, de-chunked */
	size_t		 bodylen;
	int		 ended;		/* the response is complete */
	uint64_t	 ids[IDS_MAX];	/* ids of the events, in order */
	size_t		 nids;
	size_t		 gaps;		/* ringcast-gap events */
	uint64_t	 gap_next;	/* the first id the last gap promised */
};

/* The seam: when armed, the next ring_topic_evicted call answers first,
 * then the ring evicts up to and including evict_through (appending events
 * of evict_topic), as a publisher in another worker could at that moment. */
static struct worker_fixture	*evict_fx;
static uint64_t			 evict_through;
static uint32_t			 evict_topic;
static int			 evict_fired;

uint64_t	__real_ring_topic_evicted(const struct ring *, uint32_t);
uint64_t	__wrap_ring_topic_evicted(const struct ring *, uint32_t);

uint64_t
__wrap_ring_topic_evicted(const struct ring *ring, uint32_t topic)
{
	uint64_t	 evicted = __real_ring_topic_evicted(ring, topic);
	uint64_t	 seq;
	int		 i;

	if (evict_fx == NULL)
		return evicted;
	for (i = 0; i < 4096 && ring_oldest(ring) <= evict_through; i++)
		if (worker_fixture_publish(evict_fx, evict_topic, "late",
		    &seq) == -1)
			break;
	evict_fx = NULL;
	evict_fired = ring_oldest(ring) > evict_through;
	return evicted;
}

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

	evict_fx = NULL;
	worker_fixture_free(&f->fx);
	rc_test_rmdir(f->dir);
	free(f);
	return 0;
}

static void
open_worker(struct fixture *f, uint64_t ring_size, uint32_t ring_slots)
{
	assert_int_equal(worker_fixture_init(&f->fx, f->dir, ring_size,
	    ring_slots), 0);
}

static uint64_t
publish(struct fixture *f, const char *topic, const char *data)
{
	uint64_t	 seq;

	assert_int_equal(worker_fixture_publish(&f->fx,
	    worker_fixture_topic(&f->fx, topic), data, &seq), 0);
	return seq;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct client	*cl = p->data;

	if (cl->bodylen + len > CLIENT_MAX)
		return -1;
	memcpy(cl->body + cl->bodylen, at, len);
	cl->bodylen += len;
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct client	*cl = p->data;

	cl->ended = 1;
	return 0;
}

/* Split the body into SSE blocks; note each complete block's id and gap. */
static void
client_parse_events(struct client *cl)
{
	const char	*p = cl->body, *end = cl->body + cl->bodylen;
	const char	*block_end, *line, *eol;
	int		 gap;

	cl->nids = 0;
	cl->gaps = 0;
	while (p < end &&
	    (block_end = memmem(p, (size_t)(end - p), "\n\n", 2)) != NULL) {
		gap = 0;
		for (line = p; line < block_end + 1; line = eol + 1) {
			eol = memchr(line, '\n', (size_t)(block_end + 1 - line));
			if (strncmp(line, "event: ringcast-gap\n", 20) == 0)
				gap = 1;
			else if (gap && strncmp(line, "data: ", 6) == 0)
				cl->gap_next = strtoull(line + 6, NULL, 10);
			else if (strncmp(line, "id: ", 4) == 0 &&
			    cl->nids < IDS_MAX)
				cl->ids[cl->nids++] = strtoull(line + 4, NULL,
				    10);
		}
		cl->gaps += gap;
		p = block_end + 2;
	}
}

/* Read what the server sent so far and parse it as one HTTP response. */
static void
client_read(struct client *cl)
{
	http_parser_settings	 settings;
	http_parser		 parser;
	size_t			 n;

	cl->eof |= worker_fixture_read(cl->fd, cl->raw, CLIENT_MAX,
	    &cl->rawlen);
	assert_true(cl->rawlen < CLIENT_MAX);
	memset(&settings, 0, sizeof(settings));
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;
	http_parser_init(&parser, HTTP_RESPONSE);
	parser.data = cl;
	cl->bodylen = 0;
	cl->ended = 0;
	n = http_parser_execute(&parser, &settings, cl->raw, cl->rawlen);
	if (n != cl->rawlen || HTTP_PARSER_ERRNO(&parser) != HPE_OK)
		fail_msg("not an HTTP response at byte %zu: %s", n,
		    http_errno_description(HTTP_PARSER_ERRNO(&parser)));
	if (cl->rawlen > 0)
		assert_int_equal(parser.status_code, 200);
	client_parse_events(cl);
}

/* GET target with extra header lines; the stream is under way on return,
 * and the client has read what the first flush sent. */
static struct client *
subscribe(struct fixture *f, const char *target, const char *headers)
{
	struct client	*cl = calloc(1, sizeof(*cl));
	char		 req[512];
	int		 n;

	assert_non_null(cl);
	assert_non_null(cl->raw = malloc(CLIENT_MAX));
	assert_non_null(cl->body = malloc(CLIENT_MAX));
	assert_non_null(cl->conn = worker_fixture_connect(&f->fx, 0,
	    &cl->fd));
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n"
	    "%s\r\n", target, headers != NULL ? headers : "");
	assert_int_equal(send(cl->fd, req, (size_t)n, MSG_NOSIGNAL), n);
	worker_fixture_event(&f->fx, cl->conn, EPOLLIN | EPOLLOUT);
	assert_true(worker_fixture_conn_alive(&f->fx, cl->conn));
	assert_int_equal(cl->conn->state, CONN_STREAM);
	client_read(cl);
	return cl;
}

static void
client_free(struct client *cl)
{
	close(cl->fd);
	free(cl->raw);
	free(cl->body);
	free(cl);
}

/* Play the worker's loop until the stream is owed nothing (or has ended):
 * fan out, let the client read, tell the worker the socket drained. */
static void
deliver(struct fixture *f, struct client *cl)
{
	struct serve	*s = &f->fx.serve;
	int		 rounds;

	for (rounds = 0; rounds < ROUNDS_MAX; rounds++) {
		stream_fanout(s);
		client_read(cl);
		if (!worker_fixture_conn_alive(&f->fx, cl->conn))
			return;
		if (cl->conn->flags & CONN_BLOCKED)
			worker_fixture_event(&f->fx, cl->conn, EPOLLOUT);
		else if (s->npending == 0)
			return;
	}
	fail_msg("the stream was still owed events after %d rounds",
	    ROUNDS_MAX);
}

/* The client got exactly ids[n], in order. */
static void
assert_ids(const struct client *cl, const uint64_t *ids, size_t n)
{
	size_t	 i;

	if (cl->nids != n)
		fail_msg("the client got %zu events, expected %zu", cl->nids,
		    n);
	for (i = 0; i < n; i++)
		if (cl->ids[i] != ids[i])
			fail_msg("event %zu: id %llu, expected %llu", i,
			    (unsigned long long)cl->ids[i],
			    (unsigned long long)ids[i]);
}

static void
test_stream_stream_gets_live_events_in_order(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 ids[3];

	open_worker(f, 256 * 1024, 256);
	cl = subscribe(f, "/events/a", NULL);
	assert_int_equal(cl->nids, 0);
	ids[0] = publish(f, "a", "one");
	ids[1] = publish(f, "a", "two");
	ids[2] = publish(f, "a", "three");
	deliver(f, cl);
	assert_ids(cl, ids, 3);
	assert_int_equal(cl->gaps, 0);
	client_free(cl);
}

static void
test_stream_stream_replays_after_resume_then_goes_live(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 ids[6], seq, resume = 0;
	char		 hdr[64];
	size_t		 n = 0;
	int		 i;

	open_worker(f, 256 * 1024, 256);
	for (i = 1; i <= 8; i++) {
		seq = publish(f, "a", "old");
		publish(f, "b", "other");
		if (i == 5)
			resume = seq;
		else if (i > 5)
			ids[n++] = seq;
	}
	/* The window holds the older half only: replay crosses from the
	 * window to the ring. */
	stream_fanout(&f->fx.serve);
	for (i = 0; i < 3; i++)
		ids[n++] = publish(f, "a", "unseen by the window");
	snprintf(hdr, sizeof(hdr), "Last-Event-ID: %llu\r\n",
	    (unsigned long long)resume);
	cl = subscribe(f, "/events/a", hdr);
	deliver(f, cl);
	assert_ids(cl, ids, n);
	/* Live events follow the replay with no seam. */
	seq = publish(f, "a", "live");
	deliver(f, cl);
	assert_int_equal(cl->nids, n + 1);
	assert_int_equal(cl->ids[n], seq);
	assert_int_equal(cl->gaps, 0);
	client_free(cl);
}

static void
test_stream_multi_topic_stream_gets_only_its_topics(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 ids[4];

	open_worker(f, 256 * 1024, 256);
	cl = subscribe(f, "/events?topic=a&topic=b", NULL);
	ids[0] = publish(f, "a", "1");
	publish(f, "x/y:z", "not ours");
	ids[1] = publish(f, "b", "2");
	publish(f, "priv", "not ours either");
	ids[2] = publish(f, "b", "3");
	ids[3] = publish(f, "a", "4");
	deliver(f, cl);
	assert_ids(cl, ids, 4);
	client_free(cl);
}

static void
test_stream_resume_after_eviction_says_gap_first(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 oldest;
	int		 i;

	open_worker(f, 64 * 1024, 16);
	for (i = 0; i < 40; i++)
		publish(f, "a", "event");
	oldest = ring_oldest(f->fx.serve.ring);
	assert_true(oldest > 2);
	cl = subscribe(f, "/events/a", "Last-Event-ID: 1\r\n");
	deliver(f, cl);
	assert_int_equal(cl->gaps, 1);
	assert_int_equal(cl->gap_next, oldest);
	assert_int_equal(cl->nids, 40 - (oldest - 1));
	assert_int_equal(cl->ids[0], oldest);
	client_free(cl);
}

/*
 * A stream behind the ring's oldest (only other topics' events evicted)
 * skips to the oldest.  If an event of its own topic is evicted between
 * "did the topic lose anything?" and "where is the oldest now?", the stream
 * must not jump past it silently: it ends as a slow consumer, or says a gap.
 */
static void
test_stream_stream_never_skips_an_evicted_event(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 lost;
	size_t		 i;
	int		 got_lost = 0;

	open_worker(f, 64 * 1024, 16);
	cl = subscribe(f, "/events/a", NULL);
	/* The stream's cursor (0) falls behind on b's events only... */
	for (i = 0; i < 20; i++)
		publish(f, "b", "other");
	/* ...and the next event of a is still in the ring. */
	lost = publish(f, "a", "the next one");
	assert_true(ring_oldest(f->fx.serve.ring) > 1);
	assert_true(ring_oldest(f->fx.serve.ring) <= lost);

	evict_fx = &f->fx;
	evict_topic = worker_fixture_topic(&f->fx, "a");
	evict_through = lost;
	evict_fired = 0;
	/* The flush alone, without a window refresh: the ring path. */
	stream_flush(&f->fx.serve, cl->conn);
	assert_true(evict_fired);
	deliver(f, cl);

	for (i = 0; i < cl->nids; i++)
		got_lost |= cl->ids[i] == lost;
	if (cl->nids > 0 && !got_lost && cl->gaps == 0)
		fail_msg("the stream went on at %llu past the lost event %llu "
		    "with no gap", (unsigned long long)cl->ids[0],
		    (unsigned long long)lost);
	if (cl->gaps == 0) {
		/* Then it must have ended, as a slow consumer. */
		assert_true(cl->ended);
		assert_true(cl->eof);
		assert_false(worker_fixture_conn_alive(&f->fx, cl->conn));
		assert_int_equal(f->fx.serve.slot->counters[
		    METRICS_SLOW_CLOSES], 1);
	}
	client_free(cl);
}

/*
 * A resume on a window that lags the ring (an append by ringcastctl wakes no
 * worker): the cursor is past the window's newest seq.  The window must not
 * pull it back, or the events between come again once the window catches up.
 */
static void
test_stream_cursor_never_moves_backwards(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	uint64_t	 newest = 0, live;
	char		 hdr[64];
	int		 i;

	open_worker(f, 256 * 1024, 256);
	for (i = 0; i < 3; i++)
		publish(f, "a", "seen by the window");
	stream_fanout(&f->fx.serve);
	for (i = 0; i < 3; i++)
		newest = publish(f, "a", "appended behind the window's back");
	assert_true(f->fx.serve.window.last < newest);

	snprintf(hdr, sizeof(hdr), "Last-Event-ID: %llu\r\n",
	    (unsigned long long)newest);
	cl = subscribe(f, "/events/a", hdr);
	stream_flush(&f->fx.serve, cl->conn);
	client_read(cl);
	assert_int_equal(cl->nids, 0);
	/* The window catches up: the client already has all of it. */
	window_refresh(&f->fx.serve.window, f->fx.serve.ring);
	stream_flush(&f->fx.serve, cl->conn);
	client_read(cl);
	if (cl->nids > 0)
		fail_msg("resumed at %llu, the client got %llu again",
		    (unsigned long long)newest,
		    (unsigned long long)cl->ids[0]);
	/* And what comes next still comes. */
	live = publish(f, "a", "live");
	deliver(f, cl);
	assert_ids(cl, &live, 1);
	client_free(cl);
}

/* A socket that takes a few KB at a time: frames go out in pieces, and the
 * client still reads each one whole, once, in order. */
static void
test_stream_partial_write_resumes_mid_frame(void **state)
{
	struct fixture	*f = *state;
	struct client	*cl;
	static char	 data[3000], expect[64 * 1024];
	size_t		 len = 0, first_read;
	uint64_t	 seq;
	int		 i, sndbuf = 4096;

	open_worker(f, 256 * 1024, 256);
	cl = subscribe(f, "/events/a", NULL);
	assert_int_equal(setsockopt(cl->conn->fd, SOL_SOCKET, SO_SNDBUF,
	    &sndbuf, sizeof(sndbuf)), 0);
	len = (size_t)snprintf(expect, sizeof(expect), "retry: %llu\n\n",
	    (unsigned long long)f->fx.conf.retry_ms);
	for (i = 0; i < 12; i++) {
		memset(data, 'a' + i, sizeof(data) - 1);
		seq = publish(f, "a", data);
		len += (size_t)snprintf(expect + len, sizeof(expect) - len,
		    "data: %s\nid: %llu\n\n", data, (unsigned long long)seq);
	}
	assert_true(len < sizeof(expect));
	stream_fanout(&f->fx.serve);
	first_read = cl->rawlen;
	client_read(cl);
	assert_true(cl->conn->flags & CONN_BLOCKED);
	assert_true(cl->bodylen < len);
	assert_true(cl->rawlen > first_read);
	deliver(f, cl);
	assert_int_equal(cl->nids, 12);
	assert_int_equal(cl->bodylen, len);
	assert_memory_equal(cl->body, expect, len);
	client_free(cl);
}

/* A reload hands the stream to another worker at a frame boundary: the
 * client's one response goes on, from the cursor, with its framing, and
 * the old side writes nothing more. */
static void
test_stream_handed_stream_continues_at_its_cursor(void **state)
{
	struct fixture		*f = *state;
	struct serve		*s = &f->fx.serve;
	struct handoff_state	 st;
	struct client		*cl;
	struct conn		*old;
	uint64_t		 ids[5];
	int			 fd;

	open_worker(f, 256 * 1024, 256);
	cl = subscribe(f, "/events?topic=a&topic=b", NULL);
	ids[0] = publish(f, "a", "one");
	ids[1] = publish(f, "b", "two");
	deliver(f, cl);
	assert_ids(cl, ids, 2);
	old = cl->conn;
	assert_int_equal(stream_handoff_state(s, old, &st), 1);
	assert_int_equal(st.ntopics, 2);
	assert_int_equal(st.cursor, ids[1]);
	assert_int_equal(st.flags, HANDOFF_CHUNKED);
	assert_true((fd = dup(old->fd)) != -1);
	conn_close(s, old);
	ids[2] = publish(f, "a", "three");
	publish(f, "x/y:z", "not ours");
	ids[3] = publish(f, "b", "four");
	assert_non_null(cl->conn = stream_adopt(s, fd, &st));
	ids[4] = publish(f, "a", "five");
	deliver(f, cl);
	assert_ids(cl, ids, 5);
	assert_false(cl->ended);
	assert_false(cl->eof);
	assert_int_equal(stream_index_count(s->topics, worker_fixture_topic(
	    &f->fx, "b")), 1);
	client_free(cl);
}

/* A stream in the middle of a frame is not handed over. */
static void
test_stream_stream_mid_frame_is_not_handed_over(void **state)
{
	struct fixture		*f = *state;
	struct handoff_state	 st;
	struct client		*cl;

	open_worker(f, 256 * 1024, 256);
	cl = subscribe(f, "/events/a", NULL);
	cl->conn->partial_seq = publish(f, "a", "one");
	cl->conn->partial = 3;
	assert_int_equal(stream_handoff_state(&f->fx.serve, cl->conn, &st),
	    0);
	cl->conn->partial_seq = 0;
	cl->conn->flags |= CONN_FINISH;
	assert_int_equal(stream_handoff_state(&f->fx.serve, cl->conn, &st),
	    0);
	cl->conn->flags &= ~CONN_FINISH;
	assert_int_equal(stream_handoff_state(&f->fx.serve, cl->conn, &st),
	    1);
	client_free(cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_stream_handed_stream_continues_at_its_cursor,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_stream_mid_frame_is_not_handed_over,
		    setup, teardown),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_stream_stream_gets_live_events_in_order),
		T(test_stream_stream_replays_after_resume_then_goes_live),
		T(test_stream_multi_topic_stream_gets_only_its_topics),
		T(test_stream_resume_after_eviction_says_gap_first),
		T(test_stream_stream_never_skips_an_evicted_event),
		T(test_stream_cursor_never_moves_backwards),
		T(test_stream_partial_write_resumes_mid_frame),
#undef T
	};

	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
