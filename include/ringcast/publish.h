/*
 * publish: POST /publish/{topic} (one event, the body is its data) and
 * POST /publish with an application/x-ndjson body (a batch: all appended
 * or none).  Each event is checked (topic, token, type, UTF-8, size),
 * encoded once as SSE wire bytes and appended to the ring; the answer
 * carries the new ids.  Never waits on anything but the ring's lock.
 *
 * In a cluster ([cluster] nats) the encoded events go to JetStream
 * instead (cpub.h) and the request is parked until every one is
 * acknowledged: 201 with the ids the stream gave, or 503 with
 * Retry-After.  The relay appends them to the ring, here and on every
 * node.  A batch is then not all-or-none: the 503 names which lines were
 * acknowledged (they are published; send only the others again).
 */
#ifndef RINGCAST_PUBLISH_H
#define RINGCAST_PUBLISH_H

struct conn;
struct cpub_result;
struct serve;

/* POST /publish/{name}: answer 201 with the id, or the error. */
void	publish_one(struct serve *s, struct conn *c, const char *name);
/* POST /publish, application/x-ndjson: every line checked (a bad one is a
 * 400, 403 or 404 naming its line), then all appended in one hold of the
 * ring's lock or none; 201 with {"ids":[...]} in line order. */
void	publish_batch(struct serve *s, struct conn *c);
/* cpub's done callback (arg: the serve): answer a parked publish. */
void	publish_cluster_done(void *arg, void *owner,
	    const struct cpub_result *res);
/* A parked publish's client went away (serve->on_wait_close). */
void	publish_forget(struct serve *s, struct conn *c);

#endif
