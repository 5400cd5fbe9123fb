/*
 * test_auth: JWT verification and claims (auth.c): keys of each kind and
 * of a kid set, every rejection, the patterns of the "ringcast" claim, and
 * that a request's JWT is verified once however many topics it names (the
 * seam counts libjwt's jwt_decode).  Tokens are signed here with libjwt,
 * keys made with OpenSSL.
 */
#include "rc_test.h"

#include <time.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ringcast/auth.h"
#include "ringcast/catalog.h"

#define SECRET		"0123456789abcdef0123456789abcdef-hs"
#define SECRET2		"another secret of enough bytes, 2nd one"
#define NOW		((time_t)1800000000)
#define ALL_ALGS	"HS256, HS512, RS256, ES256"

int	__real_jwt_decode(jwt_t **, const char *, const unsigned char *, int);
int	__wrap_jwt_decode(jwt_t **, const char *, const unsigned char *, int);

static int decodes;

/* The seam: count signature verifications. */
int
__wrap_jwt_decode(jwt_t **jwt, const char *token, const unsigned char *key,
    int len)
{
	decodes++;
	return __real_jwt_decode(jwt, token, key, len);
}

struct keys {
	char	*dir;
	char	*rsa_pub, *rsa_priv;
	char	*ec_pub, *ec_priv;
};

static struct keys K;

static char *
pem_of(EVP_PKEY *pkey, int private)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	char	*data, *out;
	long	 len;

	assert_non_null(bio);
	if (private)
		assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL,
		    0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
	len = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)len);
	BIO_free(bio);
	return out;
}

static int
setup(void **state)
{
	EVP_PKEY	*rsa, *ec;

	(void)state;
	K.dir = rc_test_tmpdir();
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (K.dir == NULL || rsa == NULL || ec == NULL)
		return -1;
	K.rsa_pub = pem_of(rsa, 0);
	K.rsa_priv = pem_of(rsa, 1);
	K.ec_pub = pem_of(ec, 0);
	K.ec_priv = pem_of(ec, 1);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(K.rsa_pub);
	free(K.rsa_priv);
	free(K.ec_pub);
	free(K.ec_priv);
	rc_test_rmdir(K.dir);
	return 0;
}

/* A token of claims (JSON), signed with key by alg, with kid if given. */
static char *
sign(jwt_alg_t alg, const char *key, const char *kid, const char *claims)
{
	jwt_t	*jwt;
	char	*out;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	if (kid != NULL)
		assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key,
	    key != NULL ? (int)strlen(key) : 0), 0);
	out = jwt_encode_str(jwt);
	assert_non_null(out);
	jwt_free(jwt);
	return out;
}

/* Load a key file of text for algorithms algs. */
static struct auth *
load(const char *text, const char *algs, const char *aud, const char *iss)
{
	struct auth	*a = NULL;
	unsigned int	 mask;
	char		 err[512], *path;

	assert_int_equal(auth_algorithms_parse(algs, &mask, err, sizeof(err)),
	    0);
	path = rc_test_write(K.dir, "keys", text);
	assert_non_null(path);
	if (auth_load(&a, path, mask, aud, iss, 30000, err, sizeof(err)) == -1)
		fail_msg("auth_load: %s", err);
	free(path);
	return a;
}

/* auth_load's error for text, into err. */
static int
load_fails(const char *text, const char *algs, char *err, size_t errlen)
{
	struct auth	*a = NULL;
	unsigned int	 mask;
	char		*path;
	int		 rc;

	assert_int_equal(auth_algorithms_parse(algs, &mask, err, errlen), 0);
	path = rc_test_write(K.dir, "keys", text);
	rc = auth_load(&a, path, mask, "", "", 0, err, errlen);
	free(path);
	auth_free(a);
	return rc;
}

static enum auth_result
verify(struct auth *a, const char *token, struct auth_grant *g,
    const char **reason)
{
	*reason = "";
	return auth_verify(a, token, NOW, g, reason);
}

