/*
 * history: per-topic event history in an LMDB environment of its own, so
 * the archiver's write transactions never hold the catalog's writer lock
 * (which publishers take to persist the high-water mark) and a full history
 * map never stops topics, tokens or the mark.  Databases:
 *	events	u32 topic, u64 seq (big-endian, so keys sort by topic then
 *		seq) -> u64 archive time (unix ms, LE), the frame's wire bytes
 *	topics	u32 topic (BE) -> u64 count, u64 floor (LE)
 *	meta	"archived", "epoch", "clean" -> u64 (LE)
 * Invariant: for a topic with a record, events holds every event of the
 * topic with floor < seq <= archived, and count of them.  The environment is
 * MDB_NOSYNC: a killed process loses nothing committed; the archiver syncs
 * once a second, as the ring's own durability is the page cache.
 */
#include <sys/stat.h>

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "ringcast/history.h"
#include "ringcast/ring.h"

#define HISTORY_MAXDBS		3
#define HISTORY_FILE_MODE	0640
#define HISTORY_DIR_MODE	0750
#define HISTORY_KEY_LEN		12
#define HISTORY_STATE_LEN	16
#define HISTORY_TIME_LEN	8
#define HISTORY_CACHE		64	/* topic records held by a batch */

#define META_ARCHIVED		"archived"
#define META_EPOCH		"epoch"
#define META_CLEAN		"clean"

/* A topic's record, as held in "topics". */
struct topic_state {
	uint64_t	 count;
	uint64_t	 floor;
};

/* A batch reads each topic's record once and writes it once, at its end. */
struct state_slot {
	uint32_t		 topic;
	int			 found;		/* the record exists */
	int			 dirty;
	struct topic_state	 st;
};

struct history {
	MDB_env		*env;
	MDB_dbi		 events;
	MDB_dbi		 topics;
	MDB_dbi		 meta;
	char		*frame;		/* archiver: one frame's copy */
	size_t		 framecap;
	struct state_slot cache[HISTORY_CACHE];
	size_t		 ncache;
	char		 path[PATH_MAX];
	char		 err[PATH_MAX + 256];
};

