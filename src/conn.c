/*
 * conn: a connection from accept to close.  Requests are read with the http
 * module, one at a time even when pipelined, and each complete one goes to
 * serve->on_request (the router).  Answers are written from io->out; a
 * connection that is told to close shuts its side and lingers for the
 * peer's EOF so an unread request body cannot turn the answer into a reset.
 * Behind trusted proxies, each request is charged (per-address cap, logs) to
 * the client its PROXY header or X-Forwarded-For names.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/proxy.h"
#include "ringcast/serve.h"

#define CONN_KEEPALIVE_MS	60000
#define CONN_BODY_TIMEOUT_MS	60000
#define CONN_LINGER_MS		2000
#define CONN_STUCK_MS		30000

static void	conn_write_out(struct serve *, struct conn *);
static void	conn_read_request(struct serve *, struct conn *);

/* Admin connections stay admin ones even as streams (stream_become). */
static enum metrics_conn_kind
conn_kind(const struct conn *c)
{
	if (c->flags & CONN_ADMIN)
		return METRICS_CONN_ADMIN;
	return c->state == CONN_STREAM ? METRICS_CONN_STREAM :
	    METRICS_CONN_REQUEST;
}

static struct conn_io *
conn_io_new(const struct config *conf)
{
	struct conn_io	*io = calloc(1, sizeof(*io));

	if (io != NULL) {
		http_reader_init(&io->reader, conf->max_header_bytes,
		    conf->max_event_bytes);
		http_reader_set_batch_limit(&io->reader,
		    conf->max_batch_bytes);
	}
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

void
conn_io_release(struct conn *c)
{
	if (c->io != NULL && c->io->out.len == 0) {
		conn_io_free(c->io);
		c->io = NULL;
	}
}

/* Is a connection over a cap?  counted: it is already in the totals (its
 * address bucket never is, here). */
static int
conn_over_cap(struct serve *s, const struct conn *c, int counted)
{
	const struct config	*conf = s->conf;

	if (c->flags & CONN_ADMIN)
		return 0;
	if (conf->max_connections > 0 && metrics_conns_total(s->shm) -
	    (uint64_t)counted >= conf->max_connections)
		return 1;
	return conf->max_connections_per_address > 0 &&
	    metrics_addr_total(s->shm, c->addr_bucket) >=
	    conf->max_connections_per_address;
}

struct conn *
conn_new(struct serve *s, int fd, int admin,
    const struct sockaddr_storage *peer)
{
	const struct config	*conf = s->conf;
	struct conn		*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->io = conn_io_new(conf)) == NULL) {
		free(c);
		return NULL;
	}
	c->kind = CONN_KIND;
	c->fd = fd;
	c->state = CONN_REQUEST;
	c->flags = admin ? CONN_ADMIN : 0;
	c->addr_bucket = metrics_addr_bucket(peer);
	c->io->peer = *peer;
	c->io->client = *peer;
	c->last_io_ms = s->now_ms;
	/* Caps are checked before this connection is counted. */
	if (conn_over_cap(s, c, 0))
		c->flags |= CONN_OVER_CAP;
	if (!admin)
		metrics_add(s->slot, (c->flags & CONN_OVER_CAP) ?
		    METRICS_CONNECTIONS_REJECTED : METRICS_CONNECTIONS_ACCEPTED,
		    1);
	metrics_conn_add(s->slot, conn_kind(c), 1);
	metrics_addr_add(s->slot, c->addr_bucket, 1);
	TAILQ_INSERT_TAIL(&s->requests, c, link);
	s->nconns++;
	return c;
}

struct conn *
conn_adopt(struct serve *s, int fd, uint16_t flags, uint32_t addr_bucket)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->kind = CONN_KIND;
	c->fd = fd;
	c->state = CONN_STREAM;
	c->flags = flags;
	c->addr_bucket = addr_bucket;
	c->last_io_ms = s->now_ms;
	metrics_conn_add(s->slot, METRICS_CONN_STREAM, 1);
	metrics_addr_add(s->slot, c->addr_bucket, 1);
	TAILQ_INSERT_TAIL(&s->streams, c, link);
	s->nstreams++;
	s->nconns++;
	return c;
}

