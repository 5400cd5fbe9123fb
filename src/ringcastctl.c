/*
 * ringcastctl: the operator's tool of DESIGN §5: topics and tokens in the
 * catalog, the ring file's state and reset, publishing from the shell.  It
 * may run beside ringcastd: LMDB serialises writers and the workers poll the
 * ring's committed seq.  Exit status: 0 done, 1 usage or not found, 2 failed
 * (check-config: 1 for a bad configuration).  With [cluster] nats, a
 * catalog change is written to the cluster's bucket (ccat.h) first and then
 * applied here from it, as every other node applies it; no cluster, no
 * change (exit 1).  Reading commands stay local.
 */
#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libutil.h>

#include "ringcast/catalog.h"
#include "ringcast/ccat.h"
#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/pattern.h"
#include "ringcast/ring.h"
#include "ringcast/sse.h"

#define CTL_OK		0
#define CTL_USAGE	1	/* also: not found, already exists */
#define CTL_FAIL	2	/* also: bad config, ring reset refused */

#define ARGS_MAX	4	/* positional arguments of any command */

struct ctl {
	struct config	 conf;
	const char	*file;
};

/* An option of a command: a flag (set) or one with a value (value). */
struct opt {
	const char	*name;
	int		*set;
	const char	**value;
};

static int
usage(void)
{
	fprintf(stderr,
	    "usage: ringcastctl [-f file] command [argument ...]\n"
	    "  topic add NAME|PATTERN [--private] [--description TEXT]\n"
	    "      [--keep N] [--max-age DURATION]\n"
	    "  topic set NAME|PATTERN [--keep N] [--max-age DURATION]\n"
	    "  topic rm NAME|PATTERN [--members]\n"
	    "  topic show NAME|PATTERN\n"
	    "  topic list [--members]\n"
	    "  token add [--publish] [--subscribe] (--topic NAME|PATTERN | "
	    "--all)\n"
	    "  token rm ID\n"
	    "  token list\n"
	    "  ring info\n"
	    "  ring reset [--force]\n"
	    "  publish TOPIC [--event TYPE] [DATA | -]\n"
	    "  cluster sync [--once]\n"
	    "  check-config\n");
	return CTL_USAGE;
}

/* Split argv into the options of opts and up to ARGS_MAX positional
 * arguments; "--" ends the options and "-" is positional.  0 or -1. */
static int
args_parse(int argc, char **argv, const struct opt *opts, char **pos,
    int *npos)
{
	const struct opt	*o;
	const char		*eq;
	size_t			 namelen;
	int			 i, options = 1;

	*npos = 0;
	for (i = 0; i < argc; i++) {
		if (!options || argv[i][0] != '-' || argv[i][1] == '\0') {
			if (*npos == ARGS_MAX) {
				warnx("too many arguments");
				return -1;
			}
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			options = 0;
			continue;
		}
		eq = strchr(argv[i], '=');
		namelen = eq != NULL ? (size_t)(eq - argv[i]) : strlen(argv[i]);
		for (o = opts; o != NULL && o->name != NULL; o++) {
			if (strlen(o->name) == namelen &&
			    strncmp(o->name, argv[i], namelen) == 0)
				break;
		}
		if (o == NULL || o->name == NULL) {
			warnx("unknown option %.*s", (int)namelen, argv[i]);
			return -1;
		}
		if (o->value == NULL) {
			if (eq != NULL) {
				warnx("option %s takes no value", o->name);
				return -1;
			}
			*o->set = 1;
		} else if (eq != NULL)
			*o->value = eq + 1;
		else if (i + 1 < argc)
			*o->value = argv[++i];
		else {
			warnx("option %s needs a value", o->name);
			return -1;
		}
	}
	return 0;
}

/* Parse exactly want positional arguments; otherwise print usage. */
static int
args_exact(int argc, char **argv, const struct opt *opts, char **pos,
    int want)
{
	int	 n;

	if (args_parse(argc, argv, opts, pos, &n) == -1)
		return -1;
	if (n != want) {
		warnx("expected %d argument%s, got %d", want,
		    want == 1 ? "" : "s", n);
		return -1;
	}
	return 0;
}

static const char *
iso_time(uint64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%llu", (unsigned long long)t);
	return buf;
}