static void
history_failx(struct history *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
history_failx(struct history *h, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	n = snprintf(h->err, sizeof(h->err), "history %s: ", h->path);
	if (n < 0 || (size_t)n >= sizeof(h->err))
		return;
	va_start(ap, fmt);
	vsnprintf(h->err + n, sizeof(h->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void
history_fail(struct history *h, const char *call, int rc)
{
	history_failx(h, "%s: %s", call, mdb_strerror(rc));
	errno = rc == MDB_MAP_FULL ? ENOSPC : rc > 0 ? rc : EIO;
}

static void
put_le64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint64_t
get_le64(const unsigned char *p)
{
	uint64_t	 v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void
key_make(unsigned char *key, uint32_t topic, uint64_t seq)
{
	uint32_t	 t = htobe32(topic);
	uint64_t	 s = htobe64(seq);

	memcpy(key, &t, sizeof(t));
	memcpy(key + 4, &s, sizeof(s));
}

/* Split an events key: 0, or -1 when it is not one. */
static int
key_split(const MDB_val *key, uint32_t *topic, uint64_t *seq)
{
	uint32_t	 t;
	uint64_t	 s;

	if (key->mv_size != HISTORY_KEY_LEN)
		return -1;
	memcpy(&t, key->mv_data, sizeof(t));
	memcpy(&s, (const char *)key->mv_data + 4, sizeof(s));
	*topic = be32toh(t);
	*seq = be64toh(s);
	return 0;
}

int
history_path(char *buf, size_t len, const char *catalog_path)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", catalog_path, HISTORY_DIRNAME);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Begin a transaction; a map grown by another process is adopted first. */
static int
txn_begin(struct history *h, unsigned int flags, MDB_txn **txnp)
{
	int	 rc;

	rc = mdb_txn_begin(h->env, NULL, flags, txnp);
	if (rc == MDB_MAP_RESIZED) {
		if ((rc = mdb_env_set_mapsize(h->env, 0)) == 0)
			rc = mdb_txn_begin(h->env, NULL, flags, txnp);
	}
	if (rc != 0) {
		history_fail(h, "mdb_txn_begin", rc);
		return -1;
	}
	return 0;
}

static int
txn_commit(struct history *h, MDB_txn *txn)
{
	int	 rc;

	if ((rc = mdb_txn_commit(txn)) != 0) {
		history_fail(h, "mdb_txn_commit", rc);
		return -1;
	}
	return 0;
}

/* mdb_get of a record of want bytes: 1 found, 0 none, -1 error (or a
 * record of another size, named by what). */
static int
db_get(struct history *h, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
    MDB_val *val, size_t want, const char *what)
{
	int	 rc;

	rc = mdb_get(txn, dbi, key, val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		history_fail(h, "mdb_get", rc);
		return -1;
	}
	if (val->mv_size != want) {
		history_failx(h, "%s: malformed record", what);
		errno = EINVAL;
		return -1;
	}
	return 1;
}

static int
meta_get(struct history *h, MDB_txn *txn, const char *name, uint64_t *v)
{
	MDB_val	 key = { strlen(name), (void *)name }, val;
	int	 rc;

	*v = 0;
	if ((rc = db_get(h, txn, h->meta, &key, &val, 8, name)) <= 0)
		return rc;
	*v = get_le64(val.mv_data);
	return 0;
}


static int
meta_put(struct history *h, MDB_txn *txn, const char *name, uint64_t v)
{
	MDB_val		 key = { strlen(name), (void *)name }, val;
	unsigned char	 buf[8];
	int		 rc;

	put_le64(buf, v);
	val.mv_size = sizeof(buf);
	val.mv_data = buf;
	if ((rc = mdb_put(txn, h->meta, &key, &val, 0)) != 0) {
		history_fail(h, "mdb_put", rc);
		return -1;
	}
	return 0;
}

/* A topic's record: 1 found, 0 none, -1 error. */
static int
state_get(struct history *h, MDB_txn *txn, uint32_t topic,
    struct topic_state *st)
{
	uint32_t	 t = htobe32(topic);
	MDB_val		 key = { sizeof(t), &t }, val;
	int		 rc;

	if ((rc = db_get(h, txn, h->topics, &key, &val, HISTORY_STATE_LEN,
	    "topic record")) <= 0)
		return rc;
	st->count = get_le64(val.mv_data);
	st->floor = get_le64((const unsigned char *)val.mv_data + 8);
	return 1;
}

static int
state_put(struct history *h, MDB_txn *txn, uint32_t topic,
    const struct topic_state *st)
{
	uint32_t	 t = htobe32(topic);
	unsigned char	 buf[HISTORY_STATE_LEN];
	MDB_val		 key = { sizeof(t), &t };
	MDB_val		 val = { sizeof(buf), buf };
	int		 rc;

	put_le64(buf, st->count);
	put_le64(buf + 8, st->floor);
	if ((rc = mdb_put(txn, h->topics, &key, &val, 0)) != 0) {
		history_fail(h, "mdb_put", rc);
		return -1;
	}
	return 0;
}

/* Write the batch's changed topic records; the cache is empty after. */
static int
cache_flush(struct history *h, MDB_txn *txn)
{
	size_t	 i, n = h->ncache;

	h->ncache = 0;
	for (i = 0; i < n; i++)
		if (h->cache[i].dirty && h->cache[i].found &&
		    state_put(h, txn, h->cache[i].topic, &h->cache[i].st) == -1)
			return -1;
	return 0;
}

/* The batch's copy of topic's record (found 0: none yet); NULL on error. */
static struct state_slot *
cache_get(struct history *h, MDB_txn *txn, uint32_t topic)
{
	struct state_slot	*slot;
	size_t			 i;
	int			 rc;

	for (i = 0; i < h->ncache; i++)
		if (h->cache[i].topic == topic)
			return &h->cache[i];
	if (h->ncache == HISTORY_CACHE && cache_flush(h, txn) == -1)
		return NULL;
	slot = &h->cache[h->ncache];
	memset(slot, 0, sizeof(*slot));
	slot->topic = topic;
	if ((rc = state_get(h, txn, topic, &slot->st)) == -1)
		return NULL;
	slot->found = rc;
	h->ncache++;
	return slot;
}

static int
open_dbis(struct history *h, MDB_txn *txn, int create)
{
	static const char *const names[] = { "events", "topics", "meta" };
	MDB_dbi		*dbis[] = { &h->events, &h->topics, &h->meta };
	size_t		 i;
	int		 rc;

	for (i = 0; i < 3; i++) {
		rc = mdb_dbi_open(txn, names[i], create ? MDB_CREATE : 0,
		    dbis[i]);
		if (rc != 0) {
			history_fail(h, "mdb_dbi_open", rc);
			return -1;
		}
	}
	return 0;
}

int
history_open(struct history **hp, const char *path, uint64_t map_size,
    int flags, char *err, size_t errlen)
{
	struct history	*h;
	MDB_txn		*txn;
	int		 rc;

	*hp = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "history %s: %s", path, strerror(errno));
		return -1;
	}
	if (strlcpy(h->path, path, sizeof(h->path)) >= sizeof(h->path)) {
		snprintf(err, errlen, "history %s: %s", path,
		    strerror(ENAMETOOLONG));
		free(h);
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((flags & HISTORY_CREATE) && mkdir(path, HISTORY_DIR_MODE) == -1 &&
	    errno != EEXIST) {
		rc = errno;
		history_failx(h, "mkdir: %s", strerror(rc));
		errno = rc;
		goto fail;
	}
	if ((rc = mdb_env_create(&h->env)) != 0) {
		history_fail(h, "mdb_env_create", rc);
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(h->env, HISTORY_MAXDBS)) != 0) {
		history_fail(h, "mdb_env_set_maxdbs", rc);
		goto fail;
	}
	if (map_size > SIZE_MAX)
		map_size = SIZE_MAX;
	if ((rc = mdb_env_set_mapsize(h->env, (size_t)map_size)) != 0) {
		history_fail(h, "mdb_env_set_mapsize", rc);
		goto fail;
	}
	rc = mdb_env_open(h->env, path, MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD,
	    HISTORY_FILE_MODE);
	if (rc != 0) {
		history_fail(h, "mdb_env_open", rc);
		goto fail;
	}
	if (txn_begin(h, (flags & HISTORY_CREATE) ? 0 : MDB_RDONLY,
	    &txn) == -1)
		goto fail;
	if (open_dbis(h, txn, flags & HISTORY_CREATE) == -1) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if (txn_commit(h, txn) == -1)
		goto fail;
	*hp = h;
	return 0;
fail:
	rc = errno;
	strlcpy(err, h->err, errlen);
	history_close(h);
	errno = rc;
	return -1;
}

void
history_close(struct history *h)
{
	if (h == NULL)
		return;
	if (h->env != NULL)
		mdb_env_close(h->env);
	free(h->frame);
	free(h);
}

const char *
history_error(const struct history *h)
{
	return h->err;
}

/*
 * Delete the oldest events of topic while there are more than keep (keep 0:
 * no bound) or they were archived before cutoff_ms (0: no bound), raising
 * its floor to each deleted seq.  purge deletes them all.  The number
 * deleted, or -1.
 */
static int64_t
topic_trim(struct history *h, MDB_txn *txn, uint32_t topic,
    struct topic_state *st, uint32_t keep, uint64_t cutoff_ms, int purge)
{
	MDB_cursor	*cur;
	MDB_val		 key, val;
	unsigned char	 start[HISTORY_KEY_LEN];
	uint32_t	 t;
	uint64_t	 seq;
	int64_t		 n = 0;
	int		 rc;

	if (!purge && (keep == 0 || st->count <= keep) && cutoff_ms == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, h->events, &cur)) != 0) {
		history_fail(h, "mdb_cursor_open", rc);
		return -1;
	}
	key_make(start, topic, 0);
	for (;;) {
		key.mv_size = sizeof(start);
		key.mv_data = start;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc != 0) {
			history_fail(h, "mdb_cursor_get", rc);
			goto fail;
		}
		if (key_split(&key, &t, &seq) == -1 || t != topic)
			break;
		if (!purge && !(keep != 0 && st->count > keep) &&
		    !(cutoff_ms != 0 && val.mv_size >= HISTORY_TIME_LEN &&
		    get_le64(val.mv_data) < cutoff_ms))
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			history_fail(h, "mdb_cursor_del", rc);
			goto fail;
		}
		if (seq > st->floor)
			st->floor = seq;
		if (st->count > 0)
			st->count--;
		n++;
	}
	mdb_cursor_close(cur);
	return n;
