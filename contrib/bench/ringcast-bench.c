/*
 * ringcast-bench: a load tool for SSE servers (ringcast, and nginx + nchan
 * for comparison).  The parent process publishes; P forked children hold the
 * subscribers on epoll loops and verify every delivery: HTTP/1.1 chunked
 * framing and SSE are parsed, each event's payload carries a sequence number
 * (and the publish time), and missing, duplicated and out-of-order events are
 * counted per subscriber.  With -N the subscribers are spread over that many
 * topics and the events published round-robin over them, so each subscriber
 * expects exactly its topic's share.  The batch mode publishes ndjson
 * batches on one connection and checks the ids it is answered.  Children
 * report through a pipe; each run ends with one "RESULT key=value ..." line.
 * Every loop is bounded by --timeout.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PROCS_MAX		64
#define BENCH_PIDS_MAX		64
#define BENCH_FDS_PER_PROC	19900	/* under the 20,000 fd limit */
#define BENCH_CONNECTING_MAX	512	/* connects in flight per process */
#define BENCH_RECVBUF		(256 * 1024)
#define BENCH_LINE_MAX		(64 * 1024)
#define BENCH_HDR_MAX		8192
#define BENCH_STALL_SECS	15	/* no stream started: give up */
#define BENCH_SRC_FIRST		2	/* 127.0.0.2 ... */
#define BENCH_SRC_LAST		250	/* ... 127.0.0.250 */
#define BENCH_WARMUP_DEPTH	64	/* topic-making publishes in flight */
#define BENCH_RESP_MAX		(1024 * 1024)	/* one publish answer */
#define BENCH_TOPICS_MAX	1000000
/* Latency histogram: 1 us buckets to 100 ms, then 1 ms buckets to 60 s. */
#define HIST_FINE		100000
#define HIST_COARSE		60000
#define HIST_SIZE		(HIST_FINE + HIST_COARSE)

enum mode { MODE_IDLE, MODE_FANOUT, MODE_LATENCY, MODE_REPLAY, MODE_PUBLISH,
    MODE_TOPICS, MODE_BATCH };
enum flavour { SERVER_RINGCAST, SERVER_NCHAN };

static const char *mode_names[] = { "idle", "fanout", "latency", "replay",
    "publish", "topics", "batch" };

/* Modes whose events carry their publish time into a latency histogram. */
#define MODE_HAS_LATENCY(m)	((m) == MODE_LATENCY || (m) == MODE_TOPICS)

struct options {
	enum mode	 mode;
	enum flavour	 server;
	const char	*host;
	int		 port;
	int		 pub_port;	/* publish here (a cluster's other
					 * node); 0: port */
	int		 admin_port;	/* ringcast /metrics, 0: none */
	long		 subs;
	int		 procs;
	long		 events;
	long		 size;
	long		 depth;		/* publishes in flight (pipelined) */
	long		 topics;	/* subscribers and events spread over */
	long		 batch;		/* batch: events per request */
	double		 rate;		/* events/s, 0: as fast as possible */
	double		 timeout;
	double		 hold;		/* idle: seconds to hold after ready */
	double		 grace;		/* seconds without progress at the end */
	double		 settle;	/* idle: seconds before measuring */
	char		 topic[128];
	const char	*ready_file;
	pid_t		 pids[BENCH_PIDS_MAX];
	int		 npids;
	int		 verbose;
};

static struct options	 opt;
static volatile sig_atomic_t stop_requested;

/* What one child reports to the parent. */
struct report {
	long		 subs;		/* subscribers it was given */
	long		 connected;	/* got a 200 stream */
	long		 failed;	/* refused, closed, or not 200 */
	long		 closed;	/* streams the server ended early */
	uint64_t	 deliveries;	/* distinct events received */
	uint64_t	 missing;
	uint64_t	 dup;
	uint64_t	 reorder;
	uint64_t	 badid;		/* ringcast ids not increasing */
	uint64_t	 gaps;		/* ringcast-gap events */
	uint64_t	 malformed;	/* framing or payload errors */
	uint64_t	 bytes;
	uint64_t	 first_ns;	/* first delivery */
	uint64_t	 last_ns;	/* last delivery */
	uint64_t	 start_ns;	/* connecting started */
	uint64_t	 lat_max_ns;
	uint64_t	 lat_sum_us;
	uint64_t	 lat_count;
	int		 has_hist;
};

enum sub_state { SUB_IDLE, SUB_CONNECTING, SUB_HEADERS, SUB_STREAM,
    SUB_DEAD };
enum chunk_state { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR,
    CH_DATA_LF, CH_END };

struct sub {
	int		 fd;
	uint8_t		 state;
	uint8_t		 chunked;
	uint8_t		 cstate;
	uint8_t		 ev_gap;
	uint8_t		 ev_has_data;
	uint8_t		 ev_has_id;
	uint8_t		 streamed;	/* got a 200 stream */
	uint32_t	 index;		/* global subscriber number */
	uint32_t	 topic;		/* index % opt.topics */
	uint32_t	 expected;	/* events of its topic */
	uint64_t	 chunk_left;
	uint64_t	 ev_seq;
	uint64_t	 ev_ts;
	uint64_t	 ev_id;
	uint64_t	 last_id;
	uint64_t	 last_seq;
	uint64_t	 count;
	char		*line;		/* carry of a partial line or header */
	uint32_t	 linelen;
	uint32_t	 linecap;
	uint8_t		*seen;		/* bit per event */
};

struct child {
	struct report	 rep;
	struct sub	*subs;
	long		 nsubs;
	long		 next_connect;
	long		 in_flight;
	long		 done;		/* subs that have every event */
	int		 epfd;
	int		 ctlfd;
	uint32_t	*hist;
	char		*recvbuf;
	uint64_t	 now_ns;
	uint64_t	 progress_ns;
	uint64_t	 connect_progress_ns;	/* a stream started or failed */
	int		 published;	/* the parent sent everything */
};

static void	die(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "ringcast-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- server-side measurements ------------------------------------------ */

/* utime + stime of every server process, in clock ticks. */
static uint64_t
server_cpu_ticks(void)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	uint64_t	 sum = 0;
	ssize_t		 n;
	int		 i, fd, field;

	for (i = 0; i < opt.npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)opt.pids[i]);
		if ((fd = open(path, O_RDONLY)) == -1)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) == NULL)
			continue;
		/* Field 3 (state) follows ") "; utime is 14, stime 15. */
		for (field = 2; field < 13 && p != NULL; field++)
			p = strchr(p + 1, ' ');
		if (p != NULL && sscanf(p, " %lu %lu", &ut, &st) == 2)
			sum += ut + st;
	}
	return sum;
}

/* CPU time of every server process in ns (/proc/PID/schedstat: exact,
 * where /proc/PID/stat counts in 10 ms ticks). */
static uint64_t
server_cpu_ns(void)
{
	char			 path[64];
	unsigned long long	 ns;
	uint64_t		 sum = 0;
	FILE			*f;
	int			 i;

	for (i = 0; i < opt.npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/schedstat",
		    (int)opt.pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	return sum;
}

/* Sum of Pss over every server process, in KiB. */
static uint64_t
server_pss_kib(void)
{
	char		 path[64], line[256];
	unsigned long	 kib;
	uint64_t	 sum = 0;
	FILE		*f;
	int		 i;

	for (i = 0; i < opt.npids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup",
		    (int)opt.pids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "Pss: %lu kB", &kib) == 1)
				sum += kib;
		fclose(f);
	}
	return sum;
}

static int
tcp_connect_blocking(const char *host, int port)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { 10, 0 };
	int			 fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("bad host %s", host);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sum of ringcast_jemalloc_allocated_bytes over the workers; -1 if none. */
