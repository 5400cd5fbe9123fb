/*
 * ring: the memory-mapped event ring of DESIGN §3.  The file is a header
 * page (with a per-topic-bucket "newest seq" table), a per-topic "newest
 * evicted seq" table, the slot index and the data area ([ring] size bytes).  Writers serialise on a robust process-shared
 * mutex, never held across the high-water mark hook's disk I/O; readers
 * never lock.  Invariant: every retained event's bytes lie contiguously at
 * logical offsets >= tail, and tail >= head - size, so no two retained
 * events share a byte of the map.  A reader accepts a copy only if,
 * after the copy, its slot still names it and its offset is still >= tail.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/ring.h"
#include "ringcast/sse.h"

#define RING_MAGIC		"RINGCAST"
#define RING_VERSION		1
#define RING_HEADER_SIZE	4096
#define RING_TOPICS		4096	/* entries of the evicted-seq table */
#define RING_NEWEST		256	/* entries of the newest-seq table */
#define RING_PAGE		4096
#define RING_SIZE_MIN		4096
#define RING_SIZE_MAX		(1ULL << 40)
#define RING_SLOTS_MIN		16
#define RING_SLOTS_MAX		(1U << 28)
#define RING_HWM_STEP		65536	/* seqs handed out per persisted mark */
#define RING_HWM_MARGIN		(RING_HWM_STEP / 2)	/* reserve this early */
#define RING_HWM_TRIES		4	/* lock attempts before passing the mark */
#define RING_OPEN_LOCK_WAIT	5	/* seconds ring_open waits for the lock */
#define RING_BOOT_ID		"/proc/sys/kernel/random/boot_id"
#define RING_FIX		"; run 'ringcastctl ring reset' (this " \
				"discards the retained events)"
#define RING_CACHELINE		__attribute__((aligned(64)))

struct ring_header {
	/* Written once at creation; covered by checksum. */
	char		 magic[8];
	uint32_t	 version;
	uint32_t	 header_size;
	uint64_t	 size;		/* data area bytes */
	uint32_t	 slots;
	uint32_t	 topics;
	uint64_t	 epoch;
	uint64_t	 created;
	uint64_t	 first_seq;	/* seq_floor + 1 */
	uint64_t	 checksum;	/* FNV-1a 64 of the fields above */

	/* Read by everyone: one cache line each, so appends that move one
	 * do not invalidate the others in readers' caches. */
	uint64_t	 committed RING_CACHELINE;	/* release-stored */
	uint64_t	 oldest RING_CACHELINE;		/* release-stored */
	uint64_t	 tail RING_CACHELINE;	/* bytes below may change */

	/* Written under the lock only, but for hwm_persisted. */
	uint64_t	 head RING_CACHELINE;	/* where the next frame goes */
	uint64_t	 hwm_persisted;	/* atomic max, outside the lock */
	char		 boot_id[40];	/* boot that initialised the lock */
	pthread_mutex_t	 lock RING_CACHELINE;

	/*
	 * Each topic bucket's newest seq, so a resume on a quiet topic need
	 * not scan the slot index.  Added to version 1 in space that older
	 * builds leave zero and never write, so it is trusted only while
	 * every append since indexed_since was indexed: each append sets
	 * indexed to its last seq, and one that finds indexed != committed
	 * (an older build appended, or a writer died) moves indexed_since
	 * past it.  Written under the lock, before committed's release.
	 */
	uint64_t	 indexed RING_CACHELINE;
	uint64_t	 indexed_since;
	uint64_t	 newest[RING_NEWEST];
};

_Static_assert(sizeof(struct ring_header) <= RING_HEADER_SIZE,
    "the header must fit its page");

struct ring_slot {
	uint64_t	 seq;		/* 0: being written or never used */
	uint64_t	 offset;	/* logical data offset */
	uint32_t	 len;		/* frame bytes, id line included */
	uint32_t	 topic;
};

struct ring_layout {
	uint64_t	 topics_off;
	uint64_t	 slots_off;
	uint64_t	 data_off;
	uint64_t	 total;
};

struct ring {
	struct ring_header	*hdr;
	uint64_t		*evicted;	/* [RING_TOPICS] */
	struct ring_slot	*slots;
	unsigned char		*data;
	void			*map;
	size_t			 maplen;
	uint64_t		 size;
	uint32_t		 nslots;
	ring_notify_fn		 notify;
	void			*notify_arg;
	ring_hwm_fn		 hwm;
	void			*hwm_arg;
	char			 path[PATH_MAX];
};

#define LOAD_RELAXED(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELAXED(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_RELEASE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

