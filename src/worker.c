/*
 * worker: the event loop of one worker process.  Every registered object
 * starts with a kind byte, so epoll's data pointer says what woke us.  After
 * each batch of events, if the ring moved, stream_fanout takes a validated
 * copy of the new frames once and sends the streams of their topics their
 * share: one copy out of the shared map per worker, not per subscriber.
 * On reload a retiring worker hands each stream, at a frame boundary, to
 * the inbox of a worker of the newest generation (round robin) and forgets
 * it without writing a byte; a stream it cannot hand over in time ends with
 * retry: as before.  A full inbox is retried as soon as it has room again
 * (EPOLLOUT, edge-triggered, on the inboxes we send to), not on the next
 * tick, and the new worker takes its inbox in bursts between fan-outs.
 */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/catalog.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/cpub.h"
#include "ringcast/handoff.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/publish.h"
#include "ringcast/ring.h"
#include "ringcast/serve.h"
#include "ringcast/sse.h"
#include "ringcast/stats.h"
#include "ringcast/stream.h"
#include "ringcast/wake.h"
#include "ringcast/worker.h"

#define WORKER_EVENTS		256
#define WORKER_TICK_MS		100
#define WORKER_ACCEPT_BURST	64
#define WORKER_ADOPT_BURST	256
/* How long a retiring worker tries to hand a stream over before it falls
 * back to the paced close (spread over reload_spread after this). */
#define WORKER_HANDOFF_GRACE_MS	2000
#define WORKER_HANDOFF_TARGETS	256	/* workers: at most 256 */

static uint64_t
worker_clock_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Persist the sequence high-water mark in the catalog: a durable LMDB
 * commit, which the ring makes before taking its lock, once per 32768
 * events or so. */
static int
worker_hwm(void *arg, uint64_t ceiling)
{
	struct serve	*s = arg;

	if (serve_catalog(s) == -1)
		return -1;
	if (catalog_hwm_raise(s->cat, ceiling) == -1) {
		log_warnx("%s", catalog_error(s->cat));
		return -1;
	}
	return 0;
}

void
worker_drop_privileges(const struct config *conf)
{
	struct passwd	*pw;

	if (conf->user[0] == '\0' || geteuid() != 0)
		return;
	if ((pw = getpwnam(conf->user)) == NULL)
		fatalx("user %s: no such user", conf->user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", conf->user);
}

/* Register (on) or drop the listeners in epoll; public_only leaves the
 * admin listeners as they are. */
static void
worker_listen_some(struct worker *w, int on, int public_only)
{
	struct epoll_event	 ev;
	size_t			 i;

	for (i = 0; i < w->nlisteners; i++) {
		struct worker_listener *l = &w->listeners[i];

		if (l->fd == -1 || l->registered == on ||
		    (public_only && l->admin))
			continue;
		if (on) {
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLIN | EPOLLEXCLUSIVE;
			ev.data.ptr = l;
			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) == -1)
				fatal("epoll_ctl listener");
		} else
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		l->registered = on;
	}
}

static void
worker_listen(struct worker *w, int on)
{
	worker_listen_some(w, on, 0);
	if (on)
		w->balance_off = 0;
}

/*
 * EPOLLEXCLUSIVE wakes one waiter per connection, and tends to wake the same
 * one, so a worker can end up with most of the streams and every fan-out
 * waits on its long list.  A worker holding clearly more than its share
 * stops listening until it is back near the mean; the least loaded worker
 * is always at or below the mean, so someone is always listening.
 */
static void
worker_balance(struct worker *w)
{
	unsigned int	 n = config_workers(w->conf);
	uint64_t	 fair;

	if (n < 2 || w->accept_paused || w->serve.draining || w->serve.retiring)
		return;
	fair = metrics_conns_total(w->serve.shm) / n;
	if (!w->balance_off && w->serve.nconns > fair + fair / 8 + 16) {
		worker_listen_some(w, 0, 1);
		w->balance_off = 1;
	} else if (w->balance_off && w->serve.nconns <= fair + 8) {
		worker_listen_some(w, 1, 1);
		w->balance_off = 0;
	}
}

/* Stop accepting for good: drain or reload.  The master still holds the
 * listening sockets, so pending connections go to the other workers. */
