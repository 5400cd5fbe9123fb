/*
 * sse: encoding of events as Server-Sent Events wire bytes (DESIGN §4).
 * A frame is "event: T\n" (optional), one "data: L\n" per line of the data
 * (CR, LF and CRLF all end a line), then "id: N\n\n" last.  The ring stores the
 * body (everything before "id:") encoded once; ring_append adds the id.
 * Data "x\n" is two lines, "x" and "" (so EventSource gives back "x\n"); empty
 * data is one empty "data: " line.  "data: " keeps its space, so leading
 * spaces of a line survive.  NUL bytes are passed through verbatim: SSE
 * cannot carry them reliably, and the encoder never fails on them.
 */
#ifndef RINGCAST_SSE_H
#define RINGCAST_SSE_H

#include <stddef.h>
#include <stdint.h>

#define SSE_EVENT_TYPE_MAX	64	/* bytes in a Ringcast-Event type */
#define SSE_ID_MAX		32	/* "id: " + 20 digits + "\n\n" fits */

/* Exact size of the encoded body of data[len] with an event type of typelen
 * bytes (0: none); data may be NULL when len is 0.  Never fails; the caller
 * checks it against its limits. */
size_t	sse_body_size(size_t typelen, const void *data, size_t len);
/* Encode the body into buf[cap]; returns the bytes written, or 0 if cap is
 * smaller than sse_body_size() (nothing useful is written then). */
size_t	sse_encode_body(char *buf, size_t cap, const char *type,
	    size_t typelen, const void *data, size_t len);
/* Append "id: seq\n\n" to buf[cap]; returns bytes written (0 if it does not
 * fit). */
size_t	sse_encode_id(char *buf, size_t cap, uint64_t seq);
/* Is type[len] a valid event type: 1..SSE_EVENT_TYPE_MAX bytes, no CR, LF or
 * NUL?  Returns 1 or 0. */
int	sse_event_type_valid(const char *type, size_t len);
/* Parse a Last-Event-ID: 1 to 20 decimal digits, no sign, no space, at most
 * UINT64_MAX.  Returns 0 and sets *seq, or -1 for anything else. */
int	sse_parse_event_id(const char *text, size_t len, uint64_t *seq);

#endif
