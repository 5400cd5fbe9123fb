/*
 * auth: see auth.h.  libjwt 1.10 (Debian 12) verifies signatures and parses
 * tokens with jansson; it cannot pick a key by kid, checks no claim, and
 * accepts "alg": "none" when given no key.  So the token's header is read
 * first (base64url by OpenSSL, JSON by jansson) to choose the key whose
 * type fits the alg, libjwt is only ever called with a key, and the claims
 * are checked here.  Keys are validated once at load: a PEM must parse as
 * a public key of the right kind and size, a secret must be long enough.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ringcast/auth.h"
#include "ringcast/catalog.h"
#include "ringcast/pattern.h"

#define AUTH_FILE_MAX		(1024 * 1024)
#define AUTH_HEADER_MAX		1024	/* base64url bytes of a JOSE header */
#define AUTH_RSA_BITS_MIN	2048

#define BIT(alg)		(1U << (alg))
#define ALGS_HS	(BIT(JWT_ALG_HS256) | BIT(JWT_ALG_HS384) | BIT(JWT_ALG_HS512))
#define ALGS_RS	(BIT(JWT_ALG_RS256) | BIT(JWT_ALG_RS384) | BIT(JWT_ALG_RS512))

struct auth_key {
	char		 kid[AUTH_KID_MAX + 1];	/* "": the file's only key */
	unsigned int	 algs;		/* what it may verify */
	unsigned char	*material;	/* the secret, or the PEM text */
	size_t		 len;
};

struct auth {
	struct auth_key	 keys[AUTH_KEYS_MAX];
	size_t		 nkeys;
	unsigned int	 algs;
	int64_t		 skew;		/* seconds */
	char		 audience[256];
	char		 issuer[256];
};

/* JWS algorithms libjwt verifies; never "none". */
static const struct {
	const char	*name;
	jwt_alg_t	 alg;
} auth_algs[] = {
	{ "HS256", JWT_ALG_HS256 }, { "HS384", JWT_ALG_HS384 },
	{ "HS512", JWT_ALG_HS512 }, { "RS256", JWT_ALG_RS256 },
	{ "RS384", JWT_ALG_RS384 }, { "RS512", JWT_ALG_RS512 },
	{ "ES256", JWT_ALG_ES256 }, { "ES384", JWT_ALG_ES384 },
	{ "ES512", JWT_ALG_ES512 },
};
#define NALGS	(sizeof(auth_algs) / sizeof(auth_algs[0]))

/* The algorithm of a name as a JOSE header spells it (case matters), or
 * -1. */
static int
auth_alg_of(const char *name)
{
	size_t	 i;

	for (i = 0; i < NALGS; i++)
		if (strcmp(auth_algs[i].name, name) == 0)
			return (int)auth_algs[i].alg;
	return -1;
}

