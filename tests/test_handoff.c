/*
 * test_handoff: the reload hand-off message and its passage, with a
 * working descriptor, over a SOCK_SEQPACKET pair.
 */
#include "rc_test.h"

#include <errno.h>
#include <sys/socket.h>

#include "ringcast/handoff.h"

static struct handoff_state
sample(void)
{
	struct handoff_state	 st;

	memset(&st, 0, sizeof(st));
	st.cursor = 0x0102030405060708ULL;
	st.ntopics = 3;
	st.topics[0] = 7;
	st.topics[1] = 3;
	st.topics[2] = 0xfffffffeu;
	st.flags = HANDOFF_CHUNKED;
	st.addr_bucket = 4095;
	st.expires = 123456;
	st.idle_ms = 2500;
	return st;
}

static void
test_handoff_round_trips_every_field(void **state)
{
	struct handoff_state	 in = sample(), out;
	uint8_t			 buf[HANDOFF_MSG_SIZE];

	(void)state;
	handoff_encode(&in, buf);
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), 0);
	assert_memory_equal(&in, &out, sizeof(in));
}

static void
test_handoff_refuses_another_version_or_size(void **state)
{
	struct handoff_state	 in = sample(), out;
	uint8_t			 buf[HANDOFF_MSG_SIZE + 1];

	(void)state;
	handoff_encode(&in, buf);
	assert_int_equal(handoff_decode(buf, HANDOFF_MSG_SIZE - 1, &out), -1);
	assert_int_equal(handoff_decode(buf, HANDOFF_MSG_SIZE + 1, &out), -1);
	buf[4] = 2;
	assert_int_equal(handoff_decode(buf, HANDOFF_MSG_SIZE, &out), -1);
	handoff_encode(&in, buf);
	buf[0] ^= 1;
	assert_int_equal(handoff_decode(buf, HANDOFF_MSG_SIZE, &out), -1);
}

static void
test_handoff_refuses_bad_topics_flags_and_padding(void **state)
{
	struct handoff_state	 in = sample(), out;
	uint8_t			 buf[HANDOFF_MSG_SIZE];

	(void)state;
	in.ntopics = 0;
	handoff_encode(&in, buf);
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
	in = sample();
	handoff_encode(&in, buf);
	buf[8] = HANDOFF_TOPICS_MAX + 1;
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
	in.topics[2] = in.topics[0];
	handoff_encode(&in, buf);
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
	in = sample();
	in.flags = 0x0100;
	handoff_encode(&in, buf);
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
	in = sample();
	handoff_encode(&in, buf);
	buf[10] = 1;
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
	handoff_encode(&in, buf);
	buf[32 + 4 * 3] = 9;		/* an unused topic slot */
	assert_int_equal(handoff_decode(buf, sizeof(buf), &out), -1);
}

static void
test_handoff_passes_a_working_socket(void **state)
{
	struct handoff_state	 in = sample(), out;
	int			 link[2], pair[2], fd = -1;
	char			 c = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, link), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	assert_int_equal(handoff_recv(link[1], &fd, &out), 0);
	assert_int_equal(handoff_send(link[0], pair[0], &in), 0);
	close(pair[0]);
	assert_int_equal(handoff_recv(link[1], &fd, &out), 1);
	assert_memory_equal(&in, &out, sizeof(in));
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(read(pair[1], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(fd);
	close(pair[1]);
	close(link[0]);
	close(link[1]);
}

static void
test_handoff_refuses_a_message_without_its_socket(void **state)
{
	struct handoff_state	 in = sample(), out;
	uint8_t			 buf[HANDOFF_MSG_SIZE];
	int			 link[2], fd = -1;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, link), 0);
	handoff_encode(&in, buf);
	assert_int_equal(send(link[0], buf, sizeof(buf), 0),
	    (ssize_t)sizeof(buf));
	errno = 0;
	assert_int_equal(handoff_recv(link[1], &fd, &out), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(fd, -1);
	close(link[0]);
	close(link[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handoff_round_trips_every_field),
		cmocka_unit_test(test_handoff_refuses_another_version_or_size),
		cmocka_unit_test(
		    test_handoff_refuses_bad_topics_flags_and_padding),
		cmocka_unit_test(test_handoff_passes_a_working_socket),
		cmocka_unit_test(
		    test_handoff_refuses_a_message_without_its_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
