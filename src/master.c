/*
 * master: signals are blocked and taken synchronously with sigtimedwait, so
 * nothing runs in signal context at all.  Workers live in slots of the shared
 * state; a slot keeps its counters across respawns, and a dead worker's
 * gauges are zeroed so the connection caps stay true.  Stopping escalates
 * from SIGTERM (drain) to SIGKILL at drain_timeout, nginx-style, and so does
 * a reload for the generation it retires (SIGUSR2): no old generation
 * outlives drain_timeout, so the slots of the next reload are always free.
 * Each slot has a hand-off inbox (a SOCK_SEQPACKET pair made before any
 * fork): a retiring worker sends its streams to the inboxes of the new
 * generation's slots, and the master holds both ends, so streams queued for
 * a worker that crashed wait for its respawn, or are closed at its reap.
 *
 * Binary upgrade (SIGUSR2 to the master; a worker's SIGUSR2 is its retire
 * order, from us): the new master is, to the old one's workers, just the
 * next generation.  The old master forks and execs its own binary path
 * (argv kept), passing everything shared across exec: the listeners
 * (RINGCAST_LISTEN_FDS), the metrics and wake-up tables (memory files, and
 * the wake eventfds under the same numbers), every slot's hand-off inbox
 * and a control socket (RINGCAST_UPGRADE), and the running ring
 * (RINGCAST_UPGRADE_RING; see upgrade.h).  The new master maps the same
 * state, opens the same ring, starts its generation in the
 * free slots (generation + 1) and says "ready" on the control socket once
 * every new worker is in its loop; the old master then retires all its
 * workers exactly as a reload does, so they hand their streams to the new
 * generation's inboxes (no new socket, no new protocol), stops its
 * archiver and relay, lets go of the pidfile and says "go": the new master
 * writes its pid and starts its own archiver and relay.  The old master
 * exits when its last worker has, at drain_timeout at most, and leaves the
 * pidfile alone.  A new binary that cannot exec, exits, or is not ready
 * within MASTER_UPGRADE_READY_MS is reaped or killed, and the old master
 * serves on.
 * A slot is free only when no master's worker holds it: the other master's
 * dead workers' slots are freed by whoever sees them gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/archiver.h"
#include "ringcast/catalog.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/handoff.h"
#include "ringcast/history.h"
#include "ringcast/log.h"
#include "ringcast/master.h"
#include "ringcast/metrics.h"
#include "ringcast/relay.h"
#include "ringcast/ring.h"
#include "ringcast/upgrade.h"
#include "ringcast/wake.h"
#include "ringcast/worker.h"

#define MASTER_BACKOFF_MIN_MS	100
#define MASTER_BACKOFF_MAX_MS	10000
#define MASTER_CRASH_WINDOW_MS	2000
#define MASTER_BIND_RETRY_MS	5000
#define MASTER_SYNC_MS		1000
/* The hand-off inboxes' socket buffers (the kernel doubles it; a message
 * costs about 1 KiB): some 450 streams in flight per inbox, a few of the
 * new worker's bursts.  More would not go faster, only leave streams
 * silent longer in the queue, where no worker serves them. */
#define MASTER_INBOX_BUFFER	(256 * 1024)
/* A binary upgrade: how long the new master has to get every worker into
 * its loop, and how long it waits for the old master to let go. */
#define MASTER_UPGRADE_READY_MS	30000
#define MASTER_UPGRADE_GO_MS	10000
#define MASTER_UPGRADE_READY	"ready"
#define MASTER_UPGRADE_GO	"go"

enum master_upgrade_state {
	MASTER_UPGRADE_NONE,
	MASTER_UPGRADE_STARTED,		/* old: the new one is starting */
	MASTER_UPGRADE_HANDING,		/* old: archiver, relay stopping */
	MASTER_UPGRADE_HANDED,		/* old: retiring, exit when empty */
	MASTER_UPGRADE_ADOPTED,		/* new: workers starting */
	MASTER_UPGRADE_WAITING,		/* new: ready, waiting for "go" */
};

struct master_upgrade {
	enum master_upgrade_state state;
	pid_t		 pid;		/* old: the new master */
	pid_t		 old_pid;	/* new: the old master */
	int		 ctl;		/* control socket, or -1 */
	uint64_t	 deadline_ms;
	char		 exe[PATH_MAX];	/* our binary's path at start */
	char		 cwd[PATH_MAX];
};

struct master;

static char *const *master_argv;

static int	master_upgrade_reaped(struct master *, pid_t, int);

struct master_slot {
	pid_t		 pid;
	int		 generation;
	unsigned int	 index;
	uint64_t	 started_ms;
	uint64_t	 respawn_at_ms;	/* 0: none pending */
	uint64_t	 backoff_ms;
	uint64_t	 retire_ms;	/* told to retire at; 0: serving */
	uint64_t	 drain_timeout_ms; /* of the conf it was started with */
};

struct master {
	struct config		*conf;
	int			 conf_owned;	/* conf came from a reload */
	const char		*file;
	struct ring		*ring;
	struct metrics		*shm;
	struct wake		*wake;
	struct master_slot	*slots;
	unsigned int		 nslots;
	int			*inbox_send;	/* per slot: hand-off inbox */
	int			*inbox_recv;
	int			 generation;
	int			*listen_fds;
	size_t			 nlisten;
	int			*admin_fds;
	size_t			 nadmin;
	struct config_addr	*listen_addrs;	/* what listen_fds are */
	struct config_addr	*admin_addrs;
	pid_t			 pid;
	struct pidfh		*pfh;
	int			 stopping;
	uint64_t		 last_sync_ms;
	struct master_slot	 archiver;	/* pid 0: not running */
	struct master_slot	 relay;		/* [cluster]; pid 0: none */
	struct master_upgrade	 up;		/* binary upgrade */
};

static uint64_t
master_clock_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
master_listen_one(const struct config_addr *addr)
{
	uint64_t	 deadline = master_clock_ms() + MASTER_BIND_RETRY_MS;
	int		 fd, one = 1;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("listen %s: socket", addr->text);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Workers of a previous master may hold the port while draining. */
	while (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1) {
		if (errno != EADDRINUSE || master_clock_ms() > deadline) {
			log_warn("listen %s: bind", addr->text);
			close(fd);
			return -1;
		}
		usleep(100 * 1000);
	}
	if (listen(fd, 4096) == -1) {
		log_warn("listen %s: listen", addr->text);
		close(fd);
		return -1;
	}
	return fd;
}

/* Open the sockets of addrs, reusing those of old (same text) when given.
 * Returns 0, or -1 having closed whatever it opened. */
static int
master_listen_set(const struct config_addr *addrs, size_t n, int **fdsp,
    const struct config_addr *old_addrs, const int *old_fds, size_t nold)
{
	int	*fds;
	size_t	 i, j;

	if ((fds = calloc(n + 1, sizeof(*fds))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		fds[i] = -1;
		for (j = 0; j < nold; j++)
			if (strcmp(addrs[i].text, old_addrs[j].text) == 0 &&
			    old_fds[j] != -1)
				fds[i] = dup(old_fds[j]);
		if (fds[i] == -1 && (fds[i] = master_listen_one(&addrs[i])) ==
		    -1) {
			while (i-- > 0)
				close(fds[i]);
			free(fds);
			return -1;
		}
	}
	*fdsp = fds;
	return 0;
}

static void
master_close_set(int *fds, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
	free(fds);
}

static int
master_listeners(struct master *m, struct config *conf)
{
	int	*fds, *admin;

	if (master_listen_set(conf->listen, conf->nlisten, &fds,
	    m->listen_addrs, m->listen_fds, m->nlisten) == -1)
		return -1;
	if (master_listen_set(conf->admin_listen, conf->nadmin_listen, &admin,
	    m->admin_addrs, m->admin_fds, m->nadmin) == -1) {
		master_close_set(fds, conf->nlisten);
		return -1;
	}
	if (m->listen_fds != NULL)
		master_close_set(m->listen_fds, m->nlisten);
	if (m->admin_fds != NULL)
		master_close_set(m->admin_fds, m->nadmin);
	m->listen_fds = fds;
	m->nlisten = conf->nlisten;
	m->admin_fds = admin;
	m->nadmin = conf->nadmin_listen;
	m->listen_addrs = conf->listen;
	m->admin_addrs = conf->admin_listen;
	return 0;
}

/* Size a socket buffer of an inbox end: forced past net.core.[rw]mem_max
 * when we may (root), else as large as the sysctl allows. */
static void
master_inbox_buffer(int fd, int force, int opt)
{
	int	 size = MASTER_INBOX_BUFFER;

	if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof(size)) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size)) == -1)
		log_warn("inbox buffer");
}

