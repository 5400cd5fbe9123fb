/*
 * config: a table of every key of DESIGN §9 drives both the defaults and the
 * parser, so a key cannot be documented, defaulted and parsed three different
 * ways.  inih reads the file through our own line reader, which lets every
 * error name its line; the result is copied out only when there is none.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "ringcast/auth.h"
#include "ringcast/config.h"

enum key_type {
	KEY_SIZE64,
	KEY_SIZE32,
	KEY_DURATION,
	KEY_BOOL,
	KEY_UINT32,
	KEY_STRING,
	KEY_LISTEN,
	KEY_ADMIN_LISTEN,
	KEY_PROXIES,
	KEY_WORKERS,
	KEY_SYNC,
	KEY_ORIGINS,
	KEY_LEVEL,
	KEY_ALGORITHMS,
};

struct key {
	const char	*section;
	const char	*name;
	enum key_type	 type;
	size_t		 offset;
	size_t		 size;		/* KEY_STRING: buffer size */
	uint64_t	 min;
	uint64_t	 max;
	const char	*fallback;	/* the default, as written in a file */
};

#define OFF(f)		offsetof(struct config, f)
#define SZ(f)		sizeof(((struct config *)0)->f)
#define KB		1024ULL
#define MB		(1024ULL * KB)
#define GB		(1024ULL * MB)
#define SEC		1000ULL
#define MIN		(60 * SEC)
#define HOUR		(60 * MIN)

