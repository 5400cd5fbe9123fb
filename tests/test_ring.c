/*
 * test_ring: the ring's contract: round trips, eviction by slots and bytes,
 * gaps per topic, reopen and reset, every open rejection, the hooks (the
 * high-water mark's outside the lock), batches seen whole or not at all,
 * appends with given ids (a cluster's: duplicates refused, holes read as
 * gaps), a multi-process stress run that must see no torn frame, and
 * writers killed inside the critical section (a seam:
 * -Wl,--wrap=sse_encode_id).
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include "rc_test.h"
#include "ringcast/ring.h"
#include "ringcast/sse.h"

#define KB		1024ULL
#define FRAME_MAX	8192
#define CHILDREN_MAX	16

struct fixture {
	char		*dir;
	char		*path;
	struct ring	*ring;
	char		 err[1024];
};

/* The seam: a child sets this to k, and the append dies writing its k-th
 * id line from then on (1: the next frame's). */
static volatile int	 die_in_encode_id;

size_t	__real_sse_encode_id(char *, size_t, uint64_t);
size_t	__wrap_sse_encode_id(char *, size_t, uint64_t);

size_t
__wrap_sse_encode_id(char *buf, size_t cap, uint64_t seq)
{
	size_t	 n = __real_sse_encode_id(buf, cap, seq);

	if (die_in_encode_id > 0 && --die_in_encode_id == 0) {
		/* Leave a torn id line behind, then die holding the lock. */
		memset(buf + n / 2, '?', n - n / 2);
		raise(SIGKILL);
	}
	return n;
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL || (f->dir = rc_test_tmpdir()) == NULL)
		return -1;
	if (asprintf(&f->path, "%s/ring", f->dir) == -1)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	ring_close(f->ring);
	rc_test_rmdir(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void
close_ring(struct fixture *f)
{
	ring_close(f->ring);
	f->ring = NULL;
}

static void
open_ring(struct fixture *f, uint64_t size, uint32_t slots, uint64_t floor)
{
	close_ring(f);
	if (ring_open(&f->ring, f->path, size, slots, RING_CREATE, floor,
	    f->err, sizeof(f->err)) == -1)
		fail_msg("ring_open: %s", f->err);
}

static void
reopen_ring(struct fixture *f, uint64_t size, uint32_t slots)
{
	open_ring(f, size, slots, 0);
}

/* Leave a fresh, closed ring file at f->path. */
static void
make_ring_file(struct fixture *f, uint64_t size, uint32_t slots)
{
	open_ring(f, size, slots, 0);
	close_ring(f);
}

/* The frame ring_read must return for text appended as seq. */
static size_t
expected_frame(char *buf, size_t cap, const char *text, uint64_t seq)
{
	size_t	 n;

	n = sse_encode_body(buf, cap, NULL, 0, text, strlen(text));
	assert_int_not_equal(n, 0);
	return n + sse_encode_id(buf + n, cap - n, seq);
}

static uint64_t
append_text(struct ring *ring, uint32_t topic, const char *text)
{
	char		 body[FRAME_MAX];
	size_t		 n;
	uint64_t	 seq = 0;

	n = sse_encode_body(body, sizeof(body), NULL, 0, text, strlen(text));
	assert_int_not_equal(n, 0);
	if (ring_append(ring, topic, body, n, &seq) == -1)
		fail_msg("ring_append: %s", strerror(errno));
	return seq;
}

static void
assert_frame(const struct ring *ring, uint64_t seq, uint32_t topic,
    const char *text)
{
	char			 want[FRAME_MAX], got[FRAME_MAX];
	size_t			 n;
	struct ring_frame	 frame;
	enum ring_status	 st;

	n = expected_frame(want, sizeof(want), text, seq);
	st = ring_read(ring, seq, got, sizeof(got), &frame);
	if (st != RING_OK)
		fail_msg("ring_read(%llu): status %d", (unsigned long long)seq,
		    st);
	assert_int_equal(frame.seq, seq);
	assert_int_equal(frame.topic, topic);
	assert_int_equal(frame.len, n);
	assert_memory_equal(got, want, n);
}

static enum ring_status
read_status(const struct ring *ring, uint64_t seq)
{
	char			 buf[FRAME_MAX];
	struct ring_frame	 frame;

	return ring_read(ring, seq, buf, sizeof(buf), &frame);
}

/* A text of a length that varies with seq, so frames pad at the wrap. */
static const char *
text_for(uint64_t seq)
{
	static char	 text[512];
	int		 n;

	n = snprintf(text, sizeof(text), "event %llu ",
	    (unsigned long long)seq);
	memset(text + n, 'a' + (int)(seq % 26), 40 + seq * 37 % 200);
	text[n + 40 + seq * 37 % 200] = '\0';
	return text;
}

static void
assert_error(struct fixture *f, uint64_t size, uint32_t slots,
    const char *want)
{
	struct ring	*ring = NULL;

	f->err[0] = '\0';
	assert_int_equal(ring_open(&ring, f->path, size, slots, RING_CREATE,
	    0, f->err, sizeof(f->err)), -1);
	assert_null(ring);
	if (strstr(f->err, f->path) == NULL ||
	    strstr(f->err, "ringcastctl ring reset") == NULL ||
	    strstr(f->err, want) == NULL)
		fail_msg("error '%s' lacks the path, the fix or '%s'", f->err,
		    want);
}

static void
patch_file(const char *path, off_t offset, const void *bytes, size_t len)
{
	int	 fd = open(path, O_RDWR);

	assert_true(fd != -1);
	assert_int_equal(pwrite(fd, bytes, len, offset), (ssize_t)len);
	close(fd);
}

static off_t
file_size(const char *path)
{
	struct stat	 st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Children: forked, bounded in time, always reaped. */
struct children {
	pid_t	 pid[CHILDREN_MAX];
	int	 status[CHILDREN_MAX];
	int	 n;
};

static void
children_spawn(struct children *c, int (*fn)(void *, int), void *arg,
    int index)
{
	pid_t	 pid;

	assert_true(c->n < CHILDREN_MAX);
	if ((pid = fork()) == 0)
		_exit(fn(arg, index));
	assert_true(pid > 0);
	c->pid[c->n] = pid;
	c->status[c->n++] = -1;
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reap every child; those still running after timeout seconds are killed.
 * Returns the number that did not exit 0. */
static int
children_reap(struct children *c, double timeout)
{
	double	 deadline = now() + timeout;
	int	 i, left, failed = 0, status;

	do {
		left = 0;
		for (i = 0; i < c->n; i++) {
			if (c->status[i] != -1)
				continue;
			if (waitpid(c->pid[i], &status, WNOHANG) == c->pid[i])
				c->status[i] = status;
			else
				left++;
		}
		if (left > 0)
			usleep(2000);
	} while (left > 0 && now() < deadline);
	for (i = 0; i < c->n; i++) {
		if (c->status[i] == -1) {
			kill(c->pid[i], SIGKILL);
			waitpid(c->pid[i], &c->status[i], 0);
			fprintf(stderr, "child %d timed out\n", (int)c->pid[i]);
		}
		if (!WIFEXITED(c->status[i]) || WEXITSTATUS(c->status[i]) != 0)
			failed++;
	}
	c->n = 0;
	return failed;
}

static void
test_ring_new_ring_is_empty_and_starts_at_1(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	struct ring_info	 info;

	open_ring(f, 64 * KB, 256, 0);
	assert_int_equal(ring_committed(f->ring), 0);
	assert_int_equal(ring_oldest(f->ring), 1);
	assert_int_equal(read_status(f->ring, 1), RING_NOT_YET);
	assert_int_equal(ring_next(f->ring, 0, NULL, 0, &frame),
	    RING_NOT_YET);
	assert_int_equal(append_text(f->ring, 1, "first"), 1);
	ring_get_info(f->ring, &info);
	assert_int_equal(info.committed, 1);
	assert_int_equal(info.oldest, 1);
	assert_int_equal(info.size, 64 * KB);
	assert_int_equal(info.slots, 256);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.used, strlen("data: first\nid: 1\n\n"));
	assert_true(info.created > 0);
	assert_string_equal(ring_path(f->ring), f->path);
}

static void
test_ring_append_then_read_round_trips(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 seq;

	open_ring(f, 64 * KB, 256, 0);
	seq = append_text(f->ring, 7, "hello\nworld");
	assert_frame(f->ring, seq, 7, "hello\nworld");
	seq = append_text(f->ring, 8, "");
	assert_frame(f->ring, seq, 8, "");
}

static void
test_ring_frame_ends_with_its_id_line(void **state)
{
	struct fixture		*f = *state;
	char			 body[64], buf[128];
	size_t			 n;
	uint64_t		 seq;
	struct ring_frame	 frame;

	open_ring(f, 64 * KB, 256, 41);
	n = sse_encode_body(body, sizeof(body), "tick", 4, "x", 1);
	assert_int_equal(ring_append(f->ring, 3, body, n, &seq), 0);
	assert_int_equal(seq, 42);
	assert_int_equal(ring_read(f->ring, seq, buf, sizeof(buf), &frame),
	    RING_OK);
	assert_int_equal(frame.len, strlen("event: tick\ndata: x\nid: 42\n\n"));
	assert_memory_equal(buf, "event: tick\ndata: x\nid: 42\n\n", frame.len);
}

static void
test_ring_read_reports_needed_space(void **state)
{
	struct fixture		*f = *state;
	char			 buf[8];
	struct ring_frame	 frame;
	uint64_t		 seq;

	open_ring(f, 64 * KB, 256, 0);
	seq = append_text(f->ring, 1, "too long for eight bytes");
	assert_int_equal(ring_read(f->ring, seq, buf, sizeof(buf), &frame),
	    RING_NOSPACE);
	assert_int_equal(frame.len,
	    strlen("data: too long for eight bytes\nid: 1\n\n"));
}

static void
test_ring_replay_after_wrap(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 seq, oldest;
	uint64_t	 i;

	open_ring(f, 16 * KB, 4096, 0);
	for (i = 1; i <= 2000; i++)
		assert_int_equal(append_text(f->ring, (uint32_t)(i % 3),
		    text_for(i)), i);
	oldest = ring_oldest(f->ring);
	/* 2000 frames of ~200 bytes went through 16 KiB: many laps. */
	assert_true(oldest > 1800 && oldest < 2000);
	for (seq = oldest; seq <= 2000; seq++)
		assert_frame(f->ring, seq, (uint32_t)(seq % 3), text_for(seq));
	assert_int_equal(read_status(f->ring, oldest - 1), RING_EVICTED);
}

static void
test_ring_evicts_by_slots(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 40; i++)
		append_text(f->ring, 1, text_for(i));
	assert_int_equal(ring_oldest(f->ring), 40 - 16 + 1);
	assert_int_equal(read_status(f->ring, 24), RING_EVICTED);
	for (i = 25; i <= 40; i++)
		assert_frame(f->ring, i, 1, text_for(i));
}

static void
test_ring_evicts_by_bytes(void **state)
{
	struct fixture		*f = *state;
	struct ring_info	 info;
	uint64_t		 i, bytes = 0;

	open_ring(f, 4 * KB, 1024, 0);
	for (i = 1; i <= 100; i++)
		append_text(f->ring, 1, text_for(i));
	ring_get_info(f->ring, &info);
	assert_true(info.oldest > 1);
	assert_true(info.committed - info.oldest + 1 < 1024);
	for (i = info.oldest; i <= 100; i++) {
		assert_frame(f->ring, i, 1, text_for(i));
		bytes += sse_body_size(0, text_for(i), strlen(text_for(i)));
	}
	assert_true(bytes <= 4 * KB);
	assert_true(info.used <= 4 * KB);
	assert_int_equal(read_status(f->ring, info.oldest - 1), RING_EVICTED);
}

static void
test_ring_read_tells_evicted_from_future(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 20; i++)
		append_text(f->ring, 1, "x");
	assert_int_equal(read_status(f->ring, 0), RING_EVICTED);
	assert_int_equal(read_status(f->ring, 4), RING_EVICTED);
	assert_int_equal(read_status(f->ring, 5), RING_OK);
	assert_int_equal(read_status(f->ring, 20), RING_OK);
	assert_int_equal(read_status(f->ring, 21), RING_NOT_YET);
	assert_int_equal(read_status(f->ring, UINT64_MAX), RING_NOT_YET);
}

