/*
 * ccat: the catalog of a cluster (issue #16), a JetStream key-value bucket
 * "<[cluster] stream>_CATALOG" that every node watches into its own LMDB
 * catalog.  One key per object: "topic.<hex of the name>" (a topic or a
 * family) and "token.<public id>"; values are JSON with what catalog.c needs
 * to make the object again (a token's SHA-256, never its secret).  Ids are
 * each node's own: a token names its topic by name.  Family members are not
 * in the bucket: each node materialises them on use.  Applying an entry is
 * idempotent, so a watcher may replay the whole bucket at any time.
 */
#ifndef RINGCAST_CCAT_H
#define RINGCAST_CCAT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ringcast/catalog.h"

struct config;

#define CCAT_BUCKET_SUFFIX	"_CATALOG"
#define CCAT_TOPIC_PREFIX	"topic."
#define CCAT_TOKEN_PREFIX	"token."
#define CCAT_KEY_MAX		(sizeof(CCAT_TOPIC_PREFIX) + 2 * TOPIC_NAME_MAX)
#define CCAT_VALUE_MAX		4096	/* a longer value is refused */
#define CCAT_HASH_LEN		32	/* SHA-256 of a token's secret */

enum ccat_kind {
	CCAT_TOPIC = 1,
	CCAT_TOKEN = 2,
};

/* One bucket entry, parsed. */
struct ccat_entry {
	enum ccat_kind		 kind;
	int			 deleted;
	int			 members;	/* a family's delete takes its
						 * members with it */
	struct catalog_topic	 topic;		/* CCAT_TOPIC: name, flags
						 * (PRIVATE, FAMILY),
						 * description, retention,
						 * created; a delete: name */
	char			 token_id[TOKEN_ID_LEN + 1];
	unsigned char		 token_hash[CCAT_HASH_LEN];
	uint32_t		 token_rights;
	char			 token_topic[TOPIC_NAME_MAX + 1]; /* "": all */
	uint64_t		 token_created;
};

/* What a watcher did, for metrics: a copy taken under its lock. */
struct ccat_stats {
	uint64_t	 entries;	/* entries seen */
	uint64_t	 applied;	/* entries that changed the catalog */
	uint64_t	 errors;	/* entries or calls that failed */
	uint64_t	 restarts;	/* watchers made: 1, plus one per
					 * watcher that failed */
	int		 synced;	/* the bucket's state was seen whole */
	char		 last_error[256];	/* "" when none yet */
};

/* A cluster client of the bucket: ringcastctl's and `cluster sync`'s. */
struct ccat_client {
	natsConnection	*nc;
	jsCtx		*js;
	kvStore		*kv;
};

struct ccat_watch;

/* The key of topic (or family) name; 0, or -1 if buf is too small or the
 * name invalid. */
int	ccat_key_topic(char *buf, size_t len, const char *name);
/* The public id (TOKEN_ID_LEN + 1 bytes) of the token whose secret hashes
 * to hash. */
void	ccat_token_id(char *id, const unsigned char *hash);
/* The key of the token with public id; 0 or -1. */
int	ccat_key_token(char *buf, size_t len, const char *id);
/* The value of topic t (name, flags, description, retention, created):
 * a NUL-terminated JSON string the caller frees, or NULL (ENOMEM). */
char	*ccat_value_topic(const struct catalog_topic *t);
/* The value of a token (rights on topic, NULL: every topic): as above. */
char	*ccat_value_token(const char *id, const unsigned char *hash,
	    uint32_t rights, const char *topic, uint64_t created);
/*
 * Parse the entry key = value[len] (deleted: a delete or purge marker,
 * whose value is empty or {"members":true}) into *e; 0, or -1 with a
 * message naming the key in err.  Never touches a catalog or NATS.
 */
int	ccat_entry_parse(struct ccat_entry *e, const char *key,
	    const void *value, size_t len, int deleted, char *err,
	    size_t errlen);
/* Make the catalog agree with entry e: 1 (changed), 0 (it already did),
 * 2 (a token whose topic is not here: nothing done), or -1 with err. */
int	ccat_entry_apply(struct catalog *cat, const struct ccat_entry *e,
	    char *err, size_t errlen);
