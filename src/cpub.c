/*
 * cpub: see cpub.h.  Each event goes out with a message id
 * "<process nonce>.<request token>.<index>", so JetStream drops a resend
 * as a duplicate and the acknowledgement names its request.  The ack
 * handler (a nats.c thread) only appends to a queue under a mutex and
 * bumps an eventfd; everything else runs on the worker's thread.
 * Requests are found by token in a small hash of lists.
 */
#include <sys/eventfd.h>
#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/cpub.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"

#define CPUB_BUCKETS		1024
#define CPUB_ID_MAX		64
#define CPUB_ATTEMPT_MS		1000	/* one attempt's wait for its ack */
#define CPUB_RETRY_MS		200	/* before sending again */
#define CPUB_REFUSED		UINT64_MAX	/* ids[]: answered, not acked */

struct cpub_ack {
	uint64_t	 token;
	uint64_t	 index;
	uint64_t	 seq;		/* 0: refused */
	int		 retry;		/* refused for now: send it again */
	char		 error[96];
};

/* A request's events are kept until acknowledged: an attempt that
 * times out (a JetStream leader change, a reconnect) is sent again with
 * the same message id, so JetStream stores it once. */
struct cpub_req {
	void			*owner;		/* NULL: forgotten */
	uint64_t		 token;
	uint64_t		 deadline_ms;
	size_t			 n, answered, acked;
	uint64_t		*ids;		/* 0: awaited */
	uint64_t		*resend_at;	/* 0: none due */
	char			**subjects;
	void			**bodies;
	size_t			*lens;
	char			 error[160];
	LIST_ENTRY(cpub_req)	 link;
};
LIST_HEAD(cpub_list, cpub_req);

struct cpub {
	const struct config	*conf;
	struct metrics_cluster	*m;
	cpub_done_fn		 done;
	void			*arg;
	natsConnection		*nc;
	jsCtx			*js;
	int			 efd;
	uint64_t		 nonce;
	uint64_t		 next_token;
	size_t			 inflight;
	struct cpub_list	 buckets[CPUB_BUCKETS];
	pthread_mutex_t		 lock;		/* guards the queue */
	struct cpub_ack		*queue;
	size_t			 nqueue, capqueue;
	struct cpub_ack		*spare;		/* swapped with queue */
	size_t			 capspare;
};