/* Expect token refused by a with a reason containing why. */
static void
expect_refused(struct auth *a, const char *token, const char *why)
{
	struct auth_grant	 g;
	const char		*reason;

	assert_int_equal(verify(a, token, &g, &reason), AUTH_INVALID);
	if (strstr(reason, why) == NULL)
		fail_msg("reason '%s', want '%s'", reason, why);
	assert_null(g.claims);
}

/* Claims (JSON) signed with SECRET: accepted when why is NULL, else refused
 * with a reason containing why. */
struct claims_case {
	const char	*claims;
	const char	*why;
};

static void
check_claims_cases(struct auth *a, const struct claims_case *cases,
    size_t n)
{
	struct auth_grant	 g;
	const char		*reason;
	size_t			 i;
	char			*tok;

	for (i = 0; i < n; i++) {
		tok = sign(JWT_ALG_HS256, SECRET, NULL, cases[i].claims);
		if (cases[i].why == NULL) {
			if (verify(a, tok, &g, &reason) != AUTH_OK)
				fail_msg("%s: %s", cases[i].claims, reason);
			auth_grant_free(&g);
		} else
			expect_refused(a, tok, cases[i].why);
		free(tok);
	}
}

#define CLAIMS_OK	"{\"exp\": 1800000060, \"ringcast\": {\"subscribe\": " \
	"[\"user/42\", \"news/*\"], \"publish\": [\"news/*\"]}}"

static int
allows(struct auth_grant *g, uint32_t right, const char *t)
{
	return auth_grant_allows(g, right, t, strlen(t));
}

static void
test_auth_algorithms_never_none(void **state)
{
	unsigned int	 mask = 0;
	char		 err[256], text[128];

	(void)state;
	assert_int_equal(auth_algorithms_parse("none", &mask, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "never"));
	assert_int_equal(auth_algorithms_parse("HS256, none", &mask, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_algorithms_parse("HS257", &mask, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_algorithms_parse(" , ", &mask, err,
	    sizeof(err)), -1);
	assert_int_equal(auth_algorithms_parse("hs256,ES256 RS512", &mask, err,
	    sizeof(err)), 0);
	auth_algorithms_text(mask, text, sizeof(text));
	assert_string_equal(text, "HS256, RS512, ES256");
}

static void
test_auth_hs256_token_grants_its_patterns(void **state)
{
	struct auth		*a = load(SECRET "\n", ALL_ALGS, "", "");
	struct auth_grant	 g;
	const char		*reason;
	char			*tok = sign(JWT_ALG_HS256, SECRET, NULL, CLAIMS_OK);

	(void)state;
	assert_int_equal(verify(a, tok, &g, &reason), AUTH_OK);
	assert_int_equal(g.exp, 1800000060);
	assert_true(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "user/42"));
	assert_true(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "news/x"));
	assert_false(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "user/43"));
	assert_false(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "user/42/x"));
	assert_false(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "news"));
	assert_false(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "news/x/y"));
	assert_true(allows(&g, CATALOG_RIGHT_PUBLISH, "news/a"));
	assert_false(allows(&g, CATALOG_RIGHT_PUBLISH, "user/42"));
	auth_grant_free(&g);
	free(tok);
	auth_free(a);
}

static void
test_auth_token_without_ringcast_claim_grants_nothing(void **state)
{
	struct auth		*a = load(SECRET, ALL_ALGS, "", "");
	struct auth_grant	 g;
	const char		*reason;
	char			*tok = sign(JWT_ALG_HS256, SECRET, NULL,
				    "{\"exp\": 1800000060}");

	(void)state;
	assert_int_equal(verify(a, tok, &g, &reason), AUTH_OK);
	assert_false(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "news"));
	assert_false(allows(&g, CATALOG_RIGHT_PUBLISH, "news"));
	auth_grant_free(&g);
	free(tok);
	auth_free(a);
}

