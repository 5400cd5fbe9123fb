/*
 * fuzz_http: the request path of one connection.  The first 8 bytes seed the
 * split points and the limits; the rest is fed to http_reader_feed in pieces,
 * pipelined requests are taken one by one with http_reader_next, and every
 * complete request goes through http_url_split and http_query_next.  The
 * same bytes fed in one piece must give the same requests: how the socket
 * happens to cut the stream may not change what the server sees.
 */
#include <string.h>
#include <sys/types.h>

#include "ringcast/http.h"
#include "fuzz.h"

/* What a run saw, to compare the split run with the whole one. */
struct outcome {
	unsigned int	 requests;
	uint64_t	 digest;
	int		 error;
};

static void
digest_add(uint64_t *h, const void *p, size_t len)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < len; i++) {
		*h ^= s[i];
		*h *= 0x100000001b3ULL;
	}
	*h ^= len;
	*h *= 0x100000001b3ULL;
}

/* A bounded, NUL-terminated header field that is empty unless seen. */
static void
check_field(const char *field, size_t cap, unsigned int bit,
    const struct http_request *req, uint64_t *h)
{
	size_t	 n = strnlen(field, cap);

	FUZZ_CHECK(n < cap);
	if (!(req->seen & bit))
		FUZZ_CHECK(n == 0);
	FUZZ_CHECK(!(req->overlong & bit) || (req->seen & bit));
	/* An overlong value holds an unspecified part of itself. */
	if (!(req->overlong & bit))
		digest_add(h, field, n);
}

static void
check_query(const char *query, const char *key)
{
	char	 out[64];
	size_t	 pos = 0, last = 0, qlen = strlen(query);
	ssize_t	 n;

	for (;;) {
		n = http_query_next(query, key, &pos, out, sizeof(out));
		FUZZ_CHECK(n >= -2 && n < (ssize_t)sizeof(out));
		FUZZ_CHECK(pos <= qlen);
		if (n == -1)
			break;
		FUZZ_CHECK(pos > last);
		last = pos;
		if (n >= 0) {
			/* An encoded NUL is refused, so the length is exact. */
			FUZZ_CHECK(strlen(out) == (size_t)n);
		}
	}
}

static void
check_request(const struct http_reader *r, uint64_t *h)
{
	const struct http_request	*req = &r->req;
	char				*path;
	const char			*query;

	FUZZ_CHECK(r->headers_done);
	FUZZ_CHECK(req->url != NULL);
	FUZZ_CHECK(strlen(req->url) == req->urllen);
	FUZZ_CHECK(req->major == 1);
	FUZZ_CHECK(req->bodylen <= r->max_body_bytes);
	FUZZ_CHECK(req->bodylen == 0 || req->body != NULL);
	FUZZ_CHECK(req->method <= HTTP_SOURCE);
	FUZZ_CHECK(r->header_bytes <= r->max_header_bytes);
	check_field(req->last_event_id, sizeof(req->last_event_id),
	    HTTP_SEEN_LAST_EVENT_ID, req, h);
	/* Authorization and Cookie are allocated when they come. */
	FUZZ_CHECK((req->auth != NULL) == ((req->seen & HTTP_SEEN_AUTH) != 0));
	FUZZ_CHECK((req->cookie != NULL) ==
	    ((req->seen & HTTP_SEEN_COOKIE) != 0));
	if (req->auth != NULL)
		check_field(req->auth, HTTP_AUTH_MAX + 1, HTTP_SEEN_AUTH, req,
		    h);
	if (req->cookie != NULL)
		check_field(req->cookie, HTTP_COOKIE_MAX + 1, HTTP_SEEN_COOKIE,
		    req, h);
	check_field(req->event_type, sizeof(req->event_type),
	    HTTP_SEEN_EVENT_TYPE, req, h);
	check_field(req->origin, sizeof(req->origin), HTTP_SEEN_ORIGIN, req,
	    h);
	digest_add(h, &req->method, sizeof(req->method));
	digest_add(h, &req->minor, sizeof(req->minor));
	digest_add(h, &req->keep_alive, sizeof(req->keep_alive));
	digest_add(h, &req->seen, sizeof(req->seen));
	digest_add(h, &req->overlong, sizeof(req->overlong));
	digest_add(h, req->url, req->urllen);
	if (req->bodylen > 0)
		digest_add(h, req->body, req->bodylen);

	if (http_url_split(req, &path, &query) == -1) {
		FUZZ_CHECK(path == NULL && query == NULL);
		return;
	}
	FUZZ_CHECK(path != NULL && path[0] == '/');
	FUZZ_CHECK(strlen(path) <= req->urllen);
	if (query != NULL) {
		FUZZ_CHECK(query > req->url && query <= req->url + req->urllen);
		FUZZ_CHECK(query[-1] == '?');
		check_query(query, "topic");
		check_query(query, "lastEventId");
		check_query(query, "token");
		check_query(query, "");
	}
	free(path);
}

