/*
 * admin: see admin.h.  Subscriber counts come from the wake tables, which
 * every worker keeps in shared memory for its publishers anyway, so any
 * worker can answer for all of them.  Nothing here is on the serving path:
 * a topic's retained count scans the ring's slot index.  The admin token is
 * compared as SHA-256 digests, so the comparison's timing says nothing
 * about the token; it is never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sha2.h>

#include "ringcast/admin.h"
#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/dashboard.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/pattern.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/stats.h"
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

/* Every topic of the catalog, for GET /topics, in name order. */
struct admin_topics {
	struct catalog_topic	*topics;
	size_t			 n, cap;
	int			 failed;
};

static int
admin_collect_topic(void *arg, const struct catalog_topic *topic)
{
	struct admin_topics	*t = arg;
	struct catalog_topic	*p;
	size_t			 cap;

	if (t->n == t->cap) {
		cap = t->cap == 0 ? 64 : t->cap * 2;
		if ((p = reallocarray(t->topics, cap, sizeof(*p))) == NULL) {
			t->failed = 1;
			return 1;
		}
		t->topics = p;
		t->cap = cap;
	}
	t->topics[t->n++] = *topic;
	return 0;
}

static int
admin_stat_cmp(const void *a, const void *b)
{
	const struct ring_topic_stat	*x = a, *y = b;

	return x->topic < y->topic ? -1 : x->topic > y->topic;
}

void
admin_topics(struct serve *s, struct conn *c)
{
	struct admin_topics	 t = { 0 };
	struct ring_topic_stat	*st = NULL, *hit, key;
	struct buf		 body = { 0 };
	char			 id[32];
	size_t			 i;
	int			 rc = 0;

	if (serve_catalog(s) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	if (catalog_topic_foreach(s->cat, admin_collect_topic, &t) == -1) {
		log_warnx("topics: %s", catalog_error(s->cat));
		free(t.topics);
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	if (t.failed || (t.n > 0 &&
	    (st = calloc(t.n, sizeof(*st))) == NULL)) {
		free(t.topics);
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		return;
	}
	/* Catalog ids are unique: sorted, they are what the scan wants. */
	for (i = 0; i < t.n; i++)
		st[i].topic = t.topics[i].id;
	if (t.n > 0)
		qsort(st, t.n, sizeof(*st), admin_stat_cmp);
	ring_topics_scan(s->ring, st, t.n, 0);
	/*
	 * Per-topic retention settings come with topic history (DESIGN
	 * §10.2), which the catalog does not hold yet: when it does, they
	 * belong in this object beside "retained".
	 */
	rc |= buf_printf(&body, "{\"topics\":[");
	for (i = 0; i < t.n; i++) {
		key.topic = t.topics[i].id;
		if ((hit = bsearch(&key, st, t.n, sizeof(*st),
		    admin_stat_cmp)) == NULL)
			continue;
		strlcpy(id, "null", sizeof(id));
		if (hit->newest != 0)
			snprintf(id, sizeof(id), "\"%llu\"",
			    (unsigned long long)hit->newest);
		/* Topic names are [A-Za-z0-9._:/-]: nothing to escape. */
		rc |= buf_printf(&body, "%s\n{\"topic\":\"%s\",\"family\":%s,"
		    "\"private\":%s,\"subscribers\":%llu,\"newest_id\":%s,"
		    "\"retained\":%llu}", i > 0 ? "," : "", t.topics[i].name,
		    pattern_is_family(t.topics[i].name,
		    strlen(t.topics[i].name)) ? "true" : "false",
		    (t.topics[i].flags & CATALOG_TOPIC_PRIVATE) ? "true" :
		    "false", (unsigned long long)(s->wake != NULL ?
		    wake_topic_streams(s->wake, t.topics[i].id) : 0), id,
		    (unsigned long long)hit->retained);
	}
	rc |= buf_printf(&body, "]}\n");
	if (rc != 0)
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
	else
		conn_respond(s, c, 200, NULL, "application/json", body.data,
		    body.len);
	buf_free(&body);
	free(st);
	free(t.topics);
}

static void
admin_digest(const char *text, uint8_t *digest)
{
	SHA2_CTX	 ctx;

	SHA256Init(&ctx);
	SHA256Update(&ctx, (const uint8_t *)text, strlen(text));
	SHA256Final(digest, &ctx);
}

/* The token of a request: Authorization: Bearer, else the token query
 * parameter (an EventSource cannot set headers). */
static const char *
admin_request_token(struct conn *c, const char *query, char *buf,
    size_t cap)
{
	const char	*bearer = http_bearer(&c->io->reader.req);
	size_t		 pos = 0;

	if (bearer != NULL)
		return bearer;
	if (http_query_next(query, "token", &pos, buf, cap) >= 0)
		return buf;
	return NULL;
}

int
admin_authorized(struct serve *s, struct conn *c, const char *query)
{
	const char	*want = s->conf->admin_token, *got;
	char		 buf[HTTP_AUTH_MAX];
	uint8_t		 h1[SHA256_DIGEST_LENGTH], h2[SHA256_DIGEST_LENGTH];

	if (want[0] == '\0')
		return 1;
	got = admin_request_token(c, query, buf, sizeof(buf));
	if (got != NULL) {
		admin_digest(want, h1);
		admin_digest(got, h2);
		if (memcmp(h1, h2, sizeof(h1)) == 0)
			return 1;
	}
	conn_error(s, c, 401, "WWW-Authenticate: Bearer "
	    "realm=\"ringcast-admin\"\r\n", "%s", got == NULL ?
	    "the admin listener needs its token: Authorization: Bearer, or "
	    "?token=" : "wrong admin token");
	return 0;
}

void
admin_request(struct serve *s, struct conn *c, const char *path,
    const char *query)
{
	const struct http_request	*req = &c->io->reader.req;
	int				 get = req->method == HTTP_GET ||
					    req->method == HTTP_HEAD;

	if (strcmp(path, "/metrics") == 0) {
		if (!get)
			conn_error(s, c, 405, "Allow: GET\r\n", "use GET");
		else
			admin_metrics(s, c);
	} else if (strcmp(path, DASHBOARD_CHARTJS_PATH) == 0) {
		if (!get)
			conn_error(s, c, 405, "Allow: GET\r\n", "use GET");
		else
			dashboard_chartjs(s, c);
	} else if (strcmp(path, "/") != 0 &&
	    strcmp(path, "/stats/events") != 0 &&
	    strcmp(path, "/topics") != 0 && strncmp(path, "/topics/", 8) != 0)
		conn_error(s, c, 404, NULL, "the admin listener serves /, "
		    "/stats/events, /topics, /topics/{topic}, /metrics and "
		    "/healthz only");
	else if (!get)
		conn_error(s, c, 405, "Allow: GET\r\n", "use GET");
	else if (!admin_authorized(s, c, query))
		return;
	else if (strcmp(path, "/") == 0)
		dashboard_page(s, c);
	else if (strcmp(path, "/stats/events") == 0) {
		if (req->method != HTTP_GET)
			conn_error(s, c, 405, "Allow: GET\r\n",
			    "subscribe with GET");
		else
			stats_open(s, c);
	} else if (strcmp(path, "/topics") == 0)
		admin_topics(s, c);
	else
		admin_topic(s, c, path + 8);
}
