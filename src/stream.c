/*
 * stream: delivery (see stream.h).  Frames come from the worker's window,
 * or from the ring for a stream behind it; both yield the same validated
 * bytes for a seq, so a stream can move between them mid-frame.  The index
 * maps a topic to its streams, so a new frame costs the streams of its
 * topic, not every stream of the worker.  Invariant: a stream's cursor only
 * moves forward, and every event of its topics after the cursor is either
 * sent, or said lost (a gap or a slow-consumer close), never skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/handoff.h"
#include "ringcast/history.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/sse.h"
#include "ringcast/stream.h"
#include "ringcast/wake.h"
#include "ringcast/window.h"

#define STREAM_IOV_MAX		64
#define STREAM_WRITE_MAX	(256 * 1024)
#define STREAM_ROUNDS		16
#define STREAM_STUCK_MS		30000

struct stream_topic {
	uint32_t			 id;
	uint32_t			 nstreams;
	TAILQ_HEAD(, conn_member)	 members;
	struct stream_topic		*next;	/* hash chain */
};

struct stream_index {
	struct stream_topic	**buckets;
	size_t			 nbuckets;	/* a power of two */
	size_t			 ntopics;
};

/* Fibonacci hashing of a topic id into nbuckets. */
static size_t
stream_hash(uint32_t id, size_t nbuckets)
{
	return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ULL) >> 32) &
	    (nbuckets - 1);
}

struct stream_index *
stream_index_new(void)
{
	struct stream_index	*idx;

	if ((idx = calloc(1, sizeof(*idx))) == NULL)
		return NULL;
	idx->nbuckets = 256;
	if ((idx->buckets = calloc(idx->nbuckets,
	    sizeof(*idx->buckets))) == NULL) {
		free(idx);
		return NULL;
	}
	return idx;
}

void
stream_index_free(struct stream_index *idx)
{
	struct stream_topic	*t, *next;
	size_t			 i;

	if (idx == NULL)
		return;
	for (i = 0; i < idx->nbuckets; i++)
		for (t = idx->buckets[i]; t != NULL; t = next) {
			next = t->next;
			free(t);
		}
	free(idx->buckets);
	free(idx);
}