static int __attribute__((format(printf, 3, 4)))
ring_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static uint64_t
ring_checksum(const struct ring_header *hdr)
{
	const unsigned char	*p = (const unsigned char *)hdr;
	uint64_t		 hash = 0xcbf29ce484222325ULL;
	size_t			 i;

	for (i = 0; i < offsetof(struct ring_header, checksum); i++) {
		hash ^= p[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static int
ring_geometry_valid(uint64_t size, uint32_t slots)
{
	return size >= RING_SIZE_MIN && size <= RING_SIZE_MAX &&
	    slots >= RING_SLOTS_MIN && slots <= RING_SLOTS_MAX;
}

/* Where each part lives; the bounds above keep every sum far from
 * overflowing. */
static void
ring_layout(uint64_t size, uint32_t slots, struct ring_layout *l)
{
	l->topics_off = RING_HEADER_SIZE;
	l->slots_off = l->topics_off + RING_TOPICS * sizeof(uint64_t);
	l->data_off = l->slots_off + (uint64_t)slots * sizeof(struct ring_slot);
	l->data_off = (l->data_off + RING_PAGE - 1) / RING_PAGE * RING_PAGE;
	l->total = l->data_off + size;
}

/* This boot's id, or "" where /proc is not readable. */
static void
ring_boot_id(char *id, size_t idlen)
{
	ssize_t	 n = -1;
	int	 fd;

	memset(id, 0, idlen);
	if ((fd = open(RING_BOOT_ID, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, id, idlen - 1);
		close(fd);
	}
	if (n <= 0)
		id[0] = '\0';
	else
		id[strcspn(id, "\n")] = '\0';
}

static int
ring_mutex_init(pthread_mutex_t *lock)
{
	pthread_mutexattr_t	 attr;
	int			 rc;

	if ((rc = pthread_mutexattr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_mutexattr_setpshared(&attr,
	    PTHREAD_PROCESS_SHARED)) == 0 &&
	    (rc = pthread_mutexattr_setrobust(&attr,
	    PTHREAD_MUTEX_ROBUST)) == 0)
		rc = pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc;
}

static uint64_t
ring_id_len(uint64_t seq)
{
	uint64_t	 digits = 1;

	while (seq >= 10) {
		seq /= 10;
		digits++;
	}
	return sizeof("id: ") - 1 + digits + 2;
}

static void
ring_bind(struct ring *ring, void *map, size_t maplen, uint64_t size,
    uint32_t slots)
{
	struct ring_layout	 l;

	ring_layout(size, slots, &l);
	ring->map = map;
	ring->maplen = maplen;
	ring->hdr = map;
	ring->evicted = (uint64_t *)((char *)map + l.topics_off);
	ring->slots = (struct ring_slot *)((char *)map + l.slots_off);
	ring->data = (unsigned char *)map + l.data_off;
	ring->size = size;
	ring->nslots = slots;
}

/*
 * Create an empty ring in a temporary file beside path and publish it
 * whole: with link(2) (replace == 0; returns 1 if path appeared meanwhile)
 * or rename(2) (replace == 1).  A crash leaves the old file or the new one,
 * never a half-initialised ring under path.
 */
static int
ring_create_file(const char *path, uint64_t size, uint32_t slots,
    uint64_t first_seq, int replace, char *err, size_t errlen)
{
	struct ring_layout	 l;
	struct ring_header	*hdr;
	char			 tmp[PATH_MAX];
	void			*map;
	int			 fd, rc, published = 0;

	ring_layout(size, slots, &l);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp))
		return ring_error(err, errlen, "ring %s: path too long", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return ring_error(err, errlen, "ring %s: create %s: %s", path,
		    tmp, strerror(errno));
	if (fchmod(fd, 0640) == -1) {
		rc = ring_error(err, errlen, "ring %s: fchmod: %s", path,
		    strerror(errno));
		goto out;
	}
	/* Reserve the blocks now: ENOSPC here, not SIGBUS on a later store. */
	if ((rc = posix_fallocate(fd, 0, (off_t)l.total)) != 0) {
		rc = ring_error(err, errlen, "ring %s: allocating %llu bytes: "
		    "%s", path, (unsigned long long)l.total, strerror(rc));
		goto out;
	}
	map = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = ring_error(err, errlen, "ring %s: mmap: %s", path,
		    strerror(errno));
		goto out;
	}
	hdr = map;
	memcpy(hdr->magic, RING_MAGIC, sizeof(hdr->magic));
	hdr->version = RING_VERSION;
	hdr->header_size = RING_HEADER_SIZE;
	hdr->size = size;
	hdr->slots = slots;
	hdr->topics = RING_TOPICS;
	arc4random_buf(&hdr->epoch, sizeof(hdr->epoch));
	hdr->created = (uint64_t)time(NULL);
	hdr->first_seq = first_seq;
	hdr->committed = first_seq - 1;
	hdr->oldest = first_seq;
	ring_boot_id(hdr->boot_id, sizeof(hdr->boot_id));
	rc = ring_mutex_init(&hdr->lock);
	/* The checksum last: a header without it is never valid. */
	hdr->checksum = ring_checksum(hdr);
	munmap(map, l.total);
	if (rc != 0) {
		rc = ring_error(err, errlen, "ring %s: pthread_mutex_init: %s",
		    path, strerror(rc));
		goto out;
	}
	if (fsync(fd) == -1) {
		rc = ring_error(err, errlen, "ring %s: fsync: %s", path,
		    strerror(errno));
		goto out;
	}
	if (replace)
		rc = rename(tmp, path);
	else
		rc = link(tmp, path);
	if (rc == -1 && !replace && errno == EEXIST)
		rc = 1;
	else if (rc == -1)
		rc = ring_error(err, errlen, "ring %s: %s: %s", path,
		    replace ? "rename" : "link", strerror(errno));
	else
		published = replace;
out:
	if (!published)
		unlink(tmp);
	close(fd);
	return rc;
}

/* Check the header read from a file of filelen bytes against the config. */
static int
ring_header_check(const char *path, const struct ring_header *hdr,
    off_t filelen, uint64_t size, uint32_t slots, char *err, size_t errlen)
{
	struct ring_layout	 l;

	if (filelen == 0)
		return ring_error(err, errlen, "ring %s: the file is empty"
		    RING_FIX, path);
	if (filelen < RING_HEADER_SIZE)
		return ring_error(err, errlen, "ring %s: truncated (%lld "
		    "bytes, shorter than its header)" RING_FIX, path,
		    (long long)filelen);
	if (memcmp(hdr->magic, RING_MAGIC, sizeof(hdr->magic)) != 0)
		return ring_error(err, errlen, "ring %s: not a ringcast ring "
		    "(bad magic)" RING_FIX, path);
	if (hdr->version != RING_VERSION)
		return ring_error(err, errlen, "ring %s: format version %u, "
		    "this build reads version %u" RING_FIX, path,
		    hdr->version, RING_VERSION);
	if (hdr->checksum != ring_checksum(hdr))
		return ring_error(err, errlen, "ring %s: corrupt header "
		    "(checksum mismatch)" RING_FIX, path);
	if (hdr->header_size != RING_HEADER_SIZE ||
	    hdr->topics != RING_TOPICS ||
	    !ring_geometry_valid(hdr->size, hdr->slots) ||
	    hdr->first_seq == 0)
		return ring_error(err, errlen, "ring %s: corrupt header "
		    "(impossible geometry)" RING_FIX, path);
	if (hdr->size != size)
		return ring_error(err, errlen, "ring %s: size %llu does not "
		    "match [ring] size %llu" RING_FIX, path,
		    (unsigned long long)hdr->size, (unsigned long long)size);
	if (hdr->slots != slots)
		return ring_error(err, errlen, "ring %s: slots %u does not "
		    "match [ring] slots %u" RING_FIX, path, hdr->slots, slots);
	ring_layout(size, slots, &l);
	if ((uint64_t)filelen != l.total)
		return ring_error(err, errlen, "ring %s: truncated or padded "
		    "(%lld bytes, the header says %llu)" RING_FIX, path,
		    (long long)filelen, (unsigned long long)l.total);
	return 0;
}

/*
 * Discard what a writer that died holding the lock left behind.  Only
 * records up to committed exist; the slots of the frames it wrote after
 * (one, or several of a batch) are cleared, the next seq is committed + 1
 * again (it was never visible), and head is recomputed from the committed
 * record, since the dead writer moved it past frames it never committed.
 * tail and oldest stay where the dead writer put them: both only grow, and
 * the bytes below its tail may be half-overwritten.  But oldest comes back
 * to committed + 1 if a ring_append_at died after making its hole
 * (ring_skip_to): those seqs were never visible, and the next append,
 * committed + 1, must be readable.  Idempotent.
 */
static void
ring_recover(struct ring *ring)
{
	struct ring_header	*hdr = ring->hdr;
	struct ring_slot	*slot;
	uint64_t		 committed = LOAD_RELAXED(&hdr->committed);
	uint64_t		 seq;

	for (seq = committed + 1; seq - committed <= ring->nslots; seq++) {
		slot = &ring->slots[seq % ring->nslots];
		if (seq == 0 || LOAD_RELAXED(&slot->seq) != seq)
			break;
		STORE_RELEASE(&slot->seq, 0);
	}
	if (LOAD_RELAXED(&hdr->oldest) > committed + 1)
		STORE_RELEASE(&hdr->oldest, committed + 1);
	slot = &ring->slots[committed % ring->nslots];
	if (committed >= hdr->first_seq &&
	    LOAD_RELAXED(&slot->seq) == committed)
		STORE_RELAXED(&hdr->head, LOAD_RELAXED(&slot->offset) +
		    LOAD_RELAXED(&slot->len));
}

/* Take the writer lock, repairing after a dead owner, waiting at most
 * timeout seconds (0: no bound); 0 or -1 with errno. */
static int
ring_lock(struct ring *ring, time_t timeout)
{
	struct timespec	 deadline;
	int		 rc;

	if (timeout > 0) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += timeout;
		rc = pthread_mutex_timedlock(&ring->hdr->lock, &deadline);
	} else
		rc = pthread_mutex_lock(&ring->hdr->lock);
	if (rc == EOWNERDEAD) {
		ring_recover(ring);
		rc = pthread_mutex_consistent(&ring->hdr->lock);
		if (rc != 0)
			pthread_mutex_unlock(&ring->hdr->lock);
	}
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

static void
ring_unlock(struct ring *ring)
{
	pthread_mutex_unlock(&ring->hdr->lock);
}

/* The mutable fields and every retained slot obey the invariants. */
static const char *
ring_state_check(const struct ring *ring)
{
	const struct ring_header	*hdr = ring->hdr;
	const struct ring_slot		*slot;
	uint64_t			 s, committed, oldest, head, tail;

	committed = LOAD_RELAXED(&hdr->committed);
	oldest = LOAD_RELAXED(&hdr->oldest);
	head = LOAD_RELAXED(&hdr->head);
	tail = LOAD_RELAXED(&hdr->tail);
	if (committed < hdr->first_seq - 1 || committed == UINT64_MAX)
		return "committed seq below the first";
	if (oldest < hdr->first_seq || oldest > committed + 1 ||
	    committed + 1 - oldest > ring->nslots)
		return "oldest seq out of range";
	if (tail > head || head - tail > ring->size)
		return "head and tail out of range";
	for (s = oldest; s <= committed; s++) {
		slot = &ring->slots[s % ring->nslots];
		if (slot->seq != s || slot->offset < tail ||
		    slot->offset > head || slot->len == 0 ||
		    slot->len > head - slot->offset ||
		    slot->offset % ring->size + slot->len > ring->size)
			return "slot index does not match the data";
	}
	return NULL;
}

/*
 * Is the lock's type word what ring_mutex_init writes?  Within one boot the
 * lock is used as the file holds it, and glibc takes a mutex down the path
 * its type word names: a corrupt one (a normal or elided mutex where a robust
 * one was made) crashes inside pthread_mutex_lock.  The type never changes
 * after initialisation, so compare it with a fresh mutex's.
 */
static int
ring_lock_kind_valid(const pthread_mutex_t *lock)
{
#ifdef __GLIBC__
	pthread_mutex_t	 fresh;
	int		 kind;

	if (ring_mutex_init(&fresh) != 0)
		return 1;
	/* Read before destroy, which marks the type word invalid. */
	kind = fresh.__data.__kind;
	pthread_mutex_destroy(&fresh);
	return lock->__data.__kind == kind;
#else
	(void)lock;
	return 1;
#endif
}

/*
 * The lock lives in the file, so after a reboot it may read as held by a
 * thread that no longer exists.  The first opener of each boot (serialised
 * by flock) initialises it afresh; no process of this boot can hold it yet.
 */
static int
ring_attach(struct ring *ring, int fd, char *err, size_t errlen)
{
	struct ring_header	*hdr = ring->hdr;
	char			 boot[sizeof(hdr->boot_id)];
	const char		*why;
	int			 rc = 0;

	if (flock(fd, LOCK_EX) == -1)
		return ring_error(err, errlen, "ring %s: flock: %s",
		    ring->path, strerror(errno));
	ring_boot_id(boot, sizeof(boot));
	if (memcmp(hdr->boot_id, boot, sizeof(boot)) != 0) {
		if ((rc = ring_mutex_init(&hdr->lock)) != 0)
			rc = ring_error(err, errlen, "ring %s: "
			    "pthread_mutex_init: %s", ring->path,
			    strerror(rc));
		else {
			ring_recover(ring);
			memcpy(hdr->boot_id, boot, sizeof(boot));
		}
	}
	flock(fd, LOCK_UN);
	if (rc != 0)
		return rc;
	if (!ring_lock_kind_valid(&hdr->lock))
		return ring_error(err, errlen, "ring %s: corrupt header "
		    "(writer lock)" RING_FIX, ring->path);
	/* Bounded: a file corrupted within this boot may hold a lock word
	 * that no thread will ever release. */
	if (ring_lock(ring, RING_OPEN_LOCK_WAIT) == -1)
		return ring_error(err, errlen, "ring %s: taking the writer "
		    "lock: %s (a stuck writer, or a corrupt file)" RING_FIX,
		    ring->path, strerror(errno));
	why = ring_state_check(ring);
	ring_unlock(ring);
	if (why != NULL)
		return ring_error(err, errlen, "ring %s: corrupt state (%s)"
		    RING_FIX, ring->path, why);
	return 0;
}

/* Validate and map an open ring file. */
static int
ring_map(struct ring *ring, int fd, uint64_t size, uint32_t slots,
    char *err, size_t errlen)
{
	union {
		struct ring_header	 hdr;
		char			 page[RING_HEADER_SIZE];
	}			 buf;
	struct stat		 st;
	ssize_t			 n;
	void			*map;

	if (fstat(fd, &st) == -1)
		return ring_error(err, errlen, "ring %s: fstat: %s",
		    ring->path, strerror(errno));
	memset(&buf, 0, sizeof(buf));
	n = pread(fd, &buf, sizeof(buf), 0);
	if (n == -1)
		return ring_error(err, errlen, "ring %s: read: %s",
		    ring->path, strerror(errno));
	if (ring_header_check(ring->path, &buf.hdr,
	    n < RING_HEADER_SIZE ? n : st.st_size, size, slots, err,
	    errlen) == -1)
		return -1;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return ring_error(err, errlen, "ring %s: mmap: %s",
		    ring->path, strerror(errno));
	ring_bind(ring, map, (size_t)st.st_size, size, slots);
	return ring_attach(ring, fd, err, errlen);
}

int
ring_open(struct ring **ringp, const char *path, uint64_t size,
    uint32_t slots, int flags, uint64_t seq_floor, char *err, size_t errlen)
{
	struct ring	*ring;
	int		 fd = -1, attempt, rc;

	*ringp = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!ring_geometry_valid(size, slots))
		return ring_error(err, errlen, "ring %s: size %llu or slots "
		    "%u out of range", path, (unsigned long long)size, slots);
	if (seq_floor == UINT64_MAX)
		return ring_error(err, errlen, "ring %s: no sequence number "
		    "left above %llu", path, (unsigned long long)seq_floor);
	/* Twice at most: a concurrent creator may publish between tries. */
	for (attempt = 0; attempt < 2 && fd == -1; attempt++) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd != -1 || errno != ENOENT || !(flags & RING_CREATE))
			break;
		if (ring_create_file(path, size, slots, seq_floor + 1, 0,
		    err, errlen) == -1)
			return -1;
	}
	if (fd == -1)
		return ring_error(err, errlen, "ring %s: open: %s", path,
		    strerror(errno));
	if ((ring = calloc(1, sizeof(*ring))) == NULL) {
		rc = ring_error(err, errlen, "ring %s: %s", path,
		    strerror(errno));
		close(fd);
		return rc;
	}
	strlcpy(ring->path, path, sizeof(ring->path));
	rc = ring_map(ring, fd, size, slots, err, errlen);
	close(fd);
	if (rc == -1) {
		ring_close(ring);
		return -1;
	}
	*ringp = ring;
	return 0;
}

