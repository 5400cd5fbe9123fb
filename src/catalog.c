/*
 * catalog: LMDB storage of topics, token hashes and meta.  Every call runs in
 * its own short transaction (begin, work, commit or abort): no snapshot
 * outlives a call, so writers are never held back by a slow reader.  Records
 * are fixed little-endian layouts (see the comments at topic_encode and
 * token_encode); meta holds schema_version, next_topic_id and hwm.
 * Families are entries of "topics" named by their pattern; a member is
 * stored on first use with a copy of its family's record, and "members"
 * maps its id to its name so that a family's tokens can find it.
 */
#include <sys/stat.h>

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>
#include <sha2.h>

#include "ringcast/catalog.h"
#include "ringcast/pattern.h"

#define CATALOG_SCHEMA_VERSION	1
#define CATALOG_MAXDBS		4
#define CATALOG_FILE_MODE	0640
#define CATALOG_DIR_MODE	0750

#define TOPIC_RECORD_MIN	17	/* id, flags, created, desc length */
#define TOPIC_RETENTION_LEN	12	/* keep, max_age_ms, after the desc */
#define TOKEN_RECORD_LEN	16	/* rights, topic, created */
#define TOKEN_RANDOM_LEN	32
#define TOKEN_ID_BYTES		(TOKEN_ID_LEN / 2)

#define META_SCHEMA		"schema_version"
#define META_NEXT_TOPIC		"next_topic_id"
#define META_HWM		"hwm"

struct catalog {
	MDB_env		*env;
	MDB_dbi		 topics;
	MDB_dbi		 tokens;
	MDB_dbi		 meta;
	MDB_dbi		 members;	/* member id -> name */
	int		 has_members;	/* 0: an old catalog, read-only */
	int		 rdonly;
	char		 path[PATH_MAX];
	char		 err[PATH_MAX + 256];
};

