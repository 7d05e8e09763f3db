/* cogctl: the man-style help texts (cogctl --help, cogctl CMD --help,
 * cogctl help CMD). */
#include "cogctl.h"

#include <string.h>

#define COMMON_OPTS                                                                       \
  "COMMON OPTIONS\n"                                                                      \
  "    -h, --host HOST       the server (default 127.0.0.1); an IPv6 address as ::1\n"     \
  "                          or [::1]\n"                                                  \
  "    -p, --port PORT       its Gearman port (default 4730), or an --admin-listen port\n" \
  "    -t, --timeout SECS    give up connecting, or waiting for a reply, after SECS\n"     \
  "                          seconds (default 5; fractions allowed)\n"                    \
  "        --json            print one JSON document instead of a table\n"               \
  "        --help            this text\n"                                                \
  "\n"

#define EXIT_STATUS                                                                       \
  "EXIT STATUS\n"                                                                         \
  "    0   success\n"                                                                     \
  "    1   the server answered ERR, refused the connection, did not answer within\n"      \
  "        --timeout, or sent a reply cogctl cannot read (the reason is on stderr)\n"     \
  "    2   usage error (unknown subcommand or option, bad argument)\n"                    \
  "\n"

static const char ctl_help_main[] =
  "NAME\n"
  "    cogctl - administer a Gearman job server (cogd or gearmand)\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl [OPTIONS] SUBCOMMAND [ARGUMENTS] [OPTIONS]\n"
  "    cogctl help [SUBCOMMAND]\n"
  "    cogctl SUBCOMMAND --help\n"
  "    cogctl --version\n"
  "\n"
  "DESCRIPTION\n"
  "    cogctl speaks the text admin protocol (the one gearadmin uses) over TCP to\n"
  "    the server's Gearman port. It works against cogd and against gearmand; where\n"
  "    gearmand lacks a command ('jobs', 'shutdown'), cogctl falls back or says so.\n"
  "    Tables are for people: one line per item, a header, columns aligned,\n"
  "    numbers right-aligned, nothing truncated. Use --json in scripts.\n"
  "    Names are shown as UTF-8, aligned by display width (a wide character takes\n"
  "    two columns); bytes that are not UTF-8, and control characters, as \\xNN.\n"
  "    Options may come before or after the subcommand; '--' ends them.\n"
  "\n"
  "SUBCOMMANDS\n"
  "    status                 functions: queued and running jobs, workers\n"
  "    workers                connections and the functions they registered\n"
  "    jobs [--handles]       the jobs: function, unique, worker, waiting clients\n"
  "    prioritystatus         queued jobs per priority\n"
  "    cancel HANDLE          cancel a job\n"
  "    maxqueue FUNCTION [MAX | HIGH NORMAL [LOW]]\n"
  "                           limit how many jobs a function may hold\n"
  "    version                the server's version and process id\n"
  "    shutdown [--graceful]  stop the server\n"
  "    top [-n N] [--interval SECS]\n"
  "                           a live view of the functions, with drain rates\n"
  "    help [SUBCOMMAND]      the help of a subcommand\n"
  "\n"
  "OPTIONS\n"
  "    -h, --host HOST       the server (default 127.0.0.1); an IPv6 address as ::1\n"
  "                          or [::1]\n"
  "    -p, --port PORT       its Gearman port (default 4730), or an --admin-listen port\n"
  "    -t, --timeout SECS    give up connecting, or waiting for a reply, after SECS\n"
  "                          seconds (default 5; fractions allowed)\n"
  "        --json            print one JSON document instead of a table\n"
  "        --help            this text, or with a subcommand its own\n"
  "    -V, --version         print cogctl's version and exit\n"
  "\n"
  EXIT_STATUS
  "EXAMPLES\n"
  "    cogctl status\n"
  "    cogctl -h gearman.example.net workers\n"
  "    cogctl --json status | jq '.functions[] | select(.queued > 100)'\n"
  "    cogctl maxqueue resize 1000\n"
  "    cogctl top\n"
  "\n"
  "SEE ALSO\n"
  "    cogctl(1), gearadmin(1), cogd(8), docs/admin.md (the admin protocol)\n";

