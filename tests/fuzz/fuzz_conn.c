/*
 * fuzz_conn: the connection state machine without a network.  One worker is
 * built in-process (a ring in a temporary file, a catalog in a temporary
 * directory with a few topics, the shared metrics), and each input becomes
 * the bytes a client sends on one end of a socketpair(2); conn_on_event runs
 * on the other end as the worker's epoll loop would.  The first byte sets
 * the worker's situation (draining, admin listener, tokens required...).
 * Checks: nothing crashes or leaks, what the server writes parses as HTTP/1.1
 * responses, and once the connection is gone every gauge is back to zero.
 */
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/stream.h"
#include "fuzz.h"

#define OUT_MAX		(1024 * 1024)
#define BASE_MS		1000000

static struct config	 conf;
static struct serve	 serve;
static char		*out;		/* what the client read */
static size_t		 outlen;

static void
setup(void)
{
	struct serve		*w = &serve;
	struct catalog_topic	 t;
	struct ring		*ring;
	struct metrics		*shm;
	char			 err[512] = "out of memory";

	log_init("stderr", LOG_LEVEL_ERROR);
	config_defaults(&conf);
	snprintf(conf.ring_path, sizeof(conf.ring_path), "%s/ring",
	    fuzz_tmpdir());
	snprintf(conf.catalog_path, sizeof(conf.catalog_path), "%s/catalog",
	    fuzz_tmpdir());
	conf.ring_size = 256 * 1024;
	conf.ring_slots = 256;
	conf.max_event_bytes = 16 * 1024;
	conf.max_header_bytes = 4096;
	conf.catalog_map_size = 16 * 1024 * 1024;
	conf.allow_any_origin = 1;

	if (ring_open(&ring, conf.ring_path, conf.ring_size,
	    conf.ring_slots, RING_CREATE, 0, err, sizeof(err)) == -1 ||
	    (shm = metrics_create(1)) == NULL ||
	    serve_init(w, &conf, ring, shm, 0) == -1 ||
	    catalog_open(&w->cat, conf.catalog_path, conf.catalog_map_size,
	    CATALOG_CREATE, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	w->now_ms = BASE_MS;
	catalog_topic_add(w->cat, "a", 0, "", &t);
	catalog_topic_add(w->cat, "b", 0, "", &t);
	catalog_topic_add(w->cat, "x/y:z", 0, "", &t);
	catalog_topic_add(w->cat, "priv", CATALOG_TOPIC_PRIVATE, "", &t);
	if ((out = malloc(OUT_MAX)) == NULL)
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

static int
conn_alive(struct serve *w, struct conn *c)
{
	struct conn	*x;

	TAILQ_FOREACH(x, &w->requests, link)
		if (x == c)
			return 1;
	TAILQ_FOREACH(x, &w->streams, link)
		if (x == c)
			return 1;
	return 0;
}

/* Read what the server wrote so far. */
static void
client_read(int fd)
{
	ssize_t	 n;

	for (;;) {
		if (outlen == OUT_MAX) {
			char	 sink[4096];

			n = recv(fd, sink, sizeof(sink), 0);
		} else
			n = recv(fd, out + outlen, OUT_MAX - outlen, 0);
		if (n <= 0)
			return;
		if (outlen < OUT_MAX)
			outlen += (size_t)n;
	}
}

/* Events go where the worker loop sends them. */
static void
on_event(struct serve *w, struct conn *c, uint32_t events)
{
	if (c->state == CONN_STREAM)
		stream_on_event(w, c, events);
	else
		conn_on_event(w, c, events);
}

static void
on_tick(struct serve *w, struct conn *c)
{
	if (c->state == CONN_STREAM)
		stream_on_tick(w, c);
	else
		on_tick(w, c);
}

/* Everything the server wrote must parse as HTTP/1.1 responses. */
static int	responses;

static int
on_response_begin(http_parser *p)
{
	(void)p;
	responses++;
	return 0;
}

static void
check_output(int head_seen)
{
	http_parser_settings	 settings;
	http_parser		 p;
	size_t			 n;

	if (outlen == 0 || outlen == OUT_MAX)
		return;
	FUZZ_CHECK(outlen >= 9 && memcmp(out, "HTTP/1.1 ", 9) == 0);
	/* An answer to HEAD has a Content-Length and no body: a parser
	 * that did not see the request cannot follow. */
	if (head_seen)
		return;
	memset(&settings, 0, sizeof(settings));
	settings.on_message_begin = on_response_begin;
	http_parser_init(&p, HTTP_RESPONSE);
	responses = 0;
	n = http_parser_execute(&p, &settings, out, outlen);
	if (n != outlen || HTTP_PARSER_ERRNO(&p) != HPE_OK) {
		fprintf(stderr, "bad response at %zu: %s\n%.*s\n", n,
		    http_errno_description(HTTP_PARSER_ERRNO(&p)),
		    (int)(outlen > 2000 ? 2000 : outlen), out);
		FUZZ_CHECK(!"the server's output parses as HTTP/1.1");
	}
	FUZZ_CHECK(p.http_major == 1 && p.http_minor == 1);
	FUZZ_CHECK(responses >= 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serve		*w = &serve;
	struct sockaddr_storage	 peer;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&peer;
	struct conn		*c;
	int			 sv[2], i, k, flags, head_seen;

	if (size < 1)
		return 0;
	if (w->ring == NULL)
		setup();
	flags = data[0];
	data++;
	size--;
	conf.require_token = (flags & 0x01) != 0;
	conf.auto_create_topics = (flags & 0x02) != 0;
	conf.demo = (flags & 0x04) != 0;
	w->draining = (flags & 0x08) != 0;
	w->retiring = (flags & 0x10) != 0 && !w->draining;
	conf.max_connections = (flags & 0x20) ? 1 : 0;
	head_seen = memmem(data, size, "HEAD", 4) != NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		return 0;
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	w->now_ms = BASE_MS;
	if ((c = conn_new(w, sv[1], (flags & 0x40) != 0, &peer)) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	if (size > 0 && send(sv[0], data, size, MSG_NOSIGNAL) !=
	    (ssize_t)size) {
		conn_close(w, c);
		close(sv[0]);
		return 0;
	}
	/* Without 0x80 the client keeps its side open: timeouts decide. */
	if (!(flags & 0x80))
		shutdown(sv[0], SHUT_WR);
	outlen = 0;
	for (i = 0; i < 8 && conn_alive(w, c); i++) {
		on_event(w, c, i == 0 ? EPOLLIN | EPOLLOUT :
		    EPOLLIN | EPOLLOUT | EPOLLRDHUP);
		client_read(sv[0]);
		if (conn_alive(w, c))
			stream_fanout(w);
		client_read(sv[0]);
	}
	/* Time passes: heartbeats, header timeouts, lingering ends. */
	for (k = 1; k <= 3 && conn_alive(w, c); k++) {
		w->now_ms = BASE_MS + (uint64_t)k * 61000;
		on_tick(w, c);
		client_read(sv[0]);
	}
	if (conn_alive(w, c))
		conn_close(w, c);
	/* A stale event for a closed connection, as a later event of the
	 * same epoll batch would be: harmless until the worker reaps. */
	on_event(w, c, EPOLLIN | EPOLLOUT | EPOLLHUP);
	conn_reap(w);
	client_read(sv[0]);
	close(sv[0]);

	/* Every gauge is back where it started. */
	FUZZ_CHECK(w->nconns == 0 && w->nstreams == 0);
	FUZZ_CHECK(TAILQ_EMPTY(&w->requests) && TAILQ_EMPTY(&w->streams));
	for (k = 0; k < METRICS_CONN_KINDS; k++)
		FUZZ_CHECK(w->slot->conns[k] == 0);
	FUZZ_CHECK(metrics_addr_total(w->shm,
	    metrics_addr_bucket(&peer)) == 0);
	check_output(head_seen);
	return 0;
}
