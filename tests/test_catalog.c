/*
 * test_catalog: the catalog's three outcomes on every path (found, not found,
 * error), with errors provoked for real: a read-only environment, a full map,
 * a corrupt data file, a missing directory, a foreign schema version.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <time.h>

#include <lmdb.h>

#include "rc_test.h"
#include "ringcast/catalog.h"

#define MAP_SIZE	(1024 * 1024)

struct fixture {
	char		*dir;
	char		*path;		/* dir/catalog */
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

/* Close the fixture's catalog and open it again with flags. */
static void
reopen(struct fixture *f, int flags)
{
	catalog_close(f->cat);
	f->cat = NULL;
	if (catalog_open(&f->cat, f->path, MAP_SIZE, flags, f->err,
	    sizeof(f->err)) == -1)
		fail_msg("reopen: %s", f->err);
}

static uint32_t
add_topic(struct fixture *f, const char *name, uint32_t flags)
{
	struct catalog_topic	 t;

	if (catalog_topic_add(f->cat, name, flags, NULL, &t) != CATALOG_FOUND)
		fail_msg("add %s: %s", name, catalog_error(f->cat));
	return t.id;
}

static void
add_token(struct fixture *f, uint32_t rights, const char *topic,
    char *secret, struct catalog_token *token)
{
	if (catalog_token_add(f->cat, rights, topic, secret, token) !=
	    CATALOG_FOUND)
		fail_msg("token add: %s", catalog_error(f->cat));
}

/* Check a secret of the full length. */
static enum catalog_result
check(struct fixture *f, const char *secret, uint32_t topic, uint32_t right)
{
	return catalog_token_check(f->cat, secret, TOKEN_SECRET_LEN, topic,
	    right);
}

static void
test_catalog_topic_name_valid_follows_design(void **state)
{
	static const char *const good[] = {
		"a", "Z", "0", "news", "a.b", "a_b", "a-b", "...", ".a", "a.",
		"..a", "chat/room-1", "org:team/channel", "a:b:c", "v1.2/x_y",
	};
	static const char *const bad[] = {
		"", ".", "..", "/a", "a/", ":a", "a:", "a//b", "a::b", "a:/b",
		"a/:b", "a/./b", "a/../b", "a/.", "a/..", "./a", "../a",
		"a:.:b", "a:..", "%2e", "a%2fb", "a b", " a", "a\tb", "a\nb",
		"caf\xc3\xa9", "\xe2\x82\xac", "a?b", "a#b", "a\\b", "a+b",
		"a*b",
	};
	char	 name[TOPIC_NAME_MAX + 2];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!catalog_topic_name_valid(good[i], strlen(good[i])))
			fail_msg("'%s' should be valid", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (catalog_topic_name_valid(bad[i], strlen(bad[i])))
			fail_msg("'%s' should be invalid", bad[i]);
	}
	memset(name, 'x', sizeof(name));
	assert_true(catalog_topic_name_valid(name, TOPIC_NAME_MAX));
	assert_false(catalog_topic_name_valid(name, TOPIC_NAME_MAX + 1));
	assert_false(catalog_topic_name_valid("a\0b", 3));
	assert_false(catalog_topic_name_valid(NULL, 0));
}

static void
test_catalog_open_creates_directory_0750(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
}

static void
test_catalog_open_missing_directory_without_create_fails(void **state)
{
	struct fixture	*f = *state;
	struct catalog	*cat = (struct catalog *)1;
	char		*missing;

	assert_int_not_equal(asprintf(&missing, "%s/nothere", f->dir), -1);
	assert_int_equal(catalog_open(&cat, missing, MAP_SIZE, 0, f->err,
	    sizeof(f->err)), -1);
	assert_null(cat);
	assert_contains(f->err, missing);
	assert_contains(f->err, "mdb_env_open");
	assert_int_equal(catalog_open(&cat, missing, MAP_SIZE, CATALOG_RDONLY,
	    f->err, sizeof(f->err)), -1);
	assert_contains(f->err, missing);
	free(missing);
}

static void
test_catalog_open_corrupt_environment_fails(void **state)
{
	struct fixture	*f = *state;
	struct catalog	*cat;
	char		*bad, *file, junk[16384];
	FILE		*fp;

	assert_int_not_equal(asprintf(&bad, "%s/corrupt", f->dir), -1);
	assert_int_equal(mkdir(bad, 0750), 0);
	assert_int_not_equal(asprintf(&file, "%s/data.mdb", bad), -1);
	memset(junk, 'x', sizeof(junk));
	assert_non_null(fp = fopen(file, "w"));
	assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
	fclose(fp);
	assert_int_equal(catalog_open(&cat, bad, MAP_SIZE, 0, f->err,
	    sizeof(f->err)), -1);
	assert_contains(f->err, bad);
	assert_contains(f->err, "mdb_env_open");
	free(file);
	free(bad);
}

/* Put key = val into the named database of a raw LMDB environment at path
 * (NULL name: only create the environment). */
static void
raw_put(const char *path, const char *dbname, const char *key,
    const void *val, size_t len)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	MDB_val		 k = { key != NULL ? strlen(key) : 0, (void *)key };
	MDB_val		 v = { len, (void *)val };

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0640), 0);
	if (dbname != NULL) {
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, dbname, MDB_CREATE, &dbi),
		    0);
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
	}
	mdb_env_close(env);
}

static void
test_catalog_open_unknown_schema_version_fails(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 v[4] = { 99, 0, 0, 0 };

	catalog_close(f->cat);
	f->cat = NULL;
	raw_put(f->path, "meta", "schema_version", v, sizeof(v));
	assert_int_equal(catalog_open(&f->cat, f->path, MAP_SIZE, 0, f->err,
	    sizeof(f->err)), -1);
	assert_contains(f->err, f->path);
	assert_contains(f->err, "schema version 99");
}