static const char ctl_help_status[] =
  "NAME\n"
  "    cogctl status - the functions the server knows, with their jobs and workers\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl status [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'status' and shows one line per function, sorted by name:\n"
  "\n"
  "    FUNCTION  the function's name\n"
  "    QUEUED    jobs waiting for a worker: the server's TOTAL minus RUNNING\n"
  "              (epoch jobs not yet due count as waiting)\n"
  "    RUNNING   jobs a worker is running now\n"
  "    WORKERS   connections that registered the function, idle or busy\n"
  "\n"
  "    A function stays listed, with zeros, after its jobs and workers are gone\n"
  "    (until 'drop function' or a restart).\n"
  "\n"
  "JSON\n"
  "    {\"functions\": [{\"function\": \"resize\", \"queued\": 3, \"running\": 1,\n"
  "                    \"workers\": 1, \"total\": 4}, ...],\n"
  "     \"totals\": {\"functions\": 1, \"queued\": 3, \"running\": 1, \"total\": 4}}\n"
  "    total is the server's own TOTAL column (queued + running).\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS
  "EXAMPLE\n"
  "    $ cogctl status\n"
  "    FUNCTION   QUEUED  RUNNING  WORKERS\n"
  "    report          1        0        0\n"
  "    resize          3        1        1\n";

static const char ctl_help_workers[] =
  "NAME\n"
  "    cogctl workers - the server's connections and the functions they registered\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl workers [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'workers' and shows one line per connection (clients and workers\n"
  "    alike; cogd leaves admin connections out, gearmand lists them), sorted by\n"
  "    FD:\n"
  "\n"
  "    FD         the connection's socket number on the server (-1: an endpoint\n"
  "               without a socket of its own, such as an HTTP request)\n"
  "    ADDRESS    the peer's IP address\n"
  "    CLIENT-ID  what it sent with SET_CLIENT_ID, or -\n"
  "    FUNCTIONS  the functions it registered (CAN_DO), separated by spaces;\n"
  "               empty for a client\n"
  "\n"
  "JSON\n"
  "    {\"workers\": [{\"fd\": 7, \"address\": \"127.0.0.1\", \"client_id\": \"worker-7\",\n"
  "                  \"functions\": [\"resize\", \"thumbnail\"]}, ...]}\n"
  "    client_id is null when the server shows '-'.\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS;

static const char ctl_help_jobs[] =
  "NAME\n"
  "    cogctl jobs - the jobs the server holds\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl jobs [--handles] [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'jobs' (the Perl server's command, which cogd has) and shows one line\n"
  "    per job, sorted by function and unique:\n"
  "\n"
  "    FUNCTION  the job's function\n"
  "    UNIQUE    its unique id, or - when it was submitted without one\n"
  "    WORKER    the address of the worker running it, or - when it waits\n"
  "    CLIENTS   the foreground clients waiting for its result\n"
  "\n"
  "    When the server has no 'jobs' command (gearmand), cogctl says so on stderr\n"
  "    and shows 'show jobs' instead, as with --handles:\n"
  "\n"
  "    HANDLE    the job handle (what 'cogctl cancel' takes)\n"
  "    RETRIES   how many workers were lost while running it\n"
  "    IGNORED   yes when nobody wants its result any more\n"
  "    STORED    yes when the persistent queue holds it\n"
  "\n"
  "OPTIONS\n"
  "        --handles         show job handles ('show jobs') rather than 'jobs'\n"
  "\n"
  "JSON\n"
  "    {\"source\": \"jobs\", \"jobs\": [{\"function\": \"resize\", \"unique\": \"img-1\",\n"
  "     \"running\": false, \"worker\": null, \"clients\": 0}, ...]}\n"
  "    {\"source\": \"show jobs\", \"jobs\": [{\"handle\": \"H:vm:17\", \"retries\": 0,\n"
  "     \"ignored\": false, \"stored\": true}, ...]}\n"
  "    unique is null for a job without one; source says which list it is.\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS;

static const char ctl_help_prioritystatus[] =
  "NAME\n"
  "    cogctl prioritystatus - queued jobs of each function per priority\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl prioritystatus [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'prioritystatus' and shows one line per function, sorted by name:\n"
  "    FUNCTION, HIGH, NORMAL, LOW (jobs waiting at each priority, running jobs\n"
  "    not included) and WORKERS (connections that registered it). On cogd,\n"
  "    background jobs still waiting for the persistent queue's commit count as\n"
  "    NORMAL whatever their priority.\n"
  "\n"
  "JSON\n"
  "    {\"functions\": [{\"function\": \"resize\", \"high\": 1, \"normal\": 2, \"low\": 0,\n"
  "                    \"workers\": 1}, ...]}\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS;