static void
worker_close_listeners(struct worker *w)
{
	size_t	 i;

	worker_listen(w, 0);
	for (i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].fd != -1)
			close(w->listeners[i].fd);
		w->listeners[i].fd = -1;
	}
}

static void
worker_accept(struct worker *w, struct worker_listener *l)
{
	struct sockaddr_storage	 ss;
	struct epoll_event	 ev;
	socklen_t		 len;
	struct conn		*c;
	int			 fd, i, one = 1;

	for (i = 0; i < WORKER_ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop listening until a
				 * tick, rather than spin on a ready listener. */
				log_warn("accept: pausing for a moment");
				worker_listen(w, 0);
				w->accept_paused = 1;
				return;
			}
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			log_warn("accept");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((c = conn_new(&w->serve, fd, l->admin, &ss)) == NULL) {
			log_warnx("accept: out of memory");
			close(fd);
			continue;
		}
		if (l->proxy_protocol && conn_expect_proxy(&w->serve, c) == -1)
			continue;
		if (!l->admin && (w->serve.nconns & 15) == 0)
			worker_balance(w);
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			log_warn("epoll_ctl");
			conn_close(&w->serve, c);
		}
	}
}

/* Post a clock event to the demo topic (demo config, first worker). */
static void
worker_demo_publish(struct worker *w)
{
	struct catalog_topic	 topic;
	enum catalog_result	 res;
	char			 data[64], body[160];
	time_t			 now = time(NULL);
	struct tm		 tm;
	size_t			 len;
	uint64_t		 seq;

	if (serve_catalog(&w->serve) == -1)
		return;
	res = catalog_topic_lookup(w->serve.cat, "demo", 4, &topic);
	if (res == CATALOG_NOT_FOUND)
		res = catalog_topic_add(w->serve.cat, "demo", 0, "demo clock",
		    &topic);
	if (res != CATALOG_FOUND)
		return;
	gmtime_r(&now, &tm);
	strftime(data, sizeof(data), "%Y-%m-%dT%H:%M:%SZ", &tm);
	len = sse_encode_body(body, sizeof(body), "clock", 5, data,
	    strlen(data));
	if (len > 0 &&
	    ring_append(w->serve.ring, topic.id, body, len, &seq) == 0) {
		metrics_add(w->serve.slot, METRICS_EVENTS_PUBLISHED, 1);
		wake_notify(w->serve.wake, w->serve.wake_slot, topic.id);
	}
}

/* Connection events go to the layer that owns the connection's state. */
static void
worker_on_conn(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->state == CONN_STREAM)
		stream_on_event(&w->serve, c, events);
	else
		conn_on_event(&w->serve, c, events);
}

/* Take the streams other workers handed us: a burst per event (the inbox
 * is level-triggered), so that a large hand-off does not stall the loop. */
static void
worker_adopt(struct worker *w)
{
	struct handoff_state	 st;
	struct epoll_event	 ev;
	struct conn		*c;
	int			 fd, i, rc;

	for (i = 0; i < WORKER_ADOPT_BURST; i++) {
		if ((rc = handoff_recv(w->inbox, &fd, &st)) == 0)
			return;
		if (rc == -1) {
			if (errno == EBADMSG) {
				log_warnx("inbox: malformed hand-off refused");
				continue;
			}
			log_warn("inbox: recvmsg");
			return;
		}
		if ((c = stream_adopt(&w->serve, fd, &st)) == NULL)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
			log_warn("epoll_ctl adopted stream");
			conn_close(&w->serve, c);
		}
	}
}

/* The slots of the newest generation's running workers, if it is newer
 * than ours, and (with ready) only those already in their loop: a stream
 * queued for a worker still starting would be silent meanwhile, while we
 * can serve it.  Returns how many (at most max). */
static size_t
worker_handoff_targets(const struct worker *w, unsigned int *targets,
    size_t max, int ready)
{
	const struct metrics	*shm = w->serve.shm;
	unsigned int		 i;
	int			 newest = w->generation;
	size_t			 n = 0;

	for (i = 0; i < w->nslots && i < shm->nslots; i++)
		if (__atomic_load_n(&shm->slots[i].active, __ATOMIC_ACQUIRE) &&
		    shm->slots[i].pid != 0 && shm->slots[i].generation > newest)
			newest = shm->slots[i].generation;
	if (newest == w->generation)
		return 0;
	for (i = 0; i < w->nslots && i < shm->nslots && n < max; i++)
		if (i != w->slot && w->inbox_send[i] != -1 &&
		    __atomic_load_n(&shm->slots[i].active, __ATOMIC_ACQUIRE) &&
		    shm->slots[i].pid != 0 &&
		    shm->slots[i].generation == newest &&
		    (!ready || __atomic_load_n(&shm->slots[i].ready,
		    __ATOMIC_ACQUIRE)))
			targets[n++] = i;
	return n;
}

