/*
 * test_wake: the wake module's contract: join/leave counts, a publish wakes
 * exactly the active slots with a stream of its topic and each at most once
 * until its ack, overflow, reset, the stats, and two two-process runs in
 * which no wake-up may be lost: ack against publish, and a litmus test of
 * join against publish.  Eventfds are read non-blocking, so a test that
 * expects no wake-up never waits.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include "rc_test.h"
#include "ringcast/wake.h"

#define SLOTS		4

/* The stress run: rounds of publishes, each to be seen within a bound. */
#define STRESS_ROUNDS		400
#define STRESS_PUBLISHES	50
#define STRESS_ROUND_MS		5000
#define STRESS_POLL_MS		1000
#define STRESS_TOPIC		42

/* The join litmus: up to LITMUS_TRIALS trials; past LITMUS_MS it stops
 * once LITMUS_TRIALS_MIN ran, and at LITMUS_MS_MAX whatever ran. */
#define LITMUS_TRIALS		100000
#define LITMUS_TRIALS_MIN	2000
#define LITMUS_MS		300
#define LITMUS_MS_MAX		3000

static int
setup(void **state)
{
	struct wake	*w;
	unsigned int	 i;

	if ((w = wake_create(SLOTS)) == NULL)
		return -1;
	for (i = 0; i < SLOTS; i++)
		wake_set_active(w, i, 1);
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	wake_destroy(*state);
	return 0;
}

/* The eventfd's counter, drained: 0 when nobody wrote it. */
static uint64_t
woken(struct wake *w, unsigned int slot)
{
	uint64_t	 value;
	ssize_t		 n;

	n = read(wake_fd(w, slot), &value, sizeof(value));
	if (n == -1 && errno == EAGAIN)
		return 0;
	assert_int_equal(n, sizeof(value));
	return value;
}

/* Which slots the last publish woke, as a bit mask; drains and acks all. */
static unsigned int
woken_mask(struct wake *w)
{
	unsigned int	 i, mask = 0;

	for (i = 0; i < SLOTS; i++) {
		if (woken(w, i) != 0)
			mask |= 1u << i;
		wake_ack(w, i);
	}
	return mask;
}

static void
join(struct wake *w, unsigned int slot, uint32_t topic, int times)
{
	while (times-- > 0)
		assert_int_equal(wake_join(w, slot, topic), 0);
}

static void
test_wake_create_rejects_zero_slots(void **state)
{
	(void)state;
	errno = 0;
	assert_null(wake_create(0));
	assert_int_equal(errno, EINVAL);
}

static void
test_wake_fds_are_distinct_nonblocking_cloexec(void **state)
{
	struct wake	*w = *state;
	unsigned int	 i, j;
	int		 fd;

	for (i = 0; i < SLOTS; i++) {
		fd = wake_fd(w, i);
		assert_true(fd >= 0);
		assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		for (j = 0; j < i; j++)
			assert_int_not_equal(fd, wake_fd(w, j));
	}
	assert_int_equal(wake_fd(w, SLOTS), -1);
}

static void
test_wake_join_and_leave_count_streams(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 7, 2);
	join(w, 1, 7, 1);
	join(w, 1, 8, 1);
	assert_int_equal(wake_topic_streams(w, 7), 3);
	assert_int_equal(wake_topic_streams(w, 8), 1);
	assert_int_equal(wake_topic_streams(w, 9), 0);
	assert_int_equal(wake_leave(w, 0, 7), 0);
	assert_int_equal(wake_topic_streams(w, 7), 2);
	assert_int_equal(wake_leave(w, 0, 7), 0);
	assert_int_equal(wake_leave(w, 1, 7), 0);
	assert_int_equal(wake_topic_streams(w, 7), 0);
	assert_int_equal(wake_topic_streams(w, 8), 1);
}

static void
test_wake_counts_many_topics_through_collisions(void **state)
{
	struct wake	*w = *state;
	uint32_t	 topic;

	/* Near the load limit, so probes collide and run past each other. */
	for (topic = 1; topic <= WAKE_TABLE_LOAD_MAX - 1000; topic++)
		join(w, 0, topic * 16384 + 3, (int)(topic % 3) + 1);
	for (topic = 1; topic <= WAKE_TABLE_LOAD_MAX - 1000; topic++)
		assert_int_equal(wake_topic_streams(w, topic * 16384 + 3),
		    topic % 3 + 1);
	assert_int_equal(wake_topic_streams(w, 16384 + 4), 0);
}

