/*
 * wake: per-worker topic tables in shared memory and the wake-up protocol.
 * Each slot has one writer of its table (its worker, or the master while no
 * worker runs there); publishers read the tables without locks.  Keys are
 * never deleted but by wake_slot_reset, so a lock-free probe that finds an
 * empty entry knows its key is absent; every probe is bounded by the table.
 *
 * No lost wake-up.  Two store-buffering pairs, each closed by a SEQ_CST
 * fence on both sides:
 *
 *   publisher: store committed (release, ring_append) ; fence ;
 *              load active, overflow, the table ; exchange signalled 0->1
 *   join:      store the count (and key) ; fence ; load committed
 *   ack:       store signalled = 0 ; fence ; load committed
 *
 * Of two SEQ_CST fences one comes first in their single total order.  If
 * the publisher's does, the worker's later load of committed sees the
 * event; if the worker's does, the publisher's later loads see the count
 * (join) or the cleared flag (ack), so its exchange returns 0 and it writes
 * the eventfd.  Either way the event is delivered.  A publisher that finds
 * signalled already 1 skips the write safely: whoever set it wrote the
 * eventfd, and the worker's next ack is ordered after this exchange, so the
 * read of committed that follows that ack sees this event.  Leave and
 * stale flags can only cause a spurious wake, never a lost one.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ringcast/log.h"
#include "ringcast/wake.h"

#define WAKE_TABLE_BITS	14
#define WAKE_TABLE_MASK	(WAKE_TABLE_ENTRIES - 1)
#define WAKE_CACHELINE	__attribute__((aligned(64)))

_Static_assert(1 << WAKE_TABLE_BITS == WAKE_TABLE_ENTRIES,
    "WAKE_TABLE_ENTRIES is 2^WAKE_TABLE_BITS");

#define LOAD_RELAXED(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELAXED(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_RELEASE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FENCE()			__atomic_thread_fence(__ATOMIC_SEQ_CST)

struct wake_entry {
	uint32_t	 key;		/* topic id + 1; 0: empty */
	uint32_t	 streams;	/* the owner's streams of the topic */
};

struct wake_slot {
	/* Read by every publisher, written by the owner: one line. */
	int			 eventfd;
	uint32_t		 active;
	uint32_t		 overflow;
	uint32_t		 used;		/* keys in table; owner only */
	/* Written by publishers too: a line of its own. */
	uint32_t		 signalled WAKE_CACHELINE;
	struct wake_entry	 table[WAKE_TABLE_ENTRIES] WAKE_CACHELINE;
} WAKE_CACHELINE;

struct wake {
	size_t			 size;		/* of the mapping */
	unsigned int		 nslots;
	int			 memfd;		/* backs the mapping */
	struct wake_slot	 slots[];
};

/* Fibonacci hashing: consecutive catalog ids land far apart. */
static uint32_t
wake_hash(uint32_t key)
{
	return (key * 2654435769u) >> (32 - WAKE_TABLE_BITS);
}

/*
 * The entry of key in s, or NULL; when absent, *empty is the entry where
 * the owner would insert it (NULL if a probe of the whole table found
 * none, which only a concurrent reset can cause).
 */
static struct wake_entry *
wake_probe(const struct wake_slot *s, uint32_t key, struct wake_entry **empty)
{
	struct wake_entry	*e;
	uint32_t		 i, n, k;

	i = wake_hash(key);
	for (n = 0; n < WAKE_TABLE_ENTRIES; n++) {
		e = (struct wake_entry *)&s->table[i];
		k = LOAD_ACQUIRE(&e->key);
		if (k == key)
			return e;
		if (k == 0) {
			if (empty != NULL)
				*empty = e;
			return NULL;
		}
		i = (i + 1) & WAKE_TABLE_MASK;
	}
	if (empty != NULL)
		*empty = NULL;
	return NULL;
}

/* The owner's streams of topic in s; 0 if none or untracked. */
static uint32_t
wake_slot_streams(const struct wake_slot *s, uint32_t topic)
{
	const struct wake_entry	*e;

	if (topic == UINT32_MAX)
		return 0;
	if ((e = wake_probe(s, topic + 1, NULL)) == NULL)
		return 0;
	return LOAD_RELAXED(&e->streams);
}

static struct wake_slot *
wake_slot(const struct wake *w, unsigned int slot)
{
	if (w == NULL || slot >= w->nslots)
		return NULL;
	return (struct wake_slot *)&w->slots[slot];
}

/* Write s's eventfd unless a publisher already did since its last ack. */
static void
wake_signal(struct wake_slot *s)
{
	uint64_t	 one = 1;

	if (__atomic_exchange_n(&s->signalled, 1, __ATOMIC_SEQ_CST) != 0)
		return;
	/* EAGAIN means the counter is at its maximum: awake anyway. */
	(void)!write(s->eventfd, &one, sizeof(one));
}

