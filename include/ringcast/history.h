/*
 * history: per-topic history of DESIGN §10.2, an LMDB environment of its
 * own (a "history" directory beside the catalog's files), written only by
 * the archiver and read by workers for replay.  Per topic it keeps every
 * archived event after its floor: the floor is the newest seq of the topic
 * known not to be held (trimmed, dropped on a full map, or never archived),
 * so "the next event after x is here or in the ring" is decidable.  The
 * archiver's position (the last seq it looked at) is stored in the same
 * transaction as the events, so a kill at any point resumes without a
 * duplicate or a hole.
 */
#ifndef RINGCAST_HISTORY_H
#define RINGCAST_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct history;
struct ring;

#define HISTORY_CREATE		0x1	/* create the directory and databases */
#define HISTORY_DIRNAME		"history"

/* How much of a topic to keep; both 0: none. */
struct history_retention {
	uint32_t	 keep;		/* newest events; 0: no count bound */
	uint64_t	 max_age_ms;	/* 0: no age bound */
};

/*
 * The retention of topic, as the archiver's owner decides it (the catalog
 * record, else the [history] defaults): 1 and *r filled when the topic has
 * history, 0 when it has none.
 */
typedef int	 (*history_retention_fn)(void *arg, uint32_t topic,
		    struct history_retention *r);

/* What one archive or sweep call did. */
struct history_result {
	uint64_t	 archived;	/* the position after the call */
	uint64_t	 stored;	/* events written */
	uint64_t	 trimmed;	/* events deleted by count or age */
	uint64_t	 dropped;	/* events of history topics not written
					 * (map full: grow was 0) */
};

/* What a reader learns of its topics in the transaction of its frames. */
struct history_view {
	uint64_t	 archived;	/* the archiver's position */
	uint64_t	 floor;		/* newest seq of any of the topics that
					 * history does not hold */
	int		 complete;	/* every topic has history */
	uint64_t	 epoch;		/* of the ring archived last */
	int		 clean;		/* the archiver stopped cleanly at
					 * archived (the ring's newest then) */
};

/* Called for each frame a reader is given, inside its read transaction:
 * 0 to take it and go on, 1 to stop without taking it. */
typedef int	 (*history_frame_fn)(void *arg, uint64_t seq, uint32_t topic,
		    const void *frame, size_t len);

/* Open the environment in directory path with map_size; with
 * HISTORY_CREATE make the directory and databases if missing.  0, or -1
 * with a message naming the path in err. */
int	history_open(struct history **hp, const char *path, uint64_t map_size,
	    int flags, char *err, size_t errlen);
/* Close; NULL is fine. */
void	history_close(struct history *h);
/* The last error's message (valid until the next call). */
const char *history_error(const struct history *h);
/* Write the path of the history directory of catalog_path into buf;
 * 0, or -1 when it does not fit. */
int	history_path(char *buf, size_t len, const char *catalog_path);

/*
 * Archive up to max_events seqs of the ring after the stored position in
 * one write transaction: the events of topics with history (fn) are stored
 * and their topics trimmed (count, and age against now_ms, unix time in
 * ms); a topic whose history was turned off is purged; seqs the ring
 * evicted before they were read raise the floors of the topics they may
 * have held.  With grow 0 (the map was full) no event is stored: each is
 * dropped and raises its topic's floor.  Returns the seqs consumed (0:
 * nothing new), or -1 with errno (ENOSPC: the map is full, nothing was
 * written).  Never blocks on the ring.
 */
int	history_archive(struct history *h, const struct ring *ring,
	    history_retention_fn fn, void *arg, size_t max_events,
	    uint64_t now_ms, int grow, struct history_result *res);
/* Trim every topic by age and count and purge the topics without history,
 * in one write transaction: for quiet topics, which no archive call
 * touches.  0, or -1 with errno. */
int	history_sweep(struct history *h, history_retention_fn fn, void *arg,
	    uint64_t now_ms, struct history_result *res);
/* After a clean stop with the ring fully archived, remember it: a ring
 * replaced (ring reset) later loses nothing.  0, or -1. */
int	history_mark_clean(struct history *h, const struct ring *ring);
/* The archiver's position (0: none yet), in a read transaction. */
int	history_position(struct history *h, uint64_t *archived);
/* The number of events held for topic and its floor; 0, or -1. */
int	history_topic_info(struct history *h, uint32_t topic, uint64_t *count,
	    uint64_t *floor);

/*
 * In one read-only transaction: fill *view for topics[n], then hand fn the
 * held frames of those topics with seq > after, oldest first, until fn
 * stops or max_frames were taken.  Returns the frames taken, or -1.  No
 * transaction outlives the call, so a caller writes to sockets after it.
 */
int	history_read(struct history *h, uint64_t after, const uint32_t *topics,
	    size_t n, size_t max_frames, history_frame_fn fn, void *arg,
	    struct history_view *view);
/* Clear reader slots of dead processes; the number cleared, or -1. */
int	history_reader_check(struct history *h);
/* Flush committed transactions to disk (the environment is MDB_NOSYNC);
 * blocks on the disk.  0 or -1. */
int	history_sync(struct history *h);

#endif
