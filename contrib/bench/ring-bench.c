/*
 * ring-bench: nanoseconds per append (alone and in batches) and per
 * validated read of 128-byte events, in one process and with a second
 * process reading while the first appends.  A measurement, not a test:
 * nothing here fails on a slow machine.
 */
#include <sys/wait.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/ring.h"
#include "ringcast/sse.h"

#define BENCH_SIZE	(64ULL << 20)
#define BENCH_SLOTS	262144
#define BENCH_TOPIC	1
#define BENCH_BATCH	100

struct bench_read {
	uint64_t	 frames;
	double		 seconds;
};

static double
bench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A body that makes a 128-byte frame with a 6-digit id. */
static size_t
bench_body(char *buf, size_t cap)
{
	char	 data[128];
	size_t	 len = 128 - strlen("data: \n") - strlen("id: 123456\n\n");

	memset(data, 'x', len);
	return sse_encode_body(buf, cap, NULL, 0, data, len);
}

/* Append count events in batches of BENCH_BATCH; ns per event. */
static double
bench_append_batch(struct ring *ring, uint64_t count)
{
	struct ring_event	 ev[BENCH_BATCH];
	char			 body[256];
	size_t			 len = bench_body(body, sizeof(body)), i;
	uint64_t		 done, seq;
	double			 start = bench_now();

	for (i = 0; i < BENCH_BATCH; i++)
		ev[i] = (struct ring_event){ BENCH_TOPIC, body, len };
	for (done = 0; done + BENCH_BATCH <= count; done += BENCH_BATCH) {
		if (ring_append_batch(ring, ev, BENCH_BATCH, &seq) == -1)
			err(1, "ring_append_batch");
	}
	return (bench_now() - start) * 1e9 / (double)done;
}

static double
bench_append(struct ring *ring, uint64_t count)
{
	char		 body[256];
	size_t		 len = bench_body(body, sizeof(body));
	uint64_t	 i, seq;
	double		 start = bench_now();

	for (i = 0; i < count; i++) {
		if (ring_append(ring, BENCH_TOPIC, body, len, &seq) == -1)
			err(1, "ring_append");
	}
	return (bench_now() - start) * 1e9 / (double)count;
}

/* Follow the ring from after until it stops for a while. */
static struct bench_read
bench_follow(struct ring *ring, uint64_t after, uint64_t until)
{
	struct bench_read	 r = { 0, 0 };
	struct ring_frame	 frame;
	char			 buf[256];
	double			 start = bench_now();
	enum ring_status	 st;

	while (after < until) {
		st = ring_next(ring, after, NULL, 0, &frame);
		if (st == RING_EVICTED) {
			after = ring_oldest(ring) - 1;
			continue;
		}
		if (st == RING_NOT_YET)
			continue;
		if (ring_read(ring, frame.seq, buf, sizeof(buf), &frame) ==
		    RING_OK)
			r.frames++;
		after = frame.seq;
	}
	r.seconds = bench_now() - start;
	return r;
}

static void
usage(void)
{
	fprintf(stderr, "usage: ring-bench [-n events] [-d dir]\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct ring		*ring;
	struct bench_read	 r;
	const char		*base = getenv("TMPDIR");
	char			 dir[256], path[300], errbuf[512];
	uint64_t		 count = 2000000, start;
	double			 ns;
	int			 ch, fds[2], status;
	pid_t			 pid;

	while ((ch = getopt(argc, argv, "d:n:")) != -1) {
		switch (ch) {
		case 'd':
			base = optarg;
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (count == 0)
		usage();
	snprintf(dir, sizeof(dir), "%s/ring-bench.XXXXXX",
	    base != NULL ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		err(1, "mkdtemp %s", dir);
	snprintf(path, sizeof(path), "%s/ring", dir);
	if (ring_open(&ring, path, BENCH_SIZE, BENCH_SLOTS, RING_CREATE, 0,
	    errbuf, sizeof(errbuf)) == -1)
		errx(1, "%s", errbuf);

	printf("ring-bench: %llu events of 128 bytes, ring %llu MiB, "
	    "%u slots\n", (unsigned long long)count,
	    (unsigned long long)(BENCH_SIZE >> 20), BENCH_SLOTS);
	bench_append(ring, BENCH_SLOTS);	/* fault the pages in */
	ns = bench_append(ring, count);
	printf("1 process   append   %7.1f ns/event\n", ns);
	ns = bench_append_batch(ring, count);
	printf("1 process   append   %7.1f ns/event (batches of %d)\n", ns,
	    BENCH_BATCH);
	start = ring_oldest(ring) - 1;
	r = bench_follow(ring, start, ring_committed(ring));
	printf("1 process   read     %7.1f ns/event (next + read, %llu "
	    "frames)\n", r.seconds * 1e9 / (double)r.frames,
	    (unsigned long long)r.frames);

	if (pipe(fds) == -1)
		err(1, "pipe");
	start = ring_committed(ring);
	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		alarm(120);	/* never outlive a parent that failed */
		r = bench_follow(ring, start, start + count);
		if (write(fds[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	ns = bench_append(ring, count);
	if (read(fds[0], &r, sizeof(r)) != sizeof(r))
		errx(1, "reader reported nothing");
	waitpid(pid, &status, 0);
	printf("2 processes append   %7.1f ns/event (one reader following)\n",
	    ns);
	printf("2 processes read     %7.1f ns/event (%llu of %llu frames "
	    "read; a reader a ring behind skips ahead)\n",
	    r.seconds * 1e9 / (double)r.frames, (unsigned long long)r.frames,
	    (unsigned long long)count);

	ring_close(ring);
	unlink(path);
	rmdir(dir);
	return 0;
}
