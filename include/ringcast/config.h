/*
 * config: the INI configuration of DESIGN §9, parsed with inih.  Every key has
 * a default; config_load() reports every unknown key and bad value as
 * "file:line: [section] key: problem" and leaves nothing half-applied.
 */
#ifndef RINGCAST_CONFIG_H
#define RINGCAST_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ringcast/log.h"

struct auth;

#define CONFIG_LISTEN_MAX	8
#define CONFIG_ORIGINS_MAX	16
#define CONFIG_PROXIES_MAX	32
#define CONFIG_DEFAULT_FILE	RC_SYSCONFDIR "/ringcast/ringcast.conf"

struct config_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 text[64];	/* as written: "127.0.0.1:8080" */
	int			 proxy_protocol; /* listen: each connection
						 * opens with a PROXY header */
};

/* A network of [server] trusted_proxies: "10.0.0.0/8", "::1". */
struct config_cidr {
	sa_family_t		 family;	/* AF_INET or AF_INET6 */
	uint8_t			 prefix;	/* bits that must match */
	uint8_t			 addr[16];	/* host bits are zero */
};

enum config_sync {
	CONFIG_SYNC_OFF = 0,
	CONFIG_SYNC_INTERVAL,
};

struct config {
	char			 file[PATH_MAX];

	/* [server] */
	struct config_addr	 listen[CONFIG_LISTEN_MAX];
	size_t			 nlisten;
	struct config_addr	 admin_listen[CONFIG_LISTEN_MAX];
	size_t			 nadmin_listen;
	unsigned int		 workers;	/* 0: one per CPU */
	char			 user[64];	/* empty: keep the user */
	char			 pidfile[PATH_MAX];
	uint64_t		 drain_timeout_ms;
	uint64_t		 reload_spread_ms;
	int			 demo;		/* serve the demo page at / */
	/* Whose X-Forwarded-For and PROXY headers are believed. */
	struct config_cidr	 trusted_proxies[CONFIG_PROXIES_MAX];
	size_t			 ntrusted_proxies;
	char			 admin_token[128]; /* empty: no guard */

	/* [ring] */
	char			 ring_path[PATH_MAX];
	uint64_t		 ring_size;
	uint32_t		 ring_slots;
	enum config_sync	 ring_sync;

	/* [catalog] */
	char			 catalog_path[PATH_MAX];
	uint64_t		 catalog_map_size;
	int			 auto_create_topics;

	/* [history] */
	uint32_t		 history_keep;		/* 0: no default */
	uint64_t		 history_max_age_ms;	/* 0: no default */
	uint64_t		 history_map_size;

	/* [publish] */
	int			 require_token;
	uint32_t		 max_batch_bytes;
	uint32_t		 max_batch_events;

	/* [stream] */
	uint64_t		 heartbeat_ms;	/* 0: no heartbeat */
	uint64_t		 retry_ms;

	/* [limits] */
	uint32_t		 max_connections;	/* 0: fd limit */
	uint32_t		 max_connections_per_address;
	uint64_t		 header_timeout_ms;
	uint32_t		 max_header_bytes;
	uint32_t		 max_event_bytes;

	/* [cors] */
	char			 allow_origins[CONFIG_ORIGINS_MAX][256];
	size_t			 norigins;
	int			 allow_any_origin;

	/* [auth] */
	char			 jwt_key_file[PATH_MAX];	/* "": no JWT */
	unsigned int		 jwt_algorithms;	/* auth.c's bits */
	char			 jwt_audience[256];
	char			 jwt_issuer[256];
	uint64_t		 clock_skew_ms;
	char			 auth_cookie[64];
	struct auth		*auth;	/* jwt_key_file's keys, or NULL;
					 * owned: config_free */

	/* [cluster] */
	char			 cluster_nats[1024];	/* "": one node */
	char			 cluster_stream[64];
	uint32_t		 cluster_replicas;
	char			 cluster_credentials[PATH_MAX]; /* "": none */
	uint64_t		 cluster_publish_timeout_ms;
	uint64_t		 cluster_max_bytes;	/* the stream's bound */
	uint64_t		 cluster_max_age_ms;	/* 0: none */

	/* [log] */
	char			 log_target[PATH_MAX];
	enum log_level		 log_level;
};

/* Fill every key with its documented default. */
void	config_defaults(struct config *conf);
/* Load path over the defaults; 0 on success, or -1 with every problem, one
 * per line, in err (always NUL-terminated).  conf is only written on success;
 * a bad [auth] jwt_key_file is an error like a bad value. */
int	config_load(struct config *conf, const char *path, char *err,
	    size_t errlen);
/* Free what config_load loaded beside the struct (the JWT keys); the
 * struct stays usable without them. */
void	config_free(struct config *conf);
/* The number of workers to start: conf->workers, or one per online CPU. */
unsigned int config_workers(const struct config *conf);
#define CONFIG_ORIGIN_ANY	1	/* allowed through '*' */
#define CONFIG_ORIGIN_LISTED	2	/* named in allow_origins */

/* Is origin allowed by [cors] allow_origins?  CONFIG_ORIGIN_LISTED when
 * named there, CONFIG_ORIGIN_ANY through '*', or 0. */
int	config_origin_allowed(const struct config *conf, const char *origin,
	    size_t len);

/* Unit parsers shared with ringcastctl; 0 on success, -1 on a bad value. */
int	config_parse_size(const char *text, uint64_t *bytes);
int	config_parse_duration(const char *text, uint64_t *ms);
int	config_parse_bool(const char *text, int *value);
int	config_parse_addr(const char *text, struct config_addr *addr);
/* "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128); host bits
 * below the prefix must be zero. */
int	config_parse_cidr(const char *text, struct config_cidr *cidr);

#endif
