/*
 * fuzz_ring_open: ring files that are not what ring_create made.  The first
 * byte picks a mode: the input as the whole file (optionally padded to the
 * size a ring of the test geometry has), or a valid ring -- made once, with
 * events that wrapped -- with a region chosen by the input overwritten, and
 * optionally its header checksum recomputed so the corruption gets past it.
 * ring_open must say 0, or -1 with a message naming the file; a ring it
 * opens must survive ring_read, ring_next, ring_get_info and ring_append on
 * any seq.  Whatever opens is the contract the open-time checks enforce.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/ring.h"
#include "ringcast/sse.h"
#include "fuzz.h"

#define GEOM_SIZE	8192
#define GEOM_SLOTS	16
/* struct ring_header in ring.c: the checksum is FNV-1a 64 of the 56 bytes
 * before it (checked against the template at start). */
#define HDR_SUMMED	56

int	__real_pthread_mutex_timedlock(pthread_mutex_t *,
	    const struct timespec *);
int	__wrap_pthread_mutex_timedlock(pthread_mutex_t *,
	    const struct timespec *);

/*
 * The seam (-Wl,--wrap): ring_open waits up to 5 s for a lock word that a
 * corrupt file says is held.  Waiting is right for the daemon, but would
 * slow the fuzzer to a crawl, so here "held" is answered at once.
 */
int
__wrap_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts)
{
	int	 rc;

	(void)ts;
	rc = pthread_mutex_trylock(m);
	return rc == EBUSY ? ETIMEDOUT : rc;
}

static char		 path[512];
static unsigned char	*template;
static size_t		 template_len;

static uint64_t
fnv(const unsigned char *p, size_t len)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
append_some(struct ring *ring, unsigned int n, unsigned int salt)
{
	char		 data[600], body[1400];
	unsigned int	 i;
	size_t		 len, blen;
	uint64_t	 seq;

	for (i = 0; i < n; i++) {
		len = (i * 37 + salt) % sizeof(data);
		memset(data, 'a' + (int)(i % 26), len);
		if (len > 3)
			data[len / 2] = '\n';
		blen = sse_encode_body(body, sizeof(body), i % 3 ? "t" : NULL,
		    i % 3 ? 1 : 0, data, len);
		(void)ring_append(ring, (i + salt) % 5, body, blen, &seq);
	}
}

