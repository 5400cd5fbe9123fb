/*
 * conn: a connection from accept to close.  Requests are read with the http
 * module and routed as in DESIGN §4.  A stream's whole state is a cursor (the
 * last seq sent) plus how far into the next frame a short write got; frames
 * come from the worker's window, or from the ring for a subscriber behind
 * it.  Either way every frame is a validated copy, and both paths yield the
 * same bytes for a seq, so a stream can move between them mid-frame.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/sse.h"
#include "ringcast/worker.h"

#define CONN_STREAM_TOPICS_MAX	32
#define CONN_IOV_MAX		64
#define CONN_WRITE_MAX		(256 * 1024)
#define CONN_KEEPALIVE_MS	60000
#define CONN_BODY_TIMEOUT_MS	60000
#define CONN_LINGER_MS		2000
#define CONN_STUCK_MS		30000
#define CONN_FULL_RETRY_MS	5000

static void	conn_write_out(struct worker *, struct conn *);
static void	conn_read_request(struct worker *, struct conn *);

static enum metrics_conn_kind
conn_kind(const struct conn *c)
{
	if (c->state == CONN_STREAM)
		return METRICS_CONN_STREAM;
	return (c->flags & CONN_ADMIN) ? METRICS_CONN_ADMIN :
	    METRICS_CONN_REQUEST;
}

static struct conn_io *
conn_io_new(const struct config *conf)
{
	struct conn_io	*io = calloc(1, sizeof(*io));

	if (io != NULL)
		http_reader_init(&io->reader, conf->max_header_bytes,
		    conf->max_event_bytes);
	return io;
}

static void
conn_io_free(struct conn_io *io)
{
	if (io == NULL)
		return;
	http_reader_free(&io->reader);
	buf_free(&io->out);
	free(io->pending);
	free(io);
}

struct conn *
conn_new(struct worker *w, int fd, int admin,
    const struct sockaddr_storage *peer)
{
	const struct config	*conf = w->conf;
	struct conn		*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->io = conn_io_new(conf)) == NULL) {
		free(c);
		return NULL;
	}
	c->kind = WORKER_KIND_CONN;
	c->fd = fd;
	c->state = CONN_REQUEST;
	c->flags = admin ? CONN_ADMIN : 0;
	c->addr_bucket = metrics_addr_bucket(peer);
	c->last_io_ms = w->now_ms;
	/* Caps are checked before this connection is counted. */
	if (!admin && conf->max_connections > 0 &&
	    metrics_conns_total(w->shm) >= conf->max_connections)
		c->flags |= CONN_OVER_CAP;
	if (!admin && conf->max_connections_per_address > 0 &&
	    metrics_addr_total(w->shm, c->addr_bucket) >=
	    conf->max_connections_per_address)
		c->flags |= CONN_OVER_CAP;
	metrics_conn_add(w->slot, conn_kind(c), 1);
	metrics_addr_add(w->slot, c->addr_bucket, 1);
	TAILQ_INSERT_TAIL(&w->requests, c, link);
	w->nconns++;
	return c;
}

void
conn_close(struct worker *w, struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_STREAM) {
		TAILQ_REMOVE(&w->streams, c, link);
		w->nstreams--;
	} else
		TAILQ_REMOVE(&w->requests, c, link);
	metrics_conn_add(w->slot, conn_kind(c), -1);
	metrics_addr_add(w->slot, c->addr_bucket, -1);
	/* close(2) also removes the fd from the epoll set. */
	close(c->fd);
	conn_io_free(c->io);
	c->io = NULL;
	free(c->topics);
	c->topics = NULL;
	/* Freed by the worker after this batch of events: a later event of
	 * the same batch may still name this connection. */
	c->state = CONN_CLOSED;
	TAILQ_INSERT_TAIL(&w->closed, c, link);
	w->nconns--;
}

void
conn_reap(struct worker *w)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&w->closed)) != NULL) {
		TAILQ_REMOVE(&w->closed, c, link);
		free(c);
	}
}

/* Shut our side and wait briefly for the peer's EOF, so an unread request
 * body cannot turn our last bytes into a reset. */
static void
conn_linger(struct worker *w, struct conn *c)
{
	if (c->state == CONN_STREAM) {
		/* A stream's peer sends nothing after its request, so there
		 * is nothing to wait for: FIN, then close. */
		shutdown(c->fd, SHUT_WR);
		conn_close(w, c);
		return;
	}
	c->state = CONN_LINGER;
	c->last_io_ms = w->now_ms;
	if (shutdown(c->fd, SHUT_WR) == -1 || (c->flags & CONN_EOF)) {
		conn_close(w, c);
		return;
	}
	/* The peer may have closed already: look now, epoll is edge-
	 * triggered and will not tell again. */
	conn_on_event(w, c, EPOLLIN);
}

/* Write as much of io->out as the socket takes; 0 when all is out, 1 when
 * the socket is full, -1 on a write error. */
static int
conn_flush_out(struct worker *w, struct conn *c)
{
	struct buf	*out = &c->io->out;
	ssize_t		 n;

	while (out->off < out->len) {
		n = send(c->fd, out->data + out->off, out->len - out->off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->flags |= CONN_BLOCKED;
			return 1;
		}
		if (n == -1)
			return -1;
		out->off += (size_t)n;
		c->last_io_ms = w->now_ms;
	}
	out->off = out->len = 0;
	return 0;
}

/* Append the CORS headers an allowed Origin earns. */
static void
conn_cors_headers(struct worker *w, struct http_request *req, struct buf *b)
{
	if (!(req->seen & HTTP_SEEN_ORIGIN) ||
	    (req->overlong & HTTP_SEEN_ORIGIN))
		return;
	if (!config_origin_allowed(w->conf, req->origin, strlen(req->origin)))
		return;
	buf_printf(b, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n",
	    req->origin);
}

/*
 * Answer a request: status, extra header lines (each ending in CRLF, or
 * NULL), and a body.  Keeps the connection unless told or asked to close.
 */
