/*
 * batch: the body of a batch publish (POST /publish, Content-Type:
 * application/x-ndjson), one JSON object per line:
 *	{"topic": "news", "data": "text", "event": "type"}
 * "event" is optional; no other key is allowed.  Every line is validated
 * before any event is accepted: a batch is all or nothing.  Parsing is on
 * jansson; no socket or ring is touched here, so the whole path is fuzzed.
 */
#ifndef RINGCAST_BATCH_H
#define RINGCAST_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* One event; the strings are NUL-terminated and owned by the batch. */
struct batch_event {
	const char	*topic;		/* a valid topic name */
	size_t		 topiclen;
	const char	*type;		/* NULL and 0: no event type */
	size_t		 typelen;
	const char	*data;		/* UTF-8, no NUL inside */
	size_t		 datalen;	/* at most max_event_bytes */
	size_t		 line;		/* 1-based line of the body */
};

/* The events of one body in line order; events points to one allocation
 * that holds the array and every string. */
struct batch {
	struct batch_event	*events;
	size_t			 n;
};

/*
 * Parse and validate body[len]: 0 with 1..max_events events in b, or -1
 * with "line N: what is wrong" (1-based; a blank line counts) in err and b
 * left empty.  Lines end in LF or CRLF; blank lines (spaces and tabs only)
 * are skipped.  Cost: O(len), one allocation of ours plus jansson's per
 * line.  The caller frees a parsed batch with batch_free.
 */
int	batch_parse(struct batch *b, const char *body, size_t len,
	    size_t max_events, size_t max_event_bytes, char *err,
	    size_t errlen);
/* Free what b holds and empty it; an empty b is fine. */
void	batch_free(struct batch *b);
/* Append {"ids":["first_seq",...]}\n with n consecutive ids (as strings,
 * like the single publish's {"id":"1042"}) to out.  0, or -1 on allocation
 * failure with out as it was. */
int	batch_ids_json(struct buf *out, uint64_t first_seq, size_t n);

#endif
