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

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: ringcastd [-dnvV] [-f file]\n");
	exit(1);
}

int
main(int argc, char *argv[], char *envp[])
{
	struct config	 conf;
	const char	*file = CONFIG_DEFAULT_FILE;
	char		 err[8192];
	char		**args;
	int		 ch, debug = 0, test_only = 0, verbose = 0, rc, i;

	/* A copy for a binary upgrade: setproctitle overwrites the
	 * original. */
	if ((args = calloc((size_t)argc + 1, sizeof(*args))) == NULL)
		return 1;
	for (i = 0; i < argc; i++)
		if ((args[i] = strdup(argv[i])) == NULL)
			return 1;
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
		return 1;
	}
	if (test_only) {
		config_free(&conf);
		printf("configuration OK\n");
		return 0;
	}
	if (verbose)
		conf.log_level = LOG_LEVEL_DEBUG;
	if (log_init(debug ? "stderr" : conf.log_target, conf.log_level) == -1) {
		fprintf(stderr, "ringcastd: log %s: %s\n", conf.log_target,
		    strerror(errno));
		return 1;
	}
	log_procname("master");
	master_set_argv(args);
	rc = master_run(&conf, file, debug);
	config_free(&conf);
	for (i = 0; i < argc; i++)
		free(args[i]);
	free(args);
	return rc;
}
