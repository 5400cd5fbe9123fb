/*
 * subscribe-rate: new streams per second, the connect path's cost (issue
 * #15: a JWT against an opaque token or none).  P forked clients each
 * loop for D seconds: connect, GET the path with the given header lines,
 * read until the stream's head and its first bytes (the retry: hint) are
 * in, close.  A stream that does not open with 200 is counted as a failure.
 * Ends with one "RESULT streams=N failures=N seconds=S rate=R" line.
 * Bounded: every socket has a 5 s timeout, the run D seconds.
 *
 *   subscribe-rate -p PORT -u /events/t [-H 'Authorization: Bearer ...']
 *       [-P procs] [-d seconds]
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROCS_MAX	64
#define HEADERS_MAX	8192

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One stream opened and closed: 1 on a 200 with its first bytes, 0 not. */
static int
one_stream(const struct sockaddr_in *sin, const char *req, size_t reqlen)
{
	struct timeval	 tv = { 5, 0 };
	char		 buf[4096];
	size_t		 have = 0;
	ssize_t		 n;
	char		*end;
	int		 fd, ok = 0, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1 ||
	    write(fd, req, reqlen) != (ssize_t)reqlen)
		goto done;
	while (have < sizeof(buf) - 1) {
		if ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			goto done;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
			goto done;
		if (strstr(end, "retry:") != NULL) {
			ok = 1;
			break;
		}
	}
done:
	/* An abortive close: no TIME_WAIT pile-up on the client's ports. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 },
	    sizeof(struct linger));
	close(fd);
	return ok;
}

static void
usage(void)
{
	fprintf(stderr, "usage: subscribe-rate -p port -u path [-H header] "
	    "[-P procs] [-d seconds]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	char			 req[HEADERS_MAX * 2], headers[HEADERS_MAX] = "";
	const char		*path = NULL;
	int			 ch, port = 0, procs = 2, fds[PROCS_MAX][2];
	double			 seconds = 5, start;
	long			 streams = 0, failures = 0, counts[2];
	pid_t			 pids[PROCS_MAX];
	int			 i, len;

	while ((ch = getopt(argc, argv, "p:u:H:P:d:")) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			path = optarg;
			break;
		case 'H':
			if (strlen(headers) + strlen(optarg) + 3 >
			    sizeof(headers))
				usage();
			strcat(headers, optarg);
			strcat(headers, "\r\n");
			break;
		case 'P':
			procs = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || path == NULL || procs < 1 || procs > PROCS_MAX ||
	    seconds <= 0 || seconds > 600)
		usage();
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1"
	    "\r\nAccept: text/event-stream\r\n%s\r\n", path, headers);
	if (len < 0 || (size_t)len >= sizeof(req))
		usage();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	start = now_s();
	for (i = 0; i < procs; i++) {
		if (pipe(fds[i]) == -1 || (pids[i] = fork()) == -1) {
			perror("subscribe-rate");
			return 1;
		}
		if (pids[i] == 0) {
			counts[0] = counts[1] = 0;
			while (now_s() - start < seconds)
				counts[one_stream(&sin, req, (size_t)len)]++;
			if (write(fds[i][1], counts, sizeof(counts)) !=
			    (ssize_t)sizeof(counts))
				_exit(1);
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (i = 0; i < procs; i++) {
		if (read(fds[i][0], counts, sizeof(counts)) ==
		    (ssize_t)sizeof(counts)) {
			failures += counts[0];
			streams += counts[1];
		}
		close(fds[i][0]);
		waitpid(pids[i], NULL, 0);
	}
	seconds = now_s() - start;
	printf("RESULT streams=%ld failures=%ld seconds=%.2f rate=%.0f\n",
	    streams, failures, seconds, (double)streams / seconds);
	return failures > 0 && streams == 0;
}