static int64_t
server_jemalloc_bytes(void)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n"
	    "Connection: close\r\n\r\n";
	static const char name[] = "ringcast_jemalloc_allocated_bytes";
	char		*buf, *p, *eol;
	size_t		 len = 0, cap = 1 << 20;
	int64_t		 sum = -1;
	ssize_t		 n;
	int		 fd;

	if (opt.admin_port == 0 || opt.server != SERVER_RINGCAST)
		return -1;
	if ((fd = tcp_connect_blocking(opt.host, opt.admin_port)) == -1)
		return -1;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	if ((buf = malloc(cap + 1)) == NULL)
		die("malloc");
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (p = buf; p != NULL && *p != '\0'; p = eol) {
		eol = strchr(p, '\n');
		if (eol != NULL)
			*eol++ = '\0';
		if (strncmp(p, name, sizeof(name) - 1) == 0 &&
		    (p[sizeof(name) - 1] == '{' || p[sizeof(name) - 1] == ' ')) {
			char *v = strrchr(p, ' ');

			if (v != NULL) {
				if (sum < 0)
					sum = 0;
				sum += strtoll(v + 1, NULL, 10);
			}
		}
	}
	free(buf);
	return sum;
}

static uint64_t
parse_u64(const char *p, const char *end, const char **stop)
{
	uint64_t	 v = 0;

	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	if (stop != NULL)
		*stop = p;
	return v;
}

/* ---- topics -------------------------------------------------------------- */

/* The name of topic t: opt.topic itself when there is only one. */
static const char *
topic_name(long t, char *buf, size_t len)
{
	if (opt.topics <= 1)
		return opt.topic;
	snprintf(buf, len, "%s-%ld", opt.topic, t);
	return buf;
}

/* How many of the opt.events events, published round-robin over the topics
 * (event seq goes to topic (seq - 1) % opt.topics), topic t gets. */
static uint32_t
topic_events(long t)
{
	return (uint32_t)(opt.events / opt.topics +
	    (t < opt.events % opt.topics ? 1 : 0));
}

/* ---- the publisher: one keep-alive connection ---------------------------- */

struct publisher {
	int		 fd;
	char		*req;
	size_t		 reqcap;
	char		*resp;		/* BENCH_RESP_MAX + 1 bytes */
	size_t		 resplen;
	size_t		 consumed;	/* the last response, dropped on the
					 * next read */
	const char	*body;		/* the last response's body */
	size_t		 bodylen;
	uint64_t	 errors;
	uint64_t	 last_id;
	long		 in_flight;	/* requests sent, not yet answered */
};

static void
publisher_open(struct publisher *p)
{
	memset(p, 0, sizeof(*p));
	p->reqcap = (size_t)opt.size + 1024;
	if ((p->req = malloc(p->reqcap)) == NULL ||
	    (p->resp = malloc(BENCH_RESP_MAX + 1)) == NULL)
		die("malloc");
	if ((p->fd = tcp_connect_blocking(opt.host, opt.pub_port)) == -1)
		die("publisher: connect %s:%d: %s", opt.host, opt.pub_port,
		    strerror(errno));
}

static void
publisher_close(struct publisher *p)
{
	if (p->fd != -1)
		close(p->fd);
	p->fd = -1;
	free(p->req);
	free(p->resp);
	p->req = p->resp = NULL;
}

/* After a failed read or write: a new connection; what was in flight
 * counts as failed.  0, or -1 when the server takes no new connection. */
static int
publisher_reconnect(struct publisher *p)
{
	close(p->fd);
	p->errors += (uint64_t)p->in_flight;
	p->in_flight = 0;
	p->resplen = p->consumed = p->bodylen = 0;
	p->body = NULL;
	if ((p->fd = tcp_connect_blocking(opt.host, opt.pub_port)) == -1) {
		fprintf(stderr, "ringcast-bench: publisher: reconnect: %s\n",
		    strerror(errno));
		return -1;
	}
	fprintf(stderr, "ringcast-bench: publisher reconnected\n");
	return 0;
}

/* The length of the first whole response in the buffer, its status and
 * where its body is, or 0 when it is not all there yet. */
static size_t
publisher_parse(struct publisher *p, int *status, size_t *body_off,
    size_t *body_len)
{
	char		*hdr_end, *cl, *q, *end;
	size_t		 need;

	p->resp[p->resplen] = '\0';
	if ((hdr_end = strstr(p->resp, "\r\n\r\n")) == NULL)
		return 0;
	*hdr_end = '\0';
	*status = (int)strtol(p->resp + 9, NULL, 10);
	if ((q = strcasestr(p->resp, "\r\nringcast-event-id:")) != NULL)
		p->last_id = strtoull(q + 20, NULL, 10);
	*body_off = (size_t)(hdr_end + 4 - p->resp);
	if (strcasestr(p->resp, "\r\ntransfer-encoding: chunked") != NULL) {
		*hdr_end = '\r';
		if ((end = strstr(hdr_end + 4, "0\r\n\r\n")) == NULL)
			return 0;
		*body_len = (size_t)(end - (hdr_end + 4));
		return (size_t)(end + 5 - p->resp);
	}
	cl = strcasestr(p->resp, "\r\ncontent-length:");
	need = cl != NULL ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
	*hdr_end = '\r';
	if ((size_t)(p->resp + p->resplen - (hdr_end + 4)) < need)
		return 0;
	*body_len = need;
	return *body_off + need;
}

/* Read until one response is complete; its status (its body stays in
 * p->body until the next call), or -1 when the connection failed. */
static int
publisher_read_response(struct publisher *p)
{
	size_t		 used, off = 0, len = 0;
	ssize_t		 n;
	int		 status = 0;

	memmove(p->resp, p->resp + p->consumed, p->resplen - p->consumed);
	p->resplen -= p->consumed;
	p->consumed = 0;
	while ((used = publisher_parse(p, &status, &off, &len)) == 0) {
		if (p->resplen == BENCH_RESP_MAX)
			return -1;
		n = read(p->fd, p->resp + p->resplen,
		    BENCH_RESP_MAX - p->resplen);
		if (n <= 0)
			return -1;
		p->resplen += (size_t)n;
	}
	p->consumed = used;
	p->body = p->resp + off;
	p->bodylen = len;
	p->in_flight--;
	if (status < 200 || status > 299) {
		p->errors++;
		if (opt.verbose)
			fprintf(stderr, "publish: status %d\n", status);
	}
	return status;
}

/* Wait until fewer than depth requests are in flight; 0 or -1. */
static int
publisher_wait(struct publisher *p, long depth)
{
	while (p->in_flight >= depth)
		if (publisher_read_response(p) == -1)
			return -1;
	return 0;
}

/* Write all of buf; 0 or -1. */
static int
publisher_write_all(struct publisher *p, const char *buf, size_t len)
{
	size_t	 off;
	ssize_t	 n;

	for (off = 0; off < len; off += (size_t)n) {
		n = write(p->fd, buf + off, len - off);
		if (n <= 0)
			return -1;
	}
	return 0;
}

/* Send the request of event seq to topic t (payload: "seq=N ts=T " padded
 * to opt.size); 0 or -1. */
static int
publisher_write(struct publisher *p, uint64_t seq, long t)
{
	char		 body[64], name[160];
	const char	*topic = topic_name(t, name, sizeof(name));
	size_t		 hlen, blen, off;

	if (seq == 0)
		blen = (size_t)snprintf(body, sizeof(body), "seq=0 warm-up ");
	else
		blen = (size_t)snprintf(body, sizeof(body), "seq=%llu ts=%llu ",
		    (unsigned long long)seq, (unsigned long long)now_ns());
	if ((long)blen < opt.size)
		blen = (size_t)opt.size;
	if (opt.server == SERVER_NCHAN)
		hlen = (size_t)snprintf(p->req, p->reqcap, "POST /pub?id=%s "
		    "HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\n"
		    "Content-Length: %zu\r\n\r\n", topic, blen);
	else
		hlen = (size_t)snprintf(p->req, p->reqcap, "POST /publish/%s "
		    "HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\n"
		    "Content-Length: %zu\r\n\r\n", topic, blen);
	off = strlen(body);
	memcpy(p->req + hlen, body, off);
	if (blen > off)
		memset(p->req + hlen + off, 'x', blen - off);
	if (publisher_write_all(p, p->req, hlen + blen) == -1)
		return -1;
	p->in_flight++;
	return 0;
}

