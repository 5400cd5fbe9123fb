/*
 * test_history: the history store against a real ring file: what is kept
 * (topics with history only, the newest N, the young), what is said lost
 * (a topic's floor: trimmed, evicted before it was read, dropped on a full
 * map, a ring replaced), and that an archiver killed mid-batch resumes
 * without a duplicate or a hole.
 */
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <time.h>

#include "rc_test.h"
#include "ringcast/history.h"
#include "ringcast/ring.h"
#include "ringcast/sse.h"

#define KB		1024ULL
#define MB		(1024 * KB)
#define FRAME_MAX	4096
#define QUIET		1	/* topic with history */
#define BUSY		2	/* topic without */
#define AGED		3	/* topic with an age bound */
#define SEQS_MAX	4096

struct fixture {
	char		*dir;
	char		*ring_path;
	char		*hist_path;
	struct ring	*ring;
	struct history	*hist;
	uint32_t	 keep;		/* QUIET's keep */
	int		 quiet_off;	/* QUIET's history turned off */
	char		 err[1024];
};

/* What one history_read handed over. */
struct taken {
	uint64_t	 seqs[SEQS_MAX];
	size_t		 n;
	int		 bytes_ok;
	const struct ring *ring;
};

static int
retention(void *arg, uint32_t topic, struct history_retention *r)
{
	struct fixture	*f = arg;

	r->keep = 0;
	r->max_age_ms = 0;
	if (topic == QUIET && !f->quiet_off)
		r->keep = f->keep;
	else if (topic == AGED)
		r->max_age_ms = 1000;
	return r->keep != 0 || r->max_age_ms != 0;
}

static void
open_ring(struct fixture *f, uint64_t size, uint32_t slots)
{
	ring_close(f->ring);
	f->ring = NULL;
	if (ring_open(&f->ring, f->ring_path, size, slots, RING_CREATE, 0,
	    f->err, sizeof(f->err)) == -1)
		fail_msg("ring_open: %s", f->err);
}

static void
open_history(struct fixture *f, uint64_t map_size)
{
	history_close(f->hist);
	f->hist = NULL;
	if (history_open(&f->hist, f->hist_path, map_size, HISTORY_CREATE,
	    f->err, sizeof(f->err)) == -1)
		fail_msg("history_open: %s", f->err);
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL || (f->dir = rc_test_tmpdir()) == NULL)
		return -1;
	if (asprintf(&f->ring_path, "%s/ring", f->dir) == -1 ||
	    asprintf(&f->hist_path, "%s/history", f->dir) == -1)
		return -1;
	f->keep = 100;
	open_ring(f, 1 * MB, 8192);
	open_history(f, 16 * MB);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	history_close(f->hist);
	ring_close(f->ring);
	rc_test_rmdir(f->dir);
	free(f->ring_path);
	free(f->hist_path);
	free(f);
	return 0;
}

static uint64_t
append(struct fixture *f, uint32_t topic, size_t bytes)
{
	char		 text[FRAME_MAX], body[FRAME_MAX + 64];
	size_t		 n;
	uint64_t	 seq = 0;

	assert_true(bytes < sizeof(text));
	memset(text, 'a' + (int)(topic % 26), bytes);
	text[bytes] = '\0';
	n = sse_encode_body(body, sizeof(body), NULL, 0, text, bytes);
	assert_int_not_equal(n, 0);
	if (ring_append(f->ring, topic, body, n, &seq) == -1)
		fail_msg("ring_append: %s", strerror(errno));
	return seq;
}

/* Archive everything there is, in batches of max_events. */
static struct history_result
archive_all(struct fixture *f, uint64_t now_ms, size_t max_events)
{
	struct history_result	 res, sum;
	int			 n;

	memset(&sum, 0, sizeof(sum));
	do {
		n = history_archive(f->hist, f->ring, retention, f,
		    max_events, now_ms, 1, &res);
		if (n == -1)
			fail_msg("history_archive: %s", history_error(f->hist));
		sum.stored += res.stored;
		sum.trimmed += res.trimmed;
		sum.dropped += res.dropped;
		sum.archived = res.archived;
	} while (n > 0);
	return sum;
}

static int
take(void *arg, uint64_t seq, uint32_t topic, const void *frame, size_t len)
{
	struct taken	*t = arg;
	char		 want[FRAME_MAX + 64];
	struct ring_frame fr;

	(void)topic;
	if (t->n == SEQS_MAX)
		return 1;
	t->seqs[t->n++] = seq;
	/* While the ring still holds it, the bytes are the ring's. */
	if (t->ring != NULL && ring_read(t->ring, seq, want, sizeof(want),
	    &fr) == RING_OK && (fr.len != len || memcmp(want, frame, len) != 0))
		t->bytes_ok = 0;
	return 0;
}

static struct history_view
read_all(struct fixture *f, uint64_t after, const uint32_t *topics, size_t n,
    struct taken *t)
{
	struct history_view	 view;

	memset(t, 0, sizeof(*t));
	t->bytes_ok = 1;
	t->ring = f->ring;
	if (history_read(f->hist, after, topics, n, SEQS_MAX, take, t,
	    &view) == -1)
		fail_msg("history_read: %s", history_error(f->hist));
	return view;
}

