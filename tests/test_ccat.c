/*
 * test_ccat: the cluster catalog's entries without NATS: every object kind
 * survives key + value and back, bad keys and values are refused with a
 * message, and applying an entry to a real LMDB catalog is idempotent.
 */
#include <errno.h>

#include "rc_test.h"
#include "ringcast/catalog.h"
#include "ringcast/ccat.h"

#define MAP_SIZE	(1024 * 1024)

struct fixture {
	char		*dir;
	char		*path;
	struct catalog	*cat;
	char		 err[1024];
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL || (f->dir = rc_test_tmpdir()) == NULL)
		return -1;
	if (asprintf(&f->path, "%s/catalog", f->dir) == -1)
		return -1;
	if (catalog_open(&f->cat, f->path, MAP_SIZE, CATALOG_CREATE, f->err,
	    sizeof(f->err)) == -1) {
		fprintf(stderr, "%s\n", f->err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	catalog_close(f->cat);
	rc_test_rmdir(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void
assert_contains(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("'%s' does not contain '%s'", text, want);
}

static struct catalog_topic
topic_make(const char *name, uint32_t flags, const char *desc, uint32_t keep,
    uint64_t max_age_ms)
{
	struct catalog_topic	 t;

	memset(&t, 0, sizeof(t));
	strlcpy(t.name, name, sizeof(t.name));
	strlcpy(t.description, desc, sizeof(t.description));
	t.flags = flags;
	t.keep = keep;
	t.max_age_ms = max_age_ms;
	t.created = 1700000000;
	return t;
}

/* Key and value of t, parsed back into *e; the parse's result. */
static int
topic_round_trip(const struct catalog_topic *t, struct ccat_entry *e,
    char *err, size_t errlen)
{
	char	 key[CCAT_KEY_MAX], *value;
	int	 rc;

	assert_int_equal(ccat_key_topic(key, sizeof(key), t->name), 0);
	assert_non_null(value = ccat_value_topic(t));
	rc = ccat_entry_parse(e, key, value, strlen(value), 0, err, errlen);
	free(value);
	return rc;
}

/* Apply t as a peer's put; ccat_apply's result. */
static int
apply_topic(struct fixture *f, const struct catalog_topic *t)
{
	char	 key[CCAT_KEY_MAX], *value;
	int	 rc;

	assert_int_equal(ccat_key_topic(key, sizeof(key), t->name), 0);
	assert_non_null(value = ccat_value_topic(t));
	rc = ccat_apply(f->cat, key, value, strlen(value), 0, f->err,
	    sizeof(f->err));
	free(value);
	return rc;
}

static int
apply_delete(struct fixture *f, const char *name, const char *value)
{
	char	 key[CCAT_KEY_MAX];

	assert_int_equal(ccat_key_topic(key, sizeof(key), name), 0);
	return ccat_apply(f->cat, key, value, value != NULL ? strlen(value) :
	    0, 1, f->err, sizeof(f->err));
}

/* A new token with rights on topic, as a peer's put: its key and value
 * (the caller frees the value) and its secret. */
static char *
token_value_make(const char *topic, uint32_t rights, char *key, size_t keylen,
    char *secret)
{
	unsigned char	 hash[CCAT_HASH_LEN];
	char		 id[TOKEN_ID_LEN + 1], *value;

	catalog_token_secret_new(secret, hash);
	ccat_token_id(id, hash);
	assert_int_equal(ccat_key_token(key, keylen, id), 0);
	assert_non_null(value = ccat_value_token(id, hash, rights, topic,
	    1700000001));
	return value;
}

static void
test_ccat_topic_round_trip(void **state)
{
	struct catalog_topic	 t = topic_make("a:b/c.d", CATALOG_TOPIC_PRIVATE,
				    "desc \"quoted\" é", 42, 3600000);
	struct ccat_entry	 e;
	char			 err[256];

	(void)state;
	assert_int_equal(topic_round_trip(&t, &e, err, sizeof(err)), 0);
	assert_int_equal(e.kind, CCAT_TOPIC);
	assert_false(e.deleted);
	assert_string_equal(e.topic.name, t.name);
	assert_string_equal(e.topic.description, t.description);
	assert_int_equal(e.topic.flags, CATALOG_TOPIC_PRIVATE);
	assert_int_equal(e.topic.keep, 42);
	assert_int_equal(e.topic.max_age_ms, 3600000);
	assert_int_equal(e.topic.created, 1700000000);
}

static void
test_ccat_family_round_trip(void **state)
{
	struct catalog_topic	 t = topic_make("user/*", CATALOG_TOPIC_FAMILY,
				    "", 0, 0);
	struct ccat_entry	 e;
	char			 err[256], key[CCAT_KEY_MAX];

	(void)state;
	assert_int_equal(topic_round_trip(&t, &e, err, sizeof(err)), 0);
	assert_string_equal(e.topic.name, "user/*");
	assert_int_equal(e.topic.flags, CATALOG_TOPIC_FAMILY);
	/* Keys hold only what KV keys allow. */
	assert_int_equal(ccat_key_topic(key, sizeof(key), "user/*"), 0);
	assert_string_equal(key, "topic.757365722f2a");
}

static void
test_ccat_token_round_trip(void **state)
{
	struct ccat_entry	 e;
	char			 key[CCAT_KEY_MAX], secret[TOKEN_SECRET_LEN + 1];
	char			 err[256], *value;
	unsigned char		 hash[CCAT_HASH_LEN];

	(void)state;
	value = token_value_make("news", CATALOG_RIGHT_PUBLISH, key,
	    sizeof(key), secret);
	assert_int_equal(ccat_entry_parse(&e, key, value, strlen(value), 0, err,
	    sizeof(err)), 0);
	catalog_token_hash(secret, strlen(secret), hash);
	assert_int_equal(e.kind, CCAT_TOKEN);
	assert_memory_equal(e.token_hash, hash, sizeof(hash));
	assert_int_equal(e.token_rights, CATALOG_RIGHT_PUBLISH);
	assert_string_equal(e.token_topic, "news");
	assert_int_equal(e.token_created, 1700000001);
	assert_string_equal(key + strlen(CCAT_TOKEN_PREFIX), e.token_id);
	/* Never the secret. */
	assert_null(strstr(value, secret));
	free(value);

	value = token_value_make(NULL, CATALOG_RIGHT_PUBLISH |
	    CATALOG_RIGHT_SUBSCRIBE, key, sizeof(key), secret);
	assert_int_equal(ccat_entry_parse(&e, key, value, strlen(value), 0, err,
	    sizeof(err)), 0);
	assert_string_equal(e.token_topic, "");
	assert_int_equal(e.token_rights, CATALOG_RIGHT_PUBLISH |
	    CATALOG_RIGHT_SUBSCRIBE);
	free(value);
}

static void
test_ccat_rejects_bad_keys(void **state)
{
	static const char *const keys[] = {
		"topic.", "topic.6", "topic.4E45", "topic.2e", "topic.2f",
		"topic.6100", "token.abc", "token.0123456789AB",
		"token.0123456789abc", "news", "", "topic.zz",
	};
	struct ccat_entry	 e;
	char			 err[256], longkey[600];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		err[0] = '\0';
		if (ccat_entry_parse(&e, keys[i], "{}", 2, 0, err,
		    sizeof(err)) != -1)
			fail_msg("key '%s' was accepted", keys[i]);
		assert_contains(err, "catalog entry");
	}
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	memcpy(longkey, "topic.", 6);
	assert_int_equal(ccat_entry_parse(&e, longkey, "{}", 2, 0, err,
	    sizeof(err)), -1);
	assert_int_equal(ccat_key_topic(err, sizeof(err), "a//b"), -1);
	assert_int_equal(ccat_key_token(err, sizeof(err), "xyz"), -1);
}

static void
test_ccat_rejects_bad_values(void **state)
{
	static const struct {
		const char	*value;
		const char	*says;
	} bad[] = {
		{ "not json", "not a JSON object" },
		{ "[1]", "not a JSON object" },
		{ "{\"v\":2,\"kind\":\"topic\"}", "version" },
		{ "{\"v\":1,\"kind\":\"token\"}", "not a version 1 topic" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"other\",\"private\":"
		    "false,\"family\":false,\"description\":\"\",\"keep\":0,"
		    "\"max_age_ms\":0,\"created\":0}", "names topic" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\",\"private\":"
		    "false,\"family\":true,\"description\":\"\",\"keep\":0,"
		    "\"max_age_ms\":0,\"created\":0}", "\"family\"" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\",\"private\":"
		    "false,\"family\":false,\"description\":\"a\\nb\",\"keep\":"
		    "0,\"max_age_ms\":0,\"created\":0}", "control" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\",\"private\":"
		    "false,\"family\":false,\"description\":\"\",\"keep\":-1,"
		    "\"max_age_ms\":0,\"created\":0}", "\"keep\"" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\",\"private\":"
		    "1,\"family\":false,\"description\":\"\",\"keep\":0,"
		    "\"max_age_ms\":0,\"created\":0}", "\"private\"" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\",\"v\":1}",
		    "not a JSON object" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"ne\\u0000ws\"}",
		    "not a JSON object" },
		{ "{\"v\":1,\"kind\":\"topic\",\"name\":\"news\"}",
		    "\"description\"" },
	};
	struct ccat_entry	 e;
	char			 err[256], key[CCAT_KEY_MAX], *big;
	size_t			 i;

	(void)state;
	assert_int_equal(ccat_key_topic(key, sizeof(key), "news"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (ccat_entry_parse(&e, key, bad[i].value,
		    strlen(bad[i].value), 0, err, sizeof(err)) != -1)
			fail_msg("value %s was accepted", bad[i].value);
		assert_contains(err, bad[i].says);
	}
	assert_non_null(big = calloc(1, CCAT_VALUE_MAX + 2));
	memset(big, ' ', CCAT_VALUE_MAX + 1);
	assert_int_equal(ccat_entry_parse(&e, key, big, CCAT_VALUE_MAX + 1, 0,
	    err, sizeof(err)), -1);
	assert_contains(err, "at most");
	free(big);
}

static void
test_ccat_rejects_bad_tokens(void **state)
{
	struct ccat_entry	 e;
	char			 key[CCAT_KEY_MAX], secret[TOKEN_SECRET_LEN + 1];
	char			 err[256], *value, *p;

	(void)state;
	value = token_value_make("news", CATALOG_RIGHT_PUBLISH, key,
	    sizeof(key), secret);
	/* The hash no longer starts with the id. */
	p = strstr(value, "\"hash\":\"") + 8;
	*p = *p == '0' ? '1' : '0';
	assert_int_equal(ccat_entry_parse(&e, key, value, strlen(value), 0, err,
	    sizeof(err)), -1);
	assert_contains(err, "\"hash\"");
	free(value);

	value = token_value_make("news", CATALOG_RIGHT_PUBLISH, key,
	    sizeof(key), secret);
	p = strstr(value, "\"publish\":true");
	memcpy(p, "\"publish\":0   ", 14);
	assert_int_equal(ccat_entry_parse(&e, key, value, strlen(value), 0, err,
	    sizeof(err)), -1);
	assert_contains(err, "\"publish\"");
	free(value);

	/* Another token's key. */
	value = token_value_make("news", CATALOG_RIGHT_PUBLISH, key,
	    sizeof(key), secret);
	assert_int_equal(ccat_entry_parse(&e, "token.000000000000", value,
	    strlen(value), 0, err, sizeof(err)), -1);
	assert_contains(err, "names token");
	free(value);
}

static void
test_ccat_rejects_bad_deletes(void **state)
{
	struct ccat_entry	 e;
	char			 err[256], key[CCAT_KEY_MAX];

	(void)state;
	assert_int_equal(ccat_key_topic(key, sizeof(key), "news"), 0);
	assert_int_equal(ccat_entry_parse(&e, key, "x", 1, 1, err,
	    sizeof(err)), -1);
	assert_contains(err, "not JSON");
	/* Members go only with a family. */
	assert_int_equal(ccat_entry_parse(&e, key, "{\"members\":true}", 16, 1,
	    err, sizeof(err)), -1);
	assert_contains(err, "family");
	assert_int_equal(ccat_key_topic(key, sizeof(key), "user/*"), 0);
	assert_int_equal(ccat_entry_parse(&e, key, "{\"members\":true}", 16, 1,
	    err, sizeof(err)), 0);
	assert_true(e.deleted);
	assert_true(e.members);
	assert_int_equal(ccat_entry_parse(&e, key, NULL, 0, 1, err,
	    sizeof(err)), 0);
	assert_false(e.members);
}

static void
test_ccat_apply_topic_is_idempotent(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t = topic_make("news", 0, "the news", 10, 0);
	struct catalog_topic	 got;
	uint32_t		 id;

	assert_int_equal(apply_topic(f, &t), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "news", 4, &got),
	    CATALOG_FOUND);
	id = got.id;
	assert_string_equal(got.description, "the news");
	assert_int_equal(got.keep, 10);
	assert_int_equal(got.created, 1700000000);
	/* The same put again (a replay): nothing written. */
	assert_int_equal(apply_topic(f, &t), 0);
	/* A changed one: rewritten in place, with its id. */
	t.max_age_ms = 60000;
	t.flags = CATALOG_TOPIC_PRIVATE;
	assert_int_equal(apply_topic(f, &t), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "news", 4, &got),
	    CATALOG_FOUND);
	assert_int_equal(got.id, id);
	assert_int_equal(got.max_age_ms, 60000);
	assert_int_equal(got.flags, CATALOG_TOPIC_PRIVATE);
	assert_int_equal(apply_topic(f, &t), 0);
	/* A delete, then the same delete again. */
	assert_int_equal(apply_delete(f, "news", NULL), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "news", 4, &got),
	    CATALOG_NOT_FOUND);
	assert_int_equal(apply_delete(f, "news", NULL), 0);
}