static void
conn_respond(struct worker *w, struct conn *c, int status, const char *extra,
    const char *type, const char *body, size_t bodylen)
{
	struct http_request	*req = &c->io->reader.req;
	struct buf		*out = &c->io->out;
	int			 close_after;

	if (w->draining || w->retiring || !req->keep_alive ||
	    c->io->reader.state == HTTP_ERROR)
		c->flags |= CONN_CLOSE;
	close_after = (c->flags & CONN_CLOSE) != 0;
	if (status >= 500)
		metrics_add(w->slot, METRICS_ERRORS_5XX, 1);
	else if (status >= 400)
		metrics_add(w->slot, METRICS_ERRORS_4XX, 1);
	buf_printf(out, "HTTP/1.1 %d %s\r\nServer: ringcast\r\n"
	    "Content-Length: %zu\r\n", status, http_status_text(status),
	    bodylen);
	if (bodylen > 0 || type != NULL)
		buf_printf(out, "Content-Type: %s\r\n",
		    type != NULL ? type : "text/plain; charset=utf-8");
	if (close_after)
		buf_printf(out, "Connection: close\r\n");
	else if (req->minor == 0)
		buf_printf(out, "Connection: keep-alive\r\n");
	conn_cors_headers(w, req, out);
	if (extra != NULL)
		buf_printf(out, "%s", extra);
	buf_append(out, "\r\n", 2);
	if (bodylen > 0 && req->method != HTTP_HEAD)
		buf_append(out, body, bodylen);
	c->state = CONN_RESPONSE;
	conn_write_out(w, c);
}

/* A short text answer: "404 Not Found: unknown topic 'x'". */
static void
conn_error(struct worker *w, struct conn *c, int status, const char *extra,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
conn_error(struct worker *w, struct conn *c, int status, const char *extra,
    const char *fmt, ...)
{
	char	 msg[512];
	int	 n;
	va_list	 ap;

	n = snprintf(msg, sizeof(msg), "%d %s: ", status,
	    http_status_text(status));
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strlcat(msg, "\n", sizeof(msg));
	log_debug("fd %d: %d: %s", c->fd, status, msg + n);
	conn_respond(w, c, status, extra, NULL, msg, strlen(msg));
}

/* Send control bytes (retry hints, heartbeats, a gap event, the chunked
 * terminator) on a stream at a frame boundary, framed as a chunk when the
 * stream is chunked.  Written straight from the stack; only what the socket
 * does not take is kept, in io->out, so an idle stream holds no buffer. */
static int
conn_stream_control(struct worker *w, struct conn *c, const char *text,
    size_t len, int terminate)
{
	char	 bytes[512];
	size_t	 n = 0;
	ssize_t	 sent = 0;

	if (len > 0 && (c->flags & CONN_CHUNKED))
		n = (size_t)snprintf(bytes, sizeof(bytes), "%zx\r\n", len);
	if (n + len + 7 > sizeof(bytes))
		return -1;
	memcpy(bytes + n, text, len);
	n += len;
	if (len > 0 && (c->flags & CONN_CHUNKED)) {
		memcpy(bytes + n, "\r\n", 2);
		n += 2;
	}
	if (terminate && (c->flags & CONN_CHUNKED)) {
		memcpy(bytes + n, "0\r\n\r\n", 5);
		n += 5;
	}
	if ((c->io == NULL || c->io->out.len == 0) &&
	    !(c->flags & CONN_BLOCKED)) {
		do
			sent = send(c->fd, bytes, n, MSG_NOSIGNAL);
		while (sent == -1 && errno == EINTR);
		if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (sent == -1)
			sent = 0;
		if ((size_t)sent == n) {
			c->last_io_ms = w->now_ms;
			return 0;
		}
		c->flags |= CONN_BLOCKED;
	}
	if (c->io == NULL && (c->io = calloc(1, sizeof(*c->io))) == NULL)
		return -1;
	return buf_append(&c->io->out, bytes + sent, n - (size_t)sent);
}

/* The retry hint a closing stream gets: the configured value plus up to as
 * much again of jitter, so reconnects spread out. */
static uint64_t
conn_retry_jitter(struct worker *w, uint64_t base)
{
	(void)w;
	return base + arc4random_uniform((uint32_t)(base > 0 ? base : 1));
}

/* Start the response of an SSE stream: headers only. */
static void
conn_stream_headers(struct worker *w, struct conn *c)
{
	struct http_request	*req = &c->io->reader.req;
	struct buf		*out = &c->io->out;

	buf_printf(out, "HTTP/1.1 200 OK\r\nServer: ringcast\r\n"
	    "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	if (req->minor >= 1) {
		buf_printf(out, "Transfer-Encoding: chunked\r\n");
		c->flags |= CONN_CHUNKED;
	} else
		buf_printf(out, "Connection: close\r\n");
	conn_cors_headers(w, req, out);
	buf_append(out, "\r\n", 2);
}

/* Turn the connection into a stream (it leaves the request list). */
static void
conn_become_stream(struct worker *w, struct conn *c)
{
	metrics_conn_add(w->slot, conn_kind(c), -1);
	TAILQ_REMOVE(&w->requests, c, link);
	c->state = CONN_STREAM;
	TAILQ_INSERT_TAIL(&w->streams, c, link);
	w->nstreams++;
	metrics_conn_add(w->slot, METRICS_CONN_STREAM, 1);
	/* The request is done with: keep only what the stream needs. */
	http_reader_free(&c->io->reader);
	free(c->io->pending);
	c->io->pending = NULL;
	c->io->pendinglen = 0;
	c->last_io_ms = w->now_ms;
}

/*
 * Transient trouble on a stream (server full, draining, catalog): answer 200
 * with a retry: hint, a comment naming the reason, and a clean end, since
 * EventSource gives up for good on any other status.
 */
static void
conn_soft_reject(struct worker *w, struct conn *c, uint64_t retry_ms,
    const char *reason)
{
	char	 text[256];
	int	 n;

	metrics_add(w->slot, METRICS_SOFT_REJECTS, 1);
	log_debug("fd %d: soft reject: %s", c->fd, reason);
	conn_stream_headers(w, c);
	conn_become_stream(w, c);
	n = snprintf(text, sizeof(text), "retry: %llu\n: %s\n\n",
	    (unsigned long long)conn_retry_jitter(w, retry_ms), reason);
	c->flags |= CONN_FINISH;
	if (conn_stream_control(w, c, text, (size_t)n, 1) == -1) {
		conn_close(w, c);
		return;
	}
	/* Flushes the head and the hint, then ends the stream. */
	conn_stream_flush(w, c);
}

static int
conn_has_topic(const struct conn *c, uint32_t topic)
{
	uint8_t	 i;

	if (c->ntopics == 1)
		return c->topic == topic;
	for (i = 0; i < c->ntopics; i++)
		if (c->topics[i] == topic)
			return 1;
	return 0;
}

static const uint32_t *
conn_topic_list(const struct conn *c)
{
	return c->ntopics == 1 ? &c->topic : c->topics;
}

/* Was an event of one of the stream's topics evicted after seq? */
static int
conn_lost_after(struct worker *w, const struct conn *c, uint64_t seq)
{
	const uint32_t	*topics = conn_topic_list(c);
	uint8_t		 i;

	for (i = 0; i < c->ntopics; i++)
		if (ring_topic_evicted(w->ring, topics[i]) > seq)
			return 1;
	return 0;
}

/* Account for n bytes written of the frames in iov order. */
static void
conn_stream_advance(struct worker *w, struct conn *c, const uint64_t *seqs,
    const size_t *lens, size_t count, size_t n, uint64_t scanned_to)
{
	size_t	 i;

	metrics_add(w->slot, METRICS_BYTES_DELIVERED, n);
	for (i = 0; i < count && n >= lens[i]; i++)
		n -= lens[i];
	/* One shared-counter update per write, not per frame. */
	if (i > 0) {
		c->cursor = seqs[i - 1];
		c->partial = 0;
		c->partial_seq = 0;
		metrics_add(w->slot, METRICS_FRAMES_DELIVERED, i);
	}
	if (i < count) {
		if (n > 0) {
			if (c->partial_seq != seqs[i])
				c->partial = 0;
			c->partial_seq = seqs[i];
			c->partial += (uint32_t)n;
			/* Nothing of ours lies between: the cursor can stand
			 * just before the frame, whichever path sends it. */
			c->cursor = seqs[i] - 1;
		}
		return;
	}
	/* Everything went: the frames skipped after the last are not ours. */
	if (scanned_to > c->cursor)
		c->cursor = scanned_to;
}

/* Move the cursor to seq if that is forward; a cursor never moves back,
 * or the client would be sent again what it has (a resume can put it past
 * a window that has not caught up with the ring yet).  1 if it moved. */
static int
conn_cursor_forward(struct conn *c, uint64_t seq)
{
	if (seq <= c->cursor)
		return 0;
	c->cursor = seq;
	return 1;
}

/* writev that reports a full socket as 0 bytes and sets CONN_BLOCKED. */
static ssize_t
conn_writev(struct conn *c, struct iovec *iov, int iovcnt, size_t total)
{
	ssize_t	 n;

	do
		n = writev(c->fd, iov, iovcnt);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->flags |= CONN_BLOCKED;
		return 0;
	}
	if (n >= 0 && (size_t)n < total)
		c->flags |= CONN_BLOCKED;
	return n;
}

