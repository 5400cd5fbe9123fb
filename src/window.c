/*
 * window: see window.h.  Chunks never wrap in the data buffer (a chunk that
 * would cross the end starts again at the beginning), so each is one iovec.
 * A frame the ring evicted before the window copied it cannot be told apart
 * from a hole, so the window empties and restarts after it: subscribers
 * behind the new first seq go to the ring, which says whether they lost one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/ring.h"
#include "ringcast/window.h"

int
window_init(struct window *w, uint64_t size, uint32_t nentries,
    uint64_t start_after)
{
	memset(w, 0, sizeof(*w));
	if ((w->data = malloc(size)) == NULL)
		return -1;
	if ((w->entries = calloc(nentries, sizeof(*w->entries))) == NULL) {
		free(w->data);
		w->data = NULL;
		return -1;
	}
	w->size = size;
	w->nentries = nentries;
	w->first = start_after + 1;
	w->last = start_after;
	return 0;
}

void
window_free(struct window *w)
{
	free(w->data);
	free(w->entries);
	memset(w, 0, sizeof(*w));
}

size_t
window_chunk_header(char *hdr, uint32_t len)
{
	return (size_t)snprintf(hdr, 16, "%x\r\n", len);
}

/* Forget everything and continue after seq. */
static void
window_restart(struct window *w, uint64_t after)
{
	w->restarts++;
	w->first = after + 1;
	w->last = after;
}

static void
window_drop_oldest(struct window *w)
{
	w->first++;
}

/* Drop old chunks until [off, off + len) is free and an entry is free. */
static void
window_make_room(struct window *w, uint64_t end)
{
	const struct window_entry	*e;

	while (w->first <= w->last) {
		e = &w->entries[w->first & (w->nentries - 1)];
		if (w->last - w->first + 1 < w->nentries &&
		    e->off + w->size >= end)
			break;
		window_drop_oldest(w);
	}
}

size_t
window_refresh(struct window *w, const struct ring *ring)
{
	struct ring_frame	 frame;
	struct window_entry	*e;
	enum ring_status	 st;
	uint64_t		 committed, seq, off, end;
	size_t			 added = 0, hdrlen, need;
	char			 hdr[16];

	committed = ring_committed(ring);
	while (w->last < committed) {
		seq = w->last + 1;
		st = ring_next(ring, w->last, NULL, 0, &frame);
		if (st == RING_NOT_YET)
			break;
		if (st == RING_EVICTED || frame.seq != seq) {
			/* The ring outran us: start over at its oldest. */
			window_restart(w, ring_oldest(ring) - 1);
			if (w->last >= committed)
				break;
			continue;
		}
		hdrlen = window_chunk_header(hdr, frame.len);
		need = hdrlen + frame.len + 2;
		if (need > w->size / 2) {
			/* Too large to share: subscribers read it from the
			 * ring directly. */
			window_restart(w, seq);
			continue;
		}
		off = w->head;
		if (off % w->size + need > w->size)
			off += w->size - off % w->size;
		end = off + need;
		window_make_room(w, end);
		if (w->first > w->last)
			w->first = seq;
		st = ring_read(ring, seq, w->data + off % w->size + hdrlen,
		    frame.len, &frame);
		if (st != RING_OK) {
			window_restart(w, ring_oldest(ring) - 1);
			continue;
		}
		memcpy(w->data + off % w->size, hdr, hdrlen);
		memcpy(w->data + off % w->size + hdrlen + frame.len, "\r\n", 2);
		e = &w->entries[seq & (w->nentries - 1)];
		e->seq = seq;
		e->off = off;
		e->len = (uint32_t)need;
		e->topic = frame.topic;
		e->hdrlen = (uint8_t)hdrlen;
		e->prev = w->topic_last[frame.topic % WINDOW_TOPIC_HINTS];
		w->head = end;
		w->last = seq;
		w->topic_last[frame.topic % WINDOW_TOPIC_HINTS] = seq;
		added++;
	}
	return added;
}

const struct window_entry *
window_get(const struct window *w, uint64_t seq)
{
	const struct window_entry	*e;

	if (seq < w->first || seq > w->last)
		return NULL;
	e = &w->entries[seq & (w->nentries - 1)];
	return e->seq == seq ? e : NULL;
}

const char *
window_bytes(const struct window *w, const struct window_entry *e, int chunked,
    uint32_t *len)
{
	const char	*p = w->data + e->off % w->size;

	if (chunked) {
		*len = e->len;
		return p;
	}
	*len = e->len - e->hdrlen - 2;
	return p + e->hdrlen;
}

int
window_may_have(const struct window *w, uint32_t topic, uint64_t after)
{
	return w->topic_last[topic % WINDOW_TOPIC_HINTS] > after;
}

uint64_t
window_topic_newest(const struct window *w, uint32_t topic)
{
	uint64_t	 seq = w->topic_last[topic % WINDOW_TOPIC_HINTS];

	return seq >= w->first && seq <= w->last ? seq : 0;
}