static void
test_ring_next_filters_by_topic(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	uint32_t		 topic = 2;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, 1, "a");
	append_text(f->ring, 2, "b");
	append_text(f->ring, 1, "c");
	append_text(f->ring, 2, "d");
	append_text(f->ring, 3, "e");
	assert_int_equal(ring_next(f->ring, 0, &topic, 1, &frame), RING_OK);
	assert_int_equal(frame.seq, 2);
	assert_int_equal(frame.topic, 2);
	assert_int_equal(frame.len, strlen("data: b\nid: 2\n\n"));
	assert_int_equal(ring_next(f->ring, 2, &topic, 1, &frame), RING_OK);
	assert_int_equal(frame.seq, 4);
	/* None left: the scan says how far it looked. */
	assert_int_equal(ring_next(f->ring, 4, &topic, 1, &frame),
	    RING_NOT_YET);
	assert_int_equal(frame.seq, 5);
	assert_int_equal(ring_next(f->ring, 9, &topic, 1, &frame),
	    RING_NOT_YET);
	assert_int_equal(frame.seq, 9);
	/* No filter: every event. */
	assert_int_equal(ring_next(f->ring, 2, NULL, 0, &frame), RING_OK);
	assert_int_equal(frame.seq, 3);
}

static void
test_ring_next_filters_by_topic_set(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	const uint32_t		 topics[] = { 9, 3, 5 };
	uint64_t		 seen[8], after = 0;
	size_t			 n = 0;
	uint32_t		 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 8; i++)
		append_text(f->ring, i, "x");
	while (ring_next(f->ring, after, topics, 3, &frame) == RING_OK) {
		assert_true(n < 8);
		seen[n++] = frame.seq;
		after = frame.seq;
	}
	assert_int_equal(n, 2);
	assert_int_equal(seen[0], 3);
	assert_int_equal(seen[1], 5);
}

/* The header's newest-seq block (a cache line after the lock, at 320):
 * indexed, indexed_since, then 256 buckets; and the slot index, after the
 * header page and the 4096 entries of the evicted table. */
#define HDR_INDEXED		384
#define HDR_NEWEST(topic)	(400 + 8 * ((topic) % 256))
#define SLOT_SEQ(seq, slots)	(4096 + 4096 * 8 + 24 * ((seq) % (slots)))

/* ring_next for one topic answers status, with frame.seq == seq. */
static void
assert_next_quiet(const struct ring *ring, uint64_t after, uint32_t topic,
    enum ring_status status, uint64_t seq)
{
	struct ring_frame	 frame;

	assert_int_equal(ring_next(ring, after, &topic, 1, &frame), status);
	assert_int_equal(frame.seq, seq);
}

/* A resume on a quiet topic answers from the newest-seq table without
 * scanning: a slot broken in the middle of the busy stretch, which any scan
 * would call evicted, is never looked at. */
static void
test_ring_next_skips_the_scan_for_a_quiet_topic(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	const uint64_t		 zero = 0;
	uint32_t		 quiet = 5, busy = 6;
	uint64_t		 i;

	open_ring(f, 1024 * KB, 8192, 0);
	append_text(f->ring, quiet, "quiet");
	for (i = 2; i <= 3000; i++)
		append_text(f->ring, busy, "busy");
	patch_file(f->path, SLOT_SEQ(100, 8192), &zero, sizeof(zero));
	assert_int_equal(ring_next(f->ring, 99, NULL, 0, &frame),
	    RING_EVICTED);
	assert_next_quiet(f->ring, 1, quiet, RING_NOT_YET, 3000);
	assert_next_quiet(f->ring, 0, quiet, RING_OK, 1);
	assert_int_equal(append_text(f->ring, quiet, "again"), 3001);
	assert_next_quiet(f->ring, 2999, quiet, RING_OK, 3001);
}

/* Topics that share a bucket make the table say "maybe": the scan runs
 * and answers right. */
static void
test_ring_next_quiet_topic_sharing_a_bucket_scans(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	uint32_t		 quiet = 5, topics[] = { 7, 5 + 256 };
	uint64_t		 i;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, quiet, "quiet");
	for (i = 2; i <= 10; i++)
		append_text(f->ring, 5 + 256, "busy");
	assert_next_quiet(f->ring, 1, quiet, RING_NOT_YET, 10);
	assert_int_equal(ring_next(f->ring, 1, topics, 2, &frame), RING_OK);
	assert_int_equal(frame.seq, 2);
	append_text(f->ring, quiet, "again");
	assert_next_quiet(f->ring, 10, quiet, RING_OK, 11);
}

/* A file whose newest-seq block an older build left zero, or appends an
 * older build made: the table is not trusted for what it did not see. */
static void
test_ring_next_distrusts_appends_the_table_did_not_see(void **state)
{
	struct fixture		*f = *state;
	static char		 zeros[16 + 256 * 8];
	uint32_t		 quiet = 5;
	uint64_t		 i, old;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 3; i++)
		append_text(f->ring, quiet, "quiet");
	for (i = 4; i <= 10; i++)
		append_text(f->ring, 6, "busy");
	/* As an older build leaves the block: all zero. */
	patch_file(f->path, HDR_INDEXED, zeros, sizeof(zeros));
	assert_next_quiet(f->ring, 0, quiet, RING_OK, 1);
	/* This build appends again: trusted from there on only. */
	assert_int_equal(append_text(f->ring, 6, "busy"), 11);
	assert_next_quiet(f->ring, 2, quiet, RING_OK, 3);
	assert_next_quiet(f->ring, 3, quiet, RING_NOT_YET, 11);
	/* Seq 12 appended as an older build would: not indexed. */
	old = 3;
	assert_int_equal(append_text(f->ring, quiet, "quiet"), 12);
	i = 11;
	patch_file(f->path, HDR_INDEXED, &i, sizeof(i));
	patch_file(f->path, HDR_NEWEST(quiet), &old, sizeof(old));
	assert_next_quiet(f->ring, 11, quiet, RING_OK, 12);
	assert_int_equal(append_text(f->ring, 6, "busy"), 13);
	assert_next_quiet(f->ring, 11, quiet, RING_OK, 12);
	assert_next_quiet(f->ring, 12, quiet, RING_NOT_YET, 13);
}

static void
test_ring_next_reports_evicted_cursor(void **state)
{
	struct fixture		*f = *state;
	struct ring_frame	 frame;
	uint64_t		 i;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 20; i++)
		append_text(f->ring, 1, "x");
	assert_int_equal(ring_next(f->ring, 3, NULL, 0, &frame),
	    RING_EVICTED);
	assert_int_equal(ring_next(f->ring, 4, NULL, 0, &frame), RING_OK);
	assert_int_equal(frame.seq, 5);
}