static struct stream_topic *
stream_index_find(const struct stream_index *idx, uint32_t id)
{
	struct stream_topic	*t;

	for (t = idx->buckets[stream_hash(id, idx->nbuckets)]; t != NULL;
	    t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

uint32_t
stream_index_count(const struct stream_index *idx, uint32_t topic)
{
	const struct stream_topic	*t = stream_index_find(idx, topic);

	return t != NULL ? t->nstreams : 0;
}

size_t
stream_index_topics(const struct stream_index *idx)
{
	return idx->ntopics;
}

/* Double the buckets when topics outnumber them; failure only costs
 * longer chains. */
static void
stream_index_grow(struct stream_index *idx)
{
	struct stream_topic	**buckets, *t, *next;
	size_t			 n = idx->nbuckets * 2, i, h;

	if ((buckets = calloc(n, sizeof(*buckets))) == NULL)
		return;
	for (i = 0; i < idx->nbuckets; i++)
		for (t = idx->buckets[i]; t != NULL; t = next) {
			next = t->next;
			h = stream_hash(t->id, n);
			t->next = buckets[h];
			buckets[h] = t;
		}
	free(idx->buckets);
	idx->buckets = buckets;
	idx->nbuckets = n;
}

/* Put member m (of conn c) among topic id's streams; 0 or -1. */
static int
stream_index_join(struct serve *s, struct conn_member *m, uint32_t id)
{
	struct stream_index	*idx = s->topics;
	struct stream_topic	*t;
	size_t			 h;

	if ((t = stream_index_find(idx, id)) == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return -1;
		t->id = id;
		TAILQ_INIT(&t->members);
		h = stream_hash(id, idx->nbuckets);
		t->next = idx->buckets[h];
		idx->buckets[h] = t;
		if (++idx->ntopics > idx->nbuckets)
			stream_index_grow(idx);
	}
	TAILQ_INSERT_TAIL(&t->members, m, link);
	t->nstreams++;
	m->topic = t;
	/* Publishers of the topic wake this worker from now on; the caller
	 * reads the ring after this (stream_resume). */
	if (s->wake != NULL)
		wake_join(s->wake, s->wake_slot, id);
	return 0;
}

static void
stream_index_leave(struct serve *s, struct conn_member *m)
{
	struct stream_index	*idx = s->topics;
	struct stream_topic	*t = m->topic, **pp;

	if (t == NULL)
		return;
	m->topic = NULL;
	TAILQ_REMOVE(&t->members, m, link);
	if (s->wake != NULL)
		wake_leave(s->wake, s->wake_slot, t->id);
	if (--t->nstreams > 0)
		return;
	for (pp = &idx->buckets[stream_hash(t->id, idx->nbuckets)];
	    *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	idx->ntopics--;
	free(t);
}

void
stream_forget(struct serve *s, struct conn *c)
{
	uint8_t	 i;

	if (c->ntopics == 0)
		return;
	stream_index_leave(s, &c->member);
	for (i = 0; c->members != NULL && i + 1 < c->ntopics; i++)
		stream_index_leave(s, &c->members[i]);
	free(c->members);
	c->members = NULL;
	free(c->topics);
	c->topics = NULL;
	c->ntopics = 0;
}

/* Close a stream: it leaves the index through conn_close. */
static void
stream_close(struct serve *s, struct conn *c)
{
	conn_close(s, c);
}

/* Queue a stream for the next fan-out round (once). */
static void
stream_mark_pending(struct serve *s, struct conn *c)
{
	struct conn	**p;
	size_t		  cap;

	if (c->flags & CONN_PENDING)
		return;
	if (s->npending == s->pendingcap) {
		cap = s->pendingcap == 0 ? 256 : s->pendingcap * 2;
		if ((p = reallocarray(s->pending, cap, sizeof(*p))) == NULL) {
			/* Without room, a round over every stream serves. */
			s->stream_more = 1;
			return;
		}
		s->pending = p;
		s->pendingcap = cap;
	}
	c->flags |= CONN_PENDING;
	s->pending[s->npending++] = c;
}

static int
stream_has_topic(const struct conn *c, uint32_t topic)
{
	uint8_t	 i;

	if (c->ntopics == 1)
		return c->topic == topic;
	for (i = 0; i < c->ntopics; i++)
		if (c->topics[i] == topic)
			return 1;
	return 0;
}

static const uint32_t *
stream_topic_list(const struct conn *c)
{
	return c->ntopics == 1 ? &c->topic : c->topics;
}

/* A cursor only moves forward: moving it back would send an event twice. */
static void
stream_cursor_forward(struct conn *c, uint64_t seq)
{
	if (seq > c->cursor)
		c->cursor = seq;
}

/* Was an event of one of the stream's topics evicted after seq? */
static int
stream_lost_after(struct serve *s, const struct conn *c, uint64_t seq)
{
	const uint32_t	*topics = stream_topic_list(c);
	uint8_t		 i;

	for (i = 0; i < c->ntopics; i++)
		if (ring_topic_evicted(s->ring, topics[i]) > seq)
			return 1;
	return 0;
}

/* The retry hint a closing stream gets: the configured value plus up to as
 * much again of jitter, so reconnects spread out. */
static uint64_t
stream_retry_jitter(uint64_t base)
{
	return base + arc4random_uniform((uint32_t)(base > 0 ? base : 1));
}

/* The response head of an SSE stream. */
static void
stream_headers(struct serve *s, struct conn *c)
{
	struct http_request	*req = &c->io->reader.req;
	struct buf		*out = &c->io->out;

	buf_printf(out, "HTTP/1.1 200 OK\r\nServer: ringcast\r\n"
	    "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	if (req->minor >= 1) {
		buf_printf(out, "Transfer-Encoding: chunked\r\n");
		c->flags |= CONN_CHUNKED;
	} else
		buf_printf(out, "Connection: close\r\n");
	conn_cors_headers(s, c, out);
	buf_append(out, "\r\n", 2);
}

/* The connection leaves the request list for the stream list.  An admin
 * listener's stream (the stats stream) stays an admin connection in the
 * gauges: subscribers' streams are what ringcast_connections counts. */
static void
stream_become(struct serve *s, struct conn *c)
{
	if (!(c->flags & CONN_ADMIN)) {
		metrics_conn_add(s->slot, METRICS_CONN_REQUEST, -1);
		metrics_conn_add(s->slot, METRICS_CONN_STREAM, 1);
	}
	TAILQ_REMOVE(&s->requests, c, link);
	c->state = CONN_STREAM;
	TAILQ_INSERT_TAIL(&s->streams, c, link);
	s->nstreams++;
	/* The request is done with: keep only what the stream needs. */
	http_reader_free(&c->io->reader);
	free(c->io->pending);
	c->io->pending = NULL;
	c->io->pendinglen = 0;
	c->last_io_ms = s->now_ms;
}

void
stream_soft_reject(struct serve *s, struct conn *c, uint64_t retry_ms,
    const char *reason)
{
	char	 text[256];
	int	 n;

	metrics_add(s->slot, METRICS_SOFT_REJECTS, 1);
	log_debug("fd %d: soft reject: %s", c->fd, reason);
	stream_headers(s, c);
	stream_become(s, c);
	n = snprintf(text, sizeof(text), "retry: %llu\n: %s\n\n",
	    (unsigned long long)stream_retry_jitter(retry_ms), reason);
	c->flags |= CONN_FINISH;
	if (conn_send_control(s, c, text, (size_t)n, 1) == -1) {
		stream_close(s, c);
		return;
	}
	/* Flushes the head and the hint, then ends the stream. */
	stream_flush(s, c);
}

int
stream_open_bare(struct serve *s, struct conn *c, uint64_t retry_ms)
{
	char	 text[64];
	int	 n;

	stream_headers(s, c);
	stream_become(s, c);
	n = snprintf(text, sizeof(text), "retry: %llu\n\n",
	    (unsigned long long)retry_ms);
	if (conn_send_control(s, c, text, (size_t)n, 0) == -1 ||
	    stream_flush(s, c) == -1) {
		if (c->state == CONN_STREAM)
			stream_close(s, c);
		return -1;
	}
	return 0;
}

/* Account for n bytes written of the frames in iov order; scanned_to is
 * the newest seq known to hold nothing else of ours. */
static void
stream_advance(struct serve *s, struct conn *c, const uint64_t *seqs,
    const size_t *lens, size_t count, size_t n, uint64_t scanned_to)
{
	size_t	 i;

	metrics_add(s->slot, METRICS_BYTES_DELIVERED, n);
	for (i = 0; i < count && n >= lens[i]; i++)
		n -= lens[i];
	/* One shared-counter update per write, not per frame. */
	if (i > 0) {
		stream_cursor_forward(c, seqs[i - 1]);
		c->partial = 0;
		c->partial_seq = 0;
		metrics_add(s->slot, METRICS_FRAMES_DELIVERED, i);
	}
	if (i < count) {
		if (n > 0) {
			if (c->partial_seq != seqs[i])
				c->partial = 0;
			c->partial_seq = seqs[i];
			c->partial += (uint32_t)n;
			/* Nothing of ours lies between: the cursor can stand
			 * just before the frame, whichever path sends it. */
			stream_cursor_forward(c, seqs[i] - 1);
		}
		return;
	}
	/* Everything went: the frames skipped after the last are not ours. */
	stream_cursor_forward(c, scanned_to);
}

/* writev that reports a full socket as 0 bytes and sets CONN_BLOCKED. */
static ssize_t
stream_writev(struct conn *c, struct iovec *iov, int iovcnt, size_t total)
{
	ssize_t	 n;

	do
		n = writev(c->fd, iov, iovcnt);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->flags |= CONN_BLOCKED;
		return 0;
	}
	if (n >= 0 && (size_t)n < total)
		c->flags |= CONN_BLOCKED;
	return n;
}

/*
 * The seqs of a one-topic stream's frames after its cursor, oldest first,
 * found by walking the topic bucket's chain back from its newest frame:
 * O(frames of the bucket since the cursor).  Returns how many (at most
 * STREAM_IOV_MAX), or -1 when there are more than that: the caller scans
 * forward instead, which is cheap exactly when the topic is busy.
 */
static int
stream_window_chain(const struct window *win, const struct conn *c,
    uint64_t *seqs)
{
	const struct window_entry	*e;
	uint64_t			 seq, found[STREAM_IOV_MAX];
	int				 n = 0, i;

	seq = window_topic_newest(win, c->topic);
	while (seq > c->cursor && (e = window_get(win, seq)) != NULL) {
		if (e->topic == c->topic) {
			if (n == STREAM_IOV_MAX)
				return -1;
			found[n++] = seq;
		}
		seq = e->prev;
	}
	for (i = 0; i < n; i++)
		seqs[i] = found[n - 1 - i];
	return n;
}

/* Send frames held by the window; 1 if something was sent or skipped, 0 if
 * there was nothing, -1 on a write error. */
static int
stream_send_from_window(struct serve *s, struct conn *c)
{
	const struct window		*win = &s->window;
	const struct window_entry	*e;
	struct iovec			 iov[STREAM_IOV_MAX];
	uint64_t			 seqs[STREAM_IOV_MAX], chain[STREAM_IOV_MAX];
	uint64_t			 seq, scanned_to;
	size_t				 lens[STREAM_IOV_MAX], total = 0;
	int				 count = 0, nchain = -1, k = 0, chunked;
	uint32_t			 len, skip;
	const char			*p;
	ssize_t				 n;

	chunked = (c->flags & CONN_CHUNKED) != 0;
	if (c->ntopics == 1 && c->partial_seq == 0) {
		if (!window_may_have(win, c->topic, c->cursor)) {
			/* Nothing of ours up to the window's newest. */
			if (win->last > c->cursor) {
				stream_cursor_forward(c, win->last);
				return 1;
			}
			return 0;
		}
		/* A short span is scanned faster than walked (a busy
		 * topic's stream is usually a few frames behind). */
		if (win->last - c->cursor > 2 * STREAM_IOV_MAX)
			nchain = stream_window_chain(win, c, chain);
	}
	seq = c->cursor + 1;
	for (;;) {
		if (count == STREAM_IOV_MAX || total >= STREAM_WRITE_MAX)
			break;
		if (nchain >= 0) {
			if (k == nchain) {
				seq = win->last + 1;
				break;
			}
			seq = chain[k++];
		} else if (seq > win->last)
			break;
		if ((e = window_get(win, seq)) == NULL)
			break;
		if (nchain < 0 && !stream_has_topic(c, e->topic)) {
			seq++;
			continue;
		}
		p = window_bytes(win, e, chunked, &len);
		skip = seq == c->partial_seq ? c->partial : 0;
		iov[count].iov_base = (void *)(p + skip);
		iov[count].iov_len = len - skip;
		seqs[count] = seq;
		lens[count] = len - skip;
		total += len - skip;
		count++;
		seq++;
	}
	/* Everything below seq was looked at; with the chain, everything up
	 * to the window's newest once the chain is used up. */
	scanned_to = seq - 1;
	if (nchain >= 0 && k < nchain)
		scanned_to = count > 0 ? seqs[count - 1] : c->cursor;
	if (count == 0) {
		if (scanned_to > c->cursor && c->partial_seq == 0) {
			stream_cursor_forward(c, scanned_to);
			return 1;
		}
		return 0;
	}
	if (c->partial_seq != 0 && seqs[0] != c->partial_seq) {
		/* The frame we were in the middle of is gone. */
		return -1;
	}
	if ((n = stream_writev(c, iov, count, total)) == -1)
		return -1;
	if (n > 0)
		c->last_io_ms = s->now_ms;
	stream_advance(s, c, seqs, lens, (size_t)count, (size_t)n, scanned_to);
	return 1;
}

/* Send frames older than the window straight from the ring (replay, or a
 * subscriber that fell behind); same return values as above, plus 2 when
 * the stream lost events and must end. */
static int
stream_send_from_ring(struct serve *s, struct conn *c)
{
	struct ring_frame	 frame;
	enum ring_status	 st;
	struct iovec		 iov[STREAM_IOV_MAX];
	uint64_t		 seqs[STREAM_IOV_MAX], after = c->cursor, oldest;
	size_t			 lens[STREAM_IOV_MAX], pos = 0, hdrlen, skip;
	size_t			 total = 0, room;
	int			 count = 0, chunked, tries = 0;
	char			 hdr[16];
	ssize_t			 n;

	chunked = (c->flags & CONN_CHUNKED) != 0;
	while (count < STREAM_IOV_MAX && pos < STREAM_WRITE_MAX && tries < 64) {
		st = ring_next(s->ring, after, stream_topic_list(c), c->ntopics,
		    &frame);
		if (st == RING_NOT_YET) {
			/* None up to frame.seq is ours: skip them. */
			if (count == 0 && c->partial_seq == 0 &&
			    frame.seq > after)
				after = frame.seq;
			break;
		}
		if (st == RING_EVICTED) {
			if (count > 0)
				break;
			/*
			 * Read oldest before asking what was lost: every
			 * event below it has its topic's evicted entry
			 * raised already (the ring raises it before moving
			 * oldest), so nothing can go missing in between.
			 */
			oldest = ring_oldest(s->ring);
			if (c->partial_seq != 0 ||
			    stream_lost_after(s, c, c->cursor))
				return 2;
			/* Only other topics' events went: skip them. */
			if (oldest - 1 > after)
				after = oldest - 1;
			tries++;
			continue;
		}
		if (s->window.first <= s->window.last &&
		    frame.seq >= s->window.first) {
			/* The window holds the rest: hand over, skipping the
			 * other topics' frames up to it. */
			if (count == 0 && c->partial_seq == 0) {
				stream_cursor_forward(c, frame.seq - 1);
				return 1;
			}
			break;
		}
		hdrlen = chunked ? window_chunk_header(hdr, frame.len) : 0;
		room = s->scratchsize - pos;
		if (hdrlen + frame.len + 2 > room)
			break;
		st = ring_read(s->ring, frame.seq, s->scratch + pos + hdrlen,
		    room - hdrlen - 2, &frame);
		if (st != RING_OK) {
			tries++;
			continue;
		}
		memcpy(s->scratch + pos, hdr, hdrlen);
		if (chunked)
			memcpy(s->scratch + pos + hdrlen + frame.len, "\r\n", 2);
		skip = frame.seq == c->partial_seq ? c->partial : 0;
		if (count == 0 && c->partial_seq != 0 &&
		    frame.seq != c->partial_seq)
			return 2;
		iov[count].iov_base = s->scratch + pos + skip;
		lens[count] = hdrlen + frame.len + (chunked ? 2 : 0) - skip;
		iov[count].iov_len = lens[count];
		seqs[count] = frame.seq;
		total += lens[count];
		pos += hdrlen + frame.len + (chunked ? 2 : 0);
		after = frame.seq;
		count++;
	}
	if (count == 0) {
		if (after > c->cursor && c->partial_seq == 0) {
			stream_cursor_forward(c, after);
			return 1;
		}
		return 0;
	}
	if ((n = stream_writev(c, iov, count, total)) == -1)
		return -1;
	if (n > 0)
		c->last_io_ms = s->now_ms;
	stream_advance(s, c, seqs, lens, (size_t)count, (size_t)n,
	    seqs[count - 1]);
	return 1;
}

/* Frames a history read lays into the scratch, as the ring path does. */
struct stream_copy {
	struct serve	*s;
	struct conn	*c;
	struct iovec	*iov;
	uint64_t	*seqs;
	size_t		*lens;
	size_t		 pos;
	size_t		 total;
	int		 count;
	int		 chunked;
	int		 lost;		/* the frame in part is gone, or one
					 * frame does not fit the scratch */
};

/* history_frame_fn: copy one frame (inside the read transaction). */
static int
stream_copy_frame(void *arg, uint64_t seq, uint32_t topic, const void *frame,
    size_t len)
{
	struct stream_copy	*cp = arg;
	struct conn		*c = cp->c;
	size_t			 hdrlen, need, skip;
	char			 hdr[16], *p;

	(void)topic;
	if (cp->count == STREAM_IOV_MAX || cp->total >= STREAM_WRITE_MAX)
		return 1;
	hdrlen = cp->chunked ? window_chunk_header(hdr, (uint32_t)len) : 0;
	need = hdrlen + len + (cp->chunked ? 2 : 0);
	if (need > cp->s->scratchsize - cp->pos ||
	    (cp->count == 0 && c->partial_seq != 0 && seq != c->partial_seq)) {
		if (cp->count == 0)
			cp->lost = 1;
		return 1;
	}
	p = cp->s->scratch + cp->pos;
	memcpy(p, hdr, hdrlen);
	memcpy(p + hdrlen, frame, len);
	if (cp->chunked)
		memcpy(p + hdrlen + len, "\r\n", 2);
	skip = seq == c->partial_seq ? c->partial : 0;
	cp->iov[cp->count].iov_base = p + skip;
	cp->iov[cp->count].iov_len = need - skip;
	cp->lens[cp->count] = need - skip;
	cp->seqs[cp->count] = seq;
	cp->total += need - skip;
	cp->pos += need;
	cp->count++;
	return 0;
}

/*
 * How far the archiver has looked, for a reader: its position, or, when the
 * ring was replaced (ring reset) after it stopped cleanly with everything
 * archived and it has not run since, the new ring's start (the ids in
 * between never existed).
 */
static uint64_t
stream_history_archived(struct serve *s, const struct history_view *view,
    uint64_t oldest)
{
	struct ring_info	 info;

	if (!view->clean || oldest - 1 <= view->archived)
		return view->archived;
	ring_get_info(s->ring, &info);
	return info.epoch != view->epoch ? oldest - 1 : view->archived;
}

/*
 * Send frames from the history store, one read transaction per batch,
 * closed before the write; when history holds nothing after the cursor,
 * hand over to the ring (no seam: everything of the stream's topics below
 * the ring's oldest is at most the archiver's position, so in history).
 * Same return values as stream_send_from_ring.
 */
static int
stream_send_from_history(struct serve *s, struct conn *c)
{
	const uint32_t		*topics = stream_topic_list(c);
	struct history_view	 view;
	struct stream_copy	 cp;
	struct iovec		 iov[STREAM_IOV_MAX];
	uint64_t		 seqs[STREAM_IOV_MAX], evicted[STREAM_TOPICS_MAX];
	uint64_t		 oldest, said, to, archived;
	size_t			 lens[STREAM_IOV_MAX];
	ssize_t			 n;
	uint8_t			 i;

	if (serve_history(s) == -1) {
		/* The ring path says what was lost. */
		c->flags &= ~CONN_HISTORY;
		return 1;
	}
	/* oldest first: see stream_send_from_ring. */
	oldest = ring_oldest(s->ring);
	for (i = 0; i < c->ntopics; i++)
		evicted[i] = ring_topic_evicted(s->ring, topics[i]);
	memset(&cp, 0, sizeof(cp));
	cp.s = s;
	cp.c = c;
	cp.iov = iov;
	cp.seqs = seqs;
	cp.lens = lens;
	cp.chunked = (c->flags & CONN_CHUNKED) != 0;
	if (history_read(s->hist, c->cursor, topics, c->ntopics,
	    STREAM_IOV_MAX, stream_copy_frame, &cp, &view) == -1) {
		log_warnx("%s", history_error(s->hist));
		c->flags &= ~CONN_HISTORY;
		return 1;
	}
	said = c->cursor > c->history_ack ? c->cursor : c->history_ack;
	/* Trimmed or dropped past the cursor, or no longer kept. */
	if (!view.complete || view.floor > said || cp.lost)
		return 2;
	if (cp.count == 0) {
		if (c->partial_seq != 0)
			return 2;
		archived = stream_history_archived(s, &view, oldest);
		for (i = 0; i < c->ntopics; i++)
			if (evicted[i] > archived && evicted[i] > said)
				return 2;
		/* Up to the archiver's position history holds it all, and
		 * up to said the loss was said. */
		c->flags &= ~CONN_HISTORY;
		to = archived > said ? archived : said;
		stream_cursor_forward(c, to < oldest - 1 ? to : oldest - 1);
		return 1;
	}
	if ((n = stream_writev(c, iov, cp.count, cp.total)) == -1)
		return -1;
	if (n > 0)
		c->last_io_ms = s->now_ms;
	stream_advance(s, c, seqs, lens, (size_t)cp.count, (size_t)n,
	    seqs[cp.count - 1]);
	return 1;
}

/* Shut the write side and close: a stream's peer sends nothing after its
 * request, so there is nothing to wait for. */
static void
stream_fin(struct serve *s, struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	stream_close(s, c);
}

/* Count a stream ended at a frame boundary by a drain or a retire. */
static void
stream_count_end(struct serve *s)
{
	if (s->draining)
		s->drained++;
	else if (s->retiring)
		s->retired++;
}

/* End a stream at a frame boundary: a retry hint with jitter, the chunked
 * terminator, then FIN. */
static void
stream_end(struct serve *s, struct conn *c)
{
	char	 text[64];
	int	 n;

	n = snprintf(text, sizeof(text), "retry: %llu\n\n",
	    (unsigned long long)stream_retry_jitter(s->conf->retry_ms));
	c->flags |= CONN_FINISH;
	if (c->io == NULL || c->io->out.len == 0) {
		if (conn_send_control(s, c, text, (size_t)n, 1) == -1) {
			stream_close(s, c);
			return;
		}
	}
	if (c->flags & CONN_BLOCKED)
		return;
	stream_count_end(s);
	stream_fin(s, c);
}

int
stream_flush(struct serve *s, struct conn *c)
{
	int	 rc, rounds;

	if (c->io != NULL && c->io->out.len > 0) {
		if (conn_flush_out(s, c) == -1) {
			stream_close(s, c);
			return -1;
		}
		if (c->flags & CONN_BLOCKED)
			return 0;
		if (c->flags & CONN_FINISH) {
			stream_count_end(s);
			stream_fin(s, c);
			return -1;
		}
	}
	conn_io_release(c);
	/* A stream of no ring topic (a soft reject, a stats stream) is owed
	 * no frames: to ring_next, no topics means every topic. */
	for (rounds = 0; c->ntopics > 0 && rounds < STREAM_ROUNDS &&
	    !(c->flags & CONN_BLOCKED); rounds++) {
		if (c->flags & CONN_HISTORY)
			rc = stream_send_from_history(s, c);
		else if (s->window.first <= s->window.last &&
		    c->cursor + 1 >= s->window.first &&
		    (c->partial_seq == 0 || c->partial_seq >= s->window.first))
			rc = stream_send_from_window(s, c);
		else
			rc = stream_send_from_ring(s, c);
		if (rc == -1) {
			stream_close(s, c);
			return -1;
		}
		if (rc == 2) {
			metrics_add(s->slot, METRICS_SLOW_CLOSES, 1);
			log_debug("fd %d: slow consumer at %llu: closing",
			    c->fd, (unsigned long long)c->cursor);
			if (c->partial_seq != 0) {
				stream_close(s, c);
				return -1;
			}
			stream_end(s, c);
			return -1;
		}
		if (rc == 0)
			break;
	}
	if ((c->flags & CONN_FINISH) && c->partial_seq == 0 &&
	    !(c->flags & CONN_BLOCKED)) {
		stream_end(s, c);
		return -1;
	}
	/* Out of rounds with the socket still writable: epoll will not say
	 * so again, so the worker must come back, whoever called us. */
	if (rounds == STREAM_ROUNDS && !(c->flags & CONN_BLOCKED)) {
		stream_mark_pending(s, c);
		return 1;
	}
	return 0;
}

/* Queue the streams of every frame the window took since seq after. */
static void
stream_mark_new(struct serve *s, uint64_t after)
{
	const struct window_entry	*e;
	struct stream_topic		*t;
	struct conn_member		*m;
	uint64_t			 seq;

	for (seq = after + 1; seq <= s->window.last; seq++) {
		if ((e = window_get(&s->window, seq)) == NULL)
			continue;
		if ((t = stream_index_find(s->topics, e->topic)) == NULL)
			continue;
		TAILQ_FOREACH(m, &t->members, link)
			if (!(m->conn->flags & CONN_BLOCKED))
				stream_mark_pending(s, m->conn);
	}
}

static void
stream_mark_all(struct serve *s)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &s->streams, link)
		if (!(c->flags & CONN_BLOCKED))
			stream_mark_pending(s, c);
}