/* Make every topic (topics are made on first publish) with a "seq=0"
 * event, which subscribers ignore; 0 or -1. */
static int
publish_warmup(struct publisher *p)
{
	long	 t;

	for (t = 0; t < opt.topics; t++)
		if (publisher_wait(p, BENCH_WARMUP_DEPTH) == -1 ||
		    publisher_write(p, 0, t) == -1)
			return -1;
	if (publisher_wait(p, 1) == -1)
		return -1;
	return p->errors == 0 ? 0 : -1;
}

/* Publish opt.events events round-robin over the topics at opt.rate (0:
 * back to back, with up to opt.depth requests in flight); returns the time
 * of the first publish.  A failed connection is opened once more; when
 * that fails too, the rest count as publish errors. */
static uint64_t
publish_all(struct publisher *p, uint64_t deadline, uint64_t *end)
{
	struct timespec	 ts;
	uint64_t	 seq, start = now_ns(), due;
	double		 interval = opt.rate > 0 ? 1e9 / opt.rate : 0;
	long		 depth = opt.rate > 0 ? 1 : opt.depth, t;

	for (seq = 1; seq <= (uint64_t)opt.events; seq++) {
		if (interval > 0) {
			due = start + (uint64_t)((double)(seq - 1) * interval);
			ts.tv_sec = (time_t)(due / 1000000000ull);
			ts.tv_nsec = (long)(due % 1000000000ull);
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			    &ts, NULL) == EINTR)
				;
		}
		t = (long)((seq - 1) % (uint64_t)opt.topics);
		if ((publisher_wait(p, depth) == -1 ||
		    publisher_write(p, seq, t) == -1) &&
		    (publisher_reconnect(p) == -1 ||
		    publisher_write(p, seq, t) == -1)) {
			fprintf(stderr, "ringcast-bench: publish %llu: "
			    "connection failed, stopping\n",
			    (unsigned long long)seq);
			p->errors += (uint64_t)opt.events - seq + 1;
			break;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "ringcast-bench: timeout while "
			    "publishing\n");
			break;
		}
	}
	if (publisher_wait(p, 1) == -1) {
		fprintf(stderr, "ringcast-bench: publish: connection failed "
		    "with %ld in flight\n", p->in_flight);
		p->errors += (uint64_t)p->in_flight;
		p->in_flight = 0;
	}
	*end = now_ns();
	return start;
}

/* ---- batch publish: ndjson on one connection ------------------------------ */

/* Check the {"ids":["1042",...]} answer to a batch of n events: n ids, each
 * one more than the one before, the first above *last.  The number of ids
 * that break this (n when the body is not such a list). */
static uint64_t
batch_check_ids(const char *body, size_t len, long n, uint64_t *last)
{
	const char	*p, *end = body + len;
	uint64_t	 id, bad = 0;
	long		 count = 0;

	if ((p = memmem(body, len, "\"ids\"", 5)) == NULL ||
	    (p = memchr(p, '[', (size_t)(end - p))) == NULL)
		return (uint64_t)n;
	for (p++; p < end && *p != ']'; ) {
		if (*p == ',' || *p == ' ' || *p == '"') {
			p++;
			continue;
		}
		if (*p < '0' || *p > '9')
			return (uint64_t)n;
		id = parse_u64(p, end, &p);
		if (id <= *last || (count > 0 && id != *last + 1))
			bad++;
		*last = id;
		count++;
	}
	if (count != n)
		bad += (uint64_t)(count > n ? count - n : n - count);
	return bad;
}

/*
 * Publish opt.events events in POST /publish requests of opt.batch ndjson
 * lines ({"topic":"...","data":"..."}), on one keep-alive connection, each
 * request waiting for its answer; prints the RESULT line.  A server that
 * answers the first batch 400, 404 or 405 has no batch endpoint: the
 * RESULT says so and the run counts as done.
 */
static int
batch_run(struct publisher *p, uint64_t deadline)
{
	char		*req, *line;
	size_t		 linelen, hmax = 256, bodylen, hlen;
	uint64_t	 bad = 0, last = 0, ns0, ns1, t0, t1;
	long		 i, sent = 0, requests = 0, n;
	int		 status, prefix;

	/* Every line is as long as the others, so a short last batch is a
	 * prefix of the body. */
	prefix = snprintf(NULL, 0, "{\"topic\":\"%s\",\"data\":\"", opt.topic);
	linelen = (size_t)prefix + (size_t)opt.size + 3;
	if ((req = malloc(hmax + linelen * (size_t)opt.batch + 1)) == NULL ||
	    (line = malloc(linelen + 1)) == NULL)
		die("malloc");
	for (i = 0; i < opt.batch; i++) {
		int k = snprintf(line, linelen + 1, "{\"topic\":\"%s\","
		    "\"data\":\"seq=%07ld ", opt.topic, i + 1);

		memset(line + k, 'x', linelen - 3 - (size_t)k);
		memcpy(line + linelen - 3, "\"}\n", 3);
		memcpy(req + hmax + (size_t)i * linelen, line, linelen);
	}
	free(line);
	ns0 = server_cpu_ns();
	t0 = now_ns();
	while (sent < opt.events && now_ns() < deadline) {
		char hdr[256];

		n = opt.events - sent < opt.batch ? opt.events - sent :
		    opt.batch;
		bodylen = (size_t)n * linelen;
		hlen = (size_t)snprintf(hdr, sizeof(hdr), "POST /publish "
		    "HTTP/1.1\r\nHost: bench\r\nContent-Type: "
		    "application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
		    bodylen);
		memcpy(req + hmax - hlen, hdr, hlen);
		if (publisher_write_all(p, req + hmax - hlen, hlen + bodylen) ==
		    -1)
			die("batch: connection failed");
		p->in_flight++;
		if ((status = publisher_read_response(p)) == -1)
			die("batch: connection failed");
		if (requests == 0 && (status == 400 || status == 404 ||
		    status == 405)) {
			fprintf(stderr, "ringcast-bench: batch: status %d: "
			    "%.*s\n", status, (int)(p->bodylen < 200 ?
			    p->bodylen : 200), p->body);
			printf("RESULT mode=batch server=ringcast "
			    "error=endpoint-missing status=%d\n", status);
			free(req);
			return 0;
		}
		requests++;
		sent += n;
		if (status >= 200 && status <= 299)
			bad += batch_check_ids(p->body, p->bodylen, n, &last);
	}
	t1 = now_ns();
	ns1 = server_cpu_ns();
	free(req);
	printf("RESULT mode=batch server=ringcast events=%ld batch=%ld "
	    "size=%ld requests=%ld secs=%.3f rate=%.0f errors=%llu "
	    "bad_ids=%llu", sent, opt.batch, opt.size, requests,
	    (double)(t1 - t0) / 1e9, (double)sent * 1e9 / (double)(t1 - t0),
	    (unsigned long long)p->errors, (unsigned long long)bad);
	if (opt.npids > 0 && sent > 0)
		printf(" cpu_ns_per_event=%.1f", (double)(ns1 - ns0) /
		    (double)sent);
	printf("\n");
	return p->errors == 0 && bad == 0 && sent == opt.events ? 0 : 1;
}

