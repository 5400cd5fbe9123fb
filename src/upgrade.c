/*
 * upgrade: the environment of a binary upgrade (see upgrade.h).  Pure
 * string work, no descriptor is touched here: the master checks what each
 * named descriptor is (a listener bound to its address, a memory file of
 * the right size) before it uses it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/upgrade.h"

static int
upgrade_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
upgrade_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A decimal of at most 9 digits at *p, no sign: its value, *p past it;
 * -1 if there is none. */
static long
upgrade_number(const char **p)
{
	long	 v = 0;
	int	 digits = 0;

	while (**p >= '0' && **p <= '9' && digits < 10) {
		v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	if (digits == 0 || digits > 9)
		return -1;
	return v;
}

/* Whether fd appears among the first n of fds. */
static int
upgrade_seen(const int *fds, size_t n, int fd)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (fds[i] == fd)
			return 1;
	return 0;
}

int
upgrade_parse_listen(const char *text, struct upgrade_listener *out,
    size_t max, size_t *n, char *err, size_t errlen)
{
	const char	*p = text, *end;
	int		 seen[UPGRADE_LISTEN_MAX];
	size_t		 k = 0, len;
	long		 fd;

	if (*p == '\0')
		return upgrade_error(err, errlen, "%s: empty",
		    UPGRADE_ENV_LISTEN);
	for (;;) {
		if (k == max || k == UPGRADE_LISTEN_MAX)
			return upgrade_error(err, errlen, "%s: more than %zu "
			    "listeners", UPGRADE_ENV_LISTEN, k);
		if ((fd = upgrade_number(&p)) < 3 || *p != ':')
			return upgrade_error(err, errlen, "%s: entry %zu: "
			    "want fd:address with a descriptor above 2",
			    UPGRADE_ENV_LISTEN, k + 1);
		if (upgrade_seen(seen, k, (int)fd))
			return upgrade_error(err, errlen, "%s: descriptor %ld "
			    "named twice", UPGRADE_ENV_LISTEN, fd);
		p++;
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == 0 || len >= UPGRADE_ADDR_MAX)
			return upgrade_error(err, errlen, "%s: entry %zu: "
			    "address empty or longer than %d bytes",
			    UPGRADE_ENV_LISTEN, k + 1, UPGRADE_ADDR_MAX - 1);
		seen[k] = (int)fd;
		out[k].fd = (int)fd;
		memcpy(out[k].addr, p, len);
		out[k].addr[len] = '\0';
		k++;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	*n = k;
	return 0;
}

int
upgrade_format_listen(char *buf, size_t len, int fd, const char *addr)
{
	size_t	 used = strlen(buf);
	int	 w;

	if (strchr(addr, ',') != NULL || *addr == '\0' || used >= len)
		return -1;
	w = snprintf(buf + used, len - used, "%s%d:%s", used > 0 ? "," : "",
	    fd, addr);
	if (w < 0 || (size_t)w >= len - used) {
		buf[used] = '\0';
		return -1;
	}
	return 0;
}