size_t
stream_fanout(struct serve *s)
{
	struct conn	*c;
	uint64_t	 last = s->window.last, restarts = s->window.restarts;
	size_t		 i, n;

	window_refresh(&s->window, s->ring);
	if (s->window.restarts != restarts || last + 1 < s->window.first ||
	    s->stream_more) {
		/* Frames the window never held (the ring outran it, one too
		 * large to share, or more new ones than it holds), or no
		 * room to queue: everyone. */
		s->stream_more = 0;
		stream_mark_all(s);
	} else
		stream_mark_new(s, last);
	n = s->npending;
	for (i = 0; i < n; i++) {
		c = s->pending[i];
		c->flags &= ~CONN_PENDING;
		if (c->state == CONN_STREAM && !(c->flags & CONN_BLOCKED))
			stream_flush(s, c);
	}
	/* Streams queued again during the round go first next time.  With
	 * nothing ever queued, pending is NULL: memmove must not see it. */
	if (s->npending > n)
		memmove(s->pending, s->pending + n,
		    (s->npending - n) * sizeof(*s->pending));
	s->npending -= n;
	return n;
}

void
stream_finish(struct serve *s, struct conn *c)
{
	if (c->state != CONN_STREAM)
		return;
	c->flags |= CONN_FINISH;
	if (!(c->flags & CONN_BLOCKED))
		stream_flush(s, c);
}