void
ring_close(struct ring *ring)
{
	if (ring == NULL)
		return;
	if (ring->map != NULL)
		munmap(ring->map, ring->maplen);
	free(ring);
}

int
ring_reset(const char *path, uint64_t size, uint32_t slots,
    uint64_t seq_floor, char *err, size_t errlen)
{
	union {
		struct ring_header	 hdr;
		char			 page[RING_HEADER_SIZE];
	}			 buf;
	uint64_t		 floor = seq_floor;
	int			 fd;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!ring_geometry_valid(size, slots))
		return ring_error(err, errlen, "ring %s: size %llu or slots "
		    "%u out of range", path, (unsigned long long)size, slots);
	/* Keep seqs unique: start above whatever the old file handed out. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if (pread(fd, &buf, sizeof(buf), 0) == sizeof(buf) &&
		    memcmp(buf.hdr.magic, RING_MAGIC, 8) == 0 &&
		    buf.hdr.version == RING_VERSION &&
		    buf.hdr.checksum == ring_checksum(&buf.hdr)) {
			if (buf.hdr.committed > floor)
				floor = buf.hdr.committed;
			if (buf.hdr.hwm_persisted > floor)
				floor = buf.hdr.hwm_persisted;
		}
		close(fd);
	}
	if (floor == UINT64_MAX)
		return ring_error(err, errlen, "ring %s: no sequence number "
		    "left above %llu", path, (unsigned long long)floor);
	return ring_create_file(path, size, slots, floor + 1, 1, err, errlen);
}

void
ring_set_notify(struct ring *ring, ring_notify_fn fn, void *arg)
{
	ring->notify = fn;
	ring->notify_arg = arg;
}

void
ring_set_hwm(struct ring *ring, ring_hwm_fn fn, void *arg)
{
	ring->hwm = fn;
	ring->hwm_arg = arg;
}

/* Raise the header's record of the persisted mark to ceiling (atomic max:
 * appenders in several processes may race, and it must never go down). */