/* ccat_entry_parse then ccat_entry_apply: 2, 1, 0 or -1 with err. */
int	ccat_apply(struct catalog *cat, const char *key, const void *value,
	    size_t len, int deleted, char *err, size_t errlen);

/* The bucket's name for conf into buf; 0 or -1. */
int	ccat_bucket_name(char *buf, size_t len, const struct config *conf);
/* Open the bucket, made (history 1, [cluster] replicas) when missing;
 * 0, or -1 with err.  May block up to the JetStream context's wait. */
int	ccat_bucket_open(kvStore **kvp, jsCtx *js, const struct config *conf,
	    char *err, size_t errlen);
/* Connect to [cluster] nats once (no retries) and open the bucket; 0, or
 * -1 with "cluster unreachable at <urls>: <reason>" in err. */
int	ccat_client_open(struct ccat_client *c, const struct config *conf,
	    char *err, size_t errlen);
/* Close what ccat_client_open opened; a zeroed client is fine. */
void	ccat_client_close(struct ccat_client *c);
/* The entry under key now: 0 (*e, *rev filled), 1 (none or deleted), or
 * -1 with err. */
int	ccat_get(kvStore *kv, const char *key, struct ccat_entry *e,
	    uint64_t *rev, char *err, size_t errlen);
/* Write topic t: made (rev 0; 1 if the key exists) or updated from
 * revision rev (1 if someone changed it since); 0, 1 or -1 with err. */
int	ccat_publish_topic(kvStore *kv, const struct catalog_topic *t,
	    uint64_t rev, char *err, size_t errlen);
/* Remove topic (or family) name and the token keys bound to it (with
 * members: to the family's members too); 0, or -1 with err. */
int	ccat_publish_topic_remove(struct ccat_client *c, const char *name,
	    int members, char *err, size_t errlen);
/* Make token id (1 if the id is taken); 0, 1 or -1 with err. */
int	ccat_publish_token(kvStore *kv, const char *id,
	    const unsigned char *hash, uint32_t rights, const char *topic,
	    uint64_t created, char *err, size_t errlen);
/* Remove token id: 0, 1 (no such token), or -1 with err. */
int	ccat_publish_token_remove(kvStore *kv, const char *id, char *err,
	    size_t errlen);
/* Apply the bucket's entry under key (a missing key: a delete) to cat;
 * 2, 1, 0 or -1 as ccat_entry_apply. */
int	ccat_sync_key(kvStore *kv, struct catalog *cat, const char *key,
	    char *err, size_t errlen);
/* Apply every entry of the bucket to cat, waiting at most timeout_ms for
 * each, and return once the bucket's state was seen whole; counts go to
 * *st.  0, or -1 with err (then some entries may have been applied). */
int	ccat_sync_all(kvStore *kv, struct catalog *cat, int64_t timeout_ms,
	    struct ccat_stats *st, char *err, size_t errlen);
/* Get topic name's key (or its family's) now and apply it: for a node
 * that meets a topic before its watcher does.  0 (applied or already
 * here), 1 (not in the cluster's catalog), or -1. */
int	ccat_fetch_topic(jsCtx *js, const struct config *conf,
	    struct catalog *cat, const char *name);

/*
 * Start a thread that keeps a catalog in step with the bucket: the whole
 * bucket first, then each change.  The catalog is cat, written with
 * catlock held (one LMDB environment per process: the relay shares its
 * own), or with cat NULL one the thread opens from conf.  It outlives NATS
 * outages: nats.c's watcher (an ordered consumer) resumes after a
 * reconnect by itself, and one that fails is made again (a replay).  js
 * must outlive the watch; conf is copied.
 * 0, or -1 with err (pthread_create).
 */
int	ccat_watch_start(struct ccat_watch **wp, jsCtx *js,
	    const struct config *conf, struct catalog *cat,
	    pthread_mutex_t *catlock, char *err, size_t errlen);
/* Copy the counters (under the watch's lock). */
void	ccat_watch_stats(struct ccat_watch *w, struct ccat_stats *st);
/* Stop the thread, wait for it and free the watch; NULL is fine.  May
 * block as long as one JetStream request (the context's wait). */
void	ccat_watch_stop(struct ccat_watch *w);

#endif
