/*
 * log: formatting and delivery of log lines.  A line is built in one stack
 * buffer and written with a single write(2) so lines from several processes
 * sharing a file or stderr never interleave mid-line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/log.h"

#define LOG_LINE_MAX	2048

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_FILE,
};

static enum log_target	 log_target = LOG_TARGET_STDERR;
static enum log_level	 log_level = LOG_LEVEL_INFO;
static int		 log_fd = STDERR_FILENO;
static char		 log_path[1024];
static char		 log_name[64] = "ringcastd";

int
log_init(const char *target, enum log_level level)
{
	int	 fd;

	log_level = level;
	if (log_target == LOG_TARGET_FILE && log_fd != STDERR_FILENO) {
		close(log_fd);
		log_fd = STDERR_FILENO;
	}
	if (target == NULL || strcmp(target, "stderr") == 0) {
		log_target = LOG_TARGET_STDERR;
		log_fd = STDERR_FILENO;
		return 0;
	}
	if (strcmp(target, "syslog") == 0) {
		log_target = LOG_TARGET_SYSLOG;
		openlog("ringcastd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		return 0;
	}
	if (strlcpy(log_path, target, sizeof(log_path)) >= sizeof(log_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	log_target = LOG_TARGET_FILE;
	log_fd = fd;
	return 0;
}

void
log_procname(const char *name)
{
	strlcpy(log_name, name, sizeof(log_name));
}

enum log_level
log_setlevel(enum log_level level)
{
	enum log_level	 old = log_level;

	log_level = level;
	return old;
}

int
log_reopen(void)
{
	int	 fd;

	if (log_target != LOG_TARGET_FILE)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	/* dup2 keeps the descriptor number, so no line is ever lost. */
	if (dup2(fd, log_fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
log_level_parse(const char *word, enum log_level *level)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(word, names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_vemit(enum log_level level, int with_errno, int saved_errno,
    const char *fmt, va_list ap)
{
	static const int	 prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
				    LOG_DEBUG };
	char			 line[LOG_LINE_MAX];
	size_t			 len = 0, cap = sizeof(line) - 1;
	int			 n;
	struct timespec		 ts;
	struct tm		 tm;

	if (level > log_level)
		return;
	if (log_target != LOG_TARGET_SYSLOG) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		len = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + len, cap - len, ".%03ldZ ringcastd[%ld]: ",
		    ts.tv_nsec / 1000000, (long)getpid());
		len += (n > 0 && (size_t)n < cap - len) ? (size_t)n : 0;
	}
	n = snprintf(line + len, cap - len, "%s: ", log_name);
	len += (n > 0 && (size_t)n < cap - len) ? (size_t)n : 0;
	n = vsnprintf(line + len, cap - len, fmt, ap);
	len += (n > 0) ? ((size_t)n < cap - len ? (size_t)n : cap - len - 1) : 0;
	if (with_errno) {
		n = snprintf(line + len, cap - len, ": %s",
		    strerror(saved_errno));
		len += (n > 0) ? ((size_t)n < cap - len ? (size_t)n :
		    cap - len - 1) : 0;
	}
	if (log_target == LOG_TARGET_SYSLOG) {
		line[len] = '\0';
		syslog(prio[level], "%s", line);
		return;
	}
	line[len++] = '\n';
	/* A log line that cannot be written has nowhere else to go. */
	(void)!write(log_fd, line, len);
}

#define LOG_FN(name, level, with_errno)					\
void									\
name(const char *fmt, ...)						\
{									\
	int	 saved_errno = errno;					\
	va_list	 ap;							\
									\
	va_start(ap, fmt);						\
	log_vemit(level, with_errno, saved_errno, fmt, ap);		\
	va_end(ap);							\
	errno = saved_errno;						\
}

LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int	 saved_errno = errno;
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, 1, saved_errno, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, 0, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