void
stream_on_event(struct serve *s, struct conn *c, uint32_t events)
{
	if (c->state != CONN_STREAM)
		return;
	if (events & (EPOLLERR | EPOLLHUP)) {
		stream_close(s, c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLRDHUP)) &&
	    conn_discard_input(s, c) == -1) {
		stream_close(s, c);
		return;
	}
	if (events & EPOLLOUT) {
		c->flags &= ~CONN_BLOCKED;
		stream_flush(s, c);
	}
}

void
stream_on_tick(struct serve *s, struct conn *c)
{
	const struct config	*conf = s->conf;
	uint64_t		 idle = s->now_ms - c->last_io_ms;

	if (c->state != CONN_STREAM)
		return;
	if (c->flags & CONN_BLOCKED) {
		if (idle >= STREAM_STUCK_MS && !(c->flags & CONN_HISTORY) &&
		    stream_lost_after(s, c, c->cursor)) {
			metrics_add(s->slot, METRICS_SLOW_CLOSES, 1);
			stream_close(s, c);
		}
		return;
	}
	if (c->finish_at != 0 &&
	    s->now_ms >= s->retire_start_ms + c->finish_at - 1) {
		stream_finish(s, c);
		return;
	}
	/* The credentials ran out: a clean end with retry:, and the
	 * client comes back with fresh ones. */
	if (c->expires != 0 && s->now_ms / 1000 >= c->expires) {
		metrics_add(s->slot, METRICS_AUTH_EXPIRED, 1);
		stream_finish(s, c);
		return;
	}
	if (conf->heartbeat_ms > 0 && idle >= conf->heartbeat_ms &&
	    c->partial_seq == 0 && (c->io == NULL || c->io->out.len == 0)) {
		metrics_add(s->slot, METRICS_HEARTBEATS, 1);
		c->last_io_ms = s->now_ms;
		if (conn_send_control(s, c, ":\n", 2, 0) == -1)
			stream_close(s, c);
	}
}

