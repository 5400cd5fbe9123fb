/*
 * publish: POST /publish/{topic} (one event, the body is its data) and
 * POST /publish with an application/x-ndjson body (a batch: all appended
 * or none).  Each event is checked (topic, token, type, UTF-8, size),
 * encoded once as SSE wire bytes and appended to the ring; the answer
 * carries the new ids.  Never waits on anything but the ring's lock.
 */
#ifndef RINGCAST_PUBLISH_H
#define RINGCAST_PUBLISH_H

struct conn;
struct serve;

/* POST /publish/{name}: answer 201 with the id, or the error. */
void	publish_one(struct serve *s, struct conn *c, const char *name);
/* POST /publish, application/x-ndjson: every line checked (a bad one is a
 * 400, 403 or 404 naming its line), then all appended in one hold of the
 * ring's lock or none; 201 with {"ids":[...]} in line order. */
void	publish_batch(struct serve *s, struct conn *c);

#endif
