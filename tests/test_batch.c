/*
 * test_batch: NDJSON batch publish bodies: the accepted forms (LF, CRLF,
 * blank lines, no final newline, optional event type, unicode, escapes),
 * every refusal with its line number and message, the limits, and the ids
 * answer.  A refused body leaves the batch empty.
 */
#include "rc_test.h"
#include "ringcast/batch.h"
#include "ringcast/http.h"

#define MAX_EVENTS	100
#define MAX_BYTES	1024

#define BODY(s)		(s), sizeof(s) - 1

/* Parse body with the default limits; fails the test if it is refused. */
static void
parse_ok(struct batch *b, const char *body, size_t len)
{
	char	 err[256];

	if (batch_parse(b, body, len, MAX_EVENTS, MAX_BYTES, err,
	    sizeof(err)) == -1)
		fail_msg("refused: %s", err);
}

/* Parse body with the given limits; it must be refused with exactly want. */
static void
parse_refused(const char *body, size_t len, size_t max_events,
    size_t max_bytes, const char *want)
{
	struct batch	 b;
	char		 err[256];

	memset(&b, 0xa5, sizeof(b));
	assert_int_equal(batch_parse(&b, body, len, max_events, max_bytes, err,
	    sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_null(b.events);
	assert_int_equal(b.n, 0);
}

static void
refused(const char *body, size_t len, const char *want)
{
	parse_refused(body, len, MAX_EVENTS, MAX_BYTES, want);
}

/* Refused with a message that starts with want: the rest is jansson's
 * wording, which may change between its versions. */
static void
refused_as(const char *body, size_t len, const char *want)
{
	struct batch	 b;
	char		 err[256];

	assert_int_equal(batch_parse(&b, body, len, MAX_EVENTS, MAX_BYTES, err,
	    sizeof(err)), -1);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("refused with '%s', not '%s...'", err, want);
	assert_null(b.events);
}

static void
assert_event(const struct batch_event *ev, const char *topic,
    const char *type, const char *data, size_t datalen, size_t line)
{
	assert_int_equal(ev->topiclen, strlen(topic));
	assert_string_equal(ev->topic, topic);
	if (type == NULL) {
		assert_null(ev->type);
		assert_int_equal(ev->typelen, 0);
	} else {
		assert_int_equal(ev->typelen, strlen(type));
		assert_string_equal(ev->type, type);
	}
	assert_int_equal(ev->datalen, datalen);
	assert_memory_equal(ev->data, data, datalen);
	assert_int_equal(ev->data[datalen], '\0');
	assert_int_equal(ev->line, line);
}

static void
test_batch_parses_lf_lines(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("{\"topic\":\"news\",\"data\":\"one\"}\n"
	    "{\"topic\":\"a/b\",\"data\":\"two\",\"event\":\"t\"}\n"));
	assert_int_equal(b.n, 2);
	assert_event(&b.events[0], "news", NULL, "one", 3, 1);
	assert_event(&b.events[1], "a/b", "t", "two", 3, 2);
	batch_free(&b);
	assert_null(b.events);
	assert_int_equal(b.n, 0);
}

static void
test_batch_parses_crlf_lines(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("{\"topic\":\"news\",\"data\":\"one\"}\r\n"
	    "{\"topic\":\"news\",\"data\":\"two\"}\r\n"));
	assert_int_equal(b.n, 2);
	assert_event(&b.events[0], "news", NULL, "one", 3, 1);
	assert_event(&b.events[1], "news", NULL, "two", 3, 2);
	batch_free(&b);
}

static void
test_batch_skips_blank_lines_and_counts_them(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("\n\r\n  \t\n{\"topic\":\"x\",\"data\":\"\"}\n\n"
	    " {\"data\":\"d\", \"topic\":\"y\"} \n\n"));
	assert_int_equal(b.n, 2);
	assert_event(&b.events[0], "x", NULL, "", 0, 4);
	assert_event(&b.events[1], "y", NULL, "d", 1, 6);
	batch_free(&b);
}

static void
test_batch_takes_a_last_line_without_newline(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("{\"topic\":\"a\",\"data\":\"1\"}\n"
	    "{\"topic\":\"b\",\"data\":\"2\"}"));
	assert_int_equal(b.n, 2);
	assert_event(&b.events[1], "b", NULL, "2", 1, 2);
	batch_free(&b);
}

