/*
 * window: a worker-local copy of the newest frames of the ring, validated
 * once and shared by every subscriber of the worker, so live delivery never
 * writes from the shared map (which a writer may overwrite mid-copy).  Each
 * frame is held in its HTTP/1.1 chunk ("LEN\r\n" frame "\r\n"); close-
 * delimited streams skip the chunk framing.  The window holds every seq in
 * [first, last] with no hole; when the ring outruns it, it starts over.
 */
#ifndef RINGCAST_WINDOW_H
#define RINGCAST_WINDOW_H

#include <stddef.h>
#include <stdint.h>

struct ring;

#define WINDOW_TOPIC_HINTS	4096

struct window_entry {
	uint64_t	 seq;
	uint64_t	 prev;		/* previous seq of the same topic hint
					 * bucket, or 0: the topic's chain */
	uint64_t	 off;		/* logical offset of the chunk */
	uint32_t	 len;		/* chunk bytes: header + frame + CRLF */
	uint32_t	 topic;
	uint8_t		 hdrlen;	/* "LEN\r\n" bytes */
};

struct window {
	char			*data;
	uint64_t		 size;
	struct window_entry	*entries;
	uint32_t		 nentries;	/* a power of two */
	uint64_t		 first;		/* oldest seq held */
	uint64_t		 last;		/* newest seq held; first - 1 if empty */
	uint64_t		 head;		/* logical offset of the next chunk */
	/* Newest seq copied per topic hash: a quick "nothing for you", and
	 * the head of the bucket's chain of entries (window_entry.prev). */
	uint64_t		 topic_last[WINDOW_TOPIC_HINTS];
	uint64_t		 restarts;	/* times the ring outran it */
};

/* Allocate a window of size bytes and nentries frames; 0 or -1. */
int	window_init(struct window *w, uint64_t size, uint32_t nentries,
	    uint64_t start_after);
void	window_free(struct window *w);
/* Copy every frame committed since the last call from the ring; returns the
 * number of frames added. */
size_t	window_refresh(struct window *w, const struct ring *ring);
/* The entry of seq, or NULL when seq is not held. */
const struct window_entry *window_get(const struct window *w, uint64_t seq);
/* The bytes of an entry: chunked (1) or bare frame (0). */
const char *window_bytes(const struct window *w, const struct window_entry *e,
	    int chunked, uint32_t *len);
/* Could the window hold something newer than seq for topic?  0 when it
 * certainly holds nothing; 1 when it may. */
int	window_may_have(const struct window *w, uint32_t topic, uint64_t after);
/* The newest held seq of topic's hint bucket, or 0; follow the chain with
 * window_get(seq)->prev.  Every held seq of the bucket is on the chain. */
uint64_t window_topic_newest(const struct window *w, uint32_t topic);
/* Format the chunk header of a frame of len bytes into hdr[16]; its length. */
size_t	window_chunk_header(char *hdr, uint32_t len);

#endif