/* history_frame_fn: note the first frame's seq, take nothing. */
static int
stream_first_frame(void *arg, uint64_t seq, uint32_t topic, const void *frame,
    size_t len)
{
	(void)topic;
	(void)frame;
	(void)len;
	*(uint64_t *)arg = seq;
	return 1;
}

/*
 * A resume point the ring no longer holds events after: replay from
 * history when every topic of the stream has history.  Returns whether
 * to say a gap (and *next, the first id history delivers, or 0): only when
 * history lost an event after last too (trimmed, dropped, or evicted
 * from the ring before the archiver read it).  Called after the ring's
 * oldest was read, so every event below it is counted in ring_topic_evicted.
 */
static int
stream_resume_history(struct serve *s, struct conn *c, uint64_t last,
    uint64_t oldest, uint64_t *next)
{
	const uint32_t		*topics = stream_topic_list(c);
	struct history_view	 view;
	uint64_t		 evicted[STREAM_TOPICS_MAX], lost = 0, archived;
	uint8_t			 i;

	if (serve_history(s) == -1)
		return 1;
	for (i = 0; i < c->ntopics; i++)
		evicted[i] = ring_topic_evicted(s->ring, topics[i]);
	if (history_read(s->hist, last, topics, c->ntopics, 1,
	    stream_first_frame, next, &view) == -1) {
		log_warnx("%s", history_error(s->hist));
		return 1;
	}
	if (!view.complete) {
		*next = 0;
		return 1;
	}
	archived = stream_history_archived(s, &view, oldest);
	c->flags |= CONN_HISTORY;
	c->cursor = last;
	if (view.floor > last)
		lost = view.floor;
	for (i = 0; i < c->ntopics; i++)
		if (evicted[i] > archived && evicted[i] > lost)
			lost = evicted[i];
	c->history_ack = lost;
	return lost > last;
}

