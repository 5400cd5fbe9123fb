/*
 * worker_fixture: see worker_fixture.h.  Built with serve_init, as
 * worker_main builds its serving state, minus the epoll loop, the listeners
 * and the wake-ups: the test is the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
#include "ringcast/sse.h"
#include "ringcast/stream.h"
#include "worker_fixture.h"

#define FIXTURE_START_MS	1000000

static const struct {
	const char	*name;
	uint32_t	 flags;
} fixture_topics[] = {
	{ "a", 0 },
	{ "b", 0 },
	{ "x/y:z", 0 },
	{ "priv", CATALOG_TOPIC_PRIVATE },
	{ "fam/*", 0 },				/* fam/<any> streams */
	{ "pfam:*", CATALOG_TOPIC_PRIVATE },
};

int
worker_fixture_init(struct worker_fixture *fx, const char *dir,
    uint64_t ring_size, uint32_t ring_slots)
{
	struct config		*conf = &fx->conf;
	struct serve		*s = &fx->serve;
	struct catalog_topic	 t;
	char			 err[512];
	size_t			 i;

	memset(fx, 0, sizeof(*fx));
	log_init("stderr", LOG_LEVEL_ERROR);
	/* As in the daemon: a vanished peer is an error return, not a kill. */
	signal(SIGPIPE, SIG_IGN);
	config_defaults(conf);
	snprintf(conf->ring_path, sizeof(conf->ring_path), "%s/ring", dir);
	snprintf(conf->catalog_path, sizeof(conf->catalog_path), "%s/catalog",
	    dir);
	conf->ring_size = ring_size;
	conf->ring_slots = ring_slots;
	conf->max_event_bytes = 16 * 1024;
	conf->max_header_bytes = 4096;
	conf->catalog_map_size = 16 * 1024 * 1024;
	conf->allow_any_origin = 1;

	if (ring_open(&fx->ring, conf->ring_path, conf->ring_size,
	    conf->ring_slots, RING_CREATE, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "worker fixture: %s\n", err);
		goto fail;
	}
	if ((fx->shm = metrics_create(1)) == NULL ||
	    serve_init(s, conf, fx->ring, fx->shm, 0) == -1) {
		perror("worker fixture: serving state");
		goto fail;
	}
	s->now_ms = FIXTURE_START_MS;
	if (catalog_open(&s->cat, conf->catalog_path, conf->catalog_map_size,
	    CATALOG_CREATE, err, sizeof(err)) == -1) {
		fprintf(stderr, "worker fixture: %s\n", err);
		goto fail;
	}
	for (i = 0; i < sizeof(fixture_topics) / sizeof(fixture_topics[0]);
	    i++) {
		if (catalog_topic_add(s->cat, fixture_topics[i].name,
		    fixture_topics[i].flags, "", &t) != CATALOG_FOUND &&
		    catalog_topic_lookup(s->cat, fixture_topics[i].name,
		    strlen(fixture_topics[i].name), &t) != CATALOG_FOUND) {
			fprintf(stderr, "worker fixture: topic %s: %s\n",
			    fixture_topics[i].name, catalog_error(s->cat));
			goto fail;
		}
	}
	return 0;
fail:
	worker_fixture_free(fx);
	return -1;
}

void
worker_fixture_free(struct worker_fixture *fx)
{
	struct serve	*s = &fx->serve;
	struct conn	*c;

	if (s->conf != NULL) {
		while ((c = TAILQ_FIRST(&s->requests)) != NULL)
			conn_close(s, c);
		while ((c = TAILQ_FIRST(&s->streams)) != NULL)
			conn_close(s, c);
		conn_reap(s);
		serve_free(s);
	}
	if (fx->shm != NULL) {
		close(fx->shm->memfd);
		munmap(fx->shm, sizeof(*fx->shm) + sizeof(fx->shm->slots[0]));
	}
	ring_close(fx->ring);
	config_free(&fx->conf);
	memset(fx, 0, sizeof(*fx));
}

uint32_t
worker_fixture_topic_add(struct worker_fixture *fx, const char *name)
{
	struct catalog_topic	 t;

	if (catalog_topic_add(fx->serve.cat, name, 0, "", &t) !=
	    CATALOG_FOUND)
		return worker_fixture_topic(fx, name);
	return t.id;
}

uint32_t
worker_fixture_topic(struct worker_fixture *fx, const char *name)
{
	struct catalog_topic	 t;

	if (catalog_topic_lookup(fx->serve.cat, name, strlen(name), &t) !=
	    CATALOG_FOUND) {
		fprintf(stderr, "worker fixture: no topic %s\n", name);
		abort();
	}
	return t.id;
}

int
worker_fixture_publish(struct worker_fixture *fx, uint32_t topic,
    const char *data, uint64_t *seq)
{
	struct serve	*w = &fx->serve;
	size_t		 len;

	if (sse_body_size(0, data, strlen(data)) > w->scratchsize) {
		errno = EMSGSIZE;
		return -1;
	}
	len = sse_encode_body(w->scratch, w->scratchsize, NULL, 0, data,
	    strlen(data));
	return ring_append(w->ring, topic, w->scratch, len, seq);
}

struct conn *
worker_fixture_connect(struct worker_fixture *fx, int admin, int *client_fd)
{
	struct sockaddr_storage	 peer;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&peer;
	struct conn		*c;
	int			 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		return NULL;
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((c = conn_new(&fx->serve, sv[1], admin, &peer)) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	*client_fd = sv[0];
	return c;
}

int
worker_fixture_conn_alive(struct worker_fixture *fx, const struct conn *c)
{
	struct conn	*x;

	TAILQ_FOREACH(x, &fx->serve.requests, link)
		if (x == c)
			return 1;
	TAILQ_FOREACH(x, &fx->serve.streams, link)
		if (x == c)
			return 1;
	return 0;
}

void
worker_fixture_event(struct worker_fixture *fx, struct conn *c,
    uint32_t events)
{
	if (c->state == CONN_STREAM)
		stream_on_event(&fx->serve, c, events);
	else
		conn_on_event(&fx->serve, c, events);
}

int
worker_fixture_read(int client_fd, char *buf, size_t cap, size_t *len)
{
	char	 sink[4096];
	ssize_t	 n;

	for (;;) {
		if (*len < cap)
			n = recv(client_fd, buf + *len, cap - *len, 0);
		else
			n = recv(client_fd, sink, sizeof(sink), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			return 1;
		if (n == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
		if (*len < cap)
			*len += (size_t)n;
	}
}