static void
ring_hwm_record(struct ring_header *hdr, uint64_t ceiling)
{
	uint64_t	 old = LOAD_RELAXED(&hdr->hwm_persisted);

	while (old < ceiling && !__atomic_compare_exchange_n(
	    &hdr->hwm_persisted, &old, ceiling, 1, __ATOMIC_RELEASE,
	    __ATOMIC_RELAXED))
		;
}

/* Persist a ceiling a step above last through the hook; never called with
 * the lock held, as the hook may do disk I/O.  0, or -1 if the hook failed
 * (it logs). */
static int
ring_hwm_persist(struct ring *ring, uint64_t last)
{
	uint64_t	 ceiling;

	ceiling = last > UINT64_MAX - RING_HWM_STEP ? UINT64_MAX :
	    last + RING_HWM_STEP;
	if (ring->hwm(ring->hwm_arg, ceiling) != 0)
		return -1;
	ring_hwm_record(ring->hdr, ceiling);
	return 0;
}

/*
 * Before taking the lock: if the seqs to hand out, up to last, come within
 * RING_HWM_MARGIN of the persisted ceiling, persist a new one.  last is
 * computed without the lock, so another appender may take these seqs
 * first; the check under the lock catches that.  0, or -1 if the hook
 * failed.
 */
static int
ring_hwm_reserve(struct ring *ring, uint64_t last)
{
	uint64_t	 persisted;

	persisted = LOAD_ACQUIRE(&ring->hdr->hwm_persisted);
	if (persisted >= last && persisted - last >= RING_HWM_MARGIN)
		return 0;
	return ring_hwm_persist(ring, last);
}