static const struct key keys[] = {
	{ "server", "listen", KEY_LISTEN, 0, 0, 0, 0, "127.0.0.1:8080" },
	{ "server", "admin_listen", KEY_ADMIN_LISTEN, 0, 0, 0, 0,
	    "127.0.0.1:8081" },
	{ "server", "trusted_proxies", KEY_PROXIES, 0, 0, 0, 0, "" },
	{ "server", "workers", KEY_WORKERS, OFF(workers), 0, 1, 256, "auto" },
	{ "server", "user", KEY_STRING, OFF(user), SZ(user), 0, 0, "" },
	{ "server", "pidfile", KEY_STRING, OFF(pidfile), SZ(pidfile), 0, 0,
	    RC_RUNSTATEDIR "/ringcast/ringcastd.pid" },
	{ "server", "drain_timeout", KEY_DURATION, OFF(drain_timeout_ms), 0,
	    0, HOUR, "25s" },
	{ "server", "reload_spread", KEY_DURATION, OFF(reload_spread_ms), 0,
	    0, 10 * MIN, "5s" },
	{ "server", "demo", KEY_BOOL, OFF(demo), 0, 0, 1, "no" },
	{ "server", "admin_token", KEY_STRING, OFF(admin_token),
	    SZ(admin_token), 0, 0, "" },
	{ "ring", "path", KEY_STRING, OFF(ring_path), SZ(ring_path), 0, 0,
	    RC_LOCALSTATEDIR "/lib/ringcast/ring" },
	{ "ring", "size", KEY_SIZE64, OFF(ring_size), 0, 64 * KB, 64 * GB,
	    "64M" },
	{ "ring", "slots", KEY_UINT32, OFF(ring_slots), 0, 16, 1U << 28,
	    "262144" },
	{ "ring", "sync", KEY_SYNC, OFF(ring_sync), 0, 0, 0, "off" },
	{ "catalog", "path", KEY_STRING, OFF(catalog_path),
	    SZ(catalog_path), 0, 0, RC_LOCALSTATEDIR "/lib/ringcast/catalog" },
	{ "catalog", "map_size", KEY_SIZE64, OFF(catalog_map_size), 0,
	    1 * MB, 1024 * GB, "64M" },
	{ "catalog", "auto_create_topics", KEY_BOOL, OFF(auto_create_topics),
	    0, 0, 1, "no" },
	{ "history", "keep", KEY_UINT32, OFF(history_keep), 0, 0, 100000000,
	    "0" },
	{ "history", "max_age", KEY_DURATION, OFF(history_max_age_ms), 0, 0,
	    3650 * 24 * HOUR, "0" },
	{ "history", "map_size", KEY_SIZE64, OFF(history_map_size), 0, 1 * MB,
	    1024 * GB, "1G" },
	{ "publish", "require_token", KEY_BOOL, OFF(require_token), 0, 0, 1,
	    "yes" },
	{ "publish", "max_batch_bytes", KEY_SIZE32, OFF(max_batch_bytes), 0,
	    1 * KB, 1 * GB, "16M" },
	{ "publish", "max_batch_events", KEY_UINT32, OFF(max_batch_events), 0,
	    1, 1000000, "10000" },
	{ "stream", "heartbeat", KEY_DURATION, OFF(heartbeat_ms), 0, 0, HOUR,
	    "15s" },
	{ "stream", "retry", KEY_DURATION, OFF(retry_ms), 0, 100, HOUR, "3s" },
	{ "limits", "max_connections", KEY_UINT32, OFF(max_connections), 0,
	    0, 100000000, "0" },
	{ "limits", "max_connections_per_address", KEY_UINT32,
	    OFF(max_connections_per_address), 0, 0, 100000000, "0" },
	{ "limits", "header_timeout", KEY_DURATION, OFF(header_timeout_ms), 0,
	    100, 10 * MIN, "5s" },
	{ "limits", "max_header_bytes", KEY_SIZE32, OFF(max_header_bytes), 0,
	    1 * KB, 1 * MB, "16K" },
	{ "limits", "max_event_bytes", KEY_SIZE32, OFF(max_event_bytes), 0,
	    1, 64 * MB, "1M" },
	{ "cors", "allow_origins", KEY_ORIGINS, 0, 0, 0, 0, "" },
	{ "auth", "jwt_key_file", KEY_STRING, OFF(jwt_key_file),
	    SZ(jwt_key_file), 0, 0, "" },
	{ "auth", "jwt_algorithms", KEY_ALGORITHMS, OFF(jwt_algorithms), 0,
	    0, 0, "HS256, RS256, ES256" },
	{ "auth", "jwt_audience", KEY_STRING, OFF(jwt_audience),
	    SZ(jwt_audience), 0, 0, "" },
	{ "auth", "jwt_issuer", KEY_STRING, OFF(jwt_issuer), SZ(jwt_issuer),
	    0, 0, "" },
	{ "auth", "clock_skew", KEY_DURATION, OFF(clock_skew_ms), 0, 0,
	    10 * MIN, "30s" },
	{ "auth", "cookie", KEY_STRING, OFF(auth_cookie), SZ(auth_cookie), 0,
	    0, "ringcast_token" },
	{ "cluster", "nats", KEY_STRING, OFF(cluster_nats), SZ(cluster_nats),
	    0, 0, "" },
	{ "cluster", "stream", KEY_STRING, OFF(cluster_stream),
	    SZ(cluster_stream), 0, 0, "RINGCAST" },
	{ "cluster", "replicas", KEY_UINT32, OFF(cluster_replicas), 0, 1, 5,
	    "1" },
	{ "cluster", "credentials", KEY_STRING, OFF(cluster_credentials),
	    SZ(cluster_credentials), 0, 0, "" },
	{ "cluster", "publish_timeout", KEY_DURATION,
	    OFF(cluster_publish_timeout_ms), 0, 100, 10 * MIN, "5s" },
	{ "cluster", "max_bytes", KEY_SIZE64, OFF(cluster_max_bytes), 0,
	    1 * MB, 1024 * 1024 * GB, "1G" },
	{ "cluster", "max_age", KEY_DURATION, OFF(cluster_max_age_ms), 0, 0,
	    3650 * 24 * HOUR, "0" },
	{ "log", "target", KEY_STRING, OFF(log_target), SZ(log_target), 0, 0,
	    "syslog" },
	{ "log", "level", KEY_LEVEL, OFF(log_level), 0, 0, 0, "info" },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

struct parse {
	struct config	 conf;
	const char	*file;
	FILE		*fp;
	int		 line;
	char		*err;
	size_t		 errlen;
	size_t		 errused;
	int		 nerrors;
	unsigned char	 seen[NKEYS];
};

static void
parse_error(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
parse_error(struct parse *p, int line, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	p->nerrors++;
	if (p->err == NULL || p->errused + 1 >= p->errlen)
		return;
	if (line > 0)
		n = snprintf(p->err + p->errused, p->errlen - p->errused,
		    "%s%s:%d: ", p->errused ? "\n" : "", p->file, line);
	else
		n = snprintf(p->err + p->errused, p->errlen - p->errused,
		    "%s%s: ", p->errused ? "\n" : "", p->file);
	if (n < 0 || (size_t)n >= p->errlen - p->errused) {
		p->errused = p->errlen - 1;
		return;
	}
	p->errused += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(p->err + p->errused, p->errlen - p->errused, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= p->errlen - p->errused)
		p->errused = p->errlen - 1;
	else
		p->errused += (size_t)n;
}

/* Split text at the first non-digit: the number and its unit. */
static int
parse_number(const char *text, uint64_t *value, const char **unit)
{
	const char	*s = text;
	uint64_t	 v = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*value = v;
	*unit = s;
	return 0;
}

static int
apply_unit(uint64_t value, uint64_t mult, uint64_t *out)
{
	if (mult != 0 && value > UINT64_MAX / mult)
		return -1;
	*out = value * mult;
	return 0;
}

static int
unit_is(const char *unit, const char *want)
{
	size_t	 n = strlen(want);

	if (strncasecmp(unit, want, n) != 0)
		return 0;
	unit += n;
	while (isspace((unsigned char)*unit))
		unit++;
	return *unit == '\0';
}

int
config_parse_size(const char *text, uint64_t *bytes)
{
	uint64_t	 v;
	const char	*unit;

	if (parse_number(text, &v, &unit) == -1)
		return -1;
	if (unit_is(unit, ""))
		return apply_unit(v, 1, bytes);
	if (unit_is(unit, "K") || unit_is(unit, "KB") || unit_is(unit, "KiB"))
		return apply_unit(v, KB, bytes);
	if (unit_is(unit, "M") || unit_is(unit, "MB") || unit_is(unit, "MiB"))
		return apply_unit(v, MB, bytes);
	if (unit_is(unit, "G") || unit_is(unit, "GB") || unit_is(unit, "GiB"))
		return apply_unit(v, GB, bytes);
	return -1;
}

int
config_parse_duration(const char *text, uint64_t *ms)
{
	uint64_t	 v;
	const char	*unit;

	if (parse_number(text, &v, &unit) == -1)
		return -1;
	/* A bare number is seconds, as in nginx. */
	if (unit_is(unit, "") || unit_is(unit, "s"))
		return apply_unit(v, SEC, ms);
	if (unit_is(unit, "ms"))
		return apply_unit(v, 1, ms);
	if (unit_is(unit, "m"))
		return apply_unit(v, MIN, ms);
	if (unit_is(unit, "h"))
		return apply_unit(v, HOUR, ms);
	return -1;
}

int
config_parse_bool(const char *text, int *value)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };
	size_t	 i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*value = 1;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*value = 0;
			return 0;
		}
	}
	return -1;
}