static void
test_catalog_open_rdonly_uninitialized_fails(void **state)
{
	struct fixture	*f = *state;
	struct catalog	*cat;
	char		*empty;

	assert_int_not_equal(asprintf(&empty, "%s/empty", f->dir), -1);
	assert_int_equal(mkdir(empty, 0750), 0);
	/* No data file at all. */
	assert_int_equal(catalog_open(&cat, empty, MAP_SIZE, CATALOG_RDONLY,
	    f->err, sizeof(f->err)), -1);
	assert_contains(f->err, empty);
	assert_contains(f->err, "mdb_env_open");
	/* An LMDB environment without our databases. */
	raw_put(empty, NULL, NULL, NULL, 0);
	assert_int_equal(catalog_open(&cat, empty, MAP_SIZE, CATALOG_RDONLY,
	    f->err, sizeof(f->err)), -1);
	assert_contains(f->err, empty);
	assert_contains(f->err, "not initialized");
	free(empty);
}

static void
test_catalog_topic_add_then_lookup(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 added, found;
	time_t			 now = time(NULL);

	assert_int_equal(catalog_topic_add(f->cat, "chat/room-1",
	    CATALOG_TOPIC_PRIVATE, "the first room", &added), CATALOG_FOUND);
	assert_true(added.id >= 1);
	assert_int_equal(catalog_topic_lookup(f->cat, "chat/room-1", 11,
	    &found), CATALOG_FOUND);
	assert_int_equal(found.id, added.id);
	assert_int_equal(found.flags, CATALOG_TOPIC_PRIVATE);
	assert_string_equal(found.name, "chat/room-1");
	assert_string_equal(found.description, "the first room");
	assert_true(found.created >= (uint64_t)now - 1 &&
	    found.created <= (uint64_t)now + 1);
	/* The length counts, not a terminating NUL. */
	assert_int_equal(catalog_topic_lookup(f->cat, "chat/room-1xyz", 11,
	    &found), CATALOG_FOUND);
}