int
upgrade_parse_state(const char *text, struct upgrade_state *st,
    char *err, size_t errlen)
{
	static const char *const names[] = { "version", "control socket",
	    "generation", "slot count", "metrics memory file",
	    "wake memory file" };
	int		 fds[2 * UPGRADE_SLOTS_MAX + 3];
	const char	*p = text;
	long		 v[6];
	size_t		 nfds = 0, i;
	unsigned int	 slot;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < 6; i++) {
		if ((v[i] = upgrade_number(&p)) == -1 ||
		    (*p != ':' && *p != '\0'))
			return upgrade_error(err, errlen, "%s: %s: not a "
			    "decimal", UPGRADE_ENV_STATE, names[i]);
		if (*p == '\0' && i < 5)
			return upgrade_error(err, errlen, "%s: ends at the %s",
			    UPGRADE_ENV_STATE, names[i]);
		if (*p == ':')
			p++;
	}
	if (v[0] != UPGRADE_VERSION)
		return upgrade_error(err, errlen, "%s: version %ld, not %d: "
		    "this binary cannot take over from that master",
		    UPGRADE_ENV_STATE, v[0], UPGRADE_VERSION);
	if (v[3] == 0 || v[3] > UPGRADE_SLOTS_MAX)
		return upgrade_error(err, errlen, "%s: slot count %ld out of "
		    "range", UPGRADE_ENV_STATE, v[3]);
	st->ctl = (int)v[1];
	st->generation = (int)v[2];
	st->nslots = (unsigned int)v[3];
	st->metrics_fd = (int)v[4];
	st->wake_fd = (int)v[5];
	fds[nfds++] = st->ctl;
	fds[nfds++] = st->metrics_fd;
	fds[nfds++] = st->wake_fd;
	for (slot = 0; slot < st->nslots; slot++) {
		for (i = 0; i < 2; i++) {
			if (p[-1] != ':' || (v[0] = upgrade_number(&p)) == -1 ||
			    (*p != ':' && *p != '\0'))
				return upgrade_error(err, errlen, "%s: inbox "
				    "%u: not a decimal (want %u pairs)",
				    UPGRADE_ENV_STATE, slot, st->nslots);
			if (*p == ':')
				p++;
			fds[nfds++] = (int)v[0];
			if (i == 0)
				st->inbox_send[slot] = (int)v[0];
			else
				st->inbox_recv[slot] = (int)v[0];
		}
		if (*p == '\0' && slot + 1 < st->nslots)
			return upgrade_error(err, errlen, "%s: %u inboxes, "
			    "want %u", UPGRADE_ENV_STATE, slot + 1,
			    st->nslots);
	}
	if (*p != '\0' || p[-1] == ':')
		return upgrade_error(err, errlen, "%s: more inboxes than the "
		    "%u slots", UPGRADE_ENV_STATE, st->nslots);
	for (i = 0; i < nfds; i++)
		if (fds[i] < 3 || upgrade_seen(fds, i, fds[i]))
			return upgrade_error(err, errlen, "%s: descriptor %d "
			    "is stdio or named twice", UPGRADE_ENV_STATE,
			    fds[i]);
	return 0;
}

int
upgrade_format_state(char *buf, size_t len, const struct upgrade_state *st)
{
	size_t		 used;
	unsigned int	 i;
	int		 w;

	w = snprintf(buf, len, "%d:%d:%d:%u:%d:%d", UPGRADE_VERSION, st->ctl,
	    st->generation, st->nslots, st->metrics_fd, st->wake_fd);
	if (w < 0 || (size_t)w >= len)
		return -1;
	used = (size_t)w;
	for (i = 0; i < st->nslots; i++) {
		w = snprintf(buf + used, len - used, ":%d:%d",
		    st->inbox_send[i], st->inbox_recv[i]);
		if (w < 0 || (size_t)w >= len - used)
			return -1;
		used += (size_t)w;
	}
	return 0;
}

int
upgrade_parse_ring(const char *text, uint64_t *size, uint32_t *slots,
    char *path, size_t pathlen, char *err, size_t errlen)
{
	const char		*p = text;
	unsigned long long	 v[2];
	char			*end;
	int			 i;

	for (i = 0; i < 2; i++) {
		if (*p < '0' || *p > '9')
			return upgrade_error(err, errlen, "%s: want "
			    "size:slots:path", UPGRADE_ENV_RING);
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno != 0 || *end != ':' ||
		    (i == 1 && v[i] > UINT32_MAX))
			return upgrade_error(err, errlen, "%s: want "
			    "size:slots:path", UPGRADE_ENV_RING);
		p = end + 1;
	}
	if (*p == '\0' || strlen(p) >= pathlen)
		return upgrade_error(err, errlen, "%s: path empty or too long",
		    UPGRADE_ENV_RING);
	*size = v[0];
	*slots = (uint32_t)v[1];
	memcpy(path, p, strlen(p) + 1);
	return 0;
}
