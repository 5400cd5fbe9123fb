/*
 * http: http-parser callbacks that copy the few fields ringcast needs into
 * bounded buffers as they stream by, count header bytes against the limit,
 * and refuse smuggling-prone requests (two Content-Length, or Content-Length
 * with Transfer-Encoding).  The parser is paused after each request so a
 * pipelined one waits until the first is answered.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "ringcast/http.h"

static struct http_reader *
reader_of(http_parser *p)
{
	return p->data;
}

static int
reader_fail(struct http_reader *r, int status, const char *reason)
{
	if (r->state != HTTP_ERROR) {
		r->state = HTTP_ERROR;
		r->error_status = status;
		r->error_reason = reason;
	}
	return -1;
}

/* Count bytes of the request line and headers against the limit. */
static int
reader_count(struct http_reader *r, size_t len)
{
	r->header_bytes += len;
	if (r->header_bytes > r->max_header_bytes)
		return reader_fail(r, 431, "request header fields too large");
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	reader_of(p)->started = 1;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_reader	*r = reader_of(p);
	char			*url;

	if (reader_count(r, len) == -1)
		return -1;
	if (memchr(at, '\0', len) != NULL)
		return reader_fail(r, 400, "NUL in request target");
	url = realloc(r->req.url, r->req.urllen + len + 1);
	if (url == NULL)
		return reader_fail(r, 503, "out of memory");
	memcpy(url + r->req.urllen, at, len);
	r->req.urllen += len;
	url[r->req.urllen] = '\0';
	r->req.url = url;
	return 0;
}

/* Which field a header name fills, by its lower-case name. */
static void
header_classify(struct http_reader *r)
{
	static const struct {
		const char	*name;
		unsigned int	 bit;
	} known[] = {
		{ "last-event-id", HTTP_SEEN_LAST_EVENT_ID },
		{ "authorization", HTTP_SEEN_AUTH },
		{ "ringcast-event", HTTP_SEEN_EVENT_TYPE },
		{ "origin", HTTP_SEEN_ORIGIN },
		{ "access-control-request-method", HTTP_SEEN_ACR_METHOD },
		{ "host", HTTP_SEEN_HOST },
		{ "content-type", HTTP_SEEN_CONTENT_TYPE },
		{ "x-forwarded-for", HTTP_SEEN_FORWARDED_FOR },
		{ "cookie", HTTP_SEEN_COOKIE },
	};
	size_t	 i;

	r->target = 0;
	r->targetlen = 0;
	if (r->fieldlen >= sizeof(r->field))
		return;
	r->field[r->fieldlen] = '\0';
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcasecmp(r->field, known[i].name) == 0) {
			r->target = known[i].bit;
			return;
		}
	}
	if (strcasecmp(r->field, "content-length") == 0)
		r->content_lengths++;
	else if (strcasecmp(r->field, "transfer-encoding") == 0)
		r->transfer_encoding = 1;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_reader	*r = reader_of(p);

	if (reader_count(r, len) == -1)
		return -1;
	if (r->field_in_value) {
		r->field_in_value = 0;
		r->fieldlen = 0;
	}
	if (r->fieldlen < sizeof(r->field)) {
		size_t n = len;

		if (n > sizeof(r->field) - r->fieldlen)
			n = sizeof(r->field) - r->fieldlen;
		memcpy(r->field + r->fieldlen, at, n);
	}
	r->fieldlen += len;
	return 0;
}

/* A lazily allocated field of cap bytes; NULL on allocation failure. */
static char *
lazy_buffer(char **field, size_t cap)
{
	if (*field == NULL && (*field = calloc(1, cap)) == NULL)
		return NULL;
	return *field;
}

/* The buffer target fills and its size; NULL for a header not kept, or
 * when memory ran out (*cap is then non-zero). */
