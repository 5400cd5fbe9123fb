/*
 * catalog: the LMDB catalog of DESIGN §5: topics, token hashes with their
 * rights, and meta (schema version, the sequence high-water mark).  Every
 * lookup has three outcomes: found, not found, error; an error (map full,
 * I/O, corruption) is never reported as "not found".  A struct catalog must
 * not cross fork(): open one per process.
 */
#ifndef RINGCAST_CATALOG_H
#define RINGCAST_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct catalog;

#define TOPIC_NAME_MAX		128
#define TOPIC_DESC_MAX		255
#define CATALOG_TOPIC_PRIVATE	0x1	/* subscribers need a token */
#define CATALOG_TOPIC_MEMBER	0x2	/* materialised from its family */
#define CATALOG_TOPIC_FAMILY	0x4	/* the name is a pattern: "user/" "*" */

#define CATALOG_RESOLVE_MATERIALISE 0x1	/* store a family member on first use */
#define CATALOG_RESOLVE_AUTO_CREATE 0x2	/* create a topic outside any family */

#define CATALOG_RIGHT_PUBLISH	0x1
#define CATALOG_RIGHT_SUBSCRIBE	0x2

#define CATALOG_RDONLY		0x1	/* open read-only */
#define CATALOG_CREATE		0x2	/* create the directory if missing */

#define TOKEN_SECRET_LEN	43	/* base64url of 32 random bytes */
#define TOKEN_ID_LEN		12	/* public id: hex of 6 hash bytes */

enum catalog_result {
	CATALOG_ERROR = -1,
	CATALOG_FOUND = 0,
	CATALOG_NOT_FOUND = 1,
	CATALOG_EXISTS = 2,		/* from an add: the name is taken */
};

struct catalog_topic {
	uint32_t	 id;		/* stable, never reused, >= 1; 0: a
					 * family member not yet materialised */
	uint32_t	 flags;
	uint64_t	 created;	/* unix time */
	uint32_t	 keep;		/* history: newest events; 0: default */
	uint64_t	 max_age_ms;	/* history: age bound; 0: default */
	char		 name[TOPIC_NAME_MAX + 1];
	char		 description[TOPIC_DESC_MAX + 1];
};

struct catalog_token {
	char		 id[TOKEN_ID_LEN + 1];
	uint32_t	 rights;
	uint32_t	 topic;		/* topic id, 0: every topic */
	uint64_t	 created;
};

/* Is name[len] a topic name of DESIGN §4?  1 or 0. */
int	catalog_topic_name_valid(const char *name, size_t len);
/* Is desc[len] a topic description: at most TOPIC_DESC_MAX bytes, no control
 * characters?  1 or 0. */
int	catalog_topic_description_valid(const char *desc, size_t len);

/* Open the environment at path (a directory) with map_size.  0, or -1 with
 * a message naming the path in err. */
int	catalog_open(struct catalog **catp, const char *path, uint64_t map_size,
	    int flags, char *err, size_t errlen);
/* Close; NULL is fine. */
void	catalog_close(struct catalog *cat);
/* The last error's message (valid until the next call). */
const char *catalog_error(const struct catalog *cat);

/* Look a catalog entry (a topic, or a family by its pattern) up by name
 * exactly, in a short read-only transaction. */
enum catalog_result catalog_topic_lookup(struct catalog *cat, const char *name,
	    size_t len, struct catalog_topic *topic);
/*
 * The topic a client names: the exact entry if there is one, else a member
 * of the family pattern_family_of(name) with the family's options.  With
 * CATALOG_RESOLVE_MATERIALISE a member is stored (one write transaction, on
 * first use; later calls are one read) and gets its id; without it a member
 * not yet stored is returned with id 0.  With CATALOG_RESOLVE_AUTO_CREATE a
 * name outside any family is created as a public topic.  Patterns are not
 * topics: CATALOG_NOT_FOUND.
 */
enum catalog_result catalog_topic_resolve(struct catalog *cat,
	    const char *name, size_t len, int flags,
	    struct catalog_topic *topic);
/* Add a topic, or a family when name is a family pattern (pattern.h);
 * CATALOG_FOUND (added, *topic filled), CATALOG_EXISTS (*topic is the
 * existing entry), or CATALOG_ERROR.  The name must be valid. */
enum catalog_result catalog_topic_add(struct catalog *cat, const char *name,
	    uint32_t flags, const char *description, struct catalog_topic *topic);
