/*
 * relay: see relay.h.  Threads: the main one takes signals (sigtimedwait)
 * and once a second checks the stream (its epoch, its newest id) and
 * (re)starts the consumer; nats.c's threads run the consumer's callback,
 * the connection callbacks and the catalog watcher.  The callback is the
 * only appender, one message at a time, so ids reach the ring in order;
 * it and the main thread share the relay's state under r->lock.
 *
 * No acknowledged event is lost: a publish is acknowledged once JetStream
 * stored it, and every node's consumer starts from its ring's newest id
 * + 1, after a restart, a reconnect (the ordered consumer resumes after
 * the last sequence it delivered) or a new epoch.  An id this node never
 * got (the stream dropped it first) is a hole that every reader sees as a
 * gap, never as silence.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/catalog.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/relay.h"
#include "ringcast/ring.h"
#include "ringcast/wake.h"
#include "ringcast/worker.h"

#define RELAY_TICK_MS		200
#define RELAY_CHECK_MS		1000
#define RELAY_API_WAIT_MS	2000
#define RELAY_STALL_MS		5000	/* behind the stream, no progress */

struct relay {
	const struct config	*conf;
	struct ring		*ring;
	struct wake		*wake;
	struct metrics_cluster	*m;
	struct catalog		*cat;
	pthread_mutex_t		 lock;		/* cat, epoch, sub */
	natsConnection		*nc;
	jsCtx			*js;
	natsSubscription	*sub;
	uint64_t		 gen;		/* of the consumer that may append */
	struct cluster_epoch	 epoch;		/* created 0: not known */
	uint64_t		 progress_id;	/* newest id at progress_ms */
	uint64_t		 progress_ms;
	int			 closing;	/* no "lost" at our own close */
	char			 state[PATH_MAX];
	uint64_t		 last_check_ms;
	int			 conflict_said;
};

static uint64_t
relay_clock_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
relay_set(uint64_t *figure, uint64_t value)
{
	__atomic_store_n(figure, value, __ATOMIC_RELAXED);
}

static void
relay_count(uint64_t *figure)
{
	__atomic_fetch_add(figure, 1, __ATOMIC_RELAXED);
}

