/*
 * stats: the dashboard's feed (see stats.h).  Each worker samples the ring's
 * committed seq once a second; the age of the oldest retained event is read
 * off those samples (to the second, and only as "at least" past the oldest
 * sample), since ring slots carry no time.  A snapshot is rendered at most
 * once a second per worker, and only while a stats stream is open there;
 * each stream gets it whole or, when its socket is still full from the last
 * one, not at all that second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/admin.h"
#include "ringcast/catalog.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/stats.h"
#include "ringcast/stream.h"
#include "ringcast/wake.h"

#define STATS_RETRY_MS		1000

struct stats {
	uint64_t	 seq[STATS_SAMPLES];	/* committed seq, each second */
	uint64_t	 ms[STATS_SAMPLES];	/* monotonic ms of the sample */
	size_t		 head;			/* the next sample goes here */
	size_t		 n;
	uint64_t	 round;			/* seconds sampled so far */
	uint64_t	 built_round;		/* round of frame */
	int		 built;
	struct buf	 frame;			/* "data: {...}\n\n" */
};

static const struct {
	const char		*name;
	enum metrics_counter	 counter;
} stats_counters[] = {
	{ "events_published", METRICS_EVENTS_PUBLISHED },
	{ "frames_delivered", METRICS_FRAMES_DELIVERED },
	{ "bytes_delivered", METRICS_BYTES_DELIVERED },
	{ "connections_accepted", METRICS_CONNECTIONS_ACCEPTED },
	{ "connections_rejected", METRICS_CONNECTIONS_REJECTED },
	{ "soft_rejects", METRICS_SOFT_REJECTS },
	{ "slow_consumer_closes", METRICS_SLOW_CLOSES },
	{ "gaps", METRICS_GAPS },
	{ "requests", METRICS_REQUESTS },
	{ "responses_4xx", METRICS_ERRORS_4XX },
	{ "responses_5xx", METRICS_ERRORS_5XX },
};

/* The busiest topics, with names from the catalog. */
struct stats_busiest {
	struct wake_topic_count	 top[ADMIN_BUSIEST_TOPICS];
	char			 names[ADMIN_BUSIEST_TOPICS][TOPIC_NAME_MAX + 1];
	size_t			 n, named;
};

static struct stats *
stats_state(struct serve *s)
{
	if (s->stats == NULL && (s->stats = calloc(1, sizeof(*s->stats))) ==
	    NULL)
		log_warnx("stats: out of memory");
	return s->stats;
}

void
stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	buf_free(&st->frame);
	free(st);
}

void
stats_on_second(struct serve *s)
{
	struct stats	*st;

	if ((st = stats_state(s)) == NULL)
		return;
	st->seq[st->head] = ring_committed(s->ring);
	st->ms[st->head] = s->now_ms;
	st->head = (st->head + 1) % STATS_SAMPLES;
	if (st->n < STATS_SAMPLES)
		st->n++;
	st->round++;
}

/* The i-th sample, oldest first. */
static size_t
stats_sample(const struct stats *st, size_t i)
{
	return (st->head + STATS_SAMPLES - st->n + i) % STATS_SAMPLES;
}

/* Append "oldest_age_s":..,"oldest_age_at_least":.. for the event oldest:
 * the first sample that saw it committed dates it to within a second; one
 * already there at the oldest sample is only known to be at least as old. */
static int
stats_render_age(struct serve *s, struct buf *out, uint64_t oldest,
    uint64_t committed)
{
	const struct stats	*st = s->stats;
	size_t			 i, k;
	uint64_t		 age = 0;

	if (st == NULL || st->n == 0 || oldest > committed)
		return buf_printf(out, "\"oldest_age_s\":null,"
		    "\"oldest_age_at_least\":false");
	for (i = 0; i < st->n; i++) {
		k = stats_sample(st, i);
		if (st->seq[k] >= oldest) {
			age = s->now_ms - st->ms[k];
			break;
		}
	}
	/* Not committed at the newest sample: younger than a second. */
	return buf_printf(out, "\"oldest_age_s\":%.1f,"
	    "\"oldest_age_at_least\":%s", (double)age / 1000.0,
	    i == 0 ? "true" : "false");
}

static int
stats_visit_topic(void *arg, const struct catalog_topic *topic)
{
	struct stats_busiest	*b = arg;
	size_t			 i;

	for (i = 0; i < b->n; i++)
		if (b->top[i].topic == topic->id) {
			strlcpy(b->names[i], topic->name, sizeof(b->names[i]));
			b->named++;
		}
	return b->named == b->n;
}

static int
stats_stat_cmp(const void *a, const void *b)
{
	const struct ring_topic_stat	*x = a, *y = b;

	return x->topic < y->topic ? -1 : x->topic > y->topic;
}

