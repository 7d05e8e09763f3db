/* Read-only views of the engine for the HTTP plugin: JSON documents and
 * the Prometheus text exposition. */
#ifndef COG_HTTP_VIEWS_H
#define COG_HTTP_VIEWS_H

#include <cogd/plugin.h>

struct evbuffer;

void hv_status_json(const cog_host_t *h, struct evbuffer *b);
void hv_workers_json(const cog_host_t *h, struct evbuffer *b);
/* 0 when the job is known, -1 otherwise (the document says known:false). */
int hv_job_json(const cog_host_t *h, struct evbuffer *b, const char *handle);
void hv_metrics(const cog_host_t *h, struct evbuffer *b);
/* JSON string literal of n bytes (escaped, quoted). */
void hv_json_str(struct evbuffer *b, const char *s, size_t n);

#endif