/* Charge the connection to client from now on: move it to the client's
 * address bucket and judge the caps anew there. */
static void
conn_set_client(struct serve *s, struct conn *c,
    const struct sockaddr_storage *client)
{
	uint32_t	 bucket = metrics_addr_bucket(client);

	c->io->client = *client;
	if (bucket == c->addr_bucket)
		return;
	metrics_addr_add(s->slot, c->addr_bucket, -1);
	c->addr_bucket = bucket;
	c->flags &= ~CONN_OVER_CAP;
	if (conn_over_cap(s, c, 1))
		c->flags |= CONN_OVER_CAP;
	metrics_addr_add(s->slot, bucket, 1);
}

int
conn_expect_proxy(struct serve *s, struct conn *c)
{
	char	 text[PROXY_ADDR_TEXT];

	if (!proxy_trusted(s->conf->trusted_proxies,
	    s->conf->ntrusted_proxies, &c->io->peer)) {
		log_debug("fd %d: %s is not a trusted proxy: closing", c->fd,
		    proxy_addr_text(&c->io->peer, text, sizeof(text)));
		conn_close(s, c);
		return -1;
	}
	c->flags |= CONN_PROXY_WAIT;
	return 0;
}

/*
 * Read the PROXY header that opens the connection: peek, parse, then take
 * exactly the header off the socket, so the request behind it is read as
 * usual.  (Edge-triggered epoll still reports bytes that arrive after a
 * peek.)  0 when it is done, 1 when more bytes are needed, -1 when the
 * connection was closed: a malformed header, EOF or an error.
 */
static int
conn_read_proxy(struct serve *s, struct conn *c)
{
	struct proxy_header	 h;
	char			 text[PROXY_ADDR_TEXT], via[PROXY_ADDR_TEXT];
	size_t			 want = PROXY_HEADER_MAX;
	ssize_t			 n, len;

	if (want > s->iobufsize)
		want = s->iobufsize;
	do
		n = recv(c->fd, s->iobuf, want, MSG_PEEK);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n <= 0) {
		conn_close(s, c);
		return -1;
	}
	if ((len = proxy_parse(s->iobuf, (size_t)n, &h)) == 0)
		return 1;
	if (len == -1) {
		log_debug("fd %d: %s: malformed PROXY header: closing", c->fd,
		    proxy_addr_text(&c->io->peer, text, sizeof(text)));
		conn_close(s, c);
		return -1;
	}
	do
		n = recv(c->fd, s->iobuf, (size_t)len, 0);
	while (n == -1 && errno == EINTR);
	if (n != len) {
		conn_close(s, c);
		return -1;
	}
	c->flags &= ~CONN_PROXY_WAIT;
	if (h.local)
		return 0;
	log_debug("fd %d: client %s (PROXY v%d from %s)", c->fd,
	    proxy_addr_text(&h.src, text, sizeof(text)), h.version,
	    proxy_addr_text(&c->io->peer, via, sizeof(via)));
	c->io->peer = h.src;
	conn_set_client(s, c, &h.src);
	return 0;
}

/* Whom the request just read is charged to: the peer, or the client its
 * X-Forwarded-For names when the peer is a trusted proxy.  Each request
 * of a keep-alive connection may come from another client. */
