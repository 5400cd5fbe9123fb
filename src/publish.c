/*
 * publish: see publish.h.  The event is encoded into the worker's scratch
 * buffer (no allocation per event) and appended; the ring wakes the
 * workers that follow the topic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/auth.h"
#include "ringcast/batch.h"
#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/cluster.h"
#include "ringcast/conn.h"
#include "ringcast/cpub.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/publish.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/sse.h"
#include "ringcast/wake.h"

/* Is body[len] UTF-8?  Overlongs, surrogates and > U+10FFFF are not. */
static int
publish_utf8_valid(const unsigned char *s, size_t len)
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

/*
 * Find topic name and check that the request may publish to it, with the
 * request's credential cred (a JWT in it is verified once per request).
 * where is "" or "line N: " (a batch), put before each error.  0, or -1
 * when the request was answered with the error.
 */
static int
publish_authorize(struct serve *s, struct conn *c, struct auth_cred *cred,
    const char *name, const char *where, struct catalog_topic *topic)
{
	enum catalog_result	 res;

	res = serve_topic(s, name, topic);
	if (res == CATALOG_NOT_FOUND) {
		conn_error(s, c, 404, NULL, "%sunknown topic '%s'", where, name);
		return -1;
	}
	if (res != CATALOG_FOUND) {
		log_warnx("topic %s: %s", name, catalog_error(s->cat));
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return -1;
	}
	if (!s->conf->require_token)
		return 0;
	switch (auth_check(s->conf->auth, s->cat, cred, topic->id, name,
	    CATALOG_RIGHT_PUBLISH, time(NULL))) {
	case AUTH_ALLOWED:
		return 0;
	case AUTH_NO_TOKEN:
		conn_error(s, c, 401, "WWW-Authenticate: Bearer "
		    "realm=\"ringcast\"\r\n", "publishing needs a token: "
		    "Authorization: Bearer ...");
		return -1;
	case AUTH_BAD_TOKEN:
		metrics_add(s->slot, METRICS_JWT_REFUSED, 1);
		conn_error(s, c, 401, "WWW-Authenticate: Bearer "
		    "realm=\"ringcast\", error=\"invalid_token\"\r\n", "%s",
		    cred->reason);
		return -1;
	case AUTH_FORBIDDEN:
		conn_error(s, c, 403, NULL, "%sthe token may not publish to "
		    "'%s'", where, name);
		return -1;
	case AUTH_UNAVAILABLE:
		break;
	}
	conn_error(s, c, 503, "Retry-After: 1\r\n", "catalog unavailable");
	return -1;
}

/* A publish's credential: Authorization: Bearer only.  A cookie would let
 * any page a browser visits publish (cross-site request forgery), and a
 * query string ends up in proxies' logs. */
static void
publish_credential(struct conn *c, struct auth_cred *cred)
{
	memset(cred, 0, sizeof(*cred));
	cred->token = http_bearer(&c->io->reader.req);
}

/* The answer to an append that failed. */
static void
publish_append_failed(struct serve *s, struct conn *c)
{
	if (errno == EMSGSIZE) {
		conn_error(s, c, 413, NULL, "too large for the ring once "
		    "encoded");
		return;
	}
	log_warn("ring %s: append", ring_path(s->ring));
	conn_error(s, c, 503, "Retry-After: 1\r\n", "ring unavailable");
}

/*
 * Send n encoded events (topic names[i], body bodies[i]/lens[i]) to the
 * cluster and park the request until JetStream answered every one; a
 * refusal at once is answered 503 here.
 */
static void
publish_cluster(struct serve *s, struct conn *c, const char *const *names,
    const void *const *bodies, const size_t *lens, size_t n, int batch)
{
	char	**subjects;
	char	 err[256];
	size_t	 i, len;
	int	 rc = -1;

	if ((subjects = calloc(n, sizeof(*subjects))) == NULL) {
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		len = sizeof(CLUSTER_SUBJECT_PREFIX) + 3 * strlen(names[i]);
		if ((subjects[i] = malloc(len)) == NULL ||
		    cluster_subject(subjects[i], len, names[i]) == -1)
			break;
	}
	if (i < n)
		snprintf(err, sizeof(err), "out of memory");
	else
		rc = cpub_publish(s->cpub, c, (const char *const *)subjects,
		    bodies, lens, n, s->now_ms, err, sizeof(err));
	for (i = 0; i < n; i++)
		free(subjects[i]);
	free(subjects);
	if (rc == -1) {
		metrics_add(s->slot, METRICS_CLUSTER_REFUSED, 1);
		conn_error(s, c, 503, "Retry-After: 1\r\n", "cluster: %s; "
		    "nothing was published", err);
		return;
	}
	if (batch)
		c->flags |= CONN_BATCH;
	else
		c->flags &= ~CONN_BATCH;
	conn_wait(s, c);
}