/*
 * Evict, oldest first, every event whose slot seq will reuse or whose bytes
 * lie below new_tail.  Each evicted event's topic entry is raised before
 * oldest moves (release), so whoever sees an event gone sees its gap.
 */
static void
ring_evict(struct ring *ring, uint64_t seq, uint64_t new_tail)
{
	struct ring_header	*hdr = ring->hdr;
	struct ring_slot	*slot;
	uint64_t		 oldest = LOAD_RELAXED(&hdr->oldest);

	while (oldest < seq) {
		slot = &ring->slots[oldest % ring->nslots];
		if (seq - oldest < ring->nslots &&
		    LOAD_RELAXED(&slot->offset) >= new_tail)
			break;
		STORE_RELAXED(&ring->evicted[LOAD_RELAXED(&slot->topic) %
		    RING_TOPICS], oldest);
		oldest++;
	}
	STORE_RELEASE(&hdr->oldest, oldest);
}

/*
 * Under the lock: write the frame of seq (> committed; the caller checked
 * it is at most a quarter of the ring) at head, evicting what it displaces,
 * and fill its slot.  Moves head but not committed: the caller publishes
 * committed once, after its last frame, so readers see all of its frames
 * or none.
 */
static void
ring_write_frame(struct ring *ring, uint64_t seq, uint32_t topic,
    const void *body, size_t len)
{
	struct ring_header	*hdr = ring->hdr;
	struct ring_slot	*slot;
	unsigned char		*dst;
	uint64_t		 frame, start, end, new_tail, idlen;

	idlen = ring_id_len(seq);
	frame = len + idlen;

	/* A frame never wraps: skip to the next lap if it would. */
	start = LOAD_RELAXED(&hdr->head);
	if (start % ring->size + frame > ring->size)
		start += ring->size - start % ring->size;
	end = start + frame;
	new_tail = end > ring->size ? end - ring->size : 0;
	if (new_tail < LOAD_RELAXED(&hdr->tail))
		new_tail = LOAD_RELAXED(&hdr->tail);
	ring_evict(ring, seq, new_tail);

	/*
	 * Publish the new tail before the first byte of the region changes:
	 * a reader that copies any byte we write then sees this tail (or a
	 * later one) when it re-reads tail after its copy, and drops the
	 * frame.  The release fence orders the tail store before the plain
	 * data stores, as smp_wmb() does in a Linux seqlock.
	 */
	STORE_RELEASE(&hdr->tail, new_tail);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	dst = ring->data + start % ring->size;
	memcpy(dst, body, len);
	sse_encode_id((char *)dst + len, idlen, seq);

	/*
	 * The slot is a seqlock of its own: 0 while its fields change.  The
	 * 0 is release-stored too, so a reader that finds it (and calls the
	 * event evicted) also sees the evicted table and oldest above.
	 */
	slot = &ring->slots[seq % ring->nslots];
	STORE_RELEASE(&slot->seq, 0);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	STORE_RELAXED(&slot->offset, start);
	STORE_RELAXED(&slot->len, (uint32_t)frame);
	STORE_RELAXED(&slot->topic, topic);
	STORE_RELEASE(&slot->seq, seq);
	STORE_RELAXED(&hdr->head, end);
	STORE_RELAXED(&hdr->newest[topic % RING_NEWEST], seq);
}