int
config_parse_addr(const char *text, struct config_addr *addr)
{
	char			 host[64];
	const char		*colon, *port;
	size_t			 hostlen;
	const char		*errstr = NULL;
	long long		 portnum;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&addr->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&addr->ss;

	memset(addr, 0, sizeof(*addr));
	if (strlcpy(addr->text, text, sizeof(addr->text)) >= sizeof(addr->text))
		return -1;
	if (text[0] == '[') {
		colon = strstr(text, "]:");
		if (colon == NULL)
			return -1;
		hostlen = (size_t)(colon - text - 1);
		if (hostlen == 0 || hostlen >= sizeof(host))
			return -1;
		memcpy(host, text + 1, hostlen);
		host[hostlen] = '\0';
		port = colon + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || colon == text)
			return -1;
		hostlen = (size_t)(colon - text);
		if (hostlen >= sizeof(host))
			return -1;
		memcpy(host, text, hostlen);
		host[hostlen] = '\0';
		port = colon + 1;
	}
	portnum = strtonum(port, 1, 65535, &errstr);
	if (errstr != NULL)
		return -1;
	if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)portnum);
		addr->len = sizeof(*sin);
		return 0;
	}
	if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)portnum);
		addr->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
config_parse_cidr(const char *text, struct config_cidr *cidr)
{
	char		 host[64];
	const char	*slash, *errstr = NULL;
	size_t		 hostlen, bits, i;
	long long	 prefix;

	memset(cidr, 0, sizeof(*cidr));
	slash = strchr(text, '/');
	hostlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (hostlen == 0 || hostlen >= sizeof(host))
		return -1;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(AF_INET, host, cidr->addr) == 1) {
		cidr->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, host, cidr->addr) == 1) {
		cidr->family = AF_INET6;
		bits = 128;
	} else
		return -1;
	prefix = (long long)bits;
	if (slash != NULL) {
		prefix = strtonum(slash + 1, 0, (long long)bits, &errstr);
		if (errstr != NULL || slash[1] == '\0')
			return -1;
	}
	cidr->prefix = (uint8_t)prefix;
	/* "10.1.2.3/8" is a typo more often than a network: refuse it. */
	for (i = (size_t)prefix; i < bits; i++)
		if (cidr->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

/* Trim spaces at both ends, in place. */
static char *
trim(char *s)
{
	char	*end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* The next item of a comma-separated list being cut by strtok_r (buf the
 * first time, then NULL), trimmed; empty items are skipped.  NULL at the
 * end. */
static char *
next_item(char *buf, char **save)
{
	char	*item;

	while ((item = strtok_r(buf, ",", save)) != NULL) {
		buf = NULL;
		item = trim(item);
		if (*item != '\0')
			return item;
	}
	return NULL;
}

/* An address of a listen list, optionally followed by its mark:
 * "127.0.0.1:8443 proxy_protocol" (only where marks are allowed). */
static int
parse_listen_item(struct parse *p, const char *key, char *item,
    struct config_addr *addr, int marks)
{
	char	*mark;

	mark = item + strcspn(item, " \t");
	if (*mark != '\0') {
		*mark++ = '\0';
		mark = trim(mark);
	}
	if (config_parse_addr(item, addr) == -1) {
		parse_error(p, p->line, "%s: bad address '%s' "
		    "(want 127.0.0.1:8080 or [::1]:8080)", key, item);
		return -1;
	}
	if (*mark == '\0')
		return 0;
	if (marks && strcmp(mark, "proxy_protocol") == 0) {
		addr->proxy_protocol = 1;
		return 0;
	}
	parse_error(p, p->line, "%s: unknown option '%s' after %s%s", key,
	    mark, item, marks ? " (want proxy_protocol)" : "");
	return -1;
}

static int
parse_addr_list(struct parse *p, const char *key, const char *value,
    struct config_addr *list, size_t *count, int required, int marks)
{
	char	 buf[1024], *item, *save = NULL;

	*count = 0;
	if (strlcpy(buf, value, sizeof(buf)) >= sizeof(buf)) {
		parse_error(p, p->line, "%s: value too long", key);
		return -1;
	}
	for (item = next_item(buf, &save); item != NULL;
	    item = next_item(NULL, &save)) {
		if (*count == CONFIG_LISTEN_MAX) {
			parse_error(p, p->line, "%s: more than %d addresses",
			    key, CONFIG_LISTEN_MAX);
			return -1;
		}
		if (parse_listen_item(p, key, item, &list[*count], marks) ==
		    -1)
			return -1;
		(*count)++;
	}
	if (required && *count == 0) {
		parse_error(p, p->line, "%s: at least one address is required",
		    key);
		return -1;
	}
	return 0;
}

static int
parse_proxies(struct parse *p, const char *value)
{
	struct config	*c = &p->conf;
	char		 buf[2048], *item, *save = NULL;

	c->ntrusted_proxies = 0;
	if (strlcpy(buf, value, sizeof(buf)) >= sizeof(buf)) {
		parse_error(p, p->line, "[server] trusted_proxies: value too "
		    "long");
		return -1;
	}
	for (item = next_item(buf, &save); item != NULL;
	    item = next_item(NULL, &save)) {
		if (c->ntrusted_proxies == CONFIG_PROXIES_MAX) {
			parse_error(p, p->line, "[server] trusted_proxies: "
			    "more than %d networks", CONFIG_PROXIES_MAX);
			return -1;
		}
		if (config_parse_cidr(item,
		    &c->trusted_proxies[c->ntrusted_proxies]) == -1) {
			parse_error(p, p->line, "[server] trusted_proxies: bad "
			    "network '%s' (want 10.0.0.0/8, fd00::/8 or an "
			    "address, with no host bits set)", item);
			return -1;
		}
		c->ntrusted_proxies++;
	}
	return 0;
}

static int
parse_origins(struct parse *p, const char *value)
{
	struct config	*c = &p->conf;
	char		 buf[4096], *item, *save = NULL;

	c->norigins = 0;
	c->allow_any_origin = 0;
	if (strlcpy(buf, value, sizeof(buf)) >= sizeof(buf)) {
		parse_error(p, p->line, "[cors] allow_origins: value too long");
		return -1;
	}
	for (item = strtok_r(buf, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		if (*item == '\0')
			continue;
		if (strcmp(item, "*") == 0) {
			c->allow_any_origin = 1;
			continue;
		}
		if (strncmp(item, "http://", 7) != 0 &&
		    strncmp(item, "https://", 8) != 0) {
			parse_error(p, p->line, "[cors] allow_origins: '%s' is "
			    "not an origin (want http://host[:port] or *)",
			    item);
			return -1;
		}
		if (c->norigins == CONFIG_ORIGINS_MAX) {
			parse_error(p, p->line, "[cors] allow_origins: more "
			    "than %d origins", CONFIG_ORIGINS_MAX);
			return -1;
		}
		if (strlcpy(c->allow_origins[c->norigins], item,
		    sizeof(c->allow_origins[0])) >= sizeof(c->allow_origins[0])) {
			parse_error(p, p->line, "[cors] allow_origins: origin "
			    "too long");
			return -1;
		}
		c->norigins++;
	}
	return 0;
}

static int
check_range(struct parse *p, const struct key *k, uint64_t v, const char *text)
{
	if (v < k->min || v > k->max) {
		parse_error(p, p->line, "[%s] %s: '%s' is out of range "
		    "(%llu to %llu%s)", k->section, k->name, text,
		    (unsigned long long)k->min, (unsigned long long)k->max,
		    k->type == KEY_DURATION ? " ms" :
		    (k->type == KEY_SIZE32 || k->type == KEY_SIZE64) ?
		    " bytes" : "");
		return -1;
	}
	return 0;
}

static int
apply_key(struct parse *p, const struct key *k, const char *value)
{
	char		*base = (char *)&p->conf;
	uint64_t	 v;
	int		 b;
	const char	*errstr = NULL;
	enum log_level	 level;
	char		 msg[256];

	switch (k->type) {
	case KEY_SIZE64:
	case KEY_SIZE32:
		if (config_parse_size(value, &v) == -1) {
			parse_error(p, p->line, "[%s] %s: bad size '%s' "
			    "(want a number with K, M or G)", k->section,
			    k->name, value);
			return -1;
		}
		if (check_range(p, k, v, value) == -1)
			return -1;
		if (k->type == KEY_SIZE64)
			*(uint64_t *)(base + k->offset) = v;
		else
			*(uint32_t *)(base + k->offset) = (uint32_t)v;
		return 0;
	case KEY_DURATION:
		if (config_parse_duration(value, &v) == -1) {
			parse_error(p, p->line, "[%s] %s: bad duration '%s' "
			    "(want a number with ms, s, m or h)", k->section,
			    k->name, value);
			return -1;
		}
		if (check_range(p, k, v, value) == -1)
			return -1;
		*(uint64_t *)(base + k->offset) = v;
		return 0;
	case KEY_BOOL:
		if (config_parse_bool(value, &b) == -1) {
			parse_error(p, p->line, "[%s] %s: bad value '%s' "
			    "(want yes or no)", k->section, k->name, value);
			return -1;
		}
		*(int *)(base + k->offset) = b;
		return 0;
	case KEY_UINT32:
		v = (uint64_t)strtonum(value, (long long)k->min,
		    (long long)k->max, &errstr);
		if (errstr != NULL) {
			parse_error(p, p->line, "[%s] %s: '%s' is %s (want "
			    "%llu to %llu)", k->section, k->name, value, errstr,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return -1;
		}
		*(uint32_t *)(base + k->offset) = (uint32_t)v;
		return 0;
	case KEY_STRING:
		if (strlcpy(base + k->offset, value, k->size) >= k->size) {
			parse_error(p, p->line, "[%s] %s: value too long",
			    k->section, k->name);
			return -1;
		}
		return 0;
	case KEY_LISTEN:
		return parse_addr_list(p, "[server] listen", value,
		    p->conf.listen, &p->conf.nlisten, 1, 1);
	case KEY_ADMIN_LISTEN:
		return parse_addr_list(p, "[server] admin_listen", value,
		    p->conf.admin_listen, &p->conf.nadmin_listen, 0, 0);
	case KEY_PROXIES:
		return parse_proxies(p, value);
	case KEY_WORKERS:
		if (strcmp(value, "auto") == 0) {
			p->conf.workers = 0;
			return 0;
		}
		v = (uint64_t)strtonum(value, (long long)k->min,
		    (long long)k->max, &errstr);
		if (errstr != NULL) {
			parse_error(p, p->line, "[server] workers: '%s' is %s "
			    "(want auto or 1 to %llu)", value, errstr,
			    (unsigned long long)k->max);
			return -1;
		}
		p->conf.workers = (unsigned int)v;
		return 0;
	case KEY_SYNC:
		if (strcmp(value, "off") == 0)
			p->conf.ring_sync = CONFIG_SYNC_OFF;
		else if (strcmp(value, "interval") == 0)
			p->conf.ring_sync = CONFIG_SYNC_INTERVAL;
		else {
			parse_error(p, p->line, "[ring] sync: bad value '%s' "
			    "(want off or interval)", value);
			return -1;
		}
		return 0;
	case KEY_ORIGINS:
		return parse_origins(p, value);
	case KEY_ALGORITHMS:
		if (auth_algorithms_parse(value, &p->conf.jwt_algorithms, msg,
		    sizeof(msg)) == -1) {
			parse_error(p, p->line, "[auth] jwt_algorithms: %s",
			    msg);
			return -1;
		}
		return 0;
	case KEY_LEVEL:
		if (log_level_parse(value, &level) == -1) {
			parse_error(p, p->line, "[log] level: bad value '%s' "
			    "(want error, warn, info or debug)", value);
			return -1;
		}
		p->conf.log_level = level;
		return 0;
	}
	return -1;
}

static int
config_ini_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse	*p = user;
	size_t		 i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) != 0 ||
		    strcmp(keys[i].name, name) != 0)
			continue;
		if (p->seen[i] && p->fp != NULL) {
			parse_error(p, p->line, "[%s] %s: set twice", section,
			    name);
			return 1;
		}
		p->seen[i] = 1;
		apply_key(p, &keys[i], value);
		return 1;
	}
	parse_error(p, p->line, "[%s] %s: unknown key", section, name);
	return 1;
}

