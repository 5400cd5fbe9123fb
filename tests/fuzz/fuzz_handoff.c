/*
 * fuzz_handoff: the reload hand-off decoder.  Whatever it accepts must be
 * the one canonical encoding of what it decoded (so no field is ignored),
 * with 1..HANDOFF_TOPICS_MAX distinct topics and only known flags.
 */
#include <string.h>

#include "ringcast/handoff.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct handoff_state	 st;
	uint8_t			 again[HANDOFF_MSG_SIZE];
	unsigned int		 i, j;

	if (handoff_decode(data, size, &st) == -1)
		return 0;
	FUZZ_CHECK(size == HANDOFF_MSG_SIZE);
	FUZZ_CHECK(st.ntopics >= 1 && st.ntopics <= HANDOFF_TOPICS_MAX);
	FUZZ_CHECK((st.flags & ~HANDOFF_CHUNKED) == 0);
	for (i = 0; i < st.ntopics; i++)
		for (j = 0; j < i; j++)
			FUZZ_CHECK(st.topics[i] != st.topics[j]);
	handoff_encode(&st, again);
	FUZZ_CHECK(memcmp(again, data, HANDOFF_MSG_SIZE) == 0);
	return 0;
}