/* ringcastctl ring reset: a new ring above seq_floor, a high-water mark
 * above the old ring's newest as the catalog's usually is, so the ids in
 * between never existed. */
static void
reset_ring(struct fixture *f, uint64_t seq_floor)
{
	ring_close(f->ring);
	f->ring = NULL;
	assert_int_equal(ring_reset(f->ring_path, 1 * MB, 8192, seq_floor,
	    f->err, sizeof(f->err)), 0);
	open_ring(f, 1 * MB, 8192);
}

static void
test_history_keeps_only_topics_with_history(void **state)
{
	struct fixture		*f = *state;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET, busy = BUSY;
	uint64_t		 q1, q2;

	append(f, BUSY, 10);
	q1 = append(f, QUIET, 10);
	append(f, BUSY, 10);
	q2 = append(f, QUIET, 20);
	assert_int_equal(archive_all(f, 1000, 64).stored, 2);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_true(view.complete);
	assert_int_equal(view.floor, q1 - 1);
	assert_int_equal(view.archived, ring_committed(f->ring));
	assert_int_equal(t.n, 2);
	assert_int_equal(t.seqs[0], q1);
	assert_int_equal(t.seqs[1], q2);
	assert_true(t.bytes_ok);
	view = read_all(f, 0, &busy, 1, &t);
	assert_false(view.complete);
	assert_int_equal(t.n, 0);
}

static void
test_history_trims_to_keep_and_raises_floor(void **state)
{
	struct fixture		*f = *state;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 seqs[20], count, floor;
	int			 i;

	f->keep = 5;
	for (i = 0; i < 20; i++)
		seqs[i] = append(f, QUIET, 10);
	assert_int_equal(archive_all(f, 1000, 3).trimmed, 15);
	assert_int_equal(history_topic_info(f->hist, QUIET, &count, &floor),
	    0);
	assert_int_equal(count, 5);
	assert_int_equal(floor, seqs[14]);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_int_equal(view.floor, seqs[14]);
	assert_int_equal(t.n, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(t.seqs[i], seqs[15 + i]);
}

static void
test_history_sweep_trims_a_quiet_topic_by_age(void **state)
{
	struct fixture		*f = *state;
	struct history_result	 res;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 aged = AGED;
	uint64_t		 last = 0;
	int			 i;

	for (i = 0; i < 4; i++)
		last = append(f, AGED, 10);
	archive_all(f, 10000, 64);
	view = read_all(f, 0, &aged, 1, &t);
	assert_int_equal(t.n, 4);
	/* Young still: nothing goes. */
	assert_int_equal(history_sweep(f->hist, retention, f, 10500, &res), 0);
	assert_int_equal(res.trimmed, 0);
	/* Older than max_age: all of it goes, and the floor says so. */
	assert_int_equal(history_sweep(f->hist, retention, f, 11001, &res), 0);
	assert_int_equal(res.trimmed, 4);
	view = read_all(f, 0, &aged, 1, &t);
	assert_true(view.complete);
	assert_int_equal(t.n, 0);
	assert_int_equal(view.floor, last);
}

static void
test_history_purges_a_topic_turned_off(void **state)
{
	struct fixture		*f = *state;
	struct history_result	 res;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;

	append(f, QUIET, 10);
	append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	f->quiet_off = 1;
	assert_int_equal(history_sweep(f->hist, retention, f, 1000, &res), 0);
	assert_int_equal(res.trimmed, 2);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_false(view.complete);
	assert_int_equal(t.n, 0);
}

static void
test_history_read_merges_topics_in_seq_order(void **state)
{
	struct fixture		*f = *state;
	struct taken		 t;
	uint32_t		 topics[2] = { AGED, QUIET };
	uint64_t		 seqs[6];
	int			 i;

	for (i = 0; i < 6; i++)
		seqs[i] = append(f, i % 3 == 0 ? AGED : QUIET, 10);
	archive_all(f, 1000, 64);
	read_all(f, seqs[1], topics, 2, &t);
	assert_int_equal(t.n, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(t.seqs[i], seqs[2 + i]);
}

static void
test_history_eviction_before_archiving_raises_floor(void **state)
{
	struct fixture		*f = *state;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 first, last = 0;
	int			 i;

	first = append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	/* Far more than the 1 MiB ring holds, before the archiver runs. */
	for (i = 0; i < 3000; i++)
		last = append(f, QUIET, 1000);
	assert_true(ring_oldest(f->ring) > first + 1);
	archive_all(f, 1000, 64);
	view = read_all(f, 0, &quiet, 1, &t);
	/* What the ring lost before it was read is below the floor, and
	 * everything above it is held, up to the newest. */
	assert_true(view.floor >= ring_oldest(f->ring) - 1);
	assert_int_equal(t.seqs[t.n - 1], last);
	assert_int_equal(t.seqs[0], view.floor + 1);
	assert_int_equal(t.n, last - view.floor);
}

static void
test_history_full_map_drops_events_and_says_so(void **state)
{
	struct fixture		*f = *state;
	struct history_result	 res;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 last = 0;
	int			 i, n;

	open_history(f, 256 * KB);
	f->keep = 1000000;
	for (i = 0; i < 400; i++)
		last = append(f, QUIET, 2000);
	do
		n = history_archive(f->hist, f->ring, retention, f, 16, 1000,
		    1, &res);
	while (n > 0);
	assert_int_equal(n, -1);
	assert_int_equal(errno, ENOSPC);
	/* Without growth the archiver goes on, and the floor says what it
	 * dropped. */
	do {
		n = history_archive(f->hist, f->ring, retention, f, 16, 1000,
		    0, &res);
		assert_int_not_equal(n, -1);
		assert_int_equal(res.stored, 0);
	} while (n > 0);
	assert_int_equal(res.archived, last);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_int_equal(view.floor, last);
	assert_int_equal(view.archived, last);
}

static void
test_history_ring_reset_after_clean_stop_loses_nothing(void **state)
{
	struct fixture		*f = *state;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 a, b;

	a = append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	assert_int_equal(history_mark_clean(f->hist, f->ring), 0);
	reset_ring(f, a + 100);
	b = append(f, QUIET, 10);
	assert_true(b > a + 100);
	archive_all(f, 1000, 64);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_int_equal(view.floor, a - 1);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.seqs[0], a);
	assert_int_equal(t.seqs[1], b);
}

/* A replaced ring moves the position to its start at once, even before
 * its first event: readers compare it with the new ring's evicted marks. */
static void
test_history_ring_reset_moves_position_before_any_event(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 a, archived;

	a = append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	assert_int_equal(history_mark_clean(f->hist, f->ring), 0);
	reset_ring(f, a + 100);
	archive_all(f, 1000, 64);
	assert_int_equal(history_position(f->hist, &archived), 0);
	assert_int_equal(archived, ring_oldest(f->ring) - 1);
	assert_true(archived >= a + 100);
}

static void
test_history_ring_reset_after_unclean_stop_raises_floor(void **state)
{
	struct fixture		*f = *state;
	struct history_view	 view;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 a, b;

	a = append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	append(f, QUIET, 10);		/* never archived */
	reset_ring(f, a + 100);
	b = append(f, QUIET, 10);
	archive_all(f, 1000, 64);
	view = read_all(f, a, &quiet, 1, &t);
	assert_true(view.floor > a);
	assert_true(view.floor < b);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.seqs[0], b);
}