static void
test_catalog_topic_retention_is_stored_and_cleared(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;

	add_topic(f, "quiet", CATALOG_TOPIC_PRIVATE);
	/* A record written without retention reads with it off. */
	assert_int_equal(catalog_topic_lookup(f->cat, "quiet", 5, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.keep, 0);
	assert_int_equal(t.max_age_ms, 0);
	assert_int_equal(catalog_topic_set_retention(f->cat, "quiet", 100,
	    3600000, NULL), CATALOG_FOUND);
	reopen(f, 0);
	assert_int_equal(catalog_topic_lookup(f->cat, "quiet", 5, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.keep, 100);
	assert_int_equal(t.max_age_ms, 3600000);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE);
	assert_string_equal(t.name, "quiet");
	/* Back to the defaults: the old record layout again. */
	assert_int_equal(catalog_topic_set_retention(f->cat, "quiet", 0, 0,
	    &t), CATALOG_FOUND);
	assert_int_equal(t.keep, 0);
	assert_int_equal(catalog_topic_lookup(f->cat, "quiet", 5, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.max_age_ms, 0);
	assert_int_equal(catalog_topic_set_retention(f->cat, "nope", 1, 0,
	    NULL), CATALOG_NOT_FOUND);
	/* Added with it in one transaction: never seen without it. */
	assert_int_equal(catalog_topic_add_retention(f->cat, "kept", 0, NULL,
	    7, 0, &t), CATALOG_FOUND);
	assert_int_equal(t.keep, 7);
	assert_int_equal(catalog_topic_lookup(f->cat, "kept", 4, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.keep, 7);
	assert_int_equal(t.max_age_ms, 0);
}

static void
test_catalog_topic_add_duplicate_is_exists(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	uint32_t		 id = add_topic(f, "news", 0);

	assert_int_equal(catalog_topic_add(f->cat, "news", 0, NULL, &t),
	    CATALOG_EXISTS);
	assert_int_equal(t.id, id);
	assert_contains(catalog_error(f->cat), "news");
}

static void
test_catalog_topic_add_rejects_bad_input(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	char			 desc[TOPIC_DESC_MAX + 2];

	assert_int_equal(catalog_topic_add(f->cat, "a//b", 0, NULL, &t),
	    CATALOG_ERROR);
	assert_contains(catalog_error(f->cat), "invalid name");
	assert_int_equal(catalog_topic_add(f->cat, "", 0, NULL, &t),
	    CATALOG_ERROR);
	assert_int_equal(catalog_topic_add(f->cat, "ok", 0, "tab\there", &t),
	    CATALOG_ERROR);
	assert_contains(catalog_error(f->cat), "description");
	memset(desc, 'd', sizeof(desc));
	desc[TOPIC_DESC_MAX + 1] = '\0';
	assert_int_equal(catalog_topic_add(f->cat, "ok", 0, desc, &t),
	    CATALOG_ERROR);
	desc[TOPIC_DESC_MAX] = '\0';
	assert_int_equal(catalog_topic_add(f->cat, "ok", 0, desc, &t),
	    CATALOG_FOUND);
	assert_string_equal(t.description, desc);
	assert_int_equal(catalog_topic_add(f->cat, "ok2", 0x80, NULL, &t),
	    CATALOG_ERROR);
	assert_contains(catalog_error(f->cat), "flags");
}

static void
test_catalog_topic_lookup_unknown_is_not_found(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;

	assert_int_equal(catalog_topic_lookup(f->cat, "nope", 4, &t),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_lookup(f->cat, "a/../b", 6, &t),
	    CATALOG_NOT_FOUND);
	assert_contains(catalog_error(f->cat), "invalid name");
	assert_int_equal(catalog_topic_remove(f->cat, "nope"),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_remove(f->cat, ".."),
	    CATALOG_NOT_FOUND);
}

static void
test_catalog_topic_ids_are_never_reused(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	uint32_t		 a, b, b2, c;

	a = add_topic(f, "a", 0);
	b = add_topic(f, "b", 0);
	assert_int_not_equal(a, b);
	assert_int_equal(catalog_topic_remove(f->cat, "b"), CATALOG_FOUND);
	assert_int_equal(catalog_topic_lookup(f->cat, "b", 1, &t),
	    CATALOG_NOT_FOUND);
	b2 = add_topic(f, "b", 0);
	assert_true(b2 > b);
	/* A failed add (duplicate) consumes no id. */
	assert_int_equal(catalog_topic_add(f->cat, "a", 0, NULL, &t),
	    CATALOG_EXISTS);
	reopen(f, 0);
	assert_int_equal(catalog_topic_lookup(f->cat, "a", 1, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.id, a);
	c = add_topic(f, "c", 0);
	assert_int_equal(c, b2 + 1);
}

struct names {
	char	 seen[8][TOPIC_NAME_MAX + 1];
	int	 n;
	int	 stop_after;
};

static int
collect_topic(void *arg, const struct catalog_topic *topic)
{
	struct names	*names = arg;

	strlcpy(names->seen[names->n++], topic->name, sizeof(names->seen[0]));
	return names->n == names->stop_after;
}

static void
test_catalog_topic_foreach_walks_in_name_order(void **state)
{
	struct fixture	*f = *state;
	struct names	 names;

	memset(&names, 0, sizeof(names));
	assert_int_equal(catalog_topic_foreach(f->cat, collect_topic, &names),
	    0);
	assert_int_equal(names.n, 0);
	add_topic(f, "m", 0);
	add_topic(f, "b", 0);
	add_topic(f, "x/y", 0);
	assert_int_equal(catalog_topic_foreach(f->cat, collect_topic, &names),
	    0);
	assert_int_equal(names.n, 3);
	assert_string_equal(names.seen[0], "b");
	assert_string_equal(names.seen[1], "m");
	assert_string_equal(names.seen[2], "x/y");
	memset(&names, 0, sizeof(names));
	names.stop_after = 2;
	assert_int_equal(catalog_topic_foreach(f->cat, collect_topic, &names),
	    0);
	assert_int_equal(names.n, 2);
}

static void
test_catalog_rdonly_write_is_error(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint64_t		 seq = 1;

	add_topic(f, "kept", 0);
	reopen(f, CATALOG_RDONLY);
	assert_int_equal(catalog_topic_add(f->cat, "new", 0, NULL, &t),
	    CATALOG_ERROR);
	assert_contains(catalog_error(f->cat), f->path);
	assert_contains(catalog_error(f->cat), "mdb_txn_begin");
	assert_int_equal(catalog_topic_remove(f->cat, "kept"), CATALOG_ERROR);
	assert_int_equal(catalog_token_add(f->cat, CATALOG_RIGHT_PUBLISH, NULL,
	    secret, &tok), CATALOG_ERROR);
	assert_int_equal(catalog_token_remove(f->cat, "0123456789ab"),
	    CATALOG_ERROR);
	assert_int_equal(catalog_hwm_raise(f->cat, 5), -1);
	/* Reads still work. */
	assert_int_equal(catalog_topic_lookup(f->cat, "kept", 4, &t),
	    CATALOG_FOUND);
	assert_int_equal(catalog_hwm_get(f->cat, &seq), CATALOG_FOUND);
	assert_int_equal(seq, 0);
}

static void
test_catalog_map_full_is_error_not_not_found(void **state)
{
	struct fixture		*f = *state;
	struct catalog		*cat;
	struct catalog_topic	 t;
	char			*small, name[64], desc[TOPIC_DESC_MAX + 1];
	enum catalog_result	 res = CATALOG_FOUND;
	int			 i;

	assert_int_not_equal(asprintf(&small, "%s/small", f->dir), -1);
	assert_int_equal(catalog_open(&cat, small, 64 * 1024, CATALOG_CREATE,
	    f->err, sizeof(f->err)), 0);
	memset(desc, 'd', TOPIC_DESC_MAX);
	desc[TOPIC_DESC_MAX] = '\0';
	for (i = 0; i < 100000 && res == CATALOG_FOUND; i++) {
		snprintf(name, sizeof(name), "topic-%06d", i);
		res = catalog_topic_add(cat, name, 0, desc, &t);
	}
	assert_int_equal(res, CATALOG_ERROR);
	assert_true(i > 1);
	assert_contains(catalog_error(cat), small);
	assert_contains(catalog_error(cat), "MDB_MAP_FULL");
	/* The failed topic is absent; the earlier ones are all there. */
	assert_int_equal(catalog_topic_lookup(cat, name, strlen(name), &t),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_lookup(cat, "topic-000000", 12, &t),
	    CATALOG_FOUND);
	snprintf(name, sizeof(name), "topic-%06d", i - 2);
	assert_int_equal(catalog_topic_lookup(cat, name, strlen(name), &t),
	    CATALOG_FOUND);
	catalog_close(cat);
	free(small);
}

static void
test_catalog_token_add_check_remove(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint32_t		 id = add_topic(f, "news", 0);
	size_t			 i;

	add_token(f, CATALOG_RIGHT_PUBLISH, "news", secret, &tok);
	assert_int_equal(strlen(secret), TOKEN_SECRET_LEN);
	for (i = 0; i < TOKEN_SECRET_LEN; i++) {
		if (!isalnum((unsigned char)secret[i]) && secret[i] != '-' &&
		    secret[i] != '_')
			fail_msg("secret '%s' is not base64url", secret);
	}
	assert_int_equal(strlen(tok.id), TOKEN_ID_LEN);
	assert_int_equal(strspn(tok.id, "0123456789abcdef"), TOKEN_ID_LEN);
	assert_int_equal(tok.rights, CATALOG_RIGHT_PUBLISH);
	assert_int_equal(tok.topic, id);
	assert_int_equal(check(f, secret, id, CATALOG_RIGHT_PUBLISH),
	    CATALOG_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, tok.id), CATALOG_FOUND);
	assert_int_equal(check(f, secret, id, CATALOG_RIGHT_PUBLISH),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, tok.id),
	    CATALOG_NOT_FOUND);
	assert_contains(catalog_error(f->cat), tok.id);
}

static void
test_catalog_token_rights_are_checked(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 pub[TOKEN_SECRET_LEN + 1];
	char			 both[TOKEN_SECRET_LEN + 1];
	uint32_t		 id = add_topic(f, "news", 0);

	add_token(f, CATALOG_RIGHT_PUBLISH, "news", pub, &tok);
	add_token(f, CATALOG_RIGHT_PUBLISH | CATALOG_RIGHT_SUBSCRIBE, "news",
	    both, &tok);
	assert_int_equal(check(f, pub, id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	assert_int_equal(check(f, both, id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	assert_int_equal(check(f, both, id, CATALOG_RIGHT_PUBLISH),
	    CATALOG_FOUND);
	assert_int_equal(check(f, pub, id, 0), CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_add(f->cat, 0, "news", pub, &tok),
	    CATALOG_ERROR);
	assert_int_equal(catalog_token_add(f->cat, 0x10, "news", pub, &tok),
	    CATALOG_ERROR);
}

static void
test_catalog_token_is_scoped_to_its_topic(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint32_t		 news = add_topic(f, "news", 0);
	uint32_t		 sport = add_topic(f, "sport", 0);

	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "news", secret, &tok);
	assert_int_equal(check(f, secret, news, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, sport, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	assert_int_equal(check(f, secret, 0, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
}

static void
test_catalog_token_for_all_topics(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint32_t		 news = add_topic(f, "news", 0);
	uint32_t		 later;

	add_token(f, CATALOG_RIGHT_PUBLISH, NULL, secret, &tok);
	assert_int_equal(tok.topic, 0);
	later = add_topic(f, "later", 0);
	assert_int_equal(check(f, secret, news, CATALOG_RIGHT_PUBLISH),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, later, CATALOG_RIGHT_PUBLISH),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, later, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	/* Removing a topic leaves every-topic tokens alone. */
	assert_int_equal(catalog_topic_remove(f->cat, "news"), CATALOG_FOUND);
	assert_int_equal(check(f, secret, later, CATALOG_RIGHT_PUBLISH),
	    CATALOG_FOUND);
}

static void
test_catalog_token_wrong_secrets_are_not_found(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	char			 other[TOKEN_SECRET_LEN + 1];
	char			 garbage[TOKEN_SECRET_LEN];
	char			 longer[TOKEN_SECRET_LEN + 2];
	uint32_t		 id = add_topic(f, "news", 0);
	uint32_t		 right = CATALOG_RIGHT_PUBLISH;
	size_t			 i;

	add_token(f, right, "news", secret, &tok);
	memcpy(other, secret, sizeof(other));
	other[TOKEN_SECRET_LEN - 1] ^= 1;
	assert_int_equal(check(f, other, id, right), CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_check(f->cat, secret,
	    TOKEN_SECRET_LEN - 1, id, right), CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_check(f->cat, secret, 0, id, right),
	    CATALOG_NOT_FOUND);
	assert_int_equal(check(f, NULL, id, right), CATALOG_NOT_FOUND);
	memcpy(longer, secret, TOKEN_SECRET_LEN);
	longer[TOKEN_SECRET_LEN] = 'x';
	longer[TOKEN_SECRET_LEN + 1] = '\0';
	assert_int_equal(catalog_token_check(f->cat, longer,
	    TOKEN_SECRET_LEN + 1, id, right), CATALOG_NOT_FOUND);
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 37);	/* NULs and high bytes too */
	assert_int_equal(catalog_token_check(f->cat, garbage, sizeof(garbage),
	    id, right), CATALOG_NOT_FOUND);
	/* The public id is not a secret. */
	assert_int_equal(catalog_token_check(f->cat, tok.id, TOKEN_ID_LEN, id,
	    right), CATALOG_NOT_FOUND);
}

static void
test_catalog_token_add_unknown_topic_is_not_found(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];

	assert_int_equal(catalog_token_add(f->cat, CATALOG_RIGHT_PUBLISH,
	    "ghost", secret, &tok), CATALOG_NOT_FOUND);
	assert_contains(catalog_error(f->cat), "ghost");
	assert_int_equal(catalog_token_add(f->cat, CATALOG_RIGHT_PUBLISH,
	    "a/./b", secret, &tok), CATALOG_NOT_FOUND);
}

static void
test_catalog_token_remove_bad_id_is_not_found(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(catalog_token_remove(f->cat, ""), CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, "xyz"),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, "0123456789abc"),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, "0123456789ag"),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_token_remove(f->cat, "0123456789ab"),
	    CATALOG_NOT_FOUND);
}

static int
count_token(void *arg, const struct catalog_token *token)
{
	int	*n = arg;

	(void)token;
	(*n)++;
	return 0;
}

static void
test_catalog_token_removed_with_its_topic(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 tok;
	char			 gone[TOKEN_SECRET_LEN + 1];
	char			 kept[TOKEN_SECRET_LEN + 1];
	uint32_t		 news;
	int			 n = 0;

	news = add_topic(f, "news", 0);
	add_topic(f, "sport", 0);
	add_token(f, CATALOG_RIGHT_PUBLISH, "news", gone, &tok);
	add_token(f, CATALOG_RIGHT_PUBLISH, "sport", kept, &tok);
	assert_int_equal(catalog_topic_remove(f->cat, "news"), CATALOG_FOUND);
	assert_int_equal(catalog_token_foreach(f->cat, count_token, &n), 0);
	assert_int_equal(n, 1);
	/* A new topic of the same name is a new id: the old token is gone. */
	assert_int_not_equal(add_topic(f, "news", 0), news);
	assert_int_equal(check(f, gone, news, CATALOG_RIGHT_PUBLISH),
	    CATALOG_NOT_FOUND);
}

struct token_list {
	struct catalog_token	 seen[4];
	int			 n;
};

static int
collect_token(void *arg, const struct catalog_token *token)
{
	struct token_list	*list = arg;

	list->seen[list->n++] = *token;
	return list->n == 4;
}

static void
test_catalog_token_foreach_gives_ids_not_secrets(void **state)
{
	struct fixture		*f = *state;
	struct catalog_token	 a, b;
	struct token_list	 list;
	char			 sa[TOKEN_SECRET_LEN + 1];
	char			 sb[TOKEN_SECRET_LEN + 1];
	uint32_t		 id = add_topic(f, "news", 0);
	int			 i;

	add_token(f, CATALOG_RIGHT_PUBLISH, "news", sa, &a);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, NULL, sb, &b);
	assert_string_not_equal(sa, sb);
	assert_string_not_equal(a.id, b.id);
	memset(&list, 0, sizeof(list));
	assert_int_equal(catalog_token_foreach(f->cat, collect_token, &list),
	    0);
	assert_int_equal(list.n, 2);
	for (i = 0; i < 2; i++) {
		if (strcmp(list.seen[i].id, a.id) == 0) {
			assert_int_equal(list.seen[i].rights,
			    CATALOG_RIGHT_PUBLISH);
			assert_int_equal(list.seen[i].topic, id);
		} else {
			assert_string_equal(list.seen[i].id, b.id);
			assert_int_equal(list.seen[i].topic, 0);
		}
		assert_null(strstr(sa, list.seen[i].id));
	}
}

static void
test_catalog_hwm_raise_never_lowers(void **state)
{
	struct fixture	*f = *state;
	uint64_t	 seq = 42;

	assert_int_equal(catalog_hwm_get(f->cat, &seq), CATALOG_FOUND);
	assert_int_equal(seq, 0);
	assert_int_equal(catalog_hwm_raise(f->cat, 1000), 0);
	assert_int_equal(catalog_hwm_raise(f->cat, 10), 0);
	assert_int_equal(catalog_hwm_get(f->cat, &seq), CATALOG_FOUND);
	assert_int_equal(seq, 1000);
	assert_int_equal(catalog_hwm_raise(f->cat, UINT64_MAX - 1), 0);
	reopen(f, 0);
	assert_int_equal(catalog_hwm_get(f->cat, &seq), CATALOG_FOUND);
	assert_true(seq == UINT64_MAX - 1);
}

static void
test_catalog_reader_check_counts_dead_readers(void **state)
{
	struct fixture	*f = *state;

	assert_true(catalog_reader_check(f->cat) >= 0);
}

#define CHILDREN	4
#define EACH		25

/*
 * A child adds EACH topics of its own or, with resolve, materialises the
 * members user/0 .. user/EACH-1 that every child names, and writes each id
 * to fd.  Each child opens its own environment (handles must not cross
 * fork).
 */
static void
child_topics(const char *path, int child, int resolve, int fd)
{
	struct catalog		*cat;
	struct catalog_topic	 t;
	enum catalog_result	 res;
	char			 err[512], name[32];
	int			 i;

	if (catalog_open(&cat, path, MAP_SIZE, CATALOG_CREATE, err,
	    sizeof(err)) == -1)
		_exit(2);
	for (i = 0; i < EACH; i++) {
		if (resolve) {
			snprintf(name, sizeof(name), "user/%d", i);
			res = catalog_topic_resolve(cat, name, strlen(name),
			    CATALOG_RESOLVE_MATERIALISE, &t);
		} else {
			snprintf(name, sizeof(name), "child%d/t%d", child, i);
			res = catalog_topic_add(cat, name, 0, NULL, &t);
		}
		if (res != CATALOG_FOUND || t.id == 0)
			_exit(3);
		if (write(fd, &t.id, sizeof(t.id)) != sizeof(t.id))
			_exit(4);
	}
	catalog_close(cat);
	_exit(0);
}

/* Run CHILDREN child_topics at once; ids[i] gets child i's ids. */
static void
children_run(struct fixture *f, int resolve, uint32_t ids[CHILDREN][EACH])
{
	pid_t	 pids[CHILDREN];
	int	 fds[CHILDREN][2], i, status;
	size_t	 got;
	ssize_t	 n;

	for (i = 0; i < CHILDREN; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0) {
			close(fds[i][0]);
			child_topics(f->path, i, resolve, fds[i][1]);
		}
		close(fds[i][1]);
	}
	for (i = 0; i < CHILDREN; i++) {
		got = 0;
		while (got < sizeof(ids[i]) && (n = read(fds[i][0],
		    (char *)ids[i] + got, sizeof(ids[i]) - got)) > 0)
			got += (size_t)n;
		close(fds[i][0]);
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(got, sizeof(ids[i]));
	}
}

static void
test_catalog_concurrent_processes_get_distinct_ids(void **state)
{
	struct fixture	*f = *state;
	uint32_t	 ids[CHILDREN][EACH], *all = &ids[0][0];
	int		 i, j;

	/* The parent keeps its own environment open throughout. */
	add_topic(f, "parent", 0);
	children_run(f, 0, ids);
	for (i = 0; i < CHILDREN * EACH; i++) {
		assert_true(all[i] > 1);
		for (j = i + 1; j < CHILDREN * EACH; j++)
			assert_int_not_equal(all[i], all[j]);
	}
}

/* Another process grows the map beyond ours: we adopt the new size. */
static void
test_catalog_follows_map_grown_by_another_process(void **state)
{
	struct fixture		*f = *state;
	struct catalog		*cat;
	struct catalog_topic	 t;
	char			 err[512], name[32], desc[TOPIC_DESC_MAX + 1];
	pid_t			 pid;
	int			 i, status;

	memset(desc, 'd', TOPIC_DESC_MAX);
	desc[TOPIC_DESC_MAX] = '\0';
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (catalog_open(&cat, f->path, 8 * MAP_SIZE, 0, err,
		    sizeof(err)) == -1)
			_exit(2);
		for (i = 0; i < 6000; i++) {
			snprintf(name, sizeof(name), "big%d", i);
			if (catalog_topic_add(cat, name, 0, desc, &t) !=
			    CATALOG_FOUND)
				_exit(3);
		}
		catalog_close(cat);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(catalog_topic_lookup(f->cat, "big5999", 7, &t),
	    CATALOG_FOUND);
	add_topic(f, "after", 0);
}

/* -- families ------------------------------------------------------------ */

static enum catalog_result
resolve(struct fixture *f, const char *name, int flags,
    struct catalog_topic *t)
{
	return catalog_topic_resolve(f->cat, name, strlen(name), flags, t);
}

static void
test_catalog_family_add_takes_patterns(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	static const char *const good[] = { "user/*", "room:*", "*",
	    "org:a/b/*" };
	static const char *const bad[] = { "user/**", "user*", "*/x",
	    "user/*/x", "/*", "a//*", "**" };
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(catalog_topic_add(f->cat, good[i], 0, NULL,
		    &t), CATALOG_FOUND);
		assert_int_equal(t.flags, CATALOG_TOPIC_FAMILY);
		assert_int_equal(catalog_topic_lookup(f->cat, good[i],
		    strlen(good[i]), &t), CATALOG_FOUND);
		assert_string_equal(t.name, good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (catalog_topic_add(f->cat, bad[i], 0, NULL, &t) !=
		    CATALOG_ERROR)
			fail_msg("'%s' should be refused", bad[i]);
		assert_contains(catalog_error(f->cat), "invalid name");
	}
}

static void
test_catalog_resolve_member_has_family_options_before_use(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;

	assert_int_equal(catalog_topic_add(f->cat, "user/*",
	    CATALOG_TOPIC_PRIVATE, "per user", &t), CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/42", 0, &t), CATALOG_FOUND);
	assert_int_equal(t.id, 0);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE | CATALOG_TOPIC_MEMBER);
	assert_string_equal(t.name, "user/42");
	assert_string_equal(t.description, "per user");
	/* Without MATERIALISE nothing is stored. */
	assert_int_equal(catalog_topic_lookup(f->cat, "user/42", 7, &t),
	    CATALOG_NOT_FOUND);
}

static void
test_catalog_resolve_materialises_a_member_once(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 fam, a, b, c;

	assert_int_equal(catalog_topic_add(f->cat, "user/*",
	    CATALOG_TOPIC_PRIVATE, "per user", &fam), CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/42", CATALOG_RESOLVE_MATERIALISE,
	    &a), CATALOG_FOUND);
	assert_true(a.id > fam.id);
	assert_int_equal(a.flags, CATALOG_TOPIC_PRIVATE | CATALOG_TOPIC_MEMBER);
	assert_string_equal(a.description, "per user");
	assert_int_equal(resolve(f, "user/42", CATALOG_RESOLVE_MATERIALISE,
	    &b), CATALOG_FOUND);
	assert_int_equal(b.id, a.id);
	assert_int_equal(b.created, a.created);
	/* Stored: a plain lookup finds it, and a read-only catalog too. */
	reopen(f, CATALOG_RDONLY);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/42", 7, &c),
	    CATALOG_FOUND);
	assert_int_equal(c.id, a.id);
	assert_int_equal(resolve(f, "user/42", 0, &c), CATALOG_FOUND);
	assert_int_equal(c.id, a.id);
	/* A new member needs a write: an error, never "not found". */
	assert_int_equal(resolve(f, "user/43", CATALOG_RESOLVE_MATERIALISE,
	    &c), CATALOG_ERROR);
}

