/*
 * publish: see publish.h.  The event is encoded into the worker's scratch
 * buffer (no allocation per event) and appended; the ring wakes the
 * workers that follow the topic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
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

/* Look up (or, when configured, create) a topic for a publish. */
static enum catalog_result
publish_topic(struct serve *s, const char *name,
    struct catalog_topic *topic)
{
	enum catalog_result	 res;

	res = catalog_topic_lookup(s->cat, name, strlen(name), topic);
	if (res != CATALOG_NOT_FOUND || !s->conf->auto_create_topics)
		return res;
	res = catalog_topic_add(s->cat, name, 0, "", topic);
	if (res == CATALOG_EXISTS)
		res = catalog_topic_lookup(s->cat, name, strlen(name), topic);
	return res;
}

void
publish_one(struct serve *s, struct conn *c, const char *name)
{
	struct http_request	*req = &c->io->reader.req;
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	const char		*type = NULL, *bearer;
	size_t			 typelen = 0, size;
	uint64_t		 seq;
	char			 body[64], hdr[64];

	if (!catalog_topic_name_valid(name, strlen(name))) {
		conn_error(s, c, 400, NULL, "bad topic name");
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
	if (!publish_utf8_valid((const unsigned char *)req->body, req->bodylen)) {
		conn_error(s, c, 400, NULL, "the body is not UTF-8 text");
		return;
	}
	if (serve_catalog(s) == -1) {
		conn_error(s, c, 503, "Retry-After: 1\r\n",
		    "catalog unavailable");
		return;
	}
	res = publish_topic(s, name, &topic);
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
	if (s->conf->require_token) {
		if ((bearer = http_bearer(req)) == NULL) {
			conn_error(s, c, 401, "WWW-Authenticate: Bearer "
			    "realm=\"ringcast\"\r\n", "publishing needs a "
			    "token: Authorization: Bearer ...");
			return;
		}
		res = catalog_token_check(s->cat, bearer, strlen(bearer),
		    topic.id, CATALOG_RIGHT_PUBLISH);
		if (res == CATALOG_NOT_FOUND) {
			conn_error(s, c, 403, NULL, "the token may not publish "
			    "to '%s'", name);
			return;
		}
		if (res != CATALOG_FOUND) {
			conn_error(s, c, 503, "Retry-After: 1\r\n",
			    "catalog unavailable");
			return;
		}
	}
	size = sse_body_size(typelen, req->body, req->bodylen);
	if (size > s->scratchsize) {
		conn_error(s, c, 413, NULL, "event too large for the ring "
		    "once encoded");
		return;
	}
	sse_encode_body(s->scratch, s->scratchsize, type, typelen, req->body,
	    req->bodylen);
	if (ring_append(s->ring, topic.id, s->scratch, size, &seq) == -1) {
		if (errno == EMSGSIZE) {
			conn_error(s, c, 413, NULL, "event too large for the "
			    "ring once encoded");
			return;
		}
		log_warn("ring %s: append", ring_path(s->ring));
		conn_error(s, c, 503, "Retry-After: 1\r\n", "ring unavailable");
		return;
	}
	metrics_add(s->slot, METRICS_EVENTS_PUBLISHED, 1);
	if (s->wake != NULL)
		wake_notify(s->wake, topic.id);
	snprintf(body, sizeof(body), "{\"id\":\"%llu\"}\n",
	    (unsigned long long)seq);
	snprintf(hdr, sizeof(hdr), "Ringcast-Event-ID: %llu\r\n",
	    (unsigned long long)seq);
	conn_respond(s, c, 201, hdr, "application/json", body, strlen(body));
}