static char *
target_buffer(struct http_request *req, unsigned int target, size_t *cap)
{
	switch (target) {
	case HTTP_SEEN_LAST_EVENT_ID:
		*cap = sizeof(req->last_event_id);
		return req->last_event_id;
	case HTTP_SEEN_AUTH:
		*cap = HTTP_AUTH_MAX + 1;
		return lazy_buffer(&req->auth, *cap);
	case HTTP_SEEN_EVENT_TYPE:
		*cap = sizeof(req->event_type);
		return req->event_type;
	case HTTP_SEEN_ORIGIN:
		*cap = sizeof(req->origin);
		return req->origin;
	case HTTP_SEEN_CONTENT_TYPE:
		*cap = sizeof(req->content_type);
		return req->content_type;
	case HTTP_SEEN_COOKIE:
		*cap = HTTP_COOKIE_MAX + 1;
		return lazy_buffer(&req->cookie, *cap);
	default:
		*cap = 0;
		return NULL;
	}
}

/*
 * Append to X-Forwarded-For, keeping its right end: when the value outgrows
 * the buffer, whole hops are dropped from the left (the client's own claims,
 * furthest from us), and a hop whose start was dropped is dropped whole, so
 * what is kept is always a list of complete hops.  O(HTTP_FORWARDED_MAX).
 */
static void
reader_forwarded(struct http_reader *r, const char *at, size_t len)
{
	char		*ff = r->req.forwarded_for;
	size_t		 have = strlen(ff), cap = sizeof(r->req.forwarded_for) - 1;
	const char	*comma;

	for (;;) {
		if (r->forwarded_skip) {
			if ((comma = memchr(at, ',', len)) == NULL)
				return;
			len -= (size_t)(comma + 1 - at);
			at = comma + 1;
			r->forwarded_skip = 0;
		}
		if (have + len <= cap)
			break;
		r->req.overlong |= HTTP_SEEN_FORWARDED_FOR;
		if ((comma = memchr(ff, ',', have)) != NULL) {
			have -= (size_t)(comma + 1 - ff);
			memmove(ff, comma + 1, have + 1);
		} else {
			/* The kept part is the start of a hop that goes on
			 * in at: drop it and the rest of that hop. */
			have = 0;
			ff[0] = '\0';
			r->forwarded_skip = 1;
		}
	}
	memcpy(ff + have, at, len);
	ff[have + len] = '\0';
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_reader	*r = reader_of(p);
	char			*dst;
	size_t			 cap;
	int			 cookie_join = 0;

	if (reader_count(r, len) == -1)
		return -1;
	if (memchr(at, '\0', len) != NULL || memchr(at, '\r', len) != NULL)
		return reader_fail(r, 400, "NUL or CR in a header value");
	if (!r->field_in_value) {
		r->field_in_value = 1;
		header_classify(r);
		if (r->target != 0) {
			/* A repeated header we read is ambiguous: refuse.
			 * X-Forwarded-For is a list: its lines are one.
			 * Cookie may be split (RFC 9113 8.2.3): join. */
			if (r->target == HTTP_SEEN_FORWARDED_FOR) {
				r->forwarded_skip = 0;
				if (r->req.forwarded_for[0] != '\0')
					reader_forwarded(r, ",", 1);
			} else if ((r->req.seen & r->target) &&
			    r->target == HTTP_SEEN_COOKIE)
				cookie_join = 1;
			else if ((r->req.seen & r->target) &&
			    r->target != HTTP_SEEN_ACR_METHOD)
				return reader_fail(r, 400,
				    "repeated header field");
			r->req.seen |= r->target;
		}
	}
	if (r->target == HTTP_SEEN_FORWARDED_FOR) {
		reader_forwarded(r, at, len);
		return 0;
	}
	dst = target_buffer(&r->req, r->target, &cap);
	if (dst == NULL)
		return cap == 0 ? 0 : reader_fail(r, 503, "out of memory");
	if (cookie_join) {
		r->targetlen = strlen(dst);
		if (r->targetlen + 2 >= cap) {
			r->req.overlong |= r->target;
			return 0;
		}
		memcpy(dst + r->targetlen, "; ", 3);
		r->targetlen += 2;
	}
	if (r->targetlen + len >= cap) {
		r->req.overlong |= r->target;
		return 0;
	}
	memcpy(dst + r->targetlen, at, len);
	r->targetlen += len;
	dst[r->targetlen] = '\0';
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct http_reader	*r = reader_of(p);

	r->headers_done = 1;
	r->req.method = p->method;
	r->req.major = p->http_major;
	r->req.minor = p->http_minor;
	r->req.keep_alive = http_should_keep_alive(p);
	if (r->content_lengths > 1)
		return reader_fail(r, 400, "more than one Content-Length");
	if (r->content_lengths > 0 && r->transfer_encoding)
		return reader_fail(r, 400,
		    "both Content-Length and Transfer-Encoding");
	if (r->transfer_encoding && !(p->flags & F_CHUNKED))
		return reader_fail(r, 400, "unsupported Transfer-Encoding");
	if (p->http_major != 1)
		return reader_fail(r, 400, "unsupported HTTP version");
	if (p->http_minor >= 1 && !(r->req.seen & HTTP_SEEN_HOST))
		return reader_fail(r, 400, "HTTP/1.1 request without Host");
	r->body_limit = r->max_body_bytes;
	if (http_is_ndjson(&r->req))
		r->body_limit = r->max_batch_bytes;
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > r->body_limit)
		return reader_fail(r, 413, http_is_ndjson(&r->req) ?
		    "body larger than max_batch_bytes" :
		    "body larger than max_event_bytes");
	r->chunked = (p->flags & F_CHUNKED) != 0;
	return 0;
}

