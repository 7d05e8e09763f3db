#!/bin/bash
# The real Abraxas client (npm abraxas 2.x, Node.js) in streaming mode
# (Client({streaming: true})): a registerWorkerStream worker's many binary
# chunks read as a stream and as a promise, byte for byte; a chunk seen
# while the job still runs; a foreground submit with a uniqueid refused
# (NO_SUCH_JOB, Abraxas's text); a streaming worker killed mid-job makes the
# client's task emit an error (WORK_FAIL) and the job is not run again; at
# the same time a plain Abraxas client and worker, and libgearman's gearman
# CLI as client and worker, behave as without streaming (a plain worker
# killed mid-job has its job requeued).  The script is abraxas.js.
#
# abraxas is installed once with npm into ABRAXAS_DIR (default
# ~/.cache/cogd-tests/abraxas2); the test skips only when npm cannot reach
# its registry.
. "$(dirname "$0")/lib.sh"
need node npm gearman
[ "$SERVER" = cogd ] || skip "streaming is an Abraxas extension (gearmand answers UNKNOWN_OPTION)"

ABRAXAS_DIR=${ABRAXAS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cogd-tests/abraxas2}
if [ ! -f "$ABRAXAS_DIR/node_modules/abraxas/package.json" ]; then
  mkdir -p "$ABRAXAS_DIR" || skip "cannot create $ABRAXAS_DIR"
  log "installing abraxas@2 into $ABRAXAS_DIR"
  if ! (flock 9 && { [ -f "$ABRAXAS_DIR/node_modules/abraxas/package.json" ] ||
        timeout 300 npm install --prefix "$ABRAXAS_DIR" --no-audit --no-fund --no-save \
          abraxas@2 > "$TMPD/npm.log" 2>&1; }) 9> "$ABRAXAS_DIR/.lock"; then
    if ! timeout 60 npm view abraxas@2 version > /dev/null 2>&1; then
      skip "npm cannot reach its registry to install abraxas ($(tail -n 1 "$TMPD/npm.log" 2>/dev/null))"
    fi
    fail "npm install abraxas@2" "$(tail -n 5 "$TMPD/npm.log")"
    finish
  fi
fi
log "abraxas $(node -p "require('$ABRAXAS_DIR/node_modules/abraxas/package.json').version")"

server_start
out=$TMPD/abraxas.out
NODE_PATH="$ABRAXAS_DIR/node_modules" GEARMAN=$(command -v gearman) \
  timeout 120 node "$TESTS_DIR/abraxas.js" client "$PORT" "$TMPD" > "$out" 2>&1
rc=$?
check_lines < "$out" || fail "abraxas.js printed no verdict"
[ $rc -eq 0 ] || fail "abraxas.js exited with status $rc" "$(tail -n 5 "$out" | tr '\n' '|')"
finish