static struct catalog *
catalog_get(struct ctl *ctl, int flags)
{
	struct catalog	*cat;
	char		 err[PATH_MAX + 256];

	if (catalog_open(&cat, ctl->conf.catalog_path,
	    ctl->conf.catalog_map_size, flags, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return NULL;
	}
	return cat;
}

/* Connect to the cluster's catalog for a change: 0, or -1 having said
 * that nothing was changed (the caller exits CTL_USAGE). */
static int
cluster_open(struct ctl *ctl, struct ccat_client *c)
{
	char	 err[2048];

	if (ccat_client_open(c, &ctl->conf, err, sizeof(err)) == -1) {
		warnx("%s; nothing was changed", err);
		return -1;
	}
	return 0;
}

/* A write to the cluster failed: nothing changed here either. */
static int
cluster_fail(struct ccat_client *c, const char *err)
{
	warnx("%s; nothing was changed on this node", err);
	ccat_client_close(c);
	return CTL_FAIL;
}

/*
 * Apply the cluster's entry under key (value[len] and deleted when given,
 * key's entry in the bucket when value is NULL and !deleted) to this
 * node's catalog, as its watcher would: CTL_OK or CTL_FAIL.
 */
static int
cluster_apply(struct ctl *ctl, struct ccat_client *c, const char *key,
    const char *value, int deleted)
{
	struct catalog	*cat;
	char		 err[1024];
	int		 rc;

	if ((cat = catalog_get(ctl, CATALOG_CREATE)) == NULL)
		return CTL_FAIL;
	if (value != NULL || deleted)
		rc = ccat_apply(cat, key, value, value != NULL ?
		    strlen(value) : 0, deleted, err, sizeof(err));
	else
		rc = ccat_sync_key(c->kv, cat, key, err, sizeof(err));
	catalog_close(cat);
	if (rc == -1) {
		warnx("written to the cluster, but not yet here (the node's "
		    "watcher will retry): %s", err);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* Is name a topic name or, with patterns, a family pattern?  0 or -1. */
static int
topic_name_check(const char *name, int patterns)
{
	size_t	 len = strlen(name);

	if (catalog_topic_name_valid(name, len) ||
	    (patterns && pattern_valid(name, len)))
		return 0;
	warnx("topic '%s': invalid name (1 to %d of A-Z a-z 0-9 . _ -, with "
	    "/ or : between segments; no empty, . or .. segment%s)", name,
	    TOPIC_NAME_MAX, patterns ? "; a family: PREFIX/*, PREFIX:* or *" :
	    "");
	return -1;
}

/* The flags column: public or private, then family or member. */
static const char *
topic_flags_text(uint32_t flags)
{
	static char	 text[32];

	snprintf(text, sizeof(text), "%s%s",
	    (flags & CATALOG_TOPIC_PRIVATE) ? "private" : "public",
	    (flags & CATALOG_TOPIC_FAMILY) ? ",family" :
	    (flags & CATALOG_TOPIC_MEMBER) ? ",member" : "");
	return text;
}

/* One line of `topic list`: name, id, flags, created, description; arg
 * says whether family members are listed. */
static int
topic_print_line(void *arg, const struct catalog_topic *t)
{
	const int	*members = arg;
	char		 when[32];

	if ((t->flags & CATALOG_TOPIC_MEMBER) && (members == NULL || !*members))
		return 0;
	printf("%s\t%u\t%s\t%s\t%s\n", t->name, t->id,
	    topic_flags_text(t->flags), iso_time(t->created, when,
	    sizeof(when)), t->description);
	return 0;
}

/* Parse --keep and --max-age (NULL: not given, *keep and *max_age_ms are
 * left as they are); 0, or -1 with a message. */
static int
retention_parse(const char *keep, const char *max_age, uint32_t *keep_n,
    uint64_t *max_age_ms)
{
	const char	*errstr;

	if (keep != NULL) {
		*keep_n = (uint32_t)strtonum(keep, 0, 100000000, &errstr);
		if (errstr != NULL) {
			warnx("--keep %s: %s (0 to 100000000)", keep, errstr);
			return -1;
		}
	}
	if (max_age != NULL && config_parse_duration(max_age,
	    max_age_ms) == -1) {
		warnx("--max-age %s: bad duration (a number with ms, s, m "
		    "or h)", max_age);
		return -1;
	}
	return 0;
}

static void
retention_print(const struct catalog_topic *t)
{
	printf("keep: %u%s\nmax_age: %llus%s\n", t->keep,
	    t->keep == 0 ? " (the [history] default)" : "",
	    (unsigned long long)(t->max_age_ms / 1000),
	    t->max_age_ms == 0 ? " (the [history] default)" : "");
}

static int
cluster_topic_add(struct ctl *ctl, const char *name, int private,
    const char *desc, uint32_t keep, uint64_t max_age_ms)
{
	struct ccat_client	 c;
	struct catalog_topic	 t;
	struct catalog		*cat;
	char			 key[CCAT_KEY_MAX], err[1024];
	int			 rc;

	memset(&t, 0, sizeof(t));
	strlcpy(t.name, name, sizeof(t.name));
	strlcpy(t.description, desc, sizeof(t.description));
	t.flags = (private ? CATALOG_TOPIC_PRIVATE : 0) |
	    (pattern_is_family(name, strlen(name)) ? CATALOG_TOPIC_FAMILY : 0);
	t.keep = keep;
	t.max_age_ms = max_age_ms;
	t.created = (uint64_t)time(NULL);
	if (cluster_open(ctl, &c) == -1)
		return CTL_USAGE;
	switch (ccat_publish_topic(c.kv, &t, 0, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("topic '%s': already exists in the cluster", name);
		ccat_client_close(&c);
		return CTL_USAGE;
	default:
		return cluster_fail(&c, err);
	}
	ccat_key_topic(key, sizeof(key), name);
	rc = cluster_apply(ctl, &c, key, NULL, 0);
	ccat_client_close(&c);
	if (rc == CTL_OK && (cat = catalog_get(ctl, CATALOG_RDONLY)) != NULL) {
		if (catalog_topic_lookup(cat, name, strlen(name), &t) ==
		    CATALOG_FOUND)
			topic_print_line(NULL, &t);
		catalog_close(cat);
	}
	return rc;
}

static int
cmd_topic_add(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct catalog_topic	 t;
	const char		*desc = "", *keep = NULL, *max_age = NULL;
	char			*pos[ARGS_MAX];
	uint32_t		 keep_n = 0;
	uint64_t		 max_age_ms = 0;
	int			 private = 0, rc = CTL_FAIL;
	const struct opt	 opts[] = {
		{ "--private", &private, NULL },
		{ "--description", NULL, &desc },
		{ "--keep", NULL, &keep },
		{ "--max-age", NULL, &max_age },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 1) == -1)
		return usage();
	if (topic_name_check(pos[0], 1) == -1)
		return CTL_USAGE;
	if (retention_parse(keep, max_age, &keep_n, &max_age_ms) == -1)
		return CTL_USAGE;
	if (!catalog_topic_description_valid(desc, strlen(desc))) {
		warnx("topic '%s': description longer than %d bytes or with "
		    "control characters", pos[0], TOPIC_DESC_MAX);
		return CTL_USAGE;
	}
	if (cluster_enabled(&ctl->conf))
		return cluster_topic_add(ctl, pos[0], private, desc, keep_n,
		    max_age_ms);
	if ((cat = catalog_get(ctl, CATALOG_CREATE)) == NULL)
		return CTL_FAIL;
	switch (catalog_topic_add_retention(cat, pos[0],
	    private ? CATALOG_TOPIC_PRIVATE : 0, desc, keep_n, max_age_ms,
	    &t)) {
	case CATALOG_FOUND:
		topic_print_line(NULL, &t);
		rc = CTL_OK;
		break;
	case CATALOG_EXISTS:
		warnx("topic '%s': already exists (id %u)", pos[0], t.id);
		rc = CTL_USAGE;
		break;
	default:
		warnx("%s", catalog_error(cat));
		break;
	}
	catalog_close(cat);
	return rc;
}

/* The status of a catalog call that names one object. */
static int
result_status(struct catalog *cat, enum catalog_result res, const char *what,
    const char *name)
{
	switch (res) {
	case CATALOG_FOUND:
		return CTL_OK;
	case CATALOG_NOT_FOUND:
		warnx("%s '%s': not found", what, name);
		return CTL_USAGE;
	default:
		warnx("%s", catalog_error(cat));
		return CTL_FAIL;
	}
}

static int
cluster_topic_rm(struct ctl *ctl, const char *name, int members, int family)
{
	struct ccat_client	 c;
	struct ccat_entry	 e;
	char			 key[CCAT_KEY_MAX], err[1024];
	int			 rc;

	if (cluster_open(ctl, &c) == -1)
		return CTL_USAGE;
	ccat_key_topic(key, sizeof(key), name);
	switch (ccat_get(c.kv, key, &e, NULL, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("topic '%s': not found in the cluster", name);
		ccat_client_close(&c);
		return CTL_USAGE;
	default:
		return cluster_fail(&c, err);
	}
	if (ccat_publish_topic_remove(&c, name, members, err,
	    sizeof(err)) == -1)
		return cluster_fail(&c, err);
	rc = cluster_apply(ctl, &c, key, members ? "{\"members\":true}" :
	    NULL, 1);
	ccat_client_close(&c);
	if (rc == CTL_OK && members)
		printf("family %s removed on every node, with its tokens and "
		    "members\n", name);
	else if (rc == CTL_OK && family)
		printf("family %s removed on every node, with its tokens; its "
		    "members stay (topic rm %s --members removes them)\n",
		    name, name);
	else if (rc == CTL_OK)
		printf("topic %s removed on every node, with its tokens\n",
		    name);
	return rc;
}

static int
cmd_topic_rm(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	char			*pos[ARGS_MAX];
	size_t			 n = 0;
	int			 members = 0, family, rc;
	const struct opt	 opts[] = {
		{ "--members", &members, NULL },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 1) == -1)
		return usage();
	if (topic_name_check(pos[0], 1) == -1)
		return CTL_USAGE;
	family = pattern_is_family(pos[0], strlen(pos[0]));
	if (members && !family) {
		warnx("topic rm: --members needs a family pattern, not '%s'",
		    pos[0]);
		return CTL_USAGE;
	}
	if (cluster_enabled(&ctl->conf))
		return cluster_topic_rm(ctl, pos[0], members, family);
	if ((cat = catalog_get(ctl, 0)) == NULL)
		return CTL_FAIL;
	rc = result_status(cat, members ? catalog_family_remove(cat, pos[0],
	    &n) : catalog_topic_remove(cat, pos[0]), "topic", pos[0]);
	if (rc == CTL_OK && members)
		printf("family %s removed, with its tokens and %zu member%s\n",
		    pos[0], n, n == 1 ? "" : "s");
	else if (rc == CTL_OK && family)
		printf("family %s removed, with its tokens; its members stay "
		    "(topic rm %s --members removes them)\n", pos[0], pos[0]);
	else if (rc == CTL_OK)
		printf("topic %s removed, with its tokens\n", pos[0]);
	catalog_close(cat);
	return rc;
}

static int
cluster_topic_set(struct ctl *ctl, const char *name, const char *keep,
    const char *max_age)
{
	struct ccat_client	 c;
	struct ccat_entry	 e;
	struct catalog		*cat;
	struct catalog_topic	 t;
	char			 key[CCAT_KEY_MAX], err[1024];
	uint64_t		 rev;
	int			 rc;

	if (cluster_open(ctl, &c) == -1)
		return CTL_USAGE;
	ccat_key_topic(key, sizeof(key), name);
	switch (ccat_get(c.kv, key, &e, &rev, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("topic '%s': not found in the cluster (a family member "
		    "takes its family's retention)", name);
		ccat_client_close(&c);
		return CTL_USAGE;
	default:
		return cluster_fail(&c, err);
	}
	if (retention_parse(keep, max_age, &e.topic.keep,
	    &e.topic.max_age_ms) == -1) {
		ccat_client_close(&c);
		return CTL_USAGE;
	}
	switch (ccat_publish_topic(c.kv, &e.topic, rev, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("topic '%s': changed by someone else meanwhile; try "
		    "again", name);
		return cluster_fail(&c, "topic set");
	default:
		return cluster_fail(&c, err);
	}
	rc = cluster_apply(ctl, &c, key, NULL, 0);
	ccat_client_close(&c);
	if (rc == CTL_OK && (cat = catalog_get(ctl, CATALOG_RDONLY)) != NULL) {
		if (catalog_topic_lookup(cat, name, strlen(name), &t) ==
		    CATALOG_FOUND)
			retention_print(&t);
		catalog_close(cat);
	}
	return rc;
}

static int
cmd_topic_set(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct catalog_topic	 t;
	const char		*keep = NULL, *max_age = NULL;
	char			*pos[ARGS_MAX];
	int			 rc;
	const struct opt	 opts[] = {
		{ "--keep", NULL, &keep },
		{ "--max-age", NULL, &max_age },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 1) == -1)
		return usage();
	if (keep == NULL && max_age == NULL) {
		warnx("topic set: give --keep, --max-age or both");
		return usage();
	}
	if (topic_name_check(pos[0], 1) == -1)
		return CTL_USAGE;
	if (cluster_enabled(&ctl->conf))
		return cluster_topic_set(ctl, pos[0], keep, max_age);
	if ((cat = catalog_get(ctl, 0)) == NULL)
		return CTL_FAIL;
	rc = result_status(cat, catalog_topic_lookup(cat, pos[0],
	    strlen(pos[0]), &t), "topic", pos[0]);
	if (rc == CTL_OK && retention_parse(keep, max_age, &t.keep,
	    &t.max_age_ms) == -1)
		rc = CTL_USAGE;
	if (rc == CTL_OK)
		rc = result_status(cat, catalog_topic_set_retention(cat,
		    pos[0], t.keep, t.max_age_ms, &t), "topic", pos[0]);
	if (rc == CTL_OK)
		retention_print(&t);
	catalog_close(cat);
	return rc;
}

static int
cmd_topic_show(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct catalog_topic	 t;
	char			*pos[ARGS_MAX], when[32], id[16] = "-";
	char			 family[TOPIC_NAME_MAX + 2];
	size_t			 len;
	int			 rc;

	if (args_exact(argc, argv, NULL, pos, 1) == -1)
		return usage();
	if (topic_name_check(pos[0], 1) == -1)
		return CTL_USAGE;
	if ((cat = catalog_get(ctl, CATALOG_RDONLY)) == NULL)
		return CTL_FAIL;
	/* A name is resolved, as a client's would be, but never stored. */
	len = strlen(pos[0]);
	rc = result_status(cat, pattern_is_family(pos[0], len) ?
	    catalog_topic_lookup(cat, pos[0], len, &t) :
	    catalog_topic_resolve(cat, pos[0], len, 0, &t), "topic", pos[0]);
	if (rc == CTL_OK) {
		if (t.id != 0)
			snprintf(id, sizeof(id), "%u", t.id);
		printf("name: %s\nid: %s\nflags: %s\ncreated: %s\n"
		    "description: %s\n", t.name, id,
		    topic_flags_text(t.flags), iso_time(t.created, when,
		    sizeof(when)), t.description);
		if ((t.flags & CATALOG_TOPIC_MEMBER) &&
		    pattern_family_of(t.name, strlen(t.name), family,
		    sizeof(family)) != -1)
			printf("family: %s\n", family);
		retention_print(&t);
	}
	catalog_close(cat);
	return rc;
}

/* Run a foreach listing over a read-only catalog. */
static int
list_status(struct catalog *cat, int res)
{
	int	 rc = CTL_OK;

	if (res == -1) {
		warnx("%s", catalog_error(cat));
		rc = CTL_FAIL;
	}
	if (fflush(stdout) == EOF) {
		warn("stdout");
		rc = CTL_FAIL;
	}
	catalog_close(cat);
	return rc;
}

static int
cmd_topic_list(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	char			*pos[ARGS_MAX];
	int			 members = 0;
	const struct opt	 opts[] = {
		{ "--members", &members, NULL },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 0) == -1)
		return usage();
	if ((cat = catalog_get(ctl, CATALOG_RDONLY)) == NULL)
		return CTL_FAIL;
	return list_status(cat, catalog_topic_foreach(cat, topic_print_line,
	    &members));
}

static const char *
rights_text(uint32_t rights)
{
	switch (rights & (CATALOG_RIGHT_PUBLISH | CATALOG_RIGHT_SUBSCRIBE)) {
	case CATALOG_RIGHT_PUBLISH:
		return "publish";
	case CATALOG_RIGHT_SUBSCRIBE:
		return "subscribe";
	case CATALOG_RIGHT_PUBLISH | CATALOG_RIGHT_SUBSCRIBE:
		return "publish,subscribe";
	}
	return "none";
}

/* Show a new token once, then forget its secret. */
static void
token_print_secret(const char *id, uint32_t rights, const char *topic,
    char *secret)
{
	printf("id: %s\nsecret: %s\n", id, secret);
	fprintf(stderr, "ringcastctl: token %s (%s on %s): the secret is shown "
	    "only this once\n", id, rights_text(rights), topic != NULL ?
	    topic : "every topic");
	explicit_bzero(secret, TOKEN_SECRET_LEN + 1);
}

/* Does the cluster know topic (or the family a member name falls in)?
 * 0 yes (key is the entry's), 1 no, -1 with err. */
static int
cluster_topic_known(struct ccat_client *c, const char *topic, char *key,
    size_t keylen, char *err, size_t errlen)
{
	struct ccat_entry	 e;
	char			 family[TOPIC_NAME_MAX + 2];
	size_t			 n = strlen(topic);
	int			 rc;

	ccat_key_topic(key, keylen, topic);
	if ((rc = ccat_get(c->kv, key, &e, NULL, err, errlen)) != 1)
		return rc;
	if (!catalog_topic_name_valid(topic, n) ||
	    pattern_family_of(topic, n, family, sizeof(family)) == -1)
		return 1;
	ccat_key_topic(key, keylen, family);
	return ccat_get(c->kv, key, &e, NULL, err, errlen);
}

static int
cluster_token_add(struct ctl *ctl, uint32_t rights, const char *topic)
{
	struct ccat_client	 c;
	unsigned char		 hash[CCAT_HASH_LEN];
	char			 secret[TOKEN_SECRET_LEN + 1];
	char			 id[TOKEN_ID_LEN + 1], key[CCAT_KEY_MAX];
	char			 err[1024];
	int			 rc, tries;

	if (cluster_open(ctl, &c) == -1)
		return CTL_USAGE;
	if (topic != NULL) {
		switch (cluster_topic_known(&c, topic, key, sizeof(key), err,
		    sizeof(err))) {
		case 0:
			/* This node may not have seen the topic yet. */
			if (cluster_apply(ctl, &c, key, NULL, 0) != CTL_OK) {
				ccat_client_close(&c);
				return CTL_FAIL;
			}
			break;
		case 1:
			warnx("topic '%s': not found in the cluster", topic);
			ccat_client_close(&c);
			return CTL_USAGE;
		default:
			return cluster_fail(&c, err);
		}
	}
	/* Public ids must be unique; a 48-bit prefix clash is retried. */
	for (tries = 0, rc = 1; rc == 1 && tries < 8; tries++) {
		catalog_token_secret_new(secret, hash);
		ccat_token_id(id, hash);
		rc = ccat_publish_token(c.kv, id, hash, rights, topic,
		    (uint64_t)time(NULL), err, sizeof(err));
	}
	explicit_bzero(hash, sizeof(hash));
	if (rc != 0) {
		explicit_bzero(secret, sizeof(secret));
		return cluster_fail(&c, rc == 1 ? "token add: no free id" :
		    err);
	}
	ccat_key_token(key, sizeof(key), id);
	rc = cluster_apply(ctl, &c, key, NULL, 0);
	ccat_client_close(&c);
	/* Made in the cluster: the secret must be shown whatever happened
	 * here, or nobody can ever use the token. */
	token_print_secret(id, rights, topic, secret);
	return rc;
}

static int
cmd_token_add(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct catalog_token	 tok;
	const char		*topic = NULL;
	char			*pos[ARGS_MAX], secret[TOKEN_SECRET_LEN + 1];
	int			 publish = 0, subscribe = 0, all = 0, rc;
	const struct opt	 opts[] = {
		{ "--publish", &publish, NULL },
		{ "--subscribe", &subscribe, NULL },
		{ "--all", &all, NULL },
		{ "--topic", NULL, &topic },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 0) == -1)
		return usage();
	if (!publish && !subscribe) {
		warnx("token add: give --publish, --subscribe or both");
		return usage();
	}
	if ((topic == NULL) == !all) {
		warnx("token add: give either --topic NAME or --all");
		return usage();
	}
	if (topic != NULL && topic_name_check(topic, 1) == -1)
		return CTL_USAGE;
	if (cluster_enabled(&ctl->conf))
		return cluster_token_add(ctl, (publish ? CATALOG_RIGHT_PUBLISH :
		    0) | (subscribe ? CATALOG_RIGHT_SUBSCRIBE : 0), topic);
	if ((cat = catalog_get(ctl, CATALOG_CREATE)) == NULL)
		return CTL_FAIL;
	rc = result_status(cat, catalog_token_add(cat,
	    (publish ? CATALOG_RIGHT_PUBLISH : 0) |
	    (subscribe ? CATALOG_RIGHT_SUBSCRIBE : 0), topic, secret, &tok),
	    "topic", topic != NULL ? topic : "*");
	if (rc == CTL_OK)
		token_print_secret(tok.id, tok.rights, topic, secret);
	catalog_close(cat);
	return rc;
}

static int
cluster_token_rm(struct ctl *ctl, const char *id)
{
	struct ccat_client	 c;
	char			 key[CCAT_KEY_MAX], err[1024];
	int			 rc;

	if (cluster_open(ctl, &c) == -1)
		return CTL_USAGE;
	switch (ccat_publish_token_remove(c.kv, id, err, sizeof(err))) {
	case 0:
		break;
	case 1:
		warnx("token '%s': not found in the cluster", id);
		ccat_client_close(&c);
		return CTL_USAGE;
	default:
		return cluster_fail(&c, err);
	}
	ccat_key_token(key, sizeof(key), id);
	rc = cluster_apply(ctl, &c, key, NULL, 1);
	ccat_client_close(&c);
	if (rc == CTL_OK)
		printf("token %s removed on every node\n", id);
	return rc;
}

static int
cmd_token_rm(struct ctl *ctl, int argc, char **argv)
{
	struct catalog	*cat;
	char		*pos[ARGS_MAX];
	int		 rc;

	if (args_exact(argc, argv, NULL, pos, 1) == -1)
		return usage();
	if (cluster_enabled(&ctl->conf))
		return cluster_token_rm(ctl, pos[0]);
	if ((cat = catalog_get(ctl, 0)) == NULL)
		return CTL_FAIL;
	rc = result_status(cat, catalog_token_remove(cat, pos[0]), "token",
	    pos[0]);
	if (rc == CTL_OK)
		printf("token %s removed\n", pos[0]);
	catalog_close(cat);
	return rc;
}

/* Topic names by id, for `token list`. */
struct topic_names {
	struct catalog_topic	*topics;
	size_t			 n;
	size_t			 cap;
};

static int
topic_names_add(void *arg, const struct catalog_topic *t)
{
	struct topic_names	*names = arg;
	struct catalog_topic	*grown;

	if (names->n == names->cap) {
		grown = reallocarray(names->topics, names->cap * 2 + 16,
		    sizeof(*grown));
		if (grown == NULL)
			err(CTL_FAIL, "topic list");
		names->topics = grown;
		names->cap = names->cap * 2 + 16;
	}
	names->topics[names->n++] = *t;
	return 0;
}

/* One line of `token list`: id, rights, topic, created; never a secret. */
static int
token_print_line(void *arg, const struct catalog_token *tok)
{
	struct topic_names	*names = arg;
	char			 when[32], topic[TOPIC_NAME_MAX + 16];
	size_t			 i;

	if (tok->topic == 0)
		strlcpy(topic, "*", sizeof(topic));
	else
		snprintf(topic, sizeof(topic), "#%u", tok->topic);
	for (i = 0; tok->topic != 0 && i < names->n; i++) {
		if (names->topics[i].id == tok->topic)
			strlcpy(topic, names->topics[i].name, sizeof(topic));
	}
	printf("%s\t%s\t%s\t%s\n", tok->id, rights_text(tok->rights), topic,
	    iso_time(tok->created, when, sizeof(when)));
	return 0;
}

static int
cmd_token_list(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct topic_names	 names = { NULL, 0, 0 };
	char			*pos[ARGS_MAX];
	int			 res;

	if (args_exact(argc, argv, NULL, pos, 0) == -1)
		return usage();
	if ((cat = catalog_get(ctl, CATALOG_RDONLY)) == NULL)
		return CTL_FAIL;
	res = catalog_topic_foreach(cat, topic_names_add, &names);
	if (res == 0)
		res = catalog_token_foreach(cat, token_print_line, &names);
	free(names.topics);
	return list_status(cat, res);
}

static struct ring *
ring_get(struct ctl *ctl, int flags, uint64_t seq_floor)
{
	struct ring	*ring;
	char		 err[PATH_MAX + 512];

	if (ring_open(&ring, ctl->conf.ring_path, ctl->conf.ring_size,
	    ctl->conf.ring_slots, flags, seq_floor, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return NULL;
	}
	return ring;
}

static int
cmd_ring_info(struct ctl *ctl, int argc, char **argv)
{
	struct ring		*ring;
	struct ring_info	 info;
	char			*pos[ARGS_MAX], when[32];

	if (args_exact(argc, argv, NULL, pos, 0) == -1)
		return usage();
	if ((ring = ring_get(ctl, 0, 0)) == NULL)
		return CTL_FAIL;
	ring_get_info(ring, &info);
	printf("file: %s\nversion: %u\nepoch: %llu\ncommitted: %llu\n"
	    "oldest: %llu\nslots: %u\nused: %llu\nsize: %llu\ncreated: %s\n",
	    ring_path(ring), info.version, (unsigned long long)info.epoch,
	    (unsigned long long)info.committed,
	    (unsigned long long)info.oldest, info.slots,
	    (unsigned long long)info.used, (unsigned long long)info.size,
	    iso_time(info.created, when, sizeof(when)));
	ring_close(ring);
	return CTL_OK;
}

/* Take the daemon's pidfile so no ringcastd starts while the ring is
 * replaced: 0 (*pfh may be NULL), 1 when ringcastd runs (*pid, or -1 when
 * its pidfile cannot be read), or -1. */
static int
pidfile_take(const char *path, struct pidfh **pfh, pid_t *pid)
{
	*pid = -1;
	if ((*pfh = pidfile_open(path, 0644, pid)) != NULL)
		return 0;
	/* A locked pidfile whose contents do not parse fails with EINVAL;
	 * asking without pidptr tells "locked" (EEXIST) apart. */
	if (errno != EEXIST && errno != ENOENT) {
		*pid = -1;
		if ((*pfh = pidfile_open(path, 0644, NULL)) != NULL)
			return 0;
	}
	if (errno == EEXIST)
		return 1;
	/* No directory for the pidfile: no daemon can be holding it. */
	if (errno == ENOENT)
		return 0;
	warn("pidfile %s: pidfile_open", path);
	return -1;
}

static int
cmd_ring_reset(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat = NULL;
	struct ring		*ring;
	struct pidfh		*pfh = NULL;
	char			*pos[ARGS_MAX], err[PATH_MAX + 512];
	char			 pidtext[32];
	uint64_t		 hwm = 0;
	pid_t			 pid;
	int			 force = 0, running, rc = CTL_FAIL;
	const struct opt	 opts[] = {
		{ "--force", &force, NULL },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 0) == -1)
		return usage();
	running = pidfile_take(ctl->conf.pidfile, &pfh, &pid);
	if (running == -1 && !force)
		return CTL_FAIL;
	if (running == 1) {
		if (pid > 0)
			snprintf(pidtext, sizeof(pidtext), "%ld", (long)pid);
		else
			strlcpy(pidtext, "unknown", sizeof(pidtext));
		if (!force) {
			warnx("ringcastd is running (pid %s); stop it first "
			    "or use --force", pidtext);
			return CTL_FAIL;
		}
		warnx("ringcastd is running (pid %s); resetting anyway "
		    "(--force)", pidtext);
	}
	if ((cat = catalog_get(ctl, CATALOG_CREATE)) == NULL)
		goto out;
	/* The old ring's ids must stay used: persist them before they go. */
	if ((ring = ring_get(ctl, 0, 0)) != NULL) {
		if (catalog_hwm_raise(cat, ring_committed(ring)) == -1) {
			warnx("%s", catalog_error(cat));
			ring_close(ring);
			goto out;
		}
		ring_close(ring);
	} else
		warnx("ring %s: unreadable; ids continue after the catalog's "
		    "high-water mark", ctl->conf.ring_path);
	if (catalog_hwm_get(cat, &hwm) == CATALOG_ERROR) {
		warnx("%s", catalog_error(cat));
		goto out;
	}
	if (ring_reset(ctl->conf.ring_path, ctl->conf.ring_size,
	    ctl->conf.ring_slots, hwm, err, sizeof(err)) == -1) {
		warnx("%s", err);
		goto out;
	}
	printf("ring %s reset; event ids continue after %llu\n",
	    ctl->conf.ring_path, (unsigned long long)hwm);
	rc = CTL_OK;
out:
	catalog_close(cat);
	if (pfh != NULL)
		pidfile_remove(pfh);
	return rc;
}

/* Read all of stdin, at most max bytes; the buffer is the caller's. */
static int
read_stdin(size_t max, char **data, size_t *len)
{
	char	*buf;
	size_t	 used = 0;
	ssize_t	 n;

	if ((buf = malloc(max + 1)) == NULL)
		return -1;
	while ((n = read(STDIN_FILENO, buf + used, max + 1 - used)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return -1;
		}
		used += (size_t)n;
		if (used > max)
			break;
	}
	*data = buf;
	*len = used;
	return 0;
}

static int
publish_hwm(void *arg, uint64_t ceiling)
{
	return catalog_hwm_raise(arg, ceiling);
}

/* Encode data[len] as an event of topic and append it to the ring. */
static int
publish_append(struct ctl *ctl, struct catalog *cat,
    const struct catalog_topic *topic, const char *type, const char *data,
    size_t len)
{
	struct ring	*ring;
	char		*body;
	size_t		 typelen = type != NULL ? strlen(type) : 0;
	size_t		 size = sse_body_size(typelen, data, len);
	uint64_t	 hwm, seq;
	int		 rc = CTL_FAIL;

	if (catalog_hwm_get(cat, &hwm) == CATALOG_ERROR) {
		warnx("%s", catalog_error(cat));
		return CTL_FAIL;
	}
	if ((body = malloc(size)) == NULL) {
		warn("publish to '%s'", topic->name);
		return CTL_FAIL;
	}
	sse_encode_body(body, size, type, typelen, data, len);
	if ((ring = ring_get(ctl, RING_CREATE, hwm)) == NULL)
		goto out;
	ring_set_hwm(ring, publish_hwm, cat);
	if (ring_append(ring, topic->id, body, size, &seq) == -1) {
		rc = errno == EMSGSIZE ? CTL_USAGE : CTL_FAIL;
		warn("publish to '%s': ring %s: ring_append", topic->name,
		    ctl->conf.ring_path);
	} else {
		printf("%llu\n", (unsigned long long)seq);
		rc = CTL_OK;
	}
	ring_close(ring);
out:
	free(body);
	return rc;
}

/* The newest id this node holds (its ring's, else the catalog's
 * high-water mark), for the base of a stream made now. */
static uint64_t
node_newest(struct ctl *ctl, struct catalog *cat)
{
	struct ring	*ring;
	char		 err[PATH_MAX + 512];
	uint64_t	 newest = 0;

	if (ring_open(&ring, ctl->conf.ring_path, ctl->conf.ring_size,
	    ctl->conf.ring_slots, 0, 0, err, sizeof(err)) == 0) {
		newest = ring_committed(ring);
		ring_close(ring);
	} else if (catalog_hwm_get(cat, &newest) == CATALOG_ERROR)
		newest = 0;
	return newest;
}

/* Publish data[len] to JetStream as an event of topic; print its id (the
 * stream's base + the PubAck's sequence), as every node will number it. */
static int
cluster_publish(struct ctl *ctl, struct catalog *cat, const char *name,
    const char *type, const char *data, size_t len)
{
	struct ccat_client	 c;
	struct cluster_epoch	 ep;
	struct catalog_topic	 topic;
	natsMsg			*m = NULL;
	jsPubAck		*pa = NULL;
	jsErrCode		 jerr = 0;
	natsStatus		 s;
	unsigned char		 nonce[16];
	char			 subject[CLUSTER_SUBJECT_MAX], msgid[33];
	char			 err[2048], *body;
	size_t			 typelen = type != NULL ? strlen(type) : 0;
	size_t			 size = sse_body_size(typelen, data, len), i;
	enum catalog_result	 res;
	int			 rc = CTL_FAIL;

	if (ccat_client_open(&c, &ctl->conf, err, sizeof(err)) == -1) {
		warnx("publish to '%s': %s; nothing was published", name, err);
		return CTL_USAGE;
	}
	/* A topic this node has not seen yet may be in the cluster's
	 * catalog already. */
	res = catalog_topic_resolve(cat, name, strlen(name), 0, &topic);
	if (res == CATALOG_NOT_FOUND &&
	    ccat_fetch_topic(c.js, &ctl->conf, cat, name) == 0)
		res = catalog_topic_resolve(cat, name, strlen(name), 0, &topic);
	if ((rc = result_status(cat, res, "topic", name)) != CTL_OK)
		goto out;
	rc = CTL_FAIL;
	if (cluster_stream_ensure(c.js, &ctl->conf, node_newest(ctl, cat), &ep,
	    err, sizeof(err)) == -1) {
		warnx("publish to '%s': %s", name, err);
		goto out;
	}
	if (cluster_subject(subject, sizeof(subject), name) == -1 ||
	    (body = malloc(size)) == NULL) {
		warnx("publish to '%s': subject or memory", name);
		goto out;
	}
	sse_encode_body(body, size, type, typelen, data, len);
	arc4random_buf(nonce, sizeof(nonce));
	for (i = 0; i < sizeof(nonce); i++)
		snprintf(msgid + 2 * i, 3, "%02x", nonce[i]);
	s = natsMsg_Create(&m, subject, NULL, body, (int)size);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, c.js, m, NULL, &jerr);
	free(body);
	if (s != NATS_OK) {
		warnx("publish to '%s': %s: %s", name, subject,
		    cluster_status_text(s));
		goto out;
	}
	printf("%llu\n", (unsigned long long)(ep.base + pa->Sequence));
	rc = CTL_OK;
out:
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
	ccat_client_close(&c);
	return rc;
}

static int
cmd_publish(struct ctl *ctl, int argc, char **argv)
{
	struct catalog		*cat;
	struct catalog_topic	 topic;
	const char		*type = NULL;
	char			*pos[ARGS_MAX], *input = NULL, *data;
	size_t			 len, max = ctl->conf.max_event_bytes;
	int			 n, rc;
	const struct opt	 opts[] = {
		{ "--event", NULL, &type },
		{ NULL, NULL, NULL },
	};

	if (args_parse(argc, argv, opts, pos, &n) == -1 || n < 1 || n > 2)
		return usage();
	if (topic_name_check(pos[0], 0) == -1)
		return CTL_USAGE;
	if (type != NULL && !sse_event_type_valid(type, strlen(type))) {
		warnx("publish to '%s': bad event type (1 to %d bytes, no CR, "
		    "LF or NUL)", pos[0], SSE_EVENT_TYPE_MAX);
		return CTL_USAGE;
	}
	if (n == 2 && strcmp(pos[1], "-") != 0) {
		data = pos[1];
		len = strlen(data);
	} else if (read_stdin(max, &input, &len) == -1) {
		warn("publish to '%s': stdin", pos[0]);
		return CTL_FAIL;
	} else
		data = input;
	if (len > max) {
		warnx("publish to '%s': data is over max_event_bytes (%zu)",
		    pos[0], max);
		free(input);
		return CTL_USAGE;
	}
	/* A cluster node's catalog may be new: its topics are in the
	 * cluster's. */
	if ((cat = catalog_get(ctl, cluster_enabled(&ctl->conf) ?
	    CATALOG_CREATE : 0)) == NULL) {
		free(input);
		return CTL_FAIL;
	}
	if (cluster_enabled(&ctl->conf)) {
		rc = cluster_publish(ctl, cat, pos[0], type, data, len);
		catalog_close(cat);
		free(input);
		return rc;
	}
	rc = result_status(cat, catalog_topic_resolve(cat, pos[0],
	    strlen(pos[0]), CATALOG_RESOLVE_MATERIALISE, &topic), "topic",
	    pos[0]);
	if (rc == CTL_OK)
		rc = publish_append(ctl, cat, &topic, type, data, len);
	catalog_close(cat);
	free(input);
	return rc;
}

static volatile sig_atomic_t	 follow_stop;

static void
follow_signal(int sig)
{
	(void)sig;
	follow_stop = 1;
}

/*
 * Keep this node's catalog in step with the cluster's until SIGINT or
 * SIGTERM, through the watcher ringcastd's relay runs, printing its
 * counters when they change: for a node without ringcastd, and to watch
 * the watcher.  NATS may come and go meanwhile.
 */
static int
cluster_follow(struct ctl *ctl)
{
	struct ccat_watch		*w = NULL;
	struct sigaction		 sa;
	struct ccat_stats		 st, shown;
	natsConnection			*nc = NULL;
	jsCtx				*js = NULL;
	char				 err[2048];
	int				 rc = CTL_OK;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = follow_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1) {
		warn("cluster sync: sigaction");
		return CTL_FAIL;
	}
	if (cluster_connect(&ctl->conf, "ringcastctl-sync", 1, NULL, NULL,
	    NULL, &nc, err, sizeof(err)) == -1 ||
	    cluster_jetstream(nc, NULL, NULL,
	    (int64_t)ctl->conf.cluster_publish_timeout_ms, &js, err,
	    sizeof(err)) == -1 ||
	    ccat_watch_start(&w, js, &ctl->conf, NULL, NULL, err,
	    sizeof(err)) == -1) {
		warnx("cluster sync: %s", err);
		rc = CTL_FAIL;
		goto out;
	}
	memset(&shown, 0, sizeof(shown));
	shown.entries = UINT64_MAX;
	while (!follow_stop) {
		ccat_watch_stats(w, &st);
		if (st.entries != shown.entries || st.errors != shown.errors ||
		    st.synced != shown.synced) {
			printf("cluster catalog: %llu entries, %llu applied, "
			    "%llu failed, %llu watchers, %s%s%s\n",
			    (unsigned long long)st.entries,
			    (unsigned long long)st.applied,
			    (unsigned long long)st.errors,
			    (unsigned long long)st.restarts,
			    st.synced ? "in step" : "catching up",
			    st.last_error[0] != '\0' ? "; last failure: " : "",
			    st.last_error);
			fflush(stdout);
			shown = st;
		}
		poll(NULL, 0, 100);
	}
out:
	ccat_watch_stop(w);
	jsCtx_Destroy(js);
	if (nc != NULL) {
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
	return rc;
}

/* Pull the cluster's catalog into this node's LMDB: with --once every
 * current key, then exit (what a node's watcher does when it starts);
 * without, follow it until told to stop. */
static int
cmd_cluster_sync(struct ctl *ctl, int argc, char **argv)
{
	struct ccat_client	 c;
	struct ccat_stats	 st;
	struct catalog		*cat;
	char			*pos[ARGS_MAX], err[2048];
	int			 once = 0, rc;
	const struct opt	 opts[] = {
		{ "--once", &once, NULL },
		{ NULL, NULL, NULL },
	};

	if (args_exact(argc, argv, opts, pos, 0) == -1)
		return usage();
	if (!cluster_enabled(&ctl->conf)) {
		warnx("cluster sync: [cluster] nats is not set in %s",
		    ctl->file);
		return CTL_USAGE;
	}
	if (!once)
		return cluster_follow(ctl);
	if (ccat_client_open(&c, &ctl->conf, err, sizeof(err)) == -1) {
		warnx("%s", err);
		return CTL_USAGE;
	}
	if ((cat = catalog_get(ctl, CATALOG_CREATE)) == NULL) {
		ccat_client_close(&c);
		return CTL_FAIL;
	}
	memset(&st, 0, sizeof(st));
	rc = ccat_sync_all(c.kv, cat, (int64_t)ctl->conf.
	    cluster_publish_timeout_ms, &st, err, sizeof(err));
	catalog_close(cat);
	ccat_client_close(&c);
	printf("cluster catalog: %llu entries, %llu applied, %llu failed\n",
	    (unsigned long long)st.entries, (unsigned long long)st.applied,
	    (unsigned long long)st.errors);
	if (st.errors > 0)
		warnx("last failure: %s", st.last_error);
	if (rc == -1) {
		warnx("cluster sync: %s", err);
		return CTL_FAIL;
	}
	return st.errors > 0 ? CTL_FAIL : CTL_OK;
}

static const struct command {
	const char	*group;
	const char	*name;		/* NULL: the group is the command */
	int		(*fn)(struct ctl *, int, char **);
} commands[] = {
	{ "topic", "add", cmd_topic_add },
	{ "topic", "rm", cmd_topic_rm },
	{ "topic", "set", cmd_topic_set },
	{ "topic", "show", cmd_topic_show },
	{ "topic", "list", cmd_topic_list },
	{ "token", "add", cmd_token_add },
	{ "token", "rm", cmd_token_rm },
	{ "token", "list", cmd_token_list },
	{ "ring", "info", cmd_ring_info },
	{ "ring", "reset", cmd_ring_reset },
	{ "publish", NULL, cmd_publish },
	{ "cluster", "sync", cmd_cluster_sync },
	{ "check-config", NULL, NULL },
};

static const struct command *
command_find(int argc, char **argv, int *used)
{
	size_t	 i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].group, argv[0]) != 0)
			continue;
		if (commands[i].name == NULL) {
			*used = 1;
			return &commands[i];
		}
		if (argc > 1 && strcmp(commands[i].name, argv[1]) == 0) {
			*used = 2;
			return &commands[i];
		}
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct ctl		 ctl;
	const struct command	*cmd;
	char			 err[8192];
	int			 ch, used, rc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.file = CONFIG_DEFAULT_FILE;
	while ((ch = getopt(argc, argv, "+f:")) != -1) {
		switch (ch) {
		case 'f':
			ctl.file = optarg;
			break;
		default:
			return usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage();
	if ((cmd = command_find(argc, argv, &used)) == NULL) {
		warnx("unknown command '%s%s%s'", argv[0],
		    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return usage();
	}
	if (cmd->fn == NULL && argc > used)
		return usage();
	if (config_load(&ctl.conf, ctl.file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		if (cmd->fn != NULL)
			return CTL_FAIL;
		fprintf(stderr, "configuration test failed\n");
		return CTL_USAGE;
	}
	if (cmd->fn == NULL) {
		config_free(&ctl.conf);
		printf("configuration OK\n");
		return CTL_OK;
	}
	rc = cmd->fn(&ctl, argc - used, argv + used);
	config_free(&ctl.conf);
	return rc;
}