static void
test_wake_leave_rejects_unknown_topic(void **state)
{
	struct wake	*w = *state;

	errno = 0;
	assert_int_equal(wake_leave(w, 0, 5), -1);
	assert_int_equal(errno, ENOENT);
	join(w, 0, 5, 1);
	assert_int_equal(wake_leave(w, 0, 5), 0);
	errno = 0;
	assert_int_equal(wake_leave(w, 0, 5), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(wake_topic_streams(w, 5), 0);
}

static void
test_wake_rejects_bad_slot_and_topic(void **state)
{
	struct wake	*w = *state;

	errno = 0;
	assert_int_equal(wake_join(w, SLOTS, 1), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(wake_join(w, 0, UINT32_MAX), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(wake_leave(w, SLOTS, 1), -1);
	assert_int_equal(errno, EINVAL);
	/* Topic 0 is a key like any other (stored as 1). */
	join(w, 0, 0, 1);
	assert_int_equal(wake_topic_streams(w, 0), 1);
	wake_notify(w, WAKE_NOBODY, 0);
	assert_int_equal(woken_mask(w), 1u << 0);
}

static void
test_wake_notify_wakes_exactly_the_slots_with_the_topic(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 5, 1);
	join(w, 2, 5, 3);
	join(w, 1, 6, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), (1u << 0) | (1u << 2));
	wake_notify(w, WAKE_NOBODY, 6);
	assert_int_equal(woken_mask(w), 1u << 1);
	wake_notify(w, WAKE_NOBODY, 7);
	assert_int_equal(woken_mask(w), 0);
}

/* The publishing worker reads the ring itself before it blocks. */
static void
test_wake_notify_skips_the_publishers_own_slot(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 5, 1);
	join(w, 2, 5, 1);
	wake_notify(w, 0, 5);
	assert_int_equal(woken_mask(w), 1u << 2);
	wake_notify_topics(w, 2, (const uint32_t[]){ 5 }, 1);
	assert_int_equal(woken_mask(w), 1u << 0);
}

static void
test_wake_notify_skips_inactive_slots(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 5, 1);
	join(w, 1, 5, 1);
	wake_set_active(w, 1, 0);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 1u << 0);
	assert_int_equal(wake_topic_streams(w, 5), 1);
	wake_set_active(w, 1, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), (1u << 0) | (1u << 1));
}

static void
test_wake_signalled_slot_is_not_written_again_until_ack(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 5, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken(w, 0), 1);
	/* Drained by hand, not acked: still signalled, so nothing new. */
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken(w, 0), 0);
	wake_ack(w, 0);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken(w, 0), 1);
}

static void
test_wake_ack_drains_the_eventfd(void **state)
{
	struct wake	*w = *state;
	struct pollfd	 pfd;

	join(w, 0, 5, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	pfd.fd = wake_fd(w, 0);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 0), 1);
	wake_ack(w, 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	/* Acking when nothing was written is harmless. */
	wake_ack(w, 0);
	assert_int_equal(woken(w, 0), 0);
}

static void
test_wake_leave_to_zero_stops_wakes(void **state)
{
	struct wake	*w = *state;

	join(w, 0, 5, 2);
	assert_int_equal(wake_leave(w, 0, 5), 0);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 1u << 0);
	assert_int_equal(wake_leave(w, 0, 5), 0);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 0);
	/* The key stayed; a new stream finds it again. */
	join(w, 0, 5, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 1u << 0);
}

static void
test_wake_notify_topics_signals_each_slot_once(void **state)
{
	struct wake	*w = *state;
	const uint32_t	 batch[] = { 1, 2, 3, 9 };
	unsigned int	 i;

	join(w, 0, 1, 1);
	join(w, 0, 2, 1);
	join(w, 1, 3, 1);
	join(w, 3, 4, 1);
	wake_notify_topics(w, WAKE_NOBODY, batch, 4);
	assert_int_equal(woken(w, 0), 1);
	assert_int_equal(woken(w, 1), 1);
	assert_int_equal(woken(w, 2), 0);
	assert_int_equal(woken(w, 3), 0);
	for (i = 0; i < SLOTS; i++)
		wake_ack(w, i);
	wake_notify_topics(w, WAKE_NOBODY, batch, 0);
	assert_int_equal(woken_mask(w), 0);
}

