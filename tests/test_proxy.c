/*
 * test_proxy: the PROXY protocol parser (v1 and v2), trusted networks and
 * the client of an X-Forwarded-For chain.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "rc_test.h"

#include "ringcast/config.h"
#include "ringcast/proxy.h"

static const char v2_sig[] = "\r\n\r\n\0\r\nQUIT\n";

/* The address and port of ss as "a.b.c.d:port" or "[v6]:port". */
static const char *
addr_port(const struct sockaddr_storage *ss)
{
	static char	 out[80];
	char		 text[PROXY_ADDR_TEXT];
	unsigned int	 port;

	proxy_addr_text(ss, text, sizeof(text));
	if (ss->ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	else
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	snprintf(out, sizeof(out), ss->ss_family == AF_INET6 ? "[%s]:%u" :
	    "%s:%u", text, port);
	return out;
}

static ssize_t
parse_text(const char *text, struct proxy_header *h)
{
	return proxy_parse(text, strlen(text), h);
}

/* A v2 header: command, family byte, then payload[len]. */
static size_t
v2_header(unsigned char *out, int cmd, int fam, const void *payload,
    size_t len)
{
	memcpy(out, v2_sig, 12);
	out[12] = (unsigned char)(0x20 | cmd);
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(len >> 8);
	out[15] = (unsigned char)len;
	memcpy(out + 16, payload, len);
	return 16 + len;
}

static void
test_proxy_v1_tcp4_names_the_client(void **state)
{
	struct proxy_header	 h;
	const char		*line = "PROXY TCP4 203.0.113.7 127.0.0.1 "
				    "51234 8443\r\nGET / HTTP/1.1\r\n";

	(void)state;
	assert_int_equal(parse_text(line, &h),
	    strlen("PROXY TCP4 203.0.113.7 127.0.0.1 51234 8443\r\n"));
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_string_equal(addr_port(&h.src), "203.0.113.7:51234");
	assert_string_equal(addr_port(&h.dst), "127.0.0.1:8443");
}

static void
test_proxy_v1_tcp6_names_the_client(void **state)
{
	struct proxy_header	 h;

	(void)state;
	assert_int_equal(parse_text("PROXY TCP6 2001:db8::7 ::1 443 8443\r\n",
	    &h), 37);
	assert_string_equal(addr_port(&h.src), "[2001:db8::7]:443");
	assert_string_equal(addr_port(&h.dst), "[::1]:8443");
}

static void
test_proxy_v1_mapped_ipv6_is_ipv4(void **state)
{
	struct proxy_header	 h;

	(void)state;
	assert_true(parse_text("PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n",
	    &h) > 0);
	assert_int_equal(h.src.ss_family, AF_INET);
	assert_string_equal(addr_port(&h.src), "192.0.2.9:1");
}

static void
test_proxy_v1_unknown_keeps_the_connection_address(void **state)
{
	struct proxy_header	 h;

	(void)state;
	assert_int_equal(parse_text("PROXY UNKNOWN\r\n", &h), 15);
	assert_true(h.local);
	assert_int_equal(parse_text("PROXY UNKNOWN ffff:f...f:ffff "
	    "ffff:f...f:ffff 65535 65535\r\n", &h), 59);
	assert_true(h.local);
}

static void
test_proxy_v1_every_prefix_asks_for_more(void **state)
{
	struct proxy_header	 h;
	const char		*line = "PROXY TCP4 10.1.2.3 10.0.0.1 1 2\r\n";
	size_t			 i, len = strlen(line);

	(void)state;
	for (i = 0; i < len; i++)
		assert_int_equal(proxy_parse(line, i, &h), 0);
	assert_int_equal(proxy_parse(line, len, &h), (ssize_t)len);
}

static void
test_proxy_v1_rejects_malformed_lines(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 10.1.2.3 10.0.0.1 1 2\n",		/* bare LF */
		"PROXY TCP4 10.1.2.3  10.0.0.1 1 2\r\n",	/* two spaces */
		"PROXY TCP4 10.1.2.3 10.0.0.1 1\r\n",		/* no dport */
		"PROXY TCP4 10.1.2.3 10.0.0.1 1 2 3\r\n",	/* extra */
		"PROXY TCP4 10.1.2.3 10.0.0.1 1 2 \r\n",	/* trailing */
		"PROXY TCP4 10.1.2.3 10.0.0.1 1 65536\r\n",	/* port */
		"PROXY TCP4 10.1.2.3 10.0.0.1 01 2\r\n",	/* leading 0 */
		"PROXY TCP4 10.1.2.3 10.0.0.1 -1 2\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",			/* family */
		"PROXY TCP6 10.1.2.3 10.0.0.1 1 2\r\n",
		"PROXY TCP4 10.1.2 10.0.0.1 1 2\r\n",
		"PROXY TCP4 10.1.2.300 10.0.0.1 1 2\r\n",
		"PROXY UDP4 10.1.2.3 10.0.0.1 1 2\r\n",
		"PROXY\r\n",
		"PROXY \r\n",
		"PROXY TCP4 10.1.2.3\t10.0.0.1 1 2\r\n",
		"proxy TCP4 10.1.2.3 10.0.0.1 1 2\r\n",
		"GET / HTTP/1.1\r\n",
		"PROXZ",
	};
	struct proxy_header	 h;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_text(bad[i], &h) != -1)
			fail_msg("accepted %s", bad[i]);
	}
}