/* Ask for an event when the full inboxes of targets have room again.
 * Edge-triggered: an inbox we are not waiting on wakes us once, harmlessly;
 * one that has room already when added reports it at once. */
static void
worker_handoff_watch(struct worker *w, const unsigned int *targets,
    size_t ntargets)
{
	struct epoll_event	 ev;
	size_t			 k;

	for (k = 0; k < ntargets; k++) {
		if (w->handoff_watched[targets[k]])
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLOUT | EPOLLET;
		ev.data.ptr = &w->handoff_kind;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD,
		    w->inbox_send[targets[k]], &ev) == -1) {
			log_warn("epoll_ctl inbox %u", targets[k]);
			continue;	/* the tick retries */
		}
		w->handoff_watched[targets[k]] = 1;
	}
}

/*
 * Hand every stream at a frame boundary to the new generation, round robin
 * over its workers.  The epoll registration goes first: the socket lives on
 * in the new worker, so closing ours would not drop it from our epoll set.
 * Every inbox full ends the round until one has room (or the next tick);
 * a hard error ends that stream here, with retry:, at once.
 */
static size_t
worker_handoff(struct worker *w)
{
	struct handoff_state	 st;
	struct conn		*c, *next;
	unsigned int		 targets[WORKER_HANDOFF_TARGETS];
	size_t			 ntargets, handed = 0, k;
	int			 t, sent;

	ntargets = worker_handoff_targets(w, targets, WORKER_HANDOFF_TARGETS,
	    1);
	if (ntargets == 0)
		return 0;
	/* Spread evenly: while a new worker is still starting (not in its
	 * loop yet), wait for it, for up to half the grace; then hand to the
	 * ones that are ready rather than close. */
	if (ntargets < worker_handoff_targets(w, targets,
	    WORKER_HANDOFF_TARGETS, 0) &&
	    w->serve.now_ms - w->serve.retire_start_ms <
	    WORKER_HANDOFF_GRACE_MS / 2)
		return 0;
	ntargets = worker_handoff_targets(w, targets, WORKER_HANDOFF_TARGETS,
	    1);
	for (c = TAILQ_FIRST(&w->serve.streams); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!stream_handoff_state(&w->serve, c, &st))
			continue;
		sent = 0;
		for (k = 0; k < ntargets && !sent; k++) {
			t = w->inbox_send[targets[w->handoff_next++ %
			    ntargets]];
			if (handoff_send(t, c->fd, &st) == 0)
				sent = 1;
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS) {
				log_warn("fd %d: hand-off", c->fd);
				stream_finish(&w->serve, c);
				break;
			}
		}
		if (c->state != CONN_STREAM || (c->flags & CONN_FINISH))
			continue;
		if (!sent) {
			worker_handoff_watch(w, targets, ntargets);
			break;
		}
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		conn_close(&w->serve, c);
		handed++;
	}
	if (handed > 0) {
		metrics_add(w->serve.slot, METRICS_STREAMS_HANDED, handed);
		w->handoff_handed += handed;
		log_debug("retiring: handed %zu streams to the new generation",
		    handed);
	}
	return handed;
}

static void
worker_start_drain(struct worker *w)
{
	struct conn	*c, *next;

	if (w->serve.draining)
		return;
	log_info("draining %zu streams", w->serve.nstreams);
	w->serve.draining = 1;
	w->serve.drain_start_ms = w->serve.now_ms;
	worker_close_listeners(w);
	for (c = TAILQ_FIRST(&w->serve.requests); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_on_tick(&w->serve, c);
	}
	/* Send what is owed, then end each stream at a frame boundary. */
	window_refresh(&w->serve.window, w->serve.ring);
	for (c = TAILQ_FIRST(&w->serve.streams); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		stream_finish(&w->serve, c);
	}
}