/* Join the first WAKE_TABLE_LOAD_MAX topics 1000, 1001, ... into slot. */
static void
fill_table(struct wake *w, unsigned int slot)
{
	uint32_t	 topic;

	for (topic = 0; topic < WAKE_TABLE_LOAD_MAX; topic++)
		join(w, slot, 1000 + topic, 1);
}

static void
test_wake_overflow_wakes_for_every_topic(void **state)
{
	struct wake	*w = *state;

	fill_table(w, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 0);
	/* One topic more than the table takes: overflowed, always woken. */
	join(w, 1, 5, 1);
	wake_notify(w, WAKE_NOBODY, 6);
	assert_int_equal(woken_mask(w), 1u << 1);
	wake_notify_topics(w, WAKE_NOBODY, (const uint32_t[]){ 7 }, 1);
	assert_int_equal(woken_mask(w), 1u << 1);
	/* Leaving the untracked topic is not an error. */
	assert_int_equal(wake_leave(w, 1, 5), 0);
	/* Tracked topics keep their counts. */
	assert_int_equal(wake_topic_streams(w, 1000), 1);
	assert_int_equal(wake_leave(w, 1, 1000), 0);
	assert_int_equal(wake_topic_streams(w, 1000), 0);
	wake_notify(w, WAKE_NOBODY, 6);
	assert_int_equal(woken_mask(w), 1u << 1);
}

