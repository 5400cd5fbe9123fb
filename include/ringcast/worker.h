/*
 * worker: one prefork worker process: an epoll loop that accepts from the
 * shared listeners (EPOLLEXCLUSIVE, no thundering herd), hands connection
 * events to conn.c (requests) and stream.c (streams), runs the fan-out when
 * the ring advances (its wake eventfd, written by a publisher when this
 * worker has a stream of the topic, and a 100 ms poll for appenders outside
 * the daemon), and drains on SIGTERM.
 */
#ifndef RINGCAST_WORKER_H
#define RINGCAST_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "ringcast/conn.h"
#include "ringcast/serve.h"

struct config;
struct metrics;
struct ring;
struct wake;

/* What the master hands a worker at fork. */
struct worker_params {
	const struct config	*conf;
	struct ring		*ring;
	struct metrics		*shm;
	struct wake		*wake;
	unsigned int		 slot;		/* index into shm->slots */
	unsigned int		 index;		/* 0..workers-1, for names */
	int			 generation;
	const int		*listen_fds;
	size_t			 nlisten;
	const int		*admin_fds;
	size_t			 nadmin;
	int			 master_pid;
	/* Hand-off inboxes, one per slot of shm (nslots): a worker reads
	 * its own and sends to those of a newer generation. */
	const int		*inbox_send;
	const int		*inbox_recv;
	unsigned int		 nslots;
};

/* An epoll registration: the first member of every registered object. */
enum worker_kind {
	WORKER_KIND_LISTENER = 1,
	WORKER_KIND_CONN = CONN_KIND,
	WORKER_KIND_WAKE,
	WORKER_KIND_SIGNAL,
	WORKER_KIND_TIMER,
	WORKER_KIND_INBOX,
	WORKER_KIND_HANDOFF,	/* room in an inbox we hand streams to */
	WORKER_KIND_CLUSTER,	/* JetStream acknowledgements arrived */
};

struct worker_listener {
	uint8_t		 kind;
	int		 admin;
	int		 proxy_protocol;	/* a PROXY header opens each */
	int		 fd;
	int		 registered;
};

struct worker {
	struct serve		 serve;		/* what the handlers see */
	const struct config	*conf;
	unsigned int		 index;
	int			 generation;
	int			 epfd;
	uint8_t			 wake_kind, signal_kind, timer_kind;
	uint8_t			 inbox_kind;
	uint8_t			 cluster_kind;
	int			 inbox;		/* streams handed to us */
	int			*inbox_send;	/* per slot; ours is -1 */
	unsigned int		 nslots;
	unsigned int		 slot;
	unsigned int		 handoff_next;	/* round robin over targets */
	uint8_t			 handoff_kind;
	uint8_t			*handoff_watched; /* per slot: EPOLLOUT on */
	int			 handoff_on;	/* retiring with targets */
	size_t			 handoff_handed; /* streams handed over */
	size_t			 handoff_cut;	/* closed at the retire bound */
	int			 sigfd;
	int			 timerfd;
	struct worker_listener	*listeners;
	size_t			 nlisteners;
	int			 accept_paused;	/* EMFILE: retry on a tick */
	int			 balance_off;	/* over its share: not listening */
	int			 master_pid;
	uint64_t		 last_heartbeat_scan_ms;
	uint64_t		 last_demo_ms;
};

/* Drop root privileges to [server] user (if set and running as root), in
 * one checked step; fatal on failure.  The archiver drops them the same
 * way. */
void	worker_drop_privileges(const struct config *conf);
/* Run a worker until it has drained; never returns (exits the process). */
void	worker_main(const struct worker_params *params)
	    __attribute__((noreturn));


#endif