/*
 * http-parser, as Debian builds it (without HTTP_PARSER_STRICT), takes any
 * byte for the LF ending a chunk-size line and any two for the CRLF after
 * chunk data: "5\r\nhelloXX0\r\n\r\n" would publish "hello", where a proxy
 * in front may read the framing differently.  So the parser is paused where
 * each such line ends, and http_reader_feed looks at the bytes it took.
 */
static int
on_chunk_header(http_parser *p)
{
	struct http_reader	*r = reader_of(p);

	r->last_chunk = p->content_length == 0;
	r->check_crlf = 1;
	http_parser_pause(p, 1);
	return 0;
}

static int
on_chunk_complete(http_parser *p)
{
	struct http_reader	*r = reader_of(p);

	/* The last chunk ends with the message: checked there. */
	if (r->last_chunk)
		return 0;
	r->check_crlf = 1;
	http_parser_pause(p, 1);
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_reader	*r = reader_of(p);
	char			*body;
	size_t			 want;

	if (r->req.bodylen + len > r->body_limit)
		return reader_fail(r, 413, http_is_ndjson(&r->req) ?
		    "body larger than max_batch_bytes" :
		    "body larger than max_event_bytes");
	if (r->req.bodylen + len > r->bodycap) {
		want = r->bodycap ? r->bodycap * 2 : 1024;
		if ((p->flags & F_CONTENTLENGTH) && r->bodycap == 0)
			want = r->req.bodylen + len + p->content_length;
		while (want < r->req.bodylen + len)
			want *= 2;
		if (want > r->body_limit)
			want = r->body_limit;
		if ((body = realloc(r->req.body, want)) == NULL)
			return reader_fail(r, 503, "out of memory");
		r->req.body = body;
		r->bodycap = want;
	}
	memcpy(r->req.body + r->req.bodylen, at, len);
	r->req.bodylen += len;
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_reader	*r = reader_of(p);

	r->state = HTTP_REQUEST_READY;
	if (r->chunked)
		r->check_crlf = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings reader_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_complete = on_chunk_complete,
};

void
http_reader_init(struct http_reader *r, uint32_t max_header_bytes,
    uint32_t max_body_bytes)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
	r->max_header_bytes = max_header_bytes;
	r->max_body_bytes = max_body_bytes;
	r->max_batch_bytes = max_body_bytes;
	r->body_limit = max_body_bytes;
}

void
http_reader_set_batch_limit(struct http_reader *r, uint32_t max_batch_bytes)
{
	r->max_batch_bytes = max_batch_bytes;
}

