/*
 * batch-bench: events per second through batch_parse for bodies of 10,000
 * NDJSON lines of 128-byte data, the size of a batch publish, and the ids
 * answer for them.  A measurement, not a test: nothing here fails on a
 * slow machine.
 */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/batch.h"
#include "ringcast/http.h"

#define BENCH_LINES	10000
#define BENCH_DATA	128
#define BENCH_ROUNDS	20

/* CPU time of the process: the box is shared, and wall time would measure
 * the neighbours as much as the parser. */
static double
bench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(void)
{
	struct batch	 b;
	struct buf	 out = { 0 };
	char		*body, data[BENCH_DATA + 1], errbuf[256];
	size_t		 len = 0, cap, i;
	double		 start, parse, ids;
	int		 round;

	memset(data, 'x', BENCH_DATA);
	data[BENCH_DATA] = '\0';
	cap = (size_t)BENCH_LINES * (BENCH_DATA + 64);
	if ((body = malloc(cap)) == NULL)
		err(1, "malloc");
	for (i = 0; i < BENCH_LINES; i++)
		len += (size_t)snprintf(body + len, cap - len,
		    "{\"topic\":\"room/%zu\",\"event\":\"msg\",\"data\":\"%s\"}\n",
		    i % 1000, data);

	start = bench_now();
	for (round = 0; round < BENCH_ROUNDS; round++) {
		if (batch_parse(&b, body, len, BENCH_LINES, 65536, errbuf,
		    sizeof(errbuf)) == -1)
			errx(1, "batch_parse: %s", errbuf);
		batch_free(&b);
	}
	parse = bench_now() - start;

	start = bench_now();
	for (round = 0; round < BENCH_ROUNDS; round++) {
		out.len = 0;
		if (batch_ids_json(&out, 1000000, BENCH_LINES) == -1)
			errx(1, "batch_ids_json");
	}
	ids = bench_now() - start;

	printf("batch_parse: %d lines of %d-byte data (%zu bytes): "
	    "%.0f events/s, %.0f ns/event of CPU\n", BENCH_LINES, BENCH_DATA, len,
	    BENCH_ROUNDS * BENCH_LINES / parse,
	    parse * 1e9 / (BENCH_ROUNDS * BENCH_LINES));
	printf("batch_ids_json: %.0f ids/s of CPU\n", BENCH_ROUNDS * BENCH_LINES / ids);
	buf_free(&out);
	free(body);
	return 0;
}