static void
wake_drain(struct wake_slot *s)
{
	uint64_t	 value;

	/* Non-blocking: EAGAIN when nothing was written. */
	(void)!read(s->eventfd, &value, sizeof(value));
}

static size_t
wake_size(unsigned int nslots)
{
	return offsetof(struct wake, slots) +
	    (size_t)nslots * sizeof(struct wake_slot);
}

/* A memory file, not an anonymous map: a binary upgrade passes it (and
 * the eventfds it names) to the new master across exec. */
struct wake *
wake_create(unsigned int nslots)
{
	struct wake	*w;
	size_t		 size;
	unsigned int	 i;
	int		 saved, fd;

	if (nslots == 0) {
		errno = EINVAL;
		return NULL;
	}
	size = wake_size(nslots);
	if ((fd = memfd_create("ringcast-wake", MFD_CLOEXEC)) == -1)
		return NULL;
	if (ftruncate(fd, (off_t)size) == -1 ||
	    (w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0)) == MAP_FAILED) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	w->size = size;
	w->nslots = nslots;
	w->memfd = fd;
	for (i = 0; i < nslots; i++) {
		w->slots[i].eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->slots[i].eventfd == -1) {
			saved = errno;
			while (i-- > 0)
				close(w->slots[i].eventfd);
			munmap(w, size);
			close(fd);
			errno = saved;
			return NULL;
		}
	}
	return w;
}

struct wake *
wake_attach(int fd, unsigned int nslots)
{
	struct wake	*w;
	struct stat	 st;
	size_t		 size = wake_size(nslots);

	if (nslots == 0 || fstat(fd, &st) == -1 || st.st_size < 0 ||
	    (size_t)st.st_size != size) {
		errno = EINVAL;
		return NULL;
	}
	w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		return NULL;
	if (w->size != size || w->nslots != nslots || w->memfd != fd) {
		munmap(w, size);
		errno = EINVAL;
		return NULL;
	}
	return w;
}

int
wake_memfd(const struct wake *w)
{
	return w->memfd;
}

void
wake_destroy(struct wake *w)
{
	unsigned int	 i;
	int		 fd;

	if (w == NULL)
		return;
	for (i = 0; i < w->nslots; i++)
		close(w->slots[i].eventfd);
	fd = w->memfd;
	munmap(w, w->size);
	close(fd);
}

int
wake_fd(const struct wake *w, unsigned int slot)
{
	const struct wake_slot	*s;

	if ((s = wake_slot(w, slot)) == NULL)
		return -1;
	return s->eventfd;
}