/* inih's line reader: fgets that counts lines so errors can name them. */
static char *
config_ini_reader(char *str, int num, void *stream)
{
	struct parse	*p = stream;
	char		*s;

	s = fgets(str, num, p->fp);
	if (s != NULL)
		p->line++;
	return s;
}

static void
defaults_into(struct parse *p)
{
	size_t	 i;

	memset(&p->conf, 0, sizeof(p->conf));
	for (i = 0; i < NKEYS; i++) {
		/* Defaults are valid by construction; a failure is a bug
		 * the config unit test catches. */
		apply_key(p, &keys[i], keys[i].fallback);
	}
}

void
config_defaults(struct config *conf)
{
	struct parse	 p;

	memset(&p, 0, sizeof(p));
	p.file = "(defaults)";
	defaults_into(&p);
	*conf = p.conf;
}

/* RFC 6265 4.1.1: a cookie-name is an RFC 2616 token. */
#define COOKIE_NAME_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
	"0123456789!#$%&'*+-.^_`|~"

/* Load [auth] jwt_key_file, last, so a bad key fails the load (and a
 * reload) like a bad value. */
static void
load_keys(struct parse *p)
{
	struct config	*c = &p->conf;
	char		 msg[1024], *s;

	if (c->jwt_key_file[0] == '\0')
		return;
	if (auth_load(&c->auth, c->jwt_key_file, c->jwt_algorithms,
	    c->jwt_audience, c->jwt_issuer, c->clock_skew_ms, msg,
	    sizeof(msg)) == 0)
		return;
	/* One line per error: nothing of the key file's bytes breaks it. */
	for (s = msg; *s != '\0'; s++)
		if (iscntrl((unsigned char)*s))
			*s = '?';
	parse_error(p, 0, "[auth] jwt_key_file: %s", msg);
}

