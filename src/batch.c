/*
 * batch: NDJSON batch publish bodies, parsed line by line with jansson
 * (json_loadb, no JSON_ALLOW_NUL, the end-of-input check on, duplicate keys
 * refused).  One allocation holds the event array and, after it, an arena
 * with every decoded string: a JSON string never decodes to more bytes than
 * it takes in the body, quotes included, so len bytes always suffice.
 * Nothing is kept unless every line is valid.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ringcast/batch.h"
#include "ringcast/catalog.h"
#include "ringcast/http.h"
#include "ringcast/sse.h"

/*
 * A line longer than this many bytes beyond six per data byte (the widest
 * escape, \u00XX, for one byte) cannot be a valid event, so it is refused
 * before jansson builds a tree of it: the bound keeps the memory of a line
 * proportional to max_event_bytes.  The slack covers the keys, the topic and
 * the type, all escaped, and generous white space.
 */
#define BATCH_LINE_SLACK	4096
#define BATCH_ESCAPE_MAX	6
#define BATCH_KEY_SHOWN		32	/* bytes of an unknown key in err */

/* The arena of decoded strings: the bytes after the event array. */
struct batch_arena {
	char	*next;
	char	*end;
};

/* Fill err with "line N: " and the message; bytes that are not printable
 * ASCII (jansson quotes the input) become '?', as err goes to a client. */
