/*
 * worker: one prefork worker process: an epoll loop that accepts from the
 * shared listeners (EPOLLEXCLUSIVE, no thundering herd), serves HTTP and SSE
 * through conn.c, refreshes its frame window when the ring advances (an
 * eventfd written by whichever process appended, and a 100 ms poll for
 * appenders outside the daemon), and drains on SIGTERM.
 */
#ifndef RINGCAST_WORKER_H
#define RINGCAST_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "ringcast/window.h"

struct catalog;
struct config;
struct conn;
struct metrics;
struct metrics_slot;
struct ring;

/* What the master hands a worker at fork. */
struct worker_params {
	const struct config	*conf;
	struct ring		*ring;
	struct metrics		*shm;
	unsigned int		 slot;		/* index into shm->slots */
	unsigned int		 index;		/* 0..workers-1, for names */
	int			 generation;
	const int		*listen_fds;
	size_t			 nlisten;
	const int		*admin_fds;
	size_t			 nadmin;
	int			 master_pid;
};

/* An epoll registration: the first member of every registered object. */
enum worker_kind {
	WORKER_KIND_LISTENER = 1,
	WORKER_KIND_CONN,
	WORKER_KIND_WAKE,
	WORKER_KIND_SIGNAL,
	WORKER_KIND_TIMER,
};

struct worker_listener {
	uint8_t		 kind;
	int		 admin;
	int		 fd;
	int		 registered;
};

TAILQ_HEAD(conn_list, conn);

struct worker {
	const struct config	*conf;
	struct ring		*ring;
	struct catalog		*cat;		/* NULL while unavailable */
	struct metrics		*shm;
	struct metrics_slot	*slot;
	unsigned int		 index;
	int			 generation;
	int			 epfd;
	uint8_t			 wake_kind, signal_kind, timer_kind;
	int			 sigfd;
	int			 timerfd;
	struct worker_listener	*listeners;
	size_t			 nlisteners;
	int			 accept_paused;	/* EMFILE: retry on a tick */
	int			 balance_off;	/* over its share: not listening */
	int			 draining;	/* SIGTERM: finish and exit */
	uint64_t		 drain_start_ms;
	int			 master_pid;
	int			 retiring;	/* reload: spread closes */
	int			 stream_more;	/* a stream is owed more and
						 * its socket takes it */
	uint64_t		 retire_start_ms;
	uint64_t		 now_ms;
	uint64_t		 last_heartbeat_scan_ms;
	uint64_t		 last_demo_ms;
	uint64_t		 last_catalog_try_ms;
	struct window		 window;
	struct conn_list	 streams;
	struct conn_list	 requests;
	struct conn_list	 closed;	/* freed after each batch */
	size_t			 nstreams;
	size_t			 nconns;
	char			*iobuf;		/* one read buffer for all */
	size_t			 iobufsize;
	char			*scratch;	/* frame copies, encodings */
	size_t			 scratchsize;
	size_t			 drained;	/* streams ended at a boundary */
	size_t			 forced;
};

/* Run a worker until it has drained; never returns (exits the process). */
void	worker_main(const struct worker_params *params)
	    __attribute__((noreturn));

/* The ring notify hook: wake every worker (eventfd writes). */
void	worker_wake_all(void *arg, uint64_t seq);
/* Open the catalog if it is not open (rate-limited); 0 when it is open. */
int	worker_catalog(struct worker *w);

#endif