/* nats.c's thread: queue the outcome of one event, wake the loop. */
static void
cpub_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *arg)
{
	struct cpub		*cp = arg;
	struct cpub_ack		 ack, *q;
	const char		*id = NULL;
	unsigned long long	 nonce, token, index;
	uint64_t		 one = 1;
	size_t			 cap;

	(void)js;
	memset(&ack, 0, sizeof(ack));
	if (msg == NULL || natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) !=
	    NATS_OK || id == NULL || sscanf(id, "%llx.%llu.%llu", &nonce,
	    &token, &index) != 3 || nonce != cp->nonce)
		goto out;
	ack.token = token;
	ack.index = index;
	if (pa != NULL && pae == NULL)
		ack.seq = pa->Sequence;
	else {
		ack.retry = pae == NULL || pae->Err == NATS_TIMEOUT ||
		    pae->Err == NATS_NO_RESPONDERS ||
		    pae->ErrCode == JSClusterNotAvailErr ||
		    pae->ErrCode == JSClusterNotLeaderErr;
		snprintf(ack.error, sizeof(ack.error), "%s",
		    pae == NULL ? "no acknowledgement" : pae->ErrText != NULL &&
		    *pae->ErrText != '\0' ? pae->ErrText :
		    natsStatus_GetText(pae->Err));
	}
	pthread_mutex_lock(&cp->lock);
	if (cp->nqueue == cp->capqueue) {
		cap = cp->capqueue == 0 ? 64 : cp->capqueue * 2;
		if ((q = reallocarray(cp->queue, cap, sizeof(*q))) == NULL) {
			/* The request's deadline answers it. */
			pthread_mutex_unlock(&cp->lock);
			goto out;
		}
		cp->queue = q;
		cp->capqueue = cap;
	}
	cp->queue[cp->nqueue++] = ack;
	pthread_mutex_unlock(&cp->lock);
	if (write(cp->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("cluster: eventfd");
out:
	natsMsg_Destroy(msg);
}

struct cpub *
cpub_open(const struct config *conf, struct metrics *shm, unsigned int worker,
    cpub_done_fn done, void *arg, char *err, size_t errlen)
{
	struct cpub	*cp;
	char		 name[64];
	size_t		 i;

	if ((cp = calloc(1, sizeof(*cp))) == NULL) {
		snprintf(err, errlen, "cluster: %s", strerror(errno));
		return NULL;
	}
	cp->conf = conf;
	cp->m = &shm->cluster;
	cp->done = done;
	cp->arg = arg;
	cp->efd = -1;
	for (i = 0; i < CPUB_BUCKETS; i++)
		LIST_INIT(&cp->buckets[i]);
	arc4random_buf(&cp->nonce, sizeof(cp->nonce));
	pthread_mutex_init(&cp->lock, NULL);
	if ((cp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cluster: eventfd: %s", strerror(errno));
		goto fail;
	}
	snprintf(name, sizeof(name), "ringcast worker %u", worker);
	if (cluster_connect(conf, name, 1, NULL, NULL, NULL, &cp->nc, err,
	    errlen) == -1)
		goto fail;
	if (cluster_jetstream(cp->nc, cpub_on_ack, cp,
	    (int64_t)conf->cluster_publish_timeout_ms, &cp->js, err,
	    errlen) == -1)
		goto fail;
	return cp;
fail:
	cpub_close(cp);
	return NULL;
}

static void
cpub_req_free(struct cpub *cp, struct cpub_req *r)
{
	size_t	 i;

	LIST_REMOVE(r, link);
	cp->inflight--;
	for (i = 0; r->subjects != NULL && i < r->n; i++) {
		free(r->subjects[i]);
		free(r->bodies[i]);
	}
	free(r->subjects);
	free(r->bodies);
	free(r->lens);
	free(r->resend_at);
	free(r->ids);
	free(r);
}

void
cpub_close(struct cpub *cp)
{
	struct cpub_req	*r;
	size_t		 i;

	if (cp == NULL)
		return;
	/* Destroying the connection first stops the ack handler. */
	if (cp->js != NULL)
		jsCtx_Destroy(cp->js);
	if (cp->nc != NULL) {
		natsConnection_Close(cp->nc);
		natsConnection_Destroy(cp->nc);
	}
	nats_CloseAndWait(2000);
	for (i = 0; i < CPUB_BUCKETS; i++)
		while ((r = LIST_FIRST(&cp->buckets[i])) != NULL)
			cpub_req_free(cp, r);
	if (cp->efd != -1)
		close(cp->efd);
	pthread_mutex_destroy(&cp->lock);
	free(cp->queue);
	free(cp->spare);
	free(cp);
}

int
cpub_fd(const struct cpub *cp)
{
	return cp->efd;
}

size_t
cpub_inflight(const struct cpub *cp)
{
	return cp->inflight;
}

int
cpub_connected(const struct cpub *cp)
{
	return natsConnection_Status(cp->nc) == NATS_CONN_STATUS_CONNECTED;
}

static struct cpub_req *
cpub_find(struct cpub *cp, uint64_t token)
{
	struct cpub_req	*r;

	LIST_FOREACH(r, &cp->buckets[token % CPUB_BUCKETS], link)
		if (r->token == token)
			return r;
	return NULL;
}

/* Every event of r answered (or its deadline passed): report, free. */
static void
cpub_finish(struct cpub *cp, struct cpub_req *r)
{
	struct cpub_result	 res;
	size_t			 i;

	if (r->owner != NULL) {
		res.n = r->n;
		res.acked = r->acked;
		for (i = 0; i < r->n; i++)
			if (r->ids[i] == CPUB_REFUSED)
				r->ids[i] = 0;
		res.ids = r->ids;
		res.error = r->acked == r->n ? NULL : r->error[0] != '\0' ?
		    r->error : "no acknowledgement in time";
		cp->done(cp->arg, r->owner, &res);
	}
	cpub_req_free(cp, r);
}

/* Send (again) event i of r, with its message id.  0 or -1 with err. */
static int
cpub_send(struct cpub *cp, struct cpub_req *r, size_t i, char *err,
    size_t errlen)
{
	jsPubOptions	 po;
	natsMsg		*msg = NULL;
	natsStatus	 s;
	char		 id[CPUB_ID_MAX];

	snprintf(id, sizeof(id), "%" PRIx64 ".%" PRIu64 ".%zu", cp->nonce,
	    r->token, i);
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.ExpectStream = cp->conf->cluster_stream;
	po.MaxWait = cp->conf->cluster_publish_timeout_ms < CPUB_ATTEMPT_MS ?
	    (int64_t)cp->conf->cluster_publish_timeout_ms : CPUB_ATTEMPT_MS;
	s = natsMsg_Create(&msg, r->subjects[i], NULL, r->bodies[i],
	    (int)r->lens[i]);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(cp->js, &msg, &po);
	if (s == NATS_OK)
		return 0;
	natsMsg_Destroy(msg);
	snprintf(err, errlen, "%s", cluster_status_text(s));
	return -1;
}

/* A new request of n events, copied; NULL when out of memory. */
static struct cpub_req *
cpub_req_new(const char *const *subjects, const void *const *bodies,
    const size_t *lens, size_t n)
{
	struct cpub_req	*r;
	size_t		 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->n = n;
	if ((r->ids = calloc(n, sizeof(*r->ids))) == NULL ||
	    (r->resend_at = calloc(n, sizeof(*r->resend_at))) == NULL ||
	    (r->subjects = calloc(n, sizeof(*r->subjects))) == NULL ||
	    (r->bodies = calloc(n, sizeof(*r->bodies))) == NULL ||
	    (r->lens = calloc(n, sizeof(*r->lens))) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		r->lens[i] = lens[i];
		if ((r->subjects[i] = strdup(subjects[i])) == NULL ||
		    (r->bodies[i] = malloc(lens[i] + 1)) == NULL)
			goto fail;
		memcpy(r->bodies[i], bodies[i], lens[i]);
	}
	return r;
fail:
	for (i = 0; r->subjects != NULL && i < n; i++) {
		free(r->subjects[i]);
		if (r->bodies != NULL)
			free(r->bodies[i]);
	}
	free(r->subjects);
	free(r->bodies);
	free(r->lens);
	free(r->resend_at);
	free(r->ids);
	free(r);
	return NULL;
}

int
cpub_publish(struct cpub *cp, void *owner, const char *const *subjects,
    const void *const *bodies, const size_t *lens, size_t n, uint64_t now_ms,
    char *err, size_t errlen)
{
	struct cpub_req	*r;
	char		 why[96];
	size_t		 i;

	if (__atomic_load_n(&cp->m->epoch, __ATOMIC_ACQUIRE) == 0) {
		snprintf(err, errlen, "the cluster's stream is not known yet");
		return -1;
	}
	if (!cpub_connected(cp)) {
		snprintf(err, errlen, "NATS is unreachable");
		return -1;
	}
	if ((r = cpub_req_new(subjects, bodies, lens, n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->owner = owner;
	r->token = ++cp->next_token;
	r->deadline_ms = now_ms + cp->conf->cluster_publish_timeout_ms;
	LIST_INSERT_HEAD(&cp->buckets[r->token % CPUB_BUCKETS], r, link);
	cp->inflight++;
	for (i = 0; i < n; i++)
		if (cpub_send(cp, r, i, why, sizeof(why)) == -1)
			break;
	if (i == n)
		return 0;
	snprintf(r->error, sizeof(r->error), "event %zu not sent: %s", i + 1,
	    why);
	if (i == 0) {
		/* Nothing went out: the caller answers now. */
		snprintf(err, errlen, "%s", r->error);
		cpub_req_free(cp, r);
		return -1;
	}
	/* The first i are awaited; the rest count as answered. */
	r->answered = n - i;
	for (; i < n; i++)
		r->ids[i] = CPUB_REFUSED;
	return 0;
}

void
cpub_forget(struct cpub *cp, void *owner)
{
	struct cpub_req	*r;
	size_t		 i;

	for (i = 0; i < CPUB_BUCKETS; i++)
		LIST_FOREACH(r, &cp->buckets[i], link)
			if (r->owner == owner)
				r->owner = NULL;
}

void
cpub_poll(struct cpub *cp, uint64_t now_ms)
{
	struct cpub_ack	*acks, *a;
	struct cpub_req	*r;
	uint64_t	 count, base;
	size_t		 n, i, cap;

	while (read(cp->efd, &count, sizeof(count)) > 0)
		;
	pthread_mutex_lock(&cp->lock);
	acks = cp->queue;
	n = cp->nqueue;
	cap = cp->capqueue;
	cp->queue = cp->spare;
	cp->capqueue = cp->capspare;
	cp->nqueue = 0;
	pthread_mutex_unlock(&cp->lock);
	base = __atomic_load_n(&cp->m->base, __ATOMIC_RELAXED);
	for (i = 0; i < n; i++) {
		a = &acks[i];
		if ((r = cpub_find(cp, a->token)) == NULL || a->index >= r->n ||
		    r->ids[a->index] != 0)
			continue;	/* timed out already, or a repeat */
		if (a->seq == 0 && a->retry) {
			/* Sent again on a tick, until the deadline. */
			if (r->resend_at[a->index] == 0)
				r->resend_at[a->index] = now_ms + CPUB_RETRY_MS;
			if (r->error[0] == '\0')
				snprintf(r->error, sizeof(r->error), "%s",
				    a->error);
			continue;
		}
		r->resend_at[a->index] = 0;
		r->answered++;
		if (a->seq != 0) {
			r->ids[a->index] = base + a->seq;
			r->acked++;
		} else {
			r->ids[a->index] = CPUB_REFUSED;
			if (r->error[0] == '\0')
				snprintf(r->error, sizeof(r->error), "%s",
				    a->error);
		}
		if (r->answered == r->n)
			cpub_finish(cp, r);
	}
	cp->spare = acks;
	cp->capspare = cap;
}

/* Send again the events of r whose retry is due, while connected. */
static void
cpub_resend_due(struct cpub *cp, struct cpub_req *r, uint64_t now_ms)
{
	char	 why[96];
	size_t	 i;

	if (!cpub_connected(cp))
		return;
	for (i = 0; i < r->n; i++) {
		if (r->resend_at[i] == 0 || r->resend_at[i] > now_ms)
			continue;
		r->resend_at[i] = 0;
		if (cpub_send(cp, r, i, why, sizeof(why)) == -1)
			r->resend_at[i] = now_ms + CPUB_RETRY_MS;
	}
}

void
cpub_tick(struct cpub *cp, uint64_t now_ms)
{
	struct cpub_req	*r, *next;
	size_t		 i;

	if (cp->inflight == 0)
		return;
	for (i = 0; i < CPUB_BUCKETS; i++)
		for (r = LIST_FIRST(&cp->buckets[i]); r != NULL; r = next) {
			next = LIST_NEXT(r, link);
			if (r->deadline_ms <= now_ms)
				cpub_finish(cp, r);
			else
				cpub_resend_due(cp, r, now_ms);
		}
}
