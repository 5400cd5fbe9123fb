/*
 * serve_fixture: see serve_fixture.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringcast/catalog.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/sse.h"
#include "ringcast/stream.h"
#include "serve_fixture.h"

void
serve_fixture_init(struct serve_fixture *f, uint64_t ring_size,
    uint32_t slots)
{
	const char	*base = getenv("TMPDIR");
	char		 err[512] = "out of memory";

	memset(f, 0, sizeof(*f));
	log_init("stderr", LOG_LEVEL_ERROR);
	/* As in the daemon: a vanished peer is an error return, not a kill. */
	signal(SIGPIPE, SIG_IGN);
	if (asprintf(&f->dir, "%s/ringcast-serve.XXXXXX",
	    base != NULL ? base : "/tmp") == -1 || mkdtemp(f->dir) == NULL)
		abort();
	config_defaults(&f->conf);
	snprintf(f->conf.ring_path, sizeof(f->conf.ring_path), "%s/ring",
	    f->dir);
	snprintf(f->conf.catalog_path, sizeof(f->conf.catalog_path),
	    "%s/catalog", f->dir);
	f->conf.ring_size = ring_size != 0 ? ring_size : 256 * 1024;
	f->conf.ring_slots = slots != 0 ? slots : 256;
	f->conf.max_event_bytes = 16 * 1024;
	f->conf.max_header_bytes = 4096;
	f->conf.catalog_map_size = 16 * 1024 * 1024;
	f->conf.allow_any_origin = 1;
	f->conf.require_token = 0;
	if (ring_open(&f->ring, f->conf.ring_path, f->conf.ring_size,
	    f->conf.ring_slots, RING_CREATE, 0, err, sizeof(err)) == -1 ||
	    (f->shm = metrics_create(1)) == NULL ||
	    serve_init(&f->serve, &f->conf, f->ring, f->shm, 0) == -1 ||
	    catalog_open(&f->serve.cat, f->conf.catalog_path,
	    f->conf.catalog_map_size, CATALOG_CREATE, err, sizeof(err)) == -1) {
		fprintf(stderr, "serve fixture: %s\n", err);
		abort();
	}
	f->serve.now_ms = 1000000;
	serve_fixture_topic(f, "a");
	serve_fixture_topic(f, "b");
	serve_fixture_topic(f, "x/y:z");
	if (catalog_topic_lookup(f->serve.cat, "priv", 4, &(struct
	    catalog_topic){ 0 }) == CATALOG_NOT_FOUND)
		catalog_topic_add(f->serve.cat, "priv", CATALOG_TOPIC_PRIVATE,
		    "", &(struct catalog_topic){ 0 });
}

void
serve_fixture_free(struct serve_fixture *f)
{
	struct serve	*s = &f->serve;
	struct conn	*c;
	char		*cmd;

	while ((c = TAILQ_FIRST(&s->streams)) != NULL)
		conn_close(s, c);
	while ((c = TAILQ_FIRST(&s->requests)) != NULL)
		conn_close(s, c);
	conn_reap(s);
	serve_free(s);
	ring_close(f->ring);
	if (asprintf(&cmd, "rm -rf '%s'", f->dir) != -1) {
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", f->dir);
		free(cmd);
	}
	free(f->dir);
	/* The shared metrics mapping lives until exit, as in the daemon. */
}

uint32_t
serve_fixture_topic(struct serve_fixture *f, const char *name)
{
	struct catalog_topic	 t;

	if (catalog_topic_lookup(f->serve.cat, name, strlen(name), &t) ==
	    CATALOG_FOUND)
		return t.id;
	if (catalog_topic_add(f->serve.cat, name, 0, "", &t) != CATALOG_FOUND)
		abort();
	return t.id;
}

struct conn *
serve_fixture_connect(struct serve_fixture *f, int *client)
{
	struct sockaddr_storage	 peer;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&peer;
	struct conn		*c;
	int			 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		abort();
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((c = conn_new(&f->serve, sv[1], 0, &peer)) == NULL)
		abort();
	*client = sv[0];
	return c;
}

void
serve_fixture_event(struct serve_fixture *f, struct conn *c, uint32_t events)
{
	if (c->state == CONN_STREAM)
		stream_on_event(&f->serve, c, events);
	else
		conn_on_event(&f->serve, c, events);
}

void
serve_fixture_request(struct serve_fixture *f, struct conn *c, int client,
    const char *request)
{
	size_t	 len = strlen(request);

	if (send(client, request, len, MSG_NOSIGNAL) != (ssize_t)len)
		abort();
	serve_fixture_event(f, c, EPOLLIN | EPOLLOUT);
}

uint64_t
serve_fixture_publish(struct serve_fixture *f, const char *topic,
    const char *data)
{
	char		 body[4096];
	size_t		 len;
	uint64_t	 seq;

	len = sse_encode_body(body, sizeof(body), NULL, 0, data, strlen(data));
	if (len == 0 || ring_append(f->ring, serve_fixture_topic(f, topic),
	    body, len, &seq) == -1)
		abort();
	return seq;
}

size_t
serve_fixture_read(int client, char *buf, size_t cap)
{
	size_t	 len = 0;
	ssize_t	 n;

	while (len + 1 < cap &&
	    (n = recv(client, buf + len, cap - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

int
serve_fixture_alive(struct serve_fixture *f, const struct conn *c)
{
	struct conn	*x;

	TAILQ_FOREACH(x, &f->serve.requests, link)
		if (x == c)
			return 1;
	TAILQ_FOREACH(x, &f->serve.streams, link)
		if (x == c)
			return 1;
	return 0;
}