/* One hand-off inbox per slot, before any fork, so that every worker,
 * of any generation, can send to the slots of the next. */
static void
master_inboxes(struct master *m)
{
	unsigned int	 i;
	int		 pair[2];

	for (i = 0; i < m->nslots; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, pair) == -1)
			fatal("socketpair");
		master_inbox_buffer(pair[0], SO_SNDBUFFORCE, SO_SNDBUF);
		master_inbox_buffer(pair[1], SO_RCVBUFFORCE, SO_RCVBUF);
		m->inbox_send[i] = pair[0];
		m->inbox_recv[i] = pair[1];
	}
}

static void
master_spawn(struct master *m, unsigned int slot)
{
	struct master_slot	*s = &m->slots[slot];
	struct worker_params	 p;
	pid_t			 pid;

	memset(&p, 0, sizeof(p));
	p.conf = m->conf;
	p.ring = m->ring;
	p.shm = m->shm;
	p.wake = m->wake;
	p.slot = slot;
	p.index = s->index;
	p.generation = s->generation;
	p.listen_fds = m->listen_fds;
	p.nlisten = m->nlisten;
	p.admin_fds = m->admin_fds;
	p.nadmin = m->nadmin;
	p.master_pid = m->pid;
	p.inbox_send = m->inbox_send;
	p.inbox_recv = m->inbox_recv;
	p.nslots = m->nslots;

	__atomic_store_n(&m->shm->slots[slot].ready, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&m->shm->slots[slot].active, 1, __ATOMIC_RELEASE);
	wake_set_active(m->wake, slot, 1);
	switch (pid = fork()) {
	case -1:
		log_warn("fork worker %u", s->index);
		__atomic_store_n(&m->shm->slots[slot].active, 0,
		    __ATOMIC_RELEASE);
		wake_slot_reset(m->wake, slot);
		s->respawn_at_ms = master_clock_ms() + MASTER_BACKOFF_MAX_MS;
		return;
	case 0:
		/* The pidfile's lock is the master's: a worker that outlives
		 * a killed master must not keep a new one from starting. */
		if (m->pfh != NULL)
			pidfile_close(m->pfh);
		if (m->up.ctl != -1)
			close(m->up.ctl);
		/* The signal mask stays as the master's (all of ours
		 * blocked) until worker_setup sets its own: a SIGUSR1 sent
		 * now must wait for the worker's signalfd, not kill it. */
		worker_main(&p);
	default:
		break;
	}
	s->pid = pid;
	s->started_ms = master_clock_ms();
	s->respawn_at_ms = 0;
	s->retire_ms = 0;
	s->drain_timeout_ms = m->conf->drain_timeout_ms;
	m->shm->slots[slot].pid = pid;
	m->shm->slots[slot].generation = s->generation;
	log_debug("worker %u started: pid %ld, slot %u", s->index, (long)pid,
	    slot);
}

/* Whether slot i is free: no worker of ours, none pending, and none of
 * another master's (a binary upgrade shares the slots). */
static int
master_slot_free(const struct master *m, unsigned int i)
{
	return m->slots[i].pid == 0 && m->slots[i].respawn_at_ms == 0 &&
	    !__atomic_load_n(&m->shm->slots[i].active, __ATOMIC_ACQUIRE);
}

/* Start a generation of workers in free slots. */
static void
master_spawn_generation(struct master *m)
{
	unsigned int	 want = config_workers(m->conf), i, started = 0;

	m->generation++;
	for (i = 0; i < m->nslots && started < want; i++) {
		if (!master_slot_free(m, i))
			continue;
		m->slots[i].generation = m->generation;
		m->slots[i].index = started++;
		m->slots[i].backoff_ms = 0;
		master_spawn(m, i);
	}
	if (started < want)
		log_warnx("only %u of %u workers started: out of slots "
		    "(restart to grow)", started, want);
}

/* Start the archiver (it drops privileges itself, as a worker does). */
static void
master_spawn_archiver(struct master *m)
{
	struct archiver_params	 p;
	pid_t			 pid;
	size_t			 i;

	memset(&p, 0, sizeof(p));
	p.conf = m->conf;
	p.ring = m->ring;
	p.shm = m->shm;
	p.master_pid = m->pid;
	switch (pid = fork()) {
	case -1:
		log_warn("fork archiver");
		m->archiver.respawn_at_ms = master_clock_ms() +
		    MASTER_BACKOFF_MAX_MS;
		return;
	case 0:
		/* Not the archiver's: a port must close when the master
		 * closes it, and the pidfile lock is the master's. */
		if (m->pfh != NULL)
			pidfile_close(m->pfh);
		if (m->up.ctl != -1)
			close(m->up.ctl);
		for (i = 0; i < m->nlisten; i++)
			close(m->listen_fds[i]);
		for (i = 0; i < m->nadmin; i++)
			close(m->admin_fds[i]);
		archiver_main(&p);
	default:
		break;
	}
	m->archiver.pid = pid;
	m->archiver.started_ms = master_clock_ms();
	m->archiver.respawn_at_ms = 0;
	__atomic_store_n(&m->shm->archiver.running, 1, __ATOMIC_RELAXED);
	log_debug("archiver started: pid %ld", (long)pid);
}

/* Clear the history store's reader slots of dead processes. */
static void
master_history_reader_check(struct master *m)
{
	struct history	*h;
	char		 path[PATH_MAX], err[PATH_MAX + 256];
	int		 n;

	if (history_path(path, sizeof(path), m->conf->catalog_path) == -1 ||
	    history_open(&h, path, m->conf->history_map_size, 0, err,
	    sizeof(err)) == -1)
		return;		/* none yet */
	if ((n = history_reader_check(h)) > 0)
		log_info("history: cleared %d stale reader slots", n);
	history_close(h);
}

/* The archiver exited: respawn it, backing off when it crashes in a loop
 * (a clean exit is a reload's: at once). */
static void
master_archiver_exited(struct master *m, int status)
{
	struct master_slot	*s = &m->archiver;
	uint64_t		 now = master_clock_ms(), ran;
	pid_t			 pid = s->pid;

	ran = now - s->started_ms;
	s->pid = 0;
	__atomic_store_n(&m->shm->archiver.running, 0, __ATOMIC_RELAXED);
	if (WIFSIGNALED(status))
		log_warnx("archiver (pid %ld) killed by signal %d%s",
		    (long)pid, WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else if (WEXITSTATUS(status) != 0)
		log_warnx("archiver exited with status %d",
		    WEXITSTATUS(status));
	if (m->stopping)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		s->backoff_ms = 0;
		s->respawn_at_ms = now;
		return;
	}
	__atomic_fetch_add(&m->shm->archiver.restarts, 1, __ATOMIC_RELAXED);
	master_history_reader_check(m);
	if (ran < MASTER_CRASH_WINDOW_MS)
		s->backoff_ms = s->backoff_ms == 0 ? MASTER_BACKOFF_MIN_MS :
		    s->backoff_ms * 2;
	else
		s->backoff_ms = MASTER_BACKOFF_MIN_MS;
	if (s->backoff_ms > MASTER_BACKOFF_MAX_MS)
		s->backoff_ms = MASTER_BACKOFF_MAX_MS;
	s->respawn_at_ms = now + s->backoff_ms;
}

/* Start the cluster relay ([cluster] nats only); it drops privileges
 * itself, as the archiver does. */
