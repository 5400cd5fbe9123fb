/*
 * js-floor: what JetStream itself takes per publish, the yardstick of the
 * cluster figures in doc/BENCHMARKS-extra.md (as write-floor is for the
 * single node's CPU per delivery).  One nats.c connection makes a stream
 * of its own (subject "jsfloor.bench", never ringcast's), publishes N
 * messages of SIZE bytes one at a time, each waiting for its PubAck, then
 * N more asynchronously with up to DEPTH awaiting their acks, then N
 * asynchronously one at a time (what one ringcast request does), with and
 * without SendAsap, and deletes the stream.  Each phase is bounded by
 * the time limit; one "RESULT key=value ..." line per phase.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#define FLOOR_STREAM	"JSFLOOR"
#define FLOOR_SUBJECT	"jsfloor.bench"
#define FLOOR_URLS_MAX	8
/* Per-publish wait histogram: 10 us buckets up to 1 s. */
#define FLOOR_HIST	100000

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr, "usage: js-floor [-n EVENTS] [-s SIZE] [-r REPLICAS] "
	    "[-d DEPTH] [-T SECS] nats://host:port[,...]\n");
	exit(2);
}

static void
fail(const char *what, natsStatus s, jsErrCode jerr)
{
	fprintf(stderr, "js-floor: %s: %s (jerr %d)\n", what,
	    natsStatus_GetText(s), (int)jerr);
	printf("RESULT mode=js-floor error=%s\n", what);
	exit(1);
}

/* The quantile q of n waits in 10 us buckets, in us. */
static double
hist_quantile(const uint32_t *hist, uint64_t n, double q)
{
	uint64_t	 rank, seen = 0;
	size_t		 b;

	if (n == 0)
		return 0;
	rank = (uint64_t)(q * (double)n);
	if (rank >= n)
		rank = n - 1;
	for (b = 0; b < FLOOR_HIST; b++) {
		seen += hist[b];
		if (seen > rank)
			return (double)b * 10;
	}
	return (double)FLOOR_HIST * 10;
}

/* Publish events one at a time with js_PublishAsync, each waiting for
 * its ack; prints a RESULT line of the given mode. */
