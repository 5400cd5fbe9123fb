/*
 * conn: one client connection: its socket, its request reader, its output
 * buffer, reading requests (each complete one goes to serve->on_request),
 * writing answers, lingering and closing.  It knows nothing of routes or of
 * delivery; a stream's delivery state (cursor, topics, index links) lives
 * here only because the connection carries it: stream.c owns its meaning.
 */
#ifndef RINGCAST_CONN_H
#define RINGCAST_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "ringcast/http.h"

struct serve;
struct stream_topic;

#define CONN_KIND	2	/* WORKER_KIND_CONN: the first byte */

enum conn_state {
	CONN_REQUEST = 0,	/* reading a request */
	CONN_RESPONSE,		/* writing an answer, then maybe keep-alive */
	CONN_STREAM,		/* an SSE stream */
	CONN_LINGER,		/* write side shut; waiting for the peer's EOF */
	CONN_CLOSED,		/* closed; freed after the current event batch */
	CONN_WAIT,		/* a request awaits an answer from elsewhere
				 * (a cluster publish): not reading */
};

enum conn_flag {
	CONN_ADMIN = 0x0001,	/* accepted on the admin listener */
	CONN_CHUNKED = 0x0002,	/* HTTP/1.1 stream: each write is a chunk */
	CONN_BLOCKED = 0x0004,	/* the socket is full: wait for EPOLLOUT */
	CONN_CLOSE = 0x0008,	/* close once the answer is out */
	CONN_FINISH = 0x0010,	/* stream: end at the next frame boundary */
	CONN_OVER_CAP = 0x0020,	/* accepted over a connection cap */
	CONN_EOF = 0x0040,	/* the peer closed its side */
	CONN_SERVED = 0x0080,	/* answered a request (keep-alive idle) */
	CONN_PENDING = 0x0100,	/* stream: in serve->pending */
	CONN_PROXY_WAIT = 0x0200, /* its PROXY header is still to come */
	CONN_STATS = 0x0400,	/* stream: the admin stats stream (stats.c) */
	CONN_HISTORY = 0x0800,	/* stream: replaying from history */
	CONN_BATCH = 0x1000,	/* CONN_WAIT: for a batch publish */
};

/* Request-phase state, freed once a stream is under way. */
struct conn_io {
	struct http_reader	 reader;
	struct buf		 out;		/* answer or control bytes */
	char			*pending;	/* bytes of a pipelined request */
	size_t			 pendinglen;
	/* The peer (or what its PROXY header named), and the client the
	 * current request is charged to (X-Forwarded-For, if believed). */
	struct sockaddr_storage	 peer;
	struct sockaddr_storage	 client;
};

/* A stream's place among the streams of one topic (stream.c's index). */
struct conn_member {
	struct conn			*conn;
	struct stream_topic		*topic;
	TAILQ_ENTRY(conn_member)	 link;
};

struct conn {
	uint8_t			 kind;		/* CONN_KIND */
	uint8_t			 state;
	uint8_t			 ntopics;
	uint16_t		 flags;
	int			 fd;
	uint32_t		 addr_bucket;
	uint32_t		 topic;		/* ntopics == 1 */
	uint32_t		 expires;	/* stream: the second of
						 * s->now_ms its JWT ends, or 0 */
	uint32_t		*topics;	/* ntopics > 1, sorted */
	struct conn_member	 member;	/* the first topic's link */
	struct conn_member	*members;	/* the others' (ntopics - 1) */
	uint64_t		 cursor;	/* last seq sent or skipped */
	uint64_t		 partial_seq;	/* frame sent in part, or 0 */
	uint32_t		 partial;	/* its bytes already sent */
	uint32_t		 finish_at;	/* retire: 1 + ms after start */
	uint64_t		 history_ack;	/* history replay: seqs up to here
						 * were said lost (a gap) */
	uint64_t		 last_io_ms;	/* request start / last output */
	struct conn_io		*io;
	TAILQ_ENTRY(conn)	 link;
};

/* Make a connection for an accepted socket, on serve->requests; NULL on
 * allocation failure (the socket is the caller's to close then). */
struct conn *conn_new(struct serve *s, int fd, int admin,
	    const struct sockaddr_storage *peer);
/* Make a stream connection, on serve->streams, for a socket another worker
 * handed over (stream_adopt): no request state, counted as a stream of
 * addr_bucket.  NULL on allocation failure (the socket stays the caller's). */
struct conn *conn_adopt(struct serve *s, int fd, uint16_t flags,
	    uint32_t addr_bucket);
/* On a proxy_protocol listener: the peer must be a trusted proxy and its
 * PROXY header comes first; 0, or -1 when the connection was closed (an
 * untrusted peer). */
int	conn_expect_proxy(struct serve *s, struct conn *c);
/* Close the socket and release what the connection holds; it moves to
 * serve->closed and is freed by conn_reap(), so a stale event is harmless.
 * A stream must have left the topic index first (stream_close does). */
void	conn_close(struct serve *s, struct conn *c);
/* Free the connections closed since the last call. */
void	conn_reap(struct serve *s);
/* Handle epoll events on a connection that is not a stream (it may be
 * closed or have become a stream on return). */
void	conn_on_event(struct serve *s, struct conn *c, uint32_t events);
/* Header, keep-alive and linger deadlines of a non-stream, at each tick. */
void	conn_on_tick(struct serve *s, struct conn *c);
/* Read and discard what a stream or lingering peer sends: 0, or -1 when
 * the peer is gone (EOF or error; the caller closes). */
int	conn_discard_input(struct serve *s, struct conn *c);

/* Answer the current request: status, extra header lines (each ending in
 * CRLF, or NULL), a content type (NULL: text/plain when there is a body)
 * and a body.  Keeps the connection unless told or asked to close. */
void	conn_respond(struct serve *s, struct conn *c, int status,
	    const char *extra, const char *type, const char *body,
	    size_t bodylen);
/* A short text answer: "404 Not Found: unknown topic 'x'". */
void	conn_error(struct serve *s, struct conn *c, int status,
	    const char *extra, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* Append the CORS headers the request's Origin earns to b. */
void	conn_cors_headers(struct serve *s, const struct conn *c,
	    struct buf *b);
/* Write out io->out; 0 when all is out, 1 when the socket is full
 * (CONN_BLOCKED set), -1 on a write error. */
int	conn_flush_out(struct serve *s, struct conn *c);
/* Send control bytes at a frame boundary, framed as a chunk on a chunked
 * stream, with the chunked terminator if terminate.  Written from the
 * stack; only what the socket does not take is kept (io->out).  0 or -1. */
int	conn_send_control(struct serve *s, struct conn *c, const char *text,
	    size_t len, int terminate);
/* Shut the write side and close once the peer is done. */
void	conn_linger(struct serve *s, struct conn *c);
/* Park the current request (CONN_WAIT) until conn_resume: no reading,
 * no timeouts; a peer that hangs up closes it (serve->on_wait_close). */
void	conn_wait(struct serve *s, struct conn *c);
/* After a parked request was answered (conn_respond): go on reading the
 * requests that came meanwhile. */
void	conn_resume(struct serve *s, struct conn *c);
/* Free the request-phase state once nothing is left in it. */
void	conn_io_release(struct conn *c);

#endif
