/*
 * archiver: the process of DESIGN §10.2 that tails the ring in batches and
 * writes the events of topics with history into the history store
 * (history.h), one write transaction per batch.  The master supervises it
 * like a worker; publishers never wait for it.
 */
#ifndef RINGCAST_ARCHIVER_H
#define RINGCAST_ARCHIVER_H

struct config;
struct metrics;
struct ring;

/* What the master hands the archiver at fork. */
struct archiver_params {
	const struct config	*conf;
	struct ring		*ring;
	struct metrics		*shm;
	int			 master_pid;
};

/*
 * Run the archiver until told to stop; never returns.  SIGTERM/SIGINT:
 * archive what the ring holds, mark a clean stop, sync, exit 0.  SIGUSR2
 * (reload): sync and exit 0, to be started again with the new
 * configuration.  SIGUSR1: reopen the log.
 */
void	archiver_main(const struct archiver_params *p)
	    __attribute__((noreturn));

#endif