static void
master_spawn_relay(struct master *m)
{
	struct relay_params	 p;
	pid_t			 pid;
	size_t			 i;

	__atomic_store_n(&m->shm->cluster.enabled,
	    (uint64_t)cluster_enabled(m->conf), __ATOMIC_RELAXED);
	if (!cluster_enabled(m->conf))
		return;
	memset(&p, 0, sizeof(p));
	p.conf = m->conf;
	p.ring = m->ring;
	p.shm = m->shm;
	p.wake = m->wake;
	p.master_pid = m->pid;
	switch (pid = fork()) {
	case -1:
		log_warn("fork relay");
		m->relay.respawn_at_ms = master_clock_ms() +
		    MASTER_BACKOFF_MAX_MS;
		return;
	case 0:
		if (m->pfh != NULL)
			pidfile_close(m->pfh);
		if (m->up.ctl != -1)
			close(m->up.ctl);
		for (i = 0; i < m->nlisten; i++)
			close(m->listen_fds[i]);
		for (i = 0; i < m->nadmin; i++)
			close(m->admin_fds[i]);
		relay_main(&p);
	default:
		break;
	}
	m->relay.pid = pid;
	m->relay.started_ms = master_clock_ms();
	m->relay.respawn_at_ms = 0;
	__atomic_store_n(&m->shm->cluster.running, 1, __ATOMIC_RELAXED);
	log_debug("relay started: pid %ld", (long)pid);
}

/* The relay exited: as master_archiver_exited. */
static void
master_relay_exited(struct master *m, int status)
{
	struct master_slot	*s = &m->relay;
	uint64_t		 now = master_clock_ms(), ran;
	pid_t			 pid = s->pid;

	ran = now - s->started_ms;
	s->pid = 0;
	__atomic_store_n(&m->shm->cluster.running, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->shm->cluster.connected, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->shm->cluster.consuming, 0, __ATOMIC_RELAXED);
	if (WIFSIGNALED(status))
		log_warnx("relay (pid %ld) killed by signal %d%s",
		    (long)pid, WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else if (WEXITSTATUS(status) != 0)
		log_warnx("relay exited with status %d", WEXITSTATUS(status));
	if (m->stopping)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		s->backoff_ms = 0;
		s->respawn_at_ms = now;
		return;
	}
	__atomic_fetch_add(&m->shm->cluster.restarts, 1, __ATOMIC_RELAXED);
	if (ran < MASTER_CRASH_WINDOW_MS)
		s->backoff_ms = s->backoff_ms == 0 ? MASTER_BACKOFF_MIN_MS :
		    s->backoff_ms * 2;
	else
		s->backoff_ms = MASTER_BACKOFF_MIN_MS;
	if (s->backoff_ms > MASTER_BACKOFF_MAX_MS)
		s->backoff_ms = MASTER_BACKOFF_MAX_MS;
	s->respawn_at_ms = now + s->backoff_ms;
}

/* Slots a new generation may use: no worker, no respawn pending. */
static unsigned int
master_free_slots(const struct master *m)
{
	unsigned int	 i, n = 0;

	for (i = 0; i < m->nslots; i++)
		if (master_slot_free(m, i))
			n++;
	return n;
}

static void
master_reader_check(struct master *m)
{
	struct catalog	*cat;
	char		 err[512];
	int		 n;

	if (catalog_open(&cat, m->conf->catalog_path, m->conf->catalog_map_size,
	    0, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return;
	}
	if ((n = catalog_reader_check(cat)) > 0)
		log_info("catalog: cleared %d stale reader slots", n);
	catalog_close(cat);
	master_history_reader_check(m);
}

/*
 * Close the streams still queued in the hand-off inbox of a slot that no
 * worker will read again (an old generation's, or at a stop): each client
 * sees its connection end without the chunked terminator and reconnects
 * with Last-Event-ID, rather than wait on a socket nobody serves.
 */
static void
master_inbox_drain(struct master *m, unsigned int slot)
{
	struct handoff_state	 st;
	int			 fd, rc, n = 0;

	while ((rc = handoff_recv(m->inbox_recv[slot], &fd, &st)) != 0) {
		if (rc == 1) {
			close(fd);
			n++;
		} else if (errno != EBADMSG)
			break;
	}
	if (n > 0)
		log_warnx("slot %u: closed %d streams handed to a worker that "
		    "is gone", slot, n);
}

static void
master_reap(struct master *m)
{
	struct master_slot	*s;
	unsigned int		 i;
	uint64_t		 now, ran;
	pid_t			 pid;
	int			 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (master_upgrade_reaped(m, pid, status))
			continue;
		if (pid == m->archiver.pid) {
			master_archiver_exited(m, status);
			continue;
		}
		if (pid == m->relay.pid) {
			master_relay_exited(m, status);
			continue;
		}
		for (i = 0; i < m->nslots; i++)
			if (m->slots[i].pid == pid)
				break;
		if (i == m->nslots)
			continue;
		s = &m->slots[i];
		now = master_clock_ms();
		ran = now - s->started_ms;
		s->pid = 0;
		metrics_slot_reset(&m->shm->slots[i]);
		/* Its streams are gone: publishers stop waking it. */
		wake_slot_reset(m->wake, i);
		if (WIFSIGNALED(status))
			log_warnx("worker %u (pid %ld) killed by signal %d%s",
			    s->index, (long)pid, WTERMSIG(status),
			    WCOREDUMP(status) ? " (core dumped)" : "");
		else if (WEXITSTATUS(status) != 0)
			log_warnx("worker %u (pid %ld) exited with status %d",
			    s->index, (long)pid, WEXITSTATUS(status));
		else {
			log_debug("worker %u (pid %ld) exited", s->index,
			    (long)pid);
			if (s->generation != m->generation || m->stopping) {
				master_inbox_drain(m, i);
				continue;
			}
		}
		if (m->stopping) {
			master_inbox_drain(m, i);
			continue;
		}
		if (s->generation != m->generation) {
			master_inbox_drain(m, i);
			/* Killed retiring, it may leave LMDB reader slots. */
			if (WIFSIGNALED(status))
				master_reader_check(m);
			continue;
		}
		master_reader_check(m);
		/* Crash loops back off: 100 ms doubling to 10 s. */
		if (ran < MASTER_CRASH_WINDOW_MS)
			s->backoff_ms = s->backoff_ms == 0 ?
			    MASTER_BACKOFF_MIN_MS : s->backoff_ms * 2;
		else
			s->backoff_ms = 0;
		if (s->backoff_ms > MASTER_BACKOFF_MAX_MS)
			s->backoff_ms = MASTER_BACKOFF_MAX_MS;
		s->respawn_at_ms = now + s->backoff_ms;
		if (s->backoff_ms > MASTER_BACKOFF_MIN_MS)
			log_warnx("worker %u crashed %llu ms after start; "
			    "respawning in %llu ms", s->index,
			    (unsigned long long)ran,
			    (unsigned long long)s->backoff_ms);
	}
}

static void
master_respawn_due(struct master *m)
{
	uint64_t	 now = master_clock_ms();
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].respawn_at_ms == 0 ||
		    m->slots[i].respawn_at_ms > now)
			continue;
		master_spawn(m, i);
	}
	if (m->archiver.respawn_at_ms != 0 &&
	    m->archiver.respawn_at_ms <= now && !m->stopping)
		master_spawn_archiver(m);
	if (m->relay.respawn_at_ms != 0 &&
	    m->relay.respawn_at_ms <= now && !m->stopping)
		master_spawn_relay(m);
}

static void
master_signal_workers(struct master *m, int sig, int generation)
{
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0 && (generation == 0 ||
		    m->slots[i].generation == generation))
			kill(m->slots[i].pid, sig);
}

static unsigned int
master_live_workers(const struct master *m)
{
	unsigned int	 i, n = 0;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0)
			n++;
	return n;
}

/* Tell a generation to retire (SIGUSR2), and when: it has its
 * drain_timeout.  A respawn it still had pending is off. */
