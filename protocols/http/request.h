/* What a request asks for, decided from its path and X-Gearman-* headers
 * alone: no connection and no engine here (tests/fuzz/fuzz_http.c drives
 * these directly).  Prefix hr_. */
#ifndef COG_HTTP_REQUEST_H
#define COG_HTTP_REQUEST_H

#include <cogd/plugin.h>

struct evkeyvalq;

/* Read-only endpoints served to GET and HEAD. */
typedef enum hr_view {
  HR_NONE = -1,       /* not a view: the path names a function */
  HR_STATUS = 0,
  HR_WORKERS,
  HR_JOB,             /* jobs/HANDLE */
  HR_METRICS,
  HR_HEALTHZ
} hr_view_t;

/* The request path (without the query) with its leading slashes dropped,
 * percent-decoded into a malloc'd string; NULL when it does not decode
 * (or decodes to a NUL byte). */
char *hr_path(const char *raw);

/* The view a GET or HEAD of path asks for; for HR_JOB, *arg is the handle
 * (pointing into path). */
hr_view_t hr_route(const char *path, const char **arg);

/* A job request for function with these X-Gearman-* header values (each
 * NULL when absent): fills s (function, unique, priority, background; the
 * caller adds the data) and *timeout (seconds, 0 for none).  Returns NULL,
 * or the text of the 400 answer. */
const char *hr_job(const char *function, const char *unique, const char *background,
                   const char *priority, const char *timeout, double max_timeout,
                   cog_submit_t *s, double *timeout_out);

/* How the body of a request with these headers is framed, checked before
 * anything is done with it (RFC 9112, section 6): more than one
 * Content-Length (even with equal values), Content-Length together with
 * Transfer-Encoding, or a Transfer-Encoding other than a single "chunked"
 * could be read differently by a proxy in front (request smuggling).
 * NULL when it is unambiguous, or the text of the 400 answer. */
const char *hr_framing(const struct evkeyvalq *headers);

#endif