static void
test_proxy_v1_longer_than_107_bytes_is_refused(void **state)
{
	struct proxy_header	 h;
	char			 line[200];

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	/* 107 bytes without a line end: it can no longer be a header. */
	assert_int_equal(proxy_parse(line, 106, &h), 0);
	assert_int_equal(proxy_parse(line, 107, &h), -1);
	memcpy(line + 105, "\r\n", 2);
	assert_int_equal(proxy_parse(line, 200, &h), 107);
	memcpy(line + 105, "xx\r\n", 4);
	assert_int_equal(proxy_parse(line, 200, &h), -1);
}

static void
test_proxy_v2_ipv4_names_the_client(void **state)
{
	static const unsigned char addrs[12] = {
		203, 0, 113, 7, 127, 0, 0, 1, 0xc8, 0x22, 0x20, 0xfb
	};
	unsigned char		 buf[64];
	struct proxy_header	 h;
	size_t			 len;

	(void)state;
	len = v2_header(buf, 1, 0x11, addrs, sizeof(addrs));
	memcpy(buf + len, "GET", 3);
	assert_int_equal(proxy_parse(buf, len + 3, &h), 28);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	assert_string_equal(addr_port(&h.src), "203.0.113.7:51234");
	assert_string_equal(addr_port(&h.dst), "127.0.0.1:8443");
}

static void
test_proxy_v2_ipv6_with_tlvs_names_the_client(void **state)
{
	unsigned char		 payload[36 + 7], buf[80];
	struct proxy_header	 h;

	(void)state;
	memset(payload, 0, sizeof(payload));
	inet_pton(AF_INET6, "2001:db8::7", payload);
	inet_pton(AF_INET6, "::1", payload + 16);
	payload[32] = 0x01;
	payload[33] = 0xbb;
	payload[34] = 0x20;
	payload[35] = 0xfb;
	/* A TLV (PP2_TYPE_AUTHORITY, 4 bytes): skipped. */
	memcpy(payload + 36, "\x02\x00\x04host", 7);
	assert_int_equal(proxy_parse(buf, v2_header(buf, 1, 0x21, payload,
	    sizeof(payload)), &h), 16 + 43);
	assert_string_equal(addr_port(&h.src), "[2001:db8::7]:443");
}

static void
test_proxy_v2_local_keeps_the_connection_address(void **state)
{
	unsigned char		 buf[32];
	struct proxy_header	 h;

	(void)state;
	assert_int_equal(proxy_parse(buf, v2_header(buf, 0, 0x00, "", 0),
	    &h), 16);
	assert_true(h.local);
	/* PROXY over a family we do not use (AF_UNIX) is as LOCAL. */
	{
		unsigned char	 big[16 + 216], unix_addrs[216];

		memset(unix_addrs, 0, sizeof(unix_addrs));
		assert_int_equal(proxy_parse(big, v2_header(big, 1, 0x31,
		    unix_addrs, sizeof(unix_addrs)), &h), 232);
		assert_true(h.local);
	}
}

