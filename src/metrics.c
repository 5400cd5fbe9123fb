/*
 * metrics: shared per-worker slots and their Prometheus rendering.  Writers
 * use relaxed atomics on their own slot only; readers sum over slots, so a
 * scrape is a moment's snapshot, never a torn 64-bit value.
 */
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "ringcast/metrics.h"
#include "ringcast/ring.h"

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, n)	__atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)

static size_t
metrics_size(unsigned int nslots)
{
	return sizeof(struct metrics) +
	    (size_t)nslots * sizeof(struct metrics_slot);
}

/* A memory file, not an anonymous map: a binary upgrade passes it to the
 * new master across exec. */
struct metrics *
metrics_create(unsigned int nslots)
{
	struct metrics	*m;
	size_t		 size = metrics_size(nslots);
	int		 fd, saved;

	if ((fd = memfd_create("ringcast-metrics", MFD_CLOEXEC)) == -1)
		return NULL;
	if (ftruncate(fd, (off_t)size) == -1 ||
	    (m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0)) == MAP_FAILED) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	m->nslots = nslots;
	m->memfd = fd;
	m->layout = METRICS_LAYOUT;
	return m;
}

struct metrics *
metrics_attach(int fd, unsigned int nslots)
{
	struct metrics	*m;
	struct stat	 st;
	size_t		 size = metrics_size(nslots);

	if (fstat(fd, &st) == -1 || st.st_size < 0 ||
	    (size_t)st.st_size != size) {
		errno = EINVAL;
		return NULL;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (m->nslots != nslots || m->memfd != fd ||
	    m->layout != METRICS_LAYOUT) {
		munmap(m, size);
		errno = EINVAL;
		return NULL;
	}
	return m;
}

void
metrics_slot_reset(struct metrics_slot *slot)
{
	int	 k;

	for (k = 0; k < METRICS_CONN_KINDS; k++)
		__atomic_store_n(&slot->conns[k], 0, __ATOMIC_RELAXED);
	memset(slot->addr_conns, 0, sizeof(slot->addr_conns));
	__atomic_store_n(&slot->active, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&slot->ready, 0, __ATOMIC_RELEASE);
	slot->pid = 0;
}

void
metrics_set(uint64_t *figure, uint64_t value)
{
	__atomic_store_n(figure, value, __ATOMIC_RELAXED);
}

void
metrics_add(struct metrics_slot *slot, enum metrics_counter c, uint64_t n)
{
	ADD(slot->counters[c], n);
}

void
metrics_conn_add(struct metrics_slot *slot, enum metrics_conn_kind k,
    int delta)
{
	ADD(slot->conns[k], (uint64_t)(int64_t)delta);
}

uint32_t
metrics_addr_bucket(const struct sockaddr_storage *ss)
{
	const unsigned char	*p;
	size_t			 len, i;
	uint32_t		 h = 2166136261u;

	if (ss->ss_family == AF_INET) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in *)ss)->sin_addr;
		len = 4;
	} else if (ss->ss_family == AF_INET6) {
		p = (const unsigned char *)
		    &((const struct sockaddr_in6 *)ss)->sin6_addr;
		len = 16;
	} else
		return 0;
	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % METRICS_ADDR_BUCKETS;
}

void
metrics_addr_add(struct metrics_slot *slot, uint32_t bucket, int delta)
{
	__atomic_fetch_add(&slot->addr_conns[bucket], (uint16_t)delta,
	    __ATOMIC_RELAXED);
}

uint64_t
metrics_conns_total(const struct metrics *m)
{
	uint64_t	 total = 0;
	int		 k;

	for (k = 0; k < METRICS_CONN_KINDS; k++)
		total += metrics_conns_kind_total(m, k);
	return total;
}

uint64_t
metrics_addr_total(const struct metrics *m, uint32_t bucket)
{
	uint64_t	 total = 0;
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++)
		total += LOAD(m->slots[i].addr_conns[bucket]);
	return total;
}

uint64_t
metrics_counter_total(const struct metrics *m, enum metrics_counter c)
{
	uint64_t	 total = 0;
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++)
		total += LOAD(m->slots[i].counters[c]);
	return total;
}

uint64_t
metrics_conns_kind_total(const struct metrics *m, enum metrics_conn_kind k)
{
	uint64_t	 total = 0;
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++)
		total += LOAD(m->slots[i].conns[k]);
	return total;
}

