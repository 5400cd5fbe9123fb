/*
 * archiver: one process, no event loop: it waits for signals with a short
 * timeout, and between them archives the ring in batches of at most
 * ARCHIVER_BATCH events, sweeps quiet topics by age and syncs the store
 * once a second.  Retention comes from the catalog (refreshed once a
 * second, and at once for a topic id it has not seen) with the [history]
 * defaults; while the catalog cannot be read nothing is archived, so a
 * topic is never purged for want of its record.  A full map stops growth,
 * not archiving: events are dropped (their topics' floors say so) and
 * growth is tried again every ARCHIVER_FULL_RETRY_MS.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/archiver.h"
#include "ringcast/catalog.h"
#include "ringcast/config.h"
#include "ringcast/history.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/ring.h"
#include "ringcast/worker.h"

#define ARCHIVER_BATCH		1024
#define ARCHIVER_IDLE_MS	20
#define ARCHIVER_SECOND_MS	1000
#define ARCHIVER_FULL_RETRY_MS	10000
#define ARCHIVER_ERROR_MS	1000

struct retention_entry {
	uint32_t			 id;
	struct history_retention	 r;
};

struct archiver {
	const struct config	*conf;
	struct ring		*ring;
	struct metrics_archiver	*m;
	struct catalog		*cat;
	struct history		*hist;
	struct retention_entry	*table;		/* sorted by id */
	size_t			 ntable;
	size_t			 captable;
	int			 loaded;	/* the table was read once */
	int			 refreshed;	/* in this batch */
	int			 grow;		/* 0: the map is full */
	uint64_t		 full_since_ms;
	uint64_t		 last_second_ms;
};

