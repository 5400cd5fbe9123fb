/*
 * fuzz_conn: the connection state machine without a network.  One worker is
 * built in-process by tests/worker_fixture.c (a ring in a temporary file, a
 * catalog with a few topics, the shared metrics), and each input becomes
 * the bytes a client sends on one end of a socketpair(2); conn.c and
 * stream.c handle the other end as the worker's epoll loop would.  The first byte sets
 * the worker's situation (draining, admin listener, tokens required...).
 * JWTs are verified with an HS256 secret (setup_jwt) in the header, the
 * cookie and the query, as opaque tokens are.
 * Checks: nothing crashes or leaks, what the server writes parses as HTTP/1.1
 * responses, and once the connection is gone every gauge is back to zero.
 */
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringcast/auth.h"
#include "ringcast/conn.h"
#include "ringcast/metrics.h"
#include "ringcast/serve.h"
#include "ringcast/stream.h"
#include "fuzz.h"
#include "../worker_fixture.h"

#define OUT_MAX		(1024 * 1024)
#define BASE_MS		1000000
#define FUZZ_JWT_SECRET	"fuzz-conn-hs256-secret-of-32-bytes-at-least"

static struct worker_fixture	 fx;
static char			*out;		/* what the client read */
static size_t			 outlen;

/*
 * JWT keys: the HS256 secret the seeds of corpus/conn/jwt_* are signed
 * with (exp in 2100), so the fuzzer starts from tokens that verify.
 */
static void
setup_jwt(void)
{
	char	 path[512], err[256];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/jwt-secret", fuzz_tmpdir());
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	fputs(FUZZ_JWT_SECRET "\n", fp);
	fclose(fp);
	if (auth_load(&fx.conf.auth, path, fx.conf.jwt_algorithms, "", "",
	    fx.conf.clock_skew_ms, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_conn: %s\n", err);
		abort();
	}
}

static void
setup(void)
{
	if (worker_fixture_init(&fx, fuzz_tmpdir(), 256 * 1024, 256) == -1 ||
	    (out = malloc(OUT_MAX)) == NULL)
		abort();
	setup_jwt();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

/* Everything the server wrote must parse as HTTP/1.1 responses. */
static int	responses;

static int
on_response_begin(http_parser *p)
{
	(void)p;
	responses++;
	return 0;
}

static void
check_output(int head_seen)
{
	http_parser_settings	 settings;
	http_parser		 p;
	size_t			 n;

	if (outlen == 0 || outlen == OUT_MAX)
		return;
	FUZZ_CHECK(outlen >= 9 && memcmp(out, "HTTP/1.1 ", 9) == 0);
	/* An answer to HEAD has a Content-Length and no body: a parser
	 * that did not see the request cannot follow. */
	if (head_seen)
		return;
	memset(&settings, 0, sizeof(settings));
	settings.on_message_begin = on_response_begin;
	http_parser_init(&p, HTTP_RESPONSE);
	responses = 0;
	n = http_parser_execute(&p, &settings, out, outlen);
	if (n != outlen || HTTP_PARSER_ERRNO(&p) != HPE_OK) {
		fprintf(stderr, "bad response at %zu: %s\n%.*s\n", n,
		    http_errno_description(HTTP_PARSER_ERRNO(&p)),
		    (int)(outlen > 2000 ? 2000 : outlen), out);
		FUZZ_CHECK(!"the server's output parses as HTTP/1.1");
	}
	FUZZ_CHECK(p.http_major == 1 && p.http_minor == 1);
	FUZZ_CHECK(responses >= 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serve	*w = &fx.serve;
	struct conn	*c;
	uint32_t	 bucket;
	int		 client, i, k, flags, head_seen;

	if (size < 1)
		return 0;
	if (w->ring == NULL)
		setup();
	flags = data[0];
	data++;
	size--;
	fx.conf.require_token = (flags & 0x01) != 0;
	fx.conf.auto_create_topics = (flags & 0x02) != 0;
	fx.conf.demo = (flags & 0x04) != 0;
	w->draining = (flags & 0x08) != 0;
	w->retiring = (flags & 0x10) != 0 && !w->draining;
	fx.conf.max_connections = (flags & 0x20) ? 1 : 0;
	head_seen = memmem(data, size, "HEAD", 4) != NULL;

	w->now_ms = BASE_MS;
	if ((c = worker_fixture_connect(&fx, (flags & 0x40) != 0,
	    &client)) == NULL)
		return 0;
	bucket = c->addr_bucket;
	if (size > 0 && send(client, data, size, MSG_NOSIGNAL) !=
	    (ssize_t)size) {
		conn_close(w, c);
		close(client);
		return 0;
	}
	/* Without 0x80 the client keeps its side open: timeouts decide. */
	if (!(flags & 0x80))
		shutdown(client, SHUT_WR);
	outlen = 0;
	for (i = 0; i < 8 && worker_fixture_conn_alive(&fx, c); i++) {
		worker_fixture_event(&fx, c, i == 0 ? EPOLLIN | EPOLLOUT :
		    EPOLLIN | EPOLLOUT | EPOLLRDHUP);
		worker_fixture_read(client, out, OUT_MAX, &outlen);
		if (worker_fixture_conn_alive(&fx, c))
			stream_fanout(w);
		worker_fixture_read(client, out, OUT_MAX, &outlen);
	}
	/* Time passes: heartbeats, header timeouts, lingering ends. */
	for (k = 1; k <= 3 && worker_fixture_conn_alive(&fx, c); k++) {
		w->now_ms = BASE_MS + (uint64_t)k * 61000;
		if (c->state == CONN_STREAM)
			stream_on_tick(w, c);
		else
			conn_on_tick(w, c);
		worker_fixture_read(client, out, OUT_MAX, &outlen);
	}
	if (worker_fixture_conn_alive(&fx, c))
		conn_close(w, c);
	/* A stale event for a closed connection, as a later event of the
	 * same epoll batch would be: harmless until the worker reaps. */
	worker_fixture_event(&fx, c, EPOLLIN | EPOLLOUT | EPOLLHUP);
	conn_reap(w);
	worker_fixture_read(client, out, OUT_MAX, &outlen);
	close(client);

	/* Every gauge is back where it started. */
	FUZZ_CHECK(w->nconns == 0 && w->nstreams == 0);
	FUZZ_CHECK(TAILQ_EMPTY(&w->requests) && TAILQ_EMPTY(&w->streams));
	for (k = 0; k < METRICS_CONN_KINDS; k++)
		FUZZ_CHECK(w->slot->conns[k] == 0);
	FUZZ_CHECK(metrics_addr_total(w->shm, bucket) == 0);
	check_output(head_seen);
	return 0;
}
