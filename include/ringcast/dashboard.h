/*
 * dashboard: the operator's page on the admin listener (GET /), built into
 * the binary, and the chart library it loads (GET /static/chart.js), read
 * from Debian's libjs-chart.js at its installed path on each request, so a
 * package upgrade needs no rebuild.  The page draws what GET /stats/events
 * (stats.c) sends once a second and what GET /topics answers.
 */
#ifndef RINGCAST_DASHBOARD_H
#define RINGCAST_DASHBOARD_H

struct conn;
struct serve;

#define DASHBOARD_CHARTJS_PATH	"/static/chart.js"
/* Bigger than any Chart.js build (3.9's chart.min.js is 195 KiB). */
#define DASHBOARD_CHARTJS_MAX	(4 * 1024 * 1024)

/* GET /: answer 200 with the page. */
void	dashboard_page(struct serve *s, struct conn *c);
/* GET /static/chart.js: answer 200 with RC_CHARTJS's contents, or 404 when
 * it cannot be read (the page then shows numbers without charts).  Reads
 * the file in the event loop: it is in the page cache after the first. */
void	dashboard_chartjs(struct serve *s, struct conn *c);

#endif