/* A batch's events, each with its line's topic name. */
static void
publish_batch_cluster(struct serve *s, struct conn *c, const struct batch *b,
    const struct ring_event *ev)
{
	const char	**names;
	const void	**bodies;
	size_t		 *lens, i;

	names = calloc(b->n, sizeof(*names));
	bodies = calloc(b->n, sizeof(*bodies));
	lens = calloc(b->n, sizeof(*lens));
	if (names == NULL || bodies == NULL || lens == NULL) {
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		names[i] = b->events[i].topic;
		bodies[i] = ev[i].body;
		lens[i] = ev[i].len;
	}
	publish_cluster(s, c, names, bodies, lens, b->n, 1);
out:
	free(lens);
	free(bodies);
	free(names);
}

/* "3, 5-7" of the 1-based lines whose ids are (not) zero, in buf. */
static void
publish_lines(const struct cpub_result *res, int acked, char *buf, size_t len)
{
	size_t	 i, j, n = 0;
	int	 w;

	buf[0] = '\0';
	for (i = 0; i < res->n; i = j) {
		if ((res->ids[i] != 0) != acked) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < res->n && (res->ids[j] != 0) == acked; j++)
			;
		w = j - i > 1 ? snprintf(buf + n, len - n, "%s%zu-%zu",
		    n > 0 ? ", " : "", i + 1, j) : snprintf(buf + n, len - n,
		    "%s%zu", n > 0 ? ", " : "", i + 1);
		if (w < 0 || (size_t)w >= len - n) {
			if (len > 4)
				strlcpy(buf + len - 4, "...", 4);
			return;
		}
		n += (size_t)w;
	}
}

void
publish_cluster_done(void *arg, void *owner, const struct cpub_result *res)
{
	struct serve	*s = arg;
	struct conn	*c = owner;
	struct buf	 body = { 0 };
	char		 hdr[80], acked[160], missing[160];
	size_t		 i;
	int		 consecutive = 1;

	metrics_add(s->slot, METRICS_CLUSTER_PUBLISHED, res->acked);
	metrics_add(s->slot, METRICS_EVENTS_PUBLISHED, res->acked);
	if (res->acked < res->n) {
		metrics_add(s->slot, METRICS_CLUSTER_REFUSED, 1);
		if (res->acked == 0)
			conn_error(s, c, 503, "Retry-After: 1\r\n", "cluster: "
			    "%s; nothing was published", res->error);
		else {
			publish_lines(res, 1, acked, sizeof(acked));
			publish_lines(res, 0, missing, sizeof(missing));
			conn_error(s, c, 503, "Retry-After: 1\r\n", "cluster: "
			    "%s; lines %s were published, lines %s were not: "
			    "send only those again", res->error, acked,
			    missing);
		}
		conn_resume(s, c);
		return;
	}
	if (!(c->flags & CONN_BATCH)) {
		snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: %llu\r\n",
		    (unsigned long long)res->ids[0]);
		buf_printf(&body, "{\"id\":\"%llu\"}\n",
		    (unsigned long long)res->ids[0]);
	} else {
		buf_printf(&body, "{\"ids\":[");
		for (i = 0; i < res->n; i++) {
			buf_printf(&body, "%s\"%llu\"", i > 0 ? "," : "",
			    (unsigned long long)res->ids[i]);
			if (i > 0 && res->ids[i] != res->ids[i - 1] + 1)
				consecutive = 0;
		}
		buf_printf(&body, "]}\n");
		hdr[0] = '\0';
		if (consecutive)
			snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: "
			    "%llu-%llu\r\n", (unsigned long long)res->ids[0],
			    (unsigned long long)res->ids[res->n - 1]);
	}
	c->flags &= ~CONN_BATCH;
	if (body.data == NULL)
		conn_error(s, c, 201, hdr, "published (out of memory for "
		    "the ids)");
	else
		conn_respond(s, c, 201, hdr[0] != '\0' ? hdr : NULL,
		    "application/json", body.data, body.len);
	buf_free(&body);
	conn_resume(s, c);
}

void
publish_forget(struct serve *s, struct conn *c)
{
	if (s->cpub != NULL)
		cpub_forget(s->cpub, c);
}