static void
master_retire_generation(struct master *m, int generation)
{
	uint64_t	 now = master_clock_ms();
	unsigned int	 i;

	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].generation != generation)
			continue;
		m->slots[i].respawn_at_ms = 0;
		if (m->slots[i].pid == 0)
			continue;
		m->slots[i].retire_ms = now;
		kill(m->slots[i].pid, SIGUSR2);
	}
}

/* Kill the workers of old generations still running drain_timeout after
 * they were told to retire, as master_stop does at the end of a drain. */
static void
master_retire_bound(struct master *m)
{
	struct master_slot	*s;
	uint64_t		 now = master_clock_ms(), streams;
	unsigned int		 i;

	for (i = 0; i < m->nslots; i++) {
		s = &m->slots[i];
		if (s->pid == 0 || s->retire_ms == 0 ||
		    now - s->retire_ms < s->drain_timeout_ms)
			continue;
		streams = __atomic_load_n(
		    &m->shm->slots[i].conns[METRICS_CONN_STREAM],
		    __ATOMIC_RELAXED);
		log_warnx("worker %u (pid %ld) of generation %d still running "
		    "at drain_timeout after a reload: killed, %llu streams "
		    "forced", s->index, (long)s->pid, s->generation,
		    (unsigned long long)streams);
		kill(s->pid, SIGKILL);
		s->retire_ms = 0;
	}
}

static void
master_reload(struct master *m)
{
	struct config	*conf;
	char		*err, *line, *save = NULL;
	int		 old_generation = m->generation;

	log_info("reloading %s", m->file);
	if ((conf = malloc(sizeof(*conf))) == NULL ||
	    (err = malloc(8192)) == NULL) {
		free(conf);
		log_warnx("reload: out of memory; keeping the configuration");
		return;
	}
	if (config_load(conf, m->file, err, 8192) == -1) {
		for (line = strtok_r(err, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
		log_warnx("reload failed; still serving the old configuration");
		free(conf);
		free(err);
		return;
	}
	free(err);
	/* A whole new generation or none: half of one would retire a
	 * generation that still serves with too few workers to replace it. */
	master_reap(m);
	if (master_free_slots(m) < config_workers(conf)) {
		log_warnx("reload: %u workers wanted but only %u worker slots "
		    "are free (earlier generations are still retiring, for at "
		    "most drain_timeout); not reloading, still serving the old "
		    "configuration: send SIGHUP again later, or restart to "
		    "grow", config_workers(conf), master_free_slots(m));
		free(conf);
		return;
	}
	/* The ring is mapped by every process: it cannot change live. */
	if (strcmp(conf->ring_path, m->conf->ring_path) != 0 ||
	    conf->ring_size != m->conf->ring_size ||
	    conf->ring_slots != m->conf->ring_slots) {
		log_warnx("reload: [ring] changes take a restart; keeping "
		    "the running ring");
		strlcpy(conf->ring_path, m->conf->ring_path,
		    sizeof(conf->ring_path));
		conf->ring_size = m->conf->ring_size;
		conf->ring_slots = m->conf->ring_slots;
	}
	if (strcmp(conf->pidfile, m->conf->pidfile) != 0) {
		log_warnx("reload: pidfile changes take a restart");
		strlcpy(conf->pidfile, m->conf->pidfile, sizeof(conf->pidfile));
	}
	if (master_listeners(m, conf) == -1) {
		log_warnx("reload failed: cannot open the listeners; still "
		    "serving the old configuration");
		config_free(conf);
		free(conf);
		return;
	}
	if (strcmp(conf->log_target, m->conf->log_target) != 0 ||
	    conf->log_level != m->conf->log_level) {
		if (log_init(conf->log_target, conf->log_level) == -1)
			log_warn("reload: log %s", conf->log_target);
	}
	/* Old workers have their own copy of the old conf, and the master's
	 * listener addresses now point into the new one. */
	if (m->conf_owned) {
		config_free(m->conf);
		free(m->conf);
	}
	m->conf = conf;
	m->conf_owned = 1;
	master_spawn_generation(m);
	master_retire_generation(m, old_generation);
	/* They exit at once and are started again with the new conf. */
	if (m->archiver.pid != 0)
		kill(m->archiver.pid, SIGUSR2);
	if (m->relay.pid != 0)
		kill(m->relay.pid, SIGUSR2);
	else
		master_spawn_relay(m);	/* [cluster] newly set */
	log_info("reloaded: generation %d started, generation %d retiring",
	    m->generation, old_generation);
}

/* Stop the relay (after the workers: publishes are answered), bounded by
 * drain_timeout. */
static void
master_stop_relay(struct master *m, sigset_t *set)
{
	struct timespec	 wait = { 0, 100 * 1000000L };
	siginfo_t	 si;
	uint64_t	 deadline;

	m->relay.respawn_at_ms = 0;
	if (m->relay.pid == 0)
		return;
	kill(m->relay.pid, SIGTERM);
	deadline = master_clock_ms() + m->conf->drain_timeout_ms;
	while (m->relay.pid != 0 && master_clock_ms() < deadline) {
		sigtimedwait(set, &si, &wait);
		master_reap(m);
	}
	if (m->relay.pid != 0) {
		log_warnx("relay still running at drain_timeout: killed");
		kill(m->relay.pid, SIGKILL);
	}
	while (m->relay.pid != 0) {
		sigtimedwait(set, &si, &wait);
		master_reap(m);
	}
}

/* SIGTERM: stop accepting, drain workers, kill stragglers at the bound. */
static int
master_stop(struct master *m, sigset_t *set)
{
	struct timespec	 wait = { 0, 100 * 1000000L };
	uint64_t	 deadline, streams = 0, drained = 0;
	unsigned int	 i, forced = 0;
	siginfo_t	 si;

	m->stopping = 1;
	log_info("stopping: draining workers (at most %llu ms)",
	    (unsigned long long)m->conf->drain_timeout_ms);
	master_close_set(m->listen_fds, m->nlisten);
	master_close_set(m->admin_fds, m->nadmin);
	m->listen_fds = m->admin_fds = NULL;
	m->nlisten = m->nadmin = 0;
	for (i = 0; i < m->nslots; i++)
		m->slots[i].respawn_at_ms = 0;
	master_signal_workers(m, SIGTERM, 0);
	deadline = master_clock_ms() + m->conf->drain_timeout_ms;
	while (master_live_workers(m) > 0 && master_clock_ms() < deadline) {
		sigtimedwait(set, &si, &wait);
		master_reap(m);
	}
	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid == 0)
			continue;
		streams += __atomic_load_n(
		    &m->shm->slots[i].conns[METRICS_CONN_STREAM],
		    __ATOMIC_RELAXED);
		kill(m->slots[i].pid, SIGKILL);
		forced++;
	}
	while (master_live_workers(m) > 0) {
		sigtimedwait(set, &si, &wait);
		master_reap(m);
	}
	master_stop_relay(m, set);
	/* Publishers are gone: the archiver archives the rest and stops. */
	m->archiver.respawn_at_ms = 0;
	if (m->archiver.pid != 0) {
		kill(m->archiver.pid, SIGTERM);
		deadline = master_clock_ms() + m->conf->drain_timeout_ms;
		while (m->archiver.pid != 0 && master_clock_ms() < deadline) {
			sigtimedwait(set, &si, &wait);
			master_reap(m);
		}
		if (m->archiver.pid != 0) {
			log_warnx("archiver still running at drain_timeout: "
			    "killed");
			kill(m->archiver.pid, SIGKILL);
		}
		while (m->archiver.pid != 0) {
			sigtimedwait(set, &si, &wait);
			master_reap(m);
		}
	}
	for (i = 0; i < m->nslots; i++)
		drained += __atomic_load_n(
		    &m->shm->slots[i].counters[METRICS_STREAMS_DRAINED],
		    __ATOMIC_RELAXED);
	log_info("stopped: %llu streams drained at a frame boundary, %llu "
	    "forced (%u workers killed at drain_timeout)",
	    (unsigned long long)drained, (unsigned long long)streams, forced);
	return 0;
}

