/*
 * dashboard: see dashboard.h.  The page is src/dashboard.html, turned into
 * the C string dashboard_html at build time (Makefile.am), so it is edited
 * as HTML and served from memory.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringcast/conn.h"
#include "ringcast/dashboard.h"
#include "ringcast/log.h"
#include "ringcast/serve.h"

#include "dashboard_html.h"

void
dashboard_page(struct serve *s, struct conn *c)
{
	conn_respond(s, c, 200, "Cache-Control: no-store\r\n",
	    "text/html; charset=utf-8", dashboard_html,
	    sizeof(dashboard_html) - 1);
}

/* Read the whole regular file at path into a malloc'd *data; 0 or -1. */
static int
dashboard_read(const char *path, char **data, size_t *len)
{
	struct stat	 sb;
	ssize_t		 n;
	size_t		 got = 0;
	int		 fd;

	*data = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > DASHBOARD_CHARTJS_MAX ||
	    (*data = malloc((size_t)sb.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)sb.st_size) {
		n = read(fd, *data + got, (size_t)sb.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)sb.st_size) {
		free(*data);
		*data = NULL;
		return -1;
	}
	*len = got;
	return 0;
}

void
dashboard_chartjs(struct serve *s, struct conn *c)
{
	char	*data;
	size_t	 len;

	if (dashboard_read(RC_CHARTJS, &data, &len) == -1) {
		log_debug("%s: %s", RC_CHARTJS, strerror(errno));
		conn_error(s, c, 404, NULL, "%s is not installed "
		    "(Debian: libjs-chart.js)", RC_CHARTJS);
		return;
	}
	conn_respond(s, c, 200, "Cache-Control: max-age=3600\r\n",
	    "text/javascript; charset=utf-8", data, len);
	free(data);
}