/* The busiest topics: subscribers, events in the last second, newest id. */
static int
stats_render_topics(struct serve *s, struct buf *out)
{
	const struct stats	*st = s->stats;
	struct stats_busiest	 b;
	struct ring_topic_stat	 scan[ADMIN_BUSIEST_TOPICS], key, *hit;
	uint64_t		 after = 0;
	size_t			 i;
	char			 id[32], rate[32];
	int			 rc = 0, have_rate;

	memset(&b, 0, sizeof(b));
	if (s->wake != NULL)
		b.n = wake_busiest(s->wake, b.top, ADMIN_BUSIEST_TOPICS);
	if (b.n > 0 && serve_catalog(s) == 0 &&
	    catalog_topic_foreach(s->cat, stats_visit_topic, &b) == -1)
		log_warnx("stats: %s", catalog_error(s->cat));
	for (i = 0; i < b.n; i++)
		scan[i].topic = b.top[i].topic;
	if (b.n > 0)
		qsort(scan, b.n, sizeof(scan[0]), stats_stat_cmp);
	/* Events after the sample before the newest: the last second's. */
	have_rate = st != NULL && st->n >= 2;
	if (have_rate)
		after = st->seq[stats_sample(st, st->n - 2)];
	ring_topics_scan(s->ring, scan, b.n, after);
	rc |= buf_printf(out, "\"topics\":[");
	for (i = 0; i < b.n; i++) {
		key.topic = b.top[i].topic;
		hit = bsearch(&key, scan, b.n, sizeof(scan[0]), stats_stat_cmp);
		strlcpy(id, "null", sizeof(id));
		strlcpy(rate, "null", sizeof(rate));
		if (hit != NULL && hit->newest != 0)
			snprintf(id, sizeof(id), "\"%llu\"",
			    (unsigned long long)hit->newest);
		if (hit != NULL && have_rate)
			snprintf(rate, sizeof(rate), "%llu",
			    (unsigned long long)hit->recent);
		/* A topic removed meanwhile has no name: its id stands in. */
		if (b.names[i][0] == '\0')
			snprintf(b.names[i], sizeof(b.names[i]), "#%u",
			    b.top[i].topic);
		rc |= buf_printf(out, "%s{\"topic\":\"%s\",\"subscribers\":%llu,"
		    "\"events_1s\":%s,\"newest_id\":%s}", i > 0 ? "," : "",
		    b.names[i], (unsigned long long)b.top[i].streams, rate, id);
	}
	return rc | buf_printf(out, "]");
}

/* The live workers, from their shared slots. */
static int
stats_render_workers(const struct metrics *m, struct buf *out)
{
	const struct metrics_slot	*slot;
	unsigned int			 i;
	int				 rc = 0, first = 1;

	rc |= buf_printf(out, "\"workers\":[");
	for (i = 0; i < m->nslots; i++) {
		slot = &m->slots[i];
		if (!__atomic_load_n(&slot->active, __ATOMIC_ACQUIRE))
			continue;
		rc |= buf_printf(out, "%s{\"slot\":%u,\"pid\":%ld,"
		    "\"generation\":%d,\"streams\":%llu,\"requests\":%llu,"
		    "\"admin\":%llu,\"rss_bytes\":%llu}", first ? "" : ",", i,
		    (long)slot->pid, slot->generation, (unsigned long long)
		    __atomic_load_n(&slot->conns[METRICS_CONN_STREAM],
		    __ATOMIC_RELAXED), (unsigned long long)
		    __atomic_load_n(&slot->conns[METRICS_CONN_REQUEST],
		    __ATOMIC_RELAXED), (unsigned long long)
		    __atomic_load_n(&slot->conns[METRICS_CONN_ADMIN],
		    __ATOMIC_RELAXED), (unsigned long long)
		    __atomic_load_n(&slot->rss_bytes, __ATOMIC_RELAXED));
		first = 0;
	}
	return rc | buf_printf(out, "]");
}

/* The history store and its archiver, from the archiver's shared figures:
 * what it holds, and how far behind the ring the archiver is. */
static int
stats_render_history(const struct metrics *m, struct buf *out,
    uint64_t committed)
{
	const struct metrics_archiver	*a = &m->archiver;
	uint64_t			 archived, lag;

	archived = __atomic_load_n(&a->archived, __ATOMIC_RELAXED);
	lag = committed > archived ? committed - archived : 0;
	return buf_printf(out, "\"history\":{\"stored\":%llu,\"trimmed\":%llu,"
	    "\"dropped\":%llu,\"full\":%s},\"archiver\":{\"running\":%s,"
	    "\"restarts\":%llu,\"archived\":%llu,\"lag_events\":%llu},",
	    (unsigned long long)__atomic_load_n(&a->stored, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&a->trimmed, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&a->dropped, __ATOMIC_RELAXED),
	    __atomic_load_n(&a->full, __ATOMIC_RELAXED) ? "true" : "false",
	    __atomic_load_n(&a->running, __ATOMIC_RELAXED) ? "true" : "false",
	    (unsigned long long)__atomic_load_n(&a->restarts,
	    __ATOMIC_RELAXED), (unsigned long long)archived,
	    (unsigned long long)lag);
}