static void
conn_resolve_client(struct serve *s, struct conn *c)
{
	const struct config	*conf = s->conf;
	struct http_request	*req = &c->io->reader.req;
	struct sockaddr_storage	 client = c->io->peer;
	char			 text[PROXY_ADDR_TEXT], via[PROXY_ADDR_TEXT];

	if (conf->ntrusted_proxies == 0)
		return;
	if ((req->seen & HTTP_SEEN_FORWARDED_FOR) &&
	    proxy_trusted(conf->trusted_proxies, conf->ntrusted_proxies,
	    &c->io->peer) &&
	    proxy_forwarded_client(req->forwarded_for, conf->trusted_proxies,
	    conf->ntrusted_proxies, &client))
		log_debug("fd %d: client %s (X-Forwarded-For from %s)", c->fd,
		    proxy_addr_text(&client, text, sizeof(text)),
		    proxy_addr_text(&c->io->peer, via, sizeof(via)));
	conn_set_client(s, c, &client);
}

void
conn_close(struct serve *s, struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_WAIT && s->on_wait_close != NULL)
		s->on_wait_close(s, c);
	if (c->state == CONN_STREAM) {
		/* Out of the topic index before anything is freed. */
		if (s->on_stream_close != NULL)
			s->on_stream_close(s, c);
		TAILQ_REMOVE(&s->streams, c, link);
		s->nstreams--;
	} else
		TAILQ_REMOVE(&s->requests, c, link);
	metrics_conn_add(s->slot, conn_kind(c), -1);
	metrics_addr_add(s->slot, c->addr_bucket, -1);
	/* close(2) also removes the fd from the epoll set. */
	close(c->fd);
	conn_io_free(c->io);
	c->io = NULL;
	/* Freed after this batch of events: a later event of
	 * the same batch may still name this connection. */
	c->state = CONN_CLOSED;
	TAILQ_INSERT_TAIL(&s->closed, c, link);
	s->nconns--;
}

void
conn_reap(struct serve *s)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&s->closed)) != NULL) {
		TAILQ_REMOVE(&s->closed, c, link);
		free(c);
	}
}

void
conn_linger(struct serve *s, struct conn *c)
{
	if (c->state == CONN_STREAM) {
		/* A stream's peer sends nothing after its request, so there
		 * is nothing to wait for: FIN, then close. */
		shutdown(c->fd, SHUT_WR);
		conn_close(s, c);
		return;
	}
	c->state = CONN_LINGER;
	c->last_io_ms = s->now_ms;
	if (shutdown(c->fd, SHUT_WR) == -1 || (c->flags & CONN_EOF)) {
		conn_close(s, c);
		return;
	}
	/* The peer may have closed already: look now, epoll is edge-
	 * triggered and will not tell again. */
	conn_on_event(s, c, EPOLLIN);
}

/* Write as much of io->out as the socket takes; 0 when all is out, 1 when
 * the socket is full, -1 on a write error. */
int
conn_flush_out(struct serve *s, struct conn *c)
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
		c->last_io_ms = s->now_ms;
	}
	out->off = out->len = 0;
	return 0;
}

void
conn_cors_headers(struct serve *s, const struct conn *c, struct buf *b)
{
	const struct http_request	*req = &c->io->reader.req;

	if (!(req->seen & HTTP_SEEN_ORIGIN) ||
	    (req->overlong & HTTP_SEEN_ORIGIN))
		return;
	/* Only an origin named in the config may send credentials (cookies
	 * with withCredentials); '*' lets any page read without them, and the
	 * Origin is not echoed for it, which browsers refuse for credentialed
	 * requests. */
	switch (config_origin_allowed(s->conf, req->origin,
	    strlen(req->origin))) {
	case CONFIG_ORIGIN_LISTED:
		buf_printf(b, "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Allow-Credentials: true\r\n"
		    "Vary: Origin\r\n", req->origin);
		break;
	case CONFIG_ORIGIN_ANY:
		buf_printf(b, "Access-Control-Allow-Origin: *\r\n%s",
		    s->conf->norigins > 0 ? "Vary: Origin\r\n" : "");
		break;
	default:
		break;
	}
}

