/* JSON and Prometheus renderings of the engine's state, see views.h. */
#include "views.h"

#include "utf8.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const prio_names[COG_PRIO_COUNT] = { "high", "normal", "low" };

/* Names are bytes, JSON is UTF-8: a byte that is not part of well-formed
 * UTF-8 is written as \u00XX, so the document stays valid whatever a
 * client named its function. */
void hv_json_str(struct evbuffer *b, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  evbuffer_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = u[i];
    size_t k;
    if (c == '"' || c == '\\') {
      evbuffer_add_printf(b, "\\%c", c);
    } else if (c < 0x20 || c == 0x7f) {
      evbuffer_add_printf(b, "\\u%04x", c);
    } else if (c < 0x80) {
      evbuffer_add(b, &s[i], 1);
    } else if ((k = cog_utf8_seq(u + i, n - i)) != 0) {
      evbuffer_add(b, &s[i], k);
      i += k - 1;
    } else {
      evbuffer_add_printf(b, "\\u%04x", c);
    }
  }
  evbuffer_add(b, "\"", 1);
}

struct walk {
  struct evbuffer *b;
  int n;
  const cog_host_t *h;
};

static void status_fn(void *arg, const cog_function_info_t *f)
{
  struct walk *w = arg;
  evbuffer_add_printf(w->b, "%s\n    {\"name\": ", w->n++ ? "," : "");
  hv_json_str(w->b, f->name, f->name_len);
  evbuffer_add_printf(w->b,
      ", \"queued\": {\"high\": %u, \"normal\": %u, \"low\": %u}, \"pending\": %u, "
      "\"running\": %u, \"workers\": %u, \"sleeping\": %u, "
      "\"maxqueue\": {\"high\": %d, \"normal\": %d, \"low\": %d}, "
      "\"submitted\": %" PRIu64 ", \"completed\": %" PRIu64 ", \"failed\": %" PRIu64
      ", \"exceptions\": %" PRIu64 "}",
      f->queued[0], f->queued[1], f->queued[2], f->pending, f->running, f->workers, f->sleeping,
      f->maxqueue[0], f->maxqueue[1], f->maxqueue[2], f->submitted, f->completed, f->failed,
      f->exceptions);
}

void hv_status_json(const cog_host_t *h, struct evbuffer *b)
{
  const cog_stats_t *st = h->stats();
  evbuffer_add_printf(b, "{\n  \"server\": {\"version\": ");
  const char *v = h->version();
  hv_json_str(b, v, strlen(v));
  evbuffer_add_printf(b, ", \"started\": %" PRId64 ", \"connections\": %" PRIu64
                      ", \"jobs\": %" PRIu64 ", \"running\": %" PRIu64 "},\n  \"functions\": [",
                      st->started, st->peers, st->jobs, st->running);
  struct walk w = { b, 0, h };
  h->foreach_function(status_fn, &w);
  evbuffer_add_printf(b, "%s]\n}\n", w.n ? "\n  " : "");
}

static void worker_fn(void *arg, const cog_peer_view_t *p)
{
  struct walk *w = arg;
  evbuffer_add_printf(w->b, "%s\n    {\"fd\": %d, \"address\": ", w->n++ ? "," : "", p->fd);
  hv_json_str(w->b, p->address, strlen(p->address));
  evbuffer_add_printf(w->b, ", \"protocol\": ");
  hv_json_str(w->b, p->protocol, strlen(p->protocol));
  evbuffer_add_printf(w->b, ", \"client_id\": ");
  hv_json_str(w->b, p->client_id, strlen(p->client_id));
  evbuffer_add_printf(w->b, ", \"functions\": [");
  for (size_t i = 0; i < p->nfunctions; i++) {
    if (i)
      evbuffer_add(w->b, ", ", 2);
    hv_json_str(w->b, p->functions[i], strlen(p->functions[i]));
  }
  evbuffer_add_printf(w->b, "]}");
}

void hv_workers_json(const cog_host_t *h, struct evbuffer *b)
{
  evbuffer_add_printf(b, "{\n  \"workers\": [");
  struct walk w = { b, 0, h };
  h->foreach_peer(worker_fn, &w);
  evbuffer_add_printf(b, "%s]\n}\n", w.n ? "\n  " : "");
}

int hv_job_json(const cog_host_t *h, struct evbuffer *b, const char *handle)
{
  cog_job_status_t st;
  int rc = h->job_status(handle, strlen(handle), &st);
  evbuffer_add_printf(b, "{\"handle\": ");
  hv_json_str(b, handle, strlen(handle));
  evbuffer_add_printf(b, ", \"known\": %s, \"running\": %s, \"numerator\": %u, "
                      "\"denominator\": %u, \"clients\": %u}\n",
                      st.known ? "true" : "false", st.running ? "true" : "false",
                      st.numerator, st.denominator, st.clients);
  return rc == COG_OK ? 0 : -1;
}

/* ------------------------------------------------------------ metrics */

/* Label values: backslash, double quote and newline escaped.  The format
 * has no escape for a byte that is not UTF-8 and a scraper refuses the
 * whole page for one, so such a byte becomes U+FFFD. */