static void
run(const char *data, size_t len, uint64_t seed, int whole,
    struct outcome *out)
{
	static const uint32_t	 header_limits[] = { 256, 1024, 16384 };
	static const uint32_t	 body_limits[] = { 1, 64, 65536 };
	struct http_reader	 r;
	uint64_t		 rng = seed;
	size_t			 off = 0, piece, n, maxpiece;
	unsigned int		 nready = 0;

	memset(out, 0, sizeof(*out));
	out->digest = 0xcbf29ce484222325ULL;
	http_reader_init(&r, header_limits[seed % 3],
	    body_limits[(seed >> 2) % 3]);
	switch ((seed >> 4) % 4) {
	case 0:
		maxpiece = 1;
		break;
	case 1:
		maxpiece = 7;
		break;
	case 2:
		maxpiece = 300;
		break;
	default:
		maxpiece = 4096;
		break;
	}
	FUZZ_CHECK(http_reader_feed(&r, data, 0) == 0);
	for (;;) {
		if (r.state == HTTP_REQUEST_READY) {
			check_request(&r, &out->digest);
			out->requests++;
			http_reader_next(&r);
			FUZZ_CHECK(r.state == HTTP_READING);
			FUZZ_CHECK(r.req.url == NULL && r.req.body == NULL);
			continue;
		}
		if (r.state == HTTP_ERROR)
			break;
		FUZZ_CHECK(r.state == HTTP_READING);
		if (off == len) {
			http_reader_eof(&r);
			FUZZ_CHECK(r.state == (r.started ? HTTP_ERROR :
			    HTTP_READING));
			break;
		}
		piece = whole ? len - off : 1 + fuzz_rand(&rng) % maxpiece;
		if (piece > len - off)
			piece = len - off;
		n = http_reader_feed(&r, data + off, piece);
		FUZZ_CHECK(n <= piece);
		/* Reading on means everything was taken. */
		if (r.state == HTTP_READING)
			FUZZ_CHECK(n == piece);
		/* A ready reader takes nothing more until next(). */
		if (r.state == HTTP_REQUEST_READY) {
			FUZZ_CHECK(http_reader_feed(&r, data, len) == 0);
			nready++;
		}
		off += n;
	}
	if (r.state == HTTP_ERROR) {
		FUZZ_CHECK(r.error_status == 400 || r.error_status == 405 ||
		    r.error_status == 408 || r.error_status == 413 ||
		    r.error_status == 431 || r.error_status == 503);
		FUZZ_CHECK(r.error_reason != NULL && r.error_reason[0] != '\0');
		FUZZ_CHECK(http_reader_feed(&r, data, len) == 0);
		/* EOF after an error keeps the first verdict. */
		n = (size_t)r.error_status;
		http_reader_eof(&r);
		FUZZ_CHECK((size_t)r.error_status == n);
		out->error = 1;
	}
	FUZZ_CHECK(nready == out->requests);
	http_reader_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome	 split, whole;
	uint64_t	 seed = 0;

	if (size < 8)
		return 0;
	memcpy(&seed, data, 8);
	run((const char *)data + 8, size - 8, seed, 0, &split);
	run((const char *)data + 8, size - 8, seed, 1, &whole);
	FUZZ_CHECK(split.requests == whole.requests);
	FUZZ_CHECK(split.digest == whole.digest);
	FUZZ_CHECK(split.error == whole.error);
	return 0;
}