static void
test_catalog_resolve_outside_any_family_is_not_found(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	static const char *const outside[] = { "user", "news", "user/42/x",
	    "users/1", "room:1", "user:1" };
	size_t			 i;

	add_topic(f, "user/*", 0);
	for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		if (resolve(f, outside[i], CATALOG_RESOLVE_MATERIALISE, &t) !=
		    CATALOG_NOT_FOUND)
			fail_msg("'%s' should not be found", outside[i]);
		assert_contains(catalog_error(f->cat), outside[i]);
	}
	/* A pattern is not a topic, nor is a bad name. */
	assert_int_equal(resolve(f, "user/*", CATALOG_RESOLVE_MATERIALISE |
	    CATALOG_RESOLVE_AUTO_CREATE, &t), CATALOG_NOT_FOUND);
	assert_int_equal(resolve(f, "user/..", CATALOG_RESOLVE_AUTO_CREATE,
	    &t), CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/*", 6, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.flags, CATALOG_TOPIC_FAMILY);
}

static void
test_catalog_resolve_exact_topic_overrides_its_family(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	uint32_t		 admin;

	add_topic(f, "user/*", 0);
	admin = add_topic(f, "user/admin", CATALOG_TOPIC_PRIVATE);
	assert_int_equal(resolve(f, "user/admin", CATALOG_RESOLVE_MATERIALISE,
	    &t), CATALOG_FOUND);
	assert_int_equal(t.id, admin);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE);
	/* And a private family, a public exact topic. */
	add_topic(f, "room:*", CATALOG_TOPIC_PRIVATE);
	add_topic(f, "room:lobby", 0);
	assert_int_equal(resolve(f, "room:lobby", 0, &t), CATALOG_FOUND);
	assert_int_equal(t.flags, 0);
	assert_int_equal(resolve(f, "room:7", 0, &t), CATALOG_FOUND);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE | CATALOG_TOPIC_MEMBER);
}