/*
 * [ring] sync = interval: msync(MS_SYNC) of the whole ring blocks until the
 * write-back is done, so the idle master does it, once a second, and no
 * worker's streams wait for the disk.
 */
static void
master_sync_ring(struct master *m, int force)
{
	uint64_t	 t = master_clock_ms();

	if (m->conf->ring_sync != CONFIG_SYNC_INTERVAL ||
	    (!force && t - m->last_sync_ms < MASTER_SYNC_MS))
		return;
	m->last_sync_ms = t;
	if (ring_sync(m->ring) == -1)
		log_warn("ring %s: msync", ring_path(m->ring));
}

static int
master_visit_topic(void *arg, const struct catalog_topic *topic)
{
	(void)arg;
	(void)topic;
	return 0;
}

static int
master_visit_token(void *arg, const struct catalog_token *token)
{
	(void)arg;
	(void)token;
	return 0;
}

/*
 * LMDB trusts the page numbers it reads: garbage in a catalog's trees kills
 * the reader with SIGBUS or SIGSEGV instead of returning an error.  So read
 * all of it once in a child, and turn a crash there into a message.  The
 * child opens its own environment: LMDB handles must not cross fork.
 */
static void
master_check_catalog(const struct config *conf)
{
	struct catalog	*cat;
	uint64_t	 hwm;
	pid_t		 pid;
	int		 status;
	char		 err[1024];

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		/* An error the catalog reports, the parent reports too. */
		if (catalog_open(&cat, conf->catalog_path,
		    conf->catalog_map_size, CATALOG_CREATE, err,
		    sizeof(err)) == 0) {
			(void)catalog_hwm_get(cat, &hwm);
			(void)catalog_topic_foreach(cat, master_visit_topic, NULL);
			(void)catalog_token_foreach(cat, master_visit_token, NULL);
			catalog_close(cat);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
		fatalx("catalog %s: data.mdb is corrupt (reading it %s %d); "
		    "restore it from a backup, or move the directory aside and "
		    "add the topics and tokens again", conf->catalog_path,
		    WIFSIGNALED(status) ? "was killed by signal" :
		    "failed with status", WIFSIGNALED(status) ?
		    WTERMSIG(status) : WEXITSTATUS(status));
}

static struct ring *
master_open_ring(const struct config *conf)
{
	struct catalog	*cat;
	struct ring	*ring;
	uint64_t	 hwm = 0;
	char		 err[1024];

	master_check_catalog(conf);
	if (catalog_open(&cat, conf->catalog_path, conf->catalog_map_size,
	    CATALOG_CREATE, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (catalog_hwm_get(cat, &hwm) == CATALOG_ERROR)
		fatalx("%s", catalog_error(cat));
	if (ring_open(&ring, conf->ring_path, conf->ring_size,
	    conf->ring_slots, RING_CREATE, hwm, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* Two copies of the high-water mark: the catalog learns the ring's. */
	if (catalog_hwm_raise(cat, ring_committed(ring)) == -1)
		fatalx("%s", catalog_error(cat));
	catalog_close(cat);
	return ring;
}

/*
 * The master runs as root and creates the ring, the catalog and the log
 * file; workers run as the configured user and must write to all three.
 * Hand them over (modes stay as created: 0640 files, 0750 directory).
 */
static void
master_chown_files(const struct config *conf, int log_only)
{
	static const char *const catalog_files[] = { "", "/data.mdb",
	    "/lock.mdb", "/" HISTORY_DIRNAME, "/" HISTORY_DIRNAME "/data.mdb",
	    "/" HISTORY_DIRNAME "/lock.mdb" };
	struct passwd	*pw;
	char		 path[PATH_MAX];
	size_t		 i;

	if (conf->user[0] == '\0' || geteuid() != 0)
		return;
	if ((pw = getpwnam(conf->user)) == NULL)
		fatalx("user %s: no such user", conf->user);
	if (conf->log_target[0] == '/' && chown(conf->log_target, pw->pw_uid,
	    pw->pw_gid) == -1 && errno != ENOENT)
		log_warn("log %s: chown %s", conf->log_target, conf->user);
	if (log_only)
		return;
	if (chown(conf->ring_path, pw->pw_uid, pw->pw_gid) == -1)
		fatal("ring %s: chown %s", conf->ring_path, conf->user);
	for (i = 0; i < sizeof(catalog_files) / sizeof(catalog_files[0]);
	    i++) {
		snprintf(path, sizeof(path), "%s%s", conf->catalog_path,
		    catalog_files[i]);
		if (chown(path, pw->pw_uid, pw->pw_gid) == -1 &&
		    errno != ENOENT)
			fatal("catalog %s: chown %s", path, conf->user);
	}
}

static void
master_raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit RLIMIT_NOFILE %llu",
		    (unsigned long long)rl.rlim_max);
	else
		log_info("open file limit: %llu",
		    (unsigned long long)rl.rlim_cur);
}

static struct pidfh *
master_pidfile(const char *path)
{
	struct pidfh	*pfh;
	pid_t		 other = 0;
	char		*dir, *copy;

	if ((copy = strdup(path)) != NULL) {
		dir = dirname(copy);
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			log_warn("pidfile directory %s", dir);
		free(copy);
	}
	if ((pfh = pidfile_open(path, 0644, &other)) == NULL) {
		if (errno == EEXIST)
			fatalx("ringcastd is already running (pid %ld, "
			    "pidfile %s)", (long)other, path);
		fatal("pidfile %s", path);
	}
	return pfh;
}

void
master_set_argv(char *const *argv)
{
	master_argv = argv;
}

/* Remember what a binary upgrade execs: our path (before a package
 * replaces the file: /proc/self/exe then says "(deleted)") and cwd. */
static void
master_upgrade_init(struct master *m)
{
	ssize_t	 n;

	m->up.ctl = -1;
	n = readlink("/proc/self/exe", m->up.exe, sizeof(m->up.exe) - 1);
	m->up.exe[n > 0 ? n : 0] = '\0';
	if (getcwd(m->up.cwd, sizeof(m->up.cwd)) == NULL)
		strlcpy(m->up.cwd, "/", sizeof(m->up.cwd));
}

/* Let fd survive exec. */
static int
master_upgrade_keep(int fd)
{
	int	 flags;

	if (fd == -1 || (flags = fcntl(fd, F_GETFD)) == -1)
		return -1;
	return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

/* Close fd at exec again (what we adopted, before we fork anything). */
static void
master_upgrade_cloexec(int fd)
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFD)) != -1)
		(void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* In the child of master_upgrade_start: name and keep what the new master
 * inherits, and exec it.  Never returns. */
static void __attribute__((noreturn))
master_upgrade_exec(struct master *m, int ctl)
{
	struct upgrade_state	*st;
	char			*state, listen[UPGRADE_LISTEN_MAX *
				    (UPGRADE_ADDR_MAX + 16)];
	char			*fallback[2] = { m->up.exe, NULL };
	size_t			 i, statelen = 32 + 24 * (size_t)m->nslots;

	listen[0] = '\0';
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (state = malloc(statelen)) == NULL) {
		log_warn("upgrade: calloc");
		_exit(126);
	}
	for (i = 0; i < m->nlisten; i++)
		if (master_upgrade_keep(m->listen_fds[i]) == -1 ||
		    upgrade_format_listen(listen, sizeof(listen),
		    m->listen_fds[i], m->listen_addrs[i].text) == -1)
			goto fail;
	for (i = 0; i < m->nadmin; i++)
		if (master_upgrade_keep(m->admin_fds[i]) == -1 ||
		    upgrade_format_listen(listen, sizeof(listen),
		    m->admin_fds[i], m->admin_addrs[i].text) == -1)
			goto fail;
	st->ctl = ctl;
	st->generation = m->generation;
	st->nslots = m->nslots;
	st->metrics_fd = m->shm->memfd;
	st->wake_fd = wake_memfd(m->wake);
	if (master_upgrade_keep(ctl) == -1 ||
	    master_upgrade_keep(st->metrics_fd) == -1 ||
	    master_upgrade_keep(st->wake_fd) == -1)
		goto fail;
	for (i = 0; i < m->nslots; i++) {
		st->inbox_send[i] = m->inbox_send[i];
		st->inbox_recv[i] = m->inbox_recv[i];
		if (master_upgrade_keep(m->inbox_send[i]) == -1 ||
		    master_upgrade_keep(m->inbox_recv[i]) == -1 ||
		    master_upgrade_keep(wake_fd(m->wake, (unsigned int)i)) ==
		    -1)
			goto fail;
	}
	if (upgrade_format_state(state, statelen, st) == -1 ||
	    (listen[0] != '\0' && setenv(UPGRADE_ENV_LISTEN, listen, 1) ==
	    -1) || setenv(UPGRADE_ENV_STATE, state, 1) == -1)
		goto fail;
	free(state);
	if (asprintf(&state, "%llu:%u:%s",
	    (unsigned long long)m->conf->ring_size, m->conf->ring_slots,
	    m->conf->ring_path) == -1 ||
	    setenv(UPGRADE_ENV_RING, state, 1) == -1)
		goto fail;
	if (chdir(m->up.cwd) == -1)
		log_warn("upgrade: chdir %s", m->up.cwd);
	execv(m->up.exe, master_argv != NULL ? master_argv : fallback);
	log_warn("upgrade: exec %s", m->up.exe);
	_exit(127);
fail:
	log_warn("upgrade: cannot pass the descriptors to %s", m->up.exe);
	_exit(126);
}

/* SIGUSR2: start the new binary; we serve on until it says it is ready. */
static void
master_upgrade_start(struct master *m)
{
	int	 pair[2];
	pid_t	 pid;

	if (m->up.state != MASTER_UPGRADE_NONE || m->stopping) {
		log_warnx("upgrade: already upgrading or stopping; signal "
		    "ignored");
		return;
	}
	if (m->up.exe[0] == '\0') {
		log_warnx("upgrade: our binary's path is unknown; not "
		    "upgrading");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, pair) == -1) {
		log_warn("upgrade: socketpair; not upgrading");
		return;
	}
	log_info("upgrade: starting %s", m->up.exe);
	switch (pid = fork()) {
	case -1:
		log_warn("upgrade: fork; not upgrading");
		close(pair[0]);
		close(pair[1]);
		return;
	case 0:
		close(pair[0]);
		if (m->pfh != NULL)
			pidfile_close(m->pfh);
		master_upgrade_exec(m, pair[1]);
	default:
		break;
	}
	close(pair[1]);
	m->up.ctl = pair[0];
	m->up.pid = pid;
	m->up.state = MASTER_UPGRADE_STARTED;
	m->up.deadline_ms = master_clock_ms() + MASTER_UPGRADE_READY_MS;
}