static void
test_ccat_apply_token_is_idempotent(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t = topic_make("news", CATALOG_TOPIC_PRIVATE,
				    "", 0, 0);
	struct catalog_topic	 got;
	char			 key[CCAT_KEY_MAX], secret[TOKEN_SECRET_LEN + 1];
	char			*value;

	value = token_value_make("news", CATALOG_RIGHT_SUBSCRIBE, key,
	    sizeof(key), secret);
	/* Before its topic: nothing done, and said so. */
	assert_int_equal(ccat_apply(f->cat, key, value, strlen(value), 0,
	    f->err, sizeof(f->err)), 2);
	assert_int_equal(apply_topic(f, &t), 1);
	assert_int_equal(ccat_apply(f->cat, key, value, strlen(value), 0,
	    f->err, sizeof(f->err)), 1);
	assert_int_equal(ccat_apply(f->cat, key, value, strlen(value), 0,
	    f->err, sizeof(f->err)), 0);
	assert_int_equal(catalog_topic_lookup(f->cat, "news", 4, &got),
	    CATALOG_FOUND);
	/* The peer's secret works here. */
	assert_int_equal(catalog_token_check(f->cat, secret, strlen(secret),
	    got.id, CATALOG_RIGHT_SUBSCRIBE), CATALOG_FOUND);
	assert_int_equal(catalog_token_check(f->cat, secret, strlen(secret),
	    got.id, CATALOG_RIGHT_PUBLISH), CATALOG_NOT_FOUND);
	assert_int_equal(ccat_apply(f->cat, key, NULL, 0, 1, f->err,
	    sizeof(f->err)), 1);
	assert_int_equal(catalog_token_check(f->cat, secret, strlen(secret),
	    got.id, CATALOG_RIGHT_SUBSCRIBE), CATALOG_NOT_FOUND);
	assert_int_equal(ccat_apply(f->cat, key, NULL, 0, 1, f->err,
	    sizeof(f->err)), 0);
	free(value);
}