/* Where a stream starts, and whether to say a gap first. */
static void
stream_resume(struct serve *s, struct conn *c, const char *resume,
    int has_resume)
{
	uint64_t	 committed, oldest, last, next = 0;
	int		 gap = 0;

	/* oldest first: see stream_send_from_ring. */
	oldest = ring_oldest(s->ring);
	committed = ring_committed(s->ring);
	if (oldest > committed + 1)
		oldest = committed + 1;
	if (!has_resume) {
		c->cursor = committed;
		return;
	}
	metrics_add(s->slot, METRICS_REPLAYS, 1);
	if (sse_parse_event_id(resume, strlen(resume), &last) == -1 ||
	    last > committed) {
		/* Malformed, or from another ring: replay what is kept. */
		gap = 1;
		c->cursor = oldest - 1;
	} else if (last + 1 < oldest) {
		gap = stream_lost_after(s, c, last);
		c->cursor = oldest - 1;
		if (gap)
			gap = stream_resume_history(s, c, last, oldest, &next);
	} else
		c->cursor = last;
	if (gap) {
		struct ring_frame	 frame;
		char			 text[96];
		int			 n;

		if (next == 0 && ring_next(s->ring, c->cursor,
		    stream_topic_list(c), c->ntopics, &frame) == RING_OK)
			next = frame.seq;
		if (next == 0)
			next = committed + 1;
		n = snprintf(text, sizeof(text), "event: ringcast-gap\n"
		    "data: %llu\n\n", (unsigned long long)next);
		metrics_add(s->slot, METRICS_GAPS, 1);
		conn_send_control(s, c, text, (size_t)n, 0);
	}
}