/* Free the slots whose worker belonged to another master (a binary
 * upgrade's other side) and is gone: that master reaps and frees them
 * itself, unless it died first. */
static void
master_upgrade_sweep(struct master *m)
{
	unsigned int	 i;
	pid_t		 pid;

	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid != 0 || !__atomic_load_n(
		    &m->shm->slots[i].active, __ATOMIC_ACQUIRE))
			continue;
		pid = m->shm->slots[i].pid;
		if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		log_info("slot %u: worker (pid %ld) of another master is gone; "
		    "slot freed", i, (long)pid);
		metrics_slot_reset(&m->shm->slots[i]);
		wake_slot_reset(m->wake, i);
		master_inbox_drain(m, i);
	}
}

/* The new master is ready: retire every worker of ours as a reload does
 * (they hand their streams to its generation), stop the archiver, let go
 * of the pidfile, and never start a process again. */
static void
master_upgrade_handover(struct master *m)
{
	uint64_t	 now = master_clock_ms();
	unsigned int	 i;

	log_info("upgrade: the new master (pid %ld) is ready; handing the "
	    "streams over", (long)m->up.pid);
	m->stopping = 1;
	if (m->pfh != NULL) {
		pidfile_close(m->pfh);
		m->pfh = NULL;
	}
	for (i = 0; i < m->nslots; i++) {
		m->slots[i].respawn_at_ms = 0;
		if (m->slots[i].pid == 0 || m->slots[i].retire_ms != 0)
			continue;
		m->slots[i].retire_ms = now;
		kill(m->slots[i].pid, SIGUSR2);
	}
	/* One archiver and one relay at a time: the new master starts its
	 * own at "go", once ours have exited. */
	m->archiver.respawn_at_ms = 0;
	if (m->archiver.pid != 0)
		kill(m->archiver.pid, SIGUSR2);
	m->relay.respawn_at_ms = 0;
	if (m->relay.pid != 0)
		kill(m->relay.pid, SIGUSR2);
	m->up.state = MASTER_UPGRADE_HANDING;
	m->up.deadline_ms = now + MASTER_UPGRADE_GO_MS / 2;
}

/* The new master after "go" (or without it, at the bound): the pidfile,
 * the archiver and the relay are ours now. */
static void
master_upgrade_takeover(struct master *m)
{
	pid_t	 other = 0;

	if (m->up.ctl != -1)
		close(m->up.ctl);
	m->up.ctl = -1;
	m->up.state = MASTER_UPGRADE_NONE;
	if ((m->pfh = pidfile_open(m->conf->pidfile, 0644, &other)) == NULL)
		log_warn("upgrade: pidfile %s (pid %ld)", m->conf->pidfile,
		    (long)other);
	else if (pidfile_write(m->pfh) == -1)
		log_warn("upgrade: pidfile %s: write", m->conf->pidfile);
	master_spawn_archiver(m);
	master_spawn_relay(m);
	log_info("upgrade: took over from pid %ld: serving",
	    (long)m->up.old_pid);
}

/* Whether every worker of our newest generation is in its loop. */
static int
master_generation_ready(const struct master *m)
{
	unsigned int	 i, n = 0;

	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid == 0 ||
		    m->slots[i].generation != m->generation)
			continue;
		if (!__atomic_load_n(&m->shm->slots[i].ready,
		    __ATOMIC_ACQUIRE))
			return 0;
		n++;
	}
	return n == config_workers(m->conf);
}

/* The pid a pidfile names, or 0. */
static pid_t
master_pidfile_pid(const char *path)
{
	FILE	*fp;
	long	 pid = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = 0;
	fclose(fp);
	return (pid_t)pid;
}

/* One step of an upgrade, on either side, each turn of the loop.
 * Returns 1 when the old master is done and should exit. */
