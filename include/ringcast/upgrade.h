/*
 * upgrade: what a master passes to the new ringcastd it execs on a binary
 * upgrade (SIGUSR2), in two environment variables.  RINGCAST_LISTEN_FDS
 * names the inherited listening sockets ("fd:address,..." with the address
 * as the configuration writes it); RINGCAST_UPGRADE names the shared state
 * ("1:ctl:generation:nslots:metrics:wake:send0:recv0:send1:recv1:...",
 * version 1, then the control socket, the generation the old master runs,
 * the slot count, the two memory files and every slot's hand-off inbox);
 * RINGCAST_UPGRADE_RING names the ring the old workers map
 * ("size:slots:path"), which the new master keeps, as a reload does.
 * All are internal: an operator never sets them.  Parsing is strict: a
 * value that is not exactly of this form is refused with a message.
 */
#ifndef RINGCAST_UPGRADE_H
#define RINGCAST_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#define UPGRADE_ENV_LISTEN	"RINGCAST_LISTEN_FDS"
#define UPGRADE_ENV_STATE	"RINGCAST_UPGRADE"
#define UPGRADE_ENV_RING	"RINGCAST_UPGRADE_RING"
#define UPGRADE_VERSION		1
#define UPGRADE_LISTEN_MAX	16	/* 2 * CONFIG_LISTEN_MAX */
#define UPGRADE_ADDR_MAX	64	/* config_addr.text */
#define UPGRADE_SLOTS_MAX	1024	/* 2 * 256 workers + 2, rounded up */

struct upgrade_listener {
	int	 fd;
	char	 addr[UPGRADE_ADDR_MAX];
};

struct upgrade_state {
	int		 ctl;		/* SOCK_SEQPACKET to the old master */
	int		 generation;	/* the old master's newest */
	unsigned int	 nslots;
	int		 metrics_fd;	/* metrics_attach */
	int		 wake_fd;	/* wake_attach */
	int		 inbox_send[UPGRADE_SLOTS_MAX];
	int		 inbox_recv[UPGRADE_SLOTS_MAX];
};

/* Parse a RINGCAST_LISTEN_FDS value into out (at most max entries): 0 with
 * *n set, or -1 with a message in err (empty list, a descriptor that is not
 * a decimal above 2 or is named twice, an empty or overlong address, too
 * many entries). */
int	upgrade_parse_listen(const char *text, struct upgrade_listener *out,
	    size_t max, size_t *n, char *err, size_t errlen);
/* Append "fd:addr" to the list in buf (size len, NUL-terminated): 0, or -1
 * if it does not fit or addr holds a ',' (buf then unchanged). */
int	upgrade_format_listen(char *buf, size_t len, int fd, const char *addr);
/* Parse a RINGCAST_UPGRADE value into st: 0, or -1 with a message in err
 * (another version, a field that is not a decimal, a descriptor below 3 or
 * named twice, nslots of 0 or above UPGRADE_SLOTS_MAX, a count of inboxes
 * other than nslots). */
int	upgrade_parse_state(const char *text, struct upgrade_state *st,
	    char *err, size_t errlen);
/* Format st as a RINGCAST_UPGRADE value into buf: 0, or -1 if it does not
 * fit. */
int	upgrade_format_state(char *buf, size_t len,
	    const struct upgrade_state *st);

/* Parse a RINGCAST_UPGRADE_RING value: 0 with *size, *slots and path
 * (pathlen bytes) set, or -1 with a message in err (a size or slot count
 * that is not a decimal, an empty or overlong path). */
int	upgrade_parse_ring(const char *text, uint64_t *size, uint32_t *slots,
	    char *path, size_t pathlen, char *err, size_t errlen);

#endif
