/* The HTTP plugin's own record of each connection evhttp serves: the
 * total deadline of the request being read (--http-request-timeout, from
 * its first byte; evhttp's own timeout restarts on every byte), and which
 * job request waits on the connection.  Prefix hc_. */
#ifndef COG_HTTP_CONN_H
#define COG_HTTP_CONN_H

#include <stdint.h>

struct bufferevent;
struct event_base;
struct evhttp_connection;
struct evhttp_request;

typedef struct hc_set hc_set_t;
typedef struct hconn hconn_t;

/* lost(job) is called when a connection holding a job request (hc_set_job)
 * goes away, before evhttp frees it.  from_accept: the deadline starts when
 * the connection is accepted (TLS: it covers the handshake, whose bytes the
 * plugin never sees) instead of at the request's first byte.  NULL on
 * ENOMEM. */
hc_set_t *hc_set_new(struct event_base *base, uint64_t deadline_ms, int from_accept,
                     void (*lost)(void *job));
/* After evhttp_free(): forgets connections evhttp never fully set up. */
void hc_set_free(hc_set_t *s);

/* Follow the connection evhttp is creating around bev (from evhttp's
 * bevcb, bev just created).  COG_OK, or COG_ENOMEM (bev is not followed;
 * hc_request() then returns NULL for it). */
int hc_track(hc_set_t *s, struct bufferevent *bev);

/* evhttp has read all of req (head and body): the deadline stops until the
 * reply is sent.  The connection's record, or NULL when it is not
 * followed (the caller refuses the request). */
hconn_t *hc_request(hc_set_t *s, struct evhttp_request *req);

/* The job request waiting on the connection (NULL: none any more). */
void hc_set_job(hconn_t *c, void *job);

/* Connections cut at their deadline since start. */
uint64_t hc_cut_count(const hc_set_t *s);

#endif