static void
make_template(void)
{
	struct ring	*ring;
	char		 err[512];
	struct stat	 st;
	uint64_t	 sum;
	int		 fd;

	snprintf(path, sizeof(path), "%s/template", fuzz_tmpdir());
	if (ring_open(&ring, path, GEOM_SIZE, GEOM_SLOTS, RING_CREATE, 41,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	/* More than the slots and the bytes hold: evictions and a wrap. */
	append_some(ring, 40, 0);
	ring_close(ring);
	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		abort();
	template_len = (size_t)st.st_size;
	if ((template = malloc(template_len)) == NULL ||
	    read(fd, template, template_len) != (ssize_t)template_len)
		abort();
	close(fd);
	memcpy(&sum, template + HDR_SUMMED, sizeof(sum));
	FUZZ_CHECK(sum == fnv(template, HDR_SUMMED));
	snprintf(path, sizeof(path), "%s/ring", fuzz_tmpdir());
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_template();
	return 0;
}

static void
exercise(struct ring *ring, const uint8_t *in, size_t size)
{
	struct ring_info	 info;
	struct ring_frame	 frame;
	enum ring_status	 st;
	uint64_t		 rng = fnv(in, size), seq, committed, oldest;
	static char		 buf[GEOM_SIZE];
	uint32_t		 topics[2] = { 1, 3 };
	int			 i;

	ring_get_info(ring, &info);
	committed = ring_committed(ring);
	oldest = ring_oldest(ring);
	FUZZ_CHECK(info.size == GEOM_SIZE && info.slots == GEOM_SLOTS);
	FUZZ_CHECK(info.used <= info.size);
	for (i = 0; i < 48; i++) {
		switch (i % 4) {
		case 0:
			seq = oldest - 2 + fuzz_rand(&rng) % (GEOM_SLOTS + 4);
			break;
		case 1:
			seq = committed - 2 + fuzz_rand(&rng) % 5;
			break;
		case 2:
			seq = fuzz_rand(&rng);
			break;
		default:
			seq = oldest + (uint64_t)i / 4;
			break;
		}
		memset(&frame, 0, sizeof(frame));
		st = ring_read(ring, seq, buf, (i & 8) ? 64 : sizeof(buf),
		    &frame);
		FUZZ_CHECK(st == RING_OK || st == RING_EVICTED ||
		    st == RING_NOT_YET || st == RING_NOSPACE);
		if (st == RING_OK)
			FUZZ_CHECK(frame.seq == seq && frame.len > 0 &&
			    frame.len <= sizeof(buf));
		memset(&frame, 0, sizeof(frame));
		st = ring_next(ring, seq, topics, (size_t)(i % 3), &frame);
		FUZZ_CHECK(st == RING_OK || st == RING_EVICTED ||
		    st == RING_NOT_YET);
		if (st == RING_OK)
			FUZZ_CHECK(frame.seq > seq);
		(void)ring_topic_evicted(ring, (uint32_t)fuzz_rand(&rng));
	}
	/* Appending to a ring that passed the checks stays in bounds. */
	append_some(ring, 1 + (unsigned int)(rng % 24), (unsigned int)rng);
	ring_get_info(ring, &info);
	FUZZ_CHECK(info.used <= info.size);
	for (seq = ring_oldest(ring); seq <= ring_committed(ring) &&
	    seq != 0; seq++) {
		st = ring_read(ring, seq, buf, sizeof(buf), &frame);
		FUZZ_CHECK(st == RING_OK || st == RING_EVICTED);
	}
}

/* Open the file as the daemon would, and with a geometry that differs. */
static void
try_open(const uint8_t *in, size_t size)
{
	static const struct {
		uint64_t	 size;
		uint32_t	 slots;
	} geoms[] = {
		{ GEOM_SIZE, GEOM_SLOTS },
		{ GEOM_SIZE * 2, GEOM_SLOTS },
		{ GEOM_SIZE, GEOM_SLOTS * 2 },
	};
	struct ring	*ring;
	char		 err[1024];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(geoms) / sizeof(geoms[0]); i++) {
		memset(err, 'X', sizeof(err));
		rc = ring_open(&ring, path, geoms[i].size, geoms[i].slots, 0,
		    0, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == -1);
		if (rc == -1) {
			FUZZ_CHECK(ring == NULL);
			FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
			FUZZ_CHECK(strstr(err, path) != NULL);
			continue;
		}
		FUZZ_CHECK(i == 0 && ring != NULL);
		exercise(ring, in, size);
		ring_close(ring);
	}
}

/* One buffer for the file, reused: fresh pages are dear under ASan. */
static unsigned char *
file_buffer(size_t len)
{
	static unsigned char	*buf;
	static size_t		 cap;
	unsigned char		*p;

	if (len + 1 > cap) {
		if ((p = realloc(buf, len + 1)) == NULL)
			return NULL;
		buf = p;
		cap = len + 1;
	}
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	unsigned char	*file;
	size_t		 len, off, n;
	uint64_t	 sum;
	uint32_t	 where;
	int		 fd;

	if (size < 1)
		return 0;
	if (template == NULL)
		make_template();
	if (in[0] & 1) {
		/* The input is the file, perhaps padded to a ring's size. */
		len = size - 1;
		if ((in[0] & 2) && len < template_len)
			len = template_len;
		if ((file = file_buffer(len)) == NULL)
			return 0;
		memset(file, 0, len);
		memcpy(file, in + 1, size - 1);
	} else {
		/* A valid ring with bytes overwritten at an offset the input
		 * chooses; mostly in the header and the slot index. */
		if (size < 5)
			return 0;
		len = template_len;
		if ((file = file_buffer(len)) == NULL)
			return 0;
		memcpy(file, template, len);
		memcpy(&where, in + 1, sizeof(where));
		off = (in[0] & 4) ? where % 4096 :
		    (in[0] & 8) ? 4096 + where % (len - 4096) : where % len;
		n = size - 5;
		if (n > len - off)
			n = len - off;
		memcpy(file + off, in + 5, n);
		if (in[0] & 2) {
			sum = fnv(file, HDR_SUMMED);
			memcpy(file + HDR_SUMMED, &sum, sizeof(sum));
		}
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, file, len) != (ssize_t)len) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	close(fd);
	try_open(in, size);
	return 0;
}
