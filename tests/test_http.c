/*
 * test_http: the request reader of DESIGN §4 without a socket: requests cut
 * anywhere, pipelining, the header and body limits, the smuggling-prone
 * requests it refuses, percent-decoding and query parsing.
 */
#include <sys/types.h>

#include "rc_test.h"
#include "ringcast/http.h"

#define HOST	"Host: x\r\n"

/* Feed text in pieces of step bytes (0: whole) until a verdict. */
static size_t
feed(struct http_reader *r, const char *text, size_t step)
{
	size_t	 len = strlen(text), off = 0, n, piece;

	while (off < len && r->state == HTTP_READING) {
		piece = step == 0 || step > len - off ? len - off : step;
		n = http_reader_feed(r, text + off, piece);
		off += n;
		if (n < piece)
			break;
	}
	return off;
}

static void
test_http_reads_a_request_cut_anywhere(void **state)
{
	const char	*text = "GET /events/a?x=1 HTTP/1.1\r\n" HOST
			    "Last-Event-ID: 42\r\nOrigin: http://o\r\n\r\n";
	struct http_reader r;
	size_t		 step;

	(void)state;
	for (step = 0; step < 9; step++) {
		http_reader_init(&r, 4096, 1024);
		assert_int_equal(feed(&r, text, step), strlen(text));
		assert_int_equal(r.state, HTTP_REQUEST_READY);
		assert_int_equal(r.req.method, HTTP_GET);
		assert_string_equal(r.req.url, "/events/a?x=1");
		assert_string_equal(r.req.last_event_id, "42");
		assert_string_equal(r.req.origin, "http://o");
		http_reader_free(&r);
	}
}

static void
test_http_takes_pipelined_requests_one_at_a_time(void **state)
{
	const char	*text = "POST /publish/a HTTP/1.1\r\n" HOST
			    "Content-Length: 3\r\n\r\nabc"
			    "GET /healthz HTTP/1.1\r\n" HOST "\r\n";
	struct http_reader r;
	size_t		 n;

	(void)state;
	http_reader_init(&r, 4096, 1024);
	n = http_reader_feed(&r, text, strlen(text));
	assert_int_equal(r.state, HTTP_REQUEST_READY);
	assert_int_equal(r.req.bodylen, 3);
	assert_memory_equal(r.req.body, "abc", 3);
	/* Nothing more is taken until the first is answered. */
	assert_int_equal(http_reader_feed(&r, text + n, strlen(text + n)), 0);
	http_reader_next(&r);
	assert_int_equal(http_reader_feed(&r, text + n, strlen(text + n)),
	    strlen(text + n));
	assert_int_equal(r.state, HTTP_REQUEST_READY);
	assert_string_equal(r.req.url, "/healthz");
	http_reader_free(&r);
}

static void
test_http_reads_a_chunked_body(void **state)
{
	const char	*text = "POST /publish/a HTTP/1.1\r\n" HOST
			    "Transfer-Encoding: chunked\r\n\r\n"
			    "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
	struct http_reader r;

	(void)state;
	http_reader_init(&r, 4096, 1024);
	feed(&r, text, 5);
	assert_int_equal(r.state, HTTP_REQUEST_READY);
	assert_int_equal(r.req.bodylen, 5);
	assert_memory_equal(r.req.body, "abcde", 5);
	http_reader_free(&r);
}

static void
assert_refused(const char *text, uint32_t max_header, uint32_t max_body,
    int status)
{
	struct http_reader r;

	http_reader_init(&r, max_header, max_body);
	feed(&r, text, 0);
	assert_int_equal(r.state, HTTP_ERROR);
	assert_int_equal(r.error_status, status);
	assert_non_null(r.error_reason);
	http_reader_free(&r);
}

static void
test_http_rejects_duplicate_content_length(void **state)
{
	(void)state;
	assert_refused("POST /publish/a HTTP/1.1\r\n" HOST
	    "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 4096, 1024,
	    400);
}

static void
test_http_rejects_content_length_with_transfer_encoding(void **state)
{
	(void)state;
	assert_refused("POST /publish/a HTTP/1.1\r\n" HOST
	    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n", 4096, 1024, 400);
}

static void
test_http_rejects_transfer_encoding_other_than_chunked(void **state)
{
	(void)state;
	assert_refused("POST /publish/a HTTP/1.1\r\n" HOST
	    "Transfer-Encoding: gzip\r\n\r\n", 4096, 1024, 400);
}

static void
test_http_rejects_repeated_header_it_reads(void **state)
{
	(void)state;
	assert_refused("GET /events/a HTTP/1.1\r\n" HOST
	    "Last-Event-ID: 1\r\nLast-Event-ID: 2\r\n\r\n", 4096, 1024, 400);
}

static void
test_http_rejects_http11_without_host(void **state)
{
	(void)state;
	assert_refused("GET /events/a HTTP/1.1\r\n\r\n", 4096, 1024, 400);
}

static void
test_http_rejects_unknown_method_with_405(void **state)
{
	(void)state;
	assert_refused("BREW /pot HTTP/1.1\r\n" HOST "\r\n", 4096, 1024, 405);
}

static void
test_http_limits_header_bytes_with_431(void **state)
{
	char	 text[2048];

	(void)state;
	snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n" HOST
	    "X-Pad: %0900d\r\n\r\n", 0);
	assert_refused(text, 512, 1024, 431);
}