static void
worker_start_retire(struct worker *w)
{
	struct conn	*c;
	uint32_t	 spread = (uint32_t)w->conf->reload_spread_ms, grace = 0;
	unsigned int	 targets[1];

	if (w->serve.retiring || w->serve.draining)
		return;
	/* With a new generation to take them, streams are handed over;
	 * the paced close is for those that cannot be. */
	if (worker_handoff_targets(w, targets, 1, 0) > 0) {
		grace = WORKER_HANDOFF_GRACE_MS;
		w->handoff_on = 1;
	}
	log_info("retiring: %s %zu streams", grace > 0 ? "handing over" :
	    "closing", w->serve.nstreams);
	w->serve.retiring = 1;
	w->serve.retire_start_ms = w->serve.now_ms;
	worker_close_listeners(w);
	TAILQ_FOREACH(c, &w->serve.streams, link)
		c->finish_at = 1 + grace +
		    (spread > 0 ? arc4random_uniform(spread) : 0);
	if (grace > 0)
		worker_handoff(w);
}

/* When a retiring worker ends what is left: a little before the master's
 * SIGKILL at drain_timeout, so that streams end here, not with the process. */
static uint64_t
worker_retire_bound_ms(const struct worker *w)
{
	uint64_t	 bound = w->conf->drain_timeout_ms;

	return bound - (bound / 4 < 1000 ? bound / 4 : 1000);
}

/*
 * A retiring worker at its bound: a stream on a full socket (a client that
 * stopped reading, on a topic that went quiet) is never ended by the retire
 * tick, and would hold this worker and its slot for good.  Each stream gets
 * one more try to end at a frame boundary; one whose socket takes nothing
 * (or not up to a frame boundary) is closed.
 */
static void
worker_retire_cut(struct worker *w)
{
	struct conn	*c, *next;
	size_t		 closed = 0;

	for (c = TAILQ_FIRST(&w->serve.streams); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		c->flags &= ~CONN_BLOCKED;
		stream_finish(&w->serve, c);
		if (c->state == CONN_STREAM && (c->flags & CONN_BLOCKED)) {
			conn_close(&w->serve, c);
			closed++;
		}
	}
	w->handoff_cut += closed;
	if (closed > 0)
		log_info("retiring: closed %zu streams whose clients read "
		    "nothing, at drain_timeout", closed);
}

static void
worker_on_signal(struct worker *w)
{
	struct signalfd_siginfo	 si;

	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			worker_start_drain(w);
			break;
		case SIGUSR2:
			worker_start_retire(w);
			break;
		case SIGUSR1:
			if (log_reopen() == -1)
				log_warn("reopen log");
			break;
		default:
			break;
		}
	}
}

static void
worker_on_tick(struct worker *w)
{
	struct conn	*c, *next;
	uint64_t	 expirations;
	int		 second;

	while (read(w->timerfd, &expirations, sizeof(expirations)) > 0)
		;
	second = w->serve.now_ms - w->last_heartbeat_scan_ms >= 1000;
	if (w->accept_paused && second && !w->serve.draining &&
	    !w->serve.retiring) {
		w->accept_paused = 0;
		worker_listen(w, 1);
	}
	for (c = TAILQ_FIRST(&w->serve.requests); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_on_tick(&w->serve, c);
	}
	worker_balance(w);
	if (w->serve.cpub != NULL)
		cpub_tick(w->serve.cpub, w->serve.now_ms);
	if (w->serve.retiring && !w->serve.draining)
		worker_handoff(w);
	if (second || w->serve.retiring) {
		if (second)
			stats_on_second(&w->serve);
		for (c = TAILQ_FIRST(&w->serve.streams); c != NULL; c = next) {
			next = TAILQ_NEXT(c, link);
			if (c->flags & CONN_STATS)
				stats_send(&w->serve, c);
			stream_on_tick(&w->serve, c);
		}
	}
	if (w->serve.retiring && !w->serve.draining &&
	    w->serve.now_ms - w->serve.retire_start_ms >=
	    worker_retire_bound_ms(w))
		worker_retire_cut(w);
	if (!second)
		return;
	w->last_heartbeat_scan_ms = w->serve.now_ms;
	metrics_sample_memory(w->serve.slot);
	/* In a cluster only the relay appends: no demo clock. */
	if (w->index == 0 && w->conf->demo && !w->serve.draining &&
	    !w->serve.retiring && w->serve.cpub == NULL)
		worker_demo_publish(w);
}