static void
test_catalog_resolve_lone_star_family_takes_one_segment(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;

	add_topic(f, "*", 0);
	assert_int_equal(resolve(f, "anything", CATALOG_RESOLVE_MATERIALISE,
	    &t), CATALOG_FOUND);
	assert_true(t.id > 0);
	assert_int_equal(t.flags, CATALOG_TOPIC_MEMBER);
	assert_int_equal(resolve(f, "a/b", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_NOT_FOUND);
	assert_int_equal(resolve(f, "a:b", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_NOT_FOUND);
}

static void
test_catalog_resolve_auto_create_outside_families(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t, again;

	add_topic(f, "user/*", CATALOG_TOPIC_PRIVATE);
	assert_int_equal(resolve(f, "news", 0, &t), CATALOG_NOT_FOUND);
	assert_int_equal(resolve(f, "news", CATALOG_RESOLVE_AUTO_CREATE, &t),
	    CATALOG_FOUND);
	assert_true(t.id > 0);
	assert_int_equal(t.flags, 0);
	assert_int_equal(resolve(f, "news", CATALOG_RESOLVE_AUTO_CREATE,
	    &again), CATALOG_FOUND);
	assert_int_equal(again.id, t.id);
	/* A family's name is its member, private, never a plain topic. */
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE |
	    CATALOG_RESOLVE_AUTO_CREATE, &t), CATALOG_FOUND);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE | CATALOG_TOPIC_MEMBER);
}

