/*
 * route: see route.h.  Streams are refused with a soft reject (200, retry,
 * clean end) for anything transient, since EventSource gives up for good on
 * any other status; everything else gets a plain status with a reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/admin.h"
#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/publish.h"
#include "ringcast/ring.h"
#include "ringcast/route.h"
#include "ringcast/serve.h"
#include "ringcast/stream.h"

#define ROUTE_FULL_RETRY_MS	5000

/* Resolve and authorise the topics of a stream request; on failure the
 * connection has been answered and -1 is returned. */
static int
route_stream_topics(struct serve *s, struct conn *c, char **names,
    size_t nnames, const char *token, uint32_t *ids)
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
		if (token == NULL) {
			conn_error(s, c, 401, "WWW-Authenticate: Bearer "
			    "realm=\"ringcast\"\r\n", "topic '%s' needs a "
			    "subscribe token", names[i]);
			return -1;
		}
		res = catalog_token_check(s->cat, token, strlen(token),
		    topic.id, CATALOG_RIGHT_SUBSCRIBE);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(s, c, 403, NULL, "the token may not "
			    "subscribe to '%s'", names[i]);
			return -1;
		}
		if (res != CATALOG_FOUND) {
			stream_soft_reject(s, c, s->conf->retry_ms * 2,
			    "catalog unavailable, retry later");
			return -1;
		}
	}
	return 0;
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
	const char		*bearer;
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
	bearer = http_bearer(req);
	pos = 0;
	if (bearer == NULL && (n = http_query_next(query, "token", &pos,
	    token, sizeof(token))) >= 0)
		bearer = token;
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
	if (route_stream_topics(s, c, names, nnames, bearer, ids) == -1) {
		route_free_names(names, nnames);
		return;
	}
	route_free_names(names, nnames);
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
		else if (s->draining)
			conn_error(s, c, 503, "Retry-After: 1\r\n", "draining");
		else
			conn_respond(s, c, 200, NULL, NULL, "ok\n", 3);
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

