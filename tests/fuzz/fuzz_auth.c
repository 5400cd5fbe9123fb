/*
 * fuzz_auth: the JWT path's own code in auth.c.  The first byte picks what
 * the rest is: a token for auth_verify (the header's base64url and JSON,
 * alg and kid, the choice of key), a key file for auth_load, or a claims
 * object that is signed here so auth_verify's claim checks see any JSON
 * behind a good signature.  Checks: a refusal has a reason and no grant; a
 * grant has an unexpired exp and only valid patterns; nothing leaks.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>

#include "ringcast/auth.h"
#include "ringcast/catalog.h"
#include "fuzz.h"

#define SECRET_A	"fuzz-auth-secret-a-of-32-bytes-at-least"
#define SECRET_B	"fuzz-auth-secret-b-of-32-bytes-at-least"
#define NOW		((time_t)1800000000)

static struct auth	*keys;

static int
write_file(const char *path, const uint8_t *data, size_t size)
{
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
setup(void)
{
	static const char set[] = "{\"a\": {\"secret\": \"" SECRET_A "\"}, "
	    "\"b\": {\"secret\": \"" SECRET_B "\", \"alg\": \"HS512\"}}";
	char	 path[512], err[256];

	snprintf(path, sizeof(path), "%s/keys.json", fuzz_tmpdir());
	if (write_file(path, (const uint8_t *)set, sizeof(set) - 1) == -1 ||
	    auth_load(&keys, path, 0xffff, "", "", 30000, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_auth: %s\n", err);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

static void
check_verify(const char *token)
{
	struct auth_grant	 g;
	const char		*reason = NULL;
	enum auth_result	 res;

	res = auth_verify(keys, token, NOW, &g, &reason);
	FUZZ_CHECK(res == AUTH_OK || res == AUTH_INVALID ||
	    res == AUTH_ERROR);
	if (res != AUTH_OK) {
		FUZZ_CHECK(reason != NULL && g.claims == NULL);
		return;
	}
	FUZZ_CHECK(g.exp + 30 > NOW);
	/* Every pattern kept is one pattern_match may trust. */
	(void)auth_grant_allows(&g, CATALOG_RIGHT_SUBSCRIBE, "a/b", 3);
	(void)auth_grant_allows(&g, CATALOG_RIGHT_PUBLISH, "a", 1);
	auth_grant_free(&g);
}

/* Sign claims (any bytes, as JSON) with key a, then verify. */
static void
check_claims(const uint8_t *data, size_t size)
{
	jwt_t	*jwt;
	char	*json, *token;

	if ((json = strndup((const char *)data, size)) == NULL)
		return;
	if (jwt_new(&jwt) != 0) {
		free(json);
		return;
	}
	if (jwt_add_grants_json(jwt, json) == 0 &&
	    jwt_add_header(jwt, "kid", "a") == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET_A,
	    (int)strlen(SECRET_A)) == 0 &&
	    (token = jwt_encode_str(jwt)) != NULL) {
		check_verify(token);
		free(token);
	}
	jwt_free(jwt);
	free(json);
}

static void
check_key_file(const uint8_t *data, size_t size)
{
	struct auth	*a = NULL;
	char		 path[512], err[512];
	int		 rc;

	snprintf(path, sizeof(path), "%s/fuzzed-keys", fuzz_tmpdir());
	if (write_file(path, data, size) == -1)
		return;
	memset(err, 0, sizeof(err));
	rc = auth_load(&a, path, 0xffff, "", "", 0, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(rc == 0 ? a != NULL && auth_key_count(a) >= 1 &&
	    auth_key_count(a) <= AUTH_KEYS_MAX : a == NULL && err[0] != '\0');
	auth_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*token;

	if (size < 1)
		return 0;
	if (keys == NULL)
		setup();
	switch (data[0] % 3) {
	case 0:
		if ((token = strndup((const char *)data + 1, size - 1)) ==
		    NULL)
			return 0;
		check_verify(token);
		free(token);
		break;
	case 1:
		check_key_file(data + 1, size - 1);
		break;
	default:
		check_claims(data + 1, size - 1);
		break;
	}
	return 0;
}
