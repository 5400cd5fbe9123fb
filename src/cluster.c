/*
 * cluster: see cluster.h.  Thin helpers over nats.c; every call that can
 * fail turns the library's status and last error into one line naming
 * what was being done.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/cluster.h"
#include "ringcast/config.h"
#include "ringcast/log.h"

#define CLUSTER_BASE_TAG	"ringcast base="
#define CLUSTER_CONNECT_MS	1000
#define CLUSTER_RECONNECT_MS	250
#define CLUSTER_PING_MS		2000

int
cluster_enabled(const struct config *conf)
{
	return conf->cluster_nats[0] != '\0';
}

const char *
cluster_status_text(natsStatus s)
{
	const char	*last;
	natsStatus	 ls;

	last = nats_GetLastError(&ls);
	if (last != NULL && *last != '\0')
		return last;
	return natsStatus_GetText(s);
}

#define CLUSTER_SERVERS_MAX	32

/* Split [cluster] nats into up to CLUSTER_SERVERS_MAX URLs in buf (the
 * config checked their form).  Returns how many. */
static int
cluster_servers(const char *list, char *buf, size_t len, const char **urls)
{
	char	*p, *tok, *end;
	int	 n = 0;

	if (strlcpy(buf, list, len) >= len)
		return 0;
	for (p = buf; (tok = strsep(&p, ",")) != NULL &&
	    n < CLUSTER_SERVERS_MAX;) {
		tok += strspn(tok, " \t");
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok != '\0')
			urls[n++] = tok;
	}
	return n;
}

/* With no connected callback, nats.c retries a failed first connect
 * inside natsConnection_Connect, forever: a daemon must not block there. */
static void
cluster_connected_noop(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
}

int
cluster_connect(const struct config *conf, const char *name, int persistent,
    natsConnectionHandler disconnected, natsConnectionHandler reconnected,
    void *closure, natsConnection **ncp, char *err, size_t errlen)
{
	natsOptions	*opts = NULL;
	natsStatus	 s;
	const char	*urls[CLUSTER_SERVERS_MAX];
	char		 buf[sizeof(conf->cluster_nats)];
	int		 n;

	*ncp = NULL;
	/* nats.c 3.4 takes one URL in SetURL: a list goes to SetServers. */
	if ((n = cluster_servers(conf->cluster_nats, buf, sizeof(buf),
	    urls)) == 0) {
		snprintf(err, errlen, "[cluster] nats: no server");
		return -1;
	}
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, CLUSTER_CONNECT_MS);
	if (s == NATS_OK && conf->cluster_credentials[0] != '\0')
		s = natsOptions_SetUserCredentialsFromFiles(opts,
		    conf->cluster_credentials, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(opts, CLUSTER_PING_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(opts, 2);
	/* Each publish waits for its ack: write it at once rather than
	 * when nats.c's flusher thread next runs (about 1 ms each). */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(opts, true);
	if (s == NATS_OK && persistent) {
		s = natsOptions_SetMaxReconnect(opts, -1);
		if (s == NATS_OK)
			s = natsOptions_SetReconnectWait(opts,
			    CLUSTER_RECONNECT_MS);
		if (s == NATS_OK)
			s = natsOptions_SetRetryOnFailedConnect(opts, true,
			    reconnected != NULL ? reconnected :
			    cluster_connected_noop, closure);
	}
	if (s == NATS_OK && disconnected != NULL)
		s = natsOptions_SetDisconnectedCB(opts, disconnected, closure);
	if (s == NATS_OK && reconnected != NULL)
		s = natsOptions_SetReconnectedCB(opts, reconnected, closure);
	if (s != NATS_OK) {
		snprintf(err, errlen, "[cluster]: %s", cluster_status_text(s));
		natsOptions_Destroy(opts);
		return -1;
	}
	s = natsConnection_Connect(ncp, opts);
	natsOptions_Destroy(opts);
	/* With retries on, NOT_YET_CONNECTED is a connection on its way. */
	if (s == NATS_OK || (persistent && s == NATS_NOT_YET_CONNECTED))
		return 0;
	snprintf(err, errlen, "cannot reach NATS at %s: %s",
	    conf->cluster_nats, cluster_status_text(s));
	natsConnection_Destroy(*ncp);
	*ncp = NULL;
	return -1;
}

int
cluster_jetstream(natsConnection *nc, jsPubAckHandler ack, void *closure,
    int64_t wait_ms, jsCtx **jsp, char *err, size_t errlen)
{
	jsOptions	 o;
	natsStatus	 s;

	jsOptions_Init(&o);
	o.Wait = wait_ms;
	o.PublishAsync.AckHandler = ack;
	o.PublishAsync.AckHandlerClosure = closure;
	o.PublishAsync.MaxPending = 65536;
	s = natsConnection_JetStream(jsp, nc, &o);
	if (s != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", cluster_status_text(s));
		return -1;
	}
	return 0;
}

static int
cluster_subject_plain(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>' &&
	    c != '%';
}

int
cluster_subject(char *buf, size_t len, const char *topic)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 n;
	const unsigned char	*p;

	n = strlcpy(buf, CLUSTER_SUBJECT_PREFIX, len);
	if (n >= len)
		return -1;
	for (p = (const unsigned char *)topic; *p != '\0'; p++) {
		if (cluster_subject_plain(*p)) {
			if (n + 1 >= len)
				return -1;
			buf[n++] = (char)*p;
			continue;
		}
		if (n + 3 >= len)
			return -1;
		buf[n++] = '%';
		buf[n++] = hex[*p >> 4];
		buf[n++] = hex[*p & 0xf];
	}
	buf[n] = '\0';
	return 0;
}