/* ---- the subscribers (in each child) ------------------------------------- */

static void
sub_fail(struct child *ch, struct sub *s, int counted_as_closed)
{
	if (s->fd != -1) {
		epoll_ctl(ch->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	if (s->state == SUB_CONNECTING || s->state == SUB_HEADERS) {
		ch->in_flight--;
		ch->connect_progress_ns = now_ns();
	}
	if (counted_as_closed)
		ch->rep.closed++;
	else
		ch->rep.failed++;
	s->fd = -1;
	s->state = SUB_DEAD;
	free(s->line);
	s->line = NULL;
	s->linecap = s->linelen = 0;
}

static int
sub_connect(struct child *ch, struct sub *s)
{
	struct sockaddr_in	 src, dst;
	struct epoll_event	 ev;
	int			 one = 1;

	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)opt.port);
	inet_pton(AF_INET, opt.host, &dst.sin_addr);
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	/* Spread over 127.0.0.2-250 so each source address has its own
	 * ephemeral port range. */
	src.sin_addr.s_addr = htonl(0x7f000000u | (BENCH_SRC_FIRST +
	    s->index % (BENCH_SRC_LAST - BENCH_SRC_FIRST + 1)));
	if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	    sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) == -1 ||
	    (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
	    errno != EINPROGRESS)) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->state = SUB_CONNECTING;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT;
	ev.data.ptr = s;
	if (epoll_ctl(ch->epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	ch->in_flight++;
	return 0;
}

static void
sub_send_request(struct child *ch, struct sub *s)
{
	struct epoll_event	 ev;
	char			 req[512], name[160];
	const char		*topic;
	int			 len, err = 0;
	socklen_t		 elen = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 ||
	    err != 0) {
		if (opt.verbose)
			fprintf(stderr, "connect: %s\n", strerror(err));
		sub_fail(ch, s, 0);
		return;
	}
	topic = topic_name((long)s->topic, name, sizeof(name));
	if (opt.server == SERVER_NCHAN)
		len = snprintf(req, sizeof(req), "GET /%s/%s HTTP/1.1\r\n"
		    "Host: bench\r\nAccept: text/event-stream\r\n\r\n",
		    opt.mode == MODE_REPLAY ? "replay" : "sub", topic);
	else
		len = snprintf(req, sizeof(req), "GET /events/%s HTTP/1.1\r\n"
		    "Host: bench\r\nAccept: text/event-stream\r\n%s\r\n",
		    topic, opt.mode == MODE_REPLAY ?
		    "Last-Event-ID: 0\r\n" : "");
	if (write(s->fd, req, (size_t)len) != len) {
		sub_fail(ch, s, 0);
		return;
	}
	s->state = SUB_HEADERS;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = s;
	epoll_ctl(ch->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void
hist_add(struct child *ch, uint64_t ns)
{
	uint64_t	 us = ns / 1000;
	size_t		 b;

	if (us < HIST_FINE)
		b = (size_t)us;
	else if (us / 1000 - HIST_FINE / 1000 < HIST_COARSE)
		b = HIST_FINE + (size_t)(us / 1000 - HIST_FINE / 1000);
	else
		b = HIST_SIZE - 1;
	ch->hist[b]++;
	if (ns > ch->rep.lat_max_ns)
		ch->rep.lat_max_ns = ns;
	ch->rep.lat_sum_us += us;
	ch->rep.lat_count++;
}

/* An event is complete (blank line): check and count it. */
static void
sub_dispatch(struct child *ch, struct sub *s)
{
	uint64_t	 seq = s->ev_seq, slot;

	if (s->ev_gap) {
		ch->rep.gaps++;
		goto reset;
	}
	if (!s->ev_has_data)
		goto reset;
	if (seq == 0 && s->ev_ts == 0)
		goto reset;	/* the warm-up event that made the topic */
	/* Each subscriber gets only its topic's events: every topics-th. */
	if (seq == 0 || seq > (uint64_t)opt.events ||
	    (seq - 1) % (uint64_t)opt.topics != s->topic) {
		ch->rep.malformed++;
		goto reset;
	}
	slot = (seq - 1) / (uint64_t)opt.topics;
	if (opt.server == SERVER_RINGCAST) {
		if (!s->ev_has_id || s->ev_id <= s->last_id)
			ch->rep.badid++;
		s->last_id = s->ev_id;
	} else if (!s->ev_has_id)
		ch->rep.badid++;
	if (s->seen[slot >> 3] & (1u << (slot & 7))) {
		ch->rep.dup++;
		goto reset;
	}
	s->seen[slot >> 3] |= (uint8_t)(1u << (slot & 7));
	if (seq < s->last_seq)
		ch->rep.reorder++;
	else
		s->last_seq = seq;
	s->count++;
	ch->rep.deliveries++;
	if (ch->rep.first_ns == 0)
		ch->rep.first_ns = ch->now_ns;
	ch->rep.last_ns = ch->now_ns;
	ch->progress_ns = ch->now_ns;
	if (ch->hist != NULL && s->ev_ts != 0 && ch->now_ns >= s->ev_ts)
		hist_add(ch, ch->now_ns - s->ev_ts);
	if (s->count == s->expected)
		ch->done++;
reset:
	s->ev_gap = s->ev_has_data = s->ev_has_id = 0;
	s->ev_seq = s->ev_ts = s->ev_id = 0;
}

/* One SSE line (without its end). */
static void
sub_line(struct child *ch, struct sub *s, const char *p, size_t len)
{
	const char	*end = p + len, *v, *q;

	if (len > 0 && p[len - 1] == '\r')
		end--;
	if (end == p) {
		sub_dispatch(ch, s);
		return;
	}
	if (*p == ':')
		return;
	if ((v = memchr(p, ':', (size_t)(end - p))) == NULL)
		v = end;
	q = v < end ? v + 1 : end;
	if (q < end && *q == ' ')
		q++;
	switch (v - p) {
	case 4:
		if (memcmp(p, "data", 4) == 0) {
			if (s->ev_has_data) {
				/* One line per event is what we publish. */
				ch->rep.malformed++;
				return;
			}
			s->ev_has_data = 1;
			if (end - q < 4 || memcmp(q, "seq=", 4) != 0) {
				s->ev_seq = 0;
				return;
			}
			s->ev_seq = parse_u64(q + 4, end, &q);
			if (end - q > 4 && memcmp(q, " ts=", 4) == 0)
				s->ev_ts = parse_u64(q + 4, end, NULL);
		}
		return;
	case 2:
		if (memcmp(p, "id", 2) == 0) {
			s->ev_has_id = 1;
			if (opt.server == SERVER_RINGCAST)
				s->ev_id = parse_u64(q, end, NULL);
		}
		return;
	case 5:
		if (memcmp(p, "event", 5) == 0 && end - q == 12 &&
		    memcmp(q, "ringcast-gap", 12) == 0)
			s->ev_gap = 1;
		return;
	default:
		return;
	}
}

static int
sub_carry(struct sub *s, const char *p, size_t len, size_t max)
{
	size_t	 cap;

	if (s->linelen + len > max)
		return -1;
	if (s->linelen + len > s->linecap) {
		cap = s->linecap ? s->linecap : 256;
		while (cap < s->linelen + len)
			cap *= 2;
		if ((s->line = realloc(s->line, cap)) == NULL)
			die("realloc");
		s->linecap = (uint32_t)cap;
	}
	memcpy(s->line + s->linelen, p, len);
	s->linelen += (uint32_t)len;
	return 0;
}

/* Event-stream bytes (chunk framing removed). */
static int
sub_sse_bytes(struct child *ch, struct sub *s, const char *p, size_t len)
{
	const char	*end = p + len, *nl;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			if (sub_carry(s, p, (size_t)(end - p),
			    BENCH_LINE_MAX) == -1)
				return -1;
			return 0;
		}
		if (s->linelen > 0) {
			if (sub_carry(s, p, (size_t)(nl - p),
			    BENCH_LINE_MAX) == -1)
				return -1;
			sub_line(ch, s, s->line, s->linelen);
			s->linelen = 0;
		} else
			sub_line(ch, s, p, (size_t)(nl - p));
		p = nl + 1;
	}
	return 0;
}

