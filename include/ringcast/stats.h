/*
 * stats: GET /stats/events on the admin listener, the dashboard's feed: an
 * SSE stream that carries one JSON snapshot of the whole server a second
 * (shared counters and gauges, the ring, the busiest topics, the workers).
 * It follows no ring topic and never touches the ring's contents, so it
 * evicts nothing; a stats stream that cannot keep up skips seconds, it
 * never queues them.
 */
#ifndef RINGCAST_STATS_H
#define RINGCAST_STATS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct conn;
struct serve;
struct stats;

/* Seconds of ring history kept per worker to date the oldest event. */
#define STATS_SAMPLES		3600
/* A stats stream whose socket takes nothing for this long is closed. */
#define STATS_STUCK_MS		30000

/* Turn an authorised request into a stats stream: the SSE head, retry hint,
 * and a first snapshot at once. */
void	stats_open(struct serve *s, struct conn *c);
/* Once a second, from the worker's tick: sample the ring (for the age of its
 * oldest event) and make the next snapshot due.  Allocates the worker's
 * stats state on first use; never blocks. */
void	stats_on_second(struct serve *s);
/* Send a stats stream (CONN_STATS) the current snapshot, once per second;
 * the snapshot is built at most once a second per worker.  It may close
 * the stream (write error, or stuck for STATS_STUCK_MS). */
void	stats_send(struct serve *s, struct conn *c);
/* Append the snapshot's JSON object to out; 0 or -1 (out of memory).
 * O(workers x WAKE_TABLE_ENTRIES + catalog topics + retained events). */
int	stats_render(struct serve *s, struct buf *out);
/* Free the worker's stats state; NULL is fine. */
void	stats_free(struct stats *st);

#endif
