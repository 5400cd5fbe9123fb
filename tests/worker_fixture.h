/*
 * worker_fixture: one worker built in-process for tests and fuzz harnesses,
 * with no epoll loop and no network: a ring in a file, a catalog with the
 * topics "a", "b", "x/y:z" and "priv" (private), one slot of shared metrics,
 * the worker's serving state (serve_init), and a socketpair(2) per client.
 * The test drives it by hand (worker_fixture_event, stream_fanout) as the
 * worker's loop would, and reads what a client received.  Needs no cmocka.
 */
#ifndef RINGCAST_WORKER_FIXTURE_H
#define RINGCAST_WORKER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "ringcast/config.h"
#include "ringcast/serve.h"

struct conn;
struct metrics;
struct ring;

struct worker_fixture {
	struct config	 conf;		/* the worker's; tests may change it */
	struct serve	 serve;
	struct ring	*ring;
	struct metrics	*shm;
};

/* Build the worker with its ring (ring_size bytes, ring_slots slots) and
 * catalog in the existing directory dir; 0, or -1 with a message on
 * stderr (whatever was built is then freed). */
int	worker_fixture_init(struct worker_fixture *fx, const char *dir,
	    uint64_t ring_size, uint32_t ring_slots);
/* Close every connection, then free the worker; the files stay in dir. */
void	worker_fixture_free(struct worker_fixture *fx);
/* The catalog id of a topic the fixture made; aborts on an unknown name. */
uint32_t worker_fixture_topic(struct worker_fixture *fx, const char *name);
/* Add a public topic (or find it); its catalog id; aborts on failure. */
uint32_t worker_fixture_topic_add(struct worker_fixture *fx,
	    const char *name);
/* Append an event of topic with data (no event type) to the ring, as a
 * publisher would, without waking or refreshing anything; 0 or -1. */
int	worker_fixture_publish(struct worker_fixture *fx, uint32_t topic,
	    const char *data, uint64_t *seq);
/* Accept a client from 127.0.0.1 (on the admin listener if admin): a
 * nonblocking socketpair whose server end is a new connection; the client
 * end goes to *client_fd, which the caller closes.  NULL on error. */
struct conn *worker_fixture_connect(struct worker_fixture *fx, int admin,
	    int *client_fd);
/* Is c still open (a request or a stream of the worker)? */
int	worker_fixture_conn_alive(struct worker_fixture *fx,
	    const struct conn *c);
/* Epoll events on c, handed to conn.c or stream.c by its state, as the
 * worker's loop does. */
void	worker_fixture_event(struct worker_fixture *fx, struct conn *c,
	    uint32_t events);
/* Read what the server wrote so far without waiting, appending to
 * buf[*len] up to cap (bytes past cap are read and dropped); 1 once the
 * server's side is closed, else 0. */
int	worker_fixture_read(int client_fd, char *buf, size_t cap, size_t *len);

#endif
