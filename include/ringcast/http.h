/*
 * http: the request side of HTTP/1.x for one connection, on http-parser.
 * Bytes go in with http_reader_feed(); out come complete requests with just
 * the fields ringcast uses, copied into bounded buffers, or a protocol error
 * as the status to answer (400, 413, 431).  No socket is touched here, so the
 * whole path can be fuzzed.  Also: response heads, URL and query decoding.
 */
#ifndef RINGCAST_HTTP_H
#define RINGCAST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

/* A JWT with a few claims is 300 to 1500 bytes; RFC 6265 asks user agents
 * for 4096 bytes per cookie. */
#define HTTP_AUTH_MAX		4096
#define HTTP_COOKIE_MAX		4096
#define HTTP_ORIGIN_MAX		256
#define HTTP_EVENT_ID_MAX	64
#define HTTP_EVENT_TYPE_MAX	64
#define HTTP_CONTENT_TYPE_MAX	64
#define HTTP_FORWARDED_MAX	512

/* A growable output buffer with a write offset; owned by whoever holds it. */
struct buf {
	char	*data;
	size_t	 len;		/* bytes held */
	size_t	 off;		/* bytes already written out */
	size_t	 cap;
};

enum http_header_seen {
	HTTP_SEEN_LAST_EVENT_ID = 0x01,
	HTTP_SEEN_AUTH = 0x02,
	HTTP_SEEN_EVENT_TYPE = 0x04,
	HTTP_SEEN_ORIGIN = 0x08,
	HTTP_SEEN_ACR_METHOD = 0x10,
	HTTP_SEEN_HOST = 0x20,
	HTTP_SEEN_CONTENT_TYPE = 0x40,
	HTTP_SEEN_FORWARDED_FOR = 0x100,	/* may repeat: joined with ", " */
	HTTP_SEEN_COOKIE = 0x80,	/* repeats are joined with "; " */
};

struct http_request {
	unsigned int	 method;	/* enum http_method */
	unsigned short	 major, minor;
	int		 keep_alive;
	unsigned int	 seen;		/* enum http_header_seen bits */
	unsigned int	 overlong;	/* the same bits: value was too long */
	char		*url;		/* NUL-terminated, owned */
	size_t		 urllen;
	char		 last_event_id[HTTP_EVENT_ID_MAX + 1];
	char		*auth;		/* HTTP_AUTH_MAX + 1, owned; NULL
					 * until seen, as cookie: most
					 * requests have neither */
	char		 event_type[HTTP_EVENT_TYPE_MAX + 1];
	char		 origin[HTTP_ORIGIN_MAX + 1];
	char		 content_type[HTTP_CONTENT_TYPE_MAX + 1];
	/* X-Forwarded-For: its right-most whole hops (overlong: some of the
	 * left-most were dropped), the ones nearest to us that matter. */
	char		 forwarded_for[HTTP_FORWARDED_MAX + 1];
	char		*cookie;	/* HTTP_COOKIE_MAX + 1, owned */
	char		*body;		/* owned; bodylen bytes */
	size_t		 bodylen;
};

enum http_reader_state {
	HTTP_READING = 0,	/* feed more bytes */
	HTTP_REQUEST_READY,	/* reader->req is complete */
	HTTP_ERROR,		/* answer reader->error_status, then close */
};

struct http_reader {
	http_parser		 parser;
	enum http_reader_state	 state;
	struct http_request	 req;
	int			 error_status;
	const char		*error_reason;
	uint32_t		 max_header_bytes;
	uint32_t		 max_body_bytes;
	uint32_t		 max_batch_bytes;	/* an ndjson body's cap */
	uint32_t		 body_limit;	/* this request's: one of the two */
	size_t			 header_bytes;
	int			 headers_done;
	int			 started;	/* a byte of this request seen */
	unsigned int		 content_lengths;
	int			 transfer_encoding;
	/* The header being read: its name, then which field it fills. */
	char			 field[40];
	size_t			 fieldlen;
	int			 field_in_value;
	unsigned int		 target;	/* enum http_header_seen bit */
	size_t			 targetlen;
	size_t			 bodycap;
	int			 forwarded_skip; /* dropping a cut hop */
	/* Chunked framing the parser takes on trust: see http.c. */
	int			 chunked;
	int			 last_chunk;
	int			 check_crlf;	/* a CRLF just ended: look */
	char			 tail[2];	/* the last two bytes fed */
};

/* Prepare a reader for a new connection with the configured limits; an
 * application/x-ndjson body (a batch publish) may be as large as
 * max_batch_bytes instead (http_reader_set_batch_limit; default: the
 * same as max_body_bytes). */
void	http_reader_init(struct http_reader *r, uint32_t max_header_bytes,
	    uint32_t max_body_bytes);
void	http_reader_set_batch_limit(struct http_reader *r,
	    uint32_t max_batch_bytes);
/* Is the request's Content-Type application/x-ndjson (parameters aside)? */
int	http_is_ndjson(const struct http_request *req);
/* Free what the reader owns (URL, body, Authorization, Cookie). */
void	http_reader_free(struct http_reader *r);
/* Feed len bytes; returns how many were consumed.  Stops after a complete
 * request (state HTTP_REQUEST_READY; the rest is for the next request) or
 * at an error (state HTTP_ERROR). */
size_t	http_reader_feed(struct http_reader *r, const char *data, size_t len);
/* The peer closed its side: an unfinished request becomes an error. */
void	http_reader_eof(struct http_reader *r);
/* After a request was handled: ready the reader for the next one. */
void	http_reader_next(struct http_reader *r);

/* The path of the request URL (NUL-terminated in *path, owned by the
 * caller) and its query (pointer into req->url, or NULL).  0, or -1 if the
 * URL is not an origin-form path or its percent-encoding is bad. */
int	http_url_split(const struct http_request *req, char **path,
	    const char **query);
/* Find the next value of key in a query string, percent-decoded into
 * out[cap]; *pos is the scan position (start at 0).  Returns the decoded
 * length, or -1 when there is no further one, or -2 if it is malformed or
 * longer than cap - 1. */
ssize_t	http_query_next(const char *query, const char *key, size_t *pos,
	    char *out, size_t cap);
/* Percent-decode src[len] into dst[cap]; returns the length or -1 (bad
 * escape, an encoded NUL, or too long).  '+' is kept as is. */
ssize_t	http_percent_decode(const char *src, size_t len, char *dst,
	    size_t cap);

/* The token of an "Authorization: Bearer ..." header, or NULL. */
const char *http_bearer(const struct http_request *req);
/* The value of the cookie called name (quotes removed) into out[cap];
 * its length, -1 when there is none, -2 when the Cookie header was too
 * long or the value does not fit. */
ssize_t	http_cookie(const struct http_request *req, const char *name,
	    char *out, size_t cap);

/* The reason phrase of status ("Not Found"). */
const char *http_status_text(int status);
/* The method's name, e.g. "GET". */
const char *http_method_name(unsigned int method);

/* Append to b, growing it; -1 on allocation failure (b is left valid). */
int	buf_append(struct buf *b, const void *data, size_t len);
int	buf_printf(struct buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Free the memory and zero the struct. */
void	buf_free(struct buf *b);

#endif