static void
test_auth_rejects_bad_signature(void **state)
{
	struct auth	*a = load(SECRET, ALL_ALGS, "", "");
	char		*tok = sign(JWT_ALG_HS256, SECRET2, NULL, CLAIMS_OK);
	char		*bad;

	(void)state;
	expect_refused(a, tok, "bad signature");
	/* A payload changed after signing. */
	free(tok);
	tok = sign(JWT_ALG_HS256, SECRET, NULL, CLAIMS_OK);
	bad = strdup(tok);
	bad[strchr(bad, '.') - bad + 3] ^= 0x01;
	expect_refused(a, bad, "");
	free(bad);
	free(tok);
	auth_free(a);
}

static void
test_auth_rejects_alg_none(void **state)
{
	struct auth	*a = load(SECRET, ALL_ALGS, "", "");
	char		*tok = sign(JWT_ALG_NONE, NULL, NULL, CLAIMS_OK);
	char		 lower[1024];

	(void)state;
	decodes = 0;
	expect_refused(a, tok, "none is never accepted");
	/* libjwt reads alg case-insensitively; the header is checked as
	 * JOSE spells it, so "None" is refused too, never decoded. */
	snprintf(lower, sizeof(lower), "%s%s",
	    "eyJhbGciOiJOb25lIiwidHlwIjoiSldUIn0", strchr(tok, '.'));
	expect_refused(a, lower, "alg");
	assert_int_equal(decodes, 0);
	free(tok);
	auth_free(a);
}

static void
test_auth_rejects_alg_not_configured(void **state)
{
	struct auth	*a = load(SECRET, "HS256", "", "");
	char		*tok = sign(JWT_ALG_HS512, SECRET, NULL, CLAIMS_OK);

	(void)state;
	expect_refused(a, tok, "not one of jwt_algorithms");
	free(tok);
	auth_free(a);
}

static void
test_auth_rejects_public_key_used_as_hmac_secret(void **state)
{
	struct auth	*a = load(K.rsa_pub, ALL_ALGS, "", "");
	char		*tok = sign(JWT_ALG_HS256, K.rsa_pub, NULL, CLAIMS_OK);

	(void)state;
	decodes = 0;
	expect_refused(a, tok, "no key fits the token's alg");
	assert_int_equal(decodes, 0);
	free(tok);
	auth_free(a);
}

static void
test_auth_rs256_and_es256_verify(void **state)
{
	struct auth		*rs = load(K.rsa_pub, ALL_ALGS, "", "");
	struct auth		*es = load(K.ec_pub, ALL_ALGS, "", "");
	struct auth_grant	 g;
	const char		*reason;
	char			*rtok = sign(JWT_ALG_RS256, K.rsa_priv, NULL,
				    CLAIMS_OK);
	char			*etok = sign(JWT_ALG_ES256, K.ec_priv, NULL,
				    CLAIMS_OK);

	(void)state;
	assert_int_equal(verify(rs, rtok, &g, &reason), AUTH_OK);
	auth_grant_free(&g);
	assert_int_equal(verify(es, etok, &g, &reason), AUTH_OK);
	assert_true(allows(&g, CATALOG_RIGHT_SUBSCRIBE, "user/42"));
	auth_grant_free(&g);
	expect_refused(rs, etok, "no key fits");
	expect_refused(es, rtok, "no key fits");
	free(rtok);
	free(etok);
	auth_free(rs);
	auth_free(es);
}

static void
test_auth_time_claims(void **state)
{
	struct auth			*a = load(SECRET, ALL_ALGS, "", "");
	static const struct claims_case	 cases[] = {
		{ "{\"sub\": \"x\"}", "no exp" },
		{ "{\"exp\": \"1800000060\"}", "exp is not a number" },
		{ "{\"exp\": 1799999000}", "expired" },
		/* 30 s of skew: just expired is still taken. */
		{ "{\"exp\": 1799999990}", NULL },
		{ "{\"exp\": 1799999970}", "expired" },
		{ "{\"exp\": 1800000060.5}", NULL },
		{ "{\"exp\": 1800000060, \"nbf\": 1800000100}", "not valid yet" },
		{ "{\"exp\": 1800000060, \"nbf\": 1800000020}", NULL },
		{ "{\"exp\": 1800000060, \"nbf\": true}", "nbf" },
		{ "{\"exp\": 1800000060, \"iat\": 1800000100}", "future" },
		{ "{\"exp\": 1800000060, \"iat\": 1799999000}", NULL },
		{ "{\"exp\": 1800000060, \"iat\": null}", "iat" },
	};

	(void)state;
	check_claims_cases(a, cases, sizeof(cases) / sizeof(cases[0]));
	auth_free(a);
}

