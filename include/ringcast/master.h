/*
 * master: the supervising process.  It validates and owns everything that
 * must exist before fork (pidfile, listeners, ring, shared state, eventfds),
 * starts the workers, and then only waits for signals and children: reload,
 * respawn with back-off, and the bounded drain of DESIGN §6.
 */
#ifndef RINGCAST_MASTER_H
#define RINGCAST_MASTER_H

struct config;

/* Run the server with conf (loaded from file); debug: stay in the
 * foreground.  Returns the process exit status. */
int	master_run(struct config *conf, const char *file, int debug);
/* Keep argv (NULL-terminated, owned by the caller until master_run returns)
 * as the command line a binary upgrade (SIGUSR2) execs the new binary
 * with; call before master_run. */
void	master_set_argv(char *const *argv);

#endif