static void
floor_async_one(jsCtx *js, const char *mode, int replicas, long events,
    const char *body, long size, double secs)
{
	jsPubOptions	 po;
	natsStatus	 s;
	uint64_t	 t0, t1, deadline;
	long		 i;

	jsPubOptions_Init(&po);
	po.MaxWait = (int64_t)(secs * 1000);
	deadline = now_ns() + (uint64_t)(secs * 1e9);
	t0 = now_ns();
	for (i = 0; i < events && now_ns() < deadline; i++) {
		s = js_PublishAsync(js, FLOOR_SUBJECT, body, (int)size, NULL);
		if (s == NATS_OK)
			s = js_PublishAsyncComplete(js, &po);
		if (s != NATS_OK)
			fail(mode, s, 0);
	}
	t1 = now_ns();
	printf("RESULT mode=%s replicas=%d events=%ld size=%ld secs=%.3f "
	    "rate=%.0f\n", mode, replicas, i, size, (double)(t1 - t0) / 1e9,
	    (double)i * 1e9 / (double)(t1 - t0));
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	natsConnection	*nc = NULL, *nc2 = NULL;
	natsOptions	*opts = NULL;
	jsCtx		*js = NULL;
	jsStreamConfig	 cfg;
	jsStreamInfo	*si = NULL;
	jsPubAck	*pa = NULL;
	jsPubOptions	 po;
	jsErrCode	 jerr = 0;
	natsStatus	 s;
	const char	*subjects[1] = { FLOOR_SUBJECT };
	char		*urls[FLOOR_URLS_MAX], *list, *tok, *save = NULL, *body;
	uint32_t	*hist;
	uint64_t	 t0, t1, t, deadline, wait_max = 0;
	long		 events = 5000, size = 128, depth = 256, i, done;
	int		 replicas = 3, nurls = 0, c;
	double		 secs = 60;

	while ((c = getopt(argc, argv, "n:s:r:d:T:")) != -1) {
		switch (c) {
		case 'n':
			events = atol(optarg);
			break;
		case 's':
			size = atol(optarg);
			break;
		case 'r':
			replicas = atoi(optarg);
			break;
		case 'd':
			depth = atol(optarg);
			break;
		case 'T':
			secs = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || events < 1 || size < 1 || depth < 1 ||
	    replicas < 1)
		usage();
	if ((list = strdup(argv[optind])) == NULL ||
	    (body = malloc((size_t)size)) == NULL ||
	    (hist = calloc(FLOOR_HIST, sizeof(*hist))) == NULL) {
		perror("js-floor");
		return 2;
	}
	memset(body, 'x', (size_t)size);
	for (tok = strtok_r(list, ",", &save); tok != NULL &&
	    nurls < FLOOR_URLS_MAX; tok = strtok_r(NULL, ",", &save))
		urls[nurls++] = tok;

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, (const char **)urls, nurls);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK)
		fail("connect", s, 0);
	if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK)
		fail("jetstream", s, 0);
	jsStreamConfig_Init(&cfg);
	cfg.Name = FLOOR_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = replicas;
	/* A stream left by an earlier run goes first. */
	(void)js_DeleteStream(js, FLOOR_STREAM, NULL, NULL);
	if ((s = js_AddStream(&si, js, &cfg, NULL, &jerr)) != NATS_OK)
		fail("add-stream", s, jerr);
	jsStreamInfo_Destroy(si);

	/* One at a time, each waiting for its PubAck. */
	deadline = now_ns() + (uint64_t)(secs * 1e9);
	t0 = now_ns();
	for (i = 0; i < events && now_ns() < deadline; i++) {
		t = now_ns();
		s = js_Publish(&pa, js, FLOOR_SUBJECT, body, (int)size, NULL,
		    &jerr);
		if (s != NATS_OK)
			fail("publish", s, jerr);
		jsPubAck_Destroy(pa);
		t = now_ns() - t;
		if (t > wait_max)
			wait_max = t;
		hist[t / 10000 < FLOOR_HIST ? t / 10000 : FLOOR_HIST - 1]++;
	}
	t1 = now_ns();
	printf("RESULT mode=js-sync replicas=%d events=%ld size=%ld secs=%.3f "
	    "rate=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n", replicas, i,
	    size, (double)(t1 - t0) / 1e9, (double)i * 1e9 /
	    (double)(t1 - t0), hist_quantile(hist, (uint64_t)i, 0.5),
	    hist_quantile(hist, (uint64_t)i, 0.99), (double)wait_max / 1e3);
	fflush(stdout);

	/* Asynchronously, up to depth awaiting their acks. */
	jsCtx_Destroy(js);
	js = NULL;
	{
		jsOptions	 jo;

		jsOptions_Init(&jo);
		jo.PublishAsync.MaxPending = depth;
		if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
			fail("jetstream-async", s, 0);
	}
	jsPubOptions_Init(&po);
	po.MaxWait = (int64_t)(secs * 1000);
	deadline = now_ns() + (uint64_t)(secs * 1e9);
	t0 = now_ns();
	for (done = 0; done < events && now_ns() < deadline; done++) {
		s = js_PublishAsync(js, FLOOR_SUBJECT, body, (int)size, NULL);
		if (s != NATS_OK)
			fail("publish-async", s, 0);
	}
	if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
		fail("publish-async-complete", s, 0);
	t1 = now_ns();
	printf("RESULT mode=js-async replicas=%d events=%ld size=%ld depth=%ld "
	    "secs=%.3f rate=%.0f\n", replicas, done, size, depth,
	    (double)(t1 - t0) / 1e9, (double)done * 1e9 / (double)(t1 - t0));
	fflush(stdout);

	/* ringcast's pattern: asynchronously, one at a time, each waiting
	 * for its ack; on a connection as made by default (nats.c's flusher
	 * thread sends what is buffered) and on one with SendAsap (the
	 * publish call sends it). */
	floor_async_one(js, "js-async1", replicas, events, body, size, secs);
	jsCtx_Destroy(js);
	js = NULL;
	if ((s = natsOptions_SetSendAsap(opts, true)) == NATS_OK &&
	    (s = natsConnection_Connect(&nc2, opts)) == NATS_OK)
		s = natsConnection_JetStream(&js, nc2, NULL);
	if (s != NATS_OK)
		fail("connect-asap", s, 0);
	floor_async_one(js, "js-async1-asap", replicas, events, body, size,
	    secs);

	(void)js_DeleteStream(js, FLOOR_STREAM, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc2);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	free(hist);
	free(body);
	free(list);
	return 0;
}