fail:
	mdb_cursor_close(cur);
	return -1;
}

static uint64_t
cutoff_of(const struct history_retention *r, uint64_t now_ms)
{
	if (r->max_age_ms == 0)
		return 0;
	return now_ms > r->max_age_ms ? now_ms - r->max_age_ms : 1;
}

/*
 * Raise the floor of every topic with history to at most upto, for the
 * topics that may have had an event in (after, upto] that was never
 * archived: with ring, those whose newest evicted seq says so; without,
 * all of them.  0 or -1.
 */
static int
floors_raise(struct history *h, MDB_txn *txn, const struct ring *ring,
    uint64_t after, uint64_t upto)
{
	MDB_cursor	*cur;
	MDB_val		 key, val;
	unsigned char	 buf[HISTORY_STATE_LEN];
	uint64_t	 lost, floor;
	uint32_t	 t;
	int		 rc;

	if ((rc = mdb_cursor_open(txn, h->topics, &cur)) != 0) {
		history_fail(h, "mdb_cursor_open", rc);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != sizeof(t) ||
		    val.mv_size != HISTORY_STATE_LEN)
			continue;
		memcpy(&t, key.mv_data, sizeof(t));
		lost = upto;
		if (ring != NULL) {
			lost = ring_topic_evicted(ring, be32toh(t));
			if (lost > upto)
				lost = upto;
		}
		floor = get_le64((const unsigned char *)val.mv_data + 8);
		if (lost <= after || lost <= floor)
			continue;
		memcpy(buf, val.mv_data, sizeof(buf));
		put_le64(buf + 8, lost);
		val.mv_size = sizeof(buf);
		val.mv_data = buf;
		if ((rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT)) != 0) {
			history_fail(h, "mdb_cursor_put", rc);
			mdb_cursor_close(cur);
			return -1;
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		history_fail(h, "mdb_cursor_get", rc);
		return -1;
	}
	return 0;
}

