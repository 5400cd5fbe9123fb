/*
 * route: see route.h.  Streams are refused with a soft reject (200, retry,
 * clean end) for anything transient, since EventSource gives up for good on
 * any other status; everything else gets a plain status with a reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/admin.h"
#include "ringcast/auth.h"
#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/cpub.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/publish.h"
#include "ringcast/ring.h"
#include "ringcast/route.h"
#include "ringcast/serve.h"
#include "ringcast/stream.h"

#define ROUTE_FULL_RETRY_MS	5000
#define ROUTE_CHALLENGE		"WWW-Authenticate: Bearer realm=\"ringcast\"\r\n"
#define ROUTE_CHALLENGE_INVALID	"WWW-Authenticate: Bearer realm=\"ringcast\", " \
	"error=\"invalid_token\"\r\n"

/*
 * Resolve and authorise the topics of a stream request; on failure the
 * connection has been answered and -1 is returned.  A JWT in cred is
 * verified once, on the first private topic.
 */
static int
route_stream_topics(struct serve *s, struct conn *c, char **names,
    size_t nnames, struct auth_cred *cred, uint32_t *ids)
{
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	size_t			 i;

	for (i = 0; i < nnames; i++) {
		if (serve_catalog(s) == -1) {
			stream_soft_reject(s, c, s->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
		res = serve_topic(s, names[i], &topic);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(s, c, 404, NULL, "unknown topic '%s'",
			    names[i]);
			return -1;
		}
		if (res != CATALOG_FOUND) {
			log_warnx("topic %s: %s", names[i],
			    catalog_error(s->cat));
			stream_soft_reject(s, c, s->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
		ids[i] = topic.id;
		if (!(topic.flags & CATALOG_TOPIC_PRIVATE))
			continue;
		switch (auth_check(s->conf->auth, s->cat, cred, topic.id,
		    names[i], CATALOG_RIGHT_SUBSCRIBE, time(NULL))) {
		case AUTH_ALLOWED:
			continue;
		case AUTH_NO_TOKEN:
			conn_error(s, c, 401, ROUTE_CHALLENGE, "topic '%s' "
			    "needs a subscribe token", names[i]);
			return -1;
		case AUTH_BAD_TOKEN:
			metrics_add(s->slot, METRICS_JWT_REFUSED, 1);
			conn_error(s, c, 401, ROUTE_CHALLENGE_INVALID, "%s",
			    cred->reason);
			return -1;
		case AUTH_FORBIDDEN:
			conn_error(s, c, 403, NULL, "the token may not "
			    "subscribe to '%s'", names[i]);
			return -1;
		case AUTH_UNAVAILABLE:
			stream_soft_reject(s, c, s->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
	}
	return 0;
}

/*
 * The request's credential, the first that came of: Authorization: Bearer,
 * the [auth] cookie, the token query parameter (DESIGN §10.3), into buf
 * when it needs a copy.  None of them is ever logged.
 */
static void
route_credential(struct serve *s, struct conn *c, const char *query,
    char *buf, size_t cap, struct auth_cred *cred)
{
	struct http_request	*req = &c->io->reader.req;
	size_t			 pos = 0;

	memset(cred, 0, sizeof(*cred));
	if ((cred->token = http_bearer(req)) != NULL)
		return;
	if (http_cookie(req, s->conf->auth_cookie, buf, cap) > 0 ||
	    http_query_next(query, "token", &pos, buf, cap) > 0)
		cred->token = buf;
}

/* When the stream must end: the second of s->now_ms at the JWT's exp, or
 * exp + clock_skew for a token taken in the skew after it, so a client
 * is not sent back at once with the same token; 0 when no JWT was used. */
static uint32_t
route_expiry(struct serve *s, const struct auth_cred *cred)
{
	int64_t		 left, now = (int64_t)time(NULL);
	uint64_t	 base = s->now_ms / 1000;

	if (cred->state != 1)
		return 0;
	left = cred->grant.exp - now;
	if (left <= 0)
		left += (int64_t)(s->conf->clock_skew_ms / 1000);
	if (left < 1)
		left = 1;
	if ((uint64_t)left > UINT32_MAX - 1 - base)
		return UINT32_MAX - 1;
	return (uint32_t)(base + (uint64_t)left);
}

static void
route_free_names(char **names, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(names[i]);
}

/* GET /events/{topic} and GET /events?topic=a&topic=b */
static void
route_events(struct serve *s, struct conn *c, const char *path,
    const char *query)
{
	struct http_request	*req = &c->io->reader.req;
	char			*names[STREAM_TOPICS_MAX];
	uint32_t		 ids[STREAM_TOPICS_MAX];
	char			 value[TOPIC_NAME_MAX + 2], token[HTTP_AUTH_MAX];
	char			 resume[HTTP_EVENT_ID_MAX + 1];
	struct auth_cred	 cred;
	size_t			 nnames = 0, pos = 0, j;
	ssize_t			 n;
	int			 has_resume = 0, dup;

	if (strncmp(path, "/events/", 8) == 0) {
		if (!catalog_topic_name_valid(path + 8, strlen(path + 8))) {
			conn_error(s, c, 400, NULL, "bad topic name");
			return;
		}
		if ((names[nnames++] = strdup(path + 8)) == NULL) {
			conn_error(s, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
			return;
		}
	}
	while (path[7] == '\0' && (n = http_query_next(query, "topic", &pos,
	    value, sizeof(value))) != -1) {
		if (n == -2 || !catalog_topic_name_valid(value, (size_t)n)) {
			route_free_names(names, nnames);
			conn_error(s, c, 400, NULL, "bad topic name");
			return;
		}
		for (dup = 0, j = 0; j < nnames; j++)
			dup |= strcmp(names[j], value) == 0;
		if (dup)
			continue;
		if (nnames == STREAM_TOPICS_MAX) {
			route_free_names(names, nnames);
			conn_error(s, c, 400, NULL, "more than %d topics",
			    STREAM_TOPICS_MAX);
			return;
		}
		if ((names[nnames++] = strdup(value)) == NULL) {
			route_free_names(names, nnames - 1);
			conn_error(s, c, 503, "Retry-After: 1\r\n",
			    "out of memory");
			return;
		}
	}
	if (nnames == 0) {
		conn_error(s, c, 400, NULL, "no topic: use /events/{topic} or "
		    "/events?topic=a&topic=b");
		return;
	}
	if (s->draining || s->retiring) {
		route_free_names(names, nnames);
		stream_soft_reject(s, c, s->conf->retry_ms, "server is "
		    "restarting, retry shortly");
		return;
	}
	if (c->flags & CONN_OVER_CAP) {
		route_free_names(names, nnames);
		stream_soft_reject(s, c, ROUTE_FULL_RETRY_MS, "server full, "
		    "retry later");
		return;
	}
	route_credential(s, c, query, token, sizeof(token), &cred);
	n = route_stream_topics(s, c, names, nnames, &cred, ids);
	route_free_names(names, nnames);
	c->expires = route_expiry(s, &cred);
	auth_cred_free(&cred);
	explicit_bzero(token, sizeof(token));
	if (n == -1)
		return;
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
	stream_open(s, c, ids, nnames, resume, has_resume);
}

/*
 * GET /healthz: 200 "ok"; 503 while draining.  In a cluster: 200
 * "degraded: ..." while NATS or the relay is down (streams go on from the
 * ring; publishes get 503), and 503 when the ring holds ids the stream
 * lacks (this node would serve other events under those ids).
 */
static void
route_health(struct serve *s, struct conn *c)
{
	const struct metrics_cluster	*m = &s->shm->cluster;
	const char			*why = NULL;
	char				 body[160];

	if (s->draining) {
		conn_error(s, c, 503, "Retry-After: 1\r\n", "draining");
		return;
	}
	if (!__atomic_load_n(&m->enabled, __ATOMIC_RELAXED)) {
		conn_respond(s, c, 200, NULL, NULL, "ok\n", 3);
		return;
	}
	if (__atomic_load_n(&m->conflict, __ATOMIC_RELAXED)) {
		conn_error(s, c, 503, "Ringcast-Health: conflict\r\n",
		    "cluster: this node's ring holds ids the stream lacks "
		    "(see the log)");
		return;
	}
	if (!__atomic_load_n(&m->running, __ATOMIC_RELAXED))
		why = "the relay is not running";
	else if (!__atomic_load_n(&m->connected, __ATOMIC_RELAXED))
		why = "NATS is unreachable";
	else if (!__atomic_load_n(&m->consuming, __ATOMIC_RELAXED))
		why = "not consuming the stream yet";
	else if (s->cpub != NULL && !cpub_connected(s->cpub))
		why = "this worker's NATS connection is down";
	if (why == NULL) {
		conn_respond(s, c, 200, NULL, NULL, "ok\n", 3);
		return;
	}
	snprintf(body, sizeof(body), "degraded: %s; streams go on from the "
	    "ring, publishes get 503\n", why);
	conn_respond(s, c, 200, "Ringcast-Health: degraded\r\n", NULL, body,
	    strlen(body));
}

/* OPTIONS: a CORS preflight. */
static void
route_preflight(struct serve *s, struct conn *c)
{
	static const char allow[] = "Allow: GET, POST, OPTIONS\r\n"
	    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
	    "Access-Control-Allow-Headers: Last-Event-ID, Authorization, "
	    "Ringcast-Event, Content-Type\r\n"
	    "Access-Control-Max-Age: 600\r\n";

	conn_respond(s, c, 204, allow, NULL, NULL, 0);
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

void
route_request(struct serve *s, struct conn *c)
{
	struct http_request	*req = &c->io->reader.req;
	char			*path = NULL;
	const char		*query = NULL;
	int			 admin = (c->flags & CONN_ADMIN) != 0;
	int			 get = req->method == HTTP_GET ||
				    req->method == HTTP_HEAD;

	metrics_add(s->slot, METRICS_REQUESTS, 1);
	if (http_url_split(req, &path, &query) == -1) {
		conn_error(s, c, 400, NULL, "bad request target");
		return;
	}
	if ((c->flags & CONN_OVER_CAP) && strcmp(path, "/events") != 0 &&
	    strncmp(path, "/events/", 8) != 0) {
		/* Streams get a soft reject; everything else a plain 503. */
		c->flags |= CONN_CLOSE;
		conn_error(s, c, 503, "Retry-After: 5\r\n", "too many "
		    "connections, retry later");
	} else if (req->method == HTTP_OPTIONS)
		route_preflight(s, c);
	else if (strcmp(path, "/healthz") == 0) {
		if (!get)
			conn_error(s, c, 405, "Allow: GET\r\n", "use GET");
		else
			route_health(s, c);
	} else if (admin)
		admin_request(s, c, path, query);
	else if (strcmp(path, "/") == 0 && s->conf->demo) {
		if (!get)
			conn_error(s, c, 405, "Allow: GET\r\n", "use GET");
		else
			conn_respond(s, c, 200, NULL, "text/html; "
			    "charset=utf-8", demo_page, sizeof(demo_page) - 1);
	} else if (strcmp(path, "/events") == 0 ||
	    strncmp(path, "/events/", 8) == 0) {
		if (req->method != HTTP_GET)
			conn_error(s, c, 405, "Allow: GET, OPTIONS\r\n",
			    "subscribe with GET");
		else
			route_events(s, c, path, query);
	} else if (strcmp(path, "/publish") == 0) {
		if (req->method != HTTP_POST)
			conn_error(s, c, 405, "Allow: POST, OPTIONS\r\n",
			    "publish with POST");
		else if (!http_is_ndjson(req))
			conn_error(s, c, 415, NULL, "a batch publish is "
			    "Content-Type: application/x-ndjson, one event "
			    "per line");
		else
			publish_batch(s, c);
	} else if (strncmp(path, "/publish/", 9) == 0) {
		if (req->method != HTTP_POST)
			conn_error(s, c, 405, "Allow: POST, OPTIONS\r\n",
			    "publish with POST");
		else
			publish_one(s, c, path + 9);
	} else
		conn_error(s, c, 404, NULL, "no such resource");
	free(path);
}