int
http_is_ndjson(const struct http_request *req)
{
	static const char	 type[] = "application/x-ndjson";
	const char		*rest;

	if (!(req->seen & HTTP_SEEN_CONTENT_TYPE) ||
	    (req->overlong & HTTP_SEEN_CONTENT_TYPE) ||
	    strncasecmp(req->content_type, type, sizeof(type) - 1) != 0)
		return 0;
	rest = req->content_type + sizeof(type) - 1;
	return *rest == '\0' || *rest == ';' || *rest == ' ' || *rest == '\t';
}

void
http_reader_free(struct http_reader *r)
{
	free(r->req.url);
	free(r->req.body);
	if (r->req.auth != NULL)
		explicit_bzero(r->req.auth, HTTP_AUTH_MAX + 1);
	if (r->req.cookie != NULL)
		explicit_bzero(r->req.cookie, HTTP_COOKIE_MAX + 1);
	free(r->req.auth);
	free(r->req.cookie);
	r->req.url = NULL;
	r->req.body = NULL;
	r->req.auth = NULL;
	r->req.cookie = NULL;
}

/* Map a parser error to the status to answer. */
static void
reader_parser_error(struct http_reader *r)
{
	enum http_errno	 e = HTTP_PARSER_ERRNO(&r->parser);

	switch (e) {
	case HPE_HEADER_OVERFLOW:
		reader_fail(r, 431, "request header fields too large");
		break;
	case HPE_INVALID_METHOD:
		reader_fail(r, 405, "unknown method");
		break;
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		reader_fail(r, 400, "conflicting Content-Length");
		break;
	case HPE_INVALID_TRANSFER_ENCODING:
		reader_fail(r, 400, "bad Transfer-Encoding");
		break;
	default:
		reader_fail(r, 400, http_errno_description(e));
		break;
	}
}

/* The parser stopped after the n-th byte of data, where a line of chunked
 * framing ended: it must have ended in CRLF. */
static void
reader_check_crlf(struct http_reader *r, const char *data, size_t n)
{
	char	 cr = n >= 2 ? data[n - 2] : r->tail[1];

	if (n == 0 || data[n - 1] != '\n' || cr != '\r')
		reader_fail(r, 400, "bad chunked framing: CRLF expected");
}

/* Remember the last two bytes consumed, for a CRLF split across reads. */
static void
reader_keep_tail(struct http_reader *r, const char *data, size_t n)
{
	if (n >= 2) {
		r->tail[0] = data[n - 2];
		r->tail[1] = data[n - 1];
	} else if (n == 1) {
		r->tail[0] = r->tail[1];
		r->tail[1] = data[0];
	}
}

size_t
http_reader_feed(struct http_reader *r, const char *data, size_t len)
{
	size_t	 n = 0;

	if (r->state != HTTP_READING || len == 0)
		return 0;
	for (;;) {
		n += http_parser_execute(&r->parser, &reader_settings,
		    data + n, len - n);
		if (r->check_crlf) {
			r->check_crlf = 0;
			reader_check_crlf(r, data, n);
		}
		if (r->state != HTTP_READING ||
		    HTTP_PARSER_ERRNO(&r->parser) != HPE_PAUSED)
			break;
		/* Paused at a chunk line, not at the end of a request. */
		http_parser_pause(&r->parser, 0);
		if (n == len)
			break;
	}
	reader_keep_tail(r, data, n);
	if (r->state == HTTP_ERROR)
		return n;
	if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED)
		return n;
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK) {
		reader_parser_error(r);
		return n;
	}
	if (!r->headers_done && r->header_bytes > r->max_header_bytes)
		reader_fail(r, 431, "request header fields too large");
	return n;
}

void
http_reader_eof(struct http_reader *r)
{
	if (r->state == HTTP_READING && r->started)
		reader_fail(r, 400, "connection closed mid-request");
}

void
http_reader_next(struct http_reader *r)
{
	uint32_t	 max_header = r->max_header_bytes;
	uint32_t	 max_body = r->max_body_bytes;
	uint32_t	 max_batch = r->max_batch_bytes;
	http_parser	 parser = r->parser;

	http_reader_free(r);
	memset(r, 0, sizeof(*r));
	r->max_header_bytes = max_header;
	r->max_body_bytes = max_body;
	r->max_batch_bytes = max_batch;
	r->body_limit = max_body;
	/* Keep the parser (it knows about keep-alive), just unpause it. */
	r->parser = parser;
	r->parser.data = r;
	http_parser_pause(&r->parser, 0);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t
http_percent_decode(const char *src, size_t len, char *dst, size_t cap)
{
	size_t	 i, n = 0;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		char	 c = src[i];

		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (n + 1 >= cap)
			return -1;
		dst[n++] = c;
	}
	dst[n] = '\0';
	return (ssize_t)n;
}