void
metrics_sample_memory(struct metrics_slot *slot)
{
	FILE		*fp;
	unsigned long	 pages_total, pages_resident;

#ifdef HAVE_JEMALLOC
	uint64_t	 epoch = 1;
	size_t		 value, len = sizeof(value);

	len = sizeof(epoch);
	mallctl("epoch", &epoch, &len, &epoch, len);
	len = sizeof(value);
	if (mallctl("stats.allocated", &value, &len, NULL, 0) == 0)
		__atomic_store_n(&slot->jemalloc_allocated, value,
		    __ATOMIC_RELAXED);
	len = sizeof(value);
	if (mallctl("stats.resident", &value, &len, NULL, 0) == 0)
		__atomic_store_n(&slot->jemalloc_resident, value,
		    __ATOMIC_RELAXED);
#endif
	if ((fp = fopen("/proc/self/statm", "r")) == NULL)
		return;
	if (fscanf(fp, "%lu %lu", &pages_total, &pages_resident) == 2)
		__atomic_store_n(&slot->rss_bytes,
		    (uint64_t)pages_resident * (uint64_t)sysconf(_SC_PAGESIZE),
		    __ATOMIC_RELAXED);
	fclose(fp);
}

static const struct {
	const char	*name;
	const char	*help;
} counter_names[METRICS_COUNTERS] = {
	{ "ringcast_events_published_total", "Events appended to the ring." },
	{ "ringcast_frames_delivered_total", "Event frames written to subscribers." },
	{ "ringcast_bytes_delivered_total", "Stream bytes written to subscribers." },
	{ "ringcast_replays_total", "Streams that resumed from a Last-Event-ID." },
	{ "ringcast_gaps_total", "ringcast-gap events sent." },
	{ "ringcast_slow_consumer_closes_total", "Streams closed because their cursor was evicted." },
	{ "ringcast_soft_rejects_total", "Streams answered 200 with retry: and closed (full, draining, catalog trouble)." },
	{ "ringcast_requests_total", "HTTP requests handled." },
	{ "ringcast_responses_4xx_total", "Requests answered with a 4xx status." },
	{ "ringcast_responses_5xx_total", "Requests answered with a 5xx status." },
	{ "ringcast_heartbeats_total", "Heartbeat comments sent." },
	{ "ringcast_streams_drained_total", "Streams ended at a frame boundary by a drain." },
	{ "ringcast_wakeups_total", "Times a publisher woke a worker that follows the topic." },
	{ "ringcast_connections_accepted_total", "Public connections accepted within the connection caps." },
	{ "ringcast_connections_rejected_total", "Public connections accepted over a connection cap (answered 503 or a soft reject)." },
	{ "ringcast_streams_expired_total", "Streams ended at their JWT's exp." },
	{ "ringcast_jwt_refused_total", "JWTs refused: signature, algorithm, time or claims." },
	{ "ringcast_streams_handed_total", "Streams a retiring worker handed to the new generation on reload." },
	{ "ringcast_handoff_fallbacks_total", "Streams a retiring worker ended with retry: instead of handing them over." },
	{ "ringcast_cluster_published_total", "Publishes JetStream acknowledged (cluster mode)." },
	{ "ringcast_cluster_publish_refused_total", "Publishes answered 503: NATS unreachable, or no acknowledgement in time." },
};

static const char *const kind_names[METRICS_CONN_KINDS] = {
	"stream", "request", "admin"
};

/* One gauge per live worker, from the uint64_t at offset in its slot. */
static int
metrics_render_gauge(const struct metrics *m, struct buf *out,
    const char *name, const char *help, size_t offset)
{
	const uint64_t	*value;
	unsigned int	 i;
	int		 rc;

	rc = buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help,
	    name);
	for (i = 0; i < m->nslots; i++) {
		if (!__atomic_load_n(&m->slots[i].active, __ATOMIC_ACQUIRE))
			continue;
		value = (const uint64_t *)((const char *)&m->slots[i] + offset);
		rc |= buf_printf(out, "%s{worker=\"%u\"} %llu\n", name, i,
		    (unsigned long long)__atomic_load_n(value,
		    __ATOMIC_RELAXED));
	}
	return rc;
}

/* The archiver's figures; the lag is the ring's newest id less the
 * archiver's position. */
static int
metrics_render_archiver(const struct metrics *m, const struct ring *ring,
    struct buf *out)
{
	const struct metrics_archiver	*a = &m->archiver;
	uint64_t			 archived, committed, lag = 0;