/* [cluster]: a stream name NATS takes (no '.', '*', '>', space or path
 * separator), an odd replica count, and URLs that look like URLs. */
static void
check_cluster(struct parse *p)
{
	struct config	*c = &p->conf;
	const char	*s, *e;
	size_t		 n;

	if (c->cluster_stream[0] == '\0' ||
	    strspn(c->cluster_stream, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_") !=
	    strlen(c->cluster_stream))
		parse_error(p, 0, "[cluster] stream: '%s' is not a stream name "
		    "(letters, digits, - and _)", c->cluster_stream);
	if (c->cluster_replicas % 2 == 0)
		parse_error(p, 0, "[cluster] replicas: %u (want 1, 3 or 5: "
		    "JetStream needs a majority)", c->cluster_replicas);
	if (c->cluster_nats[0] == '\0')
		return;
	for (s = c->cluster_nats; *s != '\0'; s = *e == ',' ? e + 1 : e) {
		s += strspn(s, " \t");
		e = s + strcspn(s, ",");
		n = (size_t)(e - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0 || (strncmp(s, "nats://", 7) != 0 &&
		    strncmp(s, "tls://", 6) != 0) ||
		    memchr(s, ' ', n) != NULL) {
			parse_error(p, 0, "[cluster] nats: '%.*s' is not a "
			    "NATS URL (want nats://host:port, comma-separated)",
			    (int)n, s);
			return;
		}
	}
}

/* Cross-key checks that no single key can make. */
static void
check_whole(struct parse *p)
{
	struct config	*c = &p->conf;
	uint64_t	 frame_max;
	size_t		 i;

	if (c->ring_path[0] == '\0')
		parse_error(p, 0, "[ring] path: must not be empty");
	if (c->catalog_path[0] == '\0')
		parse_error(p, 0, "[catalog] path: must not be empty");
	if (c->log_target[0] == '\0')
		parse_error(p, 0, "[log] target: must not be empty");
	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i].proxy_protocol && c->ntrusted_proxies == 0)
			parse_error(p, 0, "[server] listen: %s proxy_protocol "
			    "needs [server] trusted_proxies (the proxies "
			    "allowed to connect there)", c->listen[i].text);
	/* The ring takes frames of up to a quarter of its size.  Ordinary
	 * text encodes to little more than itself; data made mostly of line
	 * ends grows up to 7 times and is refused with 413 at publish. */
	if (c->auth_cookie[0] == '\0' ||
	    strspn(c->auth_cookie, COOKIE_NAME_CHARS) !=
	    strlen(c->auth_cookie))
		parse_error(p, 0, "[auth] cookie: '%s' is not a cookie name "
		    "(letters, digits and !#$%%&'*+-.^_`|~)", c->auth_cookie);
	check_cluster(p);
	frame_max = (uint64_t)c->max_event_bytes + 256;
	if (frame_max > c->ring_size / 4)
		parse_error(p, 0, "[limits] max_event_bytes: %u does not fit "
		    "the ring: [ring] size must be at least 4 x "
		    "(max_event_bytes + 256) = %llu bytes", c->max_event_bytes,
		    (unsigned long long)frame_max * 4);
}