static uint64_t
archiver_clock(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
archiver_table_add(void *arg, const struct catalog_topic *t)
{
	struct archiver		*a = arg;
	struct retention_entry	*p;
	size_t			 cap;

	if (a->ntable == a->captable) {
		cap = a->captable == 0 ? 256 : a->captable * 2;
		if ((p = reallocarray(a->table, cap, sizeof(*p))) == NULL)
			return -1;
		a->table = p;
		a->captable = cap;
	}
	a->table[a->ntable].id = t->id;
	a->table[a->ntable].r.keep = t->keep;
	a->table[a->ntable].r.max_age_ms = t->max_age_ms;
	a->ntable++;
	return 0;
}

static int
archiver_entry_cmp(const void *x, const void *y)
{
	const struct retention_entry	*a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Read every topic's retention; on failure the old table stays. */
static void
archiver_table_load(struct archiver *a)
{
	char	 err[PATH_MAX + 256];
	size_t	 old = a->ntable;

	if (a->cat == NULL && catalog_open(&a->cat, a->conf->catalog_path,
	    a->conf->catalog_map_size, 0, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		a->cat = NULL;
		return;
	}
	a->ntable = 0;
	if (catalog_topic_foreach(a->cat, archiver_table_add, a) == -1) {
		log_warnx("archiver: %s", catalog_error(a->cat));
		a->ntable = old;
		return;
	}
	/* An empty table may be NULL: qsort and bsearch must not see it. */
	if (a->ntable > 1)
		qsort(a->table, a->ntable, sizeof(*a->table),
		    archiver_entry_cmp);
	a->loaded = 1;
}

/* The retention entry of topic, or NULL. */
static struct retention_entry *
archiver_find(struct archiver *a, uint32_t topic)
{
	struct retention_entry	 key;

	if (a->ntable == 0)
		return NULL;
	key.id = topic;
	return bsearch(&key, a->table, a->ntable, sizeof(*a->table),
	    archiver_entry_cmp);
}

/* history_retention_fn: the topic's own retention, else the defaults. */
static int
archiver_retention(void *arg, uint32_t topic, struct history_retention *r)
{
	struct archiver		*a = arg;
	struct retention_entry	*e;

	e = archiver_find(a, topic);
	if (e == NULL && !a->refreshed) {
		/* Added since the last read: look once more. */
		a->refreshed = 1;
		archiver_table_load(a);
		e = archiver_find(a, topic);
	}
	if (e == NULL)
		return 0;		/* removed: its history goes */
	r->keep = e->r.keep != 0 ? e->r.keep : a->conf->history_keep;
	r->max_age_ms = e->r.max_age_ms != 0 ? e->r.max_age_ms :
	    a->conf->history_max_age_ms;
	return r->keep != 0 || r->max_age_ms != 0;
}

static void
archiver_account(struct archiver *a, const struct history_result *res)
{
	metrics_set(&a->m->archived, res->archived);
	__atomic_fetch_add(&a->m->stored, res->stored, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->m->trimmed, res->trimmed, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->m->dropped, res->dropped, __ATOMIC_RELAXED);
}

/* One batch: the seqs consumed, 0 when there was nothing, -1 on an error
 * (logged) that a pause may cure. */
static int
archiver_batch(struct archiver *a)
{
	struct history_result	 res;
	uint64_t		 now = archiver_clock(CLOCK_MONOTONIC);
	int			 n;

	a->refreshed = 0;
	if (!a->grow && now - a->full_since_ms >= ARCHIVER_FULL_RETRY_MS)
		a->grow = 1;
	n = history_archive(a->hist, a->ring, archiver_retention, a,
	    ARCHIVER_BATCH, archiver_clock(CLOCK_REALTIME), a->grow, &res);
	if (n == -1 && errno == ENOSPC && a->grow) {
		if (!__atomic_load_n(&a->m->full, __ATOMIC_RELAXED))
			log_warnx("%s: history stops growing until there is "
			    "room ([history] map_size); publishing goes on",
			    history_error(a->hist));
		__atomic_fetch_add(&a->m->map_full, 1, __ATOMIC_RELAXED);
		metrics_set(&a->m->full, 1);
		a->grow = 0;
		a->full_since_ms = now;
		n = history_archive(a->hist, a->ring, archiver_retention, a,
		    ARCHIVER_BATCH, archiver_clock(CLOCK_REALTIME), 0, &res);
	}
	if (n == -1) {
		log_warnx("%s", history_error(a->hist));
		return -1;
	}
	if (a->grow && n > 0 && __atomic_load_n(&a->m->full,
	    __ATOMIC_RELAXED)) {
		log_info("history %s: growing again",
		    a->conf->catalog_path);
		metrics_set(&a->m->full, 0);
	}
	archiver_account(a, &res);
	return n;
}

/* Once a second: the retention table, the age sweep, a sync. */
static void
archiver_second(struct archiver *a)
{
	struct history_result	 res;

	archiver_table_load(a);
	if (a->loaded) {
		if (history_sweep(a->hist, archiver_retention, a,
		    archiver_clock(CLOCK_REALTIME), &res) == -1)
			log_warnx("%s", history_error(a->hist));
		else
			__atomic_fetch_add(&a->m->trimmed, res.trimmed,
			    __ATOMIC_RELAXED);
	}
	if (history_sync(a->hist) == -1)
		log_warnx("%s", history_error(a->hist));
}

static void
archiver_setup(struct archiver *a, const struct archiver_params *p)
{
	char	 path[PATH_MAX], err[PATH_MAX + 256];
	uint64_t archived = 0;

	memset(a, 0, sizeof(*a));
	a->conf = p->conf;
	a->ring = p->ring;
	a->m = &p->shm->archiver;
	a->grow = 1;
	log_procname("archiver");
	setproctitle("archiver");
	/* The master forks with every signal of ours blocked; they stay
	 * blocked and are taken with sigtimedwait. */
	signal(SIGPIPE, SIG_IGN);
	worker_drop_privileges(a->conf);
	/* After the drop: changing the uid clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl");
	if (getppid() != p->master_pid)
		exit(0);
	if (history_path(path, sizeof(path), a->conf->catalog_path) == -1)
		fatalx("history: path too long");
	if (history_open(&a->hist, path, a->conf->history_map_size,
	    HISTORY_CREATE, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (history_position(a->hist, &archived) == 0)
		metrics_set(&a->m->archived, archived);
	archiver_table_load(a);
	log_debug("started at id %llu", (unsigned long long)archived);
}

/* SIGTERM: archive what the ring holds (the workers are gone), bounded. */
static void
archiver_finish(struct archiver *a)
{
	uint64_t	 deadline;
	int		 n;

	deadline = archiver_clock(CLOCK_MONOTONIC) +
	    a->conf->drain_timeout_ms / 2;
	do
		n = a->loaded ? archiver_batch(a) : 0;
	while (n > 0 && archiver_clock(CLOCK_MONOTONIC) < deadline);
	if (n == 0 && history_mark_clean(a->hist, a->ring) == -1)
		log_warnx("%s", history_error(a->hist));
}

void
archiver_main(const struct archiver_params *p)
{
	static struct archiver	 archiver;
	struct archiver		*a = &archiver;
	struct timespec		 wait;
	sigset_t		 set;
	siginfo_t		 si;
	uint64_t		 now, pause_ms = 0;
	int			 sig, n = 0;

	archiver_setup(a, p);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	for (;;) {
		/* Busy: only look for a signal; idle: wait for one a while. */
		pause_ms = n > 0 ? 0 : n < 0 ? ARCHIVER_ERROR_MS :
		    ARCHIVER_IDLE_MS;
		wait.tv_sec = (time_t)(pause_ms / 1000);
		wait.tv_nsec = (long)(pause_ms % 1000) * 1000000L;
		sig = sigtimedwait(&set, &si, &wait);
		if (sig == SIGTERM || sig == SIGINT) {
			archiver_finish(a);
			break;
		}
		if (sig == SIGUSR2)
			break;
		if (sig == SIGUSR1 && log_reopen() == -1)
			log_warn("reopen log");
		if (getppid() != p->master_pid) {
			archiver_finish(a);
			break;
		}
		now = archiver_clock(CLOCK_MONOTONIC);
		if (now - a->last_second_ms >= ARCHIVER_SECOND_MS) {
			a->last_second_ms = now;
			archiver_second(a);
		}
		n = a->loaded ? archiver_batch(a) : -1;
	}
	if (history_sync(a->hist) == -1)
		log_warnx("%s", history_error(a->hist));
	history_close(a->hist);
	catalog_close(a->cat);
	free(a->table);
	log_debug("exiting");
	exit(0);
}
