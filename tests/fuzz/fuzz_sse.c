/*
 * fuzz_sse: the encoder against a tiny EventSource-style parser.  Input: a
 * byte choosing the event type's length, the type, then the data.  The
 * encoded size must be the predicted one, the bytes must stay in the buffer
 * they were given, and parsing them back must give the type and the data
 * with CR and CRLF turned into LF.  The id line, the type check and the
 * Last-Event-ID parser are checked against references written from sse.h.
 */
#include <string.h>

#include "ringcast/sse.h"
#include "fuzz.h"

/* Data with CR, LF and CRLF all as LF: what EventSource gives back. */
static size_t
normalise(const unsigned char *in, size_t len, char *out)
{
	size_t	 i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\r') {
			out[n++] = '\n';
			if (i + 1 < len && in[i + 1] == '\n')
				i++;
		} else
			out[n++] = (char)in[i];
	}
	return n;
}

/* Parse a body: an optional "event: " line, then "data: " lines, each
 * ending in LF; the data lines joined with LF go to data.  -1 if the body
 * is not of that form. */
static int
parse_body(const char *buf, size_t len, const char **type, size_t *typelen,
    char *data, size_t *datalen)
{
	const char	*p = buf, *end = buf + len, *nl;
	size_t		 n = 0;
	int		 lines = 0;

	*type = NULL;
	*typelen = 0;
	if (len >= 7 && memcmp(p, "event: ", 7) == 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		*type = p + 7;
		*typelen = (size_t)(nl - p) - 7;
		p = nl + 1;
	}
	while (p < end) {
		if ((size_t)(end - p) < 6 || memcmp(p, "data: ", 6) != 0)
			return -1;
		p += 6;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		/* A data line never holds a CR: that would end it. */
		if (memchr(p, '\r', (size_t)(nl - p)) != NULL)
			return -1;
		if (lines++ > 0)
			data[n++] = '\n';
		memcpy(data + n, p, (size_t)(nl - p));
		n += (size_t)(nl - p);
		p = nl + 1;
	}
	if (lines == 0)
		return -1;
	*datalen = n;
	return 0;
}

static int
ref_type_valid(const char *t, size_t len)
{
	size_t	 i;

	if (len < 1 || len > 64)
		return 0;
	for (i = 0; i < len; i++)
		if (t[i] == '\r' || t[i] == '\n' || t[i] == '\0')
			return 0;
	return 1;
}

static int
ref_parse_id(const char *s, size_t len, uint64_t *v)
{
	size_t	 i;

	if (len < 1 || len > 20)
		return -1;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (len == 20 && memcmp(s, "18446744073709551615", 20) > 0)
		return -1;
	*v = 0;
	for (i = 0; i < len; i++)
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	return 0;
}

static void
check_id(uint64_t seq)
{
	char		 buf[SSE_ID_MAX], digits[24];
	size_t		 n, ndigits;
	uint64_t	 back = 0;

	ndigits = (size_t)snprintf(digits, sizeof(digits), "%llu",
	    (unsigned long long)seq);
	n = sse_encode_id(buf, sizeof(buf), seq);
	FUZZ_CHECK(n == 4 + ndigits + 2);
	FUZZ_CHECK(memcmp(buf, "id: ", 4) == 0);
	FUZZ_CHECK(memcmp(buf + 4, digits, ndigits) == 0);
	FUZZ_CHECK(memcmp(buf + 4 + ndigits, "\n\n", 2) == 0);
	FUZZ_CHECK(sse_parse_event_id(buf + 4, ndigits, &back) == 0);
	FUZZ_CHECK(back == seq);
	FUZZ_CHECK(sse_encode_id(buf, n - 1, seq) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	const char	*type, *ptype;
	const uint8_t	*data;
	size_t		 typelen, len, need, n, ptypelen, plen, wantlen;
	char		*buf, *pdata, *want;
	uint64_t	 seq = 0, v1 = 0, v2 = 0;
	int		 r1, r2;

	if (size < 1)
		return 0;
	typelen = in[0] % 72;
	if (typelen > size - 1)
		typelen = size - 1;
	type = (const char *)in + 1;
	data = in + 1 + typelen;
	len = size - 1 - typelen;

	/* The size is exact, and the encoder stays within cap. */
	need = sse_body_size(typelen, data, len);
	FUZZ_CHECK(need >= 7);
	FUZZ_CHECK(sse_encode_body(NULL, need - 1, type, typelen, data,
	    len) == 0);
	if ((buf = malloc(need)) == NULL)
		return 0;
	n = sse_encode_body(buf, need, type, typelen, data, len);
	FUZZ_CHECK(n == need);

	/* It parses back to the type and the normalised data. */
	if ((pdata = malloc(len + 1)) == NULL ||
	    (want = malloc(len + 1)) == NULL) {
		free(buf);
		free(pdata);
		return 0;
	}
	if (typelen == 0 || ref_type_valid(type, typelen)) {
		FUZZ_CHECK(parse_body(buf, n, &ptype, &ptypelen, pdata,
		    &plen) == 0);
		FUZZ_CHECK(ptypelen == typelen);
		FUZZ_CHECK(typelen == 0 || memcmp(ptype, type, typelen) == 0);
		wantlen = normalise(data, len, want);
		FUZZ_CHECK(plen == wantlen);
		FUZZ_CHECK(memcmp(pdata, want, plen) == 0);
	}
	free(want);
	free(pdata);
	free(buf);

	/* The checks on the same bytes agree with their references. */
	FUZZ_CHECK(sse_event_type_valid(type, typelen) ==
	    ref_type_valid(type, typelen));
	r1 = sse_parse_event_id((const char *)data, len, &v1);
	r2 = ref_parse_id((const char *)data, len, &v2);
	FUZZ_CHECK(r1 == r2);
	FUZZ_CHECK(r1 == -1 || v1 == v2);

	memcpy(&seq, in, size < 8 ? size : 8);
	check_id(seq);
	check_id(seq >> (in[0] % 64));
	return 0;
}