static int
cluster_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
cluster_subject_topic(const char *subject, char *topic, size_t len)
{
	const char	*p;
	size_t		 n = 0;
	int		 hi, lo;

	if (strncmp(subject, CLUSTER_SUBJECT_PREFIX,
	    sizeof(CLUSTER_SUBJECT_PREFIX) - 1) != 0)
		return -1;
	p = subject + sizeof(CLUSTER_SUBJECT_PREFIX) - 1;
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		if (n + 1 >= len)
			return -1;
		if (*p != '%') {
			topic[n++] = *p;
			continue;
		}
		if ((hi = cluster_hex(p[1])) == -1 ||
		    (lo = cluster_hex(p[2])) == -1 || (hi == 0 && lo == 0))
			return -1;
		topic[n++] = (char)(hi << 4 | lo);
		p += 2;
	}
	topic[n] = '\0';
	return 0;
}

uint64_t
cluster_base_parse(const char *description)
{
	const char	*p;
	char		*end;
	unsigned long long v;

	if (description == NULL ||
	    (p = strstr(description, CLUSTER_BASE_TAG)) == NULL)
		return 0;
	p += sizeof(CLUSTER_BASE_TAG) - 1;
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno != 0)
		return 0;
	return (uint64_t)v;
}

uint64_t
cluster_base_next(uint64_t newest)
{
	if (newest == 0)
		return 0;
	if (newest > UINT64_MAX - 2 * CLUSTER_BASE_STEP)
		return newest;
	return (newest / CLUSTER_BASE_STEP + 2) * CLUSTER_BASE_STEP;
}

static void
cluster_epoch_fill(const jsStreamInfo *si, struct cluster_epoch *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->created = si->Created;
	ep->base = cluster_base_parse(si->Config != NULL ?
	    si->Config->Description : NULL);
	ep->first_seq = si->State.FirstSeq;
	ep->last_seq = si->State.LastSeq;
}

/* The window in which a resent message id is stored once: two minutes,
 * but no longer than the stream keeps events (JetStream's rule). */
static int64_t
cluster_duplicates(int64_t max_age_ns)
{
	int64_t	 window = 120LL * 1000 * 1000 * 1000;

	return max_age_ns > 0 && max_age_ns < window ? max_age_ns : window;
}

/* Bring an existing stream's bounds and replicas to [cluster]'s, so a
 * configuration change reaches the stream (with a reload). */
static void
cluster_stream_bound(jsCtx *js, const struct config *conf,
    const jsStreamInfo *si)
{
	jsStreamInfo	*up = NULL;
	jsStreamConfig	 cfg;
	jsErrCode	 jerr = 0;
	natsStatus	 s;
	int64_t		 bytes, age;

	if (si->Config == NULL)
		return;
	bytes = (int64_t)conf->cluster_max_bytes;
	age = (int64_t)conf->cluster_max_age_ms * 1000000;
	if (si->Config->MaxBytes == bytes && si->Config->MaxAge == age &&
	    si->Config->Replicas == (int64_t)conf->cluster_replicas)
		return;
	cfg = *si->Config;
	cfg.MaxBytes = bytes;
	cfg.MaxAge = age;
	cfg.Duplicates = cluster_duplicates(age);
	cfg.Replicas = conf->cluster_replicas;
	s = js_UpdateStream(&up, js, &cfg, NULL, &jerr);
	if (s != NATS_OK)
		log_warnx("stream %s: cannot apply [cluster] max_bytes, "
		    "max_age, replicas: %s", conf->cluster_stream,
		    cluster_status_text(s));
	else
		log_info("stream %s: bounds now max_bytes %lld, max_age %lld "
		    "s, replicas %u", conf->cluster_stream, (long long)bytes,
		    (long long)(age / 1000000000), conf->cluster_replicas);
	jsStreamInfo_Destroy(up);
}

int
cluster_stream_ensure(jsCtx *js, const struct config *conf, uint64_t newest,
    struct cluster_epoch *ep, char *err, size_t errlen)
{
	jsStreamInfo	*si = NULL;
	jsStreamConfig	 cfg;
	jsErrCode	 jerr = 0;
	natsStatus	 s;
	const char	*subjects[] = { CLUSTER_SUBJECT_PREFIX ">" };
	char		 desc[96];

	s = js_GetStreamInfo(&si, js, conf->cluster_stream, NULL, &jerr);
	if (s == NATS_OK) {
		cluster_epoch_fill(si, ep);
		cluster_stream_bound(js, conf, si);
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		snprintf(err, errlen, "stream %s: %s", conf->cluster_stream,
		    cluster_status_text(s));
		return -1;
	}
	jsStreamConfig_Init(&cfg);
	snprintf(desc, sizeof(desc), "%s%" PRIu64 " (ids are base + sequence)",
	    CLUSTER_BASE_TAG, cluster_base_next(newest));
	cfg.Name = conf->cluster_stream;
	cfg.Description = desc;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = conf->cluster_replicas;
	cfg.MaxBytes = (int64_t)conf->cluster_max_bytes;
	cfg.MaxAge = (int64_t)conf->cluster_max_age_ms * 1000000;
	cfg.Duplicates = cluster_duplicates(cfg.MaxAge);
	jerr = 0;
	s = js_AddStream(&si, js, &cfg, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr) {
		/* Another node made it first: use theirs. */
		jerr = 0;
		s = js_GetStreamInfo(&si, js, conf->cluster_stream, NULL,
		    &jerr);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "stream %s: cannot make it: %s",
		    conf->cluster_stream, cluster_status_text(s));
		return -1;
	}
	cluster_epoch_fill(si, ep);
	jsStreamInfo_Destroy(si);
	return 0;
}
