/*
 * route: one complete request to its handler, as in the table of DESIGN §4:
 * streams (stream.c), publishes (publish.c), the CORS preflight, /healthz,
 * the demo page, and on the admin listener what admin.c serves.
 * Topic names, tokens and resume points are read and checked here, once per
 * request, so the handlers below get catalog ids they may trust.
 */
#ifndef RINGCAST_ROUTE_H
#define RINGCAST_ROUTE_H

struct conn;
struct serve;

/* Answer the request that c->io->reader holds (serve->on_request). */
void	route_request(struct serve *s, struct conn *c);

#endif