/* Copy frame seq out of the ring into h->frame: 1 copied, 0 evicted, -1. */
static int
frame_copy(struct history *h, const struct ring *ring, uint64_t seq,
    struct ring_frame *fr)
{
	enum ring_status	 st;
	char			*p;

	for (;;) {
		st = ring_read(ring, seq, h->frame + HISTORY_TIME_LEN,
		    h->framecap - HISTORY_TIME_LEN, fr);
		if (st == RING_OK)
			return 1;
		if (st != RING_NOSPACE)
			return 0;
		/* Grows to the largest frame once: not per event. */
		if ((p = realloc(h->frame, fr->len + HISTORY_TIME_LEN)) ==
		    NULL) {
			history_failx(h, "frame of %u bytes: %s", fr->len,
			    strerror(errno));
			return -1;
		}
		h->frame = p;
		h->framecap = fr->len + HISTORY_TIME_LEN;
	}
}

/* Store one event of a topic with history, then trim the topic. */
static int
event_store(struct history *h, MDB_txn *txn, const struct ring_frame *fr,
    const struct history_retention *r, uint64_t now_ms,
    struct history_result *res)
{
	struct state_slot	*slot;
	unsigned char		 k[HISTORY_KEY_LEN];
	MDB_val			 key = { sizeof(k), k }, val;
	int64_t			 n;
	int			 rc;

	if ((slot = cache_get(h, txn, fr->topic)) == NULL)
		return -1;
	if (!slot->found) {
		/* Its events before this one were not archived. */
		slot->found = 1;
		slot->st.count = 0;
		slot->st.floor = fr->seq - 1;
	}
	slot->dirty = 1;
	key_make(k, fr->topic, fr->seq);
	put_le64((unsigned char *)h->frame, now_ms);
	val.mv_size = HISTORY_TIME_LEN + fr->len;
	val.mv_data = h->frame;
	if ((rc = mdb_put(txn, h->events, &key, &val, 0)) != 0) {
		history_fail(h, "mdb_put", rc);
		return -1;
	}
	slot->st.count++;
	res->stored++;
	if ((n = topic_trim(h, txn, fr->topic, &slot->st, r->keep,
	    cutoff_of(r, now_ms), 0)) == -1)
		return -1;
	res->trimmed += (uint64_t)n;
	return 0;
}