static void label(struct evbuffer *b, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n; i++) {
    size_t k;
    if (s[i] == '\\' || s[i] == '"') {
      evbuffer_add_printf(b, "\\%c", s[i]);
    } else if (s[i] == '\n') {
      evbuffer_add(b, "\\n", 2);
    } else if (u[i] < 0x80) {
      evbuffer_add(b, &s[i], 1);
    } else if ((k = cog_utf8_seq(u + i, n - i)) != 0) {
      evbuffer_add(b, &s[i], k);
      i += k - 1;
    } else {
      evbuffer_add(b, "\xef\xbf\xbd", 3);
    }
  }
}

enum mpart { M_SUBMITTED, M_FINISHED, M_DEPTH, M_RUNNING, M_WORKERS };

struct mwalk {
  struct evbuffer *b;
  enum mpart part;
};

static void metric_fn(void *arg, const cog_function_info_t *f)
{
  struct mwalk *w = arg;
  struct evbuffer *b = w->b;
  switch (w->part) {
  case M_SUBMITTED:
    evbuffer_add_printf(b, "cogd_jobs_submitted_total{function=\"");
    label(b, f->name, f->name_len);
    evbuffer_add_printf(b, "\"} %" PRIu64 "\n", f->submitted);
    break;
  case M_FINISHED: {
    const char *outcomes[3] = { "complete", "fail", "exception" };
    uint64_t v[3] = { f->completed, f->failed, f->exceptions };
    for (int i = 0; i < 3; i++) {
      evbuffer_add_printf(b, "cogd_jobs_finished_total{function=\"");
      label(b, f->name, f->name_len);
      evbuffer_add_printf(b, "\",outcome=\"%s\"} %" PRIu64 "\n", outcomes[i], v[i]);
    }
    break;
  }
  case M_DEPTH:
    for (int i = 0; i < COG_PRIO_COUNT; i++) {
      evbuffer_add_printf(b, "cogd_queue_depth{function=\"");
      label(b, f->name, f->name_len);
      evbuffer_add_printf(b, "\",priority=\"%s\"} %u\n", prio_names[i],
                          f->queued[i]);
    }
    break;
  case M_RUNNING:
    evbuffer_add_printf(b, "cogd_jobs_running{function=\"");
    label(b, f->name, f->name_len);
    evbuffer_add_printf(b, "\"} %u\n", f->running);
    break;
  case M_WORKERS:
    evbuffer_add_printf(b, "cogd_workers{function=\"");
    label(b, f->name, f->name_len);
    evbuffer_add_printf(b, "\"} %u\n", f->workers);
    break;
  }
}

static void per_function(const cog_host_t *h, struct evbuffer *b, enum mpart part,
                         const char *name, const char *type, const char *help)
{
  evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  struct mwalk w = { b, part };
  h->foreach_function(metric_fn, &w);
}

static void histogram(struct evbuffer *b, const char *name, const char *help,
                      const cog_histogram_t *hist, const double *bounds)
{
  evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cum = 0;
  for (int i = 0; i < COG_HIST_BUCKETS - 1; i++) {
    cum += hist->buckets[i];
    evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i], cum);
  }
  cum += hist->buckets[COG_HIST_BUCKETS - 1];
  evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
  evbuffer_add_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, hist->sum, name,
                      hist->count);
}

static void scalar(struct evbuffer *b, const char *name, const char *type, const char *help,
                   uint64_t v)
{
  evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                      name, v);
}

void hv_metrics(const cog_host_t *h, struct evbuffer *b)
{
  const cog_stats_t *st = h->stats();
  evbuffer_add_printf(b, "# HELP cogd_build_info cogd version.\n# TYPE cogd_build_info gauge\n"
                      "cogd_build_info{version=\"");
  label(b, h->version(), strlen(h->version()));
  evbuffer_add_printf(b, "\"} 1\n");
  evbuffer_add_printf(b, "# HELP cogd_start_time_seconds Unix time the server started.\n"
                      "# TYPE cogd_start_time_seconds gauge\ncogd_start_time_seconds %" PRId64
                      "\n", st->started);
  scalar(b, "cogd_connections", "gauge", "Open client and worker connections.", st->peers);
  scalar(b, "cogd_connections_total", "counter", "Connections opened since start.",
         st->peers_total);
  scalar(b, "cogd_jobs", "gauge", "Jobs held by the server (queued, waiting or running).",
         st->jobs);
  per_function(h, b, M_SUBMITTED, "cogd_jobs_submitted_total", "counter",
               "Jobs submitted per function (coalesced submissions not counted).");
  per_function(h, b, M_FINISHED, "cogd_jobs_finished_total", "counter",
               "Jobs ended per function and outcome (fail includes cancels and exhausted "
               "retries).");
  per_function(h, b, M_DEPTH, "cogd_queue_depth", "gauge",
               "Jobs waiting per function and priority (not running).");
  per_function(h, b, M_RUNNING, "cogd_jobs_running", "gauge", "Jobs running per function.");
  per_function(h, b, M_WORKERS, "cogd_workers", "gauge",
               "Workers registered per function.");
  histogram(b, "cogd_job_runtime_seconds", "Time from a worker taking a job to its end.",
            &st->job_runtime, st->bounds);
  histogram(b, "cogd_queue_commit_seconds", "Persistent queue commit latency.",
            &st->commit_latency, st->bounds);
  scalar(b, "cogd_queue_commits_total", "counter", "Persistent queue commits.", st->commits);
  scalar(b, "cogd_queue_commit_errors_total", "counter", "Persistent queue commits that failed.",
         st->commit_errors);
  scalar(b, "cogd_queue_enqueue_errors_total", "counter",
         "Jobs the persistent queue refused at once.", st->enqueue_errors);
}