static void
test_batch_decodes_unicode_and_escapes(void **state)
{
	struct batch	 b;

	(void)state;
	/* Raw UTF-8, \u escapes (a surrogate pair too), and escaped line
	 * ends, which become the data's own lines. */
	parse_ok(&b, BODY("{\"topic\":\"t\",\"data\":\"caf\xc3\xa9 "
	    "\\u00e9\\ud83c\\udf89\\n2\\r\\n\\\"q\\\"\\\\\"}"));
	assert_int_equal(b.n, 1);
	assert_event(&b.events[0], "t", NULL,
	    "caf\xc3\xa9 \xc3\xa9\xf0\x9f\x8e\x89\n2\r\n\"q\"\\", 20, 1);
	batch_free(&b);
}

static void
test_batch_decodes_an_escaped_topic_and_type(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("{\"\\u0074opic\":\"\\u006ee\\u0077s\","
	    "\"event\":\"\\u00e9t\\u00e9\",\"data\":\"x\"}"));
	assert_event(&b.events[0], "news", "\xc3\xa9t\xc3\xa9", "x", 1, 1);
	batch_free(&b);
}

static void
test_batch_refuses_an_empty_body(void **state)
{
	(void)state;
	refused("", 0, "no events in the body");
	refused(BODY("\n\r\n   \n"), "no events in the body");
}

static void
test_batch_refuses_a_line_that_is_not_json(void **state)
{
	(void)state;
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"1\"}\n{\"topic\":"),
	    "line 2: not JSON: ");
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"1\"} x"),
	    "line 1: not JSON: end of file expected");
	/* Two objects on one line: the end-of-input check is on. */
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"1\"}"
	    "{\"topic\":\"a\",\"data\":\"2\"}"),
	    "line 1: not JSON: end of file expected");
	refused_as(BODY("\"just a string\""),
	    "line 1: not JSON: '[' or '{' expected");
}

static void
test_batch_refuses_what_is_not_an_object(void **state)
{
	(void)state;
	refused(BODY("[\"topic\",\"data\"]"), "line 1: not a JSON object");
}

static void
test_batch_refuses_a_missing_topic(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\"}\n\n"
	    "{\"data\":\"1\"}\n"), "line 3: \"topic\" is missing");
}

static void
test_batch_refuses_a_topic_that_is_not_a_string(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":7,\"data\":\"1\"}"),
	    "line 1: \"topic\" is not a string");
}

static void
test_batch_refuses_a_bad_topic_name(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a/../b\",\"data\":\"1\"}"),
	    "line 1: bad topic name");
	refused(BODY("{\"topic\":\"\",\"data\":\"1\"}"),
	    "line 1: bad topic name");
	refused(BODY("{\"topic\":\"sp ace\",\"data\":\"1\"}"),
	    "line 1: bad topic name");
}

static void
test_batch_refuses_a_missing_data(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"event\":\"t\"}"),
	    "line 1: \"data\" is missing");
}

static void
test_batch_refuses_data_that_is_not_a_string(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"data\":42}"),
	    "line 1: \"data\" is not a string");
	refused(BODY("{\"topic\":\"a\",\"data\":null}"),
	    "line 1: \"data\" is not a string");
	refused(BODY("{\"topic\":\"a\",\"data\":{\"nested\":\"x\"}}"),
	    "line 1: \"data\" is not a string");
	refused(BODY("{\"topic\":\"a\",\"data\":[\"x\"]}"),
	    "line 1: \"data\" is not a string");
}

static void
test_batch_refuses_a_bad_event_type(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":\"\"}"),
	    "line 1: bad event type: 1 to 64 bytes, no CR or LF");
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":\"a\\nb\"}"),
	    "line 1: bad event type: 1 to 64 bytes, no CR or LF");
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":\"0123456789"
	    "0123456789012345678901234567890123456789012345678901234\"}"),
	    "line 1: bad event type: 1 to 64 bytes, no CR or LF");
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":null}"),
	    "line 1: \"event\" is not a string");
}

static void
test_batch_takes_an_event_type_of_64_bytes(void **state)
{
	struct batch	 b;

	(void)state;
	parse_ok(&b, BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":\"0123456789"
	    "012345678901234567890123456789012345678901234567890123\"}"));
	assert_int_equal(b.events[0].typelen, 64);
	batch_free(&b);
}

static void
test_batch_refuses_an_unknown_key(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\"}\n"
	    "{\"topic\":\"a\",\"data\":\"1\",\"id\":\"5\"}"),
	    "line 2: unknown key \"id\"");
	/* A client's key is shown printable and cut short. */
	refused(BODY("{\"a\\nb\":1}"), "line 1: unknown key \"a?b\"");
	refused(BODY("{\"0123456789012345678901234567890123456789\":1}"),
	    "line 1: unknown key \"01234567890123456789012345678901\"...");
}