int
relay_state_path(char *buf, size_t len, const char *ring_path)
{
	int	 n;

	n = snprintf(buf, len, "%s.cluster", ring_path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
relay_state_read(const char *path, int64_t *created, uint64_t *base)
{
	FILE		*fp;
	long long	 c;
	unsigned long long b;
	int		 n;

	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	n = fscanf(fp, "created=%lld base=%llu", &c, &b);
	fclose(fp);
	if (n != 2)
		return -1;
	*created = (int64_t)c;
	*base = (uint64_t)b;
	return 0;
}

int
relay_state_write(const char *path, int64_t created, uint64_t base)
{
	char	 tmp[PATH_MAX + 8];
	FILE	*fp;
	int	 n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	if ((fp = fopen(tmp, "w")) == NULL) {
		log_warn("%s", tmp);
		return -1;
	}
	fprintf(fp, "created=%lld base=%llu\n", (long long)created,
	    (unsigned long long)base);
	if (fflush(fp) != 0 || fsync(fileno(fp)) == -1) {
		log_warn("%s", tmp);
		fclose(fp);
		unlink(tmp);
		return -1;
	}
	fclose(fp);
	if (rename(tmp, path) == -1) {
		log_warn("rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

uint64_t
relay_start_seq(uint64_t newest, uint64_t base, uint64_t first_seq,
    uint64_t last_seq, int *hole, int *conflict)
{
	uint64_t	 next;

	*hole = *conflict = 0;
	if (first_seq == 0)
		first_seq = 1;
	if (newest < base) {
		/* The ring predates this epoch: its ids are all below. */
		*hole = newest != 0 || first_seq > 1;
		return first_seq;
	}
	next = newest - base + 1;
	if (next < first_seq) {
		*hole = 1;
		return first_seq;
	}
	if (next > last_seq + 1) {
		*conflict = 1;
		return last_seq + 1;
	}
	return next;
}

/* The catalog id of a message's topic: found, materialised from its
 * family, fetched from the cluster's bucket, or 0 (none here: the event
 * keeps its id in the ring but no stream here can follow it). */
static uint32_t
relay_topic(struct relay *r, const char *name)
{
	struct catalog_topic	 t;
	enum catalog_result	 res;
	int			 flags = CATALOG_RESOLVE_MATERIALISE;

	if (r->conf->auto_create_topics)
		flags |= CATALOG_RESOLVE_AUTO_CREATE;
	if (r->cat == NULL)
		return 0;
	res = catalog_topic_resolve(r->cat, name, strlen(name), flags, &t);
	/* XXX ccat: fetch the topic's key from the bucket and retry. */
	if (res == CATALOG_FOUND)
		return t.id;
	if (res == CATALOG_ERROR)
		log_warnx("topic %s: %s", name, catalog_error(r->cat));
	else
		log_debug("topic %s: not in this node's catalog", name);
	relay_count(&r->m->unknown_topics);
	return 0;
}

static struct relay	 relay;

/* The consumer's callback (a nats.c thread): append, wake.  arg is the
 * generation of the consumer it was subscribed for: a replaced one's
 * messages are dropped, the new one's taken even before js_Subscribe has
 * returned it. */
static void
relay_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	struct relay		*r = &relay;
	jsMsgMetaData		*meta = NULL;
	struct ring_event	 ev;
	char			 topic[TOPIC_NAME_MAX + 1];
	uint64_t		 id, committed;
	int			 len;

	(void)nc;
	(void)sub;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
		log_warnx("a message without JetStream metadata on %s",
		    natsMsg_GetSubject(msg));
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if ((uint64_t)(uintptr_t)arg != r->gen) {
		/* A consumer being replaced (new epoch): drop. */
		pthread_mutex_unlock(&r->lock);
		goto done;
	}
	id = r->epoch.base + meta->Sequence.Stream;
	if (cluster_subject_topic(natsMsg_GetSubject(msg), topic,
	    sizeof(topic)) == -1) {
		log_warnx("id %" PRIu64 ": subject %s is not a topic's", id,
		    natsMsg_GetSubject(msg));
		ev.topic = 0;
	} else
		ev.topic = relay_topic(r, topic);
	pthread_mutex_unlock(&r->lock);
	len = natsMsg_GetDataLength(msg);
	ev.body = natsMsg_GetData(msg);
	ev.len = len > 0 ? (size_t)len : 0;
	committed = ring_committed(r->ring);
	if (ring_append_at(r->ring, &ev, 1, id) == -1) {
		if (errno == EEXIST)
			relay_count(&r->m->duplicates);
		else if (errno == EMSGSIZE)
			log_warnx("id %" PRIu64 ": %zu bytes do not fit this "
			    "node's ring ([ring] size): its subscribers get "
			    "a gap", id, ev.len);
		else
			log_warn("id %" PRIu64 ": append", id);
		goto done;
	}
	if (id > committed + 1 && committed != 0)
		relay_count(&r->m->gaps);
	relay_count(&r->m->appended);
	relay_set(&r->m->last_id, id);
	if (id > __atomic_load_n(&r->m->stream_last, __ATOMIC_RELAXED))
		relay_set(&r->m->stream_last, id);
	if (r->wake != NULL)
		wake_notify(r->wake, WAKE_NOBODY, ev.topic);
done:
	jsMsgMetaData_Destroy(meta);
	natsMsg_Destroy(msg);
}

static void
relay_disconnected(natsConnection *nc, void *arg)
{
	struct relay	*r = arg;

	(void)nc;
	relay_set(&r->m->connected, 0);
	if (__atomic_load_n(&r->closing, __ATOMIC_RELAXED))
		return;
	relay_count(&r->m->disconnects);
	log_warnx("NATS connection lost: publishes get 503, streams go on "
	    "from the ring");
}

static void
relay_reconnected(natsConnection *nc, void *arg)
{
	struct relay	*r = arg;

	(void)nc;
	relay_set(&r->m->connected, 1);
	log_info("NATS connection up");
}

/* Stop the consumer (lock held). */
static void
relay_consumer_stop(struct relay *r)
{
	natsSubscription	*sub = r->sub;

	r->gen++;
	if (sub == NULL)
		return;
	r->sub = NULL;
	relay_set(&r->m->consuming, 0);
	/* Unlocked: Unsubscribe waits for a running callback, which may
	 * want the lock. */
	pthread_mutex_unlock(&r->lock);
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	pthread_mutex_lock(&r->lock);
}

/* Start the consumer for epoch ep (lock held).  0 or -1 (logged). */
static int
relay_consumer_start(struct relay *r, const struct cluster_epoch *ep)
{
	natsSubscription	*sub = NULL;
	jsSubOptions		 so;
	jsErrCode		 jerr = 0;
	natsStatus		 s;
	uint64_t		 newest, start;
	int			 hole, conflict;

	newest = ring_committed(r->ring);
	start = relay_start_seq(newest, ep->base, ep->first_seq,
	    ep->last_seq, &hole, &conflict);
	relay_set(&r->m->conflict, (uint64_t)conflict);
	if (conflict && !r->conflict_said) {
		log_warnx("stream %s: this node's ring holds ids up to %" PRIu64
		    " but the stream's end at %" PRIu64 " (base %" PRIu64 "):"
		    " the ring predates the stream, or the stream lost "
		    "events.  Events with ids this ring has are not "
		    "delivered here: stop this node, move its ring file "
		    "aside, start it again", r->conf->cluster_stream, newest,
		    ep->base + ep->last_seq, ep->base);
		r->conflict_said = 1;
	} else if (!conflict)
		r->conflict_said = 0;
	if (hole)
		log_warnx("stream %s: ids %" PRIu64 " to %" PRIu64 " are "
		    "not in the stream (it starts at %" PRIu64 "): "
		    "subscribers behind them get a gap",
		    r->conf->cluster_stream, newest + 1,
		    ep->base + start - 1, ep->base + start);
	jsSubOptions_Init(&so);
	so.Stream = r->conf->cluster_stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = start;
	/* The callback takes r->lock: subscribe unlocked. */
	r->epoch = *ep;
	relay_set(&r->m->base, ep->base);
	__atomic_store_n(&r->m->epoch, (uint64_t)ep->created,
	    __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	s = js_Subscribe(&sub, r->js, CLUSTER_SUBJECT_PREFIX ">",
	    relay_on_msg, (void *)(uintptr_t)r->gen, NULL, &so, &jerr);
	pthread_mutex_lock(&r->lock);
	if (s != NATS_OK) {
		log_warnx("stream %s: cannot consume from sequence %" PRIu64
		    ": %s", r->conf->cluster_stream, start,
		    cluster_status_text(s));
		return -1;
	}
	r->sub = sub;
	r->progress_id = ring_committed(r->ring);
	r->progress_ms = relay_clock_ms();
	relay_set(&r->m->consuming, 1);
	relay_set(&r->m->stream_last, ep->base + ep->last_seq);
	log_info("stream %s: consuming from id %" PRIu64 " (base %" PRIu64
	    ", sequences %" PRIu64 " to %" PRIu64 ")",
	    r->conf->cluster_stream, ep->base + start, ep->base,
	    ep->first_seq, ep->last_seq);
	return 0;
}

/* Is the consumer behind the stream ep without progress for a while?
 * (nats.c's ordered consumer resets itself; this is the belt to it.) */
static int
relay_stalled(struct relay *r, const struct cluster_epoch *ep)
{
	uint64_t	 now = relay_clock_ms(), newest;

	newest = ring_committed(r->ring);
	if (newest != r->progress_id || ep->base + ep->last_seq <= newest) {
		r->progress_id = newest;
		r->progress_ms = now;
		return 0;
	}
	return now - r->progress_ms >= RELAY_STALL_MS;
}

/* Once a second: the stream as it is now; a new epoch restarts the
 * consumer, and so does one stalled; a missing consumer is started. */
static void
relay_check(struct relay *r)
{
	struct cluster_epoch	 ep;
	int64_t			 saved_created;
	uint64_t		 saved_base;
	char			 err[512];

	if (natsConnection_Status(r->nc) != NATS_CONN_STATUS_CONNECTED) {
		relay_set(&r->m->connected, 0);
		return;
	}
	relay_set(&r->m->connected, 1);
	if (cluster_stream_ensure(r->js, r->conf, ring_committed(r->ring),
	    &ep, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return;
	}
	if (ep.base + ep.last_seq > __atomic_load_n(&r->m->stream_last,
	    __ATOMIC_RELAXED))
		relay_set(&r->m->stream_last, ep.base + ep.last_seq);
	pthread_mutex_lock(&r->lock);
	if (r->sub != NULL && ep.created == r->epoch.created &&
	    !relay_stalled(r, &ep)) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if (r->sub != NULL && ep.created == r->epoch.created)
		log_warnx("stream %s: the consumer made no progress for %d s "
		    "while behind the stream: starting it again",
		    r->conf->cluster_stream, RELAY_STALL_MS / 1000);
	else if (r->sub != NULL || (relay_state_read(r->state,
	    &saved_created, &saved_base) == 0 &&
	    saved_created != ep.created)) {
		log_warnx("stream %s was made anew (base %" PRIu64 "): a new "
		    "epoch; subscribers get a gap", r->conf->cluster_stream,
		    ep.base);
		relay_count(&r->m->epochs);
	}
	relay_consumer_stop(r);
	if (relay_state_write(r->state, ep.created, ep.base) == 0)
		relay_consumer_start(r, &ep);
	pthread_mutex_unlock(&r->lock);
}

static void
relay_setup(struct relay *r, const struct relay_params *p)
{
	char	 err[PATH_MAX + 256];

	memset(r, 0, sizeof(*r));
	r->conf = p->conf;
	r->ring = p->ring;
	r->wake = p->wake;
	r->m = &p->shm->cluster;
	pthread_mutex_init(&r->lock, NULL);
	log_procname("relay");
	setproctitle("relay");
	signal(SIGPIPE, SIG_IGN);
	worker_drop_privileges(r->conf);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl");
	if (getppid() != p->master_pid)
		exit(0);
	if (relay_state_path(r->state, sizeof(r->state),
	    r->conf->ring_path) == -1)
		fatalx("[ring] path: too long");
	if (catalog_open(&r->cat, r->conf->catalog_path,
	    r->conf->catalog_map_size, 0, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		r->cat = NULL;
	}
	/* Blocked signals are inherited by nats.c's threads: only this
	 * thread takes them. */
	if (cluster_connect(r->conf, "ringcast relay", 1, relay_disconnected,
	    relay_reconnected, r, &r->nc, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (cluster_jetstream(r->nc, NULL, NULL, RELAY_API_WAIT_MS, &r->js,
	    err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* XXX ccat: start the catalog watcher. */
}

static void
relay_teardown(struct relay *r)
{
	pthread_mutex_lock(&r->lock);
	relay_consumer_stop(r);
	pthread_mutex_unlock(&r->lock);
	__atomic_store_n(&r->closing, 1, __ATOMIC_RELAXED);
	relay_set(&r->m->connected, 0);
	jsCtx_Destroy(r->js);
	natsConnection_Close(r->nc);
	natsConnection_Destroy(r->nc);
	nats_CloseAndWait(2000);
	catalog_close(r->cat);
	pthread_mutex_destroy(&r->lock);
}

void
relay_main(const struct relay_params *p)
{
	struct relay		*r = &relay;
	struct timespec		 wait = { 0, RELAY_TICK_MS * 1000000L };
	sigset_t		 set;
	siginfo_t		 si;
	uint64_t		 now;
	int			 sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	relay_setup(r, p);
	for (;;) {
		sig = sigtimedwait(&set, &si, &wait);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGUSR2)
			break;
		if (sig == SIGUSR1 && log_reopen() == -1)
			log_warn("reopen log");
		if (getppid() != p->master_pid)
			break;
		now = relay_clock_ms();
		if (now - r->last_check_ms >= RELAY_CHECK_MS) {
			r->last_check_ms = now;
			relay_check(r);
		}
	}
	relay_teardown(r);
	log_debug("exiting");
	exit(0);
}