	/* A dead archiver's lag grows; one that never reported has none. */
	archived = LOAD(a->archived);
	if (ring != NULL && (committed = ring_committed(ring)) > archived &&
	    (archived != 0 || LOAD(a->running)))
		lag = committed - archived;
	return buf_printf(out,
	    "# HELP ringcast_history_archived_seq Newest id the archiver has "
	    "looked at.\n# TYPE ringcast_history_archived_seq gauge\n"
	    "ringcast_history_archived_seq %llu\n"
	    "# HELP ringcast_history_lag_events Ring ids not yet archived "
	    "(committed - archived).\n"
	    "# TYPE ringcast_history_lag_events gauge\n"
	    "ringcast_history_lag_events %llu\n"
	    "# HELP ringcast_history_stored_total Events written to history."
	    "\n# TYPE ringcast_history_stored_total counter\n"
	    "ringcast_history_stored_total %llu\n"
	    "# HELP ringcast_history_trimmed_total Events deleted from "
	    "history by count or age.\n"
	    "# TYPE ringcast_history_trimmed_total counter\n"
	    "ringcast_history_trimmed_total %llu\n"
	    "# HELP ringcast_history_dropped_total Events of history topics "
	    "not written: the history map was full.\n"
	    "# TYPE ringcast_history_dropped_total counter\n"
	    "ringcast_history_dropped_total %llu\n"
	    "# HELP ringcast_history_map_full_total Times the history map was "
	    "found full.\n# TYPE ringcast_history_map_full_total counter\n"
	    "ringcast_history_map_full_total %llu\n"
	    "# HELP ringcast_history_full 1 while history does not grow (map "
	    "full).\n# TYPE ringcast_history_full gauge\n"
	    "ringcast_history_full %llu\n"
	    "# HELP ringcast_archiver_restarts_total Archiver processes "
	    "restarted after they died.\n"
	    "# TYPE ringcast_archiver_restarts_total counter\n"
	    "ringcast_archiver_restarts_total %llu\n",
	    (unsigned long long)archived, (unsigned long long)lag,
	    (unsigned long long)LOAD(a->stored),
	    (unsigned long long)LOAD(a->trimmed),
	    (unsigned long long)LOAD(a->dropped),
	    (unsigned long long)LOAD(a->map_full),
	    (unsigned long long)LOAD(a->full),
	    (unsigned long long)LOAD(a->restarts));
}

/* The cluster relay's figures, only when [cluster] nats is set. */
static int
metrics_render_cluster(const struct metrics *m, struct buf *out)
{
	const struct metrics_cluster	*c = &m->cluster;
	static const struct {
		const char	*name, *type, *help;
		size_t		 offset;
	} f[] = {
#define F(n, t, h, m) { "ringcast_cluster_" n, t, h, \
	offsetof(struct metrics_cluster, m) }
		F("connected", "gauge", "1 while the relay's NATS connection "
		    "is up.", connected),
		F("consuming", "gauge", "1 while the relay's JetStream "
		    "consumer runs.", consuming),
		F("conflict", "gauge", "1 when the ring holds ids the stream "
		    "does not (see ringcastd(8)).", conflict),
		F("base", "gauge", "Id of the stream's sequence 0 (id = base "
		    "+ sequence).", base),
		F("last_id", "gauge", "Newest id the relay appended to the "
		    "ring.", last_id),
		F("stream_last_id", "gauge", "Newest id of the stream, as "
		    "last seen.", stream_last),
		F("appended_total", "counter", "Events the relay appended "
		    "to the ring.", appended),
		F("duplicates_total", "counter", "Messages whose id the ring "
		    "had already.", duplicates),
		F("gaps_total", "counter", "Holes in the ids this node got "
		    "(a new epoch, or the stream had dropped them).", gaps),
		F("epochs_total", "counter", "Times the stream was found made "
		    "anew.", epochs),
		F("unknown_topics_total", "counter", "Events of topics this "
		    "node's catalog lacks (kept, not delivered).",
		    unknown_topics),
		F("disconnects_total", "counter", "Times the relay lost "
		    "NATS.", disconnects),
		F("catalog_applied_total", "counter", "Catalog changes "
		    "applied from the cluster's bucket.", catalog_applied),
		F("relay_restarts_total", "counter", "Relay processes "
		    "restarted after they died.", restarts),
#undef F
	};
	const uint64_t	*v;
	uint64_t	 lag = 0;
	size_t		 i;
	int		 rc = 0;

	if (!LOAD(c->enabled))
		return 0;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		v = (const uint64_t *)((const char *)c + f[i].offset);
		rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
		    f[i].name, f[i].help, f[i].name, f[i].type, f[i].name,
		    (unsigned long long)LOAD(*v));
	}
	if (LOAD(c->stream_last) > LOAD(c->last_id))
		lag = LOAD(c->stream_last) - LOAD(c->last_id);
	rc |= buf_printf(out, "# HELP ringcast_cluster_lag_events Stream ids "
	    "not yet in this node's ring.\n"
	    "# TYPE ringcast_cluster_lag_events gauge\n"
	    "ringcast_cluster_lag_events %llu\n", (unsigned long long)lag);
	return rc;
}

