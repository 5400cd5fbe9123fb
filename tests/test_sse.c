/*
 * test_sse: the body encoding table of DESIGN §4 (line ends, empty data,
 * NUL bytes, event types), sse_body_size() agreeing with every encoding, the
 * id line, event type validation and Last-Event-ID parsing.
 */
#include "rc_test.h"
#include "ringcast/sse.h"

struct encoding {
	const char	*type;		/* NULL: no event type */
	const char	*data;
	size_t		 len;
	const char	*want;
	size_t		 wantlen;
};

#define DATA(s)		(s), sizeof(s) - 1
#define WANT(s)		(s), sizeof(s) - 1

static const struct encoding encodings[] = {
	{ NULL, DATA("hello"), WANT("data: hello\n") },
	{ NULL, DATA(""), WANT("data: \n") },
	{ NULL, DATA("a\nb"), WANT("data: a\ndata: b\n") },
	{ NULL, DATA("a\r\nb"), WANT("data: a\ndata: b\n") },
	{ NULL, DATA("a\rb"), WANT("data: a\ndata: b\n") },
	{ NULL, DATA("a\n\rb"), WANT("data: a\ndata: \ndata: b\n") },
	{ NULL, DATA("a\r\r\nb"), WANT("data: a\ndata: \ndata: b\n") },
	{ NULL, DATA("x\n"), WANT("data: x\ndata: \n") },
	{ NULL, DATA("x\r\n"), WANT("data: x\ndata: \n") },
	{ NULL, DATA("\n"), WANT("data: \ndata: \n") },
	{ NULL, DATA("\n\n"), WANT("data: \ndata: \ndata: \n") },
	{ NULL, DATA("  two spaces"), WANT("data:   two spaces\n") },
	{ NULL, DATA("a\0b"), WANT("data: a\0b\n") },
	{ NULL, DATA("\0"), WANT("data: \0\n") },
	{ NULL, DATA("caf\xc3\xa9 \xf0\x9f\x8e\x89"),
	    WANT("data: caf\xc3\xa9 \xf0\x9f\x8e\x89\n") },
	{ "update", DATA("{\"a\":1}"),
	    WANT("event: update\ndata: {\"a\":1}\n") },
	{ "t", DATA("1\n2"), WANT("event: t\ndata: 1\ndata: 2\n") },
	{ "t", DATA(""), WANT("event: t\ndata: \n") },
};

static size_t
type_len(const struct encoding *e)
{
	return e->type == NULL ? 0 : strlen(e->type);
}

static void
test_sse_encodes_the_table(void **state)
{
	char	 buf[256];
	size_t	 i, n;

	(void)state;
	for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
		const struct encoding *e = &encodings[i];

		memset(buf, 'Z', sizeof(buf));
		n = sse_encode_body(buf, sizeof(buf), e->type, type_len(e),
		    e->data, e->len);
		if (n != e->wantlen || memcmp(buf, e->want, n) != 0)
			fail_msg("case %zu: got %zu bytes '%.*s'", i, n,
			    (int)n, buf);
		assert_int_equal(buf[n], 'Z');
	}
}

static void
test_sse_body_size_is_bytes_written(void **state)
{
	char	 buf[256];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
		const struct encoding *e = &encodings[i];

		assert_int_equal(sse_body_size(type_len(e), e->data, e->len),
		    sse_encode_body(buf, sizeof(buf), e->type, type_len(e),
		    e->data, e->len));
	}
}

static void
test_sse_encode_body_returns_0_when_cap_too_small(void **state)
{
	char	 buf[256];
	size_t	 i, need;

	(void)state;
	for (i = 0; i < sizeof(encodings) / sizeof(encodings[0]); i++) {
		const struct encoding *e = &encodings[i];

		need = sse_body_size(type_len(e), e->data, e->len);
		assert_int_equal(sse_encode_body(buf, need - 1, e->type,
		    type_len(e), e->data, e->len), 0);
		assert_int_equal(sse_encode_body(buf, need, e->type,
		    type_len(e), e->data, e->len), need);
	}
}

