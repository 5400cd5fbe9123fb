/*
 * ringcastd: command line, configuration and hand-off to the master.
 * Everything that runs for longer than start-up lives in master.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringcast/config.h"
#include "ringcast/log.h"
#include "ringcast/master.h"

/* A copy of argv for a binary upgrade: setproctitle overwrites the
 * original.  Freed on every way out of main. */
static char	**ringcastd_args;

static void
args_free(void)
{
	size_t	 i;

	if (ringcastd_args == NULL)
		return;
	for (i = 0; ringcastd_args[i] != NULL; i++)
		free(ringcastd_args[i]);
	free(ringcastd_args);
	ringcastd_args = NULL;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: ringcastd [-dnvV] [-f file]\n");
	args_free();
	exit(1);
}

int
main(int argc, char *argv[], char *envp[])
{
	struct config	 conf;
	const char	*file = CONFIG_DEFAULT_FILE;
	char		 err[8192];
	int		 ch, debug = 0, test_only = 0, verbose = 0, rc, i;

	if ((ringcastd_args = calloc((size_t)argc + 1, sizeof(char *))) ==
	    NULL)
		return 1;
	for (i = 0; i < argc; i++)
		if ((ringcastd_args[i] = strdup(argv[i])) == NULL) {
			args_free();
			return 1;
		}
	setproctitle_init(argc, argv, envp);
	while ((ch = getopt(argc, argv, "df:nvV")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			test_only = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("ringcastd %s\n", PACKAGE_VERSION);
			args_free();
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	if (config_load(&conf, file, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		if (test_only)
			fprintf(stderr, "configuration test failed\n");
		args_free();
		return 1;
	}
	if (test_only) {
		config_free(&conf);
		printf("configuration OK\n");
		args_free();
		return 0;
	}
	if (verbose)
		conf.log_level = LOG_LEVEL_DEBUG;
	if (log_init(debug ? "stderr" : conf.log_target, conf.log_level) == -1) {
		fprintf(stderr, "ringcastd: log %s: %s\n", conf.log_target,
		    strerror(errno));
		config_free(&conf);
		args_free();
		return 1;
	}
	log_procname("master");
	master_set_argv(ringcastd_args);
	rc = master_run(&conf, file, debug);
	config_free(&conf);
	args_free();
	return rc;
}