static void
test_ring_topic_evicted_reports_per_topic(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 7, "seven");
	for (i = 11; i <= 30; i++)
		append_text(f->ring, 9, "nine");
	/* 30 events, 16 slots: 1..14 are gone. */
	assert_int_equal(ring_oldest(f->ring), 15);
	assert_int_equal(ring_topic_evicted(f->ring, 7), 10);
	assert_int_equal(ring_topic_evicted(f->ring, 9), 14);
	assert_int_equal(ring_topic_evicted(f->ring, 3), 0);
}

/* One pass gives each topic what ring_topic_stats gives it alone, and
 * counts only evicted-free events: 16 slots, topics 3, 5, 8 interleaved. */
static void
test_ring_topics_scan_matches_per_topic_stats(void **state)
{
	struct fixture		*f = *state;
	struct ring_topic_stat	 st[4] = {
		{ .topic = 3 }, { .topic = 5 }, { .topic = 8 }, { .topic = 11 }
	};
	static const uint32_t	 order[] = { 3, 5, 3, 8, 3, 5 };
	uint64_t		 i, newest, retained;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 0; i < 30; i++)
		append_text(f->ring, order[i % 6], "x");
	/* 1..14 are gone; 15..30 retained. */
	assert_int_equal(ring_topics_scan(f->ring, st, 4, 27), 30);
	for (i = 0; i < 4; i++) {
		ring_topic_stats(f->ring, st[i].topic, &newest, &retained);
		assert_int_equal(st[i].newest, newest);
		assert_int_equal(st[i].retained, retained);
	}
	/* 15..30: seq s has topic order[(s - 1) % 6]. */
	assert_int_equal(st[0].retained, 8);
	assert_int_equal(st[0].newest, 29);
	assert_int_equal(st[1].retained, 5);
	assert_int_equal(st[1].newest, 30);
	assert_int_equal(st[2].retained, 3);
	assert_int_equal(st[2].newest, 28);
	assert_int_equal(st[3].newest, 0);
	assert_int_equal(st[3].retained, 0);
	/* After 27: 28 (8), 29 (3), 30 (5). */
	assert_int_equal(st[0].recent, 1);
	assert_int_equal(st[1].recent, 1);
	assert_int_equal(st[2].recent, 1);
	assert_int_equal(st[3].recent, 0);
}

static void
test_ring_reopen_keeps_events_and_next_seq(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 5; i++)
		append_text(f->ring, 4, text_for(i));
	reopen_ring(f, 64 * KB, 256);
	assert_int_equal(ring_committed(f->ring), 5);
	for (i = 1; i <= 5; i++)
		assert_frame(f->ring, i, 4, text_for(i));
	assert_int_equal(append_text(f->ring, 4, "next"), 6);
}

static void
test_ring_reopen_ignores_seq_floor(void **state)
{
	struct fixture	*f = *state;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, 1, "a");
	open_ring(f, 64 * KB, 256, 1000);
	assert_int_equal(append_text(f->ring, 1, "b"), 2);
}

static void
test_ring_reset_starts_above_old_committed(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 5; i++)
		append_text(f->ring, 1, "x");
	close_ring(f);
	assert_int_equal(ring_reset(f->path, 64 * KB, 256, 3, f->err,
	    sizeof(f->err)), 0);
	reopen_ring(f, 64 * KB, 256);
	assert_int_equal(ring_committed(f->ring), 5);
	assert_int_equal(read_status(f->ring, 5), RING_EVICTED);
	assert_int_equal(append_text(f->ring, 1, "y"), 6);
	/* Everything before the reset is a gap for every topic. */
	assert_int_equal(ring_topic_evicted(f->ring, 2), 5);
}

static void
test_ring_reset_starts_above_seq_floor(void **state)
{
	struct fixture	*f = *state;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, 1, "x");
	close_ring(f);
	/* A new geometry is fine for a reset. */
	assert_int_equal(ring_reset(f->path, 32 * KB, 128, 100, f->err,
	    sizeof(f->err)), 0);
	reopen_ring(f, 32 * KB, 128);
	assert_int_equal(append_text(f->ring, 1, "y"), 101);
}

static void
test_ring_reset_replaces_an_unreadable_file(void **state)
{
	struct fixture	*f = *state;
	char		*path;

	path = rc_test_write(f->dir, "ring", "garbage");
	assert_non_null(path);
	free(path);
	assert_int_equal(ring_reset(f->path, 64 * KB, 256, 70, f->err,
	    sizeof(f->err)), 0);
	reopen_ring(f, 64 * KB, 256);
	assert_int_equal(append_text(f->ring, 1, "y"), 71);
}

static void
test_ring_open_without_create_fails_on_missing_file(void **state)
{
	struct fixture	*f = *state;
	struct ring	*ring = NULL;

	assert_int_equal(ring_open(&ring, f->path, 64 * KB, 256, 0, 0, f->err,
	    sizeof(f->err)), -1);
	assert_null(ring);
	assert_non_null(strstr(f->err, f->path));
	assert_int_equal(access(f->path, F_OK), -1);
}

static void
test_ring_open_rejects_empty_file(void **state)
{
	struct fixture	*f = *state;

	free(rc_test_write(f->dir, "ring", ""));
	assert_error(f, 64 * KB, 256, "empty");
}

static void
test_ring_open_rejects_truncated_file(void **state)
{
	struct fixture	*f = *state;

	make_ring_file(f, 64 * KB, 256);
	assert_int_equal(truncate(f->path, file_size(f->path) - 4096), 0);
	assert_error(f, 64 * KB, 256, "truncated");
	assert_int_equal(truncate(f->path, 100), 0);
	assert_error(f, 64 * KB, 256, "truncated");
}

static void
test_ring_open_rejects_corrupt_header(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 byte;
	int		 fd;

	make_ring_file(f, 64 * KB, 256);
	/* Flip one bit of the epoch. */
	fd = open(f->path, O_RDWR);
	assert_int_equal(pread(fd, &byte, 1, 33), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, 33), 1);
	close(fd);
	assert_error(f, 64 * KB, 256, "checksum");
	patch_file(f->path, 0, "RINGCAsT", 8);
	assert_error(f, 64 * KB, 256, "magic");
}

static void
test_ring_open_rejects_other_version(void **state)
{
	struct fixture	*f = *state;
	const uint32_t	 version = 2;

	make_ring_file(f, 64 * KB, 256);
	patch_file(f->path, 8, &version, sizeof(version));
	assert_error(f, 64 * KB, 256, "version 2");
}

static void
test_ring_open_rejects_wrong_size(void **state)
{
	struct fixture	*f = *state;

	make_ring_file(f, 64 * KB, 256);
	assert_error(f, 128 * KB, 256,
	    "size 65536 does not match [ring] size 131072");
}

static void
test_ring_open_rejects_wrong_slots(void **state)
{
	struct fixture	*f = *state;

	make_ring_file(f, 64 * KB, 256);
	assert_error(f, 64 * KB, 512,
	    "slots 256 does not match [ring] slots 512");
}

static void
test_ring_open_rejects_corrupt_state(void **state)
{
	struct fixture	*f = *state;
	const uint64_t	 oldest = 12345;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, 1, "x");
	close_ring(f);
	/* oldest lives on the header's second mutable cache line. */
	patch_file(f->path, 128, &oldest, sizeof(oldest));
	assert_error(f, 64 * KB, 256, "corrupt state");
}

/* Found by fuzz_ring_open: within the boot that made it, the lock is used
 * as the file holds it, and a corrupt type word sent glibc down a path that
 * crashed.  The lock is on the header's sixth cache line (320); glibc keeps
 * the type at offset 16 of a pthread_mutex_t. */
static void
test_ring_open_rejects_corrupt_lock_type(void **state)
{
	struct fixture	*f = *state;
	const int	 kind = 0;

	make_ring_file(f, 64 * KB, 256);
	patch_file(f->path, 320 + 16, &kind, sizeof(kind));
	assert_error(f, 64 * KB, 256, "corrupt header (writer lock)");
}

static void
test_ring_open_survives_garbage_files(void **state)
{
	struct fixture	*f = *state;
	static unsigned char	 garbage[96 * 1024];
	size_t			 i, len;
	struct ring		*ring;
	int			 round, fd;

	srandom(42);
	for (round = 0; round < 50; round++) {
		for (i = 0; i < sizeof(garbage); i++)
			garbage[i] = (unsigned char)random();
		if (round % 2 == 0)
			memcpy(garbage, "RINGCAST\1\0\0\0", 12);
		len = (size_t)random() % sizeof(garbage);
		fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0640);
		assert_true(fd != -1);
		assert_int_equal(write(fd, garbage, len), (ssize_t)len);
		close(fd);
		ring = NULL;
		assert_int_equal(ring_open(&ring, f->path, 64 * KB, 256, 0, 0,
		    f->err, sizeof(f->err)), -1);
		assert_null(ring);
		assert_non_null(strstr(f->err, "ringcastctl ring reset"));
	}
}

