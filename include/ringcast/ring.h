/*
 * ring: the shared, memory-mapped event ring of DESIGN §3.  Any process may
 * append (under a process-shared robust mutex); readers never lock and copy
 * frames out with seqlock validation, so a torn or overwritten frame is never
 * returned.  Sequence numbers are global, start at 1, strictly increase and
 * are never reused, not even across ring_reset().
 *
 * Durability: appends land in the page cache of the MAP_SHARED file, so they
 * survive the crash of any process, always.  A power loss keeps only what was
 * written back: with [ring] sync = off whatever the kernel happened to flush,
 * with sync = interval what ring_sync() saw, and events appended since may be
 * lost or torn; reset the ring after a power loss to be sure.
 */
#ifndef RINGCAST_RING_H
#define RINGCAST_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring;

#define RING_CREATE	0x1	/* create the file if it does not exist */

enum ring_status {
	RING_OK = 0,
	RING_EVICTED,		/* older than the oldest retained event */
	RING_NOT_YET,		/* newer than the newest committed event */
	RING_NOSPACE,		/* the caller's buffer is too small */
};

struct ring_frame {
	uint64_t	 seq;
	uint32_t	 topic;		/* catalog topic id */
	uint32_t	 len;		/* wire bytes, "id: N\n\n" included */
};

struct ring_info {
	uint64_t	 epoch;		/* random, chosen at creation */
	uint64_t	 oldest;	/* oldest retained seq (committed+1 if empty) */
	uint64_t	 committed;	/* newest visible seq, 0 if none ever */
	uint64_t	 size;		/* data area bytes */
	uint64_t	 used;		/* data bytes held by retained events */
	uint32_t	 slots;
	uint32_t	 version;
	uint64_t	 created;	/* unix time */
};

/* An event to append: topic, and its body as sse_encode_body made it. */
struct ring_event {
	uint32_t	 topic;
	const void	*body;
	size_t		 len;
};

/* Called in the appending process after each commit (once per batch, with
 * its last seq), outside the lock. */
typedef void	 (*ring_notify_fn)(void *arg, uint64_t seq);
/*
 * Persist ceiling (>= every seq this ring may hand out until the next
 * call) and return 0, or log and return -1.  Called by an appender before
 * it takes the writer lock, never under it, so it may do disk I/O: when the
 * seqs to hand out come within half a step (32768) of the persisted mark,
 * or pass it.  Appenders in several processes may call it at once with
 * different ceilings, so it must only ever raise the stored mark.
 *
 * Guarantee: while the hook succeeds, every seq is covered by a persisted
 * ceiling before it becomes visible.  An append does not wait for a
 * failing hook: it calls it once and appends anyway (as it does after a
 * few retries when bursts keep racing past fresh ceilings), so its seqs
 * may pass the persisted mark; they stay unique as long as the ring file
 * survives (ring_reset starts above its committed seq), but a ring file
 * lost with them may have them handed out again.
 */
typedef int	 (*ring_hwm_fn)(void *arg, uint64_t ceiling);

/* Open (or with RING_CREATE create) the ring file at path.  size is the data
 * area in bytes (the file adds a header, a topic table and the slot index);
 * size and slots must match an existing file.  A new ring's first seq is
 * seq_floor + 1; an existing ring ignores seq_floor.  Concurrent creators
 * are safe (the file is published whole with link(2)).  Returns 0, or -1 with
 * a message naming the file and the fix in err. */
int	ring_open(struct ring **ringp, const char *path, uint64_t size,
	    uint32_t slots, int flags, uint64_t seq_floor, char *err,
	    size_t errlen);
/* Unmap and free; NULL is fine. */
void	ring_close(struct ring *ring);
/* Replace the file at path by an empty ring whose first seq exceeds both
 * seq_floor and the old file's committed seq and persisted high-water mark
 * (if its header was readable).  Atomic (rename(2)); processes that still map
 * the old file keep using it, so stop the daemon first.  0 or -1 with err. */
int	ring_reset(const char *path, uint64_t size, uint32_t slots,
	    uint64_t seq_floor, char *err, size_t errlen);

void	ring_set_notify(struct ring *ring, ring_notify_fn fn, void *arg);
void	ring_set_hwm(struct ring *ring, ring_hwm_fn fn, void *arg);

