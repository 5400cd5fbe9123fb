/*
 * stream: delivery.  A worker-local index from topic to its streams (a
 * multi-topic stream sits in each of its topics), one source of validated
 * frames (the worker's window, or the ring for a stream behind it), a cursor
 * that only moves forward, and the batching of frames into writev.  A
 * stream's whole state is its cursor plus how far into the next frame a
 * short write got; it holds no queue.
 */
#ifndef RINGCAST_STREAM_H
#define RINGCAST_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct serve;

#define STREAM_TOPICS_MAX	32

/* An empty topic index; NULL on allocation failure. */
struct stream_index *stream_index_new(void);
/* Free an index whose streams are all gone; NULL is fine. */
void	stream_index_free(struct stream_index *idx);
/* This worker's streams of topic: O(1). */
uint32_t stream_index_count(const struct stream_index *idx, uint32_t topic);
/* Distinct topics with streams in this worker. */
size_t	stream_index_topics(const struct stream_index *idx);

/* Turn an answered-to-be request into a stream of topics ids[n] (catalog
 * ids, authorised): response head, retry hint, the resume point from
 * Last-Event-ID text (has_resume) with a ringcast-gap first when events
 * were lost, the index, then what is owed.  0, or -1 when the connection
 * was answered with an error or closed. */
int	stream_open(struct serve *s, struct conn *c, const uint32_t *ids,
	    size_t n, const char *resume, int has_resume);
/* Transient trouble (full, draining, catalog): 200 with a retry hint, a
 * comment naming the reason and a clean end, since EventSource gives up for
 * good on any other status. */
void	stream_soft_reject(struct serve *s, struct conn *c, uint64_t retry_ms,
	    const char *reason);
/* Turn the request into a stream of no ring topic (the admin listener's
 * stats stream): the response head and a retry hint of retry_ms.  Its
 * owner writes what it carries; the loop flushes, finishes and closes it as
 * any stream.  0, or -1 when it was closed. */
int	stream_open_bare(struct serve *s, struct conn *c, uint64_t retry_ms);
/* Send a stream what it is owed now: -1 if it was closed, 1 if more is
 * owed and the socket still takes it (it is queued for the next round),
 * 0 otherwise. */
int	stream_flush(struct serve *s, struct conn *c);
/* Refresh the window from the ring and send every stream that is owed
 * something its share: O(new frames + streams of their topics), not
 * O(streams of the worker).  Returns how many streams it visited; those
 * that want another round stay queued (serve->npending). */
size_t	stream_fanout(struct serve *s);
/* Epoll events on a stream. */
void	stream_on_event(struct serve *s, struct conn *c, uint32_t events);
/* Heartbeat, retire and stuck-stream deadlines, at each tick. */
void	stream_on_tick(struct serve *s, struct conn *c);
/* End the stream at its next frame boundary (drain, reload). */
void	stream_finish(struct serve *s, struct conn *c);
/* Leave the index (serve->on_stream_close, called by conn_close). */
void	stream_forget(struct serve *s, struct conn *c);

#endif
