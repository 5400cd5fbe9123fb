/*
 * proxy: who the client is when ringcast sits behind proxies.  Parses the
 * PROXY protocol header (v1 text, v2 binary) that opens a connection on a
 * listener marked proxy_protocol, matches addresses against [server]
 * trusted_proxies, and finds the client in an X-Forwarded-For chain (the
 * right-most hop that is not a trusted proxy).  Pure functions on bytes: no
 * socket is touched, so all of it can be fuzzed.
 */
#ifndef RINGCAST_PROXY_H
#define RINGCAST_PROXY_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct config_cidr;

/* The longest header accepted: a v1 line is at most 107 bytes; a v2 header
 * is 16 bytes then its addresses and TLVs, which real proxies keep far
 * below 1024 bytes (the length field alone would allow 64K). */
#define PROXY_V1_MAX		107
#define PROXY_V2_PAYLOAD_MAX	1024
#define PROXY_HEADER_MAX	(16 + PROXY_V2_PAYLOAD_MAX)
/* Enough for "ffff:...:255.255.255.255" and a NUL. */
#define PROXY_ADDR_TEXT		48

struct proxy_header {
	int			 version;	/* 1 or 2 */
	int			 local;		/* no address: v1 UNKNOWN,
						 * v2 LOCAL or a family other
						 * than TCP over IPv4/IPv6 */
	struct sockaddr_storage	 src;		/* the client (not local) */
	struct sockaddr_storage	 dst;		/* the proxy's listener */
};

/* Parse the PROXY header at the start of buf[len]: its length (> 0) with *h
 * filled; 0 when buf is a valid start of a header but incomplete (read
 * more); -1 when it is not a valid header (or longer than
 * PROXY_HEADER_MAX).  Reads nothing beyond len.  O(len). */
ssize_t	proxy_parse(const void *buf, size_t len, struct proxy_header *h);
/* Is ss inside one of the n networks?  An IPv4-mapped IPv6 address counts
 * as its IPv4 address.  O(n). */
int	proxy_trusted(const struct config_cidr *nets, size_t n,
	    const struct sockaddr_storage *ss);
/* The client of a request whose X-Forwarded-For value is xff (whole
 * elements, comma-separated) and which came from a trusted peer: walking
 * from the right, the first hop that is not trusted, or the left-most one
 * when all are; an unparsable hop ends the walk at the hop to its right.
 * 1 with *client set (IPv4-mapped addresses as IPv4), 0 when xff names no
 * address at all.  O(length of xff x n). */
int	proxy_forwarded_client(const char *xff, const struct config_cidr *nets,
	    size_t n, struct sockaddr_storage *client);
/* The address of ss without its port, for logs ("?" for other families);
 * returns buf. */
const char *proxy_addr_text(const struct sockaddr_storage *ss, char *buf,
	    size_t cap);

#endif