static int
master_upgrade_step(struct master *m)
{
	char		 buf[16];
	ssize_t		 n = 0;
	uint64_t	 now = master_clock_ms();

	master_upgrade_sweep(m);
	if (m->up.ctl != -1) {
		n = recv(m->up.ctl, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		buf[n > 0 ? n : 0] = '\0';
	}
	switch (m->up.state) {
	case MASTER_UPGRADE_STARTED:
		if (n > 0 && strcmp(buf, MASTER_UPGRADE_READY) == 0)
			master_upgrade_handover(m);
		else if (now > m->up.deadline_ms) {
			log_warnx("upgrade failed: the new ringcastd (pid %ld) "
			    "was not ready within %d s: killed; still serving",
			    (long)m->up.pid, MASTER_UPGRADE_READY_MS / 1000);
			kill(m->up.pid, SIGKILL);
			close(m->up.ctl);
			m->up.ctl = -1;
			m->up.state = MASTER_UPGRADE_NONE;
		}
		break;
	case MASTER_UPGRADE_HANDING:
		if ((m->archiver.pid != 0 || m->relay.pid != 0) &&
		    now > m->up.deadline_ms) {
			log_warnx("upgrade: archiver or relay still running: "
			    "killed");
			if (m->archiver.pid != 0)
				kill(m->archiver.pid, SIGKILL);
			if (m->relay.pid != 0)
				kill(m->relay.pid, SIGKILL);
			m->up.deadline_ms = UINT64_MAX;
		}
		if (m->archiver.pid != 0 || m->relay.pid != 0)
			break;
		if (send(m->up.ctl, MASTER_UPGRADE_GO,
		    strlen(MASTER_UPGRADE_GO), MSG_DONTWAIT | MSG_NOSIGNAL) ==
		    -1)
			log_warn("upgrade: control socket");
		m->up.state = MASTER_UPGRADE_HANDED;
		m->up.deadline_ms = now + MASTER_UPGRADE_GO_MS;
		break;
	case MASTER_UPGRADE_HANDED:
		/* Not before the pidfile names the new master: an init
		 * script must never find it naming nobody. */
		if (master_live_workers(m) == 0 &&
		    (master_pidfile_pid(m->conf->pidfile) == m->up.pid ||
		    now > m->up.deadline_ms)) {
			log_info("upgrade: handed over to pid %ld; exiting",
			    (long)m->up.pid);
			return 1;
		}
		break;
	case MASTER_UPGRADE_ADOPTED:
		if (!master_generation_ready(m))
			break;
		if (send(m->up.ctl, MASTER_UPGRADE_READY,
		    strlen(MASTER_UPGRADE_READY), MSG_DONTWAIT |
		    MSG_NOSIGNAL) == -1) {
			log_warn("upgrade: control socket");
			master_upgrade_takeover(m);
			break;
		}
		m->up.state = MASTER_UPGRADE_WAITING;
		m->up.deadline_ms = now + MASTER_UPGRADE_GO_MS;
		break;
	case MASTER_UPGRADE_WAITING:
		if (n > 0 && strcmp(buf, MASTER_UPGRADE_GO) == 0)
			master_upgrade_takeover(m);
		else if (n == 0 || now > m->up.deadline_ms ||
		    (kill(m->up.old_pid, 0) == -1 && errno == ESRCH)) {
			log_warnx("upgrade: no word from the old master (pid "
			    "%ld); taking over", (long)m->up.old_pid);
			master_upgrade_takeover(m);
		}
		break;
	case MASTER_UPGRADE_NONE:
		break;
	}
	return 0;
}

/* Reaped pid: if it is the new master we started, say what became of
 * it.  Returns whether it was. */
static int
master_upgrade_reaped(struct master *m, pid_t pid, int status)
{
	char	 how[64];

	if (m->up.pid == 0 || pid != m->up.pid)
		return 0;
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "was killed by signal %d",
		    WTERMSIG(status));
	else if (WEXITSTATUS(status) == 127)
		snprintf(how, sizeof(how), "could not exec (status 127)");
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (m->up.state == MASTER_UPGRADE_STARTED) {
		log_warnx("upgrade failed: the new ringcastd %s (pid %ld) %s "
		    "before it was ready; still serving", m->up.exe,
		    (long)pid, how);
		close(m->up.ctl);
		m->up.ctl = -1;
		m->up.state = MASTER_UPGRADE_NONE;
	} else if (m->up.state != MASTER_UPGRADE_NONE)
		log_warnx("upgrade: the new master (pid %ld) %s after it "
		    "took over", (long)pid, how);
	m->up.pid = 0;
	return 1;
}

/* Check that fd is a listening TCP socket bound to addr. */
static int
master_upgrade_check_listener(int fd, const struct config_addr *addr)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss), olen;
	int			 on = 0, type = 0;

	olen = sizeof(on);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) == -1 ||
	    !on)
		return -1;
	olen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) == -1 ||
	    type != SOCK_STREAM)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != addr->ss.ss_family)
		return -1;
	if (ss.ss_family == AF_INET)
		return memcmp(&((struct sockaddr_in *)&ss)->sin_addr,
		    &((const struct sockaddr_in *)&addr->ss)->sin_addr,
		    sizeof(struct in_addr)) == 0 &&
		    ((struct sockaddr_in *)&ss)->sin_port ==
		    ((const struct sockaddr_in *)&addr->ss)->sin_port ? 0 : -1;
	if (ss.ss_family == AF_INET6)
		return memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
		    &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr,
		    sizeof(struct in6_addr)) == 0 &&
		    ((struct sockaddr_in6 *)&ss)->sin6_port ==
		    ((const struct sockaddr_in6 *)&addr->ss)->sin6_port ?
		    0 : -1;
	return -1;
}

/* The new master: take the inherited listeners that conf still names,
 * bind those it adds, close the others.  Fatal if one is not what its
 * name says. */
static void
master_upgrade_listeners(struct master *m, struct config *conf)
{
	struct upgrade_listener	 in[UPGRADE_LISTEN_MAX];
	struct config_addr	 addrs[UPGRADE_LISTEN_MAX];
	int			 fds[UPGRADE_LISTEN_MAX];
	const char		*text = getenv(UPGRADE_ENV_LISTEN);
	char			 err[256];
	size_t			 n = 0, i, j;
	int			 used;

	if (text != NULL && upgrade_parse_listen(text, in, UPGRADE_LISTEN_MAX,
	    &n, err, sizeof(err)) == -1)
		fatalx("upgrade: %s", err);
	for (i = 0; i < n; i++) {
		if (config_parse_addr(in[i].addr, &addrs[i]) == -1 ||
		    master_upgrade_check_listener(in[i].fd, &addrs[i]) == -1)
			fatalx("upgrade: %s: descriptor %d is not a listening "
			    "socket of %s", UPGRADE_ENV_LISTEN, in[i].fd,
			    in[i].addr);
		strlcpy(addrs[i].text, in[i].addr, sizeof(addrs[i].text));
		fds[i] = in[i].fd;
	}
	m->listen_addrs = addrs;
	m->listen_fds = fds;
	m->nlisten = n;
	m->admin_addrs = addrs;
	m->admin_fds = fds;
	m->nadmin = n;
	if (master_listen_set(conf->listen, conf->nlisten, &m->listen_fds,
	    addrs, fds, n) == -1 || master_listen_set(conf->admin_listen,
	    conf->nadmin_listen, &m->admin_fds, addrs, fds, n) == -1)
		fatalx("upgrade: cannot open the listeners");
	for (i = 0; i < n; i++) {
		used = 0;
		for (j = 0; j < conf->nlisten; j++)
			used |= strcmp(conf->listen[j].text, in[i].addr) == 0;
		for (j = 0; j < conf->nadmin_listen; j++)
			used |= strcmp(conf->admin_listen[j].text,
			    in[i].addr) == 0;
		if (!used)
			log_warnx("upgrade: %s is no longer in the "
			    "configuration: not listening there", in[i].addr);
		close(fds[i]);
	}
	for (i = 0; i < conf->nlisten; i++)
		master_upgrade_cloexec(m->listen_fds[i]);
	for (i = 0; i < conf->nadmin_listen; i++)
		master_upgrade_cloexec(m->admin_fds[i]);
	m->nlisten = conf->nlisten;
	m->nadmin = conf->nadmin_listen;
	m->listen_addrs = conf->listen;
	m->admin_addrs = conf->admin_listen;
}

/* The old workers map the old master's ring: [ring] changes take a
 * restart, as on a reload. */
static void
master_upgrade_ring(struct config *conf)
{
	const char	*text = getenv(UPGRADE_ENV_RING);
	char		 path[PATH_MAX], err[256];
	uint64_t	 size;
	uint32_t	 slots;

	if (text == NULL)
		fatalx("upgrade: %s is not set", UPGRADE_ENV_RING);
	if (upgrade_parse_ring(text, &size, &slots, path, sizeof(path), err,
	    sizeof(err)) == -1)
		fatalx("upgrade: %s", err);
	if (strcmp(path, conf->ring_path) == 0 && size == conf->ring_size &&
	    slots == conf->ring_slots)
		return;
	log_warnx("upgrade: [ring] changes take a restart; keeping the "
	    "running ring");
	strlcpy(conf->ring_path, path, sizeof(conf->ring_path));
	conf->ring_size = size;
	conf->ring_slots = slots;
}

/* Started by an old master's SIGUSR2 (RINGCAST_UPGRADE set)?  Then map
 * its shared state, take its inboxes and listeners and return 1; fatal
 * (the old master serves on) if any of it is not what we expect.
 * Otherwise 0. */
