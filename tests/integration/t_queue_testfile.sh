#!/usr/bin/env bash
# The queue conformance scenarios on the test-only file queue plugin: proves
# the core's side of the contract independently of any real backend.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
export COGD_PLUGIN_DIR="$COGD_PLUGIN_DIR:$top_builddir/tests/plugins/.libs"
QTAG=tf queue_conformance -q testfile --testfile-path "$TMPD/q.log"
finish
