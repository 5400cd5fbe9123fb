/*
 * fuzz_ccat: cluster catalog entries as a peer could write them.  Input: a
 * byte whose low bit says "a delete marker", the key up to the first NUL,
 * then the value.  Accepted: the entry names a valid object; a put's value
 * encoded again parses to the same entry; applied to a real catalog it
 * applies, and applied again changes nothing (idempotent), and its delete
 * removes it.  Refused: a message that names a catalog entry.  No crash,
 * no leak (ASan) either way.
 */
#include <string.h>

#include "ringcast/catalog.h"
#include "ringcast/ccat.h"
#include "ringcast/pattern.h"
#include "fuzz.h"

static struct catalog	*cat;

static void
catalog_close_at_exit(void)
{
	catalog_close(cat);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 path[512], err[1024];

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/catalog", fuzz_tmpdir());
	if (catalog_open(&cat, path, 64 << 20, CATALOG_CREATE, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	atexit(catalog_close_at_exit);
	return 0;
}

/* The entry's put value made again from what was parsed. */
static char *
value_again(const struct ccat_entry *e)
{
	if (e->kind == CCAT_TOPIC)
		return ccat_value_topic(&e->topic);
	return ccat_value_token(e->token_id, e->token_hash, e->token_rights,
	    e->token_topic[0] != '\0' ? e->token_topic : NULL,
	    e->token_created);
}

static void
check_round_trip(const char *key, const struct ccat_entry *e)
{
	struct ccat_entry	 again;
	char			 err[512], *value;

	FUZZ_CHECK((value = value_again(e)) != NULL);
	FUZZ_CHECK(ccat_entry_parse(&again, key, value, strlen(value), 0, err,
	    sizeof(err)) == 0);
	FUZZ_CHECK(again.kind == e->kind);
	if (e->kind == CCAT_TOPIC) {
		FUZZ_CHECK(strcmp(again.topic.name, e->topic.name) == 0);
		FUZZ_CHECK(strcmp(again.topic.description,
		    e->topic.description) == 0);
		FUZZ_CHECK(again.topic.flags == e->topic.flags);
		FUZZ_CHECK(again.topic.keep == e->topic.keep);
		FUZZ_CHECK(again.topic.max_age_ms == e->topic.max_age_ms);
		FUZZ_CHECK(again.topic.created == e->topic.created);
	} else {
		FUZZ_CHECK(memcmp(again.token_hash, e->token_hash,
		    sizeof(e->token_hash)) == 0);
		FUZZ_CHECK(again.token_rights == e->token_rights);
		FUZZ_CHECK(strcmp(again.token_topic, e->token_topic) == 0);
		FUZZ_CHECK(again.token_created == e->token_created);
	}
	free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	struct ccat_entry	 e;
	const char		*value;
	char			 key[CCAT_KEY_MAX + 16], err[1024];
	size_t			 keylen, len;
	int			 deleted, rc;

	if (cat == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	deleted = in[0] & 1;
	in++;
	size--;
	for (keylen = 0; keylen < size && in[keylen] != '\0'; keylen++)
		;
	if (keylen >= sizeof(key))
		return 0;
	memcpy(key, in, keylen);
	key[keylen] = '\0';
	value = keylen < size ? (const char *)in + keylen + 1 : NULL;
	len = keylen < size ? size - keylen - 1 : 0;

	err[0] = '\0';
	if (ccat_entry_parse(&e, key, value, len, deleted, err,
	    sizeof(err)) == -1) {
		FUZZ_CHECK(strncmp(err, "catalog entry", 13) == 0);
		return 0;
	}
	FUZZ_CHECK(e.kind == CCAT_TOPIC || e.kind == CCAT_TOKEN);
	FUZZ_CHECK(e.deleted == deleted);
	if (e.kind == CCAT_TOPIC)
		FUZZ_CHECK(pattern_valid(e.topic.name, strlen(e.topic.name)));
	if (!deleted)
		check_round_trip(key, &e);

	rc = ccat_entry_apply(cat, &e, err, sizeof(err));
	FUZZ_CHECK(rc != -1 || err[0] != '\0');
	if (rc == 1 || rc == 0) {
		/* Once is enough: the same entry again changes nothing. */
		FUZZ_CHECK(ccat_entry_apply(cat, &e, err, sizeof(err)) == 0);
	}
	/* Leave the catalog as it was: remove what the put made. */
	if (!deleted && rc != -1) {
		e.deleted = 1;
		e.members = 0;
		FUZZ_CHECK(ccat_entry_apply(cat, &e, err, sizeof(err)) != -1);
		if (e.kind == CCAT_TOPIC)
			FUZZ_CHECK(catalog_topic_lookup(cat, e.topic.name,
			    strlen(e.topic.name), NULL) == CATALOG_NOT_FOUND);
	}
	return 0;
}
