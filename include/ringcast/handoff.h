/*
 * handoff: a stream passed from a retiring worker to a worker of the new
 * generation on reload (DESIGN §10.5): its socket with SCM_RIGHTS and its
 * delivery state in one fixed-size, versioned, little-endian message over a
 * SOCK_SEQPACKET socket.  A stream is handed only at a frame boundary, so
 * the state is whole: a cursor, topics, framing, address bucket, expiry.
 */
#ifndef RINGCAST_HANDOFF_H
#define RINGCAST_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#define HANDOFF_MAGIC		0x4f484352u	/* "RCHO" */
#define HANDOFF_VERSION		1
#define HANDOFF_TOPICS_MAX	32		/* STREAM_TOPICS_MAX */
#define HANDOFF_MSG_SIZE	(32 + 4 * HANDOFF_TOPICS_MAX)
#define HANDOFF_CHUNKED		0x0001		/* HTTP/1.1 chunked framing */

struct handoff_state {
	uint64_t	 cursor;	/* last seq sent or skipped */
	uint32_t	 topics[HANDOFF_TOPICS_MAX];	/* catalog ids */
	uint8_t		 ntopics;	/* 1..HANDOFF_TOPICS_MAX */
	uint16_t	 flags;		/* HANDOFF_CHUNKED */
	uint32_t	 addr_bucket;	/* the peer's per-address bucket */
	uint32_t	 expires;	/* JWT end, monotonic second, or 0 */
	uint32_t	 idle_ms;	/* since its last output */
};

/* Encode st into buf (HANDOFF_MSG_SIZE bytes); st must be valid. */
void	handoff_encode(const struct handoff_state *st, uint8_t *buf);
/* Decode len bytes into st: 0, or -1 unless they are exactly one message
 * of this version with 1..HANDOFF_TOPICS_MAX distinct topics, no unknown
 * flags and zero padding. */
int	handoff_decode(const uint8_t *buf, size_t len, struct handoff_state *st);
/* Send stream socket fd with st over sock without blocking: 0, or -1 with
 * errno (the caller still owns fd either way and closes its copy). */
int	handoff_send(int sock, int fd, const struct handoff_state *st);
/* Receive one stream from sock without blocking: 1 with *fd (close-on-exec,
 * the caller's) and st, 0 when none is waiting, -1 with errno on an error
 * or (EBADMSG) a malformed message, whose descriptors are closed. */
int	handoff_recv(int sock, int *fd, struct handoff_state *st);

#endif