static void
test_auth_audience_and_issuer(void **state)
{
	struct auth			*a = load(SECRET, ALL_ALGS, "ringcast",
					    "app");
	static const struct claims_case	 cases[] = {
		{ "{\"exp\": 1800000060, \"iss\": \"app\"}", "audience" },
		{ "{\"exp\": 1800000060, \"aud\": \"other\", \"iss\": \"app\"}",
		    "audience" },
		{ "{\"exp\": 1800000060, \"aud\": [\"x\", \"ringcast\"], "
		    "\"iss\": \"app\"}", NULL },
		{ "{\"exp\": 1800000060, \"aud\": \"ringcast\"}", "issuer" },
		{ "{\"exp\": 1800000060, \"aud\": \"ringcast\", "
		    "\"iss\": \"evil\"}", "issuer" },
		{ "{\"exp\": 1800000060, \"aud\": \"ringcast\", "
		    "\"iss\": \"app\"}", NULL },
	};

	(void)state;
	check_claims_cases(a, cases, sizeof(cases) / sizeof(cases[0]));
	auth_free(a);
}

static void
test_auth_rejects_bad_ringcast_claim(void **state)
{
	struct auth	*a = load(SECRET, ALL_ALGS, "", "");
	static const char *const bad[] = {
		"{\"exp\": 1800000060, \"ringcast\": [\"news\"]}",
		"{\"exp\": 1800000060, \"ringcast\": {\"subscribe\": \"news\"}}",
		"{\"exp\": 1800000060, \"ringcast\": {\"subscribe\": [1]}}",
		"{\"exp\": 1800000060, \"ringcast\": {\"subscribe\": "
		    "[\"news/**\"]}}",
		"{\"exp\": 1800000060, \"ringcast\": {\"publish\": "
		    "[\"../x\"]}}",
	};
	size_t		 i;
	char		*tok;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tok = sign(JWT_ALG_HS256, SECRET, NULL, bad[i]);
		expect_refused(a, tok, "bad ringcast claim");
		free(tok);
	}
	auth_free(a);
}

static void
test_auth_rejects_malformed_tokens(void **state)
{
	struct auth	*a = load(SECRET, ALL_ALGS, "", "");
	static const char *const bad[] = {
		"", "abc", "a.b", "a.b.c.d", "..", "!!!.e30.x",
		"eyJhbGciOiJIUzI1NiJ9.not base64.x",
		"e30.e30.x",		/* {} : no alg */
		"WzFd.e30.x",		/* [1] */
		"eyJhbGciOiJIUzI1NiIsImtpZCI6MX0.e30.x",	/* kid: 1 */
	};
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(a, bad[i], "");
	auth_free(a);
}