/* Send frames held by the window; 1 if something was sent or skipped, 0 if
 * there was nothing, -1 on a write error. */
static int
conn_send_from_window(struct worker *w, struct conn *c)
{
	const struct window		*win = &w->window;
	const struct window_entry	*e;
	struct iovec			 iov[CONN_IOV_MAX];
	uint64_t			 seqs[CONN_IOV_MAX], seq;
	size_t				 lens[CONN_IOV_MAX], total = 0;
	int				 count = 0, chunked;
	uint32_t			 len, skip;
	const char			*p;
	ssize_t				 n;

	chunked = (c->flags & CONN_CHUNKED) != 0;
	if (c->ntopics == 1 && c->partial_seq == 0 &&
	    !window_may_have(win, c->topic, c->cursor)) {
		conn_cursor_forward(c, win->last);
		return 0;
	}
	for (seq = c->cursor + 1; seq <= win->last; seq++) {
		if (count == CONN_IOV_MAX || total >= CONN_WRITE_MAX)
			break;
		if ((e = window_get(win, seq)) == NULL)
			break;
		if (!conn_has_topic(c, e->topic))
			continue;
		p = window_bytes(win, e, chunked, &len);
		skip = seq == c->partial_seq ? c->partial : 0;
		iov[count].iov_base = (void *)(p + skip);
		iov[count].iov_len = len - skip;
		seqs[count] = seq;
		lens[count] = len - skip;
		total += len - skip;
		count++;
	}
	if (count == 0)
		return conn_cursor_forward(c, seq - 1);
	if (c->partial_seq != 0 && seqs[0] != c->partial_seq) {
		/* The frame we were in the middle of is gone. */
		return -1;
	}
	if ((n = conn_writev(c, iov, count, total)) == -1)
		return -1;
	if (n > 0)
		c->last_io_ms = w->now_ms;
	conn_stream_advance(w, c, seqs, lens, (size_t)count, (size_t)n,
	    seq - 1);
	return 1;
}

/* Send frames older than the window straight from the ring (replay, or a
 * subscriber that fell behind); same return values as above, plus 2 when
 * the stream lost events and must end. */