static void
test_ring_append_rejects_oversized_frame(void **state)
{
	struct fixture	*f = *state;
	static char	 body[16 * KB + 1];
	uint64_t	 seq = 0;

	open_ring(f, 64 * KB, 256, 0);
	memset(body, 'x', sizeof(body));
	errno = 0;
	assert_int_equal(ring_append(f->ring, 1, body, sizeof(body), &seq), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* The id line counts: body + "id: 1\n\n" must fit a quarter. */
	assert_int_equal(ring_append(f->ring, 1, body, 16 * KB - 6, &seq), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(ring_append(f->ring, 1, body, 16 * KB - 7, &seq), 0);
	assert_int_equal(seq, 1);
}

struct hook_log {
	uint64_t	 seqs[16];
	size_t		 n;
	int		 result;
};

static void
record_notify(void *arg, uint64_t seq)
{
	struct hook_log	*hooks = arg;

	if (hooks->n < 16)
		hooks->seqs[hooks->n] = seq;
	hooks->n++;
}

static int
record_hwm(void *arg, uint64_t ceiling)
{
	struct hook_log	*hooks = arg;

	if (hooks->n < 16)
		hooks->seqs[hooks->n] = ceiling;
	hooks->n++;
	return hooks->result;
}

static void
test_ring_notify_hook_sees_each_seq(void **state)
{
	struct fixture	*f = *state;
	struct hook_log	 hooks = { .n = 0 };
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	ring_set_notify(f->ring, record_notify, &hooks);
	for (i = 1; i <= 3; i++)
		append_text(f->ring, 1, "x");
	assert_int_equal(hooks.n, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(hooks.seqs[i], i + 1);
}

/* Every seq handed out is under a ceiling persisted before it, and the
 * next ceiling is persisted half a step early, so no append waits at the
 * mark; a reset starts above the persisted ceiling. */
static void
test_ring_hwm_hook_reserves_ahead_of_the_mark(void **state)
{
	struct fixture	*f = *state;
	struct hook_log	 hooks = { .n = 0 };
	char		 body[] = "data: x\n";
	uint64_t	 i, seq, ceiling;

	open_ring(f, 64 * KB, 16, 0);
	ring_set_hwm(f->ring, record_hwm, &hooks);
	append_text(f->ring, 1, "x");
	assert_int_equal(hooks.n, 1);
	assert_int_equal(hooks.seqs[0], 1 + 65536);
	for (i = 2; i <= 90000; i++) {
		assert_int_equal(ring_append(f->ring, 1, body, 8, &seq), 0);
		assert_true(hooks.n >= 1 && hooks.n <= 16);
		assert_true(seq <= hooks.seqs[hooks.n - 1]);
	}
	/* Once per half step: at 32770 (ceiling 98306) and 65539. */
	assert_int_equal(hooks.n, 3);
	assert_int_equal(hooks.seqs[1], 32770 + 65536);
	assert_int_equal(hooks.seqs[2], 65539 + 65536);
	ceiling = hooks.seqs[2];
	close_ring(f);
	assert_int_equal(ring_reset(f->path, 64 * KB, 16, 0, f->err,
	    sizeof(f->err)), 0);
	reopen_ring(f, 64 * KB, 16);
	assert_int_equal(append_text(f->ring, 1, "y"), ceiling + 1);
}

static void
test_ring_hwm_hook_failure_does_not_fail_append(void **state)
{
	struct fixture	*f = *state;
	struct hook_log	 hooks = { .n = 0, .result = -1 };

	open_ring(f, 64 * KB, 256, 0);
	ring_set_hwm(f->ring, record_hwm, &hooks);
	assert_int_equal(append_text(f->ring, 1, "x"), 1);
	assert_frame(f->ring, 1, 1, "x");
	/* Not persisted, so the next append tries again. */
	assert_int_equal(append_text(f->ring, 1, "x"), 2);
	assert_int_equal(hooks.n, 2);
	hooks.result = 0;
	append_text(f->ring, 1, "x");
	append_text(f->ring, 1, "x");
	assert_int_equal(hooks.n, 3);
}

/* A hook that, the first time it runs, has another process append burst
 * events to the same ring file through its own mapping, and waits at most a
 * second for it. */
struct hwm_race {
	struct ring	*other;		/* a second ring_open of the file */
	uint64_t	 burst;
	double		 timeout;	/* seconds the hook waits for it */
	int		 calls;
	int		 other_appended;	/* the child exited 0 in time */
	uint64_t	 ceiling;	/* the last one persisted */
};

static int
hwm_race_child(void *arg, int index)
{
	struct hwm_race	*race = arg;
	uint64_t	 i;

	(void)index;
	for (i = 0; i < race->burst; i++)
		if (append_text(race->other, 2, "other") == 0)
			return 1;
	return 0;
}

static int
hwm_race_hook(void *arg, uint64_t ceiling)
{
	struct hwm_race	*race = arg;
	struct children	 kids = { .n = 0 };

	if (race->calls++ == 0) {
		children_spawn(&kids, hwm_race_child, race, 0);
		race->other_appended = children_reap(&kids,
		    race->timeout) == 0;
	}
	race->ceiling = ceiling;
	return 0;
}

static uint64_t
hwm_race_run(struct fixture *f, struct hwm_race *race)
{
	uint64_t	 seq;

	open_ring(f, 64 * KB, 256, 0);
	assert_int_equal(ring_open(&race->other, f->path, 64 * KB, 256, 0, 0,
	    f->err, sizeof(f->err)), 0);
	ring_set_hwm(f->ring, hwm_race_hook, race);
	seq = append_text(f->ring, 1, "mine");
	ring_close(race->other);
	/* The other process was not held up by our disk I/O. */
	assert_true(race->other_appended);
	assert_int_equal(seq, race->burst + 1);
	assert_frame(f->ring, seq - 1, 2, "other");
	assert_frame(f->ring, seq, 1, "mine");
	assert_true(race->ceiling >= seq);
	return seq;
}

static void
test_ring_hwm_hook_runs_outside_the_lock(void **state)
{
	struct hwm_race	 race = { .burst = 1, .timeout = 1.0 };

	hwm_race_run(*state, &race);
	assert_int_equal(race.calls, 1);
}

/* Others appended past the ceiling reserved before the lock: the appender
 * lets go of the lock, persists a new one, and only then appends. */
static void
test_ring_hwm_burst_past_the_reservation_persists_again(void **state)
{
	struct hwm_race	 race = { .burst = 65536 + 10, .timeout = 10.0 };

	hwm_race_run(*state, &race);
	assert_int_equal(race.calls, 2);
}

/* Batches: ev[i] gets body bodies[i], the encoding of texts[i]. */
#define BATCH_MAX	64

struct batch {
	struct ring_event	 ev[BATCH_MAX];
	char			 bodies[BATCH_MAX][FRAME_MAX];
	size_t			 n;
};

static void
batch_add(struct batch *b, uint32_t topic, const char *text)
{
	size_t	 len;

	assert_true(b->n < BATCH_MAX);
	len = sse_encode_body(b->bodies[b->n], FRAME_MAX, NULL, 0, text,
	    strlen(text));
	assert_int_not_equal(len, 0);
	b->ev[b->n] = (struct ring_event){ topic, b->bodies[b->n], len };
	b->n++;
}

static uint64_t
append_batch(struct ring *ring, const struct batch *b)
{
	uint64_t	 first = 0;

	if (ring_append_batch(ring, b->ev, b->n, &first) == -1)
		fail_msg("ring_append_batch: %s", strerror(errno));
	return first;
}

static void
test_ring_batch_gets_consecutive_ids(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	append_text(f->ring, 1, "single");
	b.n = 0;
	for (i = 0; i < 5; i++)
		batch_add(&b, (uint32_t)(10 + i), text_for(i));
	assert_int_equal(append_batch(f->ring, &b), 2);
	assert_int_equal(ring_committed(f->ring), 6);
	for (i = 0; i < 5; i++)
		assert_frame(f->ring, 2 + i, (uint32_t)(10 + i), text_for(i));
	assert_int_equal(append_text(f->ring, 1, "next"), 7);
}

/* One notify per batch, with its last seq; the high-water mark covers
 * the whole batch before it is appended. */
static void
test_ring_batch_notifies_once_and_covers_its_range(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	struct hook_log	 notified = { .n = 0 }, persisted = { .n = 0 };
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	ring_set_notify(f->ring, record_notify, &notified);
	ring_set_hwm(f->ring, record_hwm, &persisted);
	b.n = 0;
	for (i = 0; i < 40; i++)
		batch_add(&b, 1, "x");
	assert_int_equal(append_batch(f->ring, &b), 1);
	assert_int_equal(notified.n, 1);
	assert_int_equal(notified.seqs[0], 40);
	assert_int_equal(persisted.n, 1);
	assert_int_equal(persisted.seqs[0], 40 + 65536);
	assert_int_equal(append_batch(f->ring, &b), 41);
	assert_int_equal(notified.n, 2);
	assert_int_equal(notified.seqs[1], 80);
	assert_int_equal(persisted.n, 1);
}

static void
assert_batch_refused(struct fixture *f, const struct batch *b, int error)
{
	uint64_t	 first = 12345;

	errno = 0;
	assert_int_equal(ring_append_batch(f->ring, b->ev, b->n, &first), -1);
	assert_int_equal(errno, error);
	assert_int_equal(first, 12345);
}

/* All or none: a batch that cannot fit appends nothing, and calls no hook. */
static void
test_ring_batch_too_big_appends_nothing(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	static char	 big[16 * KB];
	struct hook_log	 notified = { .n = 0 }, persisted = { .n = 0 };
	size_t		 i;

	open_ring(f, 64 * KB, 16, 0);
	append_text(f->ring, 1, "before");
	ring_set_notify(f->ring, record_notify, &notified);
	ring_set_hwm(f->ring, record_hwm, &persisted);
	memset(big, 'x', sizeof(big));
	b.n = 0;
	/* One frame over a quarter (with its id line), the others small. */
	batch_add(&b, 1, "small");
	b.ev[b.n++] = (struct ring_event){ 1, big, 16 * KB - 6 };
	batch_add(&b, 1, "small");
	assert_batch_refused(f, &b, EMSGSIZE);
	/* Each under a quarter, together over half. */
	b.n = 0;
	for (i = 0; i < 3; i++)
		b.ev[b.n++] = (struct ring_event){ 1, big, 11 * KB };
	assert_batch_refused(f, &b, EMSGSIZE);
	/* More events than slots. */
	b.n = 0;
	for (i = 0; i < 17; i++)
		batch_add(&b, 1, "x");
	assert_batch_refused(f, &b, EMSGSIZE);
	b.n = 0;
	assert_batch_refused(f, &b, EINVAL);
	assert_int_equal(ring_committed(f->ring), 1);
	assert_int_equal(read_status(f->ring, 2), RING_NOT_YET);
	assert_int_equal(notified.n, 0);
	assert_int_equal(persisted.n, 0);
	/* Exactly half, each exactly a quarter, and as many as slots: fine. */
	b.n = 0;
	for (i = 0; i < 2; i++)
		b.ev[b.n++] = (struct ring_event){ 3, big, 16 * KB - 7 };
	assert_int_equal(append_batch(f->ring, &b), 2);
	b.n = 0;
	for (i = 0; i < 16; i++)
		batch_add(&b, 1, "x");
	assert_int_equal(append_batch(f->ring, &b), 4);
	assert_int_equal(ring_oldest(f->ring), 4);
}

/* The size check counts each frame's own id line: seq 10's is a byte
 * longer than seq 9's. */
static void
test_ring_batch_counts_each_id_line(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	static char	 big[16 * KB];

	open_ring(f, 64 * KB, 16, 8);
	memset(big, 'x', sizeof(big));
	b.n = 0;
	batch_add(&b, 1, "nine");
	b.ev[b.n++] = (struct ring_event){ 1, big, 16 * KB - 7 };
	assert_batch_refused(f, &b, EMSGSIZE);
	assert_int_equal(ring_committed(f->ring), 8);
	b.ev[1].len = 16 * KB - 8;
	assert_int_equal(append_batch(f->ring, &b), 9);
}

/*
 * A reader racing the batches never sees part of one: every committed seq
 * it observes ends a batch, and every frame it reads is whole.
 */
#define WHOLE_BATCHES	400
#define WHOLE_BATCH	25

static int
whole_batch_reader(void *arg, int index)
{
	struct ring		*ring = arg;
	struct ring_frame	 frame;
	char			 buf[FRAME_MAX];
	uint64_t		 committed, cursor = 0;
	double			 deadline = now() + 10;
	enum ring_status	 st;

	(void)index;
	while (cursor < WHOLE_BATCHES * WHOLE_BATCH && now() < deadline) {
		committed = ring_committed(ring);
		if (committed % WHOLE_BATCH != 0)
			return 1;
		st = ring_next(ring, cursor, NULL, 0, &frame);
		if (st == RING_NOT_YET) {
			if (frame.seq % WHOLE_BATCH != 0)
				return 2;
			continue;
		}
		if (st != RING_OK)
			return 3;
		if (ring_read(ring, frame.seq, buf, sizeof(buf), &frame) !=
		    RING_OK || frame.seq != cursor + 1)
			return 4;
		/* Its batch is all there: the batch's last frame too. */
		if (ring_read(ring, (frame.seq + WHOLE_BATCH - 1) /
		    WHOLE_BATCH * WHOLE_BATCH, buf, sizeof(buf), &frame) !=
		    RING_OK)
			return 5;
		cursor++;
	}
	return cursor == WHOLE_BATCHES * WHOLE_BATCH ? 0 : 6;
}

static void
test_ring_batch_is_seen_whole_by_a_concurrent_reader(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	struct children	 kids = { .n = 0 };
	uint64_t	 i;

	/* Big enough that nothing is evicted under the reader's feet. */
	open_ring(f, 4096 * KB, 16384, 0);
	b.n = 0;
	for (i = 0; i < WHOLE_BATCH; i++)
		batch_add(&b, (uint32_t)i, text_for(i));
	children_spawn(&kids, whole_batch_reader, f->ring, 0);
	for (i = 0; i < WHOLE_BATCHES; i++) {
		assert_int_equal(append_batch(f->ring, &b),
		    i * WHOLE_BATCH + 1);
		if (i % 8 == 0)
			sched_yield();
	}
	assert_int_equal(children_reap(&kids, 15), 0);
}

/* A batch that evicts by slots: the old topic's gap is recorded, the
 * batch is whole, and other topics cry no wolf. */
static void
test_ring_batch_evicts_by_slots_and_records_the_gap(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	uint64_t	 i;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 7, text_for(i));
	b.n = 0;
	for (i = 11; i <= 22; i++)
		batch_add(&b, 9, text_for(i));
	assert_int_equal(append_batch(f->ring, &b), 11);
	/* 22 events, 16 slots: 1..6 are gone. */
	assert_int_equal(ring_oldest(f->ring), 7);
	assert_int_equal(read_status(f->ring, 6), RING_EVICTED);
	assert_int_equal(ring_topic_evicted(f->ring, 7), 6);
	assert_int_equal(ring_topic_evicted(f->ring, 9), 0);
	for (i = 7; i <= 10; i++)
		assert_frame(f->ring, i, 7, text_for(i));
	for (i = 11; i <= 22; i++)
		assert_frame(f->ring, i, 9, text_for(i));
}

/* Batches of up to half the ring, lap after lap (frames skip to the next
 * lap at the wrap): each lands whole, and every eviction is recorded. */
static void
test_ring_batch_evicts_by_bytes_across_laps(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	static uint32_t	 topic_of[4096];
	uint64_t	 gone[5] = { 0 }, seq = 0, evicted = 1, first, i, round;
	uint32_t	 topic;

	open_ring(f, 8 * KB, 1024, 0);
	for (round = 0; round < 300; round++) {
		b.n = 0;
		topic = (uint32_t)(round % 5);
		for (i = 0; i < 1 + round % 12; i++)
			batch_add(&b, topic, text_for(seq + 1 + i));
		first = append_batch(f->ring, &b);
		assert_int_equal(first, seq + 1);
		for (i = 0; i < b.n; i++) {
			assert_frame(f->ring, first + i, topic,
			    text_for(first + i));
			assert_true(first + i < 4096);
			topic_of[first + i] = topic;
		}
		seq += b.n;
		assert_int_equal(ring_committed(f->ring), seq);
		assert_true(ring_oldest(f->ring) <= first);
		/* The gap table names each topic's newest evicted event. */
		for (; evicted < ring_oldest(f->ring); evicted++)
			gone[topic_of[evicted]] = evicted;
		for (topic = 0; topic < 5; topic++)
			assert_int_equal(ring_topic_evicted(f->ring, topic),
			    gone[topic]);
	}
	/* Many laps went by. */
	assert_true(seq * 150 > 20 * 8 * KB);
}

/* ring_append_at: ids given by the caller (a cluster's stream sequence). */
static void
append_at(struct ring *ring, const struct batch *b, uint64_t first)
{
	if (ring_append_at(ring, b->ev, b->n, first) == -1)
		fail_msg("ring_append_at(%llu): %s",
		    (unsigned long long)first, strerror(errno));
}

static void
one_event(struct batch *b, uint32_t topic, const char *text)
{
	b->n = 0;
	batch_add(b, topic, text);
}

/* Consecutive given ids land as given; ring_append continues after them. */
static void
test_ring_append_at_takes_the_given_ids(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 3; i++) {
		one_event(&b, 4, text_for(i));
		append_at(f->ring, &b, i);
	}
	b.n = 0;
	for (i = 4; i <= 6; i++)
		batch_add(&b, (uint32_t)i, text_for(i));
	append_at(f->ring, &b, 4);
	assert_int_equal(ring_committed(f->ring), 6);
	assert_int_equal(ring_oldest(f->ring), 1);
	for (i = 1; i <= 3; i++)
		assert_frame(f->ring, i, 4, text_for(i));
	for (i = 4; i <= 6; i++)
		assert_frame(f->ring, i, (uint32_t)i, text_for(i));
	assert_int_equal(ring_topic_evicted(f->ring, 4), 0);
	assert_int_equal(append_text(f->ring, 1, "next"), 7);
}

/* An id the ring has, alone or leading a batch that runs past committed,
 * is refused whole: EEXIST, nothing written, no notify; 0 is EINVAL. */
static void
test_ring_append_at_refuses_an_id_it_has(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	struct hook_log	 notified = { .n = 0 };
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 5; i++)
		append_text(f->ring, 1, text_for(i));
	ring_set_notify(f->ring, record_notify, &notified);
	one_event(&b, 2, "duplicate");
	for (i = 1; i <= 5; i++) {
		errno = 0;
		assert_int_equal(ring_append_at(f->ring, b.ev, 1, i), -1);
		assert_int_equal(errno, EEXIST);
	}
	b.n = 0;
	for (i = 0; i < 4; i++)
		batch_add(&b, 2, "overlap");
	errno = 0;
	assert_int_equal(ring_append_at(f->ring, b.ev, b.n, 4), -1);
	assert_int_equal(errno, EEXIST);
	errno = 0;
	assert_int_equal(ring_append_at(f->ring, b.ev, b.n, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(notified.n, 0);
	assert_int_equal(ring_committed(f->ring), 5);
	assert_int_equal(ring_oldest(f->ring), 1);
	for (i = 1; i <= 5; i++)
		assert_frame(f->ring, i, 1, text_for(i));
	assert_int_equal(read_status(f->ring, 6), RING_NOT_YET);
	assert_int_equal(append_text(f->ring, 1, "next"), 6);
}

/* A first past committed + 1 leaves a hole: what the ring held and every
 * id in the hole read as evicted, a reader at the old end sees a gap, every
 * topic's gap covers the hole, and appends go on after the given ids. */
static void
test_ring_append_at_past_a_hole_evicts_everything_before(void **state)
{
	struct fixture		*f = *state;
	static struct batch	 b;
	struct ring_frame	 frame;
	uint32_t		 topics[] = { 1 }, topic;
	uint64_t		 i, first = 5 + 10;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 5; i++)
		append_text(f->ring, 1, text_for(i));
	b.n = 0;
	batch_add(&b, 2, text_for(first));
	batch_add(&b, 3, text_for(first + 1));
	append_at(f->ring, &b, first);
	assert_int_equal(ring_committed(f->ring), first + 1);
	assert_int_equal(ring_oldest(f->ring), first);
	for (i = 1; i < first; i++)
		assert_int_equal(read_status(f->ring, i), RING_EVICTED);
	assert_frame(f->ring, first, 2, text_for(first));
	assert_frame(f->ring, first + 1, 3, text_for(first + 1));
	/* Readers at the old end, or anywhere in the hole, see a gap. */
	assert_int_equal(ring_next(f->ring, 5, NULL, 0, &frame),
	    RING_EVICTED);
	assert_int_equal(ring_next(f->ring, 5, topics, 1, &frame),
	    RING_EVICTED);
	assert_int_equal(ring_next(f->ring, first - 2, NULL, 0, &frame),
	    RING_EVICTED);
	/* A reader at the hole's end goes on, and a quiet topic is quiet. */
	assert_int_equal(ring_next(f->ring, first - 1, NULL, 0, &frame),
	    RING_OK);
	assert_int_equal(frame.seq, first);
	assert_int_equal(ring_next(f->ring, first - 1, topics, 1, &frame),
	    RING_NOT_YET);
	for (topic = 0; topic < 5000; topic++)
		if (ring_topic_evicted(f->ring, topic) < first - 1)
			fail_msg("topic %u: evicted %llu, hole ends at %llu",
			    topic, (unsigned long long)
			    ring_topic_evicted(f->ring, topic),
			    (unsigned long long)first - 1);
	assert_int_equal(append_text(f->ring, 1, "next"), first + 2);
	assert_frame(f->ring, first + 2, 1, "next");
	assert_int_equal(ring_next(f->ring, first - 1, topics, 1, &frame),
	    RING_OK);
	assert_int_equal(frame.seq, first + 2);
	assert_int_equal(ring_oldest(f->ring), first);
}

/* A hole that wraps the slot index: the new ids reuse slots old events
 * held, and none of those old events shows through. */
static void
test_ring_append_at_hole_past_the_slot_count(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	uint64_t	 i, first = 16 * 100 + 3;

	open_ring(f, 64 * KB, 16, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 1, text_for(i));
	b.n = 0;
	for (i = 0; i < 12; i++)
		batch_add(&b, 2, text_for(first + i));
	append_at(f->ring, &b, first);
	assert_int_equal(ring_oldest(f->ring), first);
	for (i = 1; i <= 10; i++)
		assert_int_equal(read_status(f->ring, i), RING_EVICTED);
	for (i = 0; i < 12; i++)
		assert_frame(f->ring, first + i, 2, text_for(first + i));
	/* Then slot eviction works as before. */
	for (i = first + 12; i < first + 12 + 20; i++)
		append_text(f->ring, 3, text_for(i));
	assert_int_equal(ring_oldest(f->ring), first + 12 + 20 - 16);
	assert_true(ring_topic_evicted(f->ring, 2) >= first + 11);
	for (i = ring_oldest(f->ring); i < first + 12 + 20; i++)
		assert_frame(f->ring, i, 3, text_for(i));
}

/* All or none: a batch that cannot fit makes no hole and writes nothing. */
static void
test_ring_append_at_batch_is_all_or_none(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	static char	 big[5001];
	struct hook_log	 notified = { .n = 0 };
	uint64_t	 i;

	open_ring(f, 16 * KB, 256, 0);
	for (i = 1; i <= 5; i++)
		append_text(f->ring, 1, text_for(i));
	ring_set_notify(f->ring, record_notify, &notified);
	/* Three frames of 3 KB each: over half of 16 KB together. */
	memset(big, 'B', sizeof(big) - 1);
	b.n = 0;
	batch_add(&b, 2, "small");
	for (i = 0; i < 3; i++)
		batch_add(&b, 2, big + 2000);
	errno = 0;
	assert_int_equal(ring_append_at(f->ring, b.ev, b.n, 20), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(notified.n, 0);
	assert_int_equal(ring_committed(f->ring), 5);
	assert_int_equal(ring_oldest(f->ring), 1);
	assert_int_equal(ring_topic_evicted(f->ring, 1), 0);
	for (i = 1; i <= 5; i++)
		assert_frame(f->ring, i, 1, text_for(i));
	/* A batch that fits lands whole, with one notify for its end. */
	b.n = 0;
	for (i = 0; i < 3; i++)
		batch_add(&b, 2, text_for(20 + i));
	append_at(f->ring, &b, 20);
	assert_int_equal(notified.n, 1);
	assert_int_equal(notified.seqs[0], 22);
	for (i = 0; i < 3; i++)
		assert_frame(f->ring, 20 + i, 2, text_for(20 + i));
}

/* The high-water mark covers the given ids before they are used, far past
 * the old ceiling too, so a reset never hands them out again. */
static void
test_ring_append_at_reserves_the_given_ids(void **state)
{
	struct fixture	*f = *state;
	static struct batch	 b;
	struct hook_log	 hooks = { .n = 0 };
	uint64_t	 i, first = 1000000;

	open_ring(f, 64 * KB, 256, 0);
	ring_set_hwm(f->ring, record_hwm, &hooks);
	b.n = 0;
	for (i = 0; i < 3; i++)
		batch_add(&b, 1, "x");
	append_at(f->ring, &b, 1000);
	assert_int_equal(hooks.n, 1);
	assert_true(hooks.seqs[0] >= 1002);
	assert_int_equal(hooks.seqs[0], 1002 + 65536);
	/* Within the reserved step: no new ceiling. */
	append_at(f->ring, &b, 1003);
	assert_int_equal(hooks.n, 1);
	/* Far past it: a new ceiling covering the batch, before it lands. */
	append_at(f->ring, &b, first);
	assert_int_equal(hooks.n, 2);
	assert_true(hooks.seqs[1] >= first + 2);
	assert_int_equal(ring_committed(f->ring), first + 2);
	close_ring(f);
	assert_int_equal(ring_reset(f->path, 64 * KB, 256, 0, f->err,
	    sizeof(f->err)), 0);
	reopen_ring(f, 64 * KB, 256);
	assert_true(append_text(f->ring, 1, "y") > first + 2);
}

/* Concurrent creators: each child opens with RING_CREATE at once. */
struct creators {
	const char	*path;
	int		 go[2];
	uint64_t	*epochs;	/* shared with the children */
};

static int
creator_child(void *arg, int index)
{
	struct creators		*c = arg;
	struct ring		*ring;
	struct ring_info	 info;
	char			 err[512], byte;

	close(c->go[1]);
	if (read(c->go[0], &byte, 1) != 0)
		return 2;
	if (ring_open(&ring, c->path, 64 * KB, 256, RING_CREATE, 0, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "creator %d: %s\n", index, err);
		return 1;
	}
	ring_get_info(ring, &info);
	c->epochs[index] = info.epoch;
	ring_close(ring);
	return 0;
}

static void
test_ring_concurrent_creators_share_one_ring(void **state)
{
	struct fixture		*f = *state;
	struct creators		 c = { .path = f->path };
	struct children		 kids = { .n = 0 };
	char			*other;
	int			 i;

	c.epochs = mmap(NULL, 8 * sizeof(uint64_t), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(c.epochs != MAP_FAILED);
	assert_int_equal(pipe(c.go), 0);
	for (i = 0; i < 8; i++)
		children_spawn(&kids, creator_child, &c, i);
	close(c.go[0]);
	close(c.go[1]);		/* go */
	assert_int_equal(children_reap(&kids, 20), 0);
	for (i = 1; i < 8; i++)
		assert_true(c.epochs[i] == c.epochs[0]);
	/* No temporary file is left behind. */
	assert_int_equal(asprintf(&other, "ls -A '%s' | grep -vx ring",
	    f->dir), (int)strlen(f->dir) + 24);
	assert_int_not_equal(system(other), 0);
	free(other);
	munmap(c.epochs, 8 * sizeof(uint64_t));
}

/*
 * Stress: writers append self-checking payloads "W C filler HASH", alone or
 * in batches, while readers follow the ring (odd ones one writer's topic)
 * and also read its oldest events, the ones most likely to be overwritten
 * during their copy.  Every frame a reader accepts must be whole, and a
 * reader may miss a writer's event only after an eviction.
 */
#define STRESS_WRITERS		4
#define STRESS_READERS		4
#define STRESS_SECONDS		1.5
#define STRESS_SIZE		(64 * KB)

struct stress {
	struct ring	*ring;
	double		 deadline;
	int		 report[2];
	volatile int	*writers_left;	/* shared */
};

struct stress_report {
	int		 reader;
	uint64_t	 followed;	/* frames accepted following the ring */
	uint64_t	 sampled;	/* frames accepted reading the oldest */
	uint64_t	 evicted;
	char		 error[160];
};

static uint64_t
fnv1a(const char *p, size_t len)
{
	uint64_t	 hash = 0xcbf29ce484222325ULL;

	while (len-- > 0) {
		hash ^= (unsigned char)*p++;
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static size_t
stress_payload(char *buf, size_t cap, int writer, uint64_t counter)
{
	char	 text[512];
	int	 n;
	size_t	 fill = (size_t)(counter * 131 + (uint64_t)writer * 17) % 300;

	n = snprintf(text, sizeof(text), "%d %llu ", writer,
	    (unsigned long long)counter);
	memset(text + n, 'A' + (int)((counter + (uint64_t)writer) % 26), fill);
	n += (int)fill;
	n += snprintf(text + n, sizeof(text) - (size_t)n, " %016llx",
	    (unsigned long long)fnv1a(text, (size_t)n));
	return sse_encode_body(buf, cap, NULL, 0, text, (size_t)n);
}

/* Even writers append one event at a time, odd ones in batches of 1-8. */
static int
stress_writer(void *arg, int writer)
{
	struct stress		*s = arg;
	char			 body[8][1024];
	struct ring_event	 ev[8];
	uint64_t		 counter, seq;
	size_t			 n, i;

	for (counter = 1; now() < s->deadline; counter += n) {
		n = writer % 2 == 0 ? 1 : 1 + counter % 8;
		for (i = 0; i < n; i++)
			ev[i] = (struct ring_event){ (uint32_t)writer,
			    body[i], stress_payload(body[i], sizeof(body[i]),
			    writer, counter + i) };
		if (ring_append_batch(s->ring, ev, n, &seq) == -1)
			return 1;
	}
	__atomic_sub_fetch(s->writers_left, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Check a frame's shape and hash; returns NULL or what is wrong. */
static const char *
stress_check(const char *buf, size_t len, uint64_t seq, int *writer,
    uint64_t *counter)
{
	char		 id[SSE_ID_MAX], text[512];
	const char	*nl;
	size_t		 idlen = sse_encode_id(id, sizeof(id), seq), tlen;
	char		*end;

	if (len < 6 + idlen || memcmp(buf, "data: ", 6) != 0)
		return "no data line";
	if (memcmp(buf + len - idlen, id, idlen) != 0)
		return "id line is not id: seq";
	nl = memchr(buf + 6, '\n', len - 6);
	if (nl == NULL || (size_t)(nl + 1 - buf) != len - idlen)
		return "not one data line before the id";
	tlen = (size_t)(nl - (buf + 6));
	if (tlen < 18 || tlen >= sizeof(text))
		return "payload length";
	memcpy(text, buf + 6, tlen);
	text[tlen] = '\0';
	if (strtoull(text + tlen - 16, NULL, 16) !=
	    fnv1a(text, tlen - 17) || text[tlen - 17] != ' ')
		return "payload hash";
	*writer = (int)strtol(text, &end, 10);
	*counter = strtoull(end, NULL, 10);
	if (*writer < 0 || *writer >= STRESS_WRITERS)
		return "writer id";
	return NULL;
}

static int
stress_reader(void *arg, int reader)
{
	struct stress		*s = arg;
	struct stress_report	 r = { .reader = reader };
	struct ring_frame	 frame;
	uint64_t		 last_counter[STRESS_WRITERS] = { 0 };
	uint64_t		 cursor = 0, seq, counter;
	uint32_t		 topic = (uint32_t)(reader % STRESS_WRITERS);
	char			 buf[1024];
	const char		*why = NULL;
	enum ring_status	 st;
	int			 writer, i, lost = 0;
	size_t			 ntopics = reader % 2;	/* odd: one topic */

	while (why == NULL && now() < s->deadline + 5) {
		st = ring_next(s->ring, cursor, &topic, ntopics, &frame);
		if (st == RING_EVICTED) {
			r.evicted++;
			lost = ~0;
			cursor = ring_oldest(s->ring) - 1;
			continue;
		}
		if (st == RING_NOT_YET) {
			/* None for us up to frame.seq. */
			cursor = frame.seq;
			if (__atomic_load_n(s->writers_left,
			    __ATOMIC_ACQUIRE) == 0 &&
			    cursor == ring_committed(s->ring))
				break;
			sched_yield();
			continue;
		}
		st = ring_read(s->ring, frame.seq, buf, sizeof(buf), &frame);
		if (st == RING_EVICTED) {
			r.evicted++;
			lost = ~0;
			continue;
		}
		if (st != RING_OK) {
			why = "ring_read status";
			break;
		}
		if (frame.seq <= cursor)
			why = "seq went backwards";
		else if (ntopics > 0 && frame.topic != topic)
			why = "another topic's event";
		else if ((why = stress_check(buf, frame.len, frame.seq,
		    &writer, &counter)) == NULL) {
			if (counter <= last_counter[writer])
				why = "writer counter went backwards";
			/* Each writer's counters are consecutive: a hole
			 * with no eviction seen is an event skipped. */
			else if (counter != last_counter[writer] + 1 &&
			    !(lost & (1 << writer)))
				why = "an event skipped";
			last_counter[writer] = counter;
			lost &= ~(1 << writer);
		}
		cursor = frame.seq;
		r.followed++;
		/* Now a few reads at the tail, racing the writers. */
		for (i = 0; i < 4 && why == NULL; i++) {
			seq = ring_oldest(s->ring) + (uint64_t)i;
			if (ring_read(s->ring, seq, buf, sizeof(buf),
			    &frame) != RING_OK)
				continue;
			if ((why = stress_check(buf, frame.len, seq, &writer,
			    &counter)) == NULL && frame.seq == seq)
				r.sampled++;
		}
	}
	if (why != NULL)
		snprintf(r.error, sizeof(r.error), "reader %d at %llu: %s",
		    reader, (unsigned long long)cursor, why);
	if (write(s->report[1], &r, sizeof(r)) != sizeof(r))
		return 3;
	return why == NULL ? 0 : 1;
}

/* Run the stress on a ring of slots slots; 256 make slots run out first,
 * 4096 make bytes run out first. */
static void
stress_run(struct fixture *f, uint32_t slots)
{
	struct stress		 s;
	struct children		 kids = { .n = 0 };
	struct stress_report	 r;
	struct ring_info	 info;
	uint64_t		 followed = 0, sampled = 0;
	int			 i, failed, reports = 0;

	open_ring(f, STRESS_SIZE, slots, 0);
	s.ring = f->ring;
	s.deadline = now() + STRESS_SECONDS;
	assert_int_equal(pipe(s.report), 0);
	s.writers_left = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s.writers_left != MAP_FAILED);
	*s.writers_left = STRESS_WRITERS;
	for (i = 0; i < STRESS_READERS; i++)
		children_spawn(&kids, stress_reader, &s, i);
	for (i = 0; i < STRESS_WRITERS; i++)
		children_spawn(&kids, stress_writer, &s, i);
	close(s.report[1]);
	failed = children_reap(&kids, STRESS_SECONDS + 10);
	while (read(s.report[0], &r, sizeof(r)) == sizeof(r)) {
		reports++;
		if (r.error[0] != '\0')
			fprintf(stderr, "%s\n", r.error);
		followed += r.followed;
		sampled += r.sampled;
	}
	close(s.report[0]);
	munmap((void *)s.writers_left, sizeof(int));
	ring_get_info(f->ring, &info);
	fprintf(stderr, "stress, %u slots: %llu events, %llu laps, readers "
	    "accepted %llu following and %llu at the tail\n", slots,
	    (unsigned long long)info.committed,
	    (unsigned long long)(info.committed * 200 / STRESS_SIZE),
	    (unsigned long long)followed, (unsigned long long)sampled);
	assert_int_equal(failed, 0);
	assert_int_equal(reports, STRESS_READERS);
	/* Enough traffic to wrap the ring many times over. */
	assert_true(info.committed * 200 > 50 * STRESS_SIZE);
	assert_true(followed > 0);
}

static void
test_ring_stress_evicting_by_slots_sees_no_torn_frame(void **state)
{
	stress_run(*state, 256);
}

static void
test_ring_stress_evicting_by_bytes_sees_no_torn_frame(void **state)
{
	stress_run(*state, 4096);
}

/* Killed writers: a child appends and dies where the test says. */
struct killed {
	struct ring	*ring;
	const char	*text;
	int		 in_hwm;
	int		 batch;		/* > 0: a batch of this many, dying */
	int		 die_at;	/* ... writing this frame's id */
	uint64_t	 at;		/* > 0: ring_append_at this id */
};

static int
die_in_hwm(void *arg, uint64_t ceiling)
{
	(void)arg;
	(void)ceiling;
	raise(SIGKILL);
	return 0;
}

static int
killed_child(void *arg, int index)
{
	struct killed	*k = arg;
	char		 body[FRAME_MAX];
	size_t		 n;
	uint64_t	 seq;

	struct ring_event	 ev[8];
	int			 i;

	(void)index;
	n = sse_encode_body(body, sizeof(body), NULL, 0, k->text,
	    strlen(k->text));
	if (k->in_hwm)
		ring_set_hwm(k->ring, die_in_hwm, NULL);
	else
		die_in_encode_id = k->batch > 0 ? k->die_at : 1;
	if (k->batch > 0) {
		for (i = 0; i < k->batch && i < 8; i++)
			ev[i] = (struct ring_event){ 5, body, n };
		ring_append_batch(k->ring, ev, (size_t)i, &seq);
	} else if (k->at > 0) {
		ev[0] = (struct ring_event){ 5, body, n };
		ring_append_at(k->ring, ev, 1, k->at);
	} else
		ring_append(k->ring, 5, body, n, &seq);
	return 0;	/* not reached: the append dies */
}

/* Run the append k describes, which dies; it must die by SIGKILL. */
static void
kill_appender(struct killed *k)
{
	struct children	 kids = { .n = 0 };

	children_spawn(&kids, killed_child, k, 0);
	assert_int_equal(children_reap(&kids, 10), 1);
	assert_true(WIFSIGNALED(kids.status[0]));
	assert_int_equal(WTERMSIG(kids.status[0]), SIGKILL);
}

static void
kill_an_append(struct ring *ring, const char *text, int in_hwm)
{
	struct killed	 k = { ring, text, in_hwm, 0, 0, 0 };

	kill_appender(&k);
}

/* After a writer died: earlier events intact, the dead one invisible, and
 * the ring goes on. */
static void
assert_recovered(struct ring *ring, uint64_t oldest, uint64_t committed)
{
	struct ring_frame	 frame;
	uint64_t		 seq;

	assert_int_equal(ring_committed(ring), committed);
	assert_int_equal(read_status(ring, committed + 1), RING_NOT_YET);
	assert_int_equal(ring_next(ring, committed, NULL, 0, &frame),
	    RING_NOT_YET);
	for (seq = oldest; seq <= committed; seq++)
		assert_frame(ring, seq, 1, text_for(seq));
	assert_int_equal(append_text(ring, 2, "after"), committed + 1);
	assert_frame(ring, committed + 1, 2, "after");
	assert_int_equal(append_text(ring, 2, "again"), committed + 2);
	assert_frame(ring, committed + 2, 2, "again");
	for (seq = ring_oldest(ring); seq <= committed; seq++)
		assert_frame(ring, seq, 1, text_for(seq));
}

static void
test_ring_recovers_writer_killed_before_commit(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 1, text_for(i));
	kill_an_append(f->ring, "half-written", 0);
	assert_recovered(f->ring, 1, 10);
}

static void
test_ring_recovers_writer_killed_after_evicting(void **state)
{
	struct fixture	*f = *state;
	static char	 big[3000];
	uint64_t	 i, oldest;

	open_ring(f, 16 * KB, 256, 0);
	for (i = 1; i <= 200; i++)
		append_text(f->ring, 1, text_for(i));
	oldest = ring_oldest(f->ring);
	/* A big event must evict several to fit. */
	memset(big, 'B', sizeof(big) - 1);
	kill_an_append(f->ring, big, 0);
	assert_true(ring_oldest(f->ring) > oldest + 5);
	assert_int_equal(read_status(f->ring, oldest), RING_EVICTED);
	assert_true(ring_topic_evicted(f->ring, 1) >= ring_oldest(f->ring) - 1);
	assert_recovered(f->ring, ring_oldest(f->ring), 200);
}

static void
test_ring_recovers_writer_killed_holding_the_lock(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 3; i++)
		append_text(f->ring, 1, text_for(i));
	kill_an_append(f->ring, "never", 1);
	assert_recovered(f->ring, 1, 3);
}

static void
test_ring_recovers_writer_killed_inside_a_batch(void **state)
{
	struct fixture	*f = *state;
	struct killed	 k = { NULL, "batched", 0, 6, 4, 0 };
	uint64_t	 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 1, text_for(i));
	/* Frames 11, 12, 13 are written, 14 is torn: none may show. */
	k.ring = f->ring;
	kill_appender(&k);
	assert_recovered(f->ring, 1, 10);
	assert_int_equal(read_status(f->ring, 13), RING_NOT_YET);
}

/* Dead inside an append_at past a hole, after the hole was made: the
 * next seq is committed + 1 again, so what comes next must be readable
 * (the hole is not there yet).  The old events stay evicted. */
static void
test_ring_recovers_writer_killed_past_a_hole(void **state)
{
	struct fixture		*f = *state;
	struct killed		 k = { NULL, "past the hole", 0, 0, 0, 30 };
	struct ring_frame	 frame;
	uint64_t		 i;

	open_ring(f, 64 * KB, 256, 0);
	for (i = 1; i <= 10; i++)
		append_text(f->ring, 1, text_for(i));
	k.ring = f->ring;
	kill_appender(&k);
	assert_int_equal(ring_committed(f->ring), 10);
	assert_int_equal(read_status(f->ring, 30), RING_NOT_YET);
	assert_int_equal(ring_next(f->ring, 10, NULL, 0, &frame),
	    RING_NOT_YET);
	assert_int_equal(append_text(f->ring, 2, "after"), 11);
	assert_frame(f->ring, 11, 2, "after");
	assert_true(ring_oldest(f->ring) <= 11);
	assert_int_equal(ring_next(f->ring, 10, NULL, 0, &frame), RING_OK);
	assert_int_equal(frame.seq, 11);
	/* The retry of the dead append makes its hole again. */
	assert_int_equal(ring_append_at(f->ring, &(struct ring_event){ 5,
	    "data: x\n", 8 }, 1, 30), 0);
	assert_int_equal(ring_oldest(f->ring), 30);
	assert_int_equal(read_status(f->ring, 11), RING_EVICTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_ring_new_ring_is_empty_and_starts_at_1),
		T(test_ring_append_then_read_round_trips),
		T(test_ring_frame_ends_with_its_id_line),
		T(test_ring_read_reports_needed_space),
		T(test_ring_replay_after_wrap),
		T(test_ring_evicts_by_slots),
		T(test_ring_evicts_by_bytes),
		T(test_ring_read_tells_evicted_from_future),
		T(test_ring_next_filters_by_topic),
		T(test_ring_next_filters_by_topic_set),
		T(test_ring_next_reports_evicted_cursor),
		T(test_ring_next_skips_the_scan_for_a_quiet_topic),
		T(test_ring_next_quiet_topic_sharing_a_bucket_scans),
		T(test_ring_next_distrusts_appends_the_table_did_not_see),
		T(test_ring_topic_evicted_reports_per_topic),
		T(test_ring_topics_scan_matches_per_topic_stats),
		T(test_ring_reopen_keeps_events_and_next_seq),
		T(test_ring_reopen_ignores_seq_floor),
		T(test_ring_reset_starts_above_old_committed),
		T(test_ring_reset_starts_above_seq_floor),
		T(test_ring_reset_replaces_an_unreadable_file),
		T(test_ring_open_without_create_fails_on_missing_file),
		T(test_ring_open_rejects_empty_file),
		T(test_ring_open_rejects_truncated_file),
		T(test_ring_open_rejects_corrupt_header),
		T(test_ring_open_rejects_other_version),
		T(test_ring_open_rejects_wrong_size),
		T(test_ring_open_rejects_wrong_slots),
		T(test_ring_open_rejects_corrupt_state),
		T(test_ring_open_rejects_corrupt_lock_type),
		T(test_ring_open_survives_garbage_files),
		T(test_ring_append_rejects_oversized_frame),
		T(test_ring_notify_hook_sees_each_seq),
		T(test_ring_hwm_hook_reserves_ahead_of_the_mark),
		T(test_ring_hwm_hook_failure_does_not_fail_append),
		T(test_ring_hwm_hook_runs_outside_the_lock),
		T(test_ring_hwm_burst_past_the_reservation_persists_again),
		T(test_ring_batch_gets_consecutive_ids),
		T(test_ring_batch_notifies_once_and_covers_its_range),
		T(test_ring_batch_too_big_appends_nothing),
		T(test_ring_batch_counts_each_id_line),
		T(test_ring_batch_is_seen_whole_by_a_concurrent_reader),
		T(test_ring_batch_evicts_by_slots_and_records_the_gap),
		T(test_ring_batch_evicts_by_bytes_across_laps),
		T(test_ring_append_at_takes_the_given_ids),
		T(test_ring_append_at_refuses_an_id_it_has),
		T(test_ring_append_at_past_a_hole_evicts_everything_before),
		T(test_ring_append_at_hole_past_the_slot_count),
		T(test_ring_append_at_batch_is_all_or_none),
		T(test_ring_append_at_reserves_the_given_ids),
		T(test_ring_concurrent_creators_share_one_ring),
		T(test_ring_stress_evicting_by_slots_sees_no_torn_frame),
		T(test_ring_stress_evicting_by_bytes_sees_no_torn_frame),
		T(test_ring_recovers_writer_killed_before_commit),
		T(test_ring_recovers_writer_killed_after_evicting),
		T(test_ring_recovers_writer_killed_holding_the_lock),
		T(test_ring_recovers_writer_killed_inside_a_batch),
		T(test_ring_recovers_writer_killed_past_a_hole),
#undef T
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