/* [cluster]: publishes go to JetStream through our own connection. */
static void
worker_cluster_setup(struct worker *w)
{
	struct epoll_event	 ev;
	char			 err[512];

	if (!cluster_enabled(w->conf))
		return;
	if ((w->serve.cpub = cpub_open(w->conf, w->serve.shm, w->index,
	    publish_cluster_done, &w->serve, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	w->cluster_kind = WORKER_KIND_CLUSTER;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &w->cluster_kind;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, cpub_fd(w->serve.cpub), &ev) ==
	    -1)
		fatal("epoll_ctl cluster");
}

static void
worker_setup(struct worker *w, const struct worker_params *p)
{
	struct epoll_event	 ev;
	struct itimerspec	 its;
	sigset_t		 set;
	size_t			 i, n = 0;
	char			 title[64];

	memset(w, 0, sizeof(*w));
	if (serve_init(&w->serve, p->conf, p->ring, p->shm, p->slot) == -1)
		fatal("worker state");
	w->serve.wake = p->wake;
	w->conf = p->conf;
	w->serve.index = p->index;
	w->index = p->index;
	w->generation = p->generation;
	w->master_pid = p->master_pid;
	w->serve.now_ms = worker_clock_ms();

	snprintf(title, sizeof(title), "worker %u", p->index);
	log_procname(title);
	setproctitle("%s", title);

	/*
	 * The master forks with these signals blocked and they stay blocked:
	 * one sent before the signalfd exists waits for it instead of
	 * killing us.  This is the whole mask a worker needs.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGALRM);
	if (sigprocmask(SIG_SETMASK, &set, NULL) == -1)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	if ((w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");

	worker_drop_privileges(w->conf);

	/* Drain when the master dies; it may have died already.  After the
	 * privilege drop: changing the uid clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl");
	if (getppid() != p->master_pid)
		exit(0);

	/* The listeners the master opened, admin ones marked. */
	w->nlisteners = p->nlisten + p->nadmin;
	if ((w->listeners = calloc(w->nlisteners, sizeof(*w->listeners))) ==
	    NULL)
		fatal("calloc");
	for (i = 0; i < p->nlisten; i++, n++) {
		w->listeners[n].kind = WORKER_KIND_LISTENER;
		w->listeners[n].fd = p->listen_fds[i];
		/* listen_fds are the sockets of conf->listen, in order. */
		w->listeners[n].proxy_protocol =
		    p->conf->listen[i].proxy_protocol;
	}
	for (i = 0; i < p->nadmin; i++, n++) {
		w->listeners[n].kind = WORKER_KIND_LISTENER;
		w->listeners[n].fd = p->admin_fds[i];
		w->listeners[n].admin = 1;
	}

	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	w->wake_kind = WORKER_KIND_WAKE;
	w->signal_kind = WORKER_KIND_SIGNAL;
	w->timer_kind = WORKER_KIND_TIMER;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &w->wake_kind;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, wake_fd(w->serve.wake,
	    w->serve.wake_slot), &ev) == -1)
		fatal("epoll_ctl eventfd");
	ev.data.ptr = &w->signal_kind;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) == -1)
		fatal("epoll_ctl signalfd");
	if ((w->timerfd = timerfd_create(CLOCK_MONOTONIC,
	    TFD_NONBLOCK | TFD_CLOEXEC)) == -1)
		fatal("timerfd_create");
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_nsec = WORKER_TICK_MS * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(w->timerfd, 0, &its, NULL) == -1)
		fatal("timerfd_settime");
	ev.data.ptr = &w->timer_kind;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev) == -1)
		fatal("epoll_ctl timerfd");

	/* Our hand-off inbox; the other slots' we only send to. */
	w->slot = p->slot;
	w->nslots = p->nslots;
	w->inbox = -1;
	if (p->nslots > 0) {
		for (i = 0; i < p->nslots; i++)
			if (i != p->slot)
				close(p->inbox_recv[i]);
		close(p->inbox_send[p->slot]);
		if ((w->inbox_send = calloc(p->nslots, sizeof(int))) == NULL ||
		    (w->handoff_watched = calloc(p->nslots, 1)) == NULL)
			fatal("calloc");
		w->handoff_kind = WORKER_KIND_HANDOFF;
		for (i = 0; i < p->nslots; i++)
			w->inbox_send[i] = i == p->slot ? -1 :
			    p->inbox_send[i];
		w->inbox = p->inbox_recv[p->slot];
		w->inbox_kind = WORKER_KIND_INBOX;
		ev.events = EPOLLIN;
		ev.data.ptr = &w->inbox_kind;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->inbox, &ev) == -1)
			fatal("epoll_ctl inbox");
	}

	ring_set_hwm(w->serve.ring, worker_hwm, &w->serve);
	serve_catalog(&w->serve);
	worker_cluster_setup(w);
	worker_listen(w, 1);
	metrics_sample_memory(w->serve.slot);
	__atomic_store_n(&w->serve.shm->slots[p->slot].ready, 1,
	    __ATOMIC_RELEASE);
	log_debug("started (generation %d, slot %u)", w->generation, p->slot);
}