static int
conn_send_from_ring(struct worker *w, struct conn *c)
{
	struct ring_frame	 frame;
	enum ring_status	 st;
	struct iovec		 iov[CONN_IOV_MAX];
	uint64_t		 seqs[CONN_IOV_MAX], after = c->cursor;
	uint64_t		 oldest;
	size_t			 lens[CONN_IOV_MAX], pos = 0, hdrlen, skip;
	size_t			 total = 0, room;
	int			 count = 0, chunked, tries = 0;
	char			 hdr[16];
	ssize_t			 n;

	chunked = (c->flags & CONN_CHUNKED) != 0;
	while (count < CONN_IOV_MAX && pos < CONN_WRITE_MAX && tries < 64) {
		st = ring_next(w->ring, after, conn_topic_list(c), c->ntopics,
		    &frame);
		if (st == RING_NOT_YET) {
			/* None up to frame.seq is ours: skip them. */
			if (count == 0 && c->partial_seq == 0 &&
			    frame.seq > after)
				after = frame.seq;
			break;
		}
		if (st == RING_EVICTED) {
			if (count > 0)
				break;
			/* oldest first: an eviction after this read shows
			 * in the losses below, or in the next ring_next, and
			 * is never skipped unseen. */
			oldest = ring_oldest(w->ring);
			if (c->partial_seq != 0 ||
			    conn_lost_after(w, c, c->cursor))
				return 2;
			/* Only other topics' events went: skip them. */
			after = oldest - 1;
			tries++;
			continue;
		}
		if (w->window.first <= w->window.last &&
		    frame.seq >= w->window.first) {
			/* The window holds the rest: hand over, skipping the
			 * other topics' frames up to it. */
			if (count == 0 && c->partial_seq == 0) {
				conn_cursor_forward(c, frame.seq - 1);
				return 1;
			}
			break;
		}
		hdrlen = chunked ? window_chunk_header(hdr, frame.len) : 0;
		room = w->scratchsize - pos;
		if (hdrlen + frame.len + 2 > room)
			break;
		st = ring_read(w->ring, frame.seq, w->scratch + pos + hdrlen,
		    room - hdrlen - 2, &frame);
		if (st != RING_OK) {
			tries++;
			continue;
		}
		memcpy(w->scratch + pos, hdr, hdrlen);
		if (chunked)
			memcpy(w->scratch + pos + hdrlen + frame.len, "\r\n", 2);
		skip = frame.seq == c->partial_seq ? c->partial : 0;
		if (count == 0 && c->partial_seq != 0 &&
		    frame.seq != c->partial_seq)
			return 2;
		iov[count].iov_base = w->scratch + pos + skip;
		lens[count] = hdrlen + frame.len + (chunked ? 2 : 0) - skip;
		iov[count].iov_len = lens[count];
		seqs[count] = frame.seq;
		total += lens[count];
		pos += hdrlen + frame.len + (chunked ? 2 : 0);
		after = frame.seq;
		count++;
	}
	if (count == 0)
		return c->partial_seq == 0 && conn_cursor_forward(c, after);
	if ((n = conn_writev(c, iov, count, total)) == -1)
		return -1;
	if (n > 0)
		c->last_io_ms = w->now_ms;
	conn_stream_advance(w, c, seqs, lens, (size_t)count, (size_t)n,
	    seqs[count - 1]);
	return 1;
}

/* End a stream at a frame boundary: a retry hint with jitter, the chunked
 * terminator, then a lingering close. */
static void
conn_stream_end(struct worker *w, struct conn *c)
{
	char	 text[64];
	int	 n;

	n = snprintf(text, sizeof(text), "retry: %llu\n\n",
	    (unsigned long long)conn_retry_jitter(w, w->conf->retry_ms));
	c->flags |= CONN_FINISH;
	if (c->io == NULL || c->io->out.len == 0) {
		if (conn_stream_control(w, c, text, (size_t)n, 1) == -1) {
			conn_close(w, c);
			return;
		}
	}
	if (c->flags & CONN_BLOCKED)
		return;
	if (w->draining)
		w->drained++;
	conn_linger(w, c);
}

int
conn_stream_flush(struct worker *w, struct conn *c)
{
	int	 rc, rounds;

	if (c->io != NULL && c->io->out.len > 0) {
		if (conn_flush_out(w, c) == -1) {
			conn_close(w, c);
			return -1;
		}
		if (c->flags & CONN_BLOCKED)
			return 0;
		if (c->flags & CONN_FINISH) {
			if (w->draining)
				w->drained++;
			conn_linger(w, c);
			return -1;
		}
	}
	if (c->io != NULL && c->io->out.len == 0) {
		conn_io_free(c->io);
		c->io = NULL;
	}
	for (rounds = 0; rounds < 16 && !(c->flags & CONN_BLOCKED); rounds++) {
		if (w->window.first <= w->window.last &&
		    c->cursor + 1 >= w->window.first &&
		    (c->partial_seq == 0 || c->partial_seq >= w->window.first))
			rc = conn_send_from_window(w, c);
		else
			rc = conn_send_from_ring(w, c);
		if (rc == -1) {
			conn_close(w, c);
			return -1;
		}
		if (rc == 2) {
			metrics_add(w->slot, METRICS_SLOW_CLOSES, 1);
			log_debug("fd %d: slow consumer at %llu: closing",
			    c->fd, (unsigned long long)c->cursor);
			if (c->partial_seq != 0) {
				conn_close(w, c);
				return -1;
			}
			conn_stream_end(w, c);
			return -1;
		}
		if (rc == 0)
			break;
	}
	if ((c->flags & CONN_FINISH) && c->partial_seq == 0 &&
	    !(c->flags & CONN_BLOCKED)) {
		conn_stream_end(w, c);
		return -1;
	}
	/* Out of rounds with the socket still writable: epoll will not say
	 * so again, so the worker must come back, whoever called us. */
	if (rounds == 16 && !(c->flags & CONN_BLOCKED)) {
		w->stream_more = 1;
		return 1;
	}
	return 0;
}

void
conn_stream_finish(struct worker *w, struct conn *c)
{
	if (c->state != CONN_STREAM)
		return;
	c->flags |= CONN_FINISH;
	if (!(c->flags & CONN_BLOCKED))
		conn_stream_flush(w, c);
}

/* Resolve and authorise the topics of a stream request; on failure the
 * connection has been answered and -1 is returned. */
