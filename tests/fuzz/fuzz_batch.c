/*
 * fuzz_batch: batch publish bodies (NDJSON).  Input: a byte for max_events
 * (0..15), a byte for max_event_bytes (0..1020, in fours), then the body.
 * Accepted: 1..max_events events, one per non-blank line in order, each
 * with a valid topic and type, data within the limit and without NUL, and
 * every string equal to what jansson decodes from that line on its own.
 * Refused: the batch is empty and err names a non-blank line, in printable
 * ASCII.  The ids answer of an accepted batch is checked as JSON.  No crash,
 * no leak (ASan) either way.
 */
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include "ringcast/batch.h"
#include "ringcast/catalog.h"
#include "ringcast/http.h"
#include "ringcast/sse.h"
#include "fuzz.h"

/* Line number (1-based) of a body, independently split: LF ends a line,
 * one CR before it is dropped. */
static int
ref_line(const char *body, size_t len, size_t want, const char **text,
    size_t *textlen)
{
	const char	*p = body, *end = body + len, *nl;
	size_t		 line;

	for (line = 1;; line++) {
		for (nl = p; nl < end && *nl != '\n'; nl++)
			;
		if (line == want) {
			*text = p;
			*textlen = (size_t)(nl - p);
			if (*textlen > 0 && p[*textlen - 1] == '\r')
				(*textlen)--;
			return 0;
		}
		if (nl == end)
			return -1;
		p = nl + 1;
	}
}

static int
ref_blank(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

/* The string member key of the line's object equals s[len]. */
static int
ref_same(json_t *obj, const char *key, const char *s, size_t len)
{
	json_t	*v = json_object_get(obj, key);

	if (s == NULL)
		return v == NULL;
	return json_is_string(v) && json_string_length(v) == len &&
	    memcmp(json_string_value(v), s, len) == 0 && s[len] == '\0';
}

static void
check_event(const struct batch_event *ev, const char *body, size_t len,
    size_t max_event_bytes)
{
	const char	*text;
	size_t		 textlen;
	json_t		*obj;

	FUZZ_CHECK(catalog_topic_name_valid(ev->topic, ev->topiclen));
	FUZZ_CHECK(strlen(ev->topic) == ev->topiclen);
	FUZZ_CHECK((ev->type == NULL) == (ev->typelen == 0));
	FUZZ_CHECK(ev->type == NULL ||
	    sse_event_type_valid(ev->type, ev->typelen));
	FUZZ_CHECK(ev->datalen <= max_event_bytes);
	FUZZ_CHECK(memchr(ev->data, '\0', ev->datalen) == NULL);
	FUZZ_CHECK(ref_line(body, len, ev->line, &text, &textlen) == 0);
	obj = json_loadb(text, textlen, 0, NULL);
	FUZZ_CHECK(json_is_object(obj));
	FUZZ_CHECK(json_object_size(obj) == (ev->type != NULL ? 3u : 2u));
	FUZZ_CHECK(ref_same(obj, "topic", ev->topic, ev->topiclen));
	FUZZ_CHECK(ref_same(obj, "data", ev->data, ev->datalen));
	FUZZ_CHECK(ref_same(obj, "event", ev->type, ev->typelen));
	json_decref(obj);
}

static void
check_ids(uint64_t first, size_t n)
{
	struct buf	 out = { 0 };
	json_t		*root, *ids;
	char		 want[32];
	size_t		 i;

	FUZZ_CHECK(batch_ids_json(&out, first, n) == 0);
	FUZZ_CHECK(out.len > 0 && out.data[out.len - 1] == '\n');
	root = json_loadb(out.data, out.len, 0, NULL);
	FUZZ_CHECK(json_is_object(root) && json_object_size(root) == 1);
	ids = json_object_get(root, "ids");
	FUZZ_CHECK(json_is_array(ids) && json_array_size(ids) == n);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%" PRIu64, first + i);
		FUZZ_CHECK(json_is_string(json_array_get(ids, i)));
		FUZZ_CHECK(strcmp(json_string_value(json_array_get(ids, i)),
		    want) == 0);
	}
	json_decref(root);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	struct batch	 b;
	const char	*body = (const char *)in + 2, *text;
	size_t		 len, max_events, max_event_bytes, i, line, textlen;
	size_t		 nonblank = 0;
	char		 err[256], *p;

	if (size < 2)
		return 0;
	max_events = in[0] % 16;
	max_event_bytes = (size_t)in[1] * 4;
	len = size - 2;

	for (line = 1; ref_line(body, len, line, &text, &textlen) == 0; line++)
		nonblank += !ref_blank(text, textlen);

	if (batch_parse(&b, body, len, max_events, max_event_bytes, err,
	    sizeof(err)) == 0) {
		FUZZ_CHECK(b.n >= 1 && b.n <= max_events);
		FUZZ_CHECK(b.n == nonblank);
		for (i = 0; i < b.n; i++) {
			FUZZ_CHECK(i == 0 ||
			    b.events[i].line > b.events[i - 1].line);
			check_event(&b.events[i], body, len, max_event_bytes);
		}
		check_ids(size > 8 ? (uint64_t)in[size - 1] << 56 : 1, b.n);
		batch_free(&b);
		FUZZ_CHECK(b.events == NULL && b.n == 0);
		return 0;
	}

	FUZZ_CHECK(b.events == NULL && b.n == 0);
	FUZZ_CHECK(err[0] != '\0');
	for (p = err; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e);
	if (nonblank == 0)
		FUZZ_CHECK(strcmp(err, "no events in the body") == 0);
	else {
		FUZZ_CHECK(sscanf(err, "line %zu: ", &line) == 1);
		FUZZ_CHECK(ref_line(body, len, line, &text, &textlen) == 0);
		FUZZ_CHECK(!ref_blank(text, textlen));
	}
	return 0;
}