static void
test_wake_slot_reset_clears_table_and_flags(void **state)
{
	struct wake	*w = *state;

	fill_table(w, 2);
	join(w, 2, 5, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	/* Left signalled and written, as a dying worker would. */
	wake_slot_reset(w, 2);
	assert_int_equal(woken(w, 2), 0);
	assert_int_equal(wake_topic_streams(w, 1000), 0);
	wake_set_active(w, 2, 1);
	assert_int_equal(wake_topic_streams(w, 1000), 0);
	/* Not overflowed, empty: nothing wakes it. */
	wake_notify(w, WAKE_NOBODY, 5);
	wake_notify(w, WAKE_NOBODY, 1000);
	assert_int_equal(woken_mask(w), 0);
	/* Not signalled: its first new stream is woken. */
	join(w, 2, 5, 1);
	wake_notify(w, WAKE_NOBODY, 5);
	assert_int_equal(woken_mask(w), 1u << 2);
	assert_int_equal(wake_leave(w, 2, 1000), -1);
}

static void
test_wake_busiest_orders_by_streams_summed_over_slots(void **state)
{
	struct wake		*w = *state;
	struct wake_topic_count	 top[8];

	join(w, 0, 10, 2);	/* 10: 2 + 1 + 2 = 5 */
	join(w, 1, 10, 1);
	join(w, 3, 10, 2);
	join(w, 1, 20, 7);	/* 20: 7 */
	join(w, 2, 30, 3);	/* 30: 3, ties with 31, smaller id first */
	join(w, 0, 31, 1);
	join(w, 2, 31, 2);
	join(w, 3, 40, 1);	/* 40: left to 0, not listed */
	assert_int_equal(wake_leave(w, 3, 40), 0);
	join(w, 1, 50, 1);	/* 50: 1 */

	assert_int_equal(wake_topic_streams(w, 10), 5);
	assert_int_equal(wake_busiest(w, top, 8), 5);
	assert_int_equal(top[0].topic, 20);
	assert_int_equal(top[0].streams, 7);
	assert_int_equal(top[1].topic, 10);
	assert_int_equal(top[1].streams, 5);
	assert_int_equal(top[2].topic, 30);
	assert_int_equal(top[2].streams, 3);
	assert_int_equal(top[3].topic, 31);
	assert_int_equal(top[3].streams, 3);
	assert_int_equal(top[4].topic, 50);
	assert_int_equal(top[4].streams, 1);

	assert_int_equal(wake_busiest(w, top, 2), 2);
	assert_int_equal(top[0].topic, 20);
	assert_int_equal(top[1].topic, 10);
	assert_int_equal(wake_busiest(w, top, 0), 0);

	/* An inactive slot's streams do not count. */
	wake_set_active(w, 1, 0);
	assert_int_equal(wake_topic_streams(w, 10), 4);
	assert_int_equal(wake_busiest(w, top, 8), 3);
	assert_int_equal(top[0].topic, 10);
	assert_int_equal(top[0].streams, 4);
}

/* Shared by the two processes of the stress run. */
struct stress {
	uint64_t	 published;	/* release-stored before each notify */
	uint64_t	 notified;	/* release-stored after each notify */
	uint64_t	 round;		/* the worker is ready for this round */
	uint64_t	 lost;		/* wake-ups the worker proved lost */
};

static uint64_t
clock_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The publisher: each round, once the worker is ready, N publishes. */
static int
stress_publisher(struct wake *w, struct stress *s)
{
	uint64_t	 r, k, deadline, published = 0;

	for (r = 1; r <= STRESS_ROUNDS; r++) {
		deadline = clock_ms() + STRESS_ROUND_MS;
		while (__atomic_load_n(&s->round, __ATOMIC_ACQUIRE) < r) {
			if (clock_ms() > deadline)
				return 1;
			sched_yield();
		}
		for (k = 0; k < STRESS_PUBLISHES; k++) {
			/* As ring_append: commit with release, then notify. */
			__atomic_store_n(&s->published, ++published,
			    __ATOMIC_RELEASE);
			wake_notify(w, WAKE_NOBODY, STRESS_TOPIC);
			__atomic_store_n(&s->notified, published,
			    __ATOMIC_RELEASE);
			if (k % 8 == 0)
				sched_yield();
		}
	}
	return 0;
}

/*
 * The worker, one round: ack, read the counter, sleep on the eventfd, until
 * the round's last publish is seen.  A poll that times out although a
 * publish the worker had not seen finished its notify (and the eventfd is
 * still unreadable) is a lost wake-up.
 */
static int
stress_worker_round(struct wake *w, struct stress *s, uint64_t target)
{
	struct pollfd	 pfd;
	uint64_t	 seen, notified, deadline;

	pfd.fd = wake_fd(w, 0);
	pfd.events = POLLIN;
	deadline = clock_ms() + STRESS_ROUND_MS;
	while (clock_ms() < deadline) {
		wake_ack(w, 0);
		seen = __atomic_load_n(&s->published, __ATOMIC_ACQUIRE);
		if (seen == target)
			return 0;
		if (poll(&pfd, 1, STRESS_POLL_MS) != 0)
			continue;
		notified = __atomic_load_n(&s->notified, __ATOMIC_ACQUIRE);
		if (notified > seen && poll(&pfd, 1, 0) == 0) {
			s->lost++;
			return -1;
		}
	}
	return -1;
}

static void
test_wake_stress_no_lost_wake_up(void **state)
{
	struct wake	*w = *state;
	struct stress	*s;
	uint64_t	 r;
	pid_t		 pid;
	int		 status, failed = 0;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s != MAP_FAILED);
	memset(s, 0, sizeof(*s));
	join(w, 1, STRESS_TOPIC + 1, 1);

	if ((pid = fork()) == 0)
		_exit(stress_publisher(w, s));
	assert_true(pid > 0);
	for (r = 1; r <= STRESS_ROUNDS && !failed; r++) {
		/* The round's first stream joins while publishes begin. */
		__atomic_store_n(&s->round, r, __ATOMIC_RELEASE);
		join(w, 0, STRESS_TOPIC, 1);
		if (stress_worker_round(w, s, r * STRESS_PUBLISHES) == -1)
			failed = 1;
		assert_int_equal(wake_leave(w, 0, STRESS_TOPIC), 0);
	}
	if (failed)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (failed)
		fprintf(stderr, "round %llu: published %llu, notified %llu, "
		    "lost %llu\n", (unsigned long long)r - 1,
		    (unsigned long long)s->published,
		    (unsigned long long)s->notified,
		    (unsigned long long)s->lost);
	assert_false(failed);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Slot 1 follows another topic: never woken. */
	assert_int_equal(woken(w, 1), 0);
	munmap(s, sizeof(*s));
}

/*
 * The join race as a litmus test: each trial, both processes meet at a
 * barrier, then the worker joins and reads the counter while the publisher
 * stores it and notifies.  At least one must see the other: a trial where
 * the worker read the old counter and the eventfd stayed unwritten is a
 * lost wake-up (the store-buffering outcome the fences forbid).
 */
struct litmus {
	uint64_t	 arrived;	/* barrier: 2 per meeting */
	uint64_t	 published;
	uint64_t	 trials;	/* trials the worker completed */
	uint32_t	 stop;		/* the worker has had enough */
};

/* Meet the other process at barrier number n; -1 past the deadline or
 * once the worker stopped. */
