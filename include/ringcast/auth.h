/*
 * auth: who may read or publish a topic (DESIGN §10.3).  Two kinds of
 * credential: the opaque tokens of ringcastctl (hashed in the catalog), and
 * JSON Web Tokens signed by the application, verified with libjwt against
 * the keys of [auth] jwt_key_file (loaded once, at config load, so a bad key
 * file fails the load or reload).  A JWT carries exp and a "ringcast"
 * claim of topic patterns (pattern.h); it is verified at most once per
 * request, however many topics that request names, and never per event.
 */
#ifndef RINGCAST_AUTH_H
#define RINGCAST_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct auth;
struct catalog;
struct json_t;

#define AUTH_KEYS_MAX		16	/* keys in one key file */
#define AUTH_KID_MAX		64
#define AUTH_PATTERNS_MAX	64	/* patterns in one claim list */
#define AUTH_SECRET_MIN		32	/* bytes of an HS* secret */
#define AUTH_TOKEN_MAX		4096

/* What a verified JWT grants; filled by auth_verify, freed with
 * auth_grant_free. */
struct auth_grant {
	struct json_t	*claims;	/* the "ringcast" object, or NULL */
	int64_t		 exp;		/* unix time */
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_INVALID,		/* refused: *reason says why (a 401) */
	AUTH_ERROR,		/* out of memory: transient */
};

/* A request's credential: the first of Authorization: Bearer, the cookie
 * and the token query parameter that came (route.c picks it).  A JWT in it
 * is verified on the first auth_check that needs it, and only then. */
struct auth_cred {
	const char		*token;		/* NULL: none came */
	int			 state;		/* JWT: 0 unchecked, 1 good,
						 * -1 refused, -2 error */
	const char		*reason;	/* why refused */
	struct auth_grant	 grant;		/* state 1 */
};

enum auth_answer {
	AUTH_ALLOWED = 0,
	AUTH_NO_TOKEN,		/* 401: no credential came */
	AUTH_BAD_TOKEN,		/* 401: cred->reason */
	AUTH_FORBIDDEN,		/* 403: a good token that does not cover it */
	AUTH_UNAVAILABLE,	/* the catalog failed, or memory ran out */
};

/* Parse a list of JWS algorithm names ("HS256, RS256") into *mask.  0, or
 * -1 with the reason in err ("none" is never accepted). */
int	auth_algorithms_parse(const char *text, unsigned int *mask, char *err,
	    size_t errlen);
/* The names in mask, comma-separated, into out[cap]. */
void	auth_algorithms_text(unsigned int mask, char *out, size_t cap);

/*
 * Load the keys of path (a PEM public key, an HS* secret, or a JSON key set
 * of kid -> {secret | pem | pem_file, alg}: see ringcast.conf(5)) for the
 * algorithms in mask, and the claims policy: audience and issuer ("" for
 * none), and the clock skew allowed.  *out is owned by the caller
 * (auth_free).  0, or -1 with the reason in err.
 */
int	auth_load(struct auth **out, const char *path, unsigned int mask,
	    const char *audience, const char *issuer, uint64_t skew_ms,
	    char *err, size_t errlen);
/* Free what auth_load made; NULL is fine. */
void	auth_free(struct auth *a);
/* How many keys a holds. */
size_t	auth_key_count(const struct auth *a);

/* Does token look like a JWT (three dot-separated parts)? 1 or 0. */
int	auth_token_is_jwt(const char *token);
/* Verify a JWT at unix time now: its signature with a key that fits its
 * alg (and kid), then exp, nbf, iat, aud, iss and the "ringcast" claim.
 * On AUTH_OK, g holds the grant (auth_grant_free); otherwise *reason says
 * why (a static string).  Costs one signature check per candidate key. */
enum auth_result auth_verify(const struct auth *a, const char *token,
	    time_t now, struct auth_grant *g, const char **reason);
/* Does g grant right (CATALOG_RIGHT_SUBSCRIBE or _PUBLISH) on topic name
 * t[len]?  O(patterns x len). */
int	auth_grant_allows(const struct auth_grant *g, uint32_t right,
	    const char *t, size_t len);
/* Release a grant; a zeroed one is fine. */
void	auth_grant_free(struct auth_grant *g);

/*
 * May cred exercise right on the topic topic_id called name?  A JWT (when
 * a holds keys) is checked against its claims, verified on first use at
 * unix time now; anything else is an opaque token checked in cat.  Never
 * blocks but on LMDB's read of cat.
 */
enum auth_answer auth_check(const struct auth *a, struct catalog *cat,
	    struct auth_cred *cred, uint32_t topic_id, const char *name,
	    uint32_t right, time_t now);
/* Release what auth_check kept in cred. */
void	auth_cred_free(struct auth_cred *cred);

#endif
