/*
 * log: the one logging API of every ringcast process, after OpenBSD's.
 * Messages go to stderr, syslog or an append-only file; each line carries the
 * process name set with log_procname().  Nothing here allocates after init.
 */
#ifndef RINGCAST_LOG_H
#define RINGCAST_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Start logging to target ("stderr", "syslog" or a file path) at level;
 * returns 0, or -1 with errno set when the file cannot be opened. */
int	log_init(const char *target, enum log_level level);
/* Name this process in every line ("master", "worker 2"). */
void	log_procname(const char *name);
/* Change the level; returns the previous one. */
enum log_level log_setlevel(enum log_level level);
/* Reopen the log file (SIGUSR1, after rotation); 0 or -1 with errno set. */
int	log_reopen(void);
/* Parse "error", "warn", "info" or "debug"; 0, or -1 if unknown. */
int	log_level_parse(const char *word, enum log_level *level);

/* log_warn appends strerror(errno); the x variants do not. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