/* Body bytes: undo chunked framing when it is there. */
static int
sub_body_bytes(struct child *ch, struct sub *s, const char *p, size_t len)
{
	const char	*end = p + len;
	size_t		 take;
	int		 d;

	if (!s->chunked)
		return sub_sse_bytes(ch, s, p, len);
	while (p < end) {
		switch (s->cstate) {
		case CH_SIZE:
			d = *p;
			if (isxdigit(d)) {
				if (s->chunk_left > (1ull << 40))
					return -1;
				s->chunk_left = s->chunk_left * 16 +
				    (uint64_t)(isdigit(d) ? d - '0' :
				    tolower(d) - 'a' + 10);
			} else if (d == '\r')
				s->cstate = CH_SIZE_LF;
			else if (d == ';')
				s->cstate = CH_EXT;
			else
				return -1;
			p++;
			break;
		case CH_EXT:
			if (*p++ == '\r')
				s->cstate = CH_SIZE_LF;
			break;
		case CH_SIZE_LF:
			if (*p++ != '\n')
				return -1;
			s->cstate = s->chunk_left == 0 ? CH_END : CH_DATA;
			if (s->cstate == CH_END)
				return 1;
			break;
		case CH_DATA:
			take = (size_t)(end - p) < s->chunk_left ?
			    (size_t)(end - p) : (size_t)s->chunk_left;
			if (sub_sse_bytes(ch, s, p, take) == -1)
				return -1;
			p += take;
			s->chunk_left -= take;
			if (s->chunk_left == 0)
				s->cstate = CH_DATA_CR;
			break;
		case CH_DATA_CR:
			if (*p++ != '\r')
				return -1;
			s->cstate = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (*p++ != '\n')
				return -1;
			s->cstate = CH_SIZE;
			break;
		case CH_END:
			return 1;
		}
	}
	return 0;
}

/* Response headers, then the stream. */
static int
sub_bytes(struct child *ch, struct sub *s, const char *p, size_t len)
{
	char		*hdr_end;
	size_t		 hlen, take, old;
	long		 status;

	if (s->state == SUB_STREAM)
		return sub_body_bytes(ch, s, p, len);
	/* Keep at most a header's worth; the body may follow at once. */
	old = s->linelen;
	take = len < BENCH_HDR_MAX - old ? len : BENCH_HDR_MAX - old;
	if (sub_carry(s, p, take, BENCH_HDR_MAX) == -1 ||
	    sub_carry(s, "", 1, BENCH_HDR_MAX + 1) == -1)
		return -1;
	s->linelen--;
	if ((hdr_end = strstr(s->line, "\r\n\r\n")) == NULL)
		return s->linelen >= BENCH_HDR_MAX ? -1 : 0;
	hlen = (size_t)(hdr_end + 4 - s->line);
	*hdr_end = '\0';
	status = s->linelen > 12 ? strtol(s->line + 9, NULL, 10) : 0;
	if (status != 200) {
		if (opt.verbose)
			fprintf(stderr, "subscribe: status %ld\n", status);
		return -1;
	}
	s->chunked = strcasestr(s->line, "\r\ntransfer-encoding: chunked") !=
	    NULL;
	s->state = SUB_STREAM;
	s->streamed = 1;
	ch->in_flight--;
	ch->connect_progress_ns = ch->now_ns;
	ch->rep.connected++;
	s->linelen = 0;
	free(s->line);
	s->line = NULL;
	s->linecap = 0;
	/* The body's first bytes came with the headers. */
	if (hlen - old < len)
		return sub_body_bytes(ch, s, p + (hlen - old),
		    len - (hlen - old));
	return 0;
}

static void
sub_readable(struct child *ch, struct sub *s)
{
	ssize_t	 n;
	int	 rc;

	n = recv(s->fd, ch->recvbuf, BENCH_RECVBUF, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The server ended the stream (or refused it). */
		sub_fail(ch, s, s->state == SUB_STREAM);
		return;
	}
	ch->now_ns = now_ns();
	ch->rep.bytes += (uint64_t)n;
	rc = sub_bytes(ch, s, ch->recvbuf, (size_t)n);
	if (rc == -1) {
		if (s->state == SUB_STREAM)
			ch->rep.malformed++;
		sub_fail(ch, s, s->state == SUB_STREAM);
	} else if (rc == 1)
		sub_fail(ch, s, 1);	/* the chunked terminator */
}

static void
child_connect_more(struct child *ch)
{
	struct sub	*s;

	while (ch->next_connect < ch->nsubs &&
	    ch->in_flight < BENCH_CONNECTING_MAX) {
		s = &ch->subs[ch->next_connect++];
		if (sub_connect(ch, s) == -1) {
			if (opt.verbose)
				fprintf(stderr, "connect: %s\n",
				    strerror(errno));
			s->state = SUB_DEAD;
			ch->rep.failed++;
		}
	}
}