static void
test_ccat_apply_family_delete_with_members(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 fam = topic_make("user/*",
				    CATALOG_TOPIC_FAMILY, "", 0, 0);
	struct catalog_topic	 got;
	char			 key[CCAT_KEY_MAX], secret[TOKEN_SECRET_LEN + 1];
	char			*value;

	assert_int_equal(apply_topic(f, &fam), 1);
	/* A token on a member materialises it here. */
	value = token_value_make("user/alice", CATALOG_RIGHT_SUBSCRIBE, key,
	    sizeof(key), secret);
	assert_int_equal(ccat_apply(f->cat, key, value, strlen(value), 0,
	    f->err, sizeof(f->err)), 1);
	free(value);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/alice", 10, &got),
	    CATALOG_FOUND);
	assert_true(got.flags & CATALOG_TOPIC_MEMBER);
	/* A plain delete keeps the members... */
	assert_int_equal(apply_delete(f, "user/*", NULL), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/alice", 10, &got),
	    CATALOG_FOUND);
	/* ...one with members takes them, replayed or not. */
	assert_int_equal(apply_topic(f, &fam), 1);
	assert_int_equal(apply_delete(f, "user/*", "{\"members\":true}"), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/alice", 10, &got),
	    CATALOG_NOT_FOUND);
	assert_int_equal(apply_delete(f, "user/*", "{\"members\":true}"), 0);
}