static void
test_proxy_v2_every_prefix_asks_for_more(void **state)
{
	static const unsigned char addrs[12] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char		 buf[64];
	struct proxy_header	 h;
	size_t			 i, len;

	(void)state;
	len = v2_header(buf, 1, 0x11, addrs, sizeof(addrs));
	for (i = 0; i < len; i++)
		assert_int_equal(proxy_parse(buf, i, &h), 0);
	assert_int_equal(proxy_parse(buf, len, &h), (ssize_t)len);
}

static void
test_proxy_v2_rejects_malformed_headers(void **state)
{
	unsigned char		 buf[2048], addrs[1100];
	struct proxy_header	 h;
	size_t			 len;

	(void)state;
	memset(addrs, 0, sizeof(addrs));
	/* Version 1 in the binary form, command 2, family 4, transport 3. */
	len = v2_header(buf, 1, 0x11, addrs, 12);
	buf[12] = 0x11;
	assert_int_equal(proxy_parse(buf, len, &h), -1);
	assert_int_equal(proxy_parse(buf, 13, &h), -1);
	buf[12] = 0x22;
	assert_int_equal(proxy_parse(buf, 13, &h), -1);
	buf[12] = 0x21;
	buf[13] = 0x41;
	assert_int_equal(proxy_parse(buf, 14, &h), -1);
	buf[13] = 0x13;
	assert_int_equal(proxy_parse(buf, 14, &h), -1);
	/* A length too short for the family's addresses. */
	len = v2_header(buf, 1, 0x11, addrs, 11);
	assert_int_equal(proxy_parse(buf, len, &h), -1);
	len = v2_header(buf, 1, 0x21, addrs, 35);
	assert_int_equal(proxy_parse(buf, len, &h), -1);
	/* Longer than we accept. */
	len = v2_header(buf, 1, 0x11, addrs, PROXY_V2_PAYLOAD_MAX + 1);
	assert_int_equal(proxy_parse(buf, 16, &h), -1);
	len = v2_header(buf, 1, 0x11, addrs, PROXY_V2_PAYLOAD_MAX);
	assert_int_equal(proxy_parse(buf, len, &h), (ssize_t)len);
	/* A damaged signature. */
	len = v2_header(buf, 1, 0x11, addrs, 12);
	buf[6] = 'x';
	assert_int_equal(proxy_parse(buf, 7, &h), -1);
}

static void
nets(struct config_cidr *out, size_t n, ...)
{
	va_list	 ap;
	size_t	 i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		assert_int_equal(config_parse_cidr(va_arg(ap, const char *),
		    &out[i]), 0);
	va_end(ap);
}

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage	 ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, text,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static int
trusted(const struct config_cidr *list, size_t n, const char *text)
{
	struct sockaddr_storage	 ss = addr(text);

	return proxy_trusted(list, n, &ss);
}

static void
test_proxy_trusted_matches_networks(void **state)
{
	struct config_cidr	 list[4];

	(void)state;
	nets(list, 4, "10.0.0.0/8", "192.0.2.1", "fd00::/8", "172.16.0.0/12");
	assert_true(trusted(list, 4, "10.200.3.4"));
	assert_false(trusted(list, 4, "11.0.0.1"));
	assert_true(trusted(list, 4, "192.0.2.1"));
	assert_false(trusted(list, 4, "192.0.2.2"));
	assert_true(trusted(list, 4, "fd12::1"));
	assert_false(trusted(list, 4, "fe80::1"));
	assert_true(trusted(list, 4, "172.31.255.255"));
	assert_false(trusted(list, 4, "172.32.0.0"));
	/* An IPv4-mapped IPv6 peer is its IPv4 address. */
	assert_true(trusted(list, 4, "::ffff:10.0.0.1"));
	assert_false(trusted(list, 0, "10.0.0.1"));
}

static void
test_proxy_cidr_refuses_host_bits_and_bad_prefixes(void **state)
{
	struct config_cidr	 c;

	(void)state;
	assert_int_equal(config_parse_cidr("0.0.0.0/0", &c), 0);
	assert_int_equal(c.prefix, 0);
	assert_int_equal(config_parse_cidr("::1", &c), 0);
	assert_int_equal(c.prefix, 128);
	assert_int_equal(config_parse_cidr("10.1.2.3/8", &c), -1);
	assert_int_equal(config_parse_cidr("10.0.0.0/33", &c), -1);
	assert_int_equal(config_parse_cidr("10.0.0.0/", &c), -1);
	assert_int_equal(config_parse_cidr("fd00::/129", &c), -1);
	assert_int_equal(config_parse_cidr("nginx", &c), -1);
	assert_int_equal(config_parse_cidr("/8", &c), -1);
}