int
auth_algorithms_parse(const char *text, unsigned int *mask, char *err,
    size_t errlen)
{
	char		 buf[256], *item, *save = NULL;
	unsigned int	 m = 0;
	size_t		 i;

	if (strlcpy(buf, text, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, errlen, "value too long");
		return -1;
	}
	for (item = strtok_r(buf, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		if (strcasecmp(item, "none") == 0) {
			snprintf(err, errlen, "'none' is never accepted");
			return -1;
		}
		for (i = 0; i < NALGS; i++)
			if (strcasecmp(auth_algs[i].name, item) == 0)
				break;
		if (i == NALGS) {
			snprintf(err, errlen, "unknown algorithm '%s' (want "
			    "HS256, HS384, HS512, RS256, RS384, RS512, ES256, "
			    "ES384 or ES512)", item);
			return -1;
		}
		m |= BIT(auth_algs[i].alg);
	}
	if (m == 0) {
		snprintf(err, errlen, "no algorithm");
		return -1;
	}
	*mask = m;
	return 0;
}

void
auth_algorithms_text(unsigned int mask, char *out, size_t cap)
{
	size_t	 i;

	if (cap == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < NALGS; i++) {
		if (!(mask & BIT(auth_algs[i].alg)))
			continue;
		if (out[0] != '\0')
			strlcat(out, ", ", cap);
		strlcat(out, auth_algs[i].name, cap);
	}
}

/* Read a whole file (at most AUTH_FILE_MAX bytes) into a NUL-terminated
 * buffer the caller frees; NULL with err filled. */
static char *
auth_read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
	FILE	*fp;
	char	*buf;
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(AUTH_FILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, AUTH_FILE_MAX + 1, fp);
	if (ferror(fp) || n > AUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(fp) ?
		    "read error" : "larger than 1M");
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

/* Check a PEM public key and set key->algs from its type: RSA of at least
 * 2048 bits for RS*, an EC key on the curve of ES256, ES384 or ES512. */
static int
auth_key_pem(struct auth_key *key, const char *pem, size_t len,
    const char *what, char *err, size_t errlen)
{
	BIO		*bio;
	EVP_PKEY	*pkey;
	char		 curve[64];
	int		 rc = -1;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -1;
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		snprintf(err, errlen, "%s: not a PEM public key (want "
		    "-----BEGIN PUBLIC KEY-----)", what);
		return -1;
	}
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < AUTH_RSA_BITS_MIN) {
			snprintf(err, errlen, "%s: an RSA key of %d bits; at "
			    "least %d are needed", what, EVP_PKEY_get_bits(pkey),
			    AUTH_RSA_BITS_MIN);
			break;
		}
		key->algs = ALGS_RS;
		rc = 0;
		break;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pkey, curve, sizeof(curve),
		    NULL) != 1)
			curve[0] = '\0';
		if (strcmp(curve, "prime256v1") == 0)
			key->algs = BIT(JWT_ALG_ES256);
		else if (strcmp(curve, "secp384r1") == 0)
			key->algs = BIT(JWT_ALG_ES384);
		else if (strcmp(curve, "secp521r1") == 0)
			key->algs = BIT(JWT_ALG_ES512);
		else {
			snprintf(err, errlen, "%s: an EC key on curve '%s' (want "
			    "P-256, P-384 or P-521)", what, curve);
			break;
		}
		rc = 0;
		break;
	default:
		snprintf(err, errlen, "%s: neither an RSA nor an EC key",
		    what);
		break;
	}
	EVP_PKEY_free(pkey);
	if (rc == 0) {
		if ((key->material = malloc(len + 1)) == NULL) {
			snprintf(err, errlen, "%s: out of memory", what);
			return -1;
		}
		memcpy(key->material, pem, len);
		key->material[len] = '\0';
		key->len = len;
	}
	return rc;
}

