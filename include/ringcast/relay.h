/*
 * relay: the cluster node's link to NATS JetStream (issue #16), a process
 * the master supervises like the archiver, started only with [cluster]
 * nats.  It keeps the stream made, runs one ordered consumer from the
 * ring's newest id + 1 that appends every event to the local ring with id
 * = base + stream sequence and wakes the workers that follow its topic,
 * and watches the cluster's catalog bucket into the local catalog.
 * Workers publish through their own connections (cpub.h); the relay is
 * the only writer of the ring in cluster mode.
 */
#ifndef RINGCAST_RELAY_H
#define RINGCAST_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct metrics;
struct ring;
struct wake;

/* What the master hands the relay at fork. */
struct relay_params {
	const struct config	*conf;
	struct ring		*ring;
	struct metrics		*shm;
	struct wake		*wake;
	int			 master_pid;
};

/*
 * Run the relay until told to stop; never returns.  SIGTERM/SIGINT and
 * SIGUSR2 (reload: started again with the new configuration): stop
 * consuming, close the connection, exit 0.  SIGUSR1: reopen the log.
 */
void	relay_main(const struct relay_params *p) __attribute__((noreturn));

/* The state file beside the ring that names the epoch its ids belong to:
 * "<ring path>.cluster".  0, or -1 when the path is too long. */
int	relay_state_path(char *buf, size_t len, const char *ring_path);
/* Read it: the epoch's creation time (ns) and base; 0, -1 when missing
 * or unreadable (a first start). */
int	relay_state_read(const char *path, int64_t *created, uint64_t *base);
/* Write it atomically; 0 or -1 (logged). */
int	relay_state_write(const char *path, int64_t created, uint64_t base);

/*
 * Where a consumer starts in the stream: the sequence after the ring's
 * newest id in this epoch (base), never below the stream's first.
 * *hole is set when ids between the ring's newest and the start were
 * dropped by the stream (or belong to an old epoch): a gap.  *conflict
 * when the ring holds ids beyond what this epoch's stream has (the
 * stream lost events, or the ring predates it): those ids cannot be
 * given again, the consumer starts after the stream's last.
 */
uint64_t relay_start_seq(uint64_t newest, uint64_t base, uint64_t first_seq,
	    uint64_t last_seq, int *hole, int *conflict);

#endif
