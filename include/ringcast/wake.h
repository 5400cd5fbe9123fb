/*
 * wake: whom a publish wakes.  One anonymous MAP_SHARED mapping, made by the
 * master before fork, holds a part per worker slot: the slot's eventfd, its
 * active/overflow/signalled flags and a table from catalog topic id to the
 * number of that worker's streams of the topic.  A publisher writes the
 * eventfd only of the active workers that have a stream of the topic and
 * are not already signalled; the invariant is that no wake-up is lost.
 */
#ifndef RINGCAST_WAKE_H
#define RINGCAST_WAKE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each slot's table has WAKE_TABLE_ENTRIES entries of 8 bytes (128 KiB per
 * slot).  A slot that would hold more than WAKE_TABLE_LOAD_MAX distinct
 * topics overflows: from then on it is woken for every event, as if it
 * followed every topic, until wake_slot_reset.
 */
#define WAKE_TABLE_ENTRIES	16384
#define WAKE_TABLE_LOAD_MAX	(WAKE_TABLE_ENTRIES / 4 * 3)

struct wake;

struct wake_topic_count {
	uint32_t	 topic;		/* catalog topic id */
	uint64_t	 streams;	/* summed over active slots */
};

/* Map the shared tables for nslots workers and make their eventfds
 * (EFD_NONBLOCK | EFD_CLOEXEC); NULL with errno set on failure.  Called by
 * the master before any fork; every slot starts inactive and empty. */
struct wake *wake_create(unsigned int nslots);
/* Map the tables of wake_memfd(w) inherited across exec (binary upgrade),
 * whose eventfds the caller inherited under the same numbers; NULL with
 * errno EINVAL unless fd holds the tables of nslots of this layout. */
struct wake *wake_attach(int fd, unsigned int nslots);
/* The memory file behind the tables (close-on-exec). */
int	wake_memfd(const struct wake *w);
/* Close the eventfds and the memory file, and unmap; w may be NULL. */
void	wake_destroy(struct wake *w);
/* The eventfd a slot's worker polls for reads; -1 if slot is out of range. */
int	wake_fd(const struct wake *w, unsigned int slot);

/*
 * Owner calls: only the worker in the slot (or the master while no worker
 * runs in it) may call these for that slot.
 *
 * wake_join counts one more stream of topic in slot; 0, or -1 with errno
 * EINVAL (slot out of range, topic UINT32_MAX).  A full table is not an
 * error: the slot overflows.  It ends with a full fence, so a count's 0->1
 * change is visible to every later publisher; the caller must then read
 * the ring's committed sequence (ring_committed) before it next blocks, and
 * deliver what is newer than the stream's cursor: either that read sees an
 * event, or the event's publisher sees the count and wakes the worker.
 * O(probe length).
 */
int	wake_join(struct wake *w, unsigned int slot, uint32_t topic);
/* One stream fewer of topic in slot (the key stays, its count may drop to
 * 0); 0, or -1 with errno EINVAL or ENOENT (no stream of topic counted).
 * Never fails for an overflowed slot's untracked topic.  O(probe length). */
int	wake_leave(struct wake *w, unsigned int slot, uint32_t topic);
/* Drain the slot's eventfd and clear its signalled flag, then a full
 * fence; the caller must read the ring after it.  Never blocks. */
void	wake_ack(struct wake *w, unsigned int slot);
/* Mark a slot's worker running (on) or gone, with a full fence; a worker
 * reads the ring after it goes active.  Inactive slots are never woken. */
void	wake_set_active(struct wake *w, unsigned int slot, int on);
/* The master, after a slot's worker died: inactive, table empty, flags
 * clear, eventfd drained.  Never blocks. */
void	wake_slot_reset(struct wake *w, unsigned int slot);

/*
 * Publisher calls, by any process that appended, right after the commit
 * (ring_append's release store of committed).
 *
 * wake_notify writes the eventfd of every active slot that has a stream of
 * topic (or has overflowed) and is not already signalled; each such slot
 * becomes signalled, and is not written again until its wake_ack.  The
 * slot self is skipped: a worker that appended reads the ring before it
 * next blocks anyway (WAKE_NOBODY: skip none).  Never blocks.
 * O(workers x probe length).
 */
#define WAKE_NOBODY	(~0U)
void	wake_notify(const struct wake *w, unsigned int self, uint32_t topic);
/* wake_notify for a batch of n topics: each slot is written at most once.
 * Never blocks.  O(workers x n x probe length). */
void	wake_notify_topics(const struct wake *w, unsigned int self,
	    const uint32_t *topics, size_t n);

/*
 * Stats for the admin listener: moment's snapshots, no locks taken.  An
 * overflowed slot does not count the topics it could not enter.
 */
/* Streams of topic summed over active slots.  O(workers x probe length). */
uint64_t wake_topic_streams(const struct wake *w, uint32_t topic);
/* Fill out with up to n topics having the most streams over active slots,
 * most first, ties by smaller id; returns how many were filled.  For a
 * scrape, not a hot path: O(workers x WAKE_TABLE_ENTRIES x (workers x probe
 * length + n)). */
size_t	wake_busiest(const struct wake *w, struct wake_topic_count *out,
	    size_t n);

#endif