/* catalog_topic_add with a history retention, in the same transaction, so
 * the archiver never sees the topic without it. */
enum catalog_result catalog_topic_add_retention(struct catalog *cat,
	    const char *name, uint32_t flags, const char *description,
	    uint32_t keep, uint64_t max_age_ms, struct catalog_topic *topic);
/* Set a topic's history retention (keep events, max_age_ms; 0: the
 * [history] default) and fill *topic (may be NULL): CATALOG_FOUND,
 * CATALOG_NOT_FOUND or CATALOG_ERROR. */
enum catalog_result catalog_topic_set_retention(struct catalog *cat,
	    const char *name, uint32_t keep, uint64_t max_age_ms,
	    struct catalog_topic *topic);
/* Remove a topic (or a family: its members stay) and the tokens bound to
 * it. */
enum catalog_result catalog_topic_remove(struct catalog *cat, const char *name);
/* Remove the family pattern, every member materialised from it and their
 * tokens, in one transaction; *members (may be NULL) counts the members. */
enum catalog_result catalog_family_remove(struct catalog *cat,
	    const char *pattern, size_t *members);
/* Call fn for each topic in name order; stops early if fn returns non-zero.
 * Returns 0 or -1 (error). */
int	catalog_topic_foreach(struct catalog *cat,
	    int (*fn)(void *arg, const struct catalog_topic *topic), void *arg);

/*
 * Make the catalog hold t as a cluster peer described it (name, flags
 * CATALOG_TOPIC_PRIVATE and CATALOG_TOPIC_FAMILY, description, retention,
 * created): added with this node's next id when missing, rewritten in place
 * (its id kept) when it differs, left alone when equal.  *changed (may be
 * NULL) says whether anything was written.  CATALOG_FOUND or CATALOG_ERROR.
 */
enum catalog_result catalog_topic_put(struct catalog *cat,
	    const struct catalog_topic *t, int *changed);

/* Make a token with rights on topic (name, a family pattern for every member
 * of the family, or NULL for every topic).  The
 * secret (TOKEN_SECRET_LEN + 1 bytes, NUL-terminated) is written to secret
 * and stored only as its SHA-256.  CATALOG_FOUND on success, CATALOG_NOT_FOUND
 * if the topic does not exist, CATALOG_ERROR. */
enum catalog_result catalog_token_add(struct catalog *cat, uint32_t rights,
	    const char *topic, char *secret, struct catalog_token *token);
/* A new secret (TOKEN_SECRET_LEN + 1 bytes) and its SHA-256 (32 bytes),
 * nothing stored: for a token made elsewhere first (a cluster). */
void	catalog_token_secret_new(char *secret, unsigned char *hash);
/* The SHA-256 of secret[len] into hash (32 bytes). */
void	catalog_token_hash(const char *secret, size_t len, unsigned char *hash);
/*
 * Store the token whose secret hashes to hash (32 bytes) with rights on
 * topic (as for catalog_token_add: a name, a pattern, or NULL) and
 * created, as a cluster peer made it; an equal token is left alone and
 * *changed (may be NULL) says whether anything was written.
 * CATALOG_FOUND, CATALOG_NOT_FOUND (no such topic here), CATALOG_ERROR.
 */
enum catalog_result catalog_token_put(struct catalog *cat,
	    const unsigned char *hash, uint32_t rights, const char *topic,
	    uint64_t created, int *changed);
/* Remove the token with this public id. */
enum catalog_result catalog_token_remove(struct catalog *cat, const char *id);
int	catalog_token_foreach(struct catalog *cat,
	    int (*fn)(void *arg, const struct catalog_token *token), void *arg);
/* Does secret[len] grant right on topic (an id)?  A family's token grants
 * its materialised members, not an exact topic overriding the family.
 * CATALOG_FOUND: yes; CATALOG_NOT_FOUND: no such token, or it lacks the
 * right; CATALOG_ERROR.  The comparison is constant-time. */
enum catalog_result catalog_token_check(struct catalog *cat,
	    const char *secret, size_t len, uint32_t topic, uint32_t right);

/* The persisted sequence high-water mark (0 if none). */
enum catalog_result catalog_hwm_get(struct catalog *cat, uint64_t *seq);
/* Raise the high-water mark to seq (never lowers it); 0 or -1. */
int	catalog_hwm_raise(struct catalog *cat, uint64_t seq);
/* Clear reader slots of dead processes (mdb_reader_check); the number
 * cleared, or -1. */
int	catalog_reader_check(struct catalog *cat);

#endif