int
metrics_render(const struct metrics *m, const struct ring *ring,
    struct buf *out)
{
	struct ring_info	 info;
	unsigned int		 i;
	int			 c, k, rc = 0;

	rc |= buf_printf(out, "# HELP ringcast_connections Open connections "
	    "by worker and kind.\n# TYPE ringcast_connections gauge\n");
	for (i = 0; i < m->nslots; i++) {
		if (!__atomic_load_n(&m->slots[i].active, __ATOMIC_ACQUIRE))
			continue;
		for (k = 0; k < METRICS_CONN_KINDS; k++)
			rc |= buf_printf(out, "ringcast_connections{worker="
			    "\"%u\",kind=\"%s\"} %llu\n", i, kind_names[k],
			    (unsigned long long)LOAD(m->slots[i].conns[k]));
	}
	for (c = 0; c < METRICS_COUNTERS; c++) {
		rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n",
		    counter_names[c].name, counter_names[c].help,
		    counter_names[c].name);
		for (i = 0; i < m->nslots; i++) {
			if (m->slots[i].pid == 0 &&
			    LOAD(m->slots[i].counters[c]) == 0)
				continue;
			rc |= buf_printf(out, "%s{worker=\"%u\"} %llu\n",
			    counter_names[c].name, i, (unsigned long long)
			    LOAD(m->slots[i].counters[c]));
		}
	}
	rc |= metrics_render_gauge(m, out, "ringcast_worker_resident_bytes",
	    "Resident set size of each worker.",
	    offsetof(struct metrics_slot, rss_bytes));
	rc |= metrics_render_gauge(m, out, "ringcast_jemalloc_allocated_bytes",
	    "Bytes allocated by each worker (jemalloc stats.allocated).",
	    offsetof(struct metrics_slot, jemalloc_allocated));
	rc |= metrics_render_gauge(m, out, "ringcast_jemalloc_resident_bytes",
	    "Bytes resident in each worker's allocator (jemalloc "
	    "stats.resident).", offsetof(struct metrics_slot,
	    jemalloc_resident));
	rc |= metrics_render_archiver(m, ring, out);
	rc |= metrics_render_cluster(m, out);
	if (ring != NULL) {
		ring_get_info(ring, &info);
		rc |= buf_printf(out,
		    "# HELP ringcast_ring_committed_seq Newest event id.\n"
		    "# TYPE ringcast_ring_committed_seq gauge\n"
		    "ringcast_ring_committed_seq %llu\n"
		    "# HELP ringcast_ring_oldest_seq Oldest retained event id.\n"
		    "# TYPE ringcast_ring_oldest_seq gauge\n"
		    "ringcast_ring_oldest_seq %llu\n"
		    "# HELP ringcast_ring_used_bytes Bytes held by retained "
		    "events.\n# TYPE ringcast_ring_used_bytes gauge\n"
		    "ringcast_ring_used_bytes %llu\n"
		    "# HELP ringcast_ring_size_bytes Ring data capacity.\n"
		    "# TYPE ringcast_ring_size_bytes gauge\n"
		    "ringcast_ring_size_bytes %llu\n"
		    "# HELP ringcast_ring_slots Ring slot capacity.\n"
		    "# TYPE ringcast_ring_slots gauge\n"
		    "ringcast_ring_slots %u\n",
		    (unsigned long long)info.committed,
		    (unsigned long long)info.oldest,
		    (unsigned long long)info.used,
		    (unsigned long long)info.size, info.slots);
	}
	return rc == 0 ? 0 : -1;
}