/*
 * Do the frames of ev[n], numbered from first, fit: each at most a quarter
 * of the ring, all at most half?  Then no frame of the batch evicts another
 * (with the padding of one lap, they span less than the ring).
 */
static int
ring_batch_fits(const struct ring *ring, const struct ring_event *ev,
    size_t n, uint64_t first)
{
	uint64_t	 frame, total = 0;
	size_t		 i;

	if (n > ring->nslots)
		return 0;
	for (i = 0; i < n; i++) {
		if (ev[i].len > ring->size / 4)
			return 0;
		frame = ev[i].len + ring_id_len(first + i);
		if (frame > ring->size / 4 || frame > ring->size / 2 - total)
			return 0;
		total += frame;
	}
	return 1;
}

/*
 * Under the lock: make the next seq `at` (> committed + 1), as if every
 * seq between had been appended and evicted.  Everything retained goes
 * too: a reader with a cursor below `at` must find its next event evicted
 * (a gap), never a frame past the hole.  Each topic's evicted entry is
 * raised before oldest moves (release), as ring_evict does.
 */
static void
ring_skip_to(struct ring *ring, uint64_t at)
{
	struct ring_header	*hdr = ring->hdr;
	size_t			 i;

	for (i = 0; i < RING_TOPICS; i++) {
		if (LOAD_RELAXED(&ring->evicted[i]) < at - 1)
			STORE_RELAXED(&ring->evicted[i], at - 1);
	}
	STORE_RELEASE(&hdr->tail, LOAD_RELAXED(&hdr->head));
	STORE_RELEASE(&hdr->oldest, at);
}

/*
 * Take the lock with the seqs to hand out covered by the persisted mark
 * (see ring_hwm_reserve).  They are committed + 1 and on, or with at != 0
 * `at` and on (-1 with EEXIST when at <= committed).  If they are not
 * covered (a burst raced past the reservation), unlock, persist, and try
 * again, RING_HWM_TRIES times at most.  A failing hook is called once and
 * the append goes on.  Returns 0 with the lock held and *first set, or -1
 * with errno.
 */
static int
ring_lock_range(struct ring *ring, size_t n, uint64_t at, uint64_t *first)
{
	struct ring_header	*hdr = ring->hdr;
	uint64_t		 next, last;
	int			 tries, hwm_failed = 0;

	if (ring->hwm != NULL) {
		next = at != 0 ? at : LOAD_RELAXED(&hdr->committed) + 1;
		if (next != 0 && n - 1 <= UINT64_MAX - next) {
			last = next + (n - 1);
			hwm_failed = ring_hwm_reserve(ring, last) == -1;
		}
	}
	for (tries = 1;; tries++) {
		if (ring_lock(ring, 0) == -1)
			return -1;
		next = LOAD_RELAXED(&hdr->committed) + 1;
		if (at != 0 && at < next) {
			ring_unlock(ring);
			errno = EEXIST;
			return -1;
		}
		if (at != 0)
			next = at;
		if (next == 0 || n - 1 > UINT64_MAX - next) {
			ring_unlock(ring);
			errno = EOVERFLOW;
			return -1;
		}
		if (ring->hwm == NULL || hwm_failed ||
		    tries == RING_HWM_TRIES ||
		    next + (n - 1) <= LOAD_RELAXED(&hdr->hwm_persisted))
			break;
		ring_unlock(ring);
		hwm_failed = ring_hwm_persist(ring, next + (n - 1)) == -1;
	}
	*first = next;
	return 0;
}