static void
test_auth_kid_selects_the_key(void **state)
{
	struct auth		*a;
	struct auth_grant	 g;
	const char		*reason;
	char			*set, *pem, *tok;

	(void)state;
	pem = rc_test_write(K.dir, "rsa.pem", K.rsa_pub);
	if (asprintf(&set, "{\"old\": {\"secret\": \"%s\"},\n"
	    " \"new\": {\"secret\": \"%s\", \"alg\": \"HS256\"},\n"
	    " \"rsa\": {\"pem_file\": \"rsa.pem\"}}\n", SECRET, SECRET2) == -1)
		fail();
	a = load(set, ALL_ALGS, "", "");
	assert_int_equal(auth_key_count(a), 3);

	tok = sign(JWT_ALG_HS256, SECRET2, "new", CLAIMS_OK);
	decodes = 0;
	assert_int_equal(verify(a, tok, &g, &reason), AUTH_OK);
	assert_int_equal(decodes, 1);
	auth_grant_free(&g);
	free(tok);

	tok = sign(JWT_ALG_HS256, SECRET2, "old", CLAIMS_OK);
	expect_refused(a, tok, "bad signature");
	free(tok);
	tok = sign(JWT_ALG_HS256, SECRET, "gone", CLAIMS_OK);
	expect_refused(a, tok, "kid");
	free(tok);
	/* "new" is pinned to HS256. */
	tok = sign(JWT_ALG_HS512, SECRET2, "new", CLAIMS_OK);
	expect_refused(a, tok, "kid");
	free(tok);
	/* Without a kid, every key that fits the alg is tried. */
	tok = sign(JWT_ALG_HS256, SECRET2, NULL, CLAIMS_OK);
	assert_int_equal(verify(a, tok, &g, &reason), AUTH_OK);
	auth_grant_free(&g);
	free(tok);
	tok = sign(JWT_ALG_RS256, K.rsa_priv, "rsa", CLAIMS_OK);
	assert_int_equal(verify(a, tok, &g, &reason), AUTH_OK);
	auth_grant_free(&g);
	free(tok);
	auth_free(a);
	free(set);
	free(pem);
}

