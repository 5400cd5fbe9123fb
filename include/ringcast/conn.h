/*
 * conn: one client connection and its state machine: reading a request,
 * routing it (DESIGN §4), writing the answer, and for a stream, following a
 * cursor through the ring and the worker's window.  A stream holds no queue:
 * its state is the last seq it was sent and how far into the next frame it
 * got, so an idle subscriber costs a few dozen bytes.
 */
#ifndef RINGCAST_CONN_H
#define RINGCAST_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "ringcast/http.h"

struct worker;

enum conn_state {
	CONN_REQUEST = 0,	/* reading a request */
	CONN_RESPONSE,		/* writing an answer, then maybe keep-alive */
	CONN_STREAM,		/* an SSE stream */
	CONN_LINGER,		/* write side shut; waiting for the peer's EOF */
	CONN_CLOSED,		/* closed; freed after the current event batch */
};

enum conn_flag {
	CONN_ADMIN = 0x01,	/* accepted on the admin listener */
	CONN_CHUNKED = 0x02,	/* HTTP/1.1 stream: each write is a chunk */
	CONN_BLOCKED = 0x04,	/* the socket is full: wait for EPOLLOUT */
	CONN_CLOSE = 0x08,	/* close once the answer is out */
	CONN_FINISH = 0x10,	/* stream: end at the next frame boundary */
	CONN_OVER_CAP = 0x20,	/* accepted over a connection cap */
	CONN_EOF = 0x40,	/* the peer closed its side */
	CONN_SERVED = 0x80,	/* answered a request (keep-alive idle) */
};

/* Request-phase state, freed once a stream is under way. */
struct conn_io {
	struct http_reader	 reader;
	struct buf		 out;		/* answer or control bytes */
	char			*pending;	/* bytes of a pipelined request */
	size_t			 pendinglen;
};

struct conn {
	uint8_t			 kind;		/* WORKER_KIND_CONN */
	uint8_t			 state;
	uint8_t			 flags;
	uint8_t			 ntopics;
	int			 fd;
	uint32_t		 addr_bucket;
	uint32_t		 topic;		/* ntopics == 1 */
	uint32_t		*topics;	/* ntopics > 1 */
	uint64_t		 cursor;	/* last seq fully sent */
	uint64_t		 partial_seq;	/* frame sent in part, or 0 */
	uint32_t		 partial;	/* its bytes already sent */
	uint32_t		 finish_at;	/* retire: 1 + ms after start */
	uint64_t		 last_io_ms;	/* request start / last output */
	struct conn_io		*io;
	TAILQ_ENTRY(conn)	 link;
};

/* Make a connection for an accepted socket; NULL on allocation failure. */
struct conn *conn_new(struct worker *w, int fd, int admin,
	    const struct sockaddr_storage *peer);
/* Close the socket and release what the connection holds; it is unlinked
 * from the worker and freed by conn_reap(), so a stale event is harmless. */
void	conn_close(struct worker *w, struct conn *c);
/* Free the connections closed since the last call. */
void	conn_reap(struct worker *w);
/* Handle epoll events on the connection (it may be closed on return). */
void	conn_on_event(struct worker *w, struct conn *c, uint32_t events);
/* Send a stream what it is owed now: -1 if the conn was closed, 1 if more
 * is owed and the socket still takes it (call again), 0 otherwise. */
int	conn_stream_flush(struct worker *w, struct conn *c);
/* Heartbeat, header timeout and retire deadlines, at each tick. */
void	conn_on_tick(struct worker *w, struct conn *c);
/* Begin ending a stream at its next frame boundary (drain, reload). */
void	conn_stream_finish(struct worker *w, struct conn *c);

#endif
