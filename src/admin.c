/*
 * admin: see admin.h.  Subscriber counts come from the wake tables, which
 * every worker keeps in shared memory for its publishers anyway, so any
 * worker can answer for all of them.  Nothing here is on the serving path:
 * a topic's retained count scans the ring's slot index.
 */
#include <stdio.h>
#include <string.h>

#include "ringcast/admin.h"
#include "ringcast/catalog.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/wake.h"

struct admin_busiest {
	struct wake_topic_count	 top[ADMIN_BUSIEST_TOPICS];
	size_t			 n;
	struct buf		*out;
};

/* One catalog entry: name it if it is among the busiest. */
static int
admin_visit_topic(void *arg, const struct catalog_topic *topic)
{
	struct admin_busiest	*b = arg;
	size_t			 i;

	for (i = 0; i < b->n; i++)
		if (b->top[i].topic == topic->id)
			buf_printf(b->out, "ringcast_topic_streams{topic=\"%s\"} "
			    "%llu\n", topic->name,
			    (unsigned long long)b->top[i].streams);
	return 0;
}

void
admin_metrics(struct serve *s, struct conn *c)
{
	struct admin_busiest	 b;
	struct buf		 body = { 0 };

	memset(&b, 0, sizeof(b));
	b.out = &body;
	if (metrics_render(s->shm, s->ring, &body) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		buf_free(&body);
		return;
	}
	if (s->wake != NULL)
		b.n = wake_busiest(s->wake, b.top, ADMIN_BUSIEST_TOPICS);
	buf_printf(&body, "# HELP ringcast_topic_streams Streams of the %d "
	    "topics with the most, over every worker.\n"
	    "# TYPE ringcast_topic_streams gauge\n", ADMIN_BUSIEST_TOPICS);
	/* Topic names are [A-Za-z0-9._:/-]: nothing to escape in a label. */
	if (b.n > 0 && serve_catalog(s) == 0 &&
	    catalog_topic_foreach(s->cat, admin_visit_topic, &b) == -1)
		log_warnx("metrics: %s", catalog_error(s->cat));
	conn_respond(s, c, 200, NULL, "text/plain; version=0.0.4; "
	    "charset=utf-8", body.data, body.len);
	buf_free(&body);
}

void
admin_topic(struct serve *s, struct conn *c, const char *name)
{
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	uint64_t		 newest, retained, streams = 0;
	char			 body[TOPIC_NAME_MAX + 256], id[32] = "null";
	int			 n;

	if (!catalog_topic_name_valid(name, strlen(name))) {
		conn_error(s, c, 400, NULL, "bad topic name");
		return;
	}
	if (serve_catalog(s) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	/* A family's member not used yet is reported, not stored: id 0. */
	res = catalog_topic_resolve(s->cat, name, strlen(name), 0, &topic);
	if (res == CATALOG_NOT_FOUND) {
		conn_error(s, c, 404, NULL, "unknown topic '%s'", name);
		return;
	}
	if (res != CATALOG_FOUND) {
		log_warnx("topic %s: %s", name, catalog_error(s->cat));
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	newest = retained = 0;
	if (s->wake != NULL && topic.id != 0)
		streams = wake_topic_streams(s->wake, topic.id);
	if (topic.id != 0)
		ring_topic_stats(s->ring, topic.id, &newest, &retained);
	/* Ids are strings, as in a publish's answer; null when none. */
	if (newest != 0)
		snprintf(id, sizeof(id), "\"%llu\"", (unsigned long long)newest);
	n = snprintf(body, sizeof(body), "{\"topic\":\"%s\",\"subscribers\":"
	    "%llu,\"newest_id\":%s,\"retained\":%llu}\n", topic.name,
	    (unsigned long long)streams, id, (unsigned long long)retained);
	conn_respond(s, c, 200, NULL, "application/json", body, (size_t)n);
}
