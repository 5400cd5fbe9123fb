/*
 * proxy: see proxy.h.  Written from HAProxy's proxy-protocol.txt.  The
 * parser is strict (one space between v1 fields, addresses of the stated
 * family, ports without a sign, a v2 length that covers the addresses),
 * because what it yields decides whose connection caps a peer is charged
 * to: anything doubtful is refused, never guessed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "ringcast/config.h"
#include "ringcast/proxy.h"

static const unsigned char proxy_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes plain IPv4, so one
 * client has one bucket and one spelling whatever carried it. */
static void
proxy_unmap(struct sockaddr_storage *ss)
{
	static const unsigned char	 mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in	 sin;

	if (ss->ss_family != AF_INET6 ||
	    memcmp(sin6->sin6_addr.s6_addr, mapped, sizeof(mapped)) != 0)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

static void
proxy_set_addr(struct sockaddr_storage *ss, int family, const void *addr,
    uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
	}
}

/* One v1 field: the bytes up to the next space (or the end), which must be
 * 1..cap-1 long, into out; the position after it, or NULL. */
static const char *
proxy_v1_field(const char *p, const char *end, char *out, size_t cap)
{
	const char	*sp = memchr(p, ' ', (size_t)(end - p));
	size_t		 n;

	if (sp == NULL)
		sp = end;
	n = (size_t)(sp - p);
	if (n == 0 || n >= cap)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return sp;
}