/* A publish without a body hands over NULL and 0 (found by fuzz_conn:
 * NULL + 0 is undefined behaviour, and UBSan stops the server on it). */
static void
test_sse_encodes_a_null_empty_body(void **state)
{
	char	 buf[32];

	(void)state;
	assert_int_equal(sse_body_size(0, NULL, 0), 7);
	assert_int_equal(sse_encode_body(buf, sizeof(buf), "t", 1, NULL, 0),
	    16);
	assert_memory_equal(buf, "event: t\ndata: \n", 16);
}

static void
test_sse_encode_id_formats_the_last_line(void **state)
{
	char	 buf[SSE_ID_MAX];

	(void)state;
	assert_int_equal(sse_encode_id(buf, sizeof(buf), 1042), 10);
	assert_memory_equal(buf, "id: 1042\n\n", 10);
	assert_int_equal(sse_encode_id(buf, sizeof(buf), 0), 7);
	assert_memory_equal(buf, "id: 0\n\n", 7);
	assert_int_equal(sse_encode_id(buf, sizeof(buf), UINT64_MAX), 26);
	assert_memory_equal(buf, "id: 18446744073709551615\n\n", 26);
	assert_int_equal(sse_encode_id(buf, 9, 1042), 0);
	assert_int_equal(sse_encode_id(buf, 10, 1042), 10);
}

static void
test_sse_event_type_validation(void **state)
{
	char	 longest[SSE_EVENT_TYPE_MAX + 1];

	(void)state;
	memset(longest, 'a', sizeof(longest));
	assert_int_equal(sse_event_type_valid("update", 6), 1);
	assert_int_equal(sse_event_type_valid(":x", 2), 1);
	assert_int_equal(sse_event_type_valid(longest, SSE_EVENT_TYPE_MAX), 1);
	assert_int_equal(sse_event_type_valid(longest,
	    SSE_EVENT_TYPE_MAX + 1), 0);
	assert_int_equal(sse_event_type_valid("", 0), 0);
	assert_int_equal(sse_event_type_valid(NULL, 0), 0);
	assert_int_equal(sse_event_type_valid("a\nb", 3), 0);
	assert_int_equal(sse_event_type_valid("a\rb", 3), 0);
	assert_int_equal(sse_event_type_valid("a\0b", 3), 0);
}

static void
test_sse_parse_event_id_accepts_1_to_20_digits(void **state)
{
	uint64_t	 seq;

	(void)state;
	assert_int_equal(sse_parse_event_id("0", 1, &seq), 0);
	assert_int_equal(seq, 0);
	assert_int_equal(sse_parse_event_id("1042", 4, &seq), 0);
	assert_int_equal(seq, 1042);
	assert_int_equal(sse_parse_event_id("007", 3, &seq), 0);
	assert_int_equal(seq, 7);
	assert_int_equal(sse_parse_event_id("18446744073709551615", 20, &seq),
	    0);
	assert_true(seq == UINT64_MAX);
	/* The length bounds the parse, not a NUL. */
	assert_int_equal(sse_parse_event_id("12x", 2, &seq), 0);
	assert_int_equal(seq, 12);
}

static void
test_sse_parse_event_id_rejects_everything_else(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "12a", "0x10", "1.0",
		"18446744073709551616", "99999999999999999999",
		"000000000000000000001",
	};
	uint64_t	 seq = 77;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sse_parse_event_id(bad[i], strlen(bad[i]), &seq) != -1)
			fail_msg("'%s' was accepted", bad[i]);
	}
	assert_int_equal(sse_parse_event_id("1\0", 2, &seq), -1);
	assert_int_equal(seq, 77);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test(name)
		T(test_sse_encodes_the_table),
		T(test_sse_body_size_is_bytes_written),
		T(test_sse_encode_body_returns_0_when_cap_too_small),
		T(test_sse_encodes_a_null_empty_body),
		T(test_sse_encode_id_formats_the_last_line),
		T(test_sse_event_type_validation),
		T(test_sse_parse_event_id_accepts_1_to_20_digits),
		T(test_sse_parse_event_id_rejects_everything_else),
#undef T
	};

	return cmocka_run_group_tests_name("sse", tests, NULL, NULL);
}