static int
auth_key_secret(struct auth_key *key, const char *secret, size_t len,
    const char *what, char *err, size_t errlen)
{
	if (len < AUTH_SECRET_MIN) {
		snprintf(err, errlen, "%s: an HS* secret of %zu bytes; at "
		    "least %d are needed", what, len, AUTH_SECRET_MIN);
		return -1;
	}
	if ((key->material = malloc(len)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -1;
	}
	memcpy(key->material, secret, len);
	key->len = len;
	key->algs = ALGS_HS;
	return 0;
}

/* A key of a JSON key set: {"secret": "..."} or {"pem": "..."} or
 * {"pem_file": "path"} (relative to the key file's directory), and an
 * optional "alg" that pins it to one algorithm. */
static int
auth_key_entry(struct auth_key *key, const char *dir, const char *kid,
    json_t *entry, char *err, size_t errlen)
{
	json_t		*secret, *pem, *pem_file, *alg;
	char		 what[AUTH_KID_MAX + 16], path[PATH_MAX];
	char		*text;
	size_t		 len;
	int		 a, rc;

	snprintf(what, sizeof(what), "key '%s'", kid);
	if (*kid == '\0' || strlen(kid) > AUTH_KID_MAX) {
		snprintf(err, errlen, "a kid must be 1 to %d bytes",
		    AUTH_KID_MAX);
		return -1;
	}
	strlcpy(key->kid, kid, sizeof(key->kid));
	if (!json_is_object(entry)) {
		snprintf(err, errlen, "%s: not an object", what);
		return -1;
	}
	secret = json_object_get(entry, "secret");
	pem = json_object_get(entry, "pem");
	pem_file = json_object_get(entry, "pem_file");
	if ((secret != NULL) + (pem != NULL) + (pem_file != NULL) != 1) {
		snprintf(err, errlen, "%s: give exactly one of secret, pem "
		    "and pem_file", what);
		return -1;
	}
	if (secret != NULL) {
		if (!json_is_string(secret)) {
			snprintf(err, errlen, "%s: secret is not a string",
			    what);
			return -1;
		}
		rc = auth_key_secret(key, json_string_value(secret),
		    json_string_length(secret), what, err, errlen);
	} else if (pem != NULL) {
		if (!json_is_string(pem)) {
			snprintf(err, errlen, "%s: pem is not a string", what);
			return -1;
		}
		rc = auth_key_pem(key, json_string_value(pem),
		    json_string_length(pem), what, err, errlen);
	} else {
		if (!json_is_string(pem_file)) {
			snprintf(err, errlen, "%s: pem_file is not a string",
			    what);
			return -1;
		}
		if (snprintf(path, sizeof(path), "%s%s%s",
		    json_string_value(pem_file)[0] == '/' ? "" : dir,
		    json_string_value(pem_file)[0] == '/' ? "" : "/",
		    json_string_value(pem_file)) >= (int)sizeof(path)) {
			snprintf(err, errlen, "%s: pem_file: path too long",
			    what);
			return -1;
		}
		if ((text = auth_read_file(path, &len, err, errlen)) == NULL)
			return -1;
		rc = auth_key_pem(key, text, len, what, err, errlen);
		free(text);
	}
	if (rc == -1)
		return -1;
	if ((alg = json_object_get(entry, "alg")) != NULL) {
		if (!json_is_string(alg) ||
		    (a = auth_alg_of(json_string_value(alg))) == -1) {
			snprintf(err, errlen, "%s: alg is not one of HS256, "
			    "HS384, HS512, RS256, RS384, RS512, ES256, ES384, "
			    "ES512", what);
			return -1;
		}
		if (!(key->algs & BIT(a))) {
			snprintf(err, errlen, "%s: alg %s does not fit the "
			    "key's type", what, json_string_value(alg));
			return -1;
		}
		key->algs = BIT(a);
	}
	return 0;
}

static int
auth_load_set(struct auth *a, const char *path, const char *text,
    size_t len, char *err, size_t errlen)
{
	json_t		*set, *entry;
	json_error_t	 jerr;
	const char	*kid;
	char		 dir[PATH_MAX], *slash, msg[256];

	strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		strlcpy(dir, ".", sizeof(dir));
	set = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (set == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return -1;
	}
	if (!json_is_object(set) || json_object_size(set) == 0) {
		snprintf(err, errlen, "%s: want an object of kid -> key",
		    path);
		json_decref(set);
		return -1;
	}
	json_object_foreach(set, kid, entry) {
		if (a->nkeys == AUTH_KEYS_MAX) {
			snprintf(err, errlen, "%s: more than %d keys", path,
			    AUTH_KEYS_MAX);
			json_decref(set);
			return -1;
		}
		if (auth_key_entry(&a->keys[a->nkeys++], dir, kid, entry, msg,
		    sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s: %s", path, msg);
			json_decref(set);
			return -1;
		}
	}
	json_decref(set);
	return 0;
}

int
auth_load(struct auth **out, const char *path, unsigned int mask,
    const char *audience, const char *issuer, uint64_t skew_ms, char *err,
    size_t errlen)
{
	struct auth	*a;
	char		*text, *p, msg[256], names[128];
	size_t		 len, i;
	int		 rc;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	a->algs = mask & ~BIT(JWT_ALG_NONE);
	a->skew = (int64_t)(skew_ms / 1000);
	strlcpy(a->audience, audience, sizeof(a->audience));
	strlcpy(a->issuer, issuer, sizeof(a->issuer));
	if ((text = auth_read_file(path, &len, err, errlen)) == NULL) {
		free(a);
		return -1;
	}
	for (p = text; isspace((unsigned char)*p); p++)
		;
	if (strncmp(p, "-----BEGIN", 10) == 0) {
		rc = auth_key_pem(&a->keys[0], text, len, path, err, errlen);
		a->nkeys = 1;
	} else if (*p == '{')
		rc = auth_load_set(a, path, text, len, err, errlen);
	else {
		/* A secret file: one line, its end not part of the key. */
		if (len > 0 && text[len - 1] == '\n')
			len--;
		if (len > 0 && text[len - 1] == '\r')
			len--;
		rc = auth_key_secret(&a->keys[0], text, len, path, err,
		    errlen);
		a->nkeys = 1;
	}
	free(text);
	for (i = 0; rc == 0 && i < a->nkeys; i++) {
		a->keys[i].algs &= a->algs;
		if (a->keys[i].algs != 0)
			continue;
		auth_algorithms_text(a->algs, names, sizeof(names));
		snprintf(msg, sizeof(msg), "%s%s%s", a->keys[i].kid[0] ?
		    "key '" : "", a->keys[i].kid, a->keys[i].kid[0] ? "'" :
		    "the key");
		snprintf(err, errlen, "%s: %s fits none of jwt_algorithms "
		    "(%s)", path, msg, names);
		rc = -1;
	}
	if (rc == -1) {
		auth_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

void
auth_free(struct auth *a)
{
	size_t	 i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nkeys; i++) {
		if (a->keys[i].material != NULL)
			explicit_bzero(a->keys[i].material, a->keys[i].len);
		free(a->keys[i].material);
	}
	explicit_bzero(a, sizeof(*a));
	free(a);
}

size_t
auth_key_count(const struct auth *a)
{
	return a != NULL ? a->nkeys : 0;
}

int
auth_token_is_jwt(const char *token)
{
	const char	*dot;

	if (token == NULL || (dot = strchr(token, '.')) == NULL ||
	    (dot = strchr(dot + 1, '.')) == NULL)
		return 0;
	return strchr(dot + 1, '.') == NULL;
}

/* The JOSE header of token (its first part, base64url) as JSON; NULL if
 * it is not. */
static json_t *
auth_header_json(const char *token)
{
	unsigned char	 out[AUTH_HEADER_MAX];
	char		 b64[AUTH_HEADER_MAX + 4];
	size_t		 len, i, pad;
	int		 n;

	len = strcspn(token, ".");
	if (len == 0 || len > AUTH_HEADER_MAX || len % 4 == 1)
		return NULL;
	for (i = 0; i < len; i++) {
		char	 ch = token[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!isalnum((unsigned char)ch))
			return NULL;
		b64[i] = ch;
	}
	pad = (4 - len % 4) % 4;
	for (i = 0; i < pad; i++)
		b64[len + i] = '=';
	n = EVP_DecodeBlock(out, (const unsigned char *)b64,
	    (int)(len + pad));
	if (n < 0 || (size_t)n < pad)
		return NULL;
	return json_loadb((const char *)out, (size_t)n - pad,
	    JSON_REJECT_DUPLICATES, NULL);
}

/* A NumericDate claim: 1 present (in *t), 0 absent, -1 not a number. */
static int
auth_claim_time(json_t *claims, const char *name, int64_t *t)
{
	json_t	*v = json_object_get(claims, name);
	double	 d;

	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		*t = (int64_t)json_integer_value(v);
		return 1;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!(d > -1e15 && d < 1e15))
		return -1;
	*t = (int64_t)d;
	return 1;
}

/* Is v a list of at most AUTH_PATTERNS_MAX topic patterns? */
static int
auth_patterns_valid(json_t *v)
{
	json_t	*p;
	size_t	 i;

	if (v == NULL)
		return 1;
	if (!json_is_array(v) || json_array_size(v) > AUTH_PATTERNS_MAX)
		return 0;
	json_array_foreach(v, i, p) {
		if (!json_is_string(p) || !pattern_valid(json_string_value(p),
		    json_string_length(p)))
			return 0;
	}
	return 1;
}

static int
auth_audience_ok(const struct auth *a, json_t *aud)
{
	json_t	*v;
	size_t	 i;

	if (a->audience[0] == '\0')
		return 1;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), a->audience) == 0;
	if (!json_is_array(aud))
		return 0;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), a->audience) == 0)
			return 1;
	return 0;
}