static int
conn_stream_topics(struct worker *w, struct conn *c, char **names,
    size_t nnames, const char *token, uint32_t *ids)
{
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	size_t			 i;

	for (i = 0; i < nnames; i++) {
		if (worker_catalog(w) == -1) {
			conn_soft_reject(w, c, w->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
		res = catalog_topic_lookup(w->cat, names[i], strlen(names[i]),
		    &topic);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(w, c, 404, NULL, "unknown topic '%s'",
			    names[i]);
			return -1;
		}
		if (res != CATALOG_FOUND) {
			log_warnx("topic %s: %s", names[i],
			    catalog_error(w->cat));
			conn_soft_reject(w, c, w->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
		ids[i] = topic.id;
		if (!(topic.flags & CATALOG_TOPIC_PRIVATE))
			continue;
		if (token == NULL) {
			conn_error(w, c, 401, "WWW-Authenticate: Bearer "
			    "realm=\"ringcast\"\r\n", "topic '%s' needs a "
			    "subscribe token", names[i]);
			return -1;
		}
		res = catalog_token_check(w->cat, token, strlen(token),
		    topic.id, CATALOG_RIGHT_SUBSCRIBE);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(w, c, 403, NULL, "the token may not "
			    "subscribe to '%s'", names[i]);
			return -1;
		}
		if (res != CATALOG_FOUND) {
			conn_soft_reject(w, c, w->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
	}
	return 0;
}

/* The bearer token of Authorization, or NULL. */
static const char *
conn_bearer(const struct http_request *req)
{
	if (!(req->seen & HTTP_SEEN_AUTH) || (req->overlong & HTTP_SEEN_AUTH))
		return NULL;
	if (strncasecmp(req->auth, "Bearer ", 7) != 0)
		return NULL;
	return req->auth + 7;
}

/* Where a stream starts, and whether to say a gap first. */
static void
conn_stream_resume(struct worker *w, struct conn *c, const char *resume,
    int has_resume)
{
	uint64_t	 committed, oldest, last;
	int		 gap = 0;

	committed = ring_committed(w->ring);
	oldest = ring_oldest(w->ring);
	if (!has_resume) {
		c->cursor = committed;
		return;
	}
	metrics_add(w->slot, METRICS_REPLAYS, 1);
	if (sse_parse_event_id(resume, strlen(resume), &last) == -1 ||
	    last > committed) {
		/* Malformed, or from another ring: replay what is kept. */
		gap = 1;
		c->cursor = oldest - 1;
	} else if (last + 1 < oldest) {
		gap = conn_lost_after(w, c, last);
		c->cursor = oldest - 1;
	} else
		c->cursor = last;
	if (gap) {
		struct ring_frame	 frame;
		uint64_t		 next = committed + 1;
		char			 text[96];
		int			 n;

		if (ring_next(w->ring, c->cursor, conn_topic_list(c),
		    c->ntopics, &frame) == RING_OK)
			next = frame.seq;
		n = snprintf(text, sizeof(text), "event: ringcast-gap\n"
		    "data: %llu\n\n", (unsigned long long)next);
		metrics_add(w->slot, METRICS_GAPS, 1);
		conn_stream_control(w, c, text, (size_t)n, 0);
	}
}

static void
conn_free_names(char **names, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(names[i]);
}

/* GET /events/{topic} and GET /events?topic=a&topic=b */
static void
conn_events(struct worker *w, struct conn *c, const char *path,
    const char *query)
{
	struct http_request	*req = &c->io->reader.req;
	char			*names[CONN_STREAM_TOPICS_MAX];
	uint32_t		 ids[CONN_STREAM_TOPICS_MAX];
	char			 value[TOPIC_NAME_MAX + 2], token[HTTP_AUTH_MAX];
	char			 resume[HTTP_EVENT_ID_MAX + 1], text[64];
	const char		*bearer;
	size_t			 nnames = 0, pos = 0, i, j;
	ssize_t			 n;
	int			 has_resume = 0, dup;

	if (strncmp(path, "/events/", 8) == 0) {
		if (!catalog_topic_name_valid(path + 8, strlen(path + 8))) {
			conn_error(w, c, 400, NULL, "bad topic name");
			return;
		}
		if ((names[nnames++] = strdup(path + 8)) == NULL) {
			conn_error(w, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
			return;
		}
	}
	while (path[7] == '\0' && (n = http_query_next(query, "topic", &pos,
	    value, sizeof(value))) != -1) {
		if (n == -2 || !catalog_topic_name_valid(value, (size_t)n)) {
			conn_free_names(names, nnames);
			conn_error(w, c, 400, NULL, "bad topic name");
			return;
		}
		for (dup = 0, j = 0; j < nnames; j++)
			dup |= strcmp(names[j], value) == 0;
		if (dup)
			continue;
		if (nnames == CONN_STREAM_TOPICS_MAX) {
			conn_free_names(names, nnames);
			conn_error(w, c, 400, NULL, "more than %d topics",
			    CONN_STREAM_TOPICS_MAX);
			return;
		}
		if ((names[nnames++] = strdup(value)) == NULL) {
			conn_free_names(names, nnames - 1);
			conn_error(w, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
			return;
		}
	}
	if (nnames == 0) {
		conn_error(w, c, 400, NULL, "no topic: use /events/{topic} or "
		    "/events?topic=a&topic=b");
		return;
	}
	bearer = conn_bearer(req);
	pos = 0;
	if (bearer == NULL && (n = http_query_next(query, "token", &pos,
	    token, sizeof(token))) >= 0)
		bearer = token;
	if (w->draining || w->retiring) {
		conn_free_names(names, nnames);
		conn_soft_reject(w, c, w->conf->retry_ms, "server is "
		    "restarting, retry shortly");
		return;
	}
	if (c->flags & CONN_OVER_CAP) {
		conn_free_names(names, nnames);
		conn_soft_reject(w, c, CONN_FULL_RETRY_MS, "server full, "
		    "retry later");
		return;
	}
	if (conn_stream_topics(w, c, names, nnames, bearer, ids) == -1) {
		conn_free_names(names, nnames);
		return;
	}
	conn_free_names(names, nnames);
	/* The header wins over the query parameter. */
	if (req->seen & HTTP_SEEN_LAST_EVENT_ID) {
		has_resume = 1;
		if (req->overlong & HTTP_SEEN_LAST_EVENT_ID)
			strlcpy(resume, "x", sizeof(resume));
		else
			strlcpy(resume, req->last_event_id, sizeof(resume));
	} else {
		pos = 0;
		n = http_query_next(query, "lastEventId", &pos, resume,
		    sizeof(resume));
		if (n == -2)
			strlcpy(resume, "x", sizeof(resume));
		has_resume = n != -1;
	}
	/* Sorted and unique, one topic inline: what the hot path reads. */
	c->ntopics = (uint8_t)nnames;
	if (nnames == 1)
		c->topic = ids[0];
	else {
		if ((c->topics = calloc(nnames, sizeof(*c->topics))) == NULL) {
			conn_error(w, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
			return;
		}
		for (i = 0; i < nnames; i++)
			c->topics[i] = ids[i];
	}
	conn_stream_headers(w, c);
	conn_become_stream(w, c);
	n = snprintf(text, sizeof(text), "retry: %llu\n\n",
	    (unsigned long long)w->conf->retry_ms);
	if (conn_stream_control(w, c, text, (size_t)n, 0) == -1) {
		conn_close(w, c);
		return;
	}
	conn_stream_resume(w, c, resume, has_resume);
	conn_stream_flush(w, c);
}

/* Is body[len] UTF-8?  Overlongs, surrogates and > U+10FFFF are not. */
static int
conn_utf8_valid(const unsigned char *s, size_t len)
{
	size_t		 i = 0, n, k;
	uint32_t	 cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (i + n >= len)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Look up (or, when configured, create) a topic for a publish. */
static enum catalog_result
conn_publish_topic(struct worker *w, const char *name,
    struct catalog_topic *topic)
{
	enum catalog_result	 res;

	res = catalog_topic_lookup(w->cat, name, strlen(name), topic);
	if (res != CATALOG_NOT_FOUND || !w->conf->auto_create_topics)
		return res;
	res = catalog_topic_add(w->cat, name, 0, "", topic);
	if (res == CATALOG_EXISTS)
		res = catalog_topic_lookup(w->cat, name, strlen(name), topic);
	return res;
}

/* POST /publish/{topic} */
static void
conn_publish(struct worker *w, struct conn *c, const char *name)
{
	struct http_request	*req = &c->io->reader.req;
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	const char		*type = NULL, *bearer;
	size_t			 typelen = 0, size;
	uint64_t		 seq;
	char			 body[64], hdr[64];

	if (!catalog_topic_name_valid(name, strlen(name))) {
		conn_error(w, c, 400, NULL, "bad topic name");
		return;
	}
	if (req->seen & HTTP_SEEN_EVENT_TYPE) {
		type = req->event_type;
		typelen = strlen(type);
		if ((req->overlong & HTTP_SEEN_EVENT_TYPE) ||
		    !sse_event_type_valid(type, typelen)) {
			conn_error(w, c, 400, NULL, "bad Ringcast-Event: 1 to "
			    "%d bytes, no CR or LF", SSE_EVENT_TYPE_MAX);
			return;
		}
	}
	if (!conn_utf8_valid((const unsigned char *)req->body, req->bodylen)) {
		conn_error(w, c, 400, NULL, "the body is not UTF-8 text");
		return;
	}
	if (worker_catalog(w) == -1) {
		conn_error(w, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	res = conn_publish_topic(w, name, &topic);
	if (res == CATALOG_NOT_FOUND) {
		conn_error(w, c, 404, NULL, "unknown topic '%s'", name);
		return;
	}
	if (res != CATALOG_FOUND) {
		log_warnx("topic %s: %s", name, catalog_error(w->cat));
		conn_error(w, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	if (w->conf->require_token) {
		if ((bearer = conn_bearer(req)) == NULL) {
			conn_error(w, c, 401, "WWW-Authenticate: Bearer "
			    "realm=\"ringcast\"\r\n", "publishing needs a "
			    "token: Authorization: Bearer ...");
			return;
		}
		res = catalog_token_check(w->cat, bearer, strlen(bearer),
		    topic.id, CATALOG_RIGHT_PUBLISH);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(w, c, 403, NULL, "the token may not publish "
			    "to '%s'", name);
			return;
		}
		if (res != CATALOG_FOUND) {
			conn_error(w, c, 503, "Retry-After: 1\r\n",
			    "catalog unavailable");
			return;
		}
	}
	size = sse_body_size(typelen, req->body, req->bodylen);
	if (size > w->scratchsize) {
		conn_error(w, c, 413, NULL, "event too large for the ring "
		    "once encoded");
		return;
	}
	sse_encode_body(w->scratch, w->scratchsize, type, typelen, req->body,
	    req->bodylen);
	if (ring_append(w->ring, topic.id, w->scratch, size, &seq) == -1) {
		if (errno == EMSGSIZE) {
			conn_error(w, c, 413, NULL, "event too large for the "
			    "ring once encoded");
			return;
		}
		log_warn("ring %s: append", ring_path(w->ring));
		conn_error(w, c, 503, "Retry-After: 1\r\n", "ring unavailable");
		return;
	}
	metrics_add(w->slot, METRICS_EVENTS_PUBLISHED, 1);
	snprintf(body, sizeof(body), "{\"id\":\"%llu\"}\n",
	    (unsigned long long)seq);
	snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: %llu\r\n",
	    (unsigned long long)seq);
	conn_respond(w, c, 201, hdr, "application/json", body, strlen(body));
}

/* OPTIONS: a CORS preflight. */
static void
conn_preflight(struct worker *w, struct conn *c)
{
	static const char allow[] = "Allow: GET, POST, OPTIONS\r\n"
	    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
	    "Access-Control-Allow-Headers: Last-Event-ID, Authorization, "
	    "Ringcast-Event, Content-Type\r\n"
	    "Access-Control-Max-Age: 600\r\n";

	conn_respond(w, c, 204, allow, NULL, NULL, 0);
}

static const char demo_page[] =
"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<title>ringcast demo</title>\n<style>body{font:15px system-ui,sans-serif;"
"margin:2em;max-width:46em}#log{font:13px ui-monospace,monospace;"
"background:#f4f4f4;padding:1em;min-height:12em}"
"#state.open{color:#080}#state.closed{color:#a00}</style></head><body>\n"
"<h1>ringcast demo</h1>\n<p>Topic <code>demo</code>: a clock event every "
"second. Stop and start the server: the stream resumes with "
"<code>Last-Event-ID</code> and misses nothing.</p>\n"
"<p>Connection: <b id=\"state\">connecting</b> &middot; events: "
"<b id=\"count\">0</b> &middot; last id: <b id=\"last\">-</b> &middot; "
"gaps: <b id=\"gaps\">0</b></p>\n<pre id=\"log\"></pre>\n<script>\n"
"const es = new EventSource('/events/demo');\n"
"const log = document.getElementById('log');\nlet count = 0, gaps = 0;\n"
"function show(kind, e) {\n  count++;\n"
"  document.getElementById('count').textContent = count;\n"
"  document.getElementById('last').textContent = e.lastEventId;\n"
"  const line = document.createElement('div');\n"
"  line.className = 'event';\n"
"  line.textContent = e.lastEventId + ' ' + kind + ' ' + e.data;\n"
"  log.prepend(line);\n"
"  while (log.childNodes.length > 50) log.removeChild(log.lastChild);\n}\n"
"es.onmessage = (e) => show('message', e);\n"
"es.addEventListener('clock', (e) => show('clock', e));\n"
"es.addEventListener('ringcast-gap', (e) => {\n"
"  gaps++; document.getElementById('gaps').textContent = gaps; });\n"
"const state = document.getElementById('state');\n"
"es.onopen = () => { state.textContent = 'open'; state.className = 'open'; };\n"
"es.onerror = () => { state.textContent = 'reconnecting';\n"
"  state.className = 'closed'; };\n</script>\n</body></html>\n";

/* Route one complete request. */
static void
conn_handle_request(struct worker *w, struct conn *c)
{
	struct http_request	*req = &c->io->reader.req;
	struct buf		 body = { 0 };
	char			*path = NULL;
	const char		*query = NULL;
	int			 admin = (c->flags & CONN_ADMIN) != 0;
	int			 get = req->method == HTTP_GET ||
				    req->method == HTTP_HEAD;

	metrics_add(w->slot, METRICS_REQUESTS, 1);
	if (http_url_split(req, &path, &query) == -1) {
		conn_error(w, c, 400, NULL, "bad request target");
		return;
	}
	if ((c->flags & CONN_OVER_CAP) && strcmp(path, "/events") != 0 &&
	    strncmp(path, "/events/", 8) != 0) {
		/* Streams get a soft reject; everything else a plain 503. */
		c->flags |= CONN_CLOSE;
		conn_error(w, c, 503, "Retry-After: 5\r\n", "too many "
		    "connections, retry later");
	} else if (req->method == HTTP_OPTIONS)
		conn_preflight(w, c);
	else if (strcmp(path, "/healthz") == 0) {
		if (!get)
			conn_error(w, c, 405, "Allow: GET\r\n", "use GET");
		else if (w->draining)
			conn_error(w, c, 503, "Retry-After: 1\r\n", "draining");
		else
			conn_respond(w, c, 200, NULL, NULL, "ok\n", 3);
	} else if (strcmp(path, "/metrics") == 0 && admin) {
		if (!get)
			conn_error(w, c, 405, "Allow: GET\r\n", "use GET");
		else if (metrics_render(w->shm, w->ring, &body) == -1)
			conn_error(w, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
		else
			conn_respond(w, c, 200, NULL, "text/plain; "
			    "version=0.0.4; charset=utf-8", body.data,
			    body.len);
		buf_free(&body);
	} else if (admin)
		conn_error(w, c, 404, NULL, "the admin listener serves "
		    "/metrics and /healthz only");
	else if (strcmp(path, "/") == 0 && w->conf->demo) {
		if (!get)
			conn_error(w, c, 405, "Allow: GET\r\n", "use GET");
		else
			conn_respond(w, c, 200, NULL, "text/html; "
			    "charset=utf-8", demo_page, sizeof(demo_page) - 1);
	} else if (strcmp(path, "/events") == 0 ||
	    strncmp(path, "/events/", 8) == 0) {
		if (req->method != HTTP_GET)
			conn_error(w, c, 405, "Allow: GET, OPTIONS\r\n",
			    "subscribe with GET");
		else
			conn_events(w, c, path, query);
	} else if (strncmp(path, "/publish/", 9) == 0) {
		if (req->method != HTTP_POST)
			conn_error(w, c, 405, "Allow: POST, OPTIONS\r\n",
			    "publish with POST");
		else
			conn_publish(w, c, path + 9);
	} else
		conn_error(w, c, 404, NULL, "no such resource");
	free(path);
}

/* Keep the unparsed rest of a read for the next request. */
static int
conn_keep_pending(struct conn *c, const char *rest, size_t len)
{
	char	*p;

	if (len == 0)
		return 0;
	if ((p = malloc(c->io->pendinglen + len)) == NULL)
		return -1;
	memcpy(p, rest, len);
	if (c->io->pendinglen > 0)
		memcpy(p + len, c->io->pending, c->io->pendinglen);
	free(c->io->pending);
	c->io->pending = p;
	c->io->pendinglen += len;
	return 0;
}

/* Feed bytes to the reader and act on what it says.  Afterwards the
 * connection is still reading (CONN_REQUEST: a partial request, or the next
 * one after a keep-alive answer), or it has moved on. */
static void
conn_feed(struct worker *w, struct conn *c, const char *data, size_t len)
{
	struct http_reader	*r = &c->io->reader;
	size_t			 used;

	used = http_reader_feed(r, data, len);
	if (r->state == HTTP_READING)
		return;
	if (r->state == HTTP_ERROR) {
		c->flags |= CONN_CLOSE;
		if (r->error_status == 405)
			conn_error(w, c, 405, "Allow: GET, POST, OPTIONS\r\n",
			    "%s", r->error_reason);
		else
			conn_error(w, c, r->error_status, NULL, "%s",
			    r->error_reason);
		return;
	}
	if (conn_keep_pending(c, data + used, len - used) == -1) {
		conn_close(w, c);
		return;
	}
	conn_handle_request(w, c);
}

/* Read and serve requests until the socket is drained or the connection
 * moves on.  Pipelined requests are served in this loop, one at a time,
 * never by recursion. */
static void
conn_read_request(struct worker *w, struct conn *c)
{
	ssize_t	 n;
	char	*pending;
	size_t	 pendinglen;

	while (c->state == CONN_REQUEST) {
		if (c->io->pendinglen > 0) {
			pending = c->io->pending;
			pendinglen = c->io->pendinglen;
			c->io->pending = NULL;
			c->io->pendinglen = 0;
			c->last_io_ms = w->now_ms;
			conn_feed(w, c, pending, pendinglen);
			free(pending);
			continue;
		}
		n = recv(c->fd, w->iobuf, w->iobufsize, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->flags |= CONN_EOF;
			http_reader_eof(&c->io->reader);
			if (n == 0 && c->io->reader.state == HTTP_ERROR) {
				/* Half-closed: the peer may still read. */
				conn_feed(w, c, NULL, 0);
				return;
			}
			conn_close(w, c);
			return;
		}
		if (!c->io->reader.started)
			c->last_io_ms = w->now_ms;
		conn_feed(w, c, w->iobuf, (size_t)n);
	}
}

/* Write the answer; when it is out, close, or go back to CONN_REQUEST for
 * the next request (the caller reads it). */
static void
conn_write_out(struct worker *w, struct conn *c)
{
	int	 rc;

	rc = conn_flush_out(w, c);
	if (rc == -1) {
		conn_close(w, c);
		return;
	}
	if (rc == 1)
		return;
	if (c->flags & CONN_CLOSE) {
		conn_linger(w, c);
		return;
	}
	http_reader_next(&c->io->reader);
	c->flags |= CONN_SERVED;
	c->state = CONN_REQUEST;
	c->last_io_ms = w->now_ms;
}

/* Read and discard what a stream or lingering peer sends; close at EOF. */
static void
conn_discard_input(struct worker *w, struct conn *c)
{
	ssize_t	 n;
	int	 rounds;

	for (rounds = 0; rounds < 16; rounds++) {
		n = recv(c->fd, w->iobuf, w->iobufsize, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(w, c);
			return;
		}
	}
}

void
conn_on_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->state == CONN_CLOSED)
		return;
	if (events & EPOLLERR) {
		conn_close(w, c);
		return;
	}
	switch (c->state) {
	case CONN_STREAM:
		if (events & EPOLLHUP) {
			conn_close(w, c);
			return;
		}
		if (events & (EPOLLIN | EPOLLRDHUP)) {
			/* conn_discard_input closes at EOF. */
			conn_discard_input(w, c);
			if (c->state != CONN_STREAM)
				return;
		}
		if (events & EPOLLOUT) {
			c->flags &= ~CONN_BLOCKED;
			conn_stream_flush(w, c);
		}
		return;
	case CONN_LINGER:
		if (events & EPOLLHUP) {
			conn_close(w, c);
			return;
		}
		if (events & (EPOLLIN | EPOLLRDHUP))
			conn_discard_input(w, c);
		return;
	case CONN_RESPONSE:
		if ((events & EPOLLOUT) && (c->flags & CONN_BLOCKED)) {
			c->flags &= ~CONN_BLOCKED;
			conn_write_out(w, c);
			if (c->state == CONN_REQUEST)
				conn_read_request(w, c);
		} else if (events & EPOLLHUP)
			conn_close(w, c);
		return;
	case CONN_REQUEST:
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
			conn_read_request(w, c);
		return;
	}
}

void
conn_on_tick(struct worker *w, struct conn *c)
{
	const struct config	*conf = w->conf;
	uint64_t		 idle = w->now_ms - c->last_io_ms;
	struct http_reader	*r;

	switch (c->state) {
	case CONN_REQUEST:
		r = &c->io->reader;
		if (!r->started && c->io->pendinglen == 0 &&
		    (c->flags & CONN_SERVED)) {
			/* An idle keep-alive connection: close quietly. */
			if (w->draining || w->retiring ||
			    idle >= CONN_KEEPALIVE_MS)
				conn_close(w, c);
		} else if (!r->headers_done && idle >= conf->header_timeout_ms) {
			c->flags |= CONN_CLOSE;
			conn_error(w, c, 408, NULL, "request header timeout");
		} else if (r->headers_done && idle >= CONN_BODY_TIMEOUT_MS) {
			c->flags |= CONN_CLOSE;
			conn_error(w, c, 408, NULL, "request body timeout");
		}
		return;
	case CONN_RESPONSE:
		if (idle >= CONN_STUCK_MS)
			conn_close(w, c);
		return;
	case CONN_LINGER:
		if (idle >= CONN_LINGER_MS)
			conn_close(w, c);
		return;
	case CONN_STREAM:
		if (c->flags & CONN_BLOCKED) {
			if (idle >= CONN_STUCK_MS &&
			    conn_lost_after(w, c, c->cursor)) {
				metrics_add(w->slot, METRICS_SLOW_CLOSES, 1);
				conn_close(w, c);
			}
			return;
		}
		if (c->finish_at != 0 &&
		    w->now_ms >= w->retire_start_ms + c->finish_at - 1) {
			conn_stream_finish(w, c);
			return;
		}
		if (conf->heartbeat_ms > 0 && idle >= conf->heartbeat_ms &&
		    c->partial_seq == 0 &&
		    (c->io == NULL || c->io->out.len == 0)) {
			metrics_add(w->slot, METRICS_HEARTBEATS, 1);
			c->last_io_ms = w->now_ms;
			if (conn_stream_control(w, c, ":\n", 2, 0) == -1)
				conn_close(w, c);
		}
		return;
	}
}