void
publish_one(struct serve *s, struct conn *c, const char *name)
{
	struct http_request	*req = &c->io->reader.req;
	struct catalog_topic	 topic;
	struct auth_cred	 cred;
	const char		*type = NULL;
	size_t			 typelen = 0, size;
	uint64_t		 seq;
	char			 body[64], hdr[64];
	int			 rc;

	if (!catalog_topic_name_valid(name, strlen(name))) {
		conn_error(s, c, 400, NULL, "bad topic name");
		return;
	}
	/* An ndjson body may be read up to max_batch_bytes. */
	if (req->bodylen > s->conf->max_event_bytes) {
		conn_error(s, c, 413, NULL, "body larger than max_event_bytes");
		return;
	}
	if (req->seen & HTTP_SEEN_EVENT_TYPE) {
		type = req->event_type;
		typelen = strlen(type);
		if ((req->overlong & HTTP_SEEN_EVENT_TYPE) ||
		    !sse_event_type_valid(type, typelen)) {
			conn_error(s, c, 400, NULL, "bad Ringcast-Event: 1 to "
			    "%d bytes, no CR or LF", SSE_EVENT_TYPE_MAX);
			return;
		}
	}
	if (!publish_utf8_valid((const unsigned char *)req->body,
	    req->bodylen)) {
		conn_error(s, c, 400, NULL, "the body is not UTF-8 text");
		return;
	}
	if (serve_catalog(s) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	publish_credential(c, &cred);
	rc = publish_authorize(s, c, &cred, name, "", &topic);
	auth_cred_free(&cred);
	if (rc == -1)
		return;
	size = sse_body_size(typelen, req->body, req->bodylen);
	if (size > s->scratchsize) {
		conn_error(s, c, 413, NULL, "event too large for the ring "
		    "once encoded");
		return;
	}
	sse_encode_body(s->scratch, s->scratchsize, type, typelen, req->body,
	    req->bodylen);
	if (s->cpub != NULL) {
		publish_cluster(s, c, &name, (const void *const *)&s->scratch,
		    &size, 1, 0);
		return;
	}
	if (ring_append(s->ring, topic.id, s->scratch, size, &seq) == -1) {
		publish_append_failed(s, c);
		return;
	}
	metrics_add(s->slot, METRICS_EVENTS_PUBLISHED, 1);
	if (s->wake != NULL)
		wake_notify(s->wake, s->wake_slot, topic.id);
	snprintf(body, sizeof(body), "{\"id\":\"%llu\"}\n",
	    (unsigned long long)seq);
	snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: %llu\r\n",
	    (unsigned long long)seq);
	conn_respond(s, c, 201, hdr, "application/json", body, strlen(body));
}

/*
 * Resolve and authorise every event's topic, then encode them all into the
 * scratch buffer; ev[] points into it.  Consecutive events of one topic
 * share a lookup.  0, or -1 when the request was answered.
 */
static int
publish_batch_prepare(struct serve *s, struct conn *c, const struct batch *b,
    struct auth_cred *cred, struct ring_event *ev, uint32_t *topics)
{
	const struct batch_event	*e;
	struct catalog_topic		 topic;
	char				 where[32];
	size_t				 i, pos = 0, size;

	for (i = 0; i < b->n; i++) {
		e = &b->events[i];
		if (i == 0 || strcmp(e->topic, b->events[i - 1].topic) != 0) {
			snprintf(where, sizeof(where), "line %zu: ", e->line);
			if (publish_authorize(s, c, cred, e->topic, where,
			    &topic) == -1)
				return -1;
		}
		size = sse_body_size(e->typelen, e->data, e->datalen);
		if (size > s->scratchsize - pos) {
			conn_error(s, c, 413, NULL, "line %zu: the batch is too "
			    "large for the ring once encoded", e->line);
			return -1;
		}
		sse_encode_body(s->scratch + pos, s->scratchsize - pos,
		    e->type, e->typelen, e->data, e->datalen);
		ev[i].topic = topic.id;
		ev[i].body = s->scratch + pos;
		ev[i].len = size;
		topics[i] = topic.id;
		pos += size;
	}
	return 0;
}

void
publish_batch(struct serve *s, struct conn *c)
{
	struct http_request	*req = &c->io->reader.req;
	struct batch		 b = { 0 };
	struct ring_event	*ev = NULL;
	uint32_t		*topics = NULL;
	struct buf		 body = { 0 };
	struct auth_cred	 cred;
	uint64_t		 first;
	char			 err[256], hdr[64];
	int			 rc;

	if (batch_parse(&b, req->body, req->bodylen,
	    s->conf->max_batch_events, s->conf->max_event_bytes, err,
	    sizeof(err)) == -1) {
		conn_error(s, c, 400, NULL, "%s", err);
		return;
	}
	if ((ev = calloc(b.n, sizeof(*ev))) == NULL ||
	    (topics = calloc(b.n, sizeof(*topics))) == NULL) {
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		goto done;
	}
	if (serve_catalog(s) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		goto done;
	}
	publish_credential(c, &cred);
	rc = publish_batch_prepare(s, c, &b, &cred, ev, topics);
	auth_cred_free(&cred);
	if (rc == -1)
		goto done;
	if (s->cpub != NULL) {
		publish_batch_cluster(s, c, &b, ev);
		goto done;
	}
	if (ring_append_batch(s->ring, ev, b.n, &first) == -1) {
		publish_append_failed(s, c);
		goto done;
	}
	metrics_add(s->slot, METRICS_EVENTS_PUBLISHED, b.n);
	if (s->wake != NULL)
		wake_notify_topics(s->wake, s->wake_slot, topics,
		    b.n);
	if (batch_ids_json(&body, first, b.n) == -1) {
		/* Appended: the client must not retry, so no 5xx here. */
		buf_free(&body);
		snprintf(err, sizeof(err), "{\"first_id\":\"%llu\","
		    "\"count\":%zu}\n", (unsigned long long)first, b.n);
		buf_append(&body, err, strlen(err));
	}
	snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: %llu-%llu\r\n",
	    (unsigned long long)first, (unsigned long long)(first + b.n - 1));
	conn_respond(s, c, 201, hdr, "application/json", body.data, body.len);
done:
	buf_free(&body);
	free(topics);
	free(ev);
	batch_free(&b);
}
