/*
 * pattern: topic patterns, shared by topic families in the catalog and the
 * claims of JWTs.  A pattern is a topic name (DESIGN §4), matching only
 * itself, or a family: a name prefix ending in '/' or ':', then '*',
 * matching every topic with exactly one more segment there ("user/" + "*"
 * matches "user/42", not "user", "user/" or "user/42/x").  A lone '*'
 * matches every one-segment topic.
 */
#ifndef RINGCAST_PATTERN_H
#define RINGCAST_PATTERN_H

#include <stddef.h>

/* Is p[len] a pattern: a valid topic name, a valid prefix and '/' or ':'
 * then '*', or a lone '*'?  O(len). */
int	pattern_valid(const char *p, size_t len);
/* Is p[len] a family pattern (ends in "*")?  Assumes pattern_valid. */
int	pattern_is_family(const char *p, size_t len);
/* Does pattern p match topic name t (a valid name)?  O(len). */
int	pattern_match(const char *p, size_t plen, const char *t, size_t tlen);
/* How specific a matching pattern is, for "the longest pattern wins": its
 * length, with an exact name above every family. */
size_t	pattern_rank(const char *p, size_t len);
/* The family pattern whose members include topic t (for "user/42", "user/"
 * and '*'; for "news", a lone '*') into out[cap], NUL-terminated; its
 * length, or -1 when cap is too small. */
int	pattern_family_of(const char *t, size_t tlen, char *out, size_t cap);

#endif