void
worker_main(const struct worker_params *params)
{
	static struct worker	 worker;
	struct worker		*w = &worker;
	struct epoll_event	 events[WORKER_EVENTS];
	uint8_t			*kind;
	int			 i, n, timeout;

	worker_setup(w, params);
	for (;;) {
		if ((w->serve.draining || w->serve.retiring) &&
		    w->serve.nconns == 0)
			break;
		/* The master kills stragglers at drain_timeout, of a stop or
		 * a reload; an orphan (the master was killed) keeps the same
		 * bound itself. */
		if ((w->serve.draining || w->serve.retiring) &&
		    w->serve.now_ms - (w->serve.draining ?
		    w->serve.drain_start_ms : w->serve.retire_start_ms) >=
		    w->conf->drain_timeout_ms && getppid() != w->master_pid) {
			log_warnx("drain_timeout: %zu streams cut short with "
			    "no master to end them", w->serve.nstreams);
			break;
		}
		timeout = w->serve.npending > 0 || w->serve.stream_more ? 0 :
		    WORKER_TICK_MS;
		n = epoll_wait(w->epfd, events, WORKER_EVENTS, timeout);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		w->serve.now_ms = worker_clock_ms();
		for (i = 0; i < n; i++) {
			kind = events[i].data.ptr;
			switch (*kind) {
			case WORKER_KIND_LISTENER:
				worker_accept(w, events[i].data.ptr);
				break;
			case WORKER_KIND_CONN:
				worker_on_conn(w, events[i].data.ptr,
				    events[i].events);
				break;
			case WORKER_KIND_WAKE:
				/* The loop reads the ring after the batch. */
				wake_ack(w->serve.wake, w->serve.wake_slot);
				metrics_add(w->serve.slot, METRICS_WAKEUPS, 1);
				break;
			case WORKER_KIND_SIGNAL:
				worker_on_signal(w);
				break;
			case WORKER_KIND_TIMER:
				worker_on_tick(w);
				break;
			case WORKER_KIND_INBOX:
				worker_adopt(w);
				break;
			case WORKER_KIND_HANDOFF:
				if (w->serve.retiring && !w->serve.draining)
					worker_handoff(w);
				break;
			case WORKER_KIND_CLUSTER:
				cpub_poll(w->serve.cpub, w->serve.now_ms);
				break;
			}
		}
		/* One validated copy per worker, then the streams owed. */
		if (w->serve.npending > 0 || w->serve.stream_more ||
		    ring_committed(w->serve.ring) > w->serve.window.last)
			stream_fanout(&w->serve);
		conn_reap(&w->serve);
	}
	metrics_add(w->serve.slot, METRICS_STREAMS_DRAINED, w->serve.drained);
	if (w->handoff_on) {
		metrics_add(w->serve.slot, METRICS_HANDOFF_FALLBACKS,
		    w->serve.retired + w->handoff_cut);
		log_info("retiring: handed %zu streams to the new generation, "
		    "closed %zu", w->handoff_handed,
		    w->serve.retired + w->handoff_cut);
	}
	log_info("exiting: %zu streams ended at a frame boundary",
	    w->serve.drained);
	cpub_close(w->serve.cpub);
	catalog_close(w->serve.cat);
	exit(0);
}
