/*
 * write-floor: the CPU cost of one write(2) of a small frame to a loopback
 * TCP socket whose peer is waiting to read it, which is what a delivery that
 * goes out alone costs at the least.  The writer owns the accepted ends (as
 * a server does, TCP_NODELAY set) and writes to them in turn; a forked
 * reader sleeps in epoll_wait on the connected ends, reads each frame and
 * acknowledges it on a socketpair, so every write finds its peer asleep.
 * Each write is bracketed by CLOCK_THREAD_CPUTIME_ID (the task's
 * sum_exec_runtime, the figure /proc/PID/schedstat shows), less the cost of
 * the bracket itself; getrusage over the whole loop is printed beside it.
 * Every wait is bounded by -T; one "RESULT key=value ..." line at the end.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_CONNS_MAX		8000	/* two descriptors each, < 20,000 */
#define FLOOR_CALIBRATE		10000	/* empty brackets timed */
#define FLOOR_EVENTS		256

struct floor_opts {
	long	 writes;
	long	 size;
	int	 conns;
	double	 timeout;
};

static struct floor_opts	 opt = { 50000, 150, 1000, 20 };

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
rusage_ns(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
	    1000000000ull + ((uint64_t)ru.ru_utime.tv_usec +
	    (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
set_timeout(int fd, double secs)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * The reader: wait for frames on every connected end, read each whole, and
 * say so with one byte on ackfd.  Ends at EOF on ackfd, or at the deadline.
 */
static void
reader_main(int *fds, int n, int ackfd, uint64_t deadline)
{
	struct epoll_event	 ev, events[FLOOR_EVENTS];
	char			 buf[65536];
	int			 epfd, i, k, got;
	ssize_t			 r;

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		_exit(3);
	for (i = 0; i < n; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = fds[i];
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) == -1)
			_exit(3);
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = ackfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, ackfd, &ev);
	while (clock_ns(CLOCK_MONOTONIC) < deadline) {
		if ((got = epoll_wait(epfd, events, FLOOR_EVENTS, 100)) == -1 &&
		    errno != EINTR)
			_exit(3);
		for (k = 0; k < got; k++) {
			if (events[k].data.fd == ackfd)
				_exit(0);	/* the writer is done */
			r = read(events[k].data.fd, buf, sizeof(buf));
			if (r <= 0)
				_exit(r == 0 ? 0 : 3);
			if (write(ackfd, "a", 1) != 1)
				_exit(3);
		}
	}
	_exit(0);
}

/* n connected pairs over a loopback listener: the accepted ends in srv,
 * the connected ends in cli. */
static void
connect_pairs(int *srv, int *cli, int n)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	int			 lfd, i, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 128) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1)
		err(2, "listener");
	for (i = 0; i < n; i++) {
		if ((cli[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) == -1 ||
		    connect(cli[i], (struct sockaddr *)&sin, sizeof(sin)) ==
		    -1 ||
		    (srv[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			err(2, "connection %d", i);
		setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		set_timeout(srv[i], 5);
	}
	close(lfd);
}

static void
usage(void)
{
	fprintf(stderr, "usage: write-floor [-n WRITES] [-s SIZE] "
	    "[-c CONNS] [-T SECS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	uint32_t	*samples;
	uint64_t	 deadline, t0, t1, sum = 0, overhead, ru0, ru1, w0, w1;
	int		*srv, *cli, sv[2], c, i, status;
	long		 done;
	char		*buf, ack;
	pid_t		 pid;

	while ((c = getopt(argc, argv, "n:s:c:T:")) != -1) {
		switch (c) {
		case 'n':
			opt.writes = atol(optarg);
			break;
		case 's':
			opt.size = atol(optarg);
			break;
		case 'c':
			opt.conns = atoi(optarg);
			break;
		case 'T':
			opt.timeout = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (opt.writes < 1 || opt.size < 1 || opt.size > 65536 ||
	    opt.conns < 1 || opt.conns > FLOOR_CONNS_MAX || opt.timeout <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	deadline = clock_ns(CLOCK_MONOTONIC) + (uint64_t)(opt.timeout * 1e9);
	if ((srv = calloc((size_t)opt.conns, sizeof(*srv))) == NULL ||
	    (cli = calloc((size_t)opt.conns, sizeof(*cli))) == NULL ||
	    (samples = calloc((size_t)opt.writes, sizeof(*samples))) ==
	    NULL || (buf = malloc((size_t)opt.size)) == NULL)
		err(2, "calloc");
	memset(buf, 'x', (size_t)opt.size);
	connect_pairs(srv, cli, opt.conns);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		err(2, "socketpair");
	if ((pid = fork()) == -1)
		err(2, "fork");
	if (pid == 0) {
		close(sv[0]);
		for (i = 0; i < opt.conns; i++)
			close(srv[i]);
		reader_main(cli, opt.conns, sv[1], deadline);
	}
	close(sv[1]);
	for (i = 0; i < opt.conns; i++)
		close(cli[i]);
	set_timeout(sv[0], 5);

	/* What an empty bracket costs, to take it off every sample. */
	t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (i = 0; i < FLOOR_CALIBRATE; i++)
		(void)clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	overhead = (t1 - t0) / FLOOR_CALIBRATE;

	ru0 = rusage_ns();
	w0 = clock_ns(CLOCK_MONOTONIC);
	for (done = 0; done < opt.writes; done++) {
		if (clock_ns(CLOCK_MONOTONIC) > deadline)
			break;
		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (write(srv[done % opt.conns], buf, (size_t)opt.size) !=
		    (ssize_t)opt.size)
			err(2, "write");
		t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		samples[done] = t1 - t0 > overhead ?
		    (uint32_t)(t1 - t0 - overhead) : 0;
		sum += samples[done];
		/* Outside the bracket: wait until the peer has it, so the
		 * next write finds its reader asleep again. */
		if (read(sv[0], &ack, 1) != 1)
			err(2, "no acknowledgement");
	}
	w1 = clock_ns(CLOCK_MONOTONIC);
	ru1 = rusage_ns();

	close(sv[0]);
	for (i = 0; i < opt.conns; i++)
		close(srv[i]);
	/* The reader ends at EOF; it is ours, so it may be killed by PID. */
	for (i = 0; i < 50 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	if (i == 50) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (done == 0)
		errx(2, "no write done in %.0f s", opt.timeout);
	qsort(samples, (size_t)done, sizeof(*samples), cmp_u32);
	printf("RESULT mode=write-floor writes=%ld size=%ld conns=%d "
	    "secs=%.3f ns_per_write=%.1f median_ns=%u p99_ns=%u "
	    "bracket_ns=%llu rusage_ns_per_loop=%.1f\n", done, opt.size,
	    opt.conns, (double)(w1 - w0) / 1e9, (double)sum / (double)done,
	    samples[done / 2], samples[(size_t)((double)done * 0.99)],
	    (unsigned long long)overhead,
	    (double)(ru1 - ru0) / (double)done);
	free(samples);
	free(buf);
	free(srv);
	free(cli);
	return done == opt.writes ? 0 : 1;
}