static const char ctl_help_cancel[] =
  "NAME\n"
  "    cogctl cancel - cancel a job\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl cancel HANDLE [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'cancel job HANDLE'. A queued job is removed at once; a running one\n"
  "    keeps running on its worker but its result goes nowhere. Foreground\n"
  "    clients waiting for it get WORK_FAIL. The handles are in\n"
  "    'cogctl jobs --handles'. (gearmand 1.1 instead marks a queued job IGNORED\n"
  "    and drops it when a worker would take it; until then it still counts.)\n"
  "\n"
  "    The server accepts it only from the addresses in its --admin-allow list\n"
  "    (default: the local machine).\n"
  "\n"
  "OUTPUT\n"
  "    'cancelled HANDLE'; with --json {\"cancelled\": \"HANDLE\"}.\n"
  "    No such job (finished already?): exit status 1.\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS
  "EXAMPLE\n"
  "    cogctl cancel H:vm:1795457347721741\n";

static const char ctl_help_maxqueue[] =
  "NAME\n"
  "    cogctl maxqueue - limit how many jobs a function may hold\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl maxqueue FUNCTION [--create] [--json] [COMMON OPTIONS]\n"
  "    cogctl maxqueue FUNCTION MAX [--create]\n"
  "    cogctl maxqueue FUNCTION HIGH NORMAL [LOW] [--create]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'maxqueue'. A new submission of priority P is refused (the client\n"
  "    gets QUEUE_ERROR \"Job queue is full\") while the function already holds at\n"
  "    least the limit for P, counting its waiting and running jobs of every\n"
  "    priority together.\n"
  "\n"
  "    FUNCTION alone    removes the limits\n"
  "    MAX               the same limit for the three priorities\n"
  "    HIGH NORMAL       those two, LOW without a limit\n"
  "    HIGH NORMAL LOW   one limit per priority\n"
  "\n"
  "    0 or a negative number means no limit. The protocol has no way to read a\n"
  "    limit back. Accepted only from the server's --admin-allow addresses.\n"
  "\n"
  "    cogd and gearmand answer OK to maxqueue for a function they do not know,\n"
  "    and keep no limit for it. So cogctl first checks 'status': a function the\n"
  "    server does not list (a typo, or nothing submitted or registered yet) is\n"
  "    an error, exit status 1, unless --create is given.\n"
  "\n"
  "OPTIONS\n"
  "        --create          create the function first if the server does not know\n"
  "                          it ('create function'; cogd. gearmand 1.1 mangles the\n"
  "                          name, which cogctl detects and reports)\n"
  "\n"
  "JSON\n"
  "    {\"function\": \"resize\", \"created\": false, \"high\": 100, \"normal\": 100,\n"
  "     \"low\": null}\n"
  "    null: no limit; created: --create had to create the function.\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS
  "EXAMPLES\n"
  "    cogctl maxqueue resize 1000\n"
  "    cogctl maxqueue resize 50 1000 1000\n"
  "    cogctl maxqueue resize\n";

static const char ctl_help_version[] =
  "NAME\n"
  "    cogctl version - the server's version and process id\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl version [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'version' and 'getpid'. (cogctl's own version: cogctl --version.)\n"
  "\n"
  "OUTPUT\n"
  "    server   127.0.0.1:4730\n"
  "    version  0.1.0\n"
  "    pid      14473\n"
  "\n"
  "JSON\n"
  "    {\"server\": \"127.0.0.1:4730\", \"version\": \"0.1.0\", \"pid\": 14473}\n"
  "    pid is null if the server does not tell it.\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS;

static const char ctl_help_shutdown[] =
  "NAME\n"
  "    cogctl shutdown - stop the server\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl shutdown [--graceful] [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Sends 'shutdown' (cogd: as SIGTERM; jobs held only in memory are lost,\n"
  "    jobs in a persistent queue come back at the next start), or with\n"
  "    --graceful 'shutdown graceful' (cogd: as SIGUSR1; no new connections or\n"
  "    jobs, and the server exits once every running job has reported back).\n"
  "    cogctl returns once the server has accepted the command, not when it\n"
  "    has exited. Accepted only from the server's --admin-allow addresses.\n"
  "\n"
  "    gearmand has no admin 'shutdown': cogctl says so and exits with status 1.\n"
  "    Stop gearmand with a signal (SIGTERM, or SIGUSR1 for a graceful stop).\n"
  "\n"
  "OPTIONS\n"
  "    -g, --graceful        let running jobs finish first\n"
  "\n"
  "JSON\n"
  "    {\"server\": \"127.0.0.1:4730\", \"shutdown\": \"graceful\"}  (or \"immediate\")\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS;

