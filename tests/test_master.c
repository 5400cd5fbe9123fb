/*
 * test_master: the master's side of a worker's birth.  master_run() runs in
 * a child of the test; worker_main is wrapped (-Wl,--wrap=worker_main), so
 * each "worker" only reports what it was born with down a pipe and waits
 * for the master's SIGTERM.  Every wait is bounded.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "rc_test.h"
#include "ringcast/config.h"
#include "ringcast/log.h"
#include "ringcast/master.h"
#include "ringcast/worker.h"

#define WAIT_MS		10000

/* The write end of the report pipe, inherited by master and workers. */
static int	 report_fd = -1;

void	__wrap_worker_main(const struct worker_params *)
	    __attribute__((noreturn));

/* A worker as the master starts it: report the signal mask it has on
 * entry, then wait (bounded) for the master to stop it. */
void
__wrap_worker_main(const struct worker_params *params)
{
	struct timespec	 bound = { WAIT_MS / 1000, 0 };
	sigset_t	 mask, stop;

	(void)params;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	(void)!write(report_fd, &mask, sizeof(mask));
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	_exit(sigtimedwait(&stop, NULL, &bound) == -1 ? 1 : 0);
}

/* A loopback port nobody listens on (for the config's listeners). */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		port = -1;
	else
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Wait for pid for at most WAIT_MS, then SIGKILL it; its wait status. */
static int
reap_bounded(pid_t pid)
{
	int	 status, i;

	for (i = 0; i < WAIT_MS / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

static void
test_master_spawns_workers_with_signals_blocked(void **state)
{
	char		*dir, *path, text[2048];
	struct config	 conf;
	struct pollfd	 pfd;
	sigset_t	 mask;
	pid_t		 master;
	int		 fds[2], status;
	char		 err[4096];

	(void)state;
	assert_non_null(dir = rc_test_tmpdir());
	snprintf(text, sizeof(text),
	    "[server]\nworkers = 1\ndrain_timeout = 2s\n"
	    "listen = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
	    "pidfile = %s/ringcastd.pid\n"
	    "[ring]\npath = %s/ring\nsize = 256K\nslots = 256\n"
	    "[limits]\nmax_event_bytes = 4K\n"
	    "[catalog]\npath = %s/catalog\nmap_size = 1M\n"
	    "[log]\ntarget = stderr\nlevel = warn\n",
	    free_port(), free_port(), dir, dir, dir);
	assert_non_null(path = rc_test_write(dir, "ringcast.conf", text));
	if (config_load(&conf, path, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(pipe(fds), 0);

	switch (master = fork()) {
	case -1:
		fail_msg("fork: %s", strerror(errno));
		break;
	case 0:
		close(fds[0]);
		report_fd = fds[1];
		log_init("stderr", LOG_LEVEL_WARN);
		_exit(master_run(&conf, path, 1));
	default:
		break;
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, WAIT_MS) != 1 ||
	    read(fds[0], &mask, sizeof(mask)) != sizeof(mask)) {
		kill(master, SIGKILL);
		waitpid(master, &status, 0);
		fail_msg("no worker reported its signal mask");
	}
	kill(master, SIGTERM);
	status = reap_bounded(master);
	close(fds[0]);
	free(path);
	rc_test_rmdir(dir);

	/* A signal between fork and the worker's signalfd must wait for
	 * it, not take its default action (death, for SIGUSR1). */
	assert_true(sigismember(&mask, SIGUSR1));
	assert_true(sigismember(&mask, SIGUSR2));
	assert_true(sigismember(&mask, SIGTERM));
	assert_true(sigismember(&mask, SIGINT));
	assert_true(sigismember(&mask, SIGHUP));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int
main(int argc, char *argv[], char *envp[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_spawns_workers_with_signals_blocked),
	};

	setproctitle_init(argc, argv, envp);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