static void
test_batch_refuses_duplicate_keys(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":\"a\",\"topic\":\"b\",\"data\":\"1\"}"),
	    "line 1: duplicate object key near '\"topic\"'");
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"data\":\"1\"}"),
	    "line 1: duplicate object key near '\"data\"'");
}

static void
test_batch_refuses_nul_and_bad_utf8(void **state)
{
	(void)state;
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"x\\u0000y\"}"),
	    "line 1: not JSON: \\u0000 is not allowed");
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"\xff\"}"),
	    "line 1: not JSON: unable to decode byte 0xff");
	/* A lone surrogate is not a character. */
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"\\ud800\"}"),
	    "line 1: not JSON: invalid Unicode");
	/* A raw NUL byte ends nothing: it is refused, whatever jansson
	 * calls it. */
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"1\"}\0"),
	    "line 1: not JSON: ");
	refused_as(BODY("{\"topic\":\"a\",\"data\":\"1\0\"}"),
	    "line 1: not JSON: ");
}

static void
test_batch_refuses_nested_objects_as_values(void **state)
{
	(void)state;
	refused(BODY("{\"topic\":{\"name\":\"a\"},\"data\":\"1\"}"),
	    "line 1: \"topic\" is not a string");
	refused(BODY("{\"topic\":\"a\",\"data\":\"1\",\"event\":{}}"),
	    "line 1: \"event\" is not a string");
}

static void
test_batch_holds_max_events(void **state)
{
	struct batch	 b;
	char		 err[256];
	const char	 body[] = "{\"topic\":\"a\",\"data\":\"1\"}\n\n"
			    "{\"topic\":\"a\",\"data\":\"2\"}\n"
			    "{\"topic\":\"a\",\"data\":\"3\"}\n";

	(void)state;
	assert_int_equal(batch_parse(&b, BODY(body), 3, MAX_BYTES, err,
	    sizeof(err)), 0);
	assert_int_equal(b.n, 3);
	assert_event(&b.events[2], "a", NULL, "3", 1, 4);
	batch_free(&b);
	parse_refused(BODY(body), 2, MAX_BYTES, "line 4: more than 2 events");
	parse_refused(BODY(body), 0, MAX_BYTES, "line 1: more than 0 events");
}

static void
test_batch_holds_max_event_bytes(void **state)
{
	struct batch	 b;
	char		 err[256];
	/* Four bytes of data, written with eighteen bytes of escapes. */
	const char	 body[] = "{\"topic\":\"a\",\"data\":\"\\u0041\\u0042"
			    "\\u0043D\"}";

	(void)state;
	assert_int_equal(batch_parse(&b, BODY(body), MAX_EVENTS, 4, err,
	    sizeof(err)), 0);
	assert_int_equal(b.events[0].datalen, 4);
	assert_string_equal(b.events[0].data, "ABCD");
	batch_free(&b);
	parse_refused(BODY(body), MAX_EVENTS, 3,
	    "line 1: \"data\" is 4 bytes, over max_event_bytes (3)");
}

/* A line far longer than any valid event is refused before jansson builds
 * a tree of it: a million numbers in one array. */
static void
test_batch_refuses_a_huge_line(void **state)
{
	const char	 head[] = "{\"topic\":\"a\",\"data\":\"1\"}\n"
			    "{\"topic\":\"a\",\"data\":\"1\",\"x\":[";
	size_t		 n = 1000000, len, i;
	char		*body, want[128];

	(void)state;
	len = sizeof(head) - 1 + 2 * n + 2;
	assert_non_null(body = malloc(len));
	memcpy(body, head, sizeof(head) - 1);
	for (i = 0; i < n; i++)
		memcpy(body + sizeof(head) - 1 + 2 * i, "1,", 2);
	memcpy(body + len - 3, "]}", 2);
	body[len - 1] = '\n';
	snprintf(want, sizeof(want), "line 2: line too long (%zu bytes, at "
	    "most %d)", len - 1 - 25, MAX_BYTES * 6 + 4096);
	refused(body, len, want);
	free(body);
}

