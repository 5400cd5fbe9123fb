/*
 * ccat: see ccat.h.  The bucket is the truth: ringcastctl writes it first
 * and then applies the same entry to its node's catalog, as every other
 * node's watcher does.  Keys are canonical (lowercase hex), so one object
 * has one key; a value names its key's object again and is checked against
 * it.  Unknown members of a value are ignored, so a newer peer's values
 * still apply.  The watcher thread owns its catalog handle and its
 * kvWatcher; the lock guards the counters and the watcher pointer (which
 * ccat_watch_stop stops from another thread).  The watcher is never made
 * again on a reconnect: nats.c resumes its ordered consumer itself, and
 * destroying it meanwhile races with that (a use-after-free in libnats
 * 3.4.1 under ASan).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ringcast/catalog.h"
#include "ringcast/ccat.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/pattern.h"

#define CCAT_VERSION		1
#define CCAT_RETRY_MS		1000	/* between attempts while NATS is away */
#define CCAT_NEXT_MS		500	/* a watcher's wait, bounds stop's */
#define CCAT_KV_OP_HDR		"KV-Operation"
#define CCAT_KV_OP_DEL		"DEL"
#define CCAT_KV_SUBJECT		"$KV."

struct ccat_watch {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	jsCtx			*js;
	kvWatcher		*watcher;	/* under lock */
	int			 stop;		/* under lock */
	struct ccat_stats	 stats;		/* under lock */
	struct config		*conf;		/* the fields the thread reads */
	struct catalog		*shared;	/* the caller's, or NULL */
	pthread_mutex_t		*shared_lock;	/* held while it is written */
};

static const char	 hexdigits[] = "0123456789abcdef";

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;	/* keys are lowercase: one object, one key */
}

