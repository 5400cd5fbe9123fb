/*
 * serve_fixture: one worker's serving state built in-process for the unit
 * tests and fuzz harnesses of conn, route and stream: a ring in a temporary
 * file, a catalog in a temporary directory, the shared metrics, and
 * clients on socketpairs whose events are handed to conn.c or stream.c as
 * the worker's loop would.
 */
#ifndef RINGCAST_SERVE_FIXTURE_H
#define RINGCAST_SERVE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "ringcast/config.h"
#include "ringcast/serve.h"

struct conn;
struct metrics;
struct ring;

struct serve_fixture {
	struct config	 conf;
	struct serve	 serve;
	struct ring	*ring;
	struct metrics	*shm;
	char		*dir;
};

/* Build it: a ring of ring_size bytes and slots slots (0, 0: small
 * defaults), topics "a", "b", "x/y:z" and the private "priv".  Aborts on
 * failure: a fixture that cannot be built is a broken test. */
void	 serve_fixture_init(struct serve_fixture *f, uint64_t ring_size,
	    uint32_t slots);
/* Close every connection, free everything, remove the directory. */
void	 serve_fixture_free(struct serve_fixture *f);
/* The catalog id of topic name, added if missing. */
uint32_t serve_fixture_topic(struct serve_fixture *f, const char *name);
/* A connection accepted from a new client; *client is the client's end
 * (non-blocking), owned by the caller. */
struct conn *serve_fixture_connect(struct serve_fixture *f, int *client);
/* Events on c, to conn.c or stream.c by its state, as the loop would. */
void	 serve_fixture_event(struct serve_fixture *f, struct conn *c,
	    uint32_t events);
/* Send a request from client and let the server read it. */
void	 serve_fixture_request(struct serve_fixture *f, struct conn *c,
	    int client, const char *request);
/* Append an event of topic with data to the ring (no fan-out); its id. */
uint64_t serve_fixture_publish(struct serve_fixture *f, const char *topic,
	    const char *data);
/* Read what the server sent so far into buf[cap] (NUL-terminated); the
 * byte count. */
size_t	 serve_fixture_read(int client, char *buf, size_t cap);
/* Is c still open (on the request or stream list)? */
int	 serve_fixture_alive(struct serve_fixture *f, const struct conn *c);

#endif