static void
test_http_limits_body_bytes_with_413(void **state)
{
	(void)state;
	assert_refused("POST /publish/a HTTP/1.1\r\n" HOST
	    "Content-Length: 11\r\n\r\nhello world", 4096, 10, 413);
	assert_refused("POST /publish/a HTTP/1.1\r\n" HOST
	    "Transfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
	    4096, 10, 413);
}

static void
test_http_marks_overlong_values(void **state)
{
	char		 text[512];
	struct http_reader r;

	(void)state;
	snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n" HOST
	    "Last-Event-ID: %070d\r\n\r\n", 1);
	http_reader_init(&r, 4096, 1024);
	feed(&r, text, 0);
	assert_int_equal(r.state, HTTP_REQUEST_READY);
	assert_true(r.req.overlong & HTTP_SEEN_LAST_EVENT_ID);
	http_reader_free(&r);
}

static void
test_http_joins_repeated_forwarded_for_headers(void **state)
{
	const char	*text = "GET / HTTP/1.1\r\n" HOST
			    "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
			    "X-Forwarded-For: 3.3.3.3\r\n\r\n";
	struct http_reader r;
	size_t		 step;

	(void)state;
	for (step = 0; step < 5; step++) {
		http_reader_init(&r, 4096, 1024);
		feed(&r, text, step);
		assert_int_equal(r.state, HTTP_REQUEST_READY);
		assert_true(r.req.seen & HTTP_SEEN_FORWARDED_FOR);
		assert_false(r.req.overlong & HTTP_SEEN_FORWARDED_FOR);
		assert_string_equal(r.req.forwarded_for,
		    "1.1.1.1, 2.2.2.2,3.3.3.3");
		http_reader_free(&r);
	}
}

static void
test_http_overlong_forwarded_for_keeps_rightmost_whole_hops(void **state)
{
	char		 text[4096], *p;
	struct http_reader r;
	size_t		 step, i;

	(void)state;
	/* 100 hops of 15 bytes, then the two a proxy appended. */
	p = text + snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n" HOST
	    "X-Forwarded-For: ");
	for (i = 0; i < 100; i++)
		p += snprintf(p, 32, "%03zu.%03zu.%03zu.%03zu,", i, i, i, i);
	snprintf(p, 64, " 203.0.113.7, 10.0.0.1\r\n\r\n");
	for (step = 0; step < 40; step += 7) {
		http_reader_init(&r, 8192, 1024);
		feed(&r, text, step);
		assert_int_equal(r.state, HTTP_REQUEST_READY);
		assert_true(r.req.overlong & HTTP_SEEN_FORWARDED_FOR);
		assert_true(strlen(r.req.forwarded_for) <= HTTP_FORWARDED_MAX);
		assert_true(strlen(r.req.forwarded_for) > 400);
		/* The right end is whole, and so is the first hop kept. */
		p = r.req.forwarded_for + strlen(r.req.forwarded_for);
		assert_string_equal(p - 38,
		    "099.099.099.099, 203.0.113.7, 10.0.0.1");
		assert_int_equal(strlen(r.req.forwarded_for) % 16, 6);
		assert_true(r.req.forwarded_for[0] >= '0' &&
		    r.req.forwarded_for[0] <= '9');
		http_reader_free(&r);
	}
}

static void
test_http_eof_mid_request_is_400(void **state)
{
	struct http_reader r;

	(void)state;
	http_reader_init(&r, 4096, 1024);
	feed(&r, "GET / HTT", 0);
	http_reader_eof(&r);
	assert_int_equal(r.state, HTTP_ERROR);
	assert_int_equal(r.error_status, 400);
	http_reader_free(&r);
	/* Between requests, EOF is a clean close. */
	http_reader_init(&r, 4096, 1024);
	http_reader_eof(&r);
	assert_int_equal(r.state, HTTP_READING);
	http_reader_free(&r);
}

static void
test_http_percent_decodes(void **state)
{
	char	 out[16];

	(void)state;
	assert_int_equal(http_percent_decode("a%2Fb+c", 7, out, sizeof(out)),
	    5);
	assert_string_equal(out, "a/b+c");
	assert_int_equal(http_percent_decode("%00", 3, out, sizeof(out)), -1);
	assert_int_equal(http_percent_decode("%zz", 3, out, sizeof(out)), -1);
	assert_int_equal(http_percent_decode("%4", 2, out, sizeof(out)), -1);
	assert_int_equal(http_percent_decode("abcd", 4, out, 4), -1);
	assert_int_equal(http_percent_decode("abc", 3, out, 4), 3);
}