/* ring_append_batch and ring_append_at: at == 0 for the next seqs. */
static int
ring_append_range(struct ring *ring, const struct ring_event *ev, size_t n,
    uint64_t at, uint64_t *first_seq)
{
	uint64_t	 first;
	size_t		 i;

	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Refuse before taking the lock or persisting anything; the exact
	 * check, with the id lines, is below. */
	if (!ring_batch_fits(ring, ev, n, at)) {
		errno = EMSGSIZE;
		return -1;
	}
	if (ring_lock_range(ring, n, at, &first) == -1)
		return -1;
	if (!ring_batch_fits(ring, ev, n, first)) {
		ring_unlock(ring);
		errno = EMSGSIZE;
		return -1;
	}
	if (first > LOAD_RELAXED(&ring->hdr->committed) + 1)
		ring_skip_to(ring, first);
	if (LOAD_RELAXED(&ring->hdr->indexed) != first - 1)
		STORE_RELAXED(&ring->hdr->indexed_since, first);
	for (i = 0; i < n; i++)
		ring_write_frame(ring, first + i, ev[i].topic, ev[i].body,
		    ev[i].len);
	STORE_RELAXED(&ring->hdr->indexed, first + (n - 1));
	/* Readers acquire committed, then the slot, then the data. */
	STORE_RELEASE(&ring->hdr->committed, first + (n - 1));
	ring_unlock(ring);

	if (ring->notify != NULL)
		ring->notify(ring->notify_arg, first + (n - 1));
	*first_seq = first;
	return 0;
}

int
ring_append_batch(struct ring *ring, const struct ring_event *ev, size_t n,
    uint64_t *first_seq)
{
	return ring_append_range(ring, ev, n, 0, first_seq);
}

int
ring_append_at(struct ring *ring, const struct ring_event *ev, size_t n,
    uint64_t first)
{
	uint64_t	 got;

	if (first == 0) {
		errno = EINVAL;
		return -1;
	}
	return ring_append_range(ring, ev, n, first, &got);
}

int
ring_append(struct ring *ring, uint32_t topic, const void *body, size_t len,
    uint64_t *seq)
{
	struct ring_event	 ev = { topic, body, len };

	return ring_append_batch(ring, &ev, 1, seq);
}

uint64_t
ring_committed(const struct ring *ring)
{
	return LOAD_ACQUIRE(&ring->hdr->committed);
}

uint64_t
ring_oldest(const struct ring *ring)
{
	return LOAD_ACQUIRE(&ring->hdr->oldest);
}

/*
 * Read slot seq's fields, seqlock-validated; returns 0, or -1 if the slot
 * no longer (or not yet) holds seq.
 */
static int
ring_slot_load(const struct ring *ring, uint64_t seq, struct ring_frame *f,
    uint64_t *offset)
{
	const struct ring_slot	*slot = &ring->slots[seq % ring->nslots];

	if (LOAD_ACQUIRE(&slot->seq) != seq)
		return -1;
	*offset = LOAD_RELAXED(&slot->offset);
	f->seq = seq;
	f->len = LOAD_RELAXED(&slot->len);
	f->topic = LOAD_RELAXED(&slot->topic);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return LOAD_RELAXED(&slot->seq) == seq ? 0 : -1;
}

enum ring_status
ring_read(const struct ring *ring, uint64_t seq, void *buf, size_t cap,
    struct ring_frame *frame)
{
	struct ring_frame	 f;
	uint64_t		 offset;

	if (seq > LOAD_ACQUIRE(&ring->hdr->committed))
		return RING_NOT_YET;
	if (seq < LOAD_ACQUIRE(&ring->hdr->oldest) ||
	    ring_slot_load(ring, seq, &f, &offset) == -1)
		return RING_EVICTED;
	if (f.len > cap) {
		*frame = f;
		return RING_NOSPACE;
	}
	/* A slot torn by a corrupt file must not send memcpy astray. */
	if (offset % ring->size + f.len > ring->size)
		return RING_EVICTED;
	memcpy(buf, ring->data + offset % ring->size, f.len);
	/*
	 * Order the copy before the re-checks (smp_rmb() in a seqlock): if
	 * any copied byte came from a writer reusing this region, that
	 * writer's tail store is visible below and offset < tail.
	 */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (LOAD_RELAXED(&ring->slots[seq % ring->nslots].seq) != seq ||
	    offset < LOAD_ACQUIRE(&ring->hdr->tail))
		return RING_EVICTED;
	*frame = f;
	return RING_OK;
}

static int
ring_topic_wanted(uint32_t topic, const uint32_t *topics, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++) {
		if (topics[i] == topic)
			return 1;
	}
	return 0;
}