void
conn_respond(struct serve *s, struct conn *c, int status, const char *extra,
    const char *type, const char *body, size_t bodylen)
{
	struct http_request	*req = &c->io->reader.req;
	struct buf		*out = &c->io->out;
	int			 close_after;

	if (s->draining || s->retiring || !req->keep_alive ||
	    c->io->reader.state == HTTP_ERROR)
		c->flags |= CONN_CLOSE;
	close_after = (c->flags & CONN_CLOSE) != 0;
	if (status >= 500)
		metrics_add(s->slot, METRICS_ERRORS_5XX, 1);
	else if (status >= 400)
		metrics_add(s->slot, METRICS_ERRORS_4XX, 1);
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
	conn_cors_headers(s, c, out);
	if (extra != NULL)
		buf_printf(out, "%s", extra);
	buf_append(out, "\r\n", 2);
	if (bodylen > 0 && req->method != HTTP_HEAD)
		buf_append(out, body, bodylen);
	c->state = CONN_RESPONSE;
	conn_write_out(s, c);
}

void
conn_error(struct serve *s, struct conn *c, int status, const char *extra,
    const char *fmt, ...)
{
	char	 msg[512], text[PROXY_ADDR_TEXT];
	int	 n;
	va_list	 ap;

	n = snprintf(msg, sizeof(msg), "%d %s: ", status,
	    http_status_text(status));
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strlcat(msg, "\n", sizeof(msg));
	log_debug("fd %d: %s: %d: %s", c->fd,
	    proxy_addr_text(&c->io->client, text, sizeof(text)), status,
	    msg + n);
	conn_respond(s, c, status, extra, NULL, msg, strlen(msg));
}

/* Control bytes are retry hints, heartbeats, a gap event and the chunked
 * terminator; an idle stream holds no buffer for them. */
int
conn_send_control(struct serve *s, struct conn *c, const char *text,
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
			c->last_io_ms = s->now_ms;
			return 0;
		}
		c->flags |= CONN_BLOCKED;
	}
	if (c->io == NULL && (c->io = calloc(1, sizeof(*c->io))) == NULL)
		return -1;
	return buf_append(&c->io->out, bytes + sent, n - (size_t)sent);
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
conn_feed(struct serve *s, struct conn *c, const char *data, size_t len)
{
	struct http_reader	*r = &c->io->reader;
	size_t			 used;

	used = http_reader_feed(r, data, len);
	if (r->state == HTTP_READING)
		return;
	if (r->state == HTTP_ERROR) {
		c->flags |= CONN_CLOSE;
		if (r->error_status == 405)
			conn_error(s, c, 405, "Allow: GET, POST, OPTIONS\r\n",
			    "%s", r->error_reason);
		else
			conn_error(s, c, r->error_status, NULL, "%s",
			    r->error_reason);
		return;
	}
	if (conn_keep_pending(c, data + used, len - used) == -1) {
		conn_close(s, c);
		return;
	}
	conn_resolve_client(s, c);
	s->on_request(s, c);
}

/* Read and serve requests until the socket is drained or the connection
 * moves on.  Pipelined requests are served in this loop, one at a time,
 * never by recursion. */
static void
conn_read_request(struct serve *s, struct conn *c)
{
	ssize_t	 n;
	char	*pending;
	size_t	 pendinglen;

	if ((c->flags & CONN_PROXY_WAIT) && conn_read_proxy(s, c) != 0)
		return;
	while (c->state == CONN_REQUEST) {
		if (c->io->pendinglen > 0) {
			pending = c->io->pending;
			pendinglen = c->io->pendinglen;
			c->io->pending = NULL;
			c->io->pendinglen = 0;
			c->last_io_ms = s->now_ms;
			conn_feed(s, c, pending, pendinglen);
			free(pending);
			continue;
		}
		n = recv(c->fd, s->iobuf, s->iobufsize, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->flags |= CONN_EOF;
			http_reader_eof(&c->io->reader);
			if (n == 0 && c->io->reader.state == HTTP_ERROR) {
				/* Half-closed: the peer may still read. */
				conn_feed(s, c, NULL, 0);
				return;
			}
			conn_close(s, c);
			return;
		}
		if (!c->io->reader.started)
			c->last_io_ms = s->now_ms;
		conn_feed(s, c, s->iobuf, (size_t)n);
	}
}