static void
test_catalog_family_removed_admits_no_new_members(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t, kept;

	add_topic(f, "user/*", 0);
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE,
	    &kept), CATALOG_FOUND);
	assert_int_equal(catalog_topic_remove(f->cat, "user/*"),
	    CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/2", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_NOT_FOUND);
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_FOUND);
	assert_int_equal(t.id, kept.id);
	/* Removing a member of a live family resets it: a new id. */
	add_topic(f, "user/*", 0);
	assert_int_equal(catalog_topic_remove(f->cat, "user/1"),
	    CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_FOUND);
	assert_true(t.id > kept.id);
}

static int
count_topic(void *arg, const struct catalog_topic *t)
{
	(void)t;
	(*(int *)arg)++;
	return 0;
}

static void
test_catalog_family_remove_takes_its_members_only(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	struct catalog_token	 tok;
	char			 fam[TOKEN_SECRET_LEN + 1];
	char			 one[TOKEN_SECRET_LEN + 1];
	char			 exact[TOKEN_SECRET_LEN + 1];
	size_t			 n = 99;
	int			 left = 0;

	add_topic(f, "user/*", 0);
	add_topic(f, "user/1/*", 0);
	add_topic(f, "user/admin", 0);
	add_topic(f, "username", 0);
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/2", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_FOUND);
	assert_int_equal(resolve(f, "user/1/inbox",
	    CATALOG_RESOLVE_MATERIALISE, &t), CATALOG_FOUND);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "user/*", fam, &tok);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "user/1", one, &tok);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "user/admin", exact, &tok);
	assert_int_equal(catalog_family_remove(f->cat, "user/*", &n),
	    CATALOG_FOUND);
	assert_int_equal(n, 2);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/1", 6, &t),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/2", 6, &t),
	    CATALOG_NOT_FOUND);
	/* Left: the family of user/1, its member, user/admin, username. */
	assert_int_equal(catalog_topic_foreach(f->cat, count_topic, &left), 0);
	assert_int_equal(left, 4);
	assert_int_equal(resolve(f, "user/1/inbox", 0, &t), CATALOG_FOUND);
	assert_true(t.id != 0);
	assert_int_equal(check(f, exact, t.id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/admin", 10, &t),
	    CATALOG_FOUND);
	assert_int_equal(check(f, exact, t.id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	/* The family's token and the member's token are gone. */
	assert_int_equal(catalog_token_remove(f->cat, tok.id), CATALOG_FOUND);
	left = 0;
	assert_int_equal(catalog_token_foreach(f->cat, count_token, &left), 0);
	assert_int_equal(left, 0);
	assert_int_equal(catalog_family_remove(f->cat, "user/*", &n),
	    CATALOG_NOT_FOUND);
	assert_int_equal(catalog_family_remove(f->cat, "user/admin", &n),
	    CATALOG_ERROR);
}

static void
test_catalog_family_token_covers_its_members(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint32_t		 famid, admin, room;

	famid = add_topic(f, "user/*", CATALOG_TOPIC_PRIVATE);
	admin = add_topic(f, "user/admin", CATALOG_TOPIC_PRIVATE);
	add_topic(f, "room/*", CATALOG_TOPIC_PRIVATE);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "user/*", secret, &tok);
	assert_int_equal(tok.topic, famid);
	assert_int_equal(resolve(f, "user/42", CATALOG_RESOLVE_MATERIALISE,
	    &t), CATALOG_FOUND);
	assert_int_equal(check(f, secret, t.id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, t.id, CATALOG_RIGHT_PUBLISH),
	    CATALOG_NOT_FOUND);
	assert_int_equal(check(f, secret, famid, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	/* Not the exact topic that overrides the family, not another. */
	assert_int_equal(check(f, secret, admin, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	assert_int_equal(resolve(f, "room/1", CATALOG_RESOLVE_MATERIALISE,
	    &t), CATALOG_FOUND);
	room = t.id;
	assert_int_equal(check(f, secret, room, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	assert_int_equal(check(f, secret, 0, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
}

static void
test_catalog_token_add_materialises_a_member(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];

	add_topic(f, "user/*", CATALOG_TOPIC_PRIVATE);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "user/7", secret, &tok);
	assert_int_equal(catalog_topic_lookup(f->cat, "user/7", 6, &t),
	    CATALOG_FOUND);
	assert_int_equal(tok.topic, t.id);
	assert_int_equal(t.flags, CATALOG_TOPIC_PRIVATE | CATALOG_TOPIC_MEMBER);
	assert_int_equal(resolve(f, "user/7", CATALOG_RESOLVE_MATERIALISE,
	    &t), CATALOG_FOUND);
	assert_int_equal(check(f, secret, t.id, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	assert_int_equal(catalog_token_add(f->cat, CATALOG_RIGHT_SUBSCRIBE,
	    "room/1", secret, &tok), CATALOG_NOT_FOUND);
}

/* A catalog written by a build without families: no "members" database. */
static void
drop_members_db(const char *path)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 dbi;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "members", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_catalog_old_catalog_without_members_opens(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	struct catalog_token	 tok;
	char			 secret[TOKEN_SECRET_LEN + 1];
	uint32_t		 news;

	news = add_topic(f, "news", 0);
	add_token(f, CATALOG_RIGHT_SUBSCRIBE, "news", secret, &tok);
	catalog_close(f->cat);
	f->cat = NULL;
	drop_members_db(f->path);
	/* Read-only, as ringcastctl topic list opens it: no members. */
	reopen(f, CATALOG_RDONLY);
	assert_int_equal(catalog_topic_lookup(f->cat, "news", 4, &t),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, news, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_FOUND);
	assert_int_equal(check(f, secret, news + 1, CATALOG_RIGHT_SUBSCRIBE),
	    CATALOG_NOT_FOUND);
	/* Read-write makes the database, and families work. */
	reopen(f, 0);
	add_topic(f, "user/*", 0);
	assert_int_equal(resolve(f, "user/1", CATALOG_RESOLVE_MATERIALISE, &t),
	    CATALOG_FOUND);
	assert_true(t.id > news);
}

static void
test_catalog_concurrent_first_use_gives_one_id(void **state)
{
	struct fixture		*f = *state;
	struct catalog_topic	 t;
	uint32_t		 ids[CHILDREN][EACH];
	char			 name[32];
	int			 i, j, total = 0;

	add_topic(f, "user/*", 0);
	children_run(f, 1, ids);
	/* Every process saw the one stored id of each member. */
	for (j = 0; j < EACH; j++) {
		snprintf(name, sizeof(name), "user/%d", j);
		assert_int_equal(catalog_topic_lookup(f->cat, name,
		    strlen(name), &t), CATALOG_FOUND);
		for (i = 0; i < CHILDREN; i++)
			assert_int_equal(ids[i][j], t.id);
	}
	assert_int_equal(catalog_topic_foreach(f->cat, count_topic, &total),
	    0);
	assert_int_equal(total, EACH + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_topic_name_valid_follows_design),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_catalog_open_creates_directory_0750),
		T(test_catalog_open_missing_directory_without_create_fails),
		T(test_catalog_open_corrupt_environment_fails),
		T(test_catalog_open_unknown_schema_version_fails),
		T(test_catalog_open_rdonly_uninitialized_fails),
		T(test_catalog_topic_add_then_lookup),
		T(test_catalog_topic_retention_is_stored_and_cleared),
		T(test_catalog_topic_add_duplicate_is_exists),
		T(test_catalog_topic_add_rejects_bad_input),
		T(test_catalog_topic_lookup_unknown_is_not_found),
		T(test_catalog_topic_ids_are_never_reused),
		T(test_catalog_topic_foreach_walks_in_name_order),
		T(test_catalog_rdonly_write_is_error),
		T(test_catalog_map_full_is_error_not_not_found),
		T(test_catalog_token_add_check_remove),
		T(test_catalog_token_rights_are_checked),
		T(test_catalog_token_is_scoped_to_its_topic),
		T(test_catalog_token_for_all_topics),
		T(test_catalog_token_wrong_secrets_are_not_found),
		T(test_catalog_token_add_unknown_topic_is_not_found),
		T(test_catalog_token_remove_bad_id_is_not_found),
		T(test_catalog_token_removed_with_its_topic),
		T(test_catalog_token_foreach_gives_ids_not_secrets),
		T(test_catalog_hwm_raise_never_lowers),
		T(test_catalog_reader_check_counts_dead_readers),
		T(test_catalog_concurrent_processes_get_distinct_ids),
		T(test_catalog_follows_map_grown_by_another_process),
		T(test_catalog_family_add_takes_patterns),
		T(test_catalog_resolve_member_has_family_options_before_use),
		T(test_catalog_resolve_materialises_a_member_once),
		T(test_catalog_resolve_outside_any_family_is_not_found),
		T(test_catalog_resolve_exact_topic_overrides_its_family),
		T(test_catalog_resolve_lone_star_family_takes_one_segment),
		T(test_catalog_resolve_auto_create_outside_families),
		T(test_catalog_family_removed_admits_no_new_members),
		T(test_catalog_family_remove_takes_its_members_only),
		T(test_catalog_family_token_covers_its_members),
		T(test_catalog_token_add_materialises_a_member),
		T(test_catalog_concurrent_first_use_gives_one_id),
		T(test_catalog_old_catalog_without_members_opens),
#undef T
	};

	return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