/* The registered claims and the "ringcast" claim of a verified token. */
static enum auth_result
auth_claims_check(const struct auth *a, json_t *claims, time_t now,
    struct auth_grant *g, const char **reason)
{
	json_t	*iss, *rc;
	int64_t	 exp, nbf, iat;
	int	 has;

	if (!json_is_object(claims)) {
		*reason = "the claims are not a JSON object";
		return AUTH_INVALID;
	}
	if ((has = auth_claim_time(claims, "exp", &exp)) != 1) {
		*reason = has == 0 ? "no exp claim" : "exp is not a number";
		return AUTH_INVALID;
	}
	if ((int64_t)now >= exp + a->skew) {
		*reason = "the token has expired";
		return AUTH_INVALID;
	}
	if ((has = auth_claim_time(claims, "nbf", &nbf)) == -1) {
		*reason = "nbf is not a number";
		return AUTH_INVALID;
	}
	if (has && (int64_t)now + a->skew < nbf) {
		*reason = "the token is not valid yet (nbf)";
		return AUTH_INVALID;
	}
	if ((has = auth_claim_time(claims, "iat", &iat)) == -1) {
		*reason = "iat is not a number";
		return AUTH_INVALID;
	}
	if (has && iat > (int64_t)now + a->skew) {
		*reason = "the token was issued in the future (iat)";
		return AUTH_INVALID;
	}
	if (!auth_audience_ok(a, json_object_get(claims, "aud"))) {
		*reason = "the token is not for this audience (aud)";
		return AUTH_INVALID;
	}
	iss = json_object_get(claims, "iss");
	if (a->issuer[0] != '\0' && (!json_is_string(iss) ||
	    strcmp(json_string_value(iss), a->issuer) != 0)) {
		*reason = "the token is not from the configured issuer (iss)";
		return AUTH_INVALID;
	}
	rc = json_object_get(claims, "ringcast");
	if (rc != NULL && (!json_is_object(rc) ||
	    !auth_patterns_valid(json_object_get(rc, "subscribe")) ||
	    !auth_patterns_valid(json_object_get(rc, "publish")))) {
		*reason = "bad ringcast claim: want {\"subscribe\": "
		    "[patterns], \"publish\": [patterns]}";
		return AUTH_INVALID;
	}
	g->claims = rc != NULL ? json_incref(rc) : NULL;
	g->exp = exp;
	return AUTH_OK;
}