int
http_url_split(const struct http_request *req, char **path,
    const char **query)
{
	const char	*url = req->url, *q;
	size_t		 pathlen;
	char		*out;

	*path = NULL;
	*query = NULL;
	if (url == NULL || url[0] != '/')
		return -1;
	q = strchr(url, '?');
	pathlen = q != NULL ? (size_t)(q - url) : req->urllen;
	if (memchr(url, '#', req->urllen) != NULL)
		return -1;
	if ((out = malloc(pathlen + 1)) == NULL)
		return -1;
	if (http_percent_decode(url, pathlen, out, pathlen + 1) == -1) {
		free(out);
		return -1;
	}
	*path = out;
	*query = q != NULL ? q + 1 : NULL;
	return 0;
}

ssize_t
http_query_next(const char *query, const char *key, size_t *pos, char *out,
    size_t cap)
{
	size_t		 keylen = strlen(key), i;
	const char	*s, *amp, *eq;
	size_t		 partlen;
	ssize_t		 n;

	if (query == NULL)
		return -1;
	while (query[*pos] != '\0') {
		s = query + *pos;
		amp = strchr(s, '&');
		partlen = amp != NULL ? (size_t)(amp - s) : strlen(s);
		*pos += partlen + (amp != NULL ? 1 : 0);
		eq = memchr(s, '=', partlen);
		if (eq == NULL || (size_t)(eq - s) != keylen ||
		    memcmp(s, key, keylen) != 0)
			continue;
		n = http_percent_decode(eq + 1, partlen - keylen - 1, out,
		    cap);
		if (n < 0)
			return -2;
		/* In a query, '+' stands for a space. */
		for (i = 0; i < (size_t)n; i++)
			if (out[i] == '+')
				out[i] = ' ';
		return n;
	}
	return -1;
}

const char *
http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

const char *
http_method_name(unsigned int method)
{
	return http_method_str((enum http_method)method);
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	char	*p;
	size_t	 cap;

	if (b->len + len > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		if ((p = realloc(b->data, cap)) == NULL)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	 small[512], *big = NULL;
	int	 n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return buf_append(b, small, (size_t)n);
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rc = buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

const char *
http_bearer(const struct http_request *req)
{
	if (!(req->seen & HTTP_SEEN_AUTH) || (req->overlong & HTTP_SEEN_AUTH) ||
	    req->auth == NULL)
		return NULL;
	if (strncasecmp(req->auth, "Bearer ", 7) != 0)
		return NULL;
	return req->auth + 7;
}

ssize_t
http_cookie(const struct http_request *req, const char *name, char *out,
    size_t cap)
{
	const char	*s, *eq, *end;
	size_t		 namelen = strlen(name), len;

	if (!(req->seen & HTTP_SEEN_COOKIE) || req->cookie == NULL)
		return -1;
	if (req->overlong & HTTP_SEEN_COOKIE)
		return -2;
	/* RFC 6265 5.4: "name=value" pairs separated by ";" and spaces. */
	for (s = req->cookie; *s != '\0'; s = *end == ';' ? end + 1 : end) {
		while (*s == ' ' || *s == '\t')
			s++;
		end = s + strcspn(s, ";");
		eq = memchr(s, '=', (size_t)(end - s));
		if (eq == NULL || (size_t)(eq - s) != namelen ||
		    memcmp(s, name, namelen) != 0)
			continue;
		s = eq + 1;
		len = (size_t)(end - s);
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
			s++;
			len -= 2;
		}
		if (len + 1 > cap)
			return -2;
		memcpy(out, s, len);
		out[len] = '\0';
		return (ssize_t)len;
	}
	return -1;
}
