/*
 * admin: what the admin listener serves besides /healthz: the Prometheus
 * text of /metrics (the shared counters, plus the topics with the most
 * streams), and GET /topics/{topic}: its subscribers over every worker, its
 * newest retained id and how many of its events the ring retains.
 */
#ifndef RINGCAST_ADMIN_H
#define RINGCAST_ADMIN_H

struct conn;
struct serve;

#define ADMIN_BUSIEST_TOPICS	10

/* GET /metrics: answer 200 with the exposition, or 503. */
void	admin_metrics(struct serve *s, struct conn *c);
/* GET /topics/{name}: answer 200 with a JSON object, or 400/404/503. */
void	admin_topic(struct serve *s, struct conn *c, const char *name);

#endif