int
wake_join(struct wake *w, unsigned int slot, uint32_t topic)
{
	struct wake_slot	*s;
	struct wake_entry	*e, *empty;

	if ((s = wake_slot(w, slot)) == NULL || topic == UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((e = wake_probe(s, topic + 1, &empty)) != NULL)
		STORE_RELAXED(&e->streams, LOAD_RELAXED(&e->streams) + 1);
	else if (s->used < WAKE_TABLE_LOAD_MAX && empty != NULL) {
		/* The count first: a reader that finds the key sees it. */
		STORE_RELAXED(&empty->streams, 1);
		STORE_RELEASE(&empty->key, topic + 1);
		s->used++;
	} else if (!LOAD_RELAXED(&s->overflow)) {
		STORE_RELAXED(&s->overflow, 1);
		log_warnx("wake slot %u: %u topics fill its table; it is "
		    "woken for every event until it restarts", slot, s->used);
	}
	/* Publish the count (or overflow) before the caller reads the ring. */
	FENCE();
	return 0;
}

int
wake_leave(struct wake *w, unsigned int slot, uint32_t topic)
{
	struct wake_slot	*s;
	struct wake_entry	*e;
	uint32_t		 streams;

	if ((s = wake_slot(w, slot)) == NULL || topic == UINT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((e = wake_probe(s, topic + 1, NULL)) == NULL) {
		if (LOAD_RELAXED(&s->overflow))
			return 0;
		errno = ENOENT;
		return -1;
	}
	if ((streams = LOAD_RELAXED(&e->streams)) == 0) {
		errno = ENOENT;
		return -1;
	}
	/* No fence: a publisher that misses the drop wakes us spuriously. */
	STORE_RELAXED(&e->streams, streams - 1);
	return 0;
}

void
wake_ack(struct wake *w, unsigned int slot)
{
	struct wake_slot	*s;

	if ((s = wake_slot(w, slot)) == NULL)
		return;
	wake_drain(s);
	/* Clear after the drain, so a write made after the clear stays. */
	STORE_RELEASE(&s->signalled, 0);
	/* Publish the clear before the caller reads committed. */
	FENCE();
}

void
wake_set_active(struct wake *w, unsigned int slot, int on)
{
	struct wake_slot	*s;

	if ((s = wake_slot(w, slot)) == NULL)
		return;
	STORE_RELEASE(&s->active, on ? 1 : 0);
	FENCE();
}

void
wake_slot_reset(struct wake *w, unsigned int slot)
{
	struct wake_slot	*s;

	if ((s = wake_slot(w, slot)) == NULL)
		return;
	/* Inactive first: publishers stop reading the table we zero. */
	STORE_RELEASE(&s->active, 0);
	FENCE();
	memset(s->table, 0, sizeof(s->table));
	s->used = 0;
	STORE_RELAXED(&s->overflow, 0);
	wake_drain(s);
	STORE_RELEASE(&s->signalled, 0);
	FENCE();
}

/* Whether a publish of topic concerns slot s. */
static int
wake_slot_wants(const struct wake_slot *s, uint32_t topic)
{
	if (!LOAD_RELAXED(&s->active))
		return 0;
	if (LOAD_RELAXED(&s->overflow))
		return 1;
	return wake_slot_streams(s, topic) > 0;
}

void
wake_notify(const struct wake *w, unsigned int self, uint32_t topic)
{
	unsigned int	 i;

	/* Order the caller's commit before every load below. */
	FENCE();
	for (i = 0; i < w->nslots; i++)
		if (i != self && wake_slot_wants(&w->slots[i], topic))
			wake_signal(wake_slot(w, i));
}

void
wake_notify_topics(const struct wake *w, unsigned int self,
    const uint32_t *topics, size_t n)
{
	unsigned int	 i;
	size_t		 t;

	/* Order the caller's commits before every load below. */
	FENCE();
	for (i = 0; i < w->nslots; i++) {
		if (i == self)
			continue;
		for (t = 0; t < n; t++)
			if (wake_slot_wants(&w->slots[i], topics[t]))
				break;
		if (t < n)
			wake_signal(wake_slot(w, i));
	}
}

uint64_t
wake_topic_streams(const struct wake *w, uint32_t topic)
{
	uint64_t	 total = 0;
	unsigned int	 i;

	for (i = 0; i < w->nslots; i++)
		if (LOAD_ACQUIRE(&w->slots[i].active))
			total += wake_slot_streams(&w->slots[i], topic);
	return total;
}

/* Whether (topic, streams) ranks above c: more streams, then smaller id. */
static int
wake_ranks_above(uint32_t topic, uint64_t streams,
    const struct wake_topic_count *c)
{
	return streams > c->streams ||
	    (streams == c->streams && topic < c->topic);
}

/* Insert (topic, streams) into the sorted out[0..*count) of capacity n. */
static void
wake_rank(struct wake_topic_count *out, size_t *count, size_t n,
    uint32_t topic, uint64_t streams)
{
	size_t	 i, at;

	if (*count == n && !wake_ranks_above(topic, streams, &out[n - 1]))
		return;
	/* A reset during the scan can show a topic twice. */
	for (i = 0; i < *count; i++)
		if (out[i].topic == topic)
			return;
	at = *count < n ? (*count)++ : n - 1;
	while (at > 0 && wake_ranks_above(topic, streams, &out[at - 1])) {
		out[at] = out[at - 1];
		at--;
	}
	out[at].topic = topic;
	out[at].streams = streams;
}

/* Whether an active slot before i holds key (so it was ranked there). */
static int
wake_seen_before(const struct wake *w, unsigned int i, uint32_t key)
{
	unsigned int	 j;

	for (j = 0; j < i; j++)
		if (LOAD_ACQUIRE(&w->slots[j].active) &&
		    wake_probe(&w->slots[j], key, NULL) != NULL)
			return 1;
	return 0;
}

size_t
wake_busiest(const struct wake *w, struct wake_topic_count *out, size_t n)
{
	const struct wake_slot	*s;
	uint64_t		 streams;
	uint32_t		 key, e;
	size_t			 count = 0;
	unsigned int		 i;

	if (n == 0)
		return 0;
	for (i = 0; i < w->nslots; i++) {
		s = &w->slots[i];
		if (!LOAD_ACQUIRE(&s->active))
			continue;
		for (e = 0; e < WAKE_TABLE_ENTRIES; e++) {
			key = LOAD_ACQUIRE(&s->table[e].key);
			if (key == 0 || wake_seen_before(w, i, key))
				continue;
			streams = wake_topic_streams(w, key - 1);
			if (streams > 0)
				wake_rank(out, &count, n, key - 1, streams);
		}
	}
	return count;
}
