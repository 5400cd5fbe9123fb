/*
 * fuzz_config: any bytes as a config file.  config_load must not crash, must
 * leave a NUL-terminated message inside the buffer it was given (large or
 * tiny), must name the file on every line of it, and on success must hand
 * back a config whose cross-key rules hold.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ringcast/config.h"
#include "fuzz.h"

#define CANARY	0xa5

static void
check_err(const char *path, const char *err, size_t errlen, int rc)
{
	const char	*line, *nl;
	size_t		 n = strnlen(err, errlen), pathlen = strlen(path);

	FUZZ_CHECK(n < errlen);
	FUZZ_CHECK((unsigned char)err[errlen] == CANARY);
	if (rc == 0) {
		FUZZ_CHECK(n == 0);
		return;
	}
	if (errlen <= pathlen + 1)
		return;
	/* Each complete line starts with the file's name (the last one may
	 * be cut short by the buffer). */
	for (line = err; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		FUZZ_CHECK(strncmp(line, path, pathlen) == 0);
	FUZZ_CHECK(strncmp(line, path, n - (size_t)(line - err) < pathlen ?
	    n - (size_t)(line - err) : pathlen) == 0);
	FUZZ_CHECK(n > 0);
}

static void
check_config(const struct config *c)
{
	FUZZ_CHECK(c->nlisten >= 1 && c->nlisten <= CONFIG_LISTEN_MAX);
	FUZZ_CHECK(c->nadmin_listen <= CONFIG_LISTEN_MAX);
	FUZZ_CHECK(c->norigins <= CONFIG_ORIGINS_MAX);
	FUZZ_CHECK(c->ring_path[0] != '\0' && c->catalog_path[0] != '\0');
	FUZZ_CHECK(c->log_target[0] != '\0');
	FUZZ_CHECK(c->ring_size >= 64 * 1024);
	FUZZ_CHECK(c->ring_slots >= 16 && c->ring_slots <= (1U << 28));
	FUZZ_CHECK((uint64_t)c->max_event_bytes + 256 <= c->ring_size / 4);
	FUZZ_CHECK(c->max_header_bytes >= 1024);
	FUZZ_CHECK(c->retry_ms >= 100);
	FUZZ_CHECK(strnlen(c->user, sizeof(c->user)) < sizeof(c->user));
	FUZZ_CHECK(strnlen(c->pidfile, sizeof(c->pidfile)) <
	    sizeof(c->pidfile));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 errlens[] = { 4096, 200, 40, 1 };
	static char		 path[512];
	struct config		 conf;
	char			 err[4097];
	size_t			 i;
	int			 fd, rc;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s/ringcast.conf", fuzz_tmpdir());
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	for (i = 0; i < sizeof(errlens) / sizeof(errlens[0]); i++) {
		memset(err, CANARY, sizeof(err));
		memset(&conf, 0, sizeof(conf));
		rc = config_load(&conf, path, err, errlens[i]);
		FUZZ_CHECK(rc == 0 || rc == -1);
		check_err(path, err, errlens[i], rc);
		if (rc == 0)
			check_config(&conf);
		config_free(&conf);
		/* One thorough pass is enough for a valid file. */
		if (rc == 0)
			break;
	}
	return 0;
}