static void
batch_error(char *err, size_t errlen, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
batch_error(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 off = 0;
	int	 n;
	char	*p;

	if (errlen == 0)
		return;
	if (line > 0) {
		n = snprintf(err, errlen, "line %zu: ", line);
		off = n < 0 ? 0 : (size_t)n;
	}
	if (off < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + off, errlen - off, fmt, ap);
		va_end(ap);
	}
	for (p = err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

/* Only spaces, tabs and CRs: a line to skip. */
static int
batch_line_blank(const char *line, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

/* Copy a string value into the arena, NUL-terminated; NULL if it does not
 * fit, which the bound in the file comment rules out. */
static const char *
batch_arena_put(struct batch_arena *a, const json_t *value, size_t *lenp)
{
	size_t	 len = json_string_length(value);
	char	*s = a->next;

	if (len >= (size_t)(a->end - a->next))
		return NULL;
	memcpy(s, json_string_value(value), len);
	s[len] = '\0';
	a->next += len + 1;
	*lenp = len;
	return s;
}

/* Sort the members of one event object into topic, data and event; an
 * unknown key is an error naming it. */
static int
batch_event_members(json_t *obj, json_t **topic, json_t **data,
    json_t **type, size_t line, char *err, size_t errlen)
{
	const char	*key;
	json_t		*value;

	*topic = *data = *type = NULL;
	json_object_foreach(obj, key, value) {
		if (strcmp(key, "topic") == 0)
			*topic = value;
		else if (strcmp(key, "data") == 0)
			*data = value;
		else if (strcmp(key, "event") == 0)
			*type = value;
		else {
			batch_error(err, errlen, line, "unknown key \"%.*s\"%s",
			    BATCH_KEY_SHOWN, key,
			    strlen(key) > BATCH_KEY_SHOWN ? "..." : "");
			return -1;
		}
	}
	return 0;
}

/* Validate the object of one line and copy its strings into the arena. */
static int
batch_event_take(struct batch_event *ev, json_t *obj,
    struct batch_arena *arena, size_t max_event_bytes, size_t line,
    char *err, size_t errlen)
{
	json_t	*topic, *data, *type;

	if (!json_is_object(obj)) {
		batch_error(err, errlen, line, "not a JSON object");
		return -1;
	}
	if (batch_event_members(obj, &topic, &data, &type, line, err,
	    errlen) == -1)
		return -1;
	if (topic == NULL || !json_is_string(topic)) {
		batch_error(err, errlen, line, "\"topic\" is %s",
		    topic == NULL ? "missing" : "not a string");
		return -1;
	}
	if (!catalog_topic_name_valid(json_string_value(topic),
	    json_string_length(topic))) {
		batch_error(err, errlen, line, "bad topic name");
		return -1;
	}
	if (data == NULL || !json_is_string(data)) {
		batch_error(err, errlen, line, "\"data\" is %s",
		    data == NULL ? "missing" : "not a string");
		return -1;
	}
	if (json_string_length(data) > max_event_bytes) {
		batch_error(err, errlen, line, "\"data\" is %zu bytes, over "
		    "max_event_bytes (%zu)", json_string_length(data),
		    max_event_bytes);
		return -1;
	}
	if (type != NULL && !json_is_string(type)) {
		batch_error(err, errlen, line, "\"event\" is not a string");
		return -1;
	}
	if (type != NULL && !sse_event_type_valid(json_string_value(type),
	    json_string_length(type))) {
		batch_error(err, errlen, line, "bad event type: 1 to %d bytes, "
		    "no CR or LF", SSE_EVENT_TYPE_MAX);
		return -1;
	}

	ev->line = line;
	ev->type = NULL;
	ev->typelen = 0;
	if ((ev->topic = batch_arena_put(arena, topic, &ev->topiclen)) ==
	    NULL || (ev->data = batch_arena_put(arena, data, &ev->datalen)) ==
	    NULL || (type != NULL && (ev->type = batch_arena_put(arena, type,
	    &ev->typelen)) == NULL)) {
		batch_error(err, errlen, line, "internal error: arena full");
		return -1;
	}
	return 0;
}

/* Parse one non-blank line into ev. */
static int
batch_line_parse(struct batch_event *ev, const char *text, size_t len,
    struct batch_arena *arena, size_t max_line, size_t max_event_bytes,
    size_t line, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*obj;
	int		 rc;

	if (len > max_line) {
		batch_error(err, errlen, line, "line too long (%zu bytes, at "
		    "most %zu)", len, max_line);
		return -1;
	}
	if ((obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			batch_error(err, errlen, line, "%s", jerr.text);
		else
			batch_error(err, errlen, line, "not JSON: %s",
			    jerr.text);
		return -1;
	}
	rc = batch_event_take(ev, obj, arena, max_event_bytes, line, err,
	    errlen);
	json_decref(obj);
	return rc;
}

int
batch_parse(struct batch *b, const char *body, size_t len, size_t max_events,
    size_t max_event_bytes, char *err, size_t errlen)
{
	struct batch_event	*events;
	struct batch_arena	 arena;
	const char		*p, *end, *nl;
	size_t			 lines, cap, line, linelen, max_line, n = 0;

	memset(b, 0, sizeof(*b));
	if (errlen > 0)
		err[0] = '\0';
	if (len == 0) {
		batch_error(err, errlen, 0, "no events in the body");
		return -1;
	}
	end = body + len;

	/* One event per line at most, and never more than max_events. */
	for (lines = 1, p = body; (nl = memchr(p, '\n', (size_t)(end - p))) !=
	    NULL; p = nl + 1)
		lines++;
	cap = lines < max_events ? lines : max_events;
	if (cap > (SIZE_MAX - len - 1) / sizeof(*events)) {
		batch_error(err, errlen, 0, "body too large");
		return -1;
	}
	if ((events = malloc(cap * sizeof(*events) + len + 1)) == NULL) {
		batch_error(err, errlen, 0, "out of memory");
		return -1;
	}
	arena.next = (char *)(events + cap);
	arena.end = arena.next + len + 1;

	if (max_event_bytes > (SIZE_MAX - BATCH_LINE_SLACK) / BATCH_ESCAPE_MAX)
		max_line = SIZE_MAX;
	else
		max_line = max_event_bytes * BATCH_ESCAPE_MAX +
		    BATCH_LINE_SLACK;

	for (p = body, line = 1;; line++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		linelen = (size_t)(nl - p);
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		if (!batch_line_blank(p, linelen)) {
			if (n == max_events) {
				batch_error(err, errlen, line, "more than %zu "
				    "events", max_events);
				goto fail;
			}
			if (batch_line_parse(&events[n], p, linelen, &arena,
			    max_line, max_event_bytes, line, err,
			    errlen) == -1)
				goto fail;
			n++;
		}
		if (nl == end)
			break;
		p = nl + 1;
	}
	if (n == 0) {
		batch_error(err, errlen, 0, "no events in the body");
		goto fail;
	}
	b->events = events;
	b->n = n;
	return 0;
fail:
	free(events);
	return -1;
}

void
batch_free(struct batch *b)
{
	free(b->events);
	memset(b, 0, sizeof(*b));
}

int
batch_ids_json(struct buf *out, uint64_t first_seq, size_t n)
{
	char	 id[32];
	size_t	 mark = out->len, i;
	int	 len;

	if (buf_append(out, "{\"ids\":[", 8) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		len = snprintf(id, sizeof(id), "%s\"%" PRIu64 "\"",
		    i > 0 ? "," : "", first_seq + i);
		if (buf_append(out, id, (size_t)len) == -1)
			goto fail;
	}
	if (buf_append(out, "]}\n", 3) == -1)
		goto fail;
	return 0;
fail:
	out->len = mark;
	return -1;
}