static void
test_auth_key_file_errors(void **state)
{
	char		 err[512], *text;
	EVP_PKEY	*small, *k1;
	static const struct {
		const char	*text;
		const char	*algs;
		const char	*why;
	} cases[] = {
		{ "short secret\n", "HS256", "at least 32" },
		{ "{\"a\": {\"secret\": \"" SECRET "\"},", "HS256", ":1:" },
		{ "{}", "HS256", "want an object" },
		{ "{\"a\": {\"secret\": \"" SECRET "\", \"pem\": \"x\"}}",
		    "HS256", "exactly one" },
		{ "{\"a\": {\"secret\": \"" SECRET "\", \"alg\": \"RS256\"}}",
		    "HS256, RS256", "does not fit" },
		{ "{\"a\": {\"secret\": \"" SECRET "\"}}", "RS256",
		    "fits none of jwt_algorithms" },
		{ "{\"a\": {\"pem_file\": \"missing.pem\"}}", "RS256",
		    "missing.pem" },
		{ "{\"a\": {\"pem\": \"-----BEGIN PUBLIC KEY-----\\nxx\"}}",
		    "RS256", "not a PEM public key" },
		{ "{\"a\": {\"secret\": \"" SECRET "\"}, "
		    "\"a\": {\"secret\": \"" SECRET "\"}}", "HS256",
		    "duplicate" },
	};
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load_fails(cases[i].text, cases[i].algs, err,
		    sizeof(err)), -1);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: '%s', want '%s'", i, err,
			    cases[i].why);
	}
	/* A private key is not what verifies. */
	assert_int_equal(load_fails(K.rsa_priv, "RS256", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a PEM public key"));
	/* RSA below 2048 bits; EC off the ES curves. */
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	text = pem_of(small, 0);
	assert_int_equal(load_fails(text, "RS256", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2048"));
	free(text);
	EVP_PKEY_free(small);
	k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	text = pem_of(k1, 0);
	assert_int_equal(load_fails(text, "ES256", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "curve"));
	free(text);
	EVP_PKEY_free(k1);
	assert_int_equal(auth_load(&(struct auth *){ NULL },
	    "/nonexistent/keys", 0x2, "", "", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/keys"));
}

static void
test_auth_check_verifies_a_request_jwt_once(void **state)
{
	struct auth		*a = load(SECRET, ALL_ALGS, "", "");
	struct auth_cred	 cred = { 0 };
	char			*tok = sign(JWT_ALG_HS256, SECRET, NULL,
				    CLAIMS_OK);

	(void)state;
	cred.token = tok;
	decodes = 0;
	assert_int_equal(auth_check(a, NULL, &cred, 1, "user/42",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_ALLOWED);
	assert_int_equal(auth_check(a, NULL, &cred, 2, "news/a",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_ALLOWED);
	assert_int_equal(auth_check(a, NULL, &cred, 3, "user/1",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_FORBIDDEN);
	assert_int_equal(auth_check(a, NULL, &cred, 3, "user/42",
	    CATALOG_RIGHT_PUBLISH, NOW), AUTH_FORBIDDEN);
	assert_int_equal(decodes, 1);
	auth_cred_free(&cred);
	free(tok);

	memset(&cred, 0, sizeof(cred));
	assert_int_equal(auth_check(a, NULL, &cred, 1, "user/42",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_NO_TOKEN);
	tok = sign(JWT_ALG_HS256, SECRET2, NULL, CLAIMS_OK);
	cred.token = tok;
	decodes = 0;
	assert_int_equal(auth_check(a, NULL, &cred, 1, "user/42",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_BAD_TOKEN);
	assert_int_equal(auth_check(a, NULL, &cred, 2, "news/a",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_BAD_TOKEN);
	assert_int_equal(decodes, 1);
	assert_non_null(strstr(cred.reason, "signature"));
	auth_cred_free(&cred);
	free(tok);
	auth_free(a);
}

static void
test_auth_opaque_tokens_still_go_to_the_catalog(void **state)
{
	struct auth		*a = load(SECRET, ALL_ALGS, "", "");
	struct auth_cred	 cred = { 0 };
	struct catalog		*cat;
	struct catalog_topic	 t;
	struct catalog_token	 info;
	char			 err[256], secret[TOKEN_SECRET_LEN + 1], *path;

	(void)state;
	if (asprintf(&path, "%s/catalog", K.dir) == -1)
		fail();
	assert_int_equal(catalog_open(&cat, path, 8 << 20, CATALOG_CREATE, err,
	    sizeof(err)), 0);
	assert_int_equal(catalog_topic_add(cat, "priv", CATALOG_TOPIC_PRIVATE,
	    "", &t), CATALOG_FOUND);
	assert_int_equal(catalog_token_add(cat, CATALOG_RIGHT_SUBSCRIBE,
	    "priv", secret, &info), CATALOG_FOUND);
	cred.token = secret;
	decodes = 0;
	assert_int_equal(auth_check(a, cat, &cred, t.id, "priv",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_ALLOWED);
	assert_int_equal(auth_check(a, cat, &cred, t.id, "priv",
	    CATALOG_RIGHT_PUBLISH, NOW), AUTH_FORBIDDEN);
	/* Without JWT keys, a JWT-shaped token is just an unknown one. */
	cred.token = "a.b.c";
	assert_int_equal(auth_check(NULL, cat, &cred, t.id, "priv",
	    CATALOG_RIGHT_SUBSCRIBE, NOW), AUTH_FORBIDDEN);
	assert_int_equal(decodes, 0);
	auth_cred_free(&cred);
	catalog_close(cat);
	free(path);
	auth_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_algorithms_never_none),
		cmocka_unit_test(test_auth_hs256_token_grants_its_patterns),
		cmocka_unit_test(
		    test_auth_token_without_ringcast_claim_grants_nothing),
		cmocka_unit_test(test_auth_rejects_bad_signature),
		cmocka_unit_test(test_auth_rejects_alg_none),
		cmocka_unit_test(test_auth_rejects_alg_not_configured),
		cmocka_unit_test(
		    test_auth_rejects_public_key_used_as_hmac_secret),
		cmocka_unit_test(test_auth_rs256_and_es256_verify),
		cmocka_unit_test(test_auth_time_claims),
		cmocka_unit_test(test_auth_audience_and_issuer),
		cmocka_unit_test(test_auth_rejects_bad_ringcast_claim),
		cmocka_unit_test(test_auth_rejects_malformed_tokens),
		cmocka_unit_test(test_auth_kid_selects_the_key),
		cmocka_unit_test(test_auth_key_file_errors),
		cmocka_unit_test(test_auth_check_verifies_a_request_jwt_once),
		cmocka_unit_test(
		    test_auth_opaque_tokens_still_go_to_the_catalog),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