static const char ctl_help_top[] =
  "NAME\n"
  "    cogctl top - a live view of the server's functions\n"
  "\n"
  "SYNOPSIS\n"
  "    cogctl top [-n N] [-i|--interval SECS] [--json] [COMMON OPTIONS]\n"
  "\n"
  "DESCRIPTION\n"
  "    Every SECS seconds (default 1) cogctl sends 'status' and 'workers' and\n"
  "    shows the functions, those with the most queued jobs first (then by\n"
  "    name):\n"
  "\n"
  "    QUEUED    jobs waiting for a worker\n"
  "    RUNNING   jobs a worker is running now\n"
  "    WORKERS   connections that registered the function\n"
  "    DRAIN/s   how much the function's queued+running jobs fell per second\n"
  "              since the previous refresh: (previous total - current total)\n"
  "              / seconds between the two samples. Positive: the backlog is\n"
  "              shrinking; negative: it is growing; 0.0: no net change. It is\n"
  "              a net rate, not a count of completed jobs (the admin protocol\n"
  "              has none): jobs submitted during the interval offset those\n"
  "              that completed, failed or were cancelled. '-' on the first\n"
  "              refresh and for a function that just appeared.\n"
  "\n"
  "    The header line has the server, its version, the time, and totals:\n"
  "    functions, queued, running, workers (connections with at least one\n"
  "    registered function, out of all connections 'workers' lists) and the\n"
  "    sum of the drain rates.\n"
  "\n"
  "    On a terminal the screen is redrawn in place (ANSI escapes); press q or\n"
  "    Ctrl-C to quit (the terminal is restored). If the server goes away, top\n"
  "    shows the error and reconnects at every refresh. When standard output is\n"
  "    not a terminal, one snapshot is printed per interval, separated by blank\n"
  "    lines, and a lost connection ends top with status 1.\n"
  "\n"
  "OPTIONS\n"
  "    -n, --iterations N    stop after N refreshes (default: until q or Ctrl-C)\n"
  "    -i, --interval SECS   seconds between refreshes (default 1, at least 0.1)\n"
  "        --json            one JSON document per refresh, one per line:\n"
  "                          {\"time\": ..., \"server\": ..., \"version\": ...,\n"
  "                           \"interval\": 1.0, \"totals\": {..., \"drain_per_s\": ...},\n"
  "                           \"functions\": [{\"function\": ..., \"queued\": ...,\n"
  "                           \"running\": ..., \"workers\": ..., \"total\": ...,\n"
  "                           \"drain_per_s\": 0.0 or null}]}\n"
  "\n"
  COMMON_OPTS
  EXIT_STATUS
  "EXAMPLES\n"
  "    cogctl top\n"
  "    cogctl top -n 10 --interval 5 > backlog.log\n";

typedef struct ctl_help_entry {
  const char *cmd;
  const char *text;
} ctl_help_entry_t;

static const ctl_help_entry_t ctl_helps[] = {
  {"status", ctl_help_status},
  {"workers", ctl_help_workers},
  {"jobs", ctl_help_jobs},
  {"prioritystatus", ctl_help_prioritystatus},
  {"cancel", ctl_help_cancel},
  {"maxqueue", ctl_help_maxqueue},
  {"version", ctl_help_version},
  {"shutdown", ctl_help_shutdown},
  {"top", ctl_help_top},
  {NULL, NULL},
};

int
ctl_help(const char *cmd, FILE *f)
{
  if (!cmd || strcmp(cmd, "help") == 0) {
    fputs(ctl_help_main, f);
    return 0;
  }
  for (const ctl_help_entry_t *h = ctl_helps; h->cmd; h++) {
    if (strcmp(h->cmd, cmd) == 0) {
      fputs(h->text, f);
      return 0;
    }
  }
  return -1;
}