static const char *
client_of(const char *xff, const struct config_cidr *list, size_t n)
{
	static char		 text[PROXY_ADDR_TEXT];
	struct sockaddr_storage	 ss;

	memset(&ss, 0, sizeof(ss));
	if (!proxy_forwarded_client(xff, list, n, &ss))
		return "none";
	return proxy_addr_text(&ss, text, sizeof(text));
}

static void
test_proxy_forwarded_client_is_the_rightmost_untrusted_hop(void **state)
{
	struct config_cidr	 list[2];

	(void)state;
	nets(list, 2, "10.0.0.0/8", "2001:db8:1::/48");
	assert_string_equal(client_of("203.0.113.7", list, 2), "203.0.113.7");
	/* What the client wrote itself, left of its address, is ignored. */
	assert_string_equal(client_of("1.1.1.1, 203.0.113.7, 10.0.0.2",
	    list, 2), "203.0.113.7");
	assert_string_equal(client_of("1.1.1.1,203.0.113.7,10.0.0.2,"
	    "2001:db8:1::5", list, 2), "203.0.113.7");
	/* All trusted: the left-most. */
	assert_string_equal(client_of("10.0.0.9, 10.0.0.2", list, 2),
	    "10.0.0.9");
	/* Forms with ports and brackets, empty elements, white space. */
	assert_string_equal(client_of("203.0.113.7:4711", list, 2),
	    "203.0.113.7");
	assert_string_equal(client_of(" [2001:db8:2::1]:443 ,,\t", list, 2),
	    "2001:db8:2::1");
	assert_string_equal(client_of("[2001:db8:2::1]", list, 2),
	    "2001:db8:2::1");
	assert_string_equal(client_of("::ffff:198.51.100.1", list, 2),
	    "198.51.100.1");
	assert_string_equal(client_of("", list, 2), "none");
	assert_string_equal(client_of(" , ", list, 2), "none");
}

static void
test_proxy_forwarded_client_stops_at_garbage(void **state)
{
	struct config_cidr	 list[1];

	(void)state;
	nets(list, 1, "10.0.0.0/8");
	assert_string_equal(client_of("unknown", list, 1), "none");
	/* Garbage left of an untrusted hop is never reached. */
	assert_string_equal(client_of("bogus, 203.0.113.7", list, 1),
	    "203.0.113.7");
	/* Garbage right of a trusted hop: that hop is as far as we go. */
	assert_string_equal(client_of("203.0.113.7, bogus, 10.0.0.3", list,
	    1), "10.0.0.3");
	assert_string_equal(client_of("1.2.3.4:99999", list, 1), "none");
	assert_string_equal(client_of("[::1", list, 1), "none");
	assert_string_equal(client_of("[::1]x", list, 1), "none");
	assert_string_equal(client_of("1.2.3.4 5.6.7.8", list, 1), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_v1_tcp4_names_the_client),
		cmocka_unit_test(test_proxy_v1_tcp6_names_the_client),
		cmocka_unit_test(test_proxy_v1_mapped_ipv6_is_ipv4),
		cmocka_unit_test(
		    test_proxy_v1_unknown_keeps_the_connection_address),
		cmocka_unit_test(test_proxy_v1_every_prefix_asks_for_more),
		cmocka_unit_test(test_proxy_v1_rejects_malformed_lines),
		cmocka_unit_test(test_proxy_v1_longer_than_107_bytes_is_refused),
		cmocka_unit_test(test_proxy_v2_ipv4_names_the_client),
		cmocka_unit_test(test_proxy_v2_ipv6_with_tlvs_names_the_client),
		cmocka_unit_test(
		    test_proxy_v2_local_keeps_the_connection_address),
		cmocka_unit_test(test_proxy_v2_every_prefix_asks_for_more),
		cmocka_unit_test(test_proxy_v2_rejects_malformed_headers),
		cmocka_unit_test(test_proxy_trusted_matches_networks),
		cmocka_unit_test(
		    test_proxy_cidr_refuses_host_bits_and_bad_prefixes),
		cmocka_unit_test(
		    test_proxy_forwarded_client_is_the_rightmost_untrusted_hop),
		cmocka_unit_test(test_proxy_forwarded_client_stops_at_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