/* An event not stored: a topic with history says it lost it (drop), a
 * topic whose history was turned off loses its history (purge). */
static int
event_skip(struct history *h, MDB_txn *txn, const struct ring_frame *fr,
    int drop, struct history_result *res)
{
	struct state_slot	*slot;
	uint32_t		 t = htobe32(fr->topic);
	MDB_val			 key = { sizeof(t), &t };
	int64_t			 n;
	int			 rc;

	if ((slot = cache_get(h, txn, fr->topic)) == NULL)
		return -1;
	if (drop)
		res->dropped++;
	/* Without a record yet, the first one stored sets its floor. */
	if (!slot->found)
		return 0;
	if (drop) {
		slot->st.floor = fr->seq;
		slot->dirty = 1;
		return 0;
	}
	if ((n = topic_trim(h, txn, fr->topic, &slot->st, 0, 0, 1)) == -1)
		return -1;
	res->trimmed += (uint64_t)n;
	slot->found = 0;
	slot->dirty = 0;
	if ((rc = mdb_del(txn, h->topics, &key, NULL)) != 0) {
		history_fail(h, "mdb_del", rc);
		return -1;
	}
	return 0;
}

/*
 * Where archiving goes on: the stored position, or for a new store or a
 * replaced ring (another epoch) just before the ring's oldest event.  A
 * replaced ring lost what it held past the position unless the archiver
 * stopped cleanly with everything archived.
 */
static int
position_load(struct history *h, MDB_txn *txn, const struct ring *ring,
    uint64_t *stored, uint64_t *pos)
{
	struct ring_info	 info;
	uint64_t		 archived, epoch, clean;

	ring_get_info(ring, &info);
	if (meta_get(h, txn, META_ARCHIVED, &archived) == -1 ||
	    meta_get(h, txn, META_EPOCH, &epoch) == -1 ||
	    meta_get(h, txn, META_CLEAN, &clean) == -1)
		return -1;
	*stored = archived;
	if (epoch != info.epoch) {
		if (epoch != 0 && clean != archived &&
		    floors_raise(h, txn, NULL, archived, info.oldest - 1) == -1)
			return -1;
		if (info.oldest - 1 > archived || epoch == 0)
			archived = info.oldest - 1;
		if (meta_put(h, txn, META_EPOCH, info.epoch) == -1)
			return -1;
	}
	if (clean != 0 && meta_put(h, txn, META_CLEAN, 0) == -1)
		return -1;
	*pos = archived;
	return 0;
}

int
history_archive(struct history *h, const struct ring *ring,
    history_retention_fn fn, void *arg, size_t max_events, uint64_t now_ms,
    int grow, struct history_result *res)
{
	struct history_retention r;
	struct ring_frame	 fr;
	enum ring_status	 st;
	MDB_txn			*txn;
	uint64_t		 pos, start, oldest;
	size_t			 n = 0;
	int			 on, rc;

	memset(res, 0, sizeof(*res));
	if (h->frame == NULL) {
		if ((h->frame = malloc(4096)) == NULL)
			return -1;
		h->framecap = 4096;
	}
	/* Nothing new: no write transaction at all. */
	if (history_position(h, &pos) == -1)
		return -1;
	res->archived = pos;
	if (ring_committed(ring) <= pos && ring_oldest(ring) <= pos + 1)
		return 0;
	if (txn_begin(h, 0, &txn) == -1)
		return -1;
	h->ncache = 0;
	/* start: as stored; a new ring may move pos before the loop. */
	if (position_load(h, txn, ring, &start, &pos) == -1)
		goto fail;
	while (n < max_events) {
		st = ring_next(ring, pos, NULL, 0, &fr);
		if (st == RING_NOT_YET)
			break;
		n++;
		if (st == RING_EVICTED) {
			/* Read oldest first: the ring raises a topic's
			 * evicted mark before it moves oldest past it. */
			oldest = ring_oldest(ring);
			if (cache_flush(h, txn) == -1 ||
			    floors_raise(h, txn, ring, pos, oldest - 1) == -1)
				goto fail;
			if (oldest - 1 > pos)
				pos = oldest - 1;
			continue;
		}
		on = fn(arg, fr.topic, &r);
		if (on && grow) {
			if ((rc = frame_copy(h, ring, fr.seq, &fr)) == -1)
				goto fail;
			if (rc == 0)
				continue;	/* evicted: the next turn says */
			if (event_store(h, txn, &fr, &r, now_ms, res) == -1)
				goto fail;
		} else if (event_skip(h, txn, &fr, on, res) == -1)
			goto fail;
		pos = fr.seq;
	}
	if (cache_flush(h, txn) == -1 ||
	    (pos != start && meta_put(h, txn, META_ARCHIVED, pos) == -1))
		goto fail;
	if (txn_commit(h, txn) == -1) {
		memset(res, 0, sizeof(*res));
		return -1;
	}
	res->archived = pos;
	return (int)n;
fail:
	rc = errno;
	h->ncache = 0;
	mdb_txn_abort(txn);
	memset(res, 0, sizeof(*res));
	errno = rc;
	return -1;
}