/*
 * A child archives in small batches and is SIGKILLed at a random moment,
 * again and again; then the rest is archived.  History must hold every
 * event exactly once, in order: the position and the events commit
 * together.
 */
static void
test_history_killed_archiver_resumes_without_duplicate_or_hole(void **state)
{
	struct fixture		*f = *state;
	struct history		*h;
	struct history_view	 view;
	struct history_result	 res;
	struct taken		 t;
	uint32_t		 quiet = QUIET;
	uint64_t		 first, last = 0, count, floor;
	pid_t			 pid;
	int			 i, round, status;

	f->keep = 1000000;
	first = append(f, QUIET, 10);
	for (i = 1; i < 3000; i++)
		last = append(f, i % 2 ? BUSY : QUIET, 10);
	history_close(f->hist);
	f->hist = NULL;
	srandom((unsigned int)time(NULL));
	for (round = 0; round < 20; round++) {
		if ((pid = fork()) == -1)
			fail_msg("fork: %s", strerror(errno));
		if (pid == 0) {
			if (history_open(&h, f->hist_path, 16 * MB,
			    HISTORY_CREATE, f->err, sizeof(f->err)) == -1)
				_exit(2);
			while (history_archive(h, f->ring, retention, f, 5,
			    1000, 1, &res) > 0)
				;
			_exit(0);
		}
		usleep((useconds_t)(random() % 3000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
	}
	open_history(f, 16 * MB);
	archive_all(f, 1000, 64);
	view = read_all(f, 0, &quiet, 1, &t);
	assert_int_equal(view.floor, first - 1);
	assert_int_equal(view.archived, last);
	assert_int_equal(t.n, 1500);
	for (i = 0; i < 1500; i++)
		assert_int_equal(t.seqs[i], first + 2 * (uint64_t)i);
	assert_int_equal(history_topic_info(f->hist, QUIET, &count, &floor),
	    0);
	assert_int_equal(count, 1500);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_history_keeps_only_topics_with_history),
		T(test_history_trims_to_keep_and_raises_floor),
		T(test_history_sweep_trims_a_quiet_topic_by_age),
		T(test_history_purges_a_topic_turned_off),
		T(test_history_read_merges_topics_in_seq_order),
		T(test_history_eviction_before_archiving_raises_floor),
		T(test_history_full_map_drops_events_and_says_so),
		T(test_history_ring_reset_after_clean_stop_loses_nothing),
		T(test_history_ring_reset_moves_position_before_any_event),
		T(test_history_ring_reset_after_unclean_stop_raises_floor),
		T(test_history_killed_archiver_resumes_without_duplicate_or_hole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
#undef T
}