/* Append the encoded body (sse_encode_body) of an event of topic; the ring
 * adds "id: N\n\n".  Evicts the oldest events to make room.  Returns 0 and
 * the new seq, or -1 with errno EMSGSIZE (frame over a quarter of the ring)
 * or another errno from the lock.  May block briefly on the writer lock,
 * and now and then (see ring_hwm_fn) on the high-water mark hook. */
int	ring_append(struct ring *ring, uint32_t topic, const void *body,
	    size_t len, uint64_t *seq);
/* Append n events in one hold of the lock, all or none, with consecutive
 * seqs; *first_seq is the first.  Readers see all of them or none.  -1 with
 * errno EMSGSIZE when one frame is over a quarter of the ring, all of them
 * together over half of it, or n over the slot count (nothing appended);
 * EINVAL when n is 0.  Blocks on the lock as ring_append does. */
int	ring_append_batch(struct ring *ring, const struct ring_event *ev,
	    size_t n, uint64_t *first_seq);

/*
 * ring_append_batch with given seqs: first, first + 1, ... (a cluster's
 * ids).  -1 with errno EEXIST when first <= committed (nothing appended:
 * the caller has these already), else as ring_append_batch.  A first past
 * committed + 1 leaves a hole: every seq in it, and every event the ring
 * retained, reads as evicted from then on, so readers report a gap.
 */
int	ring_append_at(struct ring *ring, const struct ring_event *ev,
	    size_t n, uint64_t first);

/* Newest committed seq (acquire); 0 if nothing was ever appended. */
uint64_t ring_committed(const struct ring *ring);
/* Oldest retained seq; committed + 1 when empty. */
uint64_t ring_oldest(const struct ring *ring);
/* Copy frame seq into buf[cap], validated: RING_OK with *frame filled, or
 * RING_EVICTED, RING_NOT_YET, or RING_NOSPACE (frame->len says how much is
 * needed).  Never blocks, never allocates. */
enum ring_status ring_read(const struct ring *ring, uint64_t seq, void *buf,
	    size_t cap, struct ring_frame *frame);
/* Find the first seq > after whose topic is one of topics[n] (n == 0: any),
 * reading only the slot index.  RING_OK with *frame (seq, topic, len),
 * RING_NOT_YET when there is none yet, RING_EVICTED when after + 1 is
 * already evicted (the caller decides whether that is a gap).  On
 * RING_NOT_YET frame->seq is the newest seq examined (>= after): none up to it
 * matched, so the caller may resume from there instead of rescanning.
 * Cost: O(n) when none of the topics had an event after `after` (a
 * per-bucket newest seq says so; a bucket shared with a busier topic only
 * makes it scan), else O(seqs scanned). */
enum ring_status ring_next(const struct ring *ring, uint64_t after,
	    const uint32_t *topics, size_t n, struct ring_frame *frame);
/* The newest evicted seq of topic, or 0.  Conservative: it may be higher
 * than the truth (topics share counters) but never lower, so a gap is never
 * hidden.  A ring whose first seq is F > 1 (made with a seq_floor, e.g. by
 * ring_reset) reports at least F - 1 for every topic: those events are gone. */
uint64_t ring_topic_evicted(const struct ring *ring, uint32_t topic);
/* The newest retained seq of topic (0: none) and how many of its events
 * the ring retains.  O(retained events): for the admin listener, never the
 * serving path. */
void	ring_topic_stats(const struct ring *ring, uint32_t topic,
	    uint64_t *newest, uint64_t *retained);

/* One topic's figures, for ring_topics_scan. */
struct ring_topic_stat {
	uint32_t	 topic;		/* in: catalog topic id */
	uint64_t	 newest;	/* out: newest retained seq, 0: none */
	uint64_t	 retained;	/* out: its events the ring retains */
	uint64_t	 recent;	/* out: of those, how many are > after */
};
/* ring_topic_stats for n topics at once (st sorted by ascending, distinct
 * topic id), in one pass over the slot index: O(retained events x log n),
 * not O(retained x n).  Returns the newest seq the pass covered.  For the
 * admin listener, never the serving path. */
uint64_t ring_topics_scan(const struct ring *ring, struct ring_topic_stat *st,
	    size_t n, uint64_t after);
/* Fill *info; lock-free, values may be a moment old. */
void	ring_get_info(const struct ring *ring, struct ring_info *info);
/* msync(MS_SYNC) the whole map ([ring] sync = interval); blocks until the
 * write-back is done, so call it off the serving path.  0 or -1 with errno. */
int	ring_sync(struct ring *ring);
/* The file this ring maps. */
const char *ring_path(const struct ring *ring);

#endif
