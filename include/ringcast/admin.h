/*
 * admin: what the admin listener serves besides /healthz: the Prometheus
 * text of /metrics (the shared counters, plus the topics with the most
 * streams), GET /topics/{topic} (its subscribers over every worker, its
 * newest retained id, how many of its events the ring retains), GET /topics
 * (the same for every topic), and the dashboard (dashboard.c, stats.c).
 * With [server] admin_token set, everything but /metrics, /healthz and the
 * dashboard's static chart library needs the token.
 */
#ifndef RINGCAST_ADMIN_H
#define RINGCAST_ADMIN_H

struct conn;
struct serve;

#define ADMIN_BUSIEST_TOPICS	10

/* Answer a request on the admin listener other than /healthz and OPTIONS:
 * path is the decoded path, query the raw query (or NULL). */
void	admin_request(struct serve *s, struct conn *c, const char *path,
	    const char *query);
/* Does the request carry [server] admin_token (Authorization: Bearer, or
 * the token query parameter)?  1 (also when none is configured), or 0
 * after answering 401. */
int	admin_authorized(struct serve *s, struct conn *c, const char *query);
/* GET /metrics: answer 200 with the exposition, or 503. */
void	admin_metrics(struct serve *s, struct conn *c);
/* GET /topics/{name}: answer 200 with a JSON object, or 400/404/503. */
void	admin_topic(struct serve *s, struct conn *c, const char *name);
/* GET /topics: every catalog topic with its subscribers, newest id and
 * retained count, in name order, as JSON; 503 when the catalog cannot be
 * read.  O(topics x workers + retained events x log topics). */
void	admin_topics(struct serve *s, struct conn *c);

#endif