static void
test_http_splits_url_and_query(void **state)
{
	struct http_request	 req;
	char			*path;
	const char		*query;
	char			 url[] = "/events/a%3Ab?topic=x";

	(void)state;
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.urllen = strlen(url);
	assert_int_equal(http_url_split(&req, &path, &query), 0);
	assert_string_equal(path, "/events/a:b");
	assert_string_equal(query, "topic=x");
	free(path);
	req.url = (char *)"http://x/";
	req.urllen = strlen(req.url);
	assert_int_equal(http_url_split(&req, &path, &query), -1);
	req.url = (char *)"/a#frag";
	req.urllen = strlen(req.url);
	assert_int_equal(http_url_split(&req, &path, &query), -1);
}

static void
test_http_query_next_finds_each_value(void **state)
{
	const char	*q = "topic=a&x=1&topic=b+c%21&topic=%zz&topicx=d";
	char		 out[8];
	size_t		 pos = 0;

	(void)state;
	assert_int_equal(http_query_next(q, "topic", &pos, out, sizeof(out)),
	    1);
	assert_string_equal(out, "a");
	assert_int_equal(http_query_next(q, "topic", &pos, out, sizeof(out)),
	    4);
	assert_string_equal(out, "b c!");
	assert_int_equal(http_query_next(q, "topic", &pos, out, sizeof(out)),
	    -2);
	assert_int_equal(http_query_next(q, "topic", &pos, out, sizeof(out)),
	    -1);
	pos = 0;
	assert_int_equal(http_query_next("k=toolongvalue", "k", &pos, out,
	    sizeof(out)), -2);
	pos = 0;
	assert_int_equal(http_query_next(NULL, "k", &pos, out, sizeof(out)),
	    -1);
}

/* Read text (a whole request) and look for cookie name in it. */
static ssize_t
cookie_of(const char *text, const char *name, char *out, size_t cap)
{
	struct http_reader	 r;
	ssize_t			 n;

	http_reader_init(&r, 16384, 1024);
	feed(&r, text, 7);
	assert_int_equal(r.state, HTTP_REQUEST_READY);
	n = http_cookie(&r.req, name, out, cap);
	http_reader_free(&r);
	return n;
}

static void
test_http_cookie_finds_the_named_one(void **state)
{
	char	 out[64];

	(void)state;
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: a=1; "
	    "ringcast_token=x.y.z; b=2\r\n\r\n", "ringcast_token", out,
	    sizeof(out)), 5);
	assert_string_equal(out, "x.y.z");
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: "
	    "xringcast_token=no;ringcast_token=\"q\"\r\n\r\n",
	    "ringcast_token", out, sizeof(out)), 1);
	assert_string_equal(out, "q");
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: a=1\r\n"
	    "\r\n", "ringcast_token", out, sizeof(out)), -1);
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "\r\n",
	    "ringcast_token", out, sizeof(out)), -1);
	/* The value does not fit out. */
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: t=1234"
	    "\r\n\r\n", "t", out, 4), -2);
}

static void
test_http_cookie_headers_repeated_are_joined(void **state)
{
	char	 out[64];

	(void)state;
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: a=1\r\n"
	    "Cookie: t=2\r\n\r\n", "t", out, sizeof(out)), 1);
	assert_string_equal(out, "2");
	assert_int_equal(cookie_of("GET / HTTP/1.1\r\n" HOST "Cookie: a=1\r\n"
	    "Cookie: t=2\r\n\r\n", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "1");
}

static void
test_http_cookie_too_long_is_not_read(void **state)
{
	static char	 text[HTTP_COOKIE_MAX + 256];
	char		 out[64];

	(void)state;
	snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n" HOST
	    "Cookie: t=1; pad=%0*d\r\n\r\n", HTTP_COOKIE_MAX, 0);
	assert_int_equal(cookie_of(text, "t", out, sizeof(out)), -2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test(name)
		T(test_http_reads_a_request_cut_anywhere),
		T(test_http_takes_pipelined_requests_one_at_a_time),
		T(test_http_reads_a_chunked_body),
		T(test_http_rejects_duplicate_content_length),
		T(test_http_rejects_content_length_with_transfer_encoding),
		T(test_http_rejects_transfer_encoding_other_than_chunked),
		T(test_http_rejects_repeated_header_it_reads),
		T(test_http_rejects_http11_without_host),
		T(test_http_rejects_unknown_method_with_405),
		T(test_http_limits_header_bytes_with_431),
		T(test_http_limits_body_bytes_with_413),
		T(test_http_marks_overlong_values),
		T(test_http_joins_repeated_forwarded_for_headers),
		T(test_http_overlong_forwarded_for_keeps_rightmost_whole_hops),
		T(test_http_eof_mid_request_is_400),
		T(test_http_percent_decodes),
		T(test_http_splits_url_and_query),
		T(test_http_query_next_finds_each_value),
		T(test_http_cookie_finds_the_named_one),
		T(test_http_cookie_headers_repeated_are_joined),
		T(test_http_cookie_too_long_is_not_read),
#undef T
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