static int
write_all(int fd, const void *p, size_t len)
{
	const char	*b = p;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t len)
{
	char	*b = p;
	ssize_t	 n;

	while (len > 0) {
		n = read(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A child: connect its subscribers, say how many made it (a 'R' report),
 * then follow the streams until each has every event, the parent says stop,
 * or no event came for the grace period after the parent published the last.
 */
static void
child_main(long first, long count, int repfd, int ctlfd, uint64_t deadline)
{
	struct child		 ch;
	struct epoll_event	 events[512];
	struct epoll_event	 ev;
	size_t			 seenlen;
	long			 i;
	int			 n, k, ready_sent = 0, stop = 0;
	char			 tag, cmd;

	memset(&ch, 0, sizeof(ch));
	ch.nsubs = count;
	ch.rep.subs = count;
	ch.ctlfd = ctlfd;
	if ((ch.subs = calloc((size_t)count, sizeof(*ch.subs))) == NULL ||
	    (ch.recvbuf = malloc(BENCH_RECVBUF)) == NULL)
		die("calloc");
	if (MODE_HAS_LATENCY(opt.mode) &&
	    (ch.hist = calloc(HIST_SIZE, sizeof(*ch.hist))) == NULL)
		die("calloc");
	for (i = 0; i < count; i++) {
		ch.subs[i].fd = -1;
		ch.subs[i].index = (uint32_t)(first + i);
		ch.subs[i].topic = (uint32_t)((first + i) % opt.topics);
		ch.subs[i].expected = opt.events > 0 ?
		    topic_events((long)ch.subs[i].topic) : 0;
		seenlen = (ch.subs[i].expected + 7) / 8;
		if (seenlen > 0 &&
		    (ch.subs[i].seen = calloc(1, seenlen)) == NULL)
			die("calloc");
	}
	if ((ch.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ch.epfd, EPOLL_CTL_ADD, ctlfd, &ev);
	ch.rep.start_ns = now_ns();
	ch.connect_progress_ns = ch.rep.start_ns;
	child_connect_more(&ch);
	while (!stop) {
		ch.now_ns = now_ns();
		if (ch.now_ns > deadline)
			break;
		/* A server out of descriptors leaves connections in its
		 * backlog unanswered: give up on them after a stall. */
		if (ch.in_flight > 0 && ch.now_ns - ch.connect_progress_ns >
		    (uint64_t)(BENCH_STALL_SECS * 1e9)) {
			for (i = 0; i < count; i++)
				if (ch.subs[i].state == SUB_CONNECTING ||
				    ch.subs[i].state == SUB_HEADERS)
					sub_fail(&ch, &ch.subs[i], 0);
		}
		if (!ready_sent && ch.next_connect == ch.nsubs &&
		    ch.in_flight == 0) {
			tag = 'R';
			if (write_all(repfd, &tag, 1) == -1 ||
			    write_all(repfd, &ch.rep.connected,
			    sizeof(ch.rep.connected)) == -1)
				_exit(3);
			ready_sent = 1;
			ch.progress_ns = ch.now_ns;
		}
		if (ch.published && ready_sent && opt.events == 0)
			break;
		if (ch.published && ready_sent && opt.events > 0) {
			if (ch.done >= ch.rep.connected - ch.rep.closed &&
			    ch.done > 0)
				break;
			if (ch.now_ns - ch.progress_ns >
			    (uint64_t)(opt.grace * 1e9))
				break;
		}
		n = epoll_wait(ch.epfd, events, 512, 100);
		if (n == -1 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (k = 0; k < n; k++) {
			struct sub *s = events[k].data.ptr;

			if (s == NULL) {
				if (read(ctlfd, &cmd, 1) != 1 || cmd == 'S')
					stop = 1;
				else if (cmd == 'P') {
					ch.published = 1;
					ch.progress_ns = now_ns();
				}
				continue;
			}
			if (s->state == SUB_CONNECTING)
				sub_send_request(&ch, s);
			else if (s->state == SUB_HEADERS ||
			    s->state == SUB_STREAM)
				sub_readable(&ch, s);
		}
		child_connect_more(&ch);
	}
	/* Count what each subscriber that got a stream is missing. */
	for (i = 0; i < count; i++) {
		struct sub *s = &ch.subs[i];

		if (s->streamed &&
		    opt.events > 0 && (ch.published || opt.mode == MODE_REPLAY))
			ch.rep.missing += s->expected - s->count;
	}
	ch.rep.has_hist = ch.hist != NULL;
	tag = 'F';
	if (write_all(repfd, &tag, 1) == -1 ||
	    write_all(repfd, &ch.rep, sizeof(ch.rep)) == -1 ||
	    (ch.hist != NULL && write_all(repfd, ch.hist,
	    HIST_SIZE * sizeof(*ch.hist)) == -1))
		_exit(3);
	/* Wait for the parent's word before closing, so every subscriber
	 * stays connected until all measurements are taken. */
	while (!stop && now_ns() < deadline + 5000000000ull) {
		if (read(ctlfd, &cmd, 1) != 1 || cmd == 'S')
			break;
	}
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

struct kid {
	pid_t		 pid;
	int		 repfd;
	int		 ctlfd;
	long		 connected;
	int		 finished;
};

static void
kids_tell(struct kid *kids, int nkids, char cmd)
{
	int	 i;

	for (i = 0; i < nkids; i++)
		if (kids[i].ctlfd != -1)
			(void)!write(kids[i].ctlfd, &cmd, 1);
}

static long
kids_wait_ready(struct kid *kids, int nkids, uint64_t deadline)
{
	long	 total = 0;
	int	 i;
	char	 tag;

	for (i = 0; i < nkids; i++) {
		struct timeval	 tv;
		uint64_t	 left, t = now_ns();

		left = deadline > t ? deadline - t : 1000000;
		tv.tv_sec = (time_t)(left / 1000000000ull);
		tv.tv_usec = (suseconds_t)(left % 1000000000ull / 1000);
		setsockopt(kids[i].repfd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv));
		if (read_all(kids[i].repfd, &tag, 1) == -1 || tag != 'R' ||
		    read_all(kids[i].repfd, &kids[i].connected,
		    sizeof(kids[i].connected)) == -1) {
			fprintf(stderr, "ringcast-bench: child %d did not get "
			    "ready in time\n", i);
			continue;
		}
		total += kids[i].connected;
	}
	return total;
}

static void
kids_collect(struct kid *kids, int nkids, struct report *sum,
    uint32_t *hist)
{
	struct report	 rep;
	uint32_t	*h = NULL;
	size_t		 b;
	int		 i;
	char		 tag;

	memset(sum, 0, sizeof(*sum));
	if (MODE_HAS_LATENCY(opt.mode) && (h = malloc(HIST_SIZE *
	    sizeof(*h))) == NULL)
		die("malloc");
	for (i = 0; i < nkids; i++) {
		struct timeval tv = { (time_t)opt.timeout + 30, 0 };

		setsockopt(kids[i].repfd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv));
		if (read_all(kids[i].repfd, &tag, 1) == -1 || tag != 'F' ||
		    read_all(kids[i].repfd, &rep, sizeof(rep)) == -1) {
			fprintf(stderr, "ringcast-bench: child %d sent no "
			    "report\n", i);
			sum->malformed++;
			continue;
		}
		if (rep.has_hist && (h == NULL || read_all(kids[i].repfd, h,
		    HIST_SIZE * sizeof(*h)) == -1))
			die("child %d: short histogram", i);
		if (rep.has_hist)
			for (b = 0; b < HIST_SIZE; b++)
				hist[b] += h[b];
		sum->subs += rep.subs;
		sum->connected += rep.connected;
		sum->failed += rep.failed;
		sum->closed += rep.closed;
		sum->deliveries += rep.deliveries;
		sum->missing += rep.missing;
		sum->dup += rep.dup;
		sum->reorder += rep.reorder;
		sum->badid += rep.badid;
		sum->gaps += rep.gaps;
		sum->malformed += rep.malformed;
		sum->bytes += rep.bytes;
		sum->lat_sum_us += rep.lat_sum_us;
		sum->lat_count += rep.lat_count;
		if (rep.lat_max_ns > sum->lat_max_ns)
			sum->lat_max_ns = rep.lat_max_ns;
		if (rep.first_ns != 0 && (sum->first_ns == 0 ||
		    rep.first_ns < sum->first_ns))
			sum->first_ns = rep.first_ns;
		if (rep.last_ns > sum->last_ns)
			sum->last_ns = rep.last_ns;
		if (sum->start_ns == 0 || rep.start_ns < sum->start_ns)
			sum->start_ns = rep.start_ns;
		kids[i].finished = 1;
	}
	free(h);
}

/* The latency (us) at quantile q of the histogram. */
static double
hist_quantile(const uint32_t *hist, uint64_t total, double q)
{
	uint64_t	 rank, seen = 0;
	size_t		 b;

	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (b = 0; b < HIST_SIZE; b++) {
		seen += hist[b];
		if (seen > rank)
			return b < HIST_FINE ? (double)b :
			    (double)(HIST_FINE + (b - HIST_FINE) * 1000);
	}
	return (double)(HIST_FINE + HIST_COARSE * 1000);
}

static void
usage(void)
{
	fprintf(stderr,
"usage: ringcast-bench -m idle|fanout|latency|replay|publish|topics|batch\n"
"                      [options]\n"
"  -S ringcast|nchan   server flavour (default ringcast)\n"
"  -h HOST -p PORT     where it listens (default 127.0.0.1:8080)\n"
"  -q PORT             publish to this port instead (a cluster's other node)\n"
"  -a PORT             ringcast admin port, for jemalloc figures\n"
"  -n SUBS -P PROCS    subscribers and client processes\n"
"  -N TOPICS           spread subscribers and events over TOPICS topics\n"
"                      (topics: default 30,000 subscribers over 3,000)\n"
"  -b LINES            batch: events per ndjson request (default 1000)\n"
"  -e EVENTS -s SIZE   events to publish and payload bytes (default 128)\n"
"  -r RATE             events/s (default: as fast as possible)\n"
"  -d DEPTH            pipelined publishes in flight without -r (1)\n"
"  -t TOPIC            topic, or prefix of TOPIC-0... (default: bench-PID)\n"
"  -T SECS             hard time bound of the whole run (default 120)\n"
"  -H SECS             idle: hold the subscribers this long once measured\n"
"  -g SECS             give up this long after the last delivery (10)\n"
"  -R FILE             idle: create FILE once every subscriber is held\n"
"  -k PID,PID,...      server processes (CPU time, PSS)\n"
"  -v                  say why connections fail\n");
	exit(2);
}

static void
parse_pids(const char *arg)
{
	char	*copy = strdup(arg), *tok, *save = NULL;

	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (opt.npids == BENCH_PIDS_MAX)
			die("too many pids");
		opt.pids[opt.npids++] = (pid_t)atoi(tok);
	}
	free(copy);
}

int
main(int argc, char **argv)
{
	struct publisher	 pub = { .fd = -1 };
	struct report		 sum;
	struct kid		 kids[BENCH_PROCS_MAX];
	uint32_t		*hist = NULL;
	uint64_t		 deadline, t_pub = 0, t_pub_end = 0, cpu0 = 0;
	uint64_t		 ns0 = 0, ns1 = 0;
	uint64_t		 cpu1 = 0, pss0 = 0, pss1 = 0, t_ready = 0;
	int64_t			 je0 = -1, je1 = -1;
	long			 per, ready = 0, base;
	double			 secs = 0, rate = 0;
	int			 c, i, nkids = 0, sv[2], cv[2];
	const char		*m = NULL;

	opt.host = "127.0.0.1";
	opt.port = 8080;
	opt.subs = -1;
	opt.procs = 0;
	opt.events = -1;
	opt.size = 128;
	opt.depth = 1;
	opt.topics = -1;
	opt.batch = 1000;
	opt.timeout = 120;
	opt.grace = 10;
	opt.settle = 2;
	snprintf(opt.topic, sizeof(opt.topic), "bench-%d", (int)getpid());
	while ((c = getopt(argc, argv, "m:S:h:p:q:a:n:N:P:e:s:r:d:b:t:T:H:g:R:k:v")) !=
	    -1) {
		switch (c) {
		case 'm':
			m = optarg;
			break;
		case 'S':
			if (strcmp(optarg, "nchan") == 0)
				opt.server = SERVER_NCHAN;
			else if (strcmp(optarg, "ringcast") != 0)
				usage();
			break;
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'q':
			opt.pub_port = atoi(optarg);
			break;
		case 'a':
			opt.admin_port = atoi(optarg);
			break;
		case 'n':
			opt.subs = atol(optarg);
			break;
		case 'N':
			opt.topics = atol(optarg);
			if (opt.topics < 1 || opt.topics > BENCH_TOPICS_MAX)
				usage();
			break;
		case 'P':
			opt.procs = atoi(optarg);
			break;
		case 'e':
			opt.events = atol(optarg);
			break;
		case 's':
			opt.size = atol(optarg);
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'd':
			opt.depth = atol(optarg);
			if (opt.depth < 1)
				opt.depth = 1;
			break;
		case 'b':
			opt.batch = atol(optarg);
			if (opt.batch < 1)
				usage();
			break;
		case 't':
			snprintf(opt.topic, sizeof(opt.topic), "%s", optarg);
			break;
		case 'T':
			opt.timeout = atof(optarg);
			break;
		case 'H':
			opt.hold = atof(optarg);
			break;
		case 'g':
			opt.grace = atof(optarg);
			break;
		case 'R':
			opt.ready_file = optarg;
			break;
		case 'k':
			parse_pids(optarg);
			break;
		case 'v':
			opt.verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (m == NULL)
		usage();
	if (opt.pub_port == 0)
		opt.pub_port = opt.port;
	for (i = 0; i <= MODE_BATCH; i++)
		if (strcmp(m, mode_names[i]) == 0)
			break;
	if (i > MODE_BATCH)
		usage();
	opt.mode = (enum mode)i;
	/* Defaults per mode. */
	switch (opt.mode) {
	case MODE_IDLE:
		if (opt.subs < 0)
			opt.subs = 1000;
		if (opt.events < 0)
			opt.events = 1;	/* prove the streams are live */
		break;
	case MODE_FANOUT:
		if (opt.subs < 0)
			opt.subs = 1000;
		if (opt.events < 0)
			opt.events = 2000;
		break;
	case MODE_LATENCY:
		if (opt.subs < 0)
			opt.subs = 1000;
		if (opt.events < 0)
			opt.events = 2000;
		if (opt.rate <= 0)
			opt.rate = 200;
		break;
	case MODE_REPLAY:
		opt.subs = 1;
		if (opt.events < 0)
			opt.events = 100000;
		break;
	case MODE_PUBLISH:
		opt.subs = 0;
		if (opt.events < 0)
			opt.events = 20000;
		break;
	case MODE_TOPICS:
		/* Many quiet topics: 10 subscribers each by default,
		 * published one request at a time unless -d says more. */
		if (opt.subs < 0)
			opt.subs = 30000;
		if (opt.topics < 0)
			opt.topics = 3000;
		if (opt.events < 0)
			opt.events = 16 * opt.topics;
		break;
	case MODE_BATCH:
		opt.subs = 0;
		if (opt.events < 0)
			opt.events = 200000;
		break;
	}
	if (opt.topics < 1 || opt.mode == MODE_REPLAY ||
	    opt.mode == MODE_PUBLISH || opt.mode == MODE_BATCH)
		opt.topics = 1;
	if (opt.topics > 1 && opt.events < opt.topics)
		die("%ld events leave some of the %ld topics without one",
		    opt.events, opt.topics);
	if (opt.size < 40)
		opt.size = 40;
	if (opt.procs <= 0)
		opt.procs = opt.subs > 0 ? (int)((opt.subs +
		    BENCH_FDS_PER_PROC - 1) / BENCH_FDS_PER_PROC) : 0;
	if (opt.procs < 2 && opt.subs >= 100)
		opt.procs = 2;
	if (opt.procs > BENCH_PROCS_MAX)
		die("at most %d processes", BENCH_PROCS_MAX);
	if (opt.subs > 0 && (opt.subs + opt.procs - 1) / opt.procs >
	    BENCH_FDS_PER_PROC)
		die("%ld subscribers need at least %ld processes (-P)",
		    opt.subs, (opt.subs + BENCH_FDS_PER_PROC - 1) /
		    BENCH_FDS_PER_PROC);
	deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);

	if (opt.mode == MODE_BATCH && opt.server == SERVER_NCHAN) {
		printf("RESULT mode=batch server=nchan error=no-batch-endpoint\n");
		return 0;
	}
	if (opt.mode != MODE_IDLE || opt.events > 0)
		publisher_open(&pub);
	if (opt.mode == MODE_BATCH) {
		/* Topics are made on first publish: make this one now. */
		if (publish_warmup(&pub) == -1)
			die("warm-up publish failed");
		c = batch_run(&pub, deadline);
		publisher_close(&pub);
		return c;
	}
	if (opt.mode == MODE_PUBLISH) {
		cpu0 = server_cpu_ticks();
		t_pub = publish_all(&pub, deadline, &t_pub_end);
		cpu1 = server_cpu_ticks();
		secs = (double)(t_pub_end - t_pub) / 1e9;
		printf("RESULT mode=publish server=%s events=%ld size=%ld "
		    "depth=%ld secs=%.3f rate=%.0f errors=%llu cpu_us_per_event=%.2f\n",
		    opt.server == SERVER_NCHAN ? "nchan" : "ringcast",
		    opt.events, opt.size, opt.depth, secs,
		    (double)opt.events / secs,
		    (unsigned long long)pub.errors,
		    (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK) /
		    (double)opt.events);
		publisher_close(&pub);
		return pub.errors == 0 ? 0 : 1;
	}
	if (opt.mode == MODE_REPLAY) {
		/* The backlog first; then one subscriber catches up. */
		t_pub = publish_all(&pub, deadline, &t_pub_end);
		if (pub.errors > 0)
			die("%llu publishes failed",
			    (unsigned long long)pub.errors);
		cpu0 = server_cpu_ticks();
		ns0 = server_cpu_ns();
	}
	if (opt.mode != MODE_REPLAY) {
		/* Topics are made on first publish: make this one now. */
		if (opt.mode == MODE_IDLE && opt.events == 0)
			publisher_open(&pub);
		if (publish_warmup(&pub) == -1)
			die("warm-up publish failed");
	}
	if (opt.mode == MODE_IDLE) {
		pss0 = server_pss_kib();
		je0 = server_jemalloc_bytes();
	}

	/* Fork the subscriber processes. */
	per = opt.subs / opt.procs;
	base = 0;
	for (i = 0; i < opt.procs; i++) {
		long n = per + (i < opt.subs % opt.procs ? 1 : 0);

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ==
		    -1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    cv) == -1)
			die("socketpair: %s", strerror(errno));
		kids[i].pid = fork();
		if (kids[i].pid == -1)
			die("fork: %s", strerror(errno));
		if (kids[i].pid == 0) {
			close(sv[0]);
			close(cv[0]);
			if (pub.fd > 0)
				close(pub.fd);
			child_main(base, n, sv[1], cv[1], deadline);
		}
		close(sv[1]);
		close(cv[1]);
		kids[i].repfd = sv[0];
		kids[i].ctlfd = cv[0];
		kids[i].finished = 0;
		nkids++;
		base += n;
	}
	ready = kids_wait_ready(kids, nkids, deadline);
	t_ready = now_ns();
	fprintf(stderr, "ringcast-bench: %ld of %ld subscribers connected\n",
	    ready, opt.subs);

	if (opt.mode == MODE_IDLE) {
		struct timespec	 ts;
		uint64_t	 until;

		ts.tv_sec = (time_t)opt.settle;
		ts.tv_nsec = (long)((opt.settle - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		pss1 = server_pss_kib();
		je1 = server_jemalloc_bytes();
		if (opt.ready_file != NULL) {
			int fd = open(opt.ready_file, O_WRONLY | O_CREAT |
			    O_TRUNC | O_CLOEXEC, 0644);
			if (fd != -1)
				close(fd);
		}
		until = now_ns() + (uint64_t)(opt.hold * 1e9);
		while (!stop_requested && now_ns() < until &&
		    now_ns() < deadline)
			usleep(100000);
	}
	if (opt.mode == MODE_FANOUT || MODE_HAS_LATENCY(opt.mode) ||
	    (opt.mode == MODE_IDLE && opt.events > 0)) {
		cpu0 = server_cpu_ticks();
		ns0 = server_cpu_ns();
		t_pub = publish_all(&pub, deadline, &t_pub_end);
	}
	kids_tell(kids, nkids, 'P');
	if (MODE_HAS_LATENCY(opt.mode))
		if ((hist = calloc(HIST_SIZE, sizeof(*hist))) == NULL)
			die("calloc");
	kids_collect(kids, nkids, &sum, hist);
	cpu1 = server_cpu_ticks();
	ns1 = server_cpu_ns();
	kids_tell(kids, nkids, 'S');
	for (i = 0; i < nkids; i++) {
		close(kids[i].ctlfd);
		close(kids[i].repfd);
		waitpid(kids[i].pid, NULL, 0);
	}

	if (opt.mode == MODE_REPLAY) {
		if (sum.last_ns > sum.start_ns)
			secs = (double)(sum.last_ns - sum.start_ns) / 1e9;
	} else if (sum.last_ns > t_pub)
		secs = (double)(sum.last_ns - t_pub) / 1e9;
	rate = secs > 0 ? (double)sum.deliveries / secs : 0;

	printf("RESULT mode=%s server=%s subs=%ld connected=%ld failed=%ld "
	    "closed=%ld events=%ld size=%ld deliveries=%llu secs=%.3f "
	    "rate=%.0f missing=%llu dup=%llu reorder=%llu badid=%llu "
	    "gaps=%llu malformed=%llu pub_errors=%llu procs=%d depth=%ld",
	    mode_names[opt.mode],
	    opt.server == SERVER_NCHAN ? "nchan" : "ringcast",
	    opt.subs, sum.connected, sum.failed, sum.closed, opt.events,
	    opt.size, (unsigned long long)sum.deliveries, secs, rate,
	    (unsigned long long)sum.missing, (unsigned long long)sum.dup,
	    (unsigned long long)sum.reorder, (unsigned long long)sum.badid,
	    (unsigned long long)sum.gaps, (unsigned long long)sum.malformed,
	    (unsigned long long)(opt.mode == MODE_IDLE && opt.events == 0 ? 0 :
	    pub.errors), opt.procs, opt.rate > 0 ? 1 : opt.depth);
	if (opt.rate > 0)
		printf(" target_rate=%.0f pub_secs=%.3f", opt.rate,
		    (double)(t_pub_end - t_pub) / 1e9);
	else if (opt.mode != MODE_IDLE)
		printf(" pub_secs=%.3f", (double)(t_pub_end - t_pub) / 1e9);
	if (opt.npids > 0 && sum.deliveries > 0 && opt.mode != MODE_IDLE)
		printf(" cpu_us_per_delivery=%.3f", (double)(cpu1 - cpu0) *
		    1e6 / (double)sysconf(_SC_CLK_TCK) /
		    (double)sum.deliveries);
	if (opt.npids > 0 && sum.deliveries > 0 && opt.mode != MODE_IDLE &&
	    ns1 > ns0)
		printf(" cpu_ns_per_delivery=%.1f", (double)(ns1 - ns0) /
		    (double)sum.deliveries);
	if (opt.topics > 1)
		printf(" topics=%ld", opt.topics);
	if (opt.mode != MODE_IDLE && t_pub_end > t_pub)
		printf(" pub_rate=%.0f", (double)((uint64_t)opt.events -
		    (pub.errors < (uint64_t)opt.events ? pub.errors :
		    (uint64_t)opt.events)) * 1e9 / (double)(t_pub_end - t_pub));
	if (MODE_HAS_LATENCY(opt.mode))
		printf(" p50_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f",
		    hist_quantile(hist, sum.lat_count, 0.50),
		    hist_quantile(hist, sum.lat_count, 0.99),
		    (double)sum.lat_max_ns / 1e3, sum.lat_count > 0 ?
		    (double)sum.lat_sum_us / (double)sum.lat_count : 0);
	if (opt.mode == MODE_IDLE) {
		printf(" connect_secs=%.3f", (double)(t_ready - sum.start_ns) /
		    1e9);
		if (opt.npids > 0 && ready > 0)
			printf(" pss_before_kib=%llu pss_after_kib=%llu "
			    "pss_bytes_per_sub=%.0f",
			    (unsigned long long)pss0, (unsigned long long)pss1,
			    ((double)pss1 - (double)pss0) * 1024 /
			    (double)ready);
		if (je0 >= 0 && je1 >= 0 && ready > 0)
			printf(" jemalloc_before=%lld jemalloc_after=%lld "
			    "jemalloc_bytes_per_sub=%.0f", (long long)je0,
			    (long long)je1, (double)(je1 - je0) /
			    (double)ready);
	}
	printf("\n");
	fflush(stdout);
	free(hist);
	publisher_close(&pub);
	if (sum.missing || sum.dup || sum.reorder || sum.badid ||
	    sum.malformed || sum.closed || sum.failed)
		return 1;
	return 0;
}
