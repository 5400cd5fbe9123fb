/*
 * sse: Server-Sent Events wire encoding (DESIGN §4).  The body is encoded
 * once per event, at publish; sizing and encoding walk the data with the
 * same function so sse_body_size() is exact by construction.  Nothing here
 * allocates or fails on any byte value.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ringcast/sse.h"

#define SSE_EVENT_PREFIX	"event: "
#define SSE_DATA_PREFIX		"data: "
#define SSE_ID_PREFIX		"id: "
#define SSE_ID_DIGITS		20	/* UINT64_MAX has 20 digits */

/* Append n bytes of src at *pos, or only count them when out is NULL. */
static void
body_put(char *out, size_t *pos, const void *src, size_t n)
{
	if (out != NULL && n > 0)
		memcpy(out + *pos, src, n);
	*pos += n;
}

/*
 * Walk the body once: returns its size and, when out is not NULL, writes it
 * there (out must hold the size).  CR, LF and CRLF each end a line; a line
 * end at the very end yields a last, empty "data:" line, which is what the
 * EventSource parser needs to give back the trailing newline.
 */
static size_t
body_walk(char *out, const char *type, size_t typelen, const void *data,
    size_t len)
{
	const unsigned char	*p = data, *end, *line;
	size_t			 pos = 0;

	/* An empty body may come as NULL (a POST without one); NULL + 0 is
	 * undefined behaviour, so do not compute it. */
	end = len > 0 ? p + len : p;

	if (typelen > 0) {
		body_put(out, &pos, SSE_EVENT_PREFIX, strlen(SSE_EVENT_PREFIX));
		body_put(out, &pos, type, typelen);
		body_put(out, &pos, "\n", 1);
	}
	for (;;) {
		line = p;
		while (p < end && *p != '\r' && *p != '\n')
			p++;
		body_put(out, &pos, SSE_DATA_PREFIX, strlen(SSE_DATA_PREFIX));
		body_put(out, &pos, line, (size_t)(p - line));
		body_put(out, &pos, "\n", 1);
		if (p == end)
			break;
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			p++;
		p++;
	}
	return pos;
}

size_t
sse_body_size(size_t typelen, const void *data, size_t len)
{
	return body_walk(NULL, NULL, typelen, data, len);
}

size_t
sse_encode_body(char *buf, size_t cap, const char *type, size_t typelen,
    const void *data, size_t len)
{
	if (sse_body_size(typelen, data, len) > cap)
		return 0;
	return body_walk(buf, type, typelen, data, len);
}

size_t
sse_encode_id(char *buf, size_t cap, uint64_t seq)
{
	char	 digits[SSE_ID_DIGITS];
	size_t	 ndigits = 0, need;

	do {
		digits[sizeof(digits) - ++ndigits] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq != 0);
	need = strlen(SSE_ID_PREFIX) + ndigits + 2;
	if (need > cap)
		return 0;
	memcpy(buf, SSE_ID_PREFIX, strlen(SSE_ID_PREFIX));
	memcpy(buf + strlen(SSE_ID_PREFIX), digits + sizeof(digits) - ndigits,
	    ndigits);
	memcpy(buf + need - 2, "\n\n", 2);
	return need;
}

int
sse_event_type_valid(const char *type, size_t len)
{
	if (type == NULL || len == 0 || len > SSE_EVENT_TYPE_MAX)
		return 0;
	return memchr(type, '\r', len) == NULL &&
	    memchr(type, '\n', len) == NULL && memchr(type, '\0', len) == NULL;
}

int
sse_parse_event_id(const char *text, size_t len, uint64_t *seq)
{
	uint64_t	 value = 0;
	unsigned int	 digit;
	size_t		 i;

	if (text == NULL || len == 0 || len > SSE_ID_DIGITS)
		return -1;
	for (i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		digit = (unsigned int)(text[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	*seq = value;
	return 0;
}