enum auth_result
auth_verify(const struct auth *a, const char *token, time_t now,
    struct auth_grant *g, const char **reason)
{
	const struct auth_key	*key;
	json_t			*head, *claims;
	const char		*kid = NULL, *algname;
	jwt_t			*jwt = NULL;
	char			*text;
	size_t			 i, candidates = 0;
	int			 alg = -1, rc = EINVAL;
	enum auth_result	 res;

	memset(g, 0, sizeof(*g));
	if (a == NULL || a->nkeys == 0) {
		*reason = "no JWT keys are configured";
		return AUTH_INVALID;
	}
	if (strlen(token) > AUTH_TOKEN_MAX || !auth_token_is_jwt(token)) {
		*reason = "malformed token";
		return AUTH_INVALID;
	}
	if ((head = auth_header_json(token)) == NULL ||
	    !json_is_object(head)) {
		json_decref(head);
		*reason = "malformed token header";
		return AUTH_INVALID;
	}
	algname = json_string_value(json_object_get(head, "alg"));
	if (json_object_get(head, "kid") != NULL &&
	    (kid = json_string_value(json_object_get(head, "kid"))) == NULL) {
		json_decref(head);
		*reason = "kid is not a string";
		return AUTH_INVALID;
	}
	if (algname == NULL || (alg = auth_alg_of(algname)) == -1 ||
	    !(a->algs & BIT(alg))) {
		*reason = algname != NULL && strcasecmp(algname, "none") == 0 ?
		    "alg none is never accepted" :
		    "the token's alg is not one of jwt_algorithms";
		json_decref(head);
		return AUTH_INVALID;
	}
	for (i = 0; i < a->nkeys && rc != 0 && rc != ENOMEM; i++) {
		key = &a->keys[i];
		if (!(key->algs & BIT(alg)))
			continue;
		if (kid != NULL && key->kid[0] != '\0' &&
		    strcmp(kid, key->kid) != 0)
			continue;
		candidates++;
		rc = jwt_decode(&jwt, token, key->material, (int)key->len);
		/* The header that chose the key is the one verified. */
		if (rc == 0 && jwt_get_alg(jwt) != (jwt_alg_t)alg) {
			jwt_free(jwt);
			jwt = NULL;
			rc = EINVAL;
		}
	}
	json_decref(head);
	if (rc == ENOMEM) {
		*reason = "out of memory";
		return AUTH_ERROR;
	}
	if (candidates == 0) {
		*reason = kid != NULL ? "no key has the token's kid" :
		    "no key fits the token's alg";
		return AUTH_INVALID;
	}
	if (rc != 0) {
		*reason = "bad signature or malformed token";
		return AUTH_INVALID;
	}
	text = jwt_get_grants_json(jwt, NULL);
	jwt_free(jwt);
	if (text == NULL) {
		*reason = "out of memory";
		return AUTH_ERROR;
	}
	claims = json_loads(text, 0, NULL);
	free(text);
	if (claims == NULL) {
		*reason = "out of memory";
		return AUTH_ERROR;
	}
	res = auth_claims_check(a, claims, now, g, reason);
	json_decref(claims);
	return res;
}