static int
proxy_v1_port(const char *s, uint16_t *port)
{
	unsigned long	 v = 0;
	size_t		 i, n = strlen(s);

	/* Decimal, 0..65535, no leading zero but for "0" itself. */
	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "PROXY TCP4 192.0.2.1 192.0.2.2 51000 8080" (the line without CRLF). */
static int
proxy_v1_line(const char *line, size_t len, struct proxy_header *h)
{
	const char	*p = line + 6, *end = line + len;
	char		 proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	char		 sport[8], dport[8];
	unsigned char	 a[16], b[16];
	uint16_t	 sp, dp;
	int		 family;

	if ((p = proxy_v1_field(p, end, proto, sizeof(proto))) == NULL)
		return -1;
	if (strcmp(proto, "UNKNOWN") == 0) {
		/* The rest is to be ignored, whatever it is. */
		h->local = 1;
		return 0;
	}
	if (strcmp(proto, "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		family = AF_INET6;
	else
		return -1;
	if (p == end || *p++ != ' ' ||
	    (p = proxy_v1_field(p, end, src, sizeof(src))) == NULL ||
	    p == end || *p++ != ' ' ||
	    (p = proxy_v1_field(p, end, dst, sizeof(dst))) == NULL ||
	    p == end || *p++ != ' ' ||
	    (p = proxy_v1_field(p, end, sport, sizeof(sport))) == NULL ||
	    p == end || *p++ != ' ' ||
	    (p = proxy_v1_field(p, end, dport, sizeof(dport))) == NULL ||
	    p != end)
		return -1;
	if (inet_pton(family, src, a) != 1 || inet_pton(family, dst, b) != 1 ||
	    proxy_v1_port(sport, &sp) == -1 || proxy_v1_port(dport, &dp) == -1)
		return -1;
	proxy_set_addr(&h->src, family, a, sp);
	proxy_set_addr(&h->dst, family, b, dp);
	proxy_unmap(&h->src);
	proxy_unmap(&h->dst);
	return 0;
}

static ssize_t
proxy_parse_v1(const char *buf, size_t len, struct proxy_header *h)
{
	const char	*nl, *p;
	size_t		 scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;

	if (memcmp(buf, "PROXY ", len < 6 ? len : 6) != 0)
		return -1;
	if ((nl = memchr(buf, '\n', scan)) == NULL)
		return len < PROXY_V1_MAX ? 0 : -1;
	if (nl == buf || nl[-1] != '\r' || nl - buf < 7)
		return -1;
	/* No CR, NUL or other control byte inside the line. */
	for (p = buf; p < nl - 1; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	h->version = 1;
	if (proxy_v1_line(buf, (size_t)(nl - 1 - buf), h) == -1)
		return -1;
	return nl - buf + 1;
}

static ssize_t
proxy_parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h)
{
	size_t		 payload, need;
	unsigned int	 cmd, family, transport;

	if (memcmp(buf, proxy_v2_sig, len < 12 ? len : 12) != 0)
		return -1;
	/* Refuse a wrong version or command as soon as it is seen. */
	if (len > 12 && ((buf[12] >> 4) != 2 || (buf[12] & 0x0f) > 1))
		return -1;
	if (len > 13 && ((buf[13] >> 4) > 3 || (buf[13] & 0x0f) > 2))
		return -1;
	if (len < 16)
		return 0;
	payload = (size_t)buf[14] << 8 | buf[15];
	if (payload > PROXY_V2_PAYLOAD_MAX)
		return -1;
	cmd = buf[12] & 0x0f;
	family = buf[13] >> 4;
	transport = buf[13] & 0x0f;
	need = family == 1 ? 12 : family == 2 ? 36 : family == 3 ? 216 : 0;
	if (cmd == 1 && payload < need)
		return -1;
	if (len < 16 + payload)
		return 0;
	h->version = 2;
	/* LOCAL (a health check of the proxy's own), or addresses we do not
	 * use (UNSPEC, AF_UNIX, datagrams): the connection's own apply. */
	if (cmd == 0 || (family != 1 && family != 2) || transport != 1) {
		h->local = 1;
		return (ssize_t)(16 + payload);
	}
	if (family == 1) {
		proxy_set_addr(&h->src, AF_INET, buf + 16,
		    (uint16_t)(buf[24] << 8 | buf[25]));
		proxy_set_addr(&h->dst, AF_INET, buf + 20,
		    (uint16_t)(buf[26] << 8 | buf[27]));
	} else {
		proxy_set_addr(&h->src, AF_INET6, buf + 16,
		    (uint16_t)(buf[48] << 8 | buf[49]));
		proxy_set_addr(&h->dst, AF_INET6, buf + 32,
		    (uint16_t)(buf[50] << 8 | buf[51]));
		proxy_unmap(&h->src);
		proxy_unmap(&h->dst);
	}
	return (ssize_t)(16 + payload);
}

ssize_t
proxy_parse(const void *buf, size_t len, struct proxy_header *h)
{
	const unsigned char	*p = buf;

	memset(h, 0, sizeof(*h));
	if (len == 0)
		return 0;
	if (p[0] == 'P')
		return proxy_parse_v1(buf, len, h);
	if (p[0] == proxy_v2_sig[0])
		return proxy_parse_v2(p, len, h);
	return -1;
}

int
proxy_trusted(const struct config_cidr *nets, size_t n,
    const struct sockaddr_storage *ss)
{
	struct sockaddr_storage	 addr = *ss;
	const unsigned char	*a;
	size_t			 i, full, rest;

	proxy_unmap(&addr);
	if (addr.ss_family == AF_INET)
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)&addr)->sin_addr;
	else if (addr.ss_family == AF_INET6)
		a = ((const struct sockaddr_in6 *)&addr)->sin6_addr.s6_addr;
	else
		return 0;
	for (i = 0; i < n; i++) {
		if (nets[i].family != addr.ss_family)
			continue;
		full = nets[i].prefix / 8;
		rest = nets[i].prefix % 8;
		if (memcmp(a, nets[i].addr, full) != 0)
			continue;
		if (rest != 0 && ((a[full] ^ nets[i].addr[full]) &
		    (0xff00 >> rest)) != 0)
			continue;
		return 1;
	}
	return 0;
}

/* One hop of X-Forwarded-For: "192.0.2.1", "2001:db8::1", and the forms
 * with a port some proxies write, "192.0.2.1:443" and "[2001:db8::1]:443".
 * 0 with *ss set, or -1. */
static int
proxy_parse_hop(const char *s, size_t len, struct sockaddr_storage *ss)
{
	char		 text[INET6_ADDRSTRLEN + 8];
	const char	*end;
	unsigned char	 a[16];
	uint16_t	 port;

	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (text[0] == '[') {
		if ((end = strchr(text, ']')) == NULL ||
		    (end[1] != '\0' && (end[1] != ':' ||
		    proxy_v1_port(end + 2, &port) == -1)))
			return -1;
		text[end - text] = '\0';
		if (inet_pton(AF_INET6, text + 1, a) != 1)
			return -1;
		proxy_set_addr(ss, AF_INET6, a, 0);
	} else if (inet_pton(AF_INET6, text, a) == 1)
		proxy_set_addr(ss, AF_INET6, a, 0);
	else {
		if ((end = strchr(text, ':')) != NULL) {
			if (proxy_v1_port(end + 1, &port) == -1)
				return -1;
			text[end - text] = '\0';
		}
		if (inet_pton(AF_INET, text, a) != 1)
			return -1;
		proxy_set_addr(ss, AF_INET, a, 0);
	}
	proxy_unmap(ss);
	return 0;
}

int
proxy_forwarded_client(const char *xff, const struct config_cidr *nets,
    size_t n, struct sockaddr_storage *client)
{
	struct sockaddr_storage	 hop;
	const char		*end = xff + strlen(xff), *start, *last;
	int			 found = 0;

	while (end > xff) {
		start = end;
		while (start > xff && start[-1] != ',')
			start--;
		last = end;
		end = start > xff ? start - 1 : xff;
		while (start < last && (*start == ' ' || *start == '\t'))
			start++;
		while (last > start && (last[-1] == ' ' || last[-1] == '\t'))
			last--;
		/* Empty list elements are allowed (RFC 9110, 5.6.1). */
		if (start == last)
			continue;
		if (proxy_parse_hop(start, (size_t)(last - start), &hop) == -1)
			break;
		*client = hop;
		found = 1;
		if (!proxy_trusted(nets, n, &hop))
			break;
	}
	return found;
}

const char *
proxy_addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const void	*a;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	else
		a = NULL;
	if (a == NULL || inet_ntop(ss->ss_family, a, buf, (socklen_t)cap) ==
	    NULL)
		strlcpy(buf, "?", cap);
	return buf;
}