/* Data at max_event_bytes, fully escaped, is still within the line bound. */
static void
test_batch_takes_a_fully_escaped_event_at_the_limit(void **state)
{
	struct batch	 b;
	const char	 head[] = "{\"topic\":\"a\",\"data\":\"";
	size_t		 len, i, off = sizeof(head) - 1;
	char		*body;

	(void)state;
	len = off + 6 * MAX_BYTES + 2;
	assert_non_null(body = malloc(len));
	memcpy(body, head, off);
	for (i = 0; i < MAX_BYTES; i++)
		memcpy(body + off + 6 * i, "\\u0001", 6);
	memcpy(body + len - 2, "\"}", 2);
	parse_ok(&b, body, len);
	assert_int_equal(b.events[0].datalen, MAX_BYTES);
	assert_int_equal(b.events[0].data[MAX_BYTES - 1], 1);
	batch_free(&b);
	free(body);
}

static void
test_batch_cuts_a_long_error_to_errlen(void **state)
{
	struct batch	 b;
	char		 err[8];

	(void)state;
	memset(err, 'Z', sizeof(err));
	assert_int_equal(batch_parse(&b, BODY("{\"topic\":7,\"data\":\"1\"}"),
	    MAX_EVENTS, MAX_BYTES, err, sizeof(err)), -1);
	assert_string_equal(err, "line 1:");
	/* errlen 0: err is not touched. */
	assert_int_equal(batch_parse(&b, BODY("x"), MAX_EVENTS, MAX_BYTES,
	    err, 0), -1);
	assert_string_equal(err, "line 1:");
}

static void
test_batch_ids_json_lists_ids_as_strings(void **state)
{
	struct buf	 out = { 0 };

	(void)state;
	assert_int_equal(batch_ids_json(&out, 1042, 2), 0);
	assert_int_equal(out.len, 24);
	assert_memory_equal(out.data, "{\"ids\":[\"1042\",\"1043\"]}\n", 24);
	buf_free(&out);
	assert_int_equal(batch_ids_json(&out, UINT64_MAX, 1), 0);
	assert_memory_equal(out.data, "{\"ids\":[\"18446744073709551615\"]}\n",
	    out.len);
	buf_free(&out);
}

static void
test_batch_ids_json_appends(void **state)
{
	struct buf	 out = { 0 };
	size_t		 i;
	char		 want[32];

	(void)state;
	assert_int_equal(buf_append(&out, "head:", 5), 0);
	assert_int_equal(batch_ids_json(&out, 1, 10000), 0);
	assert_memory_equal(out.data, "head:{\"ids\":[\"1\",\"2\",", 21);
	snprintf(want, sizeof(want), "\"9999\",\"10000\"]}\n");
	i = strlen(want);
	assert_memory_equal(out.data + out.len - i, want, i);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_parses_lf_lines),
		cmocka_unit_test(test_batch_parses_crlf_lines),
		cmocka_unit_test(test_batch_skips_blank_lines_and_counts_them),
		cmocka_unit_test(test_batch_takes_a_last_line_without_newline),
		cmocka_unit_test(test_batch_decodes_unicode_and_escapes),
		cmocka_unit_test(test_batch_decodes_an_escaped_topic_and_type),
		cmocka_unit_test(test_batch_refuses_an_empty_body),
		cmocka_unit_test(test_batch_refuses_a_line_that_is_not_json),
		cmocka_unit_test(test_batch_refuses_what_is_not_an_object),
		cmocka_unit_test(test_batch_refuses_a_missing_topic),
		cmocka_unit_test(test_batch_refuses_a_topic_that_is_not_a_string),
		cmocka_unit_test(test_batch_refuses_a_bad_topic_name),
		cmocka_unit_test(test_batch_refuses_a_missing_data),
		cmocka_unit_test(test_batch_refuses_data_that_is_not_a_string),
		cmocka_unit_test(test_batch_refuses_a_bad_event_type),
		cmocka_unit_test(test_batch_takes_an_event_type_of_64_bytes),
		cmocka_unit_test(test_batch_refuses_an_unknown_key),
		cmocka_unit_test(test_batch_refuses_duplicate_keys),
		cmocka_unit_test(test_batch_refuses_nul_and_bad_utf8),
		cmocka_unit_test(test_batch_refuses_nested_objects_as_values),
		cmocka_unit_test(test_batch_holds_max_events),
		cmocka_unit_test(test_batch_holds_max_event_bytes),
		cmocka_unit_test(test_batch_refuses_a_huge_line),
		cmocka_unit_test(
		    test_batch_takes_a_fully_escaped_event_at_the_limit),
		cmocka_unit_test(test_batch_cuts_a_long_error_to_errlen),
		cmocka_unit_test(test_batch_ids_json_lists_ids_as_strings),
		cmocka_unit_test(test_batch_ids_json_appends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