/*
 * Is none of topics[n] (n > 0) in (after, committed], by the newest-seq
 * table alone?  Read after acquiring committed, every value is at least as
 * new as committed's append; newer ones only make the answer "maybe".
 */
static int
ring_topics_quiet(const struct ring *ring, uint64_t after,
    uint64_t committed, const uint32_t *topics, size_t n)
{
	const struct ring_header	*hdr = ring->hdr;
	size_t				 i;

	if (n == 0 || after + 1 < LOAD_RELAXED(&hdr->indexed_since))
		return 0;
	for (i = 0; i < n; i++) {
		if (LOAD_RELAXED(&hdr->newest[topics[i] % RING_NEWEST]) >
		    after)
			return 0;
	}
	/* Last: every append up to committed was indexed. */
	return LOAD_ACQUIRE(&hdr->indexed) == committed;
}

enum ring_status
ring_next(const struct ring *ring, uint64_t after, const uint32_t *topics,
    size_t n, struct ring_frame *frame)
{
	struct ring_frame	 f;
	uint64_t		 committed, seq, offset;

	committed = LOAD_ACQUIRE(&ring->hdr->committed);
	if (after >= committed) {
		frame->seq = after;
		return RING_NOT_YET;
	}
	if (after + 1 < LOAD_ACQUIRE(&ring->hdr->oldest))
		return RING_EVICTED;
	if (ring_topics_quiet(ring, after, committed, topics, n)) {
		frame->seq = committed;
		return RING_NOT_YET;
	}
	for (seq = after + 1; seq <= committed; seq++) {
		/* seq <= committed, so a slot that no longer holds it
		 * means it was evicted, and after + 1 before it. */
		if (ring_slot_load(ring, seq, &f, &offset) == -1)
			return RING_EVICTED;
		if (ring_topic_wanted(f.topic, topics, n)) {
			*frame = f;
			return RING_OK;
		}
	}
	frame->seq = committed;
	return RING_NOT_YET;
}

uint64_t
ring_topic_evicted(const struct ring *ring, uint32_t topic)
{
	uint64_t	 evicted;

	evicted = LOAD_ACQUIRE(&ring->evicted[topic % RING_TOPICS]);
	/* Whatever came before this ring's first seq is gone for every
	 * topic (a reset ring). */
	if (evicted < ring->hdr->first_seq - 1)
		evicted = ring->hdr->first_seq - 1;
	return evicted;
}

void
ring_get_info(const struct ring *ring, struct ring_info *info)
{
	const struct ring_header	*hdr = ring->hdr;
	struct ring_frame		 f;
	uint64_t			 offset, head;

	memset(info, 0, sizeof(*info));
	info->epoch = hdr->epoch;
	info->committed = LOAD_ACQUIRE(&hdr->committed);
	info->oldest = LOAD_ACQUIRE(&hdr->oldest);
	info->size = ring->size;
	info->slots = ring->nslots;
	info->version = hdr->version;
	info->created = hdr->created;
	head = LOAD_RELAXED(&hdr->head);
	if (info->oldest <= info->committed &&
	    ring_slot_load(ring, info->oldest, &f, &offset) == 0 &&
	    offset <= head && head - offset <= ring->size)
		info->used = head - offset;
}

int
ring_sync(struct ring *ring)
{
	return msync(ring->map, ring->maplen, MS_SYNC);
}

const char *
ring_path(const struct ring *ring)
{
	return ring->path;
}

void
ring_topic_stats(const struct ring *ring, uint32_t topic, uint64_t *newest,
    uint64_t *retained)
{
	struct ring_frame	 f;
	uint64_t		 seq, committed, offset;

	*newest = 0;
	*retained = 0;
	committed = LOAD_ACQUIRE(&ring->hdr->committed);
	for (seq = LOAD_ACQUIRE(&ring->hdr->oldest); seq <= committed; seq++) {
		/* A slot reused meanwhile was evicted: not retained. */
		if (ring_slot_load(ring, seq, &f, &offset) == -1 ||
		    f.topic != topic)
			continue;
		*newest = seq;
		(*retained)++;
	}
}

static int
ring_topic_stat_cmp(const void *key, const void *elem)
{
	uint32_t				 topic = *(const uint32_t *)key;
	const struct ring_topic_stat		*st = elem;

	return topic < st->topic ? -1 : topic > st->topic;
}

uint64_t
ring_topics_scan(const struct ring *ring, struct ring_topic_stat *st,
    size_t n, uint64_t after)
{
	struct ring_topic_stat	*hit;
	struct ring_frame	 f;
	uint64_t		 seq, committed, offset;
	size_t			 i;

	for (i = 0; i < n; i++)
		st[i].newest = st[i].retained = st[i].recent = 0;
	committed = LOAD_ACQUIRE(&ring->hdr->committed);
	if (n == 0)
		return committed;
	for (seq = LOAD_ACQUIRE(&ring->hdr->oldest); seq <= committed; seq++) {
		/* A slot reused meanwhile was evicted: not retained. */
		if (ring_slot_load(ring, seq, &f, &offset) == -1 ||
		    (hit = bsearch(&f.topic, st, n, sizeof(*st),
		    ring_topic_stat_cmp)) == NULL)
			continue;
		hit->newest = seq;
		hit->retained++;
		if (seq > after)
			hit->recent++;
	}
	return committed;
}
