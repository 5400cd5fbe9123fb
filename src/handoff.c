/*
 * handoff: the reload hand-off message (see handoff.h).  The wire form is
 * fixed-size and little-endian so that the decoder is a bounds check and a
 * few field checks: a worker of a later build may read it, and the fuzzer
 * does.  Exactly one descriptor travels with each message; anything else is
 * refused and every descriptor that came with it closed, so a bad message
 * never leaks a socket.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ringcast/handoff.h"

static void
handoff_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t
handoff_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/*
 * Layout: magic 0, version 4 (u16), flags 6 (u16), ntopics 8 (u8), zero
 * padding 9..11, addr_bucket 12, expires 16, idle_ms 20, cursor 24 (u64),
 * topics 32 (u32 each, unused ones zero).
 */
void
handoff_encode(const struct handoff_state *st, uint8_t *buf)
{
	unsigned int	 i;

	memset(buf, 0, HANDOFF_MSG_SIZE);
	handoff_put32(buf, HANDOFF_MAGIC);
	buf[4] = HANDOFF_VERSION & 0xff;
	buf[5] = HANDOFF_VERSION >> 8;
	buf[6] = st->flags & 0xff;
	buf[7] = st->flags >> 8;
	buf[8] = st->ntopics;
	handoff_put32(buf + 12, st->addr_bucket);
	handoff_put32(buf + 16, st->expires);
	handoff_put32(buf + 20, st->idle_ms);
	handoff_put32(buf + 24, (uint32_t)st->cursor);
	handoff_put32(buf + 28, (uint32_t)(st->cursor >> 32));
	for (i = 0; i < st->ntopics && i < HANDOFF_TOPICS_MAX; i++)
		handoff_put32(buf + 32 + 4 * i, st->topics[i]);
}

int
handoff_decode(const uint8_t *buf, size_t len, struct handoff_state *st)
{
	unsigned int	 i, j, n;
	uint16_t	 flags;

	if (len != HANDOFF_MSG_SIZE || handoff_get32(buf) != HANDOFF_MAGIC ||
	    (buf[4] | buf[5] << 8) != HANDOFF_VERSION)
		return -1;
	flags = (uint16_t)(buf[6] | buf[7] << 8);
	n = buf[8];
	if ((flags & ~HANDOFF_CHUNKED) != 0 || n == 0 ||
	    n > HANDOFF_TOPICS_MAX || buf[9] != 0 || buf[10] != 0 ||
	    buf[11] != 0)
		return -1;
	memset(st, 0, sizeof(*st));
	st->flags = flags;
	st->ntopics = (uint8_t)n;
	st->addr_bucket = handoff_get32(buf + 12);
	st->expires = handoff_get32(buf + 16);
	st->idle_ms = handoff_get32(buf + 20);
	st->cursor = (uint64_t)handoff_get32(buf + 24) |
	    (uint64_t)handoff_get32(buf + 28) << 32;
	for (i = 0; i < HANDOFF_TOPICS_MAX; i++) {
		if (i >= n) {
			if (handoff_get32(buf + 32 + 4 * i) != 0)
				return -1;
			continue;
		}
		st->topics[i] = handoff_get32(buf + 32 + 4 * i);
		for (j = 0; j < i; j++)
			if (st->topics[j] == st->topics[i])
				return -1;
	}
	return 0;
}

int
handoff_send(int sock, int fd, const struct handoff_state *st)
{
	uint8_t		 buf[HANDOFF_MSG_SIZE];
	union {
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(int))];
	}		 control;
	struct cmsghdr	*cmsg;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;

	handoff_encode(st, buf);
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	memset(&msg, 0, sizeof(msg));
	memset(&control, 0, sizeof(control));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.space;
	msg.msg_controllen = sizeof(control.space);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(buf)) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* Close every descriptor a message carried. */
static void
handoff_close_rights(struct msghdr *msg)
{
	struct cmsghdr	*cmsg;
	size_t		 i, nfds;
	int		 fd;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			close(fd);
		}
	}
}

int
handoff_recv(int sock, int *fd, struct handoff_state *st)
{
	uint8_t		 buf[HANDOFF_MSG_SIZE + 1];
	union {
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(4 * sizeof(int))];
	}		 control;
	struct cmsghdr	*cmsg;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;

	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.space;
	msg.msg_controllen = sizeof(control.space);
	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n == 0) {
		errno = ECONNRESET;
		return -1;
	}
	cmsg = CMSG_FIRSTHDR(&msg);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || cmsg == NULL ||
	    cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
	    cmsg->cmsg_len != CMSG_LEN(sizeof(int)) ||
	    CMSG_NXTHDR(&msg, cmsg) != NULL ||
	    handoff_decode(buf, (size_t)n, st) == -1) {
		handoff_close_rights(&msg);
		errno = EBADMSG;
		return -1;
	}
	memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	return 1;
}
