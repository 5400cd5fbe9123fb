/*
 * cluster: what every part of a cluster node shares about NATS JetStream
 * (DESIGN §10, issue #16): the connection, the subject of a topic, and the
 * stream whose sequence numbers are the event ids of every node.
 *
 * Ids: an event's id is base + its JetStream stream sequence.  base is 0
 * for a stream made by a node whose ring was empty (the usual first
 * deployment: ids are the sequences themselves); a stream made again (it
 * was deleted) is a new epoch and gets a base above the ids its maker held,
 * written in the stream's description ("ringcast base=N"), so ids never go
 * back and every node computes the same id for the same event.
 */
#ifndef RINGCAST_CLUSTER_H
#define RINGCAST_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

struct config;

#define CLUSTER_SUBJECT_PREFIX	"ringcast."
#define CLUSTER_SUBJECT_MAX	(sizeof(CLUSTER_SUBJECT_PREFIX) + 3 * 256)
/* A new epoch's base is its maker's newest id rounded up past this, so
 * nodes that lag the maker by fewer events never see an id twice. */
#define CLUSTER_BASE_STEP	1000000ULL

/* The stream as a node sees it. */
struct cluster_epoch {
	int64_t		 created;	/* ns since 1970: names the epoch */
	uint64_t	 base;		/* id = base + sequence */
	uint64_t	 first_seq;	/* oldest sequence the stream holds */
	uint64_t	 last_seq;	/* newest, 0 when empty */
};

/* Is [cluster] nats set? */
int	cluster_enabled(const struct config *conf);
/*
 * Connect to [cluster] nats with its credentials.  name names the client
 * in the server's monitoring.  persistent: reconnect forever and start
 * even while no server answers (a daemon); else try each server once (a
 * command).  0, or -1 with a message naming the servers in err.
 */
int	cluster_connect(const struct config *conf, const char *name,
	    int persistent, natsConnectionHandler disconnected,
	    natsConnectionHandler reconnected, void *closure,
	    natsConnection **ncp, char *err, size_t errlen);
/* The JetStream context of nc, acks of asynchronous publishes going to
 * ack (may be NULL) with closure; 0 or -1 with err. */
int	cluster_jetstream(natsConnection *nc, jsPubAckHandler ack,
	    void *closure, int64_t wait_ms, jsCtx **jsp, char *err,
	    size_t errlen);
/* "ringcast." + topic, with '.', '*', '>', '%' and spaces escaped as %XX
 * (a topic may hold dots; a subject token may not be empty).  0, or -1
 * when buf is too small. */
int	cluster_subject(char *buf, size_t len, const char *topic);
/* The topic of a subject cluster_subject made; 0, or -1 if it is not
 * one. */
int	cluster_subject_topic(const char *subject, char *topic, size_t len);
/*
 * Look the stream up, or make it (subjects ringcast.>, file storage,
 * [cluster] replicas, no deletes but the limits) when missing, with a
 * base from newest (this node's newest id; 0: none).  Fills *ep.  0, or -1
 * with err (the server's words).
 */
int	cluster_stream_ensure(jsCtx *js, const struct config *conf,
	    uint64_t newest, struct cluster_epoch *ep, char *err,
	    size_t errlen);
/* The base a description carries, 0 when none. */
uint64_t cluster_base_parse(const char *description);
/* The base a node whose newest id is newest gives a new epoch. */
uint64_t cluster_base_next(uint64_t newest);
/* The error text of a natsStatus with the library's last details. */
const char *cluster_status_text(natsStatus s);

#endif