static int
litmus_meet(struct litmus *l, uint64_t n, uint64_t deadline)
{
	unsigned int	 spins = 0;

	__atomic_fetch_add(&l->arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&l->arrived, __ATOMIC_ACQUIRE) < 2 * n) {
		if (++spins % 256 == 0) {
			if (clock_ms() > deadline ||
			    __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE))
				return -1;
			sched_yield();
		}
	}
	return 0;
}

/* Delay one side's start a little, by turns, so that the publisher's
 * store and the worker's load meet at every offset a barrier leaves. */
static void
litmus_skew(uint64_t trial, int side)
{
	volatile unsigned int	 spin;

	if ((int)(trial / 64 % 2) != side)
		return;
	for (spin = 0; spin < trial % 64 * 4; spin++)
		continue;
}

static int
litmus_publisher(struct wake *w, struct litmus *l, uint64_t deadline)
{
	uint64_t	 trial;

	for (trial = 1; trial <= LITMUS_TRIALS; trial++) {
		if (litmus_meet(l, 2 * trial - 1, deadline) == -1)
			return 0;
		litmus_skew(trial, 1);
		__atomic_store_n(&l->published, trial, __ATOMIC_RELEASE);
		wake_notify(w, WAKE_NOBODY, STRESS_TOPIC);
		if (litmus_meet(l, 2 * trial, deadline) == -1)
			return 0;
	}
	return 0;
}

static void
test_wake_join_racing_a_publish_loses_no_wake_up(void **state)
{
	struct wake	*w = *state;
	struct litmus	*l;
	uint64_t	 trial, seen, start, deadline, lost = 0;
	pid_t		 pid;
	int		 status;

	l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(l != MAP_FAILED);
	memset(l, 0, sizeof(*l));
	start = clock_ms();
	deadline = start + LITMUS_MS_MAX;
	if ((pid = fork()) == 0)
		_exit(litmus_publisher(w, l, deadline));
	assert_true(pid > 0);
	for (trial = 1; trial <= LITMUS_TRIALS; trial++) {
		if (litmus_meet(l, 2 * trial - 1, deadline) == -1)
			break;
		litmus_skew(trial, 0);
		assert_int_equal(wake_join(w, 0, STRESS_TOPIC), 0);
		seen = __atomic_load_n(&l->published, __ATOMIC_ACQUIRE);
		if (litmus_meet(l, 2 * trial, deadline) == -1)
			break;
		if (seen < trial && woken(w, 0) == 0)
			lost++;
		wake_ack(w, 0);
		assert_int_equal(wake_leave(w, 0, STRESS_TOPIC), 0);
		l->trials = trial;
		if (trial >= LITMUS_TRIALS_MIN && clock_ms() > start + LITMUS_MS)
			break;
	}
	/* The publisher gives up at its next meeting. */
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (lost > 0)
		fprintf(stderr, "%llu of %llu trials lost a wake-up\n",
		    (unsigned long long)lost, (unsigned long long)l->trials);
	assert_int_equal(lost, 0);
	/* Enough trials ran to mean something, even on a busy machine. */
	assert_true(l->trials >= LITMUS_TRIALS_MIN / 20);
	munmap(l, sizeof(*l));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_wake_create_rejects_zero_slots),
		T(test_wake_fds_are_distinct_nonblocking_cloexec),
		T(test_wake_join_and_leave_count_streams),
		T(test_wake_counts_many_topics_through_collisions),
		T(test_wake_leave_rejects_unknown_topic),
		T(test_wake_rejects_bad_slot_and_topic),
		T(test_wake_notify_wakes_exactly_the_slots_with_the_topic),
		T(test_wake_notify_skips_the_publishers_own_slot),
		T(test_wake_notify_skips_inactive_slots),
		T(test_wake_signalled_slot_is_not_written_again_until_ack),
		T(test_wake_ack_drains_the_eventfd),
		T(test_wake_leave_to_zero_stops_wakes),
		T(test_wake_notify_topics_signals_each_slot_once),
		T(test_wake_overflow_wakes_for_every_topic),
		T(test_wake_slot_reset_clears_table_and_flags),
		T(test_wake_busiest_orders_by_streams_summed_over_slots),
		T(test_wake_stress_no_lost_wake_up),
		T(test_wake_join_racing_a_publish_loses_no_wake_up),
#undef T
	};

	return cmocka_run_group_tests_name("wake", tests, NULL, NULL);
}