int
stats_render(struct serve *s, struct buf *out)
{
	struct ring_info	 info;
	struct timespec		 ts;
	size_t			 i;
	int			 rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	rc |= buf_printf(out, "{\"time_ms\":%llu,\"worker\":%u,\"counters\":{",
	    (unsigned long long)ts.tv_sec * 1000 +
	    (unsigned long long)ts.tv_nsec / 1000000, s->index);
	for (i = 0; i < sizeof(stats_counters) / sizeof(stats_counters[0]);
	    i++)
		rc |= buf_printf(out, "%s\"%s\":%llu", i > 0 ? "," : "",
		    stats_counters[i].name, (unsigned long long)
		    metrics_counter_total(s->shm, stats_counters[i].counter));
	rc |= buf_printf(out, "},\"connections\":{\"stream\":%llu,"
	    "\"request\":%llu,\"admin\":%llu},",
	    (unsigned long long)metrics_conns_kind_total(s->shm,
	    METRICS_CONN_STREAM),
	    (unsigned long long)metrics_conns_kind_total(s->shm,
	    METRICS_CONN_REQUEST),
	    (unsigned long long)metrics_conns_kind_total(s->shm,
	    METRICS_CONN_ADMIN));
	ring_get_info(s->ring, &info);
	rc |= buf_printf(out, "\"ring\":{\"committed\":%llu,\"oldest\":%llu,"
	    "\"events\":%llu,\"used_bytes\":%llu,\"size_bytes\":%llu,"
	    "\"slots\":%u,", (unsigned long long)info.committed,
	    (unsigned long long)info.oldest, (unsigned long long)
	    (info.committed + 1 - info.oldest), (unsigned long long)info.used,
	    (unsigned long long)info.size, info.slots);
	rc |= stats_render_age(s, out, info.oldest, info.committed);
	rc |= buf_printf(out, "},");
	rc |= stats_render_history(s->shm, out, info.committed);
	/* Not built yet: clustering (DESIGN §10.4).  null until it exists;
	 * the page says "not clustered" rather than a made-up state. */
	rc |= buf_printf(out, "\"cluster\":null,");
	rc |= stats_render_topics(s, out);
	rc |= buf_printf(out, ",");
	rc |= stats_render_workers(s->shm, out);
	rc |= buf_printf(out, "}");
	return rc == 0 ? 0 : -1;
}

/* The SSE frame of this second's snapshot, rendered once per worker. */
static const struct buf *
stats_frame(struct serve *s)
{
	struct stats	*st;

	if ((st = stats_state(s)) == NULL)
		return NULL;
	if (st->built && st->built_round == st->round)
		return &st->frame;
	st->frame.len = st->frame.off = 0;
	if (buf_printf(&st->frame, "data: ") == -1 ||
	    stats_render(s, &st->frame) == -1 ||
	    buf_printf(&st->frame, "\n\n") == -1) {
		st->built = 0;
		return NULL;
	}
	st->built = 1;
	st->built_round = st->round;
	return &st->frame;
}

/* Write the snapshot to c; what the socket does not take waits in io->out
 * for EPOLLOUT (stream_on_event flushes it). */
static void
stats_write(struct serve *s, struct conn *c)
{
	const struct buf	*frame;
	char			 head[24];
	int			 n = 0, rc;

	if ((frame = stats_frame(s)) == NULL)
		return;
	if (c->io == NULL && (c->io = calloc(1, sizeof(*c->io))) == NULL) {
		conn_close(s, c);
		return;
	}
	if (c->flags & CONN_CHUNKED)
		n = snprintf(head, sizeof(head), "%zx\r\n", frame->len);
	if ((n > 0 && buf_append(&c->io->out, head, (size_t)n) == -1) ||
	    buf_append(&c->io->out, frame->data, frame->len) == -1 ||
	    ((c->flags & CONN_CHUNKED) &&
	    buf_append(&c->io->out, "\r\n", 2) == -1) ||
	    (rc = conn_flush_out(s, c)) == -1) {
		conn_close(s, c);
		return;
	}
	if (rc == 0)
		conn_io_release(c);
}

void
stats_send(struct serve *s, struct conn *c)
{
	const struct stats	*st = s->stats;

	if (st == NULL || c->state != CONN_STREAM || (c->flags & CONN_FINISH))
		return;
	/* A stats stream uses its cursor for the last round it was sent. */
	if (c->cursor >= st->round)
		return;
	if ((c->flags & CONN_BLOCKED) || (c->io != NULL &&
	    c->io->out.len > 0)) {
		/* Still full of the last one: skip this second. */
		if (s->now_ms - c->last_io_ms >= STATS_STUCK_MS)
			conn_close(s, c);
		return;
	}
	c->cursor = st->round;
	stats_write(s, c);
}

void
stats_open(struct serve *s, struct conn *c)
{
	c->flags |= CONN_STATS;
	if (stream_open_bare(s, c, STATS_RETRY_MS) == -1)
		return;
	if (s->stats != NULL)
		c->cursor = s->stats->round;
	/* A first snapshot now, so the page need not wait for a tick. */
	if (!(c->flags & CONN_BLOCKED))
		stats_write(s, c);
}