static void
hex_put(char *out, const unsigned char *in, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* Decode hex[hexlen] into out (hexlen / 2 bytes); 0 or -1. */
static int
hex_get(unsigned char *out, const char *hex, size_t hexlen)
{
	size_t	 i;
	int	 hi, lo;

	if (hexlen % 2 != 0)
		return -1;
	for (i = 0; i < hexlen / 2; i++) {
		if ((hi = hexval(hex[2 * i])) == -1 ||
		    (lo = hexval(hex[2 * i + 1])) == -1)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
ccat_key_topic(char *buf, size_t len, const char *name)
{
	size_t	 n = strlen(name), pre = sizeof(CCAT_TOPIC_PREFIX) - 1;

	if (!pattern_valid(name, n) || len < pre + 2 * n + 1)
		return -1;
	memcpy(buf, CCAT_TOPIC_PREFIX, pre);
	hex_put(buf + pre, (const unsigned char *)name, n);
	return 0;
}

static int
token_id_valid(const char *id, size_t len)
{
	size_t	 i;

	if (len != TOKEN_ID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (hexval(id[i]) == -1)
			return 0;
	return 1;
}

void
ccat_token_id(char *id, const unsigned char *hash)
{
	hex_put(id, hash, TOKEN_ID_LEN / 2);
}

int
ccat_key_token(char *buf, size_t len, const char *id)
{
	if (!token_id_valid(id, strlen(id)))
		return -1;
	if ((size_t)snprintf(buf, len, "%s%s", CCAT_TOKEN_PREFIX, id) >= len)
		return -1;
	return 0;
}

char *
ccat_value_topic(const struct catalog_topic *t)
{
	json_t	*o;
	char	*s;

	o = json_pack("{s:i, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:I}",
	    "v", CCAT_VERSION, "kind", "topic", "name", t->name,
	    "private", (t->flags & CATALOG_TOPIC_PRIVATE) != 0,
	    "family", (t->flags & CATALOG_TOPIC_FAMILY) != 0,
	    "description", t->description, "keep", (json_int_t)t->keep,
	    "max_age_ms", (json_int_t)t->max_age_ms,
	    "created", (json_int_t)t->created);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

char *
ccat_value_token(const char *id, const unsigned char *hash, uint32_t rights,
    const char *topic, uint64_t created)
{
	json_t	*o;
	char	 hex[2 * CCAT_HASH_LEN + 1], *s;

	hex_put(hex, hash, CCAT_HASH_LEN);
	o = json_pack("{s:i, s:s, s:s, s:s, s:b, s:b, s:s?, s:I}",
	    "v", CCAT_VERSION, "kind", "token", "id", id, "hash", hex,
	    "publish", (rights & CATALOG_RIGHT_PUBLISH) != 0,
	    "subscribe", (rights & CATALOG_RIGHT_SUBSCRIBE) != 0,
	    "topic", topic, "created", (json_int_t)created);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* A member of o that must be a string of at most max bytes, without NUL:
 * its bytes, or NULL with err. */
static const char *
json_str(json_t *o, const char *name, size_t max, const char *key, char *err,
    size_t errlen)
{
	json_t	*v = json_object_get(o, name);

	if (v == NULL || !json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "catalog entry %s: \"%s\" is not a "
		    "string of at most %zu bytes", key, name, max);
		return NULL;
	}
	return json_string_value(v);
}

/* A member of o that must be an integer 0..max; 0 or -1 with err. */
static int
json_uint(json_t *o, const char *name, uint64_t max, uint64_t *out,
    const char *key, char *err, size_t errlen)
{
	json_t	*v = json_object_get(o, name);

	if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		snprintf(err, errlen, "catalog entry %s: \"%s\" is not an "
		    "integer from 0 to %" PRIu64, key, name, max);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int
json_flag(json_t *o, const char *name, int *out, const char *key, char *err,
    size_t errlen)
{
	json_t	*v = json_object_get(o, name);

	if (v == NULL || !json_is_boolean(v)) {
		snprintf(err, errlen, "catalog entry %s: \"%s\" is not true "
		    "or false", key, name);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The value of a put: a JSON object of this version and kind. */
static json_t *
value_load(const void *value, size_t len, const char *kind, const char *key,
    char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*o, *v, *k;

	if (len > CCAT_VALUE_MAX) {
		snprintf(err, errlen, "catalog entry %s: value of %zu bytes "
		    "(at most %d)", key, len, CCAT_VALUE_MAX);
		return NULL;
	}
	o = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		snprintf(err, errlen, "catalog entry %s: not a JSON object%s%s",
		    key, o == NULL ? ": " : "", o == NULL ? jerr.text : "");
		json_decref(o);
		return NULL;
	}
	v = json_object_get(o, "v");
	k = json_object_get(o, "kind");
	if (v == NULL || !json_is_integer(v) ||
	    json_integer_value(v) != CCAT_VERSION || k == NULL ||
	    !json_is_string(k) || strcmp(json_string_value(k), kind) != 0) {
		snprintf(err, errlen, "catalog entry %s: not a version %d "
		    "%s", key, CCAT_VERSION, kind);
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
topic_parse(struct ccat_entry *e, json_t *o, const char *key, char *err,
    size_t errlen)
{
	const char	*name, *desc;
	uint64_t	 keep, max_age, created;
	int		 private, family;

	if ((name = json_str(o, "name", TOPIC_NAME_MAX, key, err,
	    errlen)) == NULL ||
	    (desc = json_str(o, "description", TOPIC_DESC_MAX, key, err,
	    errlen)) == NULL ||
	    json_flag(o, "private", &private, key, err, errlen) == -1 ||
	    json_flag(o, "family", &family, key, err, errlen) == -1 ||
	    json_uint(o, "keep", UINT32_MAX, &keep, key, err, errlen) == -1 ||
	    json_uint(o, "max_age_ms", INT64_MAX, &max_age, key, err,
	    errlen) == -1 ||
	    json_uint(o, "created", INT64_MAX, &created, key, err,
	    errlen) == -1)
		return -1;
	if (strcmp(name, e->topic.name) != 0) {
		snprintf(err, errlen, "catalog entry %s: names topic '%s', "
		    "not '%s'", key, name, e->topic.name);
		return -1;
	}
	if (family != pattern_is_family(name, strlen(name))) {
		snprintf(err, errlen, "catalog entry %s: \"family\" is %s for "
		    "'%s'", key, family ? "true" : "false", name);
		return -1;
	}
	if (!catalog_topic_description_valid(desc, strlen(desc))) {
		snprintf(err, errlen, "catalog entry %s: description with "
		    "control characters", key);
		return -1;
	}
	strlcpy(e->topic.description, desc, sizeof(e->topic.description));
	e->topic.flags = (private ? CATALOG_TOPIC_PRIVATE : 0) |
	    (family ? CATALOG_TOPIC_FAMILY : 0);
	e->topic.keep = (uint32_t)keep;
	e->topic.max_age_ms = max_age;
	e->topic.created = created;
	return 0;
}

static int
token_parse(struct ccat_entry *e, json_t *o, const char *key, char *err,
    size_t errlen)
{
	json_t		*tv;
	const char	*id, *hash, *topic = NULL;
	uint64_t	 created;
	int		 publish, subscribe;

	if ((id = json_str(o, "id", TOKEN_ID_LEN, key, err, errlen)) == NULL ||
	    (hash = json_str(o, "hash", 2 * CCAT_HASH_LEN, key, err,
	    errlen)) == NULL ||
	    json_flag(o, "publish", &publish, key, err, errlen) == -1 ||
	    json_flag(o, "subscribe", &subscribe, key, err, errlen) == -1 ||
	    json_uint(o, "created", INT64_MAX, &created, key, err,
	    errlen) == -1)
		return -1;
	tv = json_object_get(o, "topic");
	if (tv != NULL && !json_is_null(tv) && (topic = json_str(o, "topic",
	    TOPIC_NAME_MAX, key, err, errlen)) == NULL)
		return -1;
	if (strcmp(id, e->token_id) != 0) {
		snprintf(err, errlen, "catalog entry %s: names token '%s'",
		    key, id);
		return -1;
	}
	if (strlen(hash) != 2 * CCAT_HASH_LEN ||
	    hex_get(e->token_hash, hash, strlen(hash)) == -1 ||
	    strncmp(hash, id, TOKEN_ID_LEN) != 0) {
		snprintf(err, errlen, "catalog entry %s: \"hash\" is not the "
		    "lowercase hex SHA-256 that starts with the id", key);
		return -1;
	}
	if (!publish && !subscribe) {
		snprintf(err, errlen, "catalog entry %s: a token without "
		    "rights", key);
		return -1;
	}
	if (topic != NULL && !pattern_valid(topic, strlen(topic))) {
		snprintf(err, errlen, "catalog entry %s: topic of %zu bytes: "
		    "invalid name", key, strlen(topic));
		return -1;
	}
	e->token_rights = (publish ? CATALOG_RIGHT_PUBLISH : 0) |
	    (subscribe ? CATALOG_RIGHT_SUBSCRIBE : 0);
	strlcpy(e->token_topic, topic != NULL ? topic : "",
	    sizeof(e->token_topic));
	e->token_created = created;
	return 0;
}

/* The object a key names, into e; 0 or -1 with err.  The key is echoed
 * only once it is known to be printable (its bytes are a peer's). */
static int
key_parse(struct ccat_entry *e, const char *key, char *err, size_t errlen)
{
	size_t	 tp = sizeof(CCAT_TOPIC_PREFIX) - 1;
	size_t	 kp = sizeof(CCAT_TOKEN_PREFIX) - 1;
	size_t	 len = strnlen(key, CCAT_KEY_MAX + 1), hexlen;

	if (len <= CCAT_KEY_MAX && strncmp(key, CCAT_TOPIC_PREFIX, tp) == 0) {
		hexlen = len - tp;
		if (hexlen == 0 || hexlen > 2 * TOPIC_NAME_MAX ||
		    hex_get((unsigned char *)e->topic.name, key + tp,
		    hexlen) == -1 ||
		    !pattern_valid(e->topic.name, hexlen / 2)) {
			snprintf(err, errlen, "catalog entry of %zu bytes: "
			    "not the lowercase hex of a topic name", len);
			return -1;
		}
		e->topic.name[hexlen / 2] = '\0';
		e->kind = CCAT_TOPIC;
		return 0;
	}
	if (len <= CCAT_KEY_MAX && strncmp(key, CCAT_TOKEN_PREFIX, kp) == 0 &&
	    token_id_valid(key + kp, len - kp)) {
		memcpy(e->token_id, key + kp, TOKEN_ID_LEN);
		e->token_id[TOKEN_ID_LEN] = '\0';
		e->kind = CCAT_TOKEN;
		return 0;
	}
	snprintf(err, errlen, "catalog entry of %zu bytes: not topic.<hex "
	    "name> or token.<id>", len);
	return -1;
}

/* A delete marker's value: nothing, or {"members": true|false}. */
static int
delete_parse(struct ccat_entry *e, const void *value, size_t len,
    const char *key, char *err, size_t errlen)
{
	json_t	*o;
	int	 rc = 0;

	if (len == 0)
		return 0;
	if (len > CCAT_VALUE_MAX || (o = json_loadb(value, len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		snprintf(err, errlen, "catalog entry %s: a delete with a value "
		    "that is not JSON", key);
		return -1;
	}
	if (!json_is_object(o) || json_flag(o, "members", &e->members, key,
	    err, errlen) == -1) {
		snprintf(err, errlen, "catalog entry %s: a delete's value is "
		    "not {\"members\": true|false}", key);
		rc = -1;
	} else if (e->members && (e->kind != CCAT_TOPIC ||
	    !pattern_is_family(e->topic.name, strlen(e->topic.name)))) {
		snprintf(err, errlen, "catalog entry %s: \"members\" on "
		    "something other than a family", key);
		rc = -1;
	}
	json_decref(o);
	return rc;
}

int
ccat_entry_parse(struct ccat_entry *e, const char *key, const void *value,
    size_t len, int deleted, char *err, size_t errlen)
{
	json_t	*o;
	int	 rc;

	memset(e, 0, sizeof(*e));
	if (key == NULL || (value == NULL && len > 0)) {
		snprintf(err, errlen, "catalog entry: no key");
		return -1;
	}
	if (key_parse(e, key, err, errlen) == -1)
		return -1;
	e->deleted = deleted;
	if (deleted)
		return delete_parse(e, value, len, key, err, errlen);
	o = value_load(value, len, e->kind == CCAT_TOPIC ? "topic" : "token",
	    key, err, errlen);
	if (o == NULL)
		return -1;
	rc = e->kind == CCAT_TOPIC ? topic_parse(e, o, key, err, errlen) :
	    token_parse(e, o, key, err, errlen);
	json_decref(o);
	return rc;
}

int
ccat_entry_apply(struct catalog *cat, const struct ccat_entry *e, char *err,
    size_t errlen)
{
	enum catalog_result	 res;
	int			 changed = 0;

	if (e->kind == CCAT_TOPIC && !e->deleted)
		res = catalog_topic_put(cat, &e->topic, &changed);
	else if (e->kind == CCAT_TOPIC && e->members)
		res = catalog_family_remove(cat, e->topic.name, NULL);
	else if (e->kind == CCAT_TOPIC)
		res = catalog_topic_remove(cat, e->topic.name);
	else if (!e->deleted)
		res = catalog_token_put(cat, e->token_hash, e->token_rights,
		    e->token_topic[0] != '\0' ? e->token_topic : NULL,
		    e->token_created, &changed);
	else
		res = catalog_token_remove(cat, e->token_id);
	if (res == CATALOG_ERROR) {
		strlcpy(err, catalog_error(cat), errlen);
		return -1;
	}
	/* A token whose topic is not here (yet, or any more). */
	if (res == CATALOG_NOT_FOUND && e->kind == CCAT_TOKEN && !e->deleted)
		return 2;
	/* A delete of what is not here. */
	if (res == CATALOG_NOT_FOUND)
		return 0;
	return e->deleted ? 1 : changed;
}

int
ccat_apply(struct catalog *cat, const char *key, const void *value,
    size_t len, int deleted, char *err, size_t errlen)
{
	struct ccat_entry	 e;

	if (ccat_entry_parse(&e, key, value, len, deleted, err, errlen) == -1)
		return -1;
	return ccat_entry_apply(cat, &e, err, errlen);
}

int
ccat_bucket_name(char *buf, size_t len, const struct config *conf)
{
	if ((size_t)snprintf(buf, len, "%s%s", conf->cluster_stream,
	    CCAT_BUCKET_SUFFIX) >= len)
		return -1;
	return 0;
}

int
ccat_bucket_open(kvStore **kvp, jsCtx *js, const struct config *conf,
    char *err, size_t errlen)
{
	kvConfig	 kc;
	char		 bucket[128];
	natsStatus	 s;

	*kvp = NULL;
	if (ccat_bucket_name(bucket, sizeof(bucket), conf) == -1) {
		snprintf(err, errlen, "[cluster] stream too long");
		return -1;
	}
	s = js_KeyValue(kvp, js, bucket);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = bucket;
		kc.Description = "ringcast catalog (topics, families, tokens)";
		kc.History = 1;
		kc.Replicas = (int)conf->cluster_replicas;
		kc.StorageType = js_FileStorage;
		kc.MaxValueSize = CCAT_VALUE_MAX;
		s = js_CreateKeyValue(kvp, js, &kc);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "bucket %s: %s", bucket,
		    cluster_status_text(s));
		*kvp = NULL;
		return -1;
	}
	return 0;
}

int
ccat_client_open(struct ccat_client *c, const struct config *conf,
    char *err, size_t errlen)
{
	char	 why[512];

	char	 prefix[sizeof(conf->cluster_nats) + 32];
	size_t	 n;

	memset(c, 0, sizeof(*c));
	if (cluster_connect(conf, "ringcastctl", 0, NULL, NULL, NULL, &c->nc,
	    why, sizeof(why)) == -1) {
		/* Say the servers once. */
		n = (size_t)snprintf(prefix, sizeof(prefix),
		    "cannot reach NATS at %s: ", conf->cluster_nats);
		snprintf(err, errlen, "cluster unreachable at %s: %s",
		    conf->cluster_nats, strncmp(why, prefix, n) == 0 ?
		    why + n : why);
		return -1;
	}
	if (cluster_jetstream(c->nc, NULL, NULL,
	    (int64_t)conf->cluster_publish_timeout_ms, &c->js, why,
	    sizeof(why)) == -1 ||
	    ccat_bucket_open(&c->kv, c->js, conf, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "cluster unreachable at %s: %s",
		    conf->cluster_nats, why);
		ccat_client_close(c);
		return -1;
	}
	return 0;
}

void
ccat_client_close(struct ccat_client *c)
{
	kvStore_Destroy(c->kv);
	jsCtx_Destroy(c->js);
	if (c->nc != NULL) {
		natsConnection_Close(c->nc);
		natsConnection_Destroy(c->nc);
	}
	memset(c, 0, sizeof(*c));
}

int
ccat_get(kvStore *kv, const char *key, struct ccat_entry *e, uint64_t *rev,
    char *err, size_t errlen)
{
	kvEntry		*ke = NULL;
	natsStatus	 s;
	int		 rc;

	s = kvStore_Get(&ke, kv, key);
	if (s == NATS_NOT_FOUND)
		return 1;
	if (s != NATS_OK) {
		snprintf(err, errlen, "get %s: %s", key,
		    cluster_status_text(s));
		return -1;
	}
	rc = ccat_entry_parse(e, key, kvEntry_Value(ke),
	    (size_t)kvEntry_ValueLen(ke), 0, err, errlen);
	if (rev != NULL)
		*rev = kvEntry_Revision(ke);
	kvEntry_Destroy(ke);
	return rc;
}

/* Did a conditional write fail because of the key's revision? */
static int
wrong_revision(natsStatus s)
{
	natsStatus	 ls;
	const char	*last;

	if (s != NATS_ERR)
		return 0;
	last = nats_GetLastError(&ls);
	/* JetStream error 10071: wrong last sequence. */
	return last != NULL && strstr(last, "wrong last sequence") != NULL;
}

int
ccat_publish_topic(kvStore *kv, const struct catalog_topic *t, uint64_t rev,
    char *err, size_t errlen)
{
	char		 key[CCAT_KEY_MAX], *value;
	uint64_t	 nrev;
	natsStatus	 s;

	if (ccat_key_topic(key, sizeof(key), t->name) == -1) {
		snprintf(err, errlen, "topic of %zu bytes: invalid name",
		    strlen(t->name));
		return -1;
	}
	if ((value = ccat_value_topic(t)) == NULL) {
		snprintf(err, errlen, "topic '%s': %s", t->name,
		    strerror(ENOMEM));
		return -1;
	}
	if (rev == 0)
		s = kvStore_CreateString(&nrev, kv, key, value);
	else
		s = kvStore_UpdateString(&nrev, kv, key, value, rev);
	free(value);
	if (s == NATS_OK)
		return 0;
	if (wrong_revision(s))
		return 1;
	snprintf(err, errlen, "topic '%s': put %s: %s", t->name, key,
	    cluster_status_text(s));
	return -1;
}

/* Write a delete marker of key whose value says whether a family's members
 * go with it: kvStore_Delete cannot carry one.  0 or -1 with err. */
static int
delete_members(struct ccat_client *c, const char *key, char *err,
    size_t errlen)
{
	natsMsg		*m = NULL;
	jsPubAck	*pa = NULL;
	char		 subject[256 + CCAT_KEY_MAX];
	const char	*bucket = kvStore_Bucket(c->kv);
	static const char body[] = "{\"members\":true}";
	natsStatus	 s;

	snprintf(subject, sizeof(subject), "%s%s.%s", CCAT_KV_SUBJECT, bucket,
	    key);
	s = natsMsg_Create(&m, subject, NULL, body, (int)sizeof(body) - 1);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, CCAT_KV_OP_HDR, CCAT_KV_OP_DEL);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, c->js, m, NULL, NULL);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(pa);
	if (s != NATS_OK) {
		snprintf(err, errlen, "delete %s: %s", key,
		    cluster_status_text(s));
		return -1;
	}
	return 0;
}

/* Is the token entry e bound to name, or with members to a member of the
 * family name? */
static int
token_bound(const struct ccat_entry *e, const char *name, int members)
{
	size_t	 n = strlen(name), tn = strlen(e->token_topic);

	if (tn == 0)
		return 0;
	if (strcmp(e->token_topic, name) == 0)
		return 1;
	return members && catalog_topic_name_valid(e->token_topic, tn) &&
	    pattern_match(name, n, e->token_topic, tn);
}

int
ccat_publish_topic_remove(struct ccat_client *c, const char *name,
    int members, char *err, size_t errlen)
{
	kvKeysList		 keys;
	struct ccat_entry	 e;
	char			 key[CCAT_KEY_MAX], why[512];
	natsStatus		 s;
	int			 i, rc = 0;

	if (ccat_key_topic(key, sizeof(key), name) == -1) {
		snprintf(err, errlen, "topic of %zu bytes: invalid name",
		    strlen(name));
		return -1;
	}
	/* The tokens first: a node never holds a token whose topic's
	 * removal it has already seen come back. */
	memset(&keys, 0, sizeof(keys));
	s = kvStore_Keys(&keys, c->kv, NULL);
	if (s != NATS_OK && s != NATS_NOT_FOUND) {
		snprintf(err, errlen, "keys: %s", cluster_status_text(s));
		return -1;
	}
	for (i = 0; s == NATS_OK && i < keys.Count && rc == 0; i++) {
		if (strncmp(keys.Keys[i], CCAT_TOKEN_PREFIX,
		    sizeof(CCAT_TOKEN_PREFIX) - 1) != 0)
			continue;
		if (ccat_get(c->kv, keys.Keys[i], &e, NULL, why,
		    sizeof(why)) != 0 || !token_bound(&e, name, members))
			continue;
		if ((s = kvStore_Delete(c->kv, keys.Keys[i])) != NATS_OK) {
			snprintf(err, errlen, "delete %s: %s", keys.Keys[i],
			    cluster_status_text(s));
			rc = -1;
		}
	}
	kvKeysList_Destroy(&keys);
	if (rc == -1)
		return -1;
	if (members)
		return delete_members(c, key, err, errlen);
	if ((s = kvStore_Delete(c->kv, key)) != NATS_OK) {
		snprintf(err, errlen, "delete %s: %s", key,
		    cluster_status_text(s));
		return -1;
	}
	return 0;
}

int
ccat_publish_token(kvStore *kv, const char *id, const unsigned char *hash,
    uint32_t rights, const char *topic, uint64_t created, char *err,
    size_t errlen)
{
	char		 key[CCAT_KEY_MAX], *value;
	uint64_t	 rev;
	natsStatus	 s;

	if (ccat_key_token(key, sizeof(key), id) == -1) {
		snprintf(err, errlen, "token '%.*s': not a token id",
		    TOKEN_ID_LEN, id);
		return -1;
	}
	if ((value = ccat_value_token(id, hash, rights, topic,
	    created)) == NULL) {
		snprintf(err, errlen, "token %s: %s", id, strerror(ENOMEM));
		return -1;
	}
	s = kvStore_CreateString(&rev, kv, key, value);
	free(value);
	if (s == NATS_OK)
		return 0;
	if (wrong_revision(s))
		return 1;
	snprintf(err, errlen, "token %s: put %s: %s", id, key,
	    cluster_status_text(s));
	return -1;
}

int
ccat_publish_token_remove(kvStore *kv, const char *id, char *err,
    size_t errlen)
{
	struct ccat_entry	 e;
	char			 key[CCAT_KEY_MAX];
	natsStatus		 s;
	int			 rc;

	if (ccat_key_token(key, sizeof(key), id) == -1)
		return 1;
	if ((rc = ccat_get(kv, key, &e, NULL, err, errlen)) != 0)
		return rc;
	if ((s = kvStore_Delete(kv, key)) != NATS_OK) {
		snprintf(err, errlen, "delete %s: %s", key,
		    cluster_status_text(s));
		return -1;
	}
	return 0;
}

int
ccat_sync_key(kvStore *kv, struct catalog *cat, const char *key, char *err,
    size_t errlen)
{
	kvEntry		*ke = NULL;
	natsStatus	 s;
	int		 rc;

	s = kvStore_Get(&ke, kv, key);
	if (s == NATS_NOT_FOUND)
		return ccat_apply(cat, key, NULL, 0, 1, err, errlen);
	if (s != NATS_OK) {
		snprintf(err, errlen, "get %s: %s", key,
		    cluster_status_text(s));
		return -1;
	}
	rc = ccat_apply(cat, key, kvEntry_Value(ke),
	    (size_t)kvEntry_ValueLen(ke), 0, err, errlen);
	kvEntry_Destroy(ke);
	return rc;
}

/*
 * Tokens met before their topic.  A bucket replays in the order of each
 * key's last write, so a topic written after its token (topic set) comes
 * after it: such tokens wait for the end of the replay.
 */
struct deferred {
	struct ccat_entry	*v;
	size_t			 n;
	size_t			 cap;
};

static void
count(struct ccat_stats *st, int rc, const char *err)
{
	if (rc == 1)
		st->applied++;
	if (rc == -1) {
		st->errors++;
		strlcpy(st->last_error, err, sizeof(st->last_error));
	}
}

/* Apply one watched entry, counting it in *st; with later (the replay),
 * a token whose topic is not here yet waits there.  The entry stays the
 * caller's. */
static void
entry_apply(struct catalog *cat, kvEntry *ke, struct deferred *later,
    struct ccat_stats *st)
{
	struct ccat_entry	 e, *grown;
	kvOperation		 op = kvEntry_Operation(ke);
	char			 err[sizeof(st->last_error)];
	int			 rc;

	st->entries++;
	rc = ccat_entry_parse(&e, kvEntry_Key(ke), kvEntry_Value(ke),
	    (size_t)kvEntry_ValueLen(ke), op == kvOp_Delete ||
	    op == kvOp_Purge, err, sizeof(err));
	if (rc == 0)
		rc = ccat_entry_apply(cat, &e, err, sizeof(err));
	if (rc == 2 && later != NULL) {
		if (later->n == later->cap) {
			grown = reallocarray(later->v, later->cap * 2 + 8,
			    sizeof(*grown));
			if (grown == NULL) {
				count(st, -1, "catalog entry: out of memory");
				return;
			}
			later->v = grown;
			later->cap = later->cap * 2 + 8;
		}
		later->v[later->n++] = e;
		return;
	}
	count(st, rc, err);
}

/* The replay is over: apply the tokens that waited, and forget them. */
static void
deferred_flush(struct catalog *cat, struct deferred *later,
    struct ccat_stats *st)
{
	char	 err[sizeof(st->last_error)];
	size_t	 i;

	for (i = 0; i < later->n; i++)
		count(st, ccat_entry_apply(cat, &later->v[i], err,
		    sizeof(err)), err);
	free(later->v);
	memset(later, 0, sizeof(*later));
}

int
ccat_sync_all(kvStore *kv, struct catalog *cat, int64_t timeout_ms,
    struct ccat_stats *st, char *err, size_t errlen)
{
	struct deferred	 later = { NULL, 0, 0 };
	kvWatchOptions	 o;
	kvWatcher	*w = NULL;
	kvEntry		*ke;
	natsStatus	 s;

	kvWatchOptions_Init(&o);
	o.Timeout = timeout_ms;
	if ((s = kvStore_WatchAll(&w, kv, &o)) != NATS_OK) {
		snprintf(err, errlen, "watch: %s", cluster_status_text(s));
		return -1;
	}
	for (;;) {
		ke = NULL;
		if ((s = kvWatcher_Next(&ke, w, timeout_ms)) != NATS_OK) {
			snprintf(err, errlen, "watch: %s",
			    cluster_status_text(s));
			free(later.v);
			kvWatcher_Destroy(w);
			return -1;
		}
		/* NULL: the initial state was delivered whole. */
		if (ke == NULL)
			break;
		entry_apply(cat, ke, &later, st);
		kvEntry_Destroy(ke);
	}
	deferred_flush(cat, &later, st);
	st->synced = 1;
	kvWatcher_Destroy(w);
	return 0;
}

int
ccat_fetch_topic(jsCtx *js, const struct config *conf, struct catalog *cat,
    const char *name)
{
	kvStore		*kv;
	kvEntry		*ke = NULL;
	char		 key[CCAT_KEY_MAX], family[TOPIC_NAME_MAX + 2];
	char		 err[512];
	size_t		 n = strlen(name);
	natsStatus	 s;
	int		 rc;

	if (ccat_key_topic(key, sizeof(key), name) == -1)
		return 1;
	if (ccat_bucket_open(&kv, js, conf, err, sizeof(err)) == -1) {
		errno = EIO;
		return -1;
	}
	s = kvStore_Get(&ke, kv, key);
	/* A member is not in the bucket: its family is. */
	if (s == NATS_NOT_FOUND && catalog_topic_name_valid(name, n) &&
	    pattern_family_of(name, n, family, sizeof(family)) != -1 &&
	    ccat_key_topic(key, sizeof(key), family) == 0)
		s = kvStore_Get(&ke, kv, key);
	if (s == NATS_OK) {
		rc = ccat_apply(cat, key, kvEntry_Value(ke),
		    (size_t)kvEntry_ValueLen(ke), 0, err, sizeof(err));
		rc = rc == -1 ? -1 : 0;
	} else
		rc = s == NATS_NOT_FOUND ? 1 : -1;
	kvEntry_Destroy(ke);
	kvStore_Destroy(kv);
	return rc;
}

/* Wait ms or until told to stop; 1 when told. */
static int
watch_pause(struct ccat_watch *w, int ms)
{
	int	 stop, waited;

	for (waited = 0; waited < ms; waited += 100) {
		pthread_mutex_lock(&w->lock);
		stop = w->stop;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			return 1;
		poll(NULL, 0, 100);
	}
	return 0;
}

static void
watch_fail(struct ccat_watch *w, const char *what, natsStatus s)
{
	pthread_mutex_lock(&w->lock);
	w->stats.errors++;
	strlcpy(w->stats.last_error, what, sizeof(w->stats.last_error));
	if (s != NATS_OK) {
		strlcat(w->stats.last_error, ": ", sizeof(w->stats.last_error));
		strlcat(w->stats.last_error, cluster_status_text(s),
		    sizeof(w->stats.last_error));
	}
	pthread_mutex_unlock(&w->lock);
}

/* Drop the watcher so that the loop makes it again (a replay). */
static void
watch_drop(struct ccat_watch *w, kvStore **kv)
{
	kvWatcher	*old;

	pthread_mutex_lock(&w->lock);
	old = w->watcher;
	w->watcher = NULL;
	w->stats.synced = 0;
	pthread_mutex_unlock(&w->lock);
	kvWatcher_Destroy(old);
	kvStore_Destroy(*kv);
	*kv = NULL;
}

static void *
watch_main(void *arg)
{
	struct ccat_watch	*w = arg;
	struct catalog		*cat = w->shared;
	struct ccat_stats	 st;
	struct deferred		 later = { NULL, 0, 0 };
	kvStore			*kv = NULL;
	kvWatcher		*kw;
	kvEntry			*ke;
	kvWatchOptions		 o;
	char			 err[512];
	natsStatus		 s;
	int			 stop;

	while (cat == NULL) {
		if (catalog_open(&cat, w->conf->catalog_path,
		    w->conf->catalog_map_size, CATALOG_CREATE, err,
		    sizeof(err)) == -1) {
			watch_fail(w, err, NATS_OK);
			if (watch_pause(w, CCAT_RETRY_MS))
				return NULL;
		}
	}
	for (;;) {
		pthread_mutex_lock(&w->lock);
		stop = w->stop;
		kw = w->watcher;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		if (kv == NULL && ccat_bucket_open(&kv, w->js, w->conf, err,
		    sizeof(err)) == -1) {
			watch_fail(w, err, NATS_OK);
			if (watch_pause(w, CCAT_RETRY_MS))
				break;
			continue;
		}
		if (kw == NULL) {
			/* A new watcher replays everything again. */
			free(later.v);
			memset(&later, 0, sizeof(later));
			kvWatchOptions_Init(&o);
			if ((s = kvStore_WatchAll(&kw, kv, &o)) != NATS_OK) {
				watch_fail(w, "watch", s);
				watch_drop(w, &kv);
				if (watch_pause(w, CCAT_RETRY_MS))
					break;
				continue;
			}
			pthread_mutex_lock(&w->lock);
			w->watcher = kw;
			w->stats.restarts++;
			pthread_mutex_unlock(&w->lock);
		}
		ke = NULL;
		s = kvWatcher_Next(&ke, kw, CCAT_NEXT_MS);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			pthread_mutex_lock(&w->lock);
			stop = w->stop;
			pthread_mutex_unlock(&w->lock);
			/* Stopped by ccat_watch_stop, or the consumer is gone:
			 * make it again after a pause. */
			if (stop)
				break;
			watch_fail(w, "watch", s);
			watch_drop(w, &kv);
			if (watch_pause(w, CCAT_RETRY_MS))
				break;
			continue;
		}
		pthread_mutex_lock(&w->lock);
		st = w->stats;
		pthread_mutex_unlock(&w->lock);
		if (w->shared_lock != NULL)
			pthread_mutex_lock(w->shared_lock);
		if (ke == NULL) {
			deferred_flush(cat, &later, &st);
			st.synced = 1;
		} else
			entry_apply(cat, ke, st.synced ? NULL : &later, &st);
		if (w->shared_lock != NULL)
			pthread_mutex_unlock(w->shared_lock);
		kvEntry_Destroy(ke);
		/* Only this thread writes the counters. */
		pthread_mutex_lock(&w->lock);
		w->stats = st;
		pthread_mutex_unlock(&w->lock);
	}
	watch_drop(w, &kv);
	free(later.v);
	if (cat != w->shared)
		catalog_close(cat);
	return NULL;
}

int
ccat_watch_start(struct ccat_watch **wp, jsCtx *js, const struct config *conf,
    struct catalog *cat, pthread_mutex_t *catlock, char *err, size_t errlen)
{
	struct ccat_watch	*w;
	int			 rc;

	*wp = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->conf = calloc(1, sizeof(*w->conf))) == NULL) {
		snprintf(err, errlen, "catalog watch: %s", strerror(errno));
		free(w);
		return -1;
	}
	/* Only the fixed-size fields the thread reads: no pointer is shared
	 * with the caller's configuration. */
	strlcpy(w->conf->catalog_path, conf->catalog_path,
	    sizeof(w->conf->catalog_path));
	w->conf->catalog_map_size = conf->catalog_map_size;
	strlcpy(w->conf->cluster_stream, conf->cluster_stream,
	    sizeof(w->conf->cluster_stream));
	w->conf->cluster_replicas = conf->cluster_replicas;
	w->js = js;
	w->shared = cat;
	w->shared_lock = catlock;
	pthread_mutex_init(&w->lock, NULL);
	if ((rc = pthread_create(&w->thread, NULL, watch_main, w)) != 0) {
		snprintf(err, errlen, "catalog watch: pthread_create: %s",
		    strerror(rc));
		pthread_mutex_destroy(&w->lock);
		free(w->conf);
		free(w);
		return -1;
	}
	*wp = w;
	return 0;
}

void
ccat_watch_stats(struct ccat_watch *w, struct ccat_stats *st)
{
	pthread_mutex_lock(&w->lock);
	*st = w->stats;
	pthread_mutex_unlock(&w->lock);
}

void
ccat_watch_stop(struct ccat_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	/* Wakes a kvWatcher_Next; the thread destroys the watcher. */
	if (w->watcher != NULL)
		kvWatcher_Stop(w->watcher);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	free(w->conf);
	free(w);
}