static void
test_ccat_apply_exact_topic_over_member(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 fam = topic_make("user/*",
				    CATALOG_TOPIC_FAMILY, "", 0, 0);
	struct catalog_topic	 exact = topic_make("user/bob", 0, "bob", 0, 0);
	struct catalog_topic	 member, got;

	assert_int_equal(apply_topic(f, &fam), 1);
	assert_int_equal(catalog_topic_resolve(f->cat, "user/bob", 8,
	    CATALOG_RESOLVE_MATERIALISE, &member), CATALOG_FOUND);
	/* A peer made it an exact topic: same id, no longer a member. */
	assert_int_equal(apply_topic(f, &exact), 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/bob", 8, &got),
	    CATALOG_FOUND);
	assert_int_equal(got.id, member.id);
	assert_int_equal(got.flags, 0);
	assert_string_equal(got.description, "bob");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ccat_topic_round_trip),
		cmocka_unit_test(test_ccat_family_round_trip),
		cmocka_unit_test(test_ccat_token_round_trip),
		cmocka_unit_test(test_ccat_rejects_bad_keys),
		cmocka_unit_test(test_ccat_rejects_bad_values),
		cmocka_unit_test(test_ccat_rejects_bad_tokens),
		cmocka_unit_test(test_ccat_rejects_bad_deletes),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_ccat_apply_topic_is_idempotent),
		T(test_ccat_apply_token_is_idempotent),
		T(test_ccat_apply_family_delete_with_members),
		T(test_ccat_apply_exact_topic_over_member),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
