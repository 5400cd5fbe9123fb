/*
 * fuzz_proxy: the PROXY header parser and the X-Forwarded-For walk.  The
 * parser must never claim more bytes than it was given or than
 * PROXY_HEADER_MAX, must say "more" only for a true prefix (with every
 * shorter prefix also "more" or refused, never accepted), and must agree
 * with itself when the same header is followed by other bytes.  The walk
 * over the input as an X-Forwarded-For value must name an address of a
 * family it knows, or leave the client alone.
 */
#include <netinet/in.h>
#include <string.h>

#include "ringcast/config.h"
#include "ringcast/proxy.h"
#include "fuzz.h"

static struct config_cidr	 nets[3];
static int			 nets_ready;

static void
fuzz_nets(void)
{
	if (nets_ready)
		return;
	FUZZ_CHECK(config_parse_cidr("10.0.0.0/8", &nets[0]) == 0);
	FUZZ_CHECK(config_parse_cidr("127.0.0.1", &nets[1]) == 0);
	FUZZ_CHECK(config_parse_cidr("fd00::/8", &nets[2]) == 0);
	nets_ready = 1;
}

static void
check_header(const struct proxy_header *h)
{
	char	 text[PROXY_ADDR_TEXT];

	FUZZ_CHECK(h->version == 1 || h->version == 2);
	if (h->local)
		return;
	FUZZ_CHECK(h->src.ss_family == AF_INET ||
	    h->src.ss_family == AF_INET6);
	FUZZ_CHECK(h->dst.ss_family == AF_INET ||
	    h->dst.ss_family == AF_INET6);
	FUZZ_CHECK(strcmp(proxy_addr_text(&h->src, text, sizeof(text)),
	    "?") != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header	 h, h2;
	struct sockaddr_storage	 client;
	ssize_t			 n, m;
	char			*copy, *xff;
	size_t			 i;

	fuzz_nets();
	/* An exact-size copy, so ASan sees any read past the end. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	n = proxy_parse(copy, size, &h);
	FUZZ_CHECK(n >= -1 && n <= (ssize_t)size && n <= PROXY_HEADER_MAX);
	if (n > 0) {
		check_header(&h);
		/* The header alone parses the same. */
		m = proxy_parse(copy, (size_t)n, &h2);
		FUZZ_CHECK(m == n);
		FUZZ_CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
		/* No shorter prefix is a whole header. */
		for (i = 0; i < (size_t)n; i++)
			FUZZ_CHECK(proxy_parse(copy, i, &h2) <= 0);
	} else if (n == 0) {
		FUZZ_CHECK(size < PROXY_HEADER_MAX);
		for (i = 0; i < size; i++)
			FUZZ_CHECK(proxy_parse(copy, i, &h2) == 0);
	}
	free(copy);

	/* The same bytes as an X-Forwarded-For value (up to a NUL). */
	if ((xff = malloc(size + 1)) == NULL)
		return 0;
	memcpy(xff, data, size);
	xff[size] = '\0';
	memset(&client, 0, sizeof(client));
	if (proxy_forwarded_client(xff, nets, 3, &client)) {
		FUZZ_CHECK(client.ss_family == AF_INET ||
		    client.ss_family == AF_INET6);
		(void)proxy_trusted(nets, 3, &client);
	} else
		FUZZ_CHECK(client.ss_family == 0);
	free(xff);
	return 0;
}
