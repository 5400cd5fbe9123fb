/*
 * cpub: a worker's publishing into the cluster's JetStream stream (issue
 * #16).  A request of n events is sent at once, asynchronously; its answer
 * is owed once JetStream acknowledged (or refused) every event, or at
 * [cluster] publish_timeout.  The acknowledgements arrive on nats.c's
 * threads and are queued; the worker's loop collects them when cpub_fd is
 * readable, so the loop never blocks on the network.
 */
#ifndef RINGCAST_CPUB_H
#define RINGCAST_CPUB_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct metrics;

struct cpub;

/* The outcome of a request, handed to the done callback. */
struct cpub_result {
	size_t		 n;		/* events in the request */
	size_t		 acked;		/* of them, acknowledged */
	const uint64_t	*ids;		/* [n]: the id of each acked one, 0
					 * for the others */
	const char	*error;		/* why not all: NULL when acked == n */
};

/* Called from cpub_poll/cpub_tick for each finished request whose owner
 * was not forgotten. */
typedef void	 (*cpub_done_fn)(void *arg, void *owner,
	    const struct cpub_result *res);

/*
 * Connect (in the background: a NATS server that is down now is retried)
 * as "ringcast worker N".  shm gives the epoch's base that ids are made
 * from (the relay writes it).  NULL with err on failure.
 */
struct cpub	*cpub_open(const struct config *conf, struct metrics *shm,
		    unsigned int worker, cpub_done_fn done, void *arg,
		    char *err, size_t errlen);
/* Close the connection, fail what is still in flight (not reported), and
 * free.  NULL is fine. */
void	 cpub_close(struct cpub *cp);
/* The descriptor to poll for readability (an eventfd). */
int	 cpub_fd(const struct cpub *cp);
/*
 * Send n events for owner: subjects[i] a topic's subject
 * (cluster_subject), bodies[i]/lens[i] the encoded body (copied: kept
 * until acknowledged, to send again with the same message id).  0 when under
 * way (the answer comes through done, once); -1 with a reason in err
 * when nothing could be sent (not connected, the stream's base not yet
 * known, out of memory): the caller answers 503.  If a later event of the
 * request fails to send, the earlier ones are still awaited, and the
 * result says which were acknowledged.
 */
int	 cpub_publish(struct cpub *cp, void *owner, const char *const *subjects,
	    const void *const *bodies, const size_t *lens, size_t n,
	    uint64_t now_ms, char *err, size_t errlen);
/* Forget owner (its client went away): its request still completes in
 * JetStream, but done is not called for it. */
void	 cpub_forget(struct cpub *cp, void *owner);
/* Collect the acknowledgements that arrived and finish the requests they
 * complete; an attempt refused for now (a timeout, no leader, no
 * responders) is sent again on a later tick.  Never blocks. */
void	 cpub_poll(struct cpub *cp, uint64_t now_ms);
/* Send again what is due; finish the requests past their deadline
 * ([cluster] publish_timeout) as refused.  Call each tick. */
void	 cpub_tick(struct cpub *cp, uint64_t now_ms);
/* Requests in flight. */
size_t	 cpub_inflight(const struct cpub *cp);
/* Is the connection up now? */
int	 cpub_connected(const struct cpub *cp);

#endif
