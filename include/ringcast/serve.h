/*
 * serve: what the request and delivery handlers (route, stream, publish,
 * conn) may touch of a worker: the ring, the window, the catalog, the
 * configuration, the shared counters and the worker's connection lists.
 * Handlers take a struct serve, never a struct worker, so the layering of
 * DESIGN §10.1 holds: worker.c runs the loop and calls down; nothing here
 * calls up into it.
 */
#ifndef RINGCAST_SERVE_H
#define RINGCAST_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "ringcast/catalog.h"
#include "ringcast/window.h"

struct catalog;
struct config;
struct conn;
struct cpub;
struct history;
struct metrics;
struct metrics_slot;
struct ring;
struct stats;
struct stream_index;
struct wake;

TAILQ_HEAD(conn_list, conn);

struct serve {
	const struct config	*conf;
	struct ring		*ring;
	struct catalog		*cat;		/* NULL while unavailable */
	struct history		*hist;		/* NULL while unavailable */
	struct metrics		*shm;
	struct metrics_slot	*slot;
	struct wake		*wake;		/* NULL: no wake table */
	unsigned int		 wake_slot;
	unsigned int		 index;		/* worker 0..n-1 */
	struct window		 window;
	struct stream_index	*topics;	/* topic -> its streams */
	struct conn_list	 streams;
	struct conn_list	 requests;
	struct conn_list	 closed;	/* freed after each batch */
	size_t			 nstreams;
	size_t			 nconns;
	/* Streams owed frames: collected by the fan-out, flushed once. */
	struct conn		**pending;
	size_t			 npending;
	size_t			 pendingcap;
	int			 draining;	/* SIGTERM: finish and exit */
	int			 retiring;	/* reload: spread closes */
	int			 stream_more;	/* a stream is owed more and
						 * its socket takes it */
	uint64_t		 drain_start_ms;
	uint64_t		 retire_start_ms;
	uint64_t		 now_ms;
	uint64_t		 last_catalog_try_ms;
	uint64_t		 last_history_try_ms;
	char			*iobuf;		/* one read buffer for all */
	size_t			 iobufsize;
	char			*scratch;	/* frame copies, encodings */
	size_t			 scratchsize;
	size_t			 drained;	/* streams ended at a boundary */
	size_t			 retired;	/* the same, by a retire */
	struct stats		*stats;		/* stats.c; NULL until used */
	struct cpub		*cpub;		/* cluster publishing, or NULL */
	/* The catalog's topic ids, sorted, for serve_topic_live. */
	uint32_t		*live;
	size_t			 nlive;
	uint64_t		 live_at_ms;	/* 0: never read */
	/* Called by conn.c with each complete request (route_request). */
	void			(*on_request)(struct serve *, struct conn *);
	/* Called by conn_close for a stream, first (stream_forget). */
	void			(*on_stream_close)(struct serve *,
				    struct conn *);
	/* Called by conn_close for a CONN_WAIT request (publish_forget). */
	void			(*on_wait_close)(struct serve *,
				    struct conn *);
};

/* Set up a worker's serving state: buffers sized from conf, a window that
 * starts at the ring's newest event, an empty topic index, the handlers.
 * shm slot is this worker's; 0, or -1 with errno on allocation failure. */
int	serve_init(struct serve *s, const struct config *conf,
	    struct ring *ring, struct metrics *shm, unsigned int slot);
/* Free what serve_init made (connections must be gone) and the catalog. */
void	serve_free(struct serve *s);
/* Open the catalog if it is not open (at most once a second); 0 when it is
 * open, -1 (logged) when it cannot be. */
int	serve_catalog(struct serve *s);
/* The topic a client names, for a stream or a publish: the catalog's
 * resolution (catalog_topic_resolve) with family members materialised and,
 * under auto_create_topics, unknown names created.  The catalog must be
 * open (serve_catalog).  May write the catalog once per new topic. */
enum catalog_result serve_topic(struct serve *s, const char *name,
	    struct catalog_topic *topic);
/* Is topic id still in the catalog (a reload adopting streams)?  1 yes,
 * 0 no (removed), -1 when it cannot tell (no catalog): keep the stream.
 * Reads every id once, then at most once a second: O(log topics). */
int	serve_topic_live(struct serve *s, uint32_t id);
/* Open the history store (read side) if it is not open, at most once a
 * second; 0 when it is open, -1 when it cannot be (no archiver yet). */
int	serve_history(struct serve *s);

#endif