int
auth_grant_allows(const struct auth_grant *g, uint32_t right, const char *t,
    size_t len)
{
	json_t	*list, *p;
	size_t	 i;

	if (g->claims == NULL)
		return 0;
	list = json_object_get(g->claims, right == CATALOG_RIGHT_PUBLISH ?
	    "publish" : "subscribe");
	json_array_foreach(list, i, p) {
		if (pattern_match(json_string_value(p), json_string_length(p),
		    t, len))
			return 1;
	}
	return 0;
}

void
auth_grant_free(struct auth_grant *g)
{
	json_decref(g->claims);
	memset(g, 0, sizeof(*g));
}

enum auth_answer
auth_check(const struct auth *a, struct catalog *cat, struct auth_cred *cred,
    uint32_t topic_id, const char *name, uint32_t right, time_t now)
{
	enum catalog_result	 res;

	if (cred->token == NULL)
		return AUTH_NO_TOKEN;
	if (a != NULL && auth_token_is_jwt(cred->token)) {
		if (cred->state == 0) {
			switch (auth_verify(a, cred->token, now, &cred->grant,
			    &cred->reason)) {
			case AUTH_OK:
				cred->state = 1;
				break;
			case AUTH_INVALID:
				cred->state = -1;
				break;
			case AUTH_ERROR:
				cred->state = -2;
				break;
			}
		}
		if (cred->state == -1)
			return AUTH_BAD_TOKEN;
		if (cred->state == -2)
			return AUTH_UNAVAILABLE;
		return auth_grant_allows(&cred->grant, right, name,
		    strlen(name)) ? AUTH_ALLOWED : AUTH_FORBIDDEN;
	}
	res = catalog_token_check(cat, cred->token, strlen(cred->token),
	    topic_id, right);
	if (res == CATALOG_FOUND)
		return AUTH_ALLOWED;
	return res == CATALOG_NOT_FOUND ? AUTH_FORBIDDEN : AUTH_UNAVAILABLE;
}

void
auth_cred_free(struct auth_cred *cred)
{
	auth_grant_free(&cred->grant);
	cred->state = 0;
}