int
stream_open(struct serve *s, struct conn *c, const uint32_t *ids, size_t n,
    const char *resume, int has_resume)
{
	char	 text[64];
	size_t	 i;
	int	 len;

	if (n == 0 || n > STREAM_TOPICS_MAX)
		return -1;
	if (n > 1 && ((c->topics = calloc(n, sizeof(*c->topics))) == NULL ||
	    (c->members = calloc(n - 1, sizeof(*c->members))) == NULL)) {
		free(c->topics);
		c->topics = NULL;
		conn_error(s, c, 503, "Retry-After: 1\r\n", "out of memory");
		return -1;
	}
	c->ntopics = (uint8_t)n;
	c->topic = ids[0];
	for (i = 0; n > 1 && i < n; i++)
		c->topics[i] = ids[i];
	stream_headers(s, c);
	stream_become(s, c);
	/* In the index before the resume point is read: an event appended
	 * after that read wakes this worker and reaches this stream. */
	c->member.conn = c;
	if (stream_index_join(s, &c->member, ids[0]) == -1)
		goto fail;
	for (i = 1; i < n; i++) {
		c->members[i - 1].conn = c;
		if (stream_index_join(s, &c->members[i - 1], ids[i]) == -1)
			goto fail;
	}
	len = snprintf(text, sizeof(text), "retry: %llu\n\n",
	    (unsigned long long)s->conf->retry_ms);
	if (conn_send_control(s, c, text, (size_t)len, 0) == -1)
		goto fail;
	stream_resume(s, c, resume, has_resume);
	stream_flush(s, c);
	return 0;
fail:
	stream_close(s, c);
	return -1;
}

