/*
 * metrics: the state the master shares with every worker through one
 * anonymous MAP_SHARED mapping made before fork: a slot per worker with its
 * counters, its connection gauges and per-address connection counts (so caps
 * hold across workers and a dead worker's share is simply zeroed).  Each slot
 * has one writer, the worker that owns it.
 */
#ifndef RINGCAST_METRICS_H
#define RINGCAST_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ringcast/http.h"

struct ring;

#define METRICS_ADDR_BUCKETS	16384

enum metrics_conn_kind {
	METRICS_CONN_STREAM = 0,
	METRICS_CONN_REQUEST,
	METRICS_CONN_ADMIN,
	METRICS_CONN_KINDS
};

enum metrics_counter {
	METRICS_EVENTS_PUBLISHED = 0,
	METRICS_FRAMES_DELIVERED,
	METRICS_BYTES_DELIVERED,
	METRICS_REPLAYS,
	METRICS_GAPS,
	METRICS_SLOW_CLOSES,
	METRICS_SOFT_REJECTS,
	METRICS_REQUESTS,
	METRICS_ERRORS_4XX,
	METRICS_ERRORS_5XX,
	METRICS_HEARTBEATS,
	METRICS_STREAMS_DRAINED,
	METRICS_WAKEUPS,
	METRICS_CONNECTIONS_ACCEPTED,
	METRICS_CONNECTIONS_REJECTED,
	METRICS_AUTH_EXPIRED,
	METRICS_JWT_REFUSED,
	METRICS_STREAMS_HANDED,
	METRICS_HANDOFF_FALLBACKS,
	METRICS_CLUSTER_PUBLISHED,	/* acknowledged by JetStream */
	METRICS_CLUSTER_REFUSED,	/* 503: NATS unreachable or no ack */
	METRICS_COUNTERS
};

struct metrics_slot {
	pid_t		 pid;		/* 0: free */
	int		 generation;
	int		 active;	/* a worker runs in it (atomic) */
	int		 ready;		/* it runs its loop: may take streams */
	uint64_t	 conns[METRICS_CONN_KINDS];
	uint64_t	 counters[METRICS_COUNTERS];
	uint64_t	 jemalloc_allocated;
	uint64_t	 jemalloc_resident;
	uint64_t	 rss_bytes;
	uint16_t	 addr_conns[METRICS_ADDR_BUCKETS];
} __attribute__((aligned(64)));

/* The archiver's figures: one writer, the archiver (relaxed atomics). */
struct metrics_archiver {
	uint64_t	 archived;	/* its position: the last seq looked at */
	uint64_t	 stored;	/* events written to history */
	uint64_t	 trimmed;	/* events deleted by count or age */
	uint64_t	 dropped;	/* events not written: the map was full */
	uint64_t	 map_full;	/* times the map was found full */
	uint64_t	 full;		/* 1 while history does not grow */
	uint64_t	 restarts;	/* written by the master */
	int		 running;	/* written by the master */
};

/* The cluster relay's figures (relay.c): one writer, the relay (relaxed
 * atomics), but running and restarts, written by the master. */
struct metrics_cluster {
	uint64_t	 enabled;	/* [cluster] nats is set */
	uint64_t	 connected;	/* the relay's NATS connection is up */
	uint64_t	 consuming;	/* its consumer is subscribed */
	uint64_t	 conflict;	/* the ring holds ids the stream lacks */
	uint64_t	 base;		/* id = base + stream sequence */
	uint64_t	 epoch;		/* the stream's creation (ns), 0 until
					 * the relay has seen it: base is
					 * valid only then (release-stored) */
	uint64_t	 last_id;	/* the newest id the consumer appended */
	uint64_t	 stream_last;	/* the stream's newest id, as last seen */
	uint64_t	 appended;	/* events appended by the consumer */
	uint64_t	 duplicates;	/* messages whose id the ring had */
	uint64_t	 gaps;		/* holes: events this node never got */
	uint64_t	 epochs;	/* new epochs (the stream was made anew) */
	uint64_t	 unknown_topics; /* events of topics not in the catalog */
	uint64_t	 disconnects;
	uint64_t	 catalog_applied; /* catalog entries from the bucket */
	uint64_t	 restarts;	/* written by the master */
	int		 running;	/* written by the master */
};

struct metrics {
	unsigned int		 nslots;
	int			 memfd;		/* backs the mapping */
	uint32_t		 layout;	/* METRICS_LAYOUT */
	struct metrics_archiver	 archiver;
	struct metrics_cluster	 cluster;
	struct metrics_slot	 slots[];
};

/* Changes with the layout of the shared state: a binary upgrade between
 * builds whose layouts differ is refused (it takes a restart). */
#define METRICS_LAYOUT	((uint32_t)((sizeof(struct metrics_slot) << 16 ^ \
			    sizeof(struct metrics) << 1) | 1))

/* Map the shared state for nslots workers; NULL
 * with errno set on failure.  Called by the master before any fork. */
struct metrics *metrics_create(unsigned int nslots);
/* Map the state of memory file fd inherited across exec (binary upgrade);
 * NULL with errno EINVAL unless it holds nslots slots of this layout. */
struct metrics *metrics_attach(int fd, unsigned int nslots);
/* Zero the gauges and address counts of a slot whose worker died. */
void	metrics_slot_reset(struct metrics_slot *slot);

/* Set an archiver figure (relaxed atomic store). */
void	metrics_set(uint64_t *figure, uint64_t value);
/* Relaxed atomic updates of the owner's slot. */
void	metrics_add(struct metrics_slot *slot, enum metrics_counter c,
	    uint64_t n);
void	metrics_conn_add(struct metrics_slot *slot, enum metrics_conn_kind k,
	    int delta);
/* The bucket of a peer address (for the per-address cap). */
uint32_t metrics_addr_bucket(const struct sockaddr_storage *ss);
void	metrics_addr_add(struct metrics_slot *slot, uint32_t bucket, int delta);
/* Sums over all slots. */
uint64_t metrics_conns_total(const struct metrics *m);
uint64_t metrics_addr_total(const struct metrics *m, uint32_t bucket);
/* A counter, and the open connections of a kind, summed over all slots. */
uint64_t metrics_counter_total(const struct metrics *m, enum metrics_counter c);
uint64_t metrics_conns_kind_total(const struct metrics *m,
	    enum metrics_conn_kind k);

/* Refresh this process's allocator and RSS figures in its slot. */
void	metrics_sample_memory(struct metrics_slot *slot);
/* Write the Prometheus text exposition of everything into out; 0 or -1. */
int	metrics_render(const struct metrics *m, const struct ring *ring,
	    struct buf *out);

#endif
