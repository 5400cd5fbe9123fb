/*
 * serve: a worker's serving state (see serve.h), set up once per worker
 * process and shared by the handlers.  The window and scratch sizes follow
 * the ring: the scratch holds the largest frame the ring accepts.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/history.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/publish.h"
#include "ringcast/route.h"
#include "ringcast/serve.h"
#include "ringcast/stats.h"
#include "ringcast/stream.h"

#define SERVE_IOBUF		(64 * 1024)
#define SERVE_WINDOW_MAX	(8 * 1024 * 1024)
#define SERVE_WINDOW_FRAMES	32768

int
serve_init(struct serve *s, const struct config *conf, struct ring *ring,
    struct metrics *shm, unsigned int slot)
{
	uint64_t	 wsize;
	uint32_t	 wframes = 1;

	memset(s, 0, sizeof(*s));
	s->conf = conf;
	s->ring = ring;
	s->shm = shm;
	s->slot = &shm->slots[slot];
	s->wake_slot = slot;
	TAILQ_INIT(&s->streams);
	TAILQ_INIT(&s->requests);
	TAILQ_INIT(&s->closed);
	s->on_request = route_request;
	s->on_stream_close = stream_forget;
	s->on_wait_close = publish_forget;
	s->iobufsize = SERVE_IOBUF;
	s->scratchsize = conf->ring_size / 4 + 64;
	if (s->scratchsize < 256 * 1024 + 64)
		s->scratchsize = 256 * 1024 + 64;
	wsize = conf->ring_size < SERVE_WINDOW_MAX ? conf->ring_size :
	    SERVE_WINDOW_MAX;
	while (wframes < conf->ring_slots && wframes < SERVE_WINDOW_FRAMES)
		wframes <<= 1;
	if ((s->iobuf = malloc(s->iobufsize)) == NULL ||
	    (s->scratch = malloc(s->scratchsize)) == NULL ||
	    (s->topics = stream_index_new()) == NULL ||
	    window_init(&s->window, wsize, wframes, ring_committed(ring)) == -1) {
		serve_free(s);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
serve_free(struct serve *s)
{
	free(s->iobuf);
	free(s->scratch);
	free(s->pending);
	stream_index_free(s->topics);
	window_free(&s->window);
	stats_free(s->stats);
	free(s->live);
	s->live = NULL;
	s->nlive = 0;
	catalog_close(s->cat);
	history_close(s->hist);
	s->hist = NULL;
	s->iobuf = s->scratch = NULL;
	s->pending = NULL;
	s->topics = NULL;
	s->stats = NULL;
	s->cat = NULL;
}

int
serve_catalog(struct serve *s)
{
	char	 err[512];

	if (s->cat != NULL)
		return 0;
	if (s->last_catalog_try_ms != 0 &&
	    s->now_ms - s->last_catalog_try_ms < 1000)
		return -1;
	s->last_catalog_try_ms = s->now_ms;
	if (catalog_open(&s->cat, s->conf->catalog_path,
	    s->conf->catalog_map_size, 0, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		s->cat = NULL;
		return -1;
	}
	return 0;
}

enum catalog_result
serve_topic(struct serve *s, const char *name, struct catalog_topic *topic)
{
	int	 flags = CATALOG_RESOLVE_MATERIALISE;

	if (s->conf->auto_create_topics)
		flags |= CATALOG_RESOLVE_AUTO_CREATE;
	return catalog_topic_resolve(s->cat, name, strlen(name), flags, topic);
}

struct serve_ids {
	uint32_t	*ids;
	size_t		 n, cap;
};

static int
serve_ids_add(void *arg, const struct catalog_topic *t)
{
	struct serve_ids	*v = arg;
	uint32_t		*p;
	size_t			 cap;

	if (v->n == v->cap) {
		cap = v->cap == 0 ? 256 : v->cap * 2;
		if ((p = reallocarray(v->ids, cap, sizeof(*p))) == NULL)
			return -1;
		v->ids = p;
		v->cap = cap;
	}
	v->ids[v->n++] = t->id;
	return 0;
}

static int
serve_id_cmp(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
serve_topic_live(struct serve *s, uint32_t id)
{
	struct serve_ids	 v = { NULL, 0, 0 };

	if (s->live_at_ms == 0 || s->now_ms - s->live_at_ms >= 1000) {
		if (serve_catalog(s) == -1 ||
		    catalog_topic_foreach(s->cat, serve_ids_add, &v) == -1) {
			free(v.ids);
			return -1;
		}
		if (v.n > 0)
			qsort(v.ids, v.n, sizeof(*v.ids), serve_id_cmp);
		free(s->live);
		s->live = v.ids;
		s->nlive = v.n;
		s->live_at_ms = s->now_ms != 0 ? s->now_ms : 1;
	}
	if (s->nlive == 0)
		return 0;
	return bsearch(&id, s->live, s->nlive, sizeof(*s->live),
	    serve_id_cmp) != NULL;
}

int
serve_history(struct serve *s)
{
	char	 path[PATH_MAX], err[PATH_MAX + 256];

	if (s->hist != NULL)
		return 0;
	if (s->last_history_try_ms != 0 &&
	    s->now_ms - s->last_history_try_ms < 1000)
		return -1;
	s->last_history_try_ms = s->now_ms;
	if (history_path(path, sizeof(path), s->conf->catalog_path) == -1)
		return -1;
	/* The archiver creates it: until then replay uses the ring alone. */
	if (history_open(&s->hist, path, s->conf->history_map_size, 0, err,
	    sizeof(err)) == -1) {
		log_debug("%s", err);
		s->hist = NULL;
		return -1;
	}
	return 0;
}