static int
master_upgrade_adopt(struct master *m, struct config *conf)
{
	struct upgrade_state	*st;
	const char		*text = getenv(UPGRADE_ENV_STATE);
	char			 err[256];
	unsigned int		 i, free_slots = 0;
	int			 type;
	socklen_t		 len;

	if (text == NULL) {
		if (getenv(UPGRADE_ENV_LISTEN) != NULL)
			fatalx("upgrade: %s is set without %s",
			    UPGRADE_ENV_LISTEN, UPGRADE_ENV_STATE);
		return 0;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		fatal("calloc");
	if (upgrade_parse_state(text, st, err, sizeof(err)) == -1)
		fatalx("upgrade: %s", err);
	m->nslots = st->nslots;
	if ((m->slots = calloc(m->nslots, sizeof(*m->slots))) == NULL ||
	    (m->inbox_send = calloc(m->nslots, sizeof(int))) == NULL ||
	    (m->inbox_recv = calloc(m->nslots, sizeof(int))) == NULL)
		fatal("calloc");
	if ((m->shm = metrics_attach(st->metrics_fd, st->nslots)) == NULL ||
	    (m->wake = wake_attach(st->wake_fd, st->nslots)) == NULL)
		fatalx("upgrade: the old master's shared state is not of this "
		    "build's layout: upgrade by a restart instead");
	master_upgrade_cloexec(st->metrics_fd);
	master_upgrade_cloexec(st->wake_fd);
	master_upgrade_cloexec(st->ctl);
	for (i = 0; i < m->nslots; i++) {
		m->inbox_send[i] = st->inbox_send[i];
		m->inbox_recv[i] = st->inbox_recv[i];
		len = sizeof(type);
		if (getsockopt(m->inbox_send[i], SOL_SOCKET, SO_TYPE, &type,
		    &len) == -1 || type != SOCK_SEQPACKET ||
		    getsockopt(m->inbox_recv[i], SOL_SOCKET, SO_TYPE, &type,
		    &len) == -1 || type != SOCK_SEQPACKET ||
		    fcntl(wake_fd(m->wake, i), F_GETFD) == -1)
			fatalx("upgrade: %s: slot %u: not the old master's "
			    "inbox and eventfd", UPGRADE_ENV_STATE, i);
		master_upgrade_cloexec(m->inbox_send[i]);
		master_upgrade_cloexec(m->inbox_recv[i]);
		master_upgrade_cloexec(wake_fd(m->wake, i));
		if (!__atomic_load_n(&m->shm->slots[i].active,
		    __ATOMIC_ACQUIRE))
			free_slots++;
	}
	if (free_slots < config_workers(conf))
		fatalx("upgrade: %u workers wanted but only %u worker slots "
		    "are free (an earlier generation is still retiring, or "
		    "workers grew): restart instead", config_workers(conf),
		    free_slots);
	master_upgrade_listeners(m, conf);
	master_upgrade_ring(conf);
	m->generation = st->generation;
	m->up.ctl = st->ctl;
	m->up.old_pid = getppid();
	m->up.state = MASTER_UPGRADE_ADOPTED;
	free(st);
	unsetenv(UPGRADE_ENV_STATE);
	unsetenv(UPGRADE_ENV_LISTEN);
	unsetenv(UPGRADE_ENV_RING);
	log_info("upgrade: taking over from pid %ld (generation %d, %u slots)",
	    (long)m->up.old_pid, m->generation, m->nslots);
	return 1;
}

int
master_run(struct config *conf, const char *file, int debug)
{
	struct master	 m;
	struct timespec	 tick = { 0, 250 * 1000000L };
	struct timespec	 quick = { 0, 20 * 1000000L };
	sigset_t	 set;
	siginfo_t	 si;
	unsigned int	 workers;
	int		 sig, upgrading;

	memset(&m, 0, sizeof(m));
	m.conf = conf;
	m.file = file;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);

	master_upgrade_init(&m);
	upgrading = master_upgrade_adopt(&m, conf);
	/* An upgrade takes the pidfile over when the old master lets go. */
	if (!upgrading)
		m.pfh = master_pidfile(conf->pidfile);
	master_raise_nofile();
	if (!upgrading && master_listeners(&m, conf) == -1)
		fatalx("cannot open the listeners");
	m.ring = master_open_ring(conf);
	master_chown_files(conf, 0);
	workers = config_workers(conf);
	if (!upgrading) {
		/* Room for a second generation during a reload. */
		m.nslots = workers * 2 + 2;
		if ((m.slots = calloc(m.nslots, sizeof(*m.slots))) == NULL ||
		    (m.inbox_send = calloc(m.nslots, sizeof(int))) == NULL ||
		    (m.inbox_recv = calloc(m.nslots, sizeof(int))) == NULL)
			fatal("calloc");
		master_inboxes(&m);
		if ((m.wake = wake_create(m.nslots)) == NULL)
			fatal("wake-up tables");
		if ((m.shm = metrics_create(m.nslots)) == NULL)
			fatal("shared state");
	}
	/* The new master of an upgrade is its old master's child already,
	 * detached: it stays so, and the old one's parent sees no exit. */
	if (!debug && !upgrading && daemon(0, 0) == -1)
		fatal("daemon");
	if (m.pfh != NULL && pidfile_write(m.pfh) == -1)
		fatal("pidfile %s: write", conf->pidfile);
	m.pid = getpid();
	setproctitle("master");
	log_info("started: %u workers, listening on %s, ring %s at id %llu",
	    workers, conf->listen[0].text, conf->ring_path,
	    (unsigned long long)ring_committed(m.ring));
	master_spawn_generation(&m);
	/* An upgrade starts them when the old master's have stopped. */
	if (!upgrading) {
		master_spawn_archiver(&m);
		master_spawn_relay(&m);
	}

	for (;;) {
		sig = sigtimedwait(&set, &si, m.up.state != MASTER_UPGRADE_NONE ?
		    &quick : &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			if (m.up.state == MASTER_UPGRADE_STARTED) {
				log_warnx("upgrade: stopping: the new master "
				    "(pid %ld) killed", (long)m.up.pid);
				kill(m.up.pid, SIGKILL);
			}
			master_stop(&m, &set);
			/* What the workers appended is on disk at exit. */
			master_sync_ring(&m, 1);
			break;
		}
		switch (sig) {
		case SIGHUP:
			if (m.up.state != MASTER_UPGRADE_NONE) {
				log_warnx("reload: an upgrade is under way; "
				    "not reloading");
				break;
			}
			master_reload(&m);
			break;
		case SIGUSR2:
			master_upgrade_start(&m);
			break;
		case SIGUSR1:
			if (log_reopen() == -1)
				log_warn("reopen log");
			master_chown_files(m.conf, 1);
			master_signal_workers(&m, SIGUSR1, 0);
			if (m.archiver.pid != 0)
				kill(m.archiver.pid, SIGUSR1);
			if (m.relay.pid != 0)
				kill(m.relay.pid, SIGUSR1);
			break;
		default:
			break;
		}
		master_reap(&m);
		master_respawn_due(&m);
		master_retire_bound(&m);
		master_sync_ring(&m, 0);
		if (master_upgrade_step(&m))
			break;
	}
	ring_close(m.ring);
	if (m.conf_owned) {
		config_free(m.conf);
		free(m.conf);
	}
	free(m.slots);
	free(m.inbox_send);
	free(m.inbox_recv);
	/* Still open when an upgrade ends us: master_stop did not run. */
	if (m.listen_fds != NULL)
		master_close_set(m.listen_fds, m.nlisten);
	if (m.admin_fds != NULL)
		master_close_set(m.admin_fds, m.nadmin);
	if (m.up.ctl != -1)
		close(m.up.ctl);
	/* Last: an init script takes a missing pidfile for a stopped
	 * daemon.  After an upgrade it is the new master's: not ours. */
	if (m.pfh != NULL)
		pidfile_remove(m.pfh);
	return 0;
}
