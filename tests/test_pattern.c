/*
 * test_pattern: topic patterns as topic families and JWT claims use them.
 */
#include "rc_test.h"

#include "ringcast/pattern.h"

#define V(s)	pattern_valid((s), strlen(s))
#define M(p, t)	pattern_match((p), strlen(p), (t), strlen(t))

static void
test_pattern_valid_names_and_families(void **state)
{
	(void)state;
	assert_true(V("news"));
	assert_true(V("user/42"));
	assert_true(V("user/*"));
	assert_true(V("room:*"));
	assert_true(V("a/b:*"));
	assert_true(V("*"));
}

static void
test_pattern_rejects_wildcards_elsewhere(void **state)
{
	(void)state;
	assert_false(V(""));
	assert_false(V("/*"));
	assert_false(V("user*"));
	assert_false(V("*/x"));
	assert_false(V("user/*/x"));
	assert_false(V("us*er"));
	assert_false(V("user/**"));
	assert_false(V("../*"));
	assert_false(V("user//*"));
}

static void
test_pattern_family_matches_exactly_one_more_segment(void **state)
{
	(void)state;
	assert_true(M("user/*", "user/42"));
	assert_true(M("user/*", "user/x.y-z"));
	assert_false(M("user/*", "user"));
	assert_false(M("user/*", "user/42/inbox"));
	assert_false(M("user/*", "user:42"));
	assert_false(M("user/*", "users/42"));
	assert_true(M("room:*", "room:7"));
	assert_true(M("*", "news"));
	assert_false(M("*", "news/1"));
}

static void
test_pattern_exact_matches_only_itself(void **state)
{
	(void)state;
	assert_true(M("user/42", "user/42"));
	assert_false(M("user/42", "user/420"));
	assert_false(M("user/4", "user/42"));
}

static void
test_pattern_rank_prefers_exact_then_longer(void **state)
{
	(void)state;
	assert_true(pattern_rank("user/42", 7) > pattern_rank("user/*", 6));
	assert_true(pattern_rank("a/b/*", 5) > pattern_rank("a/*", 3));
	assert_true(pattern_rank("a", 1) > pattern_rank("a/b/c/d/*", 9));
}

static void
test_pattern_family_of_a_topic(void **state)
{
	char	 out[16];

	(void)state;
	assert_int_equal(pattern_family_of("user/42", 7, out, sizeof(out)), 6);
	assert_string_equal(out, "user/*");
	assert_int_equal(pattern_family_of("a:b/c", 5, out, sizeof(out)), 5);
	assert_string_equal(out, "a:b/*");
	assert_int_equal(pattern_family_of("news", 4, out, sizeof(out)), 1);
	assert_string_equal(out, "*");
	assert_int_equal(pattern_family_of("user/42", 7, out, 6), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_valid_names_and_families),
		cmocka_unit_test(test_pattern_rejects_wildcards_elsewhere),
		cmocka_unit_test(
		    test_pattern_family_matches_exactly_one_more_segment),
		cmocka_unit_test(test_pattern_exact_matches_only_itself),
		cmocka_unit_test(test_pattern_rank_prefers_exact_then_longer),
		cmocka_unit_test(test_pattern_family_of_a_topic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