int
config_load(struct config *conf, const char *path, char *err, size_t errlen)
{
	struct parse	*p;
	int		 rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	p->file = path;
	p->err = err;
	p->errlen = err != NULL ? errlen : 0;
	defaults_into(p);
	if (strlcpy(p->conf.file, path, sizeof(p->conf.file)) >=
	    sizeof(p->conf.file)) {
		parse_error(p, 0, "file name too long");
		goto out;
	}
	if ((p->fp = fopen(path, "r")) == NULL) {
		parse_error(p, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	rc = ini_parse_stream(config_ini_reader, p, config_ini_handler, p);
	if (rc > 0 && p->nerrors == 0)
		parse_error(p, rc, "syntax error (want [section] or "
		    "key = value)");
	else if (rc > 0)
		parse_error(p, rc, "syntax error");
	else if (rc < 0)
		parse_error(p, 0, "cannot read: %s", strerror(errno));
	fclose(p->fp);
	p->fp = NULL;
	if (p->nerrors == 0)
		check_whole(p);
	if (p->nerrors == 0)
		load_keys(p);
out:
	rc = p->nerrors == 0 ? 0 : -1;
	if (rc == 0)
		*conf = p->conf;
	else
		config_free(&p->conf);
	free(p);
	return rc;
}

void
config_free(struct config *conf)
{
	auth_free(conf->auth);
	conf->auth = NULL;
}

unsigned int
config_workers(const struct config *conf)
{
	long	 n;

	if (conf->workers > 0)
		return conf->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (n > 256 ? 256 : (unsigned int)n);
}

int
config_origin_allowed(const struct config *conf, const char *origin,
    size_t len)
{
	size_t	 i;

	for (i = 0; i < conf->norigins; i++) {
		if (strlen(conf->allow_origins[i]) == len &&
		    memcmp(conf->allow_origins[i], origin, len) == 0)
			return CONFIG_ORIGIN_LISTED;
	}
	return conf->allow_any_origin ? CONFIG_ORIGIN_ANY : 0;
}
