/*
 * fuzz_parsers: the small validators the server trusts, each against a
 * reference written independently from DESIGN §4 and §9: topic names,
 * Last-Event-ID, percent-decoding, and the config size and duration units.
 * Any disagreement is a bug in one of the two.  The first byte picks the
 * parser, the rest is its input.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/http.h"
#include "ringcast/sse.h"
#include "fuzz.h"

/*
 * DESIGN §4: [A-Za-z0-9._-]{1,128}, with ':' and '/' allowed inside but not
 * first or last; no empty, "." or ".." segment.  catalog.c treats ':' as a
 * segment separator just like '/', so "a:.:b" is refused too.
 */
static int
ref_topic_valid(const char *s, size_t len)
{
	size_t	 i, seg = 0;
	int	 dots = 0, only_dots = 1;

	if (len < 1 || len > 128)
		return 0;
	if (s[0] == '/' || s[0] == ':' || s[len - 1] == '/' ||
	    s[len - 1] == ':')
		return 0;
	for (i = 0; i < len; i++) {
		char	 c = s[i];

		if (c == '/' || c == ':') {
			if (seg == 0 || (only_dots && dots <= 2))
				return 0;
			seg = 0;
			dots = 0;
			only_dots = 1;
			continue;
		}
		if (!isascii((unsigned char)c) ||
		    (!isalnum((unsigned char)c) && c != '.' && c != '_' &&
		    c != '-'))
			return 0;
		seg++;
		if (c == '.')
			dots++;
		else
			only_dots = 0;
	}
	return !(only_dots && dots <= 2);
}

static int
ref_parse_id(const char *s, size_t len, uint64_t *v)
{
	size_t	 i;

	if (len < 1 || len > 20)
		return -1;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	if (len == 20 && memcmp(s, "18446744073709551615", 20) > 0)
		return -1;
	for (*v = 0, i = 0; i < len; i++)
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	return 0;
}

static int
ref_hex(int c)
{
	const char	*digits = "0123456789abcdef";
	const char	*p;

	if (c == '\0' || (p = strchr(digits, tolower(c))) == NULL)
		return -1;
	return (int)(p - digits);
}

/* %XX escapes decoded, %00 and bad escapes refused, '+' kept. */
static ssize_t
ref_percent_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t	 i = 0, n = 0;
	int	 hi, lo;

	while (i < len) {
		/* Room for this byte and the NUL, or it is too long. */
		if (n + 2 > cap)
			return -1;
		if (s[i] != '%') {
			out[n++] = s[i++];
			continue;
		}
		if (len - i < 3)
			return -1;
		hi = ref_hex((unsigned char)s[i + 1]);
		lo = ref_hex((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
			return -1;
		out[n++] = (char)(hi * 16 + lo);
		i += 3;
	}
	if (n + 1 > cap)
		return -1;
	out[n] = '\0';
	return (ssize_t)n;
}

/* DESIGN §9 units, parsed the other way round: strip the unit, then the
 * number.  Leading and trailing blanks are allowed. */
static int
ref_units(const char *text, int duration, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} sizes[] = {
		{ "", 1 }, { "k", 1024 }, { "kb", 1024 }, { "kib", 1024 },
		{ "m", 1 << 20 }, { "mb", 1 << 20 }, { "mib", 1 << 20 },
		{ "g", 1 << 30 }, { "gb", 1 << 30 }, { "gib", 1 << 30 },
	}, durations[] = {
		{ "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60000 },
		{ "h", 3600000 },
	};
	char		 buf[256];
	size_t		 len, digits, i, n;
	uint64_t	 v = 0;
	const char	*s = text;

	while (isspace((unsigned char)*s))
		s++;
	if ((len = strlen(s)) >= sizeof(buf))
		return -1;
	memcpy(buf, s, len + 1);
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	for (digits = 0; isdigit((unsigned char)buf[digits]); digits++)
		;
	if (digits == 0)
		return -1;
	for (i = 0; i < digits; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	n = duration ? sizeof(durations) / sizeof(durations[0]) :
	    sizeof(sizes) / sizeof(sizes[0]);
	for (i = 0; i < n; i++) {
		const char	*unit = duration ? durations[i].unit :
				    sizes[i].unit;
		uint64_t	 mult = duration ? durations[i].mult :
				    sizes[i].mult;

		/* Duration units are case-insensitive too. */
		if (strcasecmp(buf + digits, unit) != 0)
			continue;
		if (v > UINT64_MAX / mult)
			return -1;
		*out = v * mult;
		return 0;
	}
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	const char	*s = (const char *)in + 1;
	size_t		 len = size > 0 ? size - 1 : 0;
	char		 text[256], out1[160], out2[160];
	uint64_t	 v1 = 0, v2 = 0;
	ssize_t		 n1, n2;
	size_t		 cap;
	int		 r1, r2;

	if (size < 1)
		return 0;
	switch (in[0] % 5) {
	case 0:
		FUZZ_CHECK(catalog_topic_name_valid(s, len) ==
		    ref_topic_valid(s, len));
		break;
	case 1:
		r1 = sse_parse_event_id(s, len, &v1);
		r2 = ref_parse_id(s, len, &v2);
		FUZZ_CHECK(r1 == r2);
		FUZZ_CHECK(r1 == -1 || v1 == v2);
		break;
	case 2:
		cap = 1 + in[0] % 151;
		n1 = http_percent_decode(s, len, out1, cap);
		n2 = ref_percent_decode(s, len, out2, cap);
		FUZZ_CHECK(n1 == n2);
		FUZZ_CHECK(n1 < 0 || memcmp(out1, out2, (size_t)n1 + 1) == 0);
		break;
	case 3:
	case 4:
		/* Config values are C strings: stop at the first NUL. */
		if (len >= sizeof(text))
			len = sizeof(text) - 1;
		memcpy(text, s, len);
		text[len] = '\0';
		if (in[0] % 5 == 3) {
			r1 = config_parse_size(text, &v1);
			r2 = ref_units(text, 0, &v2);
		} else {
			r1 = config_parse_duration(text, &v1);
			r2 = ref_units(text, 1, &v2);
		}
		FUZZ_CHECK(r1 == r2);
		FUZZ_CHECK(r1 == -1 || v1 == v2);
		break;
	}
	return 0;
}