int
history_sweep(struct history *h, history_retention_fn fn, void *arg,
    uint64_t now_ms, struct history_result *res)
{
	struct history_retention r;
	struct topic_state	 st;
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	unsigned char		 buf[HISTORY_STATE_LEN];
	uint32_t		 t;
	int64_t			 n;
	int			 rc, on;

	memset(res, 0, sizeof(*res));
	if (txn_begin(h, 0, &txn) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, h->topics, &cur)) != 0) {
		history_fail(h, "mdb_cursor_open", rc);
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != sizeof(t) ||
		    val.mv_size != HISTORY_STATE_LEN)
			continue;
		memcpy(&t, key.mv_data, sizeof(t));
		t = be32toh(t);
		st.count = get_le64(val.mv_data);
		st.floor = get_le64((const unsigned char *)val.mv_data + 8);
		on = fn(arg, t, &r);
		if ((n = topic_trim(h, txn, t, &st, on ? r.keep : 0,
		    on ? cutoff_of(&r, now_ms) : 0, !on)) == -1)
			goto fail;
		res->trimmed += (uint64_t)n;
		if (!on) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0) {
				history_fail(h, "mdb_cursor_del", rc);
				goto fail;
			}
			continue;
		}
		if (n == 0)
			continue;
		put_le64(buf, st.count);
		put_le64(buf + 8, st.floor);
		val.mv_size = sizeof(buf);
		val.mv_data = buf;
		if ((rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT)) != 0) {
			history_fail(h, "mdb_cursor_put", rc);
			goto fail;
		}
	}
	if (rc != MDB_NOTFOUND) {
		history_fail(h, "mdb_cursor_get", rc);
		goto fail;
	}
	mdb_cursor_close(cur);
	if (res->trimmed == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	return txn_commit(h, txn);
fail:
	rc = errno;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	errno = rc;
	return -1;
}

int
history_mark_clean(struct history *h, const struct ring *ring)
{
	MDB_txn		*txn;
	uint64_t	 archived;

	if (txn_begin(h, 0, &txn) == -1)
		return -1;
	if (meta_get(h, txn, META_ARCHIVED, &archived) == -1)
		goto fail;
	if (archived == 0 || archived < ring_committed(ring)) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (meta_put(h, txn, META_CLEAN, archived) == -1)
		goto fail;
	return txn_commit(h, txn);
fail:
	mdb_txn_abort(txn);
	return -1;
}

int
history_position(struct history *h, uint64_t *archived)
{
	MDB_txn	*txn;
	int	 rc;

	if (txn_begin(h, MDB_RDONLY, &txn) == -1)
		return -1;
	rc = meta_get(h, txn, META_ARCHIVED, archived);
	mdb_txn_abort(txn);
	return rc;
}