static void
catalog_failx(struct catalog *cat, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record a message naming the path; errno is left as the caller set it. */
static void
catalog_failx(struct catalog *cat, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	n = snprintf(cat->err, sizeof(cat->err), "catalog %s: ", cat->path);
	if (n < 0 || (size_t)n >= sizeof(cat->err))
		return;
	va_start(ap, fmt);
	vsnprintf(cat->err + n, sizeof(cat->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* An LMDB call failed with rc: name the call and LMDB's reason. */
static void
catalog_fail(struct catalog *cat, const char *call, int rc)
{
	catalog_failx(cat, "%s: %s", call, mdb_strerror(rc));
	errno = rc > 0 ? rc : EIO;
}

static void
put_le32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void
put_le64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint32_t
get_le32(const unsigned char *p)
{
	uint32_t	 v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t
get_le64(const unsigned char *p)
{
	uint64_t	 v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static int
name_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Both '/' and ':' separate segments, so "a:/b", "a/:b", "a:.:b" and
 * "a/../b" are all refused: no segment may be empty, "." or "..". */
int
catalog_topic_name_valid(const char *name, size_t len)
{
	size_t	 i, start = 0, seglen;

	if (name == NULL || len == 0 || len > TOPIC_NAME_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i < len && name_char_ok((unsigned char)name[i]))
			continue;
		if (i < len && name[i] != '/' && name[i] != ':')
			return 0;
		seglen = i - start;
		if (seglen == 0)
			return 0;
		if (name[start] == '.' && (seglen == 1 ||
		    (seglen == 2 && name[start + 1] == '.')))
			return 0;
		start = i + 1;
	}
	return 1;
}

int
catalog_topic_description_valid(const char *desc, size_t len)
{
	size_t	 i;

	if (len > TOPIC_DESC_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)desc[i] < 0x20 || desc[i] == 0x7f)
			return 0;
	}
	return 1;
}

/* Begin a transaction; a map grown by another process is adopted first. */
static int
txn_begin(struct catalog *cat, unsigned int flags, MDB_txn **txnp)
{
	int	 rc;

	if (!(flags & MDB_RDONLY) && cat->rdonly) {
		catalog_failx(cat, "mdb_txn_begin: %s (opened read-only)",
		    strerror(EACCES));
		errno = EACCES;
		return -1;
	}
	rc = mdb_txn_begin(cat->env, NULL, flags, txnp);
	if (rc == MDB_MAP_RESIZED) {
		/* No transaction of ours is open: set_mapsize is allowed. */
		if ((rc = mdb_env_set_mapsize(cat->env, 0)) == 0)
			rc = mdb_txn_begin(cat->env, NULL, flags, txnp);
	}
	if (rc != 0) {
		catalog_fail(cat, "mdb_txn_begin", rc);
		return -1;
	}
	return 0;
}

static int
txn_commit(struct catalog *cat, MDB_txn *txn)
{
	int	 rc;

	if ((rc = mdb_txn_commit(txn)) != 0) {
		catalog_fail(cat, "mdb_txn_commit", rc);
		return -1;
	}
	return 0;
}

/* mdb_get with the three outcomes; val is valid until the txn ends. */
static enum catalog_result
db_get(struct catalog *cat, MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t keylen, MDB_val *val)
{
	MDB_val	 k = { keylen, (void *)key };
	int	 rc;

	rc = mdb_get(txn, dbi, &k, val);
	if (rc == MDB_NOTFOUND)
		return CATALOG_NOT_FOUND;
	if (rc != 0) {
		catalog_fail(cat, "mdb_get", rc);
		return CATALOG_ERROR;
	}
	return CATALOG_FOUND;
}

static int
db_put(struct catalog *cat, MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t keylen, const void *data, size_t datalen)
{
	MDB_val	 k = { keylen, (void *)key };
	MDB_val	 v = { datalen, (void *)data };
	int	 rc;

	if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		catalog_fail(cat, "mdb_put", rc);
		return -1;
	}
	return 0;
}

static int
meta_put32(struct catalog *cat, MDB_txn *txn, const char *key, uint32_t v)
{
	unsigned char	 buf[4];

	put_le32(buf, v);
	return db_put(cat, txn, cat->meta, key, strlen(key), buf, sizeof(buf));
}

static int
meta_put64(struct catalog *cat, MDB_txn *txn, const char *key, uint64_t v)
{
	unsigned char	 buf[8];

	put_le64(buf, v);
	return db_put(cat, txn, cat->meta, key, strlen(key), buf, sizeof(buf));
}

/* Read a meta integer of width bytes (4 or 8). */
static enum catalog_result
meta_get(struct catalog *cat, MDB_txn *txn, const char *key, size_t width,
    uint64_t *v)
{
	MDB_val			 val;
	enum catalog_result	 res;

	res = db_get(cat, txn, cat->meta, key, strlen(key), &val);
	if (res != CATALOG_FOUND)
		return res;
	if (val.mv_size != width) {
		catalog_failx(cat, "meta %s: malformed record (%zu bytes)",
		    key, val.mv_size);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	*v = width == 4 ? get_le32(val.mv_data) : get_le64(val.mv_data);
	return CATALOG_FOUND;
}

static int
open_dbis(struct catalog *cat, MDB_txn *txn)
{
	static const char *const names[] = { "topics", "tokens", "meta",
	    "members" };
	MDB_dbi		*dbis[] = { &cat->topics, &cat->tokens, &cat->meta,
	    &cat->members };
	unsigned int	 flags = cat->rdonly ? 0 : MDB_CREATE;
	size_t		 i;
	int		 rc;

	for (i = 0; i < 4; i++) {
		rc = mdb_dbi_open(txn, names[i], flags, dbis[i]);
		/* A catalog of an older build has no members until it is
		 * opened read-write: then it has none. */
		if (rc == MDB_NOTFOUND && dbis[i] == &cat->members)
			continue;
		if (rc == MDB_NOTFOUND) {
			catalog_failx(cat, "no '%s' database: not initialized "
			    "(open it read-write once, e.g. ringcastctl topic "
			    "add)", names[i]);
			errno = ENOENT;
			return -1;
		}
		if (rc != 0) {
			catalog_fail(cat, "mdb_dbi_open", rc);
			return -1;
		}
		if (dbis[i] == &cat->members)
			cat->has_members = 1;
	}
	return 0;
}

/* Open the named databases and check (or, when new, write) the schema. */
static int
catalog_init(struct catalog *cat)
{
	MDB_txn			*txn;
	uint64_t		 version;
	enum catalog_result	 res;

	if (txn_begin(cat, cat->rdonly ? MDB_RDONLY : 0, &txn) == -1)
		return -1;
	if (open_dbis(cat, txn) == -1)
		goto fail;
	res = meta_get(cat, txn, META_SCHEMA, 4, &version);
	if (res == CATALOG_ERROR)
		goto fail;
	if (res == CATALOG_NOT_FOUND && cat->rdonly) {
		catalog_failx(cat, "no schema version: not initialized");
		errno = ENOENT;
		goto fail;
	}
	if (res == CATALOG_NOT_FOUND) {
		if (meta_put32(cat, txn, META_SCHEMA,
		    CATALOG_SCHEMA_VERSION) == -1 ||
		    meta_put32(cat, txn, META_NEXT_TOPIC, 1) == -1 ||
		    meta_put64(cat, txn, META_HWM, 0) == -1)
			goto fail;
	} else if (version != CATALOG_SCHEMA_VERSION) {
		catalog_failx(cat, "schema version %llu is not supported "
		    "(this build reads version %d)",
		    (unsigned long long)version, CATALOG_SCHEMA_VERSION);
		errno = EINVAL;
		goto fail;
	}
	return txn_commit(cat, txn);
fail:
	mdb_txn_abort(txn);
	return -1;
}

int
catalog_open(struct catalog **catp, const char *path, uint64_t map_size,
    int flags, char *err, size_t errlen)
{
	struct catalog	*cat;
	unsigned int	 envflags = MDB_NOTLS;
	int		 rc;

	*catp = NULL;
	if ((cat = calloc(1, sizeof(*cat))) == NULL) {
		snprintf(err, errlen, "catalog %s: %s", path, strerror(errno));
		return -1;
	}
	cat->rdonly = (flags & CATALOG_RDONLY) != 0;
	if (strlcpy(cat->path, path, sizeof(cat->path)) >= sizeof(cat->path)) {
		snprintf(err, errlen, "catalog %s: %s", path,
		    strerror(ENAMETOOLONG));
		free(cat);
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((flags & CATALOG_CREATE) && !cat->rdonly &&
	    mkdir(path, CATALOG_DIR_MODE) == -1 && errno != EEXIST) {
		rc = errno;
		catalog_failx(cat, "mkdir: %s", strerror(rc));
		errno = rc;
		goto fail;
	}
	if ((rc = mdb_env_create(&cat->env)) != 0) {
		catalog_fail(cat, "mdb_env_create", rc);
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(cat->env, CATALOG_MAXDBS)) != 0) {
		catalog_fail(cat, "mdb_env_set_maxdbs", rc);
		goto fail;
	}
	if (map_size > SIZE_MAX)
		map_size = SIZE_MAX;
	if ((rc = mdb_env_set_mapsize(cat->env, (size_t)map_size)) != 0) {
		catalog_fail(cat, "mdb_env_set_mapsize", rc);
		goto fail;
	}
	if (cat->rdonly)
		envflags |= MDB_RDONLY;
	rc = mdb_env_open(cat->env, path, envflags, CATALOG_FILE_MODE);
	if (rc != 0) {
		catalog_fail(cat, "mdb_env_open", rc);
		goto fail;
	}
	if (catalog_init(cat) == -1)
		goto fail;
	*catp = cat;
	return 0;
fail:
	rc = errno;
	strlcpy(err, cat->err, errlen);
	catalog_close(cat);
	errno = rc;
	return -1;
}

void
catalog_close(struct catalog *cat)
{
	if (cat == NULL)
		return;
	if (cat->env != NULL)
		mdb_env_close(cat->env);
	free(cat);
}

const char *
catalog_error(const struct catalog *cat)
{
	return cat->err;
}

/*
 * A topic record, the value under its name in "topics":
 *	u32 id, u32 flags, u64 created (unix time), u8 n, n bytes description,
 *	then, only when a history retention is set, u32 keep, u64 max_age_ms.
 * A record without the tail (every record written before history) decodes
 * with retention off, and one without retention is written without it.
 */
static size_t
topic_encode(const struct catalog_topic *t, unsigned char *buf)
{
	size_t	 n = strlen(t->description);

	put_le32(buf, t->id);
	put_le32(buf + 4, t->flags);
	put_le64(buf + 8, t->created);
	buf[16] = (unsigned char)n;
	memcpy(buf + TOPIC_RECORD_MIN, t->description, n);
	if (t->keep == 0 && t->max_age_ms == 0)
		return TOPIC_RECORD_MIN + n;
	put_le32(buf + TOPIC_RECORD_MIN + n, t->keep);
	put_le64(buf + TOPIC_RECORD_MIN + n + 4, t->max_age_ms);
	return TOPIC_RECORD_MIN + n + TOPIC_RETENTION_LEN;
}

static int
topic_decode(struct catalog *cat, const MDB_val *key, const MDB_val *val,
    struct catalog_topic *t)
{
	const unsigned char	*p = val->mv_data;
	size_t			 base = 0;

	if (val->mv_size >= TOPIC_RECORD_MIN)
		base = TOPIC_RECORD_MIN + (size_t)p[16];
	if (key->mv_size == 0 || key->mv_size > TOPIC_NAME_MAX ||
	    val->mv_size < TOPIC_RECORD_MIN || (base != val->mv_size &&
	    base + TOPIC_RETENTION_LEN != val->mv_size)) {
		catalog_failx(cat, "topic '%.*s': malformed record",
		    (int)(key->mv_size > TOPIC_NAME_MAX ? TOPIC_NAME_MAX :
		    key->mv_size), (const char *)key->mv_data);
		errno = EINVAL;
		return -1;
	}
	memset(t, 0, sizeof(*t));
	t->id = get_le32(p);
	t->flags = get_le32(p + 4);
	t->created = get_le64(p + 8);
	memcpy(t->name, key->mv_data, key->mv_size);
	memcpy(t->description, p + TOPIC_RECORD_MIN, p[16]);
	if (val->mv_size == base + TOPIC_RETENTION_LEN) {
		t->keep = get_le32(p + base);
		t->max_age_ms = get_le64(p + base + 4);
	}
	return 0;
}

/* Look a topic up inside txn. */
static enum catalog_result
topic_get(struct catalog *cat, MDB_txn *txn, const char *name, size_t len,
    struct catalog_topic *topic)
{
	MDB_val			 key = { len, (void *)name }, val;
	enum catalog_result	 res;

	/* Not echoed: the name may be a client's bytes, bound for a log. */
	if (!pattern_valid(name, len)) {
		catalog_failx(cat, "topic name of %zu bytes: invalid name",
		    len);
		return CATALOG_NOT_FOUND;
	}
	res = db_get(cat, txn, cat->topics, name, len, &val);
	if (res == CATALOG_NOT_FOUND)
		catalog_failx(cat, "topic '%.*s': not found", (int)len, name);
	if (res != CATALOG_FOUND)
		return res;
	if (topic_decode(cat, &key, &val, topic) == -1)
		return CATALOG_ERROR;
	return CATALOG_FOUND;
}

enum catalog_result
catalog_topic_lookup(struct catalog *cat, const char *name, size_t len,
    struct catalog_topic *topic)
{
	MDB_txn			*txn;
	struct catalog_topic	 t;
	enum catalog_result	 res;

	if (txn_begin(cat, MDB_RDONLY, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_get(cat, txn, name, len, &t);
	mdb_txn_abort(txn);
	if (res == CATALOG_FOUND && topic != NULL)
		*topic = t;
	return res;
}

/*
 * Give t the next topic id and store it under t->name inside txn:
 * CATALOG_FOUND, CATALOG_EXISTS (*existing filled when not NULL) or
 * CATALOG_ERROR.
 */
static enum catalog_result
topic_insert(struct catalog *cat, MDB_txn *txn, struct catalog_topic *t,
    struct catalog_topic *existing)
{
	MDB_val			 key, val;
	unsigned char		 buf[TOPIC_RECORD_MIN + TOPIC_DESC_MAX +
				    TOPIC_RETENTION_LEN];
	uint64_t		 next;
	int			 rc;

	switch (meta_get(cat, txn, META_NEXT_TOPIC, 4, &next)) {
	case CATALOG_FOUND:
		break;
	case CATALOG_NOT_FOUND:
		catalog_failx(cat, "meta %s: missing", META_NEXT_TOPIC);
		errno = EINVAL;
		return CATALOG_ERROR;
	default:
		return CATALOG_ERROR;
	}
	if (next == 0 || next == UINT32_MAX) {
		catalog_failx(cat, "topic '%s': topic ids are exhausted",
		    t->name);
		errno = EOVERFLOW;
		return CATALOG_ERROR;
	}
	t->id = (uint32_t)next;
	key.mv_data = t->name;
	key.mv_size = strlen(t->name);
	val.mv_data = buf;
	val.mv_size = topic_encode(t, buf);
	rc = mdb_put(txn, cat->topics, &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		/* val now holds the existing record. */
		if (existing != NULL &&
		    topic_decode(cat, &key, &val, existing) == -1)
			return CATALOG_ERROR;
		catalog_failx(cat, "topic '%s': already exists", t->name);
		return CATALOG_EXISTS;
	}
	if (rc != 0) {
		catalog_fail(cat, "mdb_put", rc);
		return CATALOG_ERROR;
	}
	if (meta_put32(cat, txn, META_NEXT_TOPIC, t->id + 1) == -1)
		return CATALOG_ERROR;
	return CATALOG_FOUND;
}

enum catalog_result
catalog_topic_add(struct catalog *cat, const char *name, uint32_t flags,
    const char *description, struct catalog_topic *topic)
{
	return catalog_topic_add_retention(cat, name, flags, description, 0, 0,
	    topic);
}

enum catalog_result
catalog_topic_add_retention(struct catalog *cat, const char *name,
    uint32_t flags, const char *description, uint32_t keep,
    uint64_t max_age_ms, struct catalog_topic *topic)
{
	MDB_txn			*txn;
	struct catalog_topic	 t;
	enum catalog_result	 res;
	size_t			 len = strlen(name);

	if (description == NULL)
		description = "";
	memset(&t, 0, sizeof(t));
	if (!pattern_valid(name, len)) {
		catalog_failx(cat, "topic '%.*s': invalid name",
		    TOPIC_NAME_MAX, name);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	if (!catalog_topic_description_valid(description,
	    strlen(description))) {
		catalog_failx(cat, "topic '%s': description longer than %d "
		    "bytes or with control characters", name, TOPIC_DESC_MAX);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	if (flags & ~(uint32_t)CATALOG_TOPIC_PRIVATE) {
		catalog_failx(cat, "topic '%s': unknown flags %#x", name,
		    (unsigned int)flags);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	t.flags = flags;
	t.keep = keep;
	t.max_age_ms = max_age_ms;
	if (pattern_is_family(name, len))
		t.flags |= CATALOG_TOPIC_FAMILY;
	t.created = (uint64_t)time(NULL);
	strlcpy(t.name, name, sizeof(t.name));
	strlcpy(t.description, description, sizeof(t.description));
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	if ((res = topic_insert(cat, txn, &t, topic)) != CATALOG_FOUND) {
		mdb_txn_abort(txn);
		return res;
	}
	if (txn_commit(cat, txn) == -1)
		return CATALOG_ERROR;
	if (topic != NULL)
		*topic = t;
	return CATALOG_FOUND;
}

/* The members index's key for topic id. */
static void
member_key(uint32_t id, unsigned char *key)
{
	put_le32(key, id);
}

/* The name of member id into name (valid until txn ends). */
static enum catalog_result
member_get(struct catalog *cat, MDB_txn *txn, uint32_t id, MDB_val *name)
{
	unsigned char	 key[4];

	if (!cat->has_members)
		return CATALOG_NOT_FOUND;
	member_key(id, key);
	return db_get(cat, txn, cat->members, key, sizeof(key), name);
}

/* Forget member id in the index; 0 or -1. */
static int
member_unindex(struct catalog *cat, MDB_txn *txn, uint32_t id)
{
	unsigned char	 buf[4];
	MDB_val		 key = { sizeof(buf), buf };
	int		 rc;

	member_key(id, buf);
	rc = mdb_del(txn, cat->members, &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		catalog_fail(cat, "mdb_del", rc);
		return -1;
	}
	return 0;
}

/*
 * Find name inside txn: its exact entry, else a member of its family with
 * a copy of the family's whole record (so every option of the family
 * follows, whatever fields it gains) and id 0: not stored yet.
 */
static enum catalog_result
topic_find(struct catalog *cat, MDB_txn *txn, const char *name, size_t len,
    struct catalog_topic *t)
{
	struct catalog_topic	 fam;
	char			 pattern[TOPIC_NAME_MAX + 2];
	enum catalog_result	 res;
	int			 plen;

	res = topic_get(cat, txn, name, len, t);
	if (res != CATALOG_NOT_FOUND || !catalog_topic_name_valid(name, len))
		return res;
	plen = pattern_family_of(name, len, pattern, sizeof(pattern));
	if (plen == -1)
		return CATALOG_NOT_FOUND;
	res = topic_get(cat, txn, pattern, (size_t)plen, &fam);
	if (res == CATALOG_NOT_FOUND)
		catalog_failx(cat, "topic '%.*s': not found", (int)len, name);
	if (res != CATALOG_FOUND)
		return res;
	*t = fam;
	t->id = 0;
	t->flags = (fam.flags & ~(uint32_t)CATALOG_TOPIC_FAMILY) |
	    CATALOG_TOPIC_MEMBER;
	t->created = (uint64_t)time(NULL);
	memset(t->name, 0, sizeof(t->name));
	memcpy(t->name, name, len);
	return CATALOG_FOUND;
}

/* Store t, a member found by topic_find, with its index entry; 0 or -1. */
static int
topic_materialise(struct catalog *cat, MDB_txn *txn, struct catalog_topic *t)
{
	unsigned char	 key[4];

	/* The caller holds the write lock and saw no entry: never EXISTS. */
	if (topic_insert(cat, txn, t, NULL) != CATALOG_FOUND)
		return -1;
	member_key(t->id, key);
	return db_put(cat, txn, cat->members, key, sizeof(key), t->name,
	    strlen(t->name));
}

/*
 * Store name for catalog_topic_resolve.  The write transaction looks again:
 * since the read, another process may have stored the name or removed the
 * family.
 */
static enum catalog_result
topic_store(struct catalog *cat, const char *name, size_t len, int flags,
    struct catalog_topic *t)
{
	MDB_txn			*txn;
	enum catalog_result	 res;

	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_find(cat, txn, name, len, t);
	if (res == CATALOG_NOT_FOUND && (flags & CATALOG_RESOLVE_AUTO_CREATE)) {
		memset(t, 0, sizeof(*t));
		memcpy(t->name, name, len);
		t->created = (uint64_t)time(NULL);
		if (topic_insert(cat, txn, t, NULL) != CATALOG_FOUND)
			goto fail;
	} else if (res == CATALOG_FOUND && t->id == 0) {
		if (topic_materialise(cat, txn, t) == -1)
			goto fail;
	} else {
		mdb_txn_abort(txn);
		return res;
	}
	return txn_commit(cat, txn) == 0 ? CATALOG_FOUND : CATALOG_ERROR;
fail:
	mdb_txn_abort(txn);
	return CATALOG_ERROR;
}

enum catalog_result
catalog_topic_set_retention(struct catalog *cat, const char *name,
    uint32_t keep, uint64_t max_age_ms, struct catalog_topic *topic)
{
	MDB_txn			*txn;
	struct catalog_topic	 t;
	enum catalog_result	 res;
	unsigned char		 buf[TOPIC_RECORD_MIN + TOPIC_DESC_MAX +
				    TOPIC_RETENTION_LEN];

	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_get(cat, txn, name, strlen(name), &t);
	if (res != CATALOG_FOUND) {
		mdb_txn_abort(txn);
		return res;
	}
	t.keep = keep;
	t.max_age_ms = max_age_ms;
	if (db_put(cat, txn, cat->topics, name, strlen(name), buf,
	    topic_encode(&t, buf)) == -1) {
		mdb_txn_abort(txn);
		return CATALOG_ERROR;
	}
	if (txn_commit(cat, txn) == -1)
		return CATALOG_ERROR;
	if (topic != NULL)
		*topic = t;
	return CATALOG_FOUND;
}

/* Are a and b the same object to a cluster peer: all but id and created? */
static int
topic_same(const struct catalog_topic *a, const struct catalog_topic *b)
{
	return a->flags == b->flags && a->keep == b->keep &&
	    a->max_age_ms == b->max_age_ms &&
	    strcmp(a->description, b->description) == 0;
}

enum catalog_result
catalog_topic_put(struct catalog *cat, const struct catalog_topic *want,
    int *changed)
{
	MDB_txn			*txn;
	struct catalog_topic	 t, cur;
	enum catalog_result	 res;
	unsigned char		 buf[TOPIC_RECORD_MIN + TOPIC_DESC_MAX +
				    TOPIC_RETENTION_LEN];
	size_t			 len = strnlen(want->name, sizeof(want->name));
	uint32_t		 family;

	if (changed != NULL)
		*changed = 0;
	if (len > TOPIC_NAME_MAX || !pattern_valid(want->name, len) ||
	    !catalog_topic_description_valid(want->description,
	    strnlen(want->description, sizeof(want->description))) ||
	    strnlen(want->description, sizeof(want->description)) >
	    TOPIC_DESC_MAX) {
		catalog_failx(cat, "topic of %zu bytes: invalid name or "
		    "description", len);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	family = pattern_is_family(want->name, len) ? CATALOG_TOPIC_FAMILY : 0;
	if ((want->flags & ~(uint32_t)(CATALOG_TOPIC_PRIVATE |
	    CATALOG_TOPIC_FAMILY)) ||
	    (want->flags & CATALOG_TOPIC_FAMILY) != family) {
		catalog_failx(cat, "topic '%s': bad flags %#x", want->name,
		    (unsigned int)want->flags);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	t = *want;
	t.id = 0;
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_get(cat, txn, t.name, len, &cur);
	if (res == CATALOG_FOUND && topic_same(&cur, &t)) {
		mdb_txn_abort(txn);
		return CATALOG_FOUND;
	}
	if (res == CATALOG_FOUND) {
		/* Its id is this node's: events and tokens refer to it. */
		t.id = cur.id;
		t.created = cur.created;
		if (db_put(cat, txn, cat->topics, t.name, len, buf,
		    topic_encode(&t, buf)) == -1 ||
		    ((cur.flags & CATALOG_TOPIC_MEMBER) &&
		    member_unindex(cat, txn, cur.id) == -1))
			goto fail;
	} else if (res == CATALOG_NOT_FOUND) {
		if (topic_insert(cat, txn, &t, NULL) != CATALOG_FOUND)
			goto fail;
	} else
		goto fail;
	if (txn_commit(cat, txn) == -1)
		return CATALOG_ERROR;
	if (changed != NULL)
		*changed = 1;
	return CATALOG_FOUND;
fail:
	mdb_txn_abort(txn);
	return CATALOG_ERROR;
}

enum catalog_result
catalog_topic_resolve(struct catalog *cat, const char *name, size_t len,
    int flags, struct catalog_topic *topic)
{
	MDB_txn			*txn;
	struct catalog_topic	 t;
	enum catalog_result	 res;

	/* Not echoed: the name may be a client's bytes, bound for a log. */
	if (!catalog_topic_name_valid(name, len)) {
		catalog_failx(cat, "topic name of %zu bytes: invalid name",
		    len);
		return CATALOG_NOT_FOUND;
	}
	if (txn_begin(cat, MDB_RDONLY, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_find(cat, txn, name, len, &t);
	mdb_txn_abort(txn);
	if ((res == CATALOG_FOUND && t.id == 0 &&
	    (flags & CATALOG_RESOLVE_MATERIALISE)) ||
	    (res == CATALOG_NOT_FOUND && (flags & CATALOG_RESOLVE_AUTO_CREATE)))
		res = topic_store(cat, name, len, flags, &t);
	if (res == CATALOG_FOUND && topic != NULL)
		*topic = t;
	return res;
}

/*
 * Delete the tokens bound to topic id or, with pattern, those bound to a
 * member of the family pattern (found through the members index, so call
 * this before the members go); the number deleted, or -1.
 */
static int
tokens_delete(struct catalog *cat, MDB_txn *txn, uint32_t id,
    const char *pattern, size_t plen)
{
	MDB_cursor		*cur;
	MDB_val			 key, val, name;
	enum catalog_result	 res;
	uint32_t		 bound;
	int			 rc, n = 0;

	if ((rc = mdb_cursor_open(txn, cat->tokens, &cur)) != 0) {
		catalog_fail(cat, "mdb_cursor_open", rc);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (val.mv_size != TOKEN_RECORD_LEN)
			continue;
		bound = get_le32((const unsigned char *)val.mv_data + 4);
		if (pattern == NULL && bound != id)
			continue;
		if (pattern != NULL) {
			if (bound == 0)
				continue;
			res = member_get(cat, txn, bound, &name);
			if (res == CATALOG_ERROR) {
				rc = -1;
				break;
			}
			if (res == CATALOG_NOT_FOUND ||
			    !pattern_match(pattern, plen, name.mv_data,
			    name.mv_size))
				continue;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			catalog_fail(cat, "mdb_cursor_del", rc);
			rc = -1;
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		if (rc > 0)
			catalog_fail(cat, "mdb_cursor_get", rc);
		return -1;
	}
	return n;
}

/* Delete entry t, its tokens and its index entry, inside txn; 0 or -1. */
static int
topic_delete(struct catalog *cat, MDB_txn *txn, const struct catalog_topic *t)
{
	MDB_val	 key = { strlen(t->name), (void *)t->name };
	int	 rc;

	if ((rc = mdb_del(txn, cat->topics, &key, NULL)) != 0) {
		catalog_fail(cat, "mdb_del", rc);
		return -1;
	}
	if (tokens_delete(cat, txn, t->id, NULL, 0) == -1)
		return -1;
	if ((t->flags & CATALOG_TOPIC_MEMBER) &&
	    member_unindex(cat, txn, t->id) == -1)
		return -1;
	return 0;
}

enum catalog_result
catalog_topic_remove(struct catalog *cat, const char *name)
{
	MDB_txn			*txn;
	struct catalog_topic	 t;
	enum catalog_result	 res;

	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_get(cat, txn, name, strlen(name), &t);
	if (res != CATALOG_FOUND) {
		mdb_txn_abort(txn);
		return res;
	}
	if (topic_delete(cat, txn, &t) == -1) {
		mdb_txn_abort(txn);
		return CATALOG_ERROR;
	}
	return txn_commit(cat, txn) == 0 ? CATALOG_FOUND : CATALOG_ERROR;
}

/* Delete every member of family pattern, the topics after its prefix in
 * key order; the number deleted, or -1. */
static int
members_delete(struct catalog *cat, MDB_txn *txn, const char *pattern,
    size_t plen)
{
	MDB_cursor		*cur;
	MDB_val			 key = { plen - 1, (void *)pattern }, val;
	struct catalog_topic	 t;
	int			 rc, n = 0;

	if ((rc = mdb_cursor_open(txn, cat->topics, &cur)) != 0) {
		catalog_fail(cat, "mdb_cursor_open", rc);
		return -1;
	}
	/* A lone '*' has an empty prefix, which MDB_SET_RANGE refuses. */
	for (rc = mdb_cursor_get(cur, &key, &val, plen == 1 ? MDB_FIRST :
	    MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < plen - 1 ||
		    memcmp(key.mv_data, pattern, plen - 1) != 0)
			break;
		if (!pattern_match(pattern, plen, key.mv_data, key.mv_size))
			continue;
		if (topic_decode(cat, &key, &val, &t) == -1) {
			rc = -1;
			break;
		}
		if (!(t.flags & CATALOG_TOPIC_MEMBER))
			continue;
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			catalog_fail(cat, "mdb_cursor_del", rc);
			rc = -1;
			break;
		}
		if (member_unindex(cat, txn, t.id) == -1) {
			rc = -1;
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		if (rc > 0)
			catalog_fail(cat, "mdb_cursor_get", rc);
		return -1;
	}
	return n;
}

enum catalog_result
catalog_family_remove(struct catalog *cat, const char *pattern,
    size_t *members)
{
	MDB_txn			*txn;
	struct catalog_topic	 fam;
	enum catalog_result	 res;
	size_t			 plen = strlen(pattern);
	int			 n;

	if (!pattern_valid(pattern, plen) || !pattern_is_family(pattern, plen)) {
		catalog_failx(cat, "topic '%.*s': not a family pattern",
		    TOPIC_NAME_MAX, pattern);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	res = topic_get(cat, txn, pattern, plen, &fam);
	if (res != CATALOG_FOUND) {
		mdb_txn_abort(txn);
		return res;
	}
	if (topic_delete(cat, txn, &fam) == -1 ||
	    tokens_delete(cat, txn, 0, pattern, plen) == -1 ||
	    (n = members_delete(cat, txn, pattern, plen)) == -1) {
		mdb_txn_abort(txn);
		return CATALOG_ERROR;
	}
	if (txn_commit(cat, txn) == -1)
		return CATALOG_ERROR;
	if (members != NULL)
		*members = (size_t)n;
	return CATALOG_FOUND;
}

/* Walk dbi in key order in one read transaction, handing each record to
 * visit, which returns -1 (error), 0 (go on) or 1 (stop). */
static int
db_foreach(struct catalog *cat, MDB_dbi dbi,
    int (*visit)(struct catalog *, const MDB_val *, const MDB_val *, void *),
    void *ctx)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 key, val;
	int		 rc, v = 0;

	if (txn_begin(cat, MDB_RDONLY, &txn) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		catalog_fail(cat, "mdb_cursor_open", rc);
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if ((v = visit(cat, &key, &val, ctx)) != 0)
			break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		catalog_fail(cat, "mdb_cursor_get", rc);
		v = -1;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return v == -1 ? -1 : 0;
}

/* timingsafe_bcmp of OpenBSD: Debian 12's libbsd 0.11 does not export it.
 * Every byte is visited whatever the first difference. */
static int
consttime_bcmp(const void *b1, const void *b2, size_t n)
{
	const unsigned char	*p1 = b1, *p2 = b2;
	unsigned int		 diff = 0;

	while (n-- > 0)
		diff |= (unsigned int)(*p1++ ^ *p2++);
	return diff != 0;
}

void
catalog_token_hash(const char *secret, size_t len, unsigned char *hash)
{
	SHA2_CTX	 ctx;

	SHA256Init(&ctx);
	SHA256Update(&ctx, (const uint8_t *)secret, len);
	SHA256Final(hash, &ctx);
}

static void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse a public token id into its hash prefix; 0 or -1. */
static int
token_id_parse(const char *id, unsigned char *prefix)
{
	size_t	 i;
	int	 hi, lo;

	if (strlen(id) != TOKEN_ID_LEN)
		return -1;
	for (i = 0; i < TOKEN_ID_BYTES; i++) {
		hi = hex_digit(id[2 * i]);
		lo = hex_digit(id[2 * i + 1]);
		if (hi == -1 || lo == -1)
			return -1;
		prefix[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* base64url without padding: 32 bytes give exactly TOKEN_SECRET_LEN. */
static void
base64url_encode(const unsigned char *in, size_t n, char *out)
{
	static const char	 alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t		 v;
	size_t			 i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = alphabet[v >> 18 & 0x3f];
		out[o++] = alphabet[v >> 12 & 0x3f];
		out[o++] = alphabet[v >> 6 & 0x3f];
		out[o++] = alphabet[v & 0x3f];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = alphabet[v >> 18 & 0x3f];
		out[o++] = alphabet[v >> 12 & 0x3f];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 0x3f];
		out[o++] = alphabet[v >> 12 & 0x3f];
		out[o++] = alphabet[v >> 6 & 0x3f];
	}
	out[o] = '\0';
}

/*
 * A token record, the value under the SHA-256 of its secret in "tokens":
 *	u32 rights, u32 topic id (0: every topic), u64 created (unix time).
 * The public id is the hex of the first TOKEN_ID_BYTES of the key.
 */
static void
token_encode(const struct catalog_token *t, unsigned char *buf)
{
	put_le32(buf, t->rights);
	put_le32(buf + 4, t->topic);
	put_le64(buf + 8, t->created);
}

static int
token_decode(struct catalog *cat, const MDB_val *key, const MDB_val *val,
    struct catalog_token *t)
{
	const unsigned char	*p = val->mv_data;

	memset(t, 0, sizeof(*t));
	if (key->mv_size != SHA256_DIGEST_LENGTH ||
	    val->mv_size != TOKEN_RECORD_LEN) {
		catalog_failx(cat, "token: malformed record");
		errno = EINVAL;
		return -1;
	}
	hex_encode(key->mv_data, TOKEN_ID_BYTES, t->id);
	t->rights = get_le32(p);
	t->topic = get_le32(p + 4);
	t->created = get_le64(p + 8);
	return 0;
}

/* Is a token whose hash starts with prefix already stored?  1, 0 or -1;
 * with del, delete it as well. */
static int
token_find_prefix(struct catalog *cat, MDB_txn *txn,
    const unsigned char *prefix, int del)
{
	MDB_cursor	*cur;
	MDB_val		 key = { TOKEN_ID_BYTES, (void *)prefix }, val;
	int		 rc, found = 0;

	if ((rc = mdb_cursor_open(txn, cat->tokens, &cur)) != 0) {
		catalog_fail(cat, "mdb_cursor_open", rc);
		return -1;
	}
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && key.mv_size >= TOKEN_ID_BYTES &&
	    memcmp(key.mv_data, prefix, TOKEN_ID_BYTES) == 0) {
		found = 1;
		if (del && (rc = mdb_cursor_del(cur, 0)) != 0) {
			catalog_fail(cat, "mdb_cursor_del", rc);
			found = -1;
		}
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		catalog_fail(cat, "mdb_cursor_get", rc);
		found = -1;
	}
	mdb_cursor_close(cur);
	return found;
}

void
catalog_token_secret_new(char *secret, unsigned char *hash)
{
	unsigned char	 random[TOKEN_RANDOM_LEN];

	arc4random_buf(random, sizeof(random));
	base64url_encode(random, sizeof(random), secret);
	explicit_bzero(random, sizeof(random));
	catalog_token_hash(secret, TOKEN_SECRET_LEN, hash);
}

enum catalog_result
catalog_token_add(struct catalog *cat, uint32_t rights, const char *topic,
    char *secret, struct catalog_token *token)
{
	MDB_txn			*txn;
	struct catalog_token	 t;
	struct catalog_topic	 tp;
	unsigned char		 hash[SHA256_DIGEST_LENGTH];
	unsigned char		 rec[TOKEN_RECORD_LEN];
	enum catalog_result	 res;
	int			 taken;

	memset(&t, 0, sizeof(t));
	if (rights == 0 || (rights & ~(uint32_t)(CATALOG_RIGHT_PUBLISH |
	    CATALOG_RIGHT_SUBSCRIBE))) {
		catalog_failx(cat, "token: bad rights %#x",
		    (unsigned int)rights);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	if (topic != NULL) {
		/* A pattern names its family; a member is stored now. */
		res = topic_find(cat, txn, topic, strlen(topic), &tp);
		if (res != CATALOG_FOUND) {
			mdb_txn_abort(txn);
			return res;
		}
		if (tp.id == 0 && topic_materialise(cat, txn, &tp) == -1)
			goto fail;
		t.topic = tp.id;
	}
	/* Public ids must be unique; a 48-bit prefix clash is retried. */
	do {
		catalog_token_secret_new(secret, hash);
		if ((taken = token_find_prefix(cat, txn, hash, 0)) == -1)
			goto fail;
	} while (taken);
	t.rights = rights;
	t.created = (uint64_t)time(NULL);
	hex_encode(hash, TOKEN_ID_BYTES, t.id);
	token_encode(&t, rec);
	if (db_put(cat, txn, cat->tokens, hash, sizeof(hash), rec,
	    sizeof(rec)) == -1 || txn_commit(cat, txn) == -1) {
		explicit_bzero(secret, TOKEN_SECRET_LEN + 1);
		return CATALOG_ERROR;
	}
	if (token != NULL)
		*token = t;
	return CATALOG_FOUND;
fail:
	explicit_bzero(secret, TOKEN_SECRET_LEN + 1);
	mdb_txn_abort(txn);
	return CATALOG_ERROR;
}

enum catalog_result
catalog_token_put(struct catalog *cat, const unsigned char *hash,
    uint32_t rights, const char *topic, uint64_t created, int *changed)
{
	MDB_txn			*txn;
	MDB_val			 old;
	struct catalog_token	 t;
	struct catalog_topic	 tp;
	unsigned char		 rec[TOKEN_RECORD_LEN];
	enum catalog_result	 res;
	int			 wrote = 0;

	if (changed != NULL)
		*changed = 0;
	memset(&t, 0, sizeof(t));
	if (rights == 0 || (rights & ~(uint32_t)(CATALOG_RIGHT_PUBLISH |
	    CATALOG_RIGHT_SUBSCRIBE))) {
		catalog_failx(cat, "token: bad rights %#x",
		    (unsigned int)rights);
		errno = EINVAL;
		return CATALOG_ERROR;
	}
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	if (topic != NULL) {
		res = topic_find(cat, txn, topic, strlen(topic), &tp);
		if (res != CATALOG_FOUND) {
			mdb_txn_abort(txn);
			return res;
		}
		if (tp.id == 0) {
			if (topic_materialise(cat, txn, &tp) == -1)
				goto fail;
			wrote = 1;
		}
		t.topic = tp.id;
	}
	t.rights = rights;
	t.created = created;
	token_encode(&t, rec);
	res = db_get(cat, txn, cat->tokens, hash, SHA256_DIGEST_LENGTH, &old);
	if (res == CATALOG_ERROR)
		goto fail;
	if (res == CATALOG_FOUND && old.mv_size == sizeof(rec) &&
	    memcmp(old.mv_data, rec, sizeof(rec)) == 0 && !wrote) {
		mdb_txn_abort(txn);
		return CATALOG_FOUND;
	}
	if (db_put(cat, txn, cat->tokens, hash, SHA256_DIGEST_LENGTH, rec,
	    sizeof(rec)) == -1)
		goto fail;
	if (txn_commit(cat, txn) == -1)
		return CATALOG_ERROR;
	if (changed != NULL)
		*changed = 1;
	return CATALOG_FOUND;
fail:
	mdb_txn_abort(txn);
	return CATALOG_ERROR;
}

enum catalog_result
catalog_token_remove(struct catalog *cat, const char *id)
{
	MDB_txn		*txn;
	unsigned char	 prefix[TOKEN_ID_BYTES];
	int		 found;

	if (token_id_parse(id, prefix) == -1) {
		catalog_failx(cat, "token '%.*s': not a token id", 64, id);
		return CATALOG_NOT_FOUND;
	}
	if (txn_begin(cat, 0, &txn) == -1)
		return CATALOG_ERROR;
	found = token_find_prefix(cat, txn, prefix, 1);
	if (found == 1)
		return txn_commit(cat, txn) == 0 ? CATALOG_FOUND :
		    CATALOG_ERROR;
	mdb_txn_abort(txn);
	if (found == 0) {
		catalog_failx(cat, "token %s: not found", id);
		return CATALOG_NOT_FOUND;
	}
	return CATALOG_ERROR;
}

/* One walk over topics or tokens: exactly one of the callbacks is set. */
struct walk {
	int	(*topic_fn)(void *, const struct catalog_topic *);
	int	(*token_fn)(void *, const struct catalog_token *);
	void	*arg;
};

static int
walk_visit(struct catalog *cat, const MDB_val *key, const MDB_val *val,
    void *ctx)
{
	struct walk		*w = ctx;
	struct catalog_topic	 topic;
	struct catalog_token	 token;

	if (w->topic_fn != NULL) {
		if (topic_decode(cat, key, val, &topic) == -1)
			return -1;
		return w->topic_fn(w->arg, &topic) != 0;
	}
	if (token_decode(cat, key, val, &token) == -1)
		return -1;
	return w->token_fn(w->arg, &token) != 0;
}

int
catalog_topic_foreach(struct catalog *cat,
    int (*fn)(void *arg, const struct catalog_topic *topic), void *arg)
{
	struct walk	 w = { fn, NULL, arg };

	return db_foreach(cat, cat->topics, walk_visit, &w);
}

int
catalog_token_foreach(struct catalog *cat,
    int (*fn)(void *arg, const struct catalog_token *token), void *arg)
{
	struct walk	 w = { NULL, fn, arg };

	return db_foreach(cat, cat->tokens, walk_visit, &w);
}

/*
 * Does a token bound to entry bound (0: every topic) cover topic?  A
 * family's token covers the members of the family of that name now: the
 * member's name comes from the members index, its family's id from topics.
 */
static enum catalog_result
token_covers(struct catalog *cat, MDB_txn *txn, uint32_t bound,
    uint32_t topic)
{
	struct catalog_topic	 fam;
	MDB_val			 name;
	char			 pattern[TOPIC_NAME_MAX + 2];
	enum catalog_result	 res;
	int			 plen;

	if (bound == 0 || bound == topic)
		return CATALOG_FOUND;
	if (topic == 0)
		return CATALOG_NOT_FOUND;
	if ((res = member_get(cat, txn, topic, &name)) != CATALOG_FOUND)
		return res;
	if (name.mv_size > TOPIC_NAME_MAX || (plen = pattern_family_of(
	    name.mv_data, name.mv_size, pattern, sizeof(pattern))) == -1)
		return CATALOG_NOT_FOUND;
	res = topic_get(cat, txn, pattern, (size_t)plen, &fam);
	if (res != CATALOG_FOUND)
		return res;
	return fam.id == bound ? CATALOG_FOUND : CATALOG_NOT_FOUND;
}

enum catalog_result
catalog_token_check(struct catalog *cat, const char *secret, size_t len,
    uint32_t topic, uint32_t right)
{
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	struct catalog_token	 t;
	unsigned char		 hash[SHA256_DIGEST_LENGTH];
	enum catalog_result	 res = CATALOG_NOT_FOUND;
	int			 rc;

	/* The length of a secret is public; only its bytes are not. */
	if (secret == NULL || len != TOKEN_SECRET_LEN || right == 0)
		return CATALOG_NOT_FOUND;
	catalog_token_hash(secret, len, hash);
	if (txn_begin(cat, MDB_RDONLY, &txn) == -1)
		return CATALOG_ERROR;
	if ((rc = mdb_cursor_open(txn, cat->tokens, &cur)) != 0) {
		catalog_fail(cat, "mdb_cursor_open", rc);
		mdb_txn_abort(txn);
		return CATALOG_ERROR;
	}
	key.mv_size = sizeof(hash);
	key.mv_data = hash;
	/* MDB_SET_KEY points key at the stored copy, compared below. */
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
	if (rc == 0) {
		if (token_decode(cat, &key, &val, &t) == -1)
			res = CATALOG_ERROR;
		else if (consttime_bcmp(key.mv_data, hash, sizeof(hash)) == 0 &&
		    (t.rights & right) == right)
			res = token_covers(cat, txn, t.topic, topic);
	} else if (rc != MDB_NOTFOUND) {
		catalog_fail(cat, "mdb_cursor_get", rc);
		res = CATALOG_ERROR;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	explicit_bzero(hash, sizeof(hash));
	return res;
}

enum catalog_result
catalog_hwm_get(struct catalog *cat, uint64_t *seq)
{
	MDB_txn			*txn;
	enum catalog_result	 res;
	uint64_t		 v = 0;

	if (txn_begin(cat, MDB_RDONLY, &txn) == -1)
		return CATALOG_ERROR;
	res = meta_get(cat, txn, META_HWM, 8, &v);
	mdb_txn_abort(txn);
	if (res == CATALOG_ERROR)
		return res;
	*seq = v;
	return CATALOG_FOUND;
}

int
catalog_hwm_raise(struct catalog *cat, uint64_t seq)
{
	MDB_txn			*txn;
	enum catalog_result	 res;
	uint64_t		 cur = 0;

	if (txn_begin(cat, 0, &txn) == -1)
		return -1;
	res = meta_get(cat, txn, META_HWM, 8, &cur);
	if (res == CATALOG_ERROR)
		goto fail;
	if (res == CATALOG_FOUND && cur >= seq) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (meta_put64(cat, txn, META_HWM, seq) == -1)
		goto fail;
	return txn_commit(cat, txn);
fail:
	mdb_txn_abort(txn);
	return -1;
}

int
catalog_reader_check(struct catalog *cat)
{
	int	 dead = 0, rc;

	if ((rc = mdb_reader_check(cat->env, &dead)) != 0) {
		catalog_fail(cat, "mdb_reader_check", rc);
		return -1;
	}
	return dead;
}
