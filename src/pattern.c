/*
 * pattern: see pattern.h.  A family's last segment is the only wildcard:
 * patterns stay cheap to match (one compare of the prefix and one scan of
 * the rest), and a topic has at most one family per segment boundary, so
 * "the longest pattern wins" needs no search.
 */
#include <string.h>

#include "ringcast/catalog.h"
#include "ringcast/pattern.h"

int
pattern_valid(const char *p, size_t len)
{
	if (p == NULL || len == 0 || len > TOPIC_NAME_MAX)
		return 0;
	if (len == 1 && p[0] == '*')
		return 1;
	if (p[len - 1] != '*')
		return catalog_topic_name_valid(p, len);
	if (len < 3 || (p[len - 2] != '/' && p[len - 2] != ':'))
		return 0;
	return catalog_topic_name_valid(p, len - 2);
}

int
pattern_is_family(const char *p, size_t len)
{
	return len > 0 && p[len - 1] == '*';
}

int
pattern_match(const char *p, size_t plen, const char *t, size_t tlen)
{
	size_t	 i, prefix;

	if (!pattern_is_family(p, plen))
		return plen == tlen && memcmp(p, t, tlen) == 0;
	/* "prefix/" then one segment: no separator in the rest. */
	prefix = plen - 1;
	if (tlen <= prefix || memcmp(p, t, prefix) != 0)
		return 0;
	for (i = prefix; i < tlen; i++)
		if (t[i] == '/' || t[i] == ':')
			return 0;
	return 1;
}

size_t
pattern_rank(const char *p, size_t len)
{
	return pattern_is_family(p, len) ? len : TOPIC_NAME_MAX + 1 + len;
}

int
pattern_family_of(const char *t, size_t tlen, char *out, size_t cap)
{
	size_t	 i = tlen;

	while (i > 0 && t[i - 1] != '/' && t[i - 1] != ':')
		i--;
	if (i + 2 > cap)
		return -1;
	memcpy(out, t, i);
	out[i] = '*';
	out[i + 1] = '\0';
	return (int)(i + 1);
}