int
stream_handoff_state(struct serve *s, const struct conn *c,
    struct handoff_state *st)
{
	const uint32_t	*topics = stream_topic_list(c);
	uint64_t	 idle = s->now_ms - c->last_io_ms;
	uint8_t		 i;

	if (c->state != CONN_STREAM || c->ntopics == 0 ||
	    c->ntopics > HANDOFF_TOPICS_MAX ||
	    (c->flags & (CONN_FINISH | CONN_STATS | CONN_ADMIN)) ||
	    c->partial_seq != 0 || (c->io != NULL && c->io->out.len > 0))
		return 0;
	memset(st, 0, sizeof(*st));
	st->cursor = c->cursor;
	st->ntopics = c->ntopics;
	for (i = 0; i < c->ntopics; i++)
		st->topics[i] = topics[i];
	st->flags = (c->flags & CONN_CHUNKED) ? HANDOFF_CHUNKED : 0;
	st->addr_bucket = c->addr_bucket;
	st->expires = c->expires;
	st->idle_ms = idle > UINT32_MAX ? UINT32_MAX : (uint32_t)idle;
	return 1;
}

struct conn *
stream_adopt(struct serve *s, int fd, const struct handoff_state *st)
{
	struct conn	*c;
	size_t		 i, n = st->ntopics;

	if (n == 0 || n > STREAM_TOPICS_MAX ||
	    st->addr_bucket >= METRICS_ADDR_BUCKETS ||
	    (c = conn_adopt(s, fd, (st->flags & HANDOFF_CHUNKED) ?
	    CONN_CHUNKED : 0, st->addr_bucket)) == NULL) {
		close(fd);
		return NULL;
	}
	c->cursor = st->cursor;
	c->expires = st->expires;
	c->last_io_ms = s->now_ms - (st->idle_ms < s->now_ms ? st->idle_ms :
	    s->now_ms);
	if (n > 1 && ((c->topics = calloc(n, sizeof(*c->topics))) == NULL ||
	    (c->members = calloc(n - 1, sizeof(*c->members))) == NULL)) {
		free(c->topics);
		c->topics = NULL;
		goto refuse;
	}
	c->ntopics = (uint8_t)n;
	c->topic = st->topics[0];
	for (i = 0; n > 1 && i < n; i++)
		c->topics[i] = st->topics[i];
	/* A topic the new configuration removed ends the stream, at a frame
	 * boundary with retry:, as a reload did before hand-offs. */
	for (i = 0; i < n; i++) {
		if (serve_topic_live(s, st->topics[i]) == 0) {
			log_debug("fd %d: topic %u was removed: not adopted",
			    fd, st->topics[i]);
			goto refuse;
		}
	}
	/* In the index before the ring is read, as in stream_open. */
	c->member.conn = c;
	if (stream_index_join(s, &c->member, st->topics[0]) == -1)
		goto refuse;
	for (i = 1; i < n; i++) {
		c->members[i - 1].conn = c;
		if (stream_index_join(s, &c->members[i - 1], st->topics[i]) ==
		    -1)
			goto refuse;
	}
	if (s->draining)
		stream_finish(s, c);
	else
		stream_flush(s, c);
	return c->state == CONN_STREAM ? c : NULL;
refuse:
	/* At a frame boundary still: the paced close a reload gave before. */
	stream_forget(s, c);
	stream_finish(s, c);
	return c->state == CONN_STREAM ? c : NULL;
}