int
history_topic_info(struct history *h, uint32_t topic, uint64_t *count,
    uint64_t *floor)
{
	struct topic_state	 st = { 0, 0 };
	MDB_txn			*txn;
	int			 rc;

	if (txn_begin(h, MDB_RDONLY, &txn) == -1)
		return -1;
	rc = state_get(h, txn, topic, &st);
	mdb_txn_abort(txn);
	*count = st.count;
	*floor = st.floor;
	return rc == -1 ? -1 : 0;
}

/* The first held event of topic after seq after: 1 (key, val set), 0, -1. */
static int
topic_next(struct history *h, MDB_cursor *cur, uint32_t topic, uint64_t after,
    MDB_val *key, MDB_val *val)
{
	unsigned char	 k[HISTORY_KEY_LEN];
	uint32_t	 t;
	uint64_t	 seq;
	int		 rc;

	if (after == UINT64_MAX)
		return 0;
	key_make(k, topic, after + 1);
	key->mv_size = sizeof(k);
	key->mv_data = k;
	rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		history_fail(h, "mdb_cursor_get", rc);
		return -1;
	}
	if (key_split(key, &t, &seq) == -1 || t != topic)
		return 0;
	return 1;
}

int
history_read(struct history *h, uint64_t after, const uint32_t *topics,
    size_t n, size_t max_frames, history_frame_fn fn, void *arg,
    struct history_view *view)
{
	struct topic_state	 st;
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 key, val, vals[32];
	uint64_t		 next[32], seq;
	uint32_t		 t;
	size_t			 i, best, taken = 0;
	int			 rc;

	memset(view, 0, sizeof(*view));
	if (n == 0 || n > 32) {
		errno = EINVAL;
		return -1;
	}
	if (txn_begin(h, MDB_RDONLY, &txn) == -1)
		return -1;
	if (meta_get(h, txn, META_ARCHIVED, &view->archived) == -1 ||
	    meta_get(h, txn, META_EPOCH, &view->epoch) == -1 ||
	    meta_get(h, txn, META_CLEAN, &seq) == -1)
		goto fail;
	view->clean = seq != 0 && seq == view->archived;
	view->complete = 1;
	for (i = 0; i < n; i++) {
		if ((rc = state_get(h, txn, topics[i], &st)) == -1)
			goto fail;
		if (rc == 0)
			view->complete = 0;
		else if (st.floor > view->floor)
			view->floor = st.floor;
	}
	if ((rc = mdb_cursor_open(txn, h->events, &cur)) != 0) {
		history_fail(h, "mdb_cursor_open", rc);
		goto fail;
	}
	/* A merge of the topics' runs: next[i] is topic i's next seq (0:
	 * none), vals[i] its bytes, valid while the read transaction is. */
	for (i = 0; i < n; i++) {
		next[i] = 0;
		if ((rc = topic_next(h, cur, topics[i], after, &key,
		    &vals[i])) == -1)
			goto fail_cursor;
		if (rc == 1)
			key_split(&key, &t, &next[i]);
	}
	while (taken < max_frames) {
		best = n;
		for (i = 0; i < n; i++)
			if (next[i] != 0 && (best == n || next[i] < next[best]))
				best = i;
		if (best == n)
			break;
		seq = next[best];
		val = vals[best];
		if (val.mv_size < HISTORY_TIME_LEN ||
		    fn(arg, seq, topics[best], (const char *)val.mv_data +
		    HISTORY_TIME_LEN, val.mv_size - HISTORY_TIME_LEN) != 0)
			break;
		taken++;
		next[best] = 0;
		if ((rc = topic_next(h, cur, topics[best], seq, &key,
		    &vals[best])) == -1)
			goto fail_cursor;
		if (rc == 1)
			key_split(&key, &t, &next[best]);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return (int)taken;
fail_cursor:
	mdb_cursor_close(cur);
fail:
	rc = errno;
	mdb_txn_abort(txn);
	errno = rc;
	return -1;
}

int
history_reader_check(struct history *h)
{
	int	 dead = 0, rc;

	if ((rc = mdb_reader_check(h->env, &dead)) != 0) {
		history_fail(h, "mdb_reader_check", rc);
		return -1;
	}
	return dead;
}

int
history_sync(struct history *h)
{
	int	 rc;

	if ((rc = mdb_env_sync(h->env, 1)) != 0) {
		history_fail(h, "mdb_env_sync", rc);
		return -1;
	}
	return 0;
}