/* Write the answer; when it is out, close, or go back to CONN_REQUEST for
 * the next request (the caller reads it). */
static void
conn_write_out(struct serve *s, struct conn *c)
{
	int	 rc;

	rc = conn_flush_out(s, c);
	if (rc == -1) {
		conn_close(s, c);
		return;
	}
	if (rc == 1)
		return;
	if (c->flags & CONN_CLOSE) {
		conn_linger(s, c);
		return;
	}
	http_reader_next(&c->io->reader);
	c->flags |= CONN_SERVED;
	c->state = CONN_REQUEST;
	c->last_io_ms = s->now_ms;
}

int
conn_discard_input(struct serve *s, struct conn *c)
{
	ssize_t	 n;
	int	 rounds;

	for (rounds = 0; rounds < 16; rounds++) {
		n = recv(c->fd, s->iobuf, s->iobufsize, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
	}
	return 0;
}

void
conn_wait(struct serve *s, struct conn *c)
{
	(void)s;
	c->state = CONN_WAIT;
}

void
conn_resume(struct serve *s, struct conn *c)
{
	if (c->state == CONN_REQUEST)
		conn_read_request(s, c);
}

void
conn_on_event(struct serve *s, struct conn *c, uint32_t events)
{
	if (c->state == CONN_CLOSED || c->state == CONN_STREAM)
		return;
	if (events & EPOLLERR) {
		conn_close(s, c);
		return;
	}
	switch (c->state) {
	case CONN_LINGER:
		if (events & EPOLLHUP) {
			conn_close(s, c);
			return;
		}
		if ((events & (EPOLLIN | EPOLLRDHUP)) &&
		    conn_discard_input(s, c) == -1)
			conn_close(s, c);
		return;
	case CONN_RESPONSE:
		if ((events & EPOLLOUT) && (c->flags & CONN_BLOCKED)) {
			c->flags &= ~CONN_BLOCKED;
			conn_write_out(s, c);
			if (c->state == CONN_REQUEST)
				conn_read_request(s, c);
		} else if (events & EPOLLHUP)
			conn_close(s, c);
		return;
	case CONN_REQUEST:
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
			conn_read_request(s, c);
		return;
	case CONN_WAIT:
		/* Input waits in the socket for conn_resume; only a peer
		 * gone for good ends the wait. */
		if (events & EPOLLHUP)
			conn_close(s, c);
		return;
	}
}

void
conn_on_tick(struct serve *s, struct conn *c)
{
	const struct config	*conf = s->conf;
	uint64_t		 idle = s->now_ms - c->last_io_ms;
	struct http_reader	*r;

	switch (c->state) {
	case CONN_REQUEST:
		r = &c->io->reader;
		if (c->flags & CONN_PROXY_WAIT) {
			/* No HTTP answer to a proxy that said nothing. */
			if (idle >= conf->header_timeout_ms)
				conn_close(s, c);
		} else if (!r->started && c->io->pendinglen == 0 &&
		    (c->flags & CONN_SERVED)) {
			/* An idle keep-alive connection: close quietly. */
			if (s->draining || s->retiring ||
			    idle >= CONN_KEEPALIVE_MS)
				conn_close(s, c);
		} else if (!r->headers_done && idle >= conf->header_timeout_ms) {
			c->flags |= CONN_CLOSE;
			conn_error(s, c, 408, NULL, "request header timeout");
		} else if (r->headers_done && idle >= CONN_BODY_TIMEOUT_MS) {
			c->flags |= CONN_CLOSE;
			conn_error(s, c, 408, NULL, "request body timeout");
		}
		return;
	case CONN_RESPONSE:
		if (idle >= CONN_STUCK_MS)
			conn_close(s, c);
		return;
	case CONN_LINGER:
		if (idle >= CONN_LINGER_MS)
			conn_close(s, c);
		return;
	}
}
