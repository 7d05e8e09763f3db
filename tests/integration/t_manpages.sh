#!/usr/bin/env bash
# The manual pages: groff (-ww) and mandoc (-T lint) render all three without
# a warning, and cogd.8 and `cogd --help` list the same options both ways
# (every option --help prints is in the page; every option the page lists
# for the core or for a plugin that is built exists), so they cannot drift
# apart.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "documentation: renders the man pages, cogd only prints --help"
need groff

DOCS=$top_srcdir/docs
for page in cogd.8 cogd.conf.5 cogd-plugin.7; do
  f=$DOCS/$page
  if [ ! -f "$f" ]; then
    fail "$page exists"
    continue
  fi
  out=$(groff -man -ww -z "$f" 2>&1); rc=$?
  assert_eq "groff -man -ww: $page renders without a warning" "0:" "$rc:$out"
  if command -v mandoc > /dev/null 2>&1; then
    out=$(mandoc -T lint "$f" 2>&1); rc=$?
    assert_eq "mandoc -T lint: $page is clean" "0:" "$rc:$out"
  else
    fail "mandoc -T lint: $page" "mandoc is not installed (Debian: apt-get install mandoc)"
  fi
done

help=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1)
# "  -p, --port PORT ..." and "      --syslog ...": the long names
mapfile -t help_opts < <(printf '%s\n' "$help" |
  sed -n 's/^ \{1,\}\(-[[:alnum:]], \)\{0,1\}--\([a-z0-9-]\{1,\}\).*/\2/p' | sort -u)
assert_true "--help lists options (found ${#help_opts[@]})" test "${#help_opts[@]}" -gt 25

# The page as a reader sees it, on lines wide enough never to break a name.
text=$(groff -man -Tascii -P-cbou -rLL=250n "$DOCS/cogd.8" 2>/dev/null)
missing=()
for o in "${help_opts[@]}"; do
  printf '%s\n' "$text" | grep -Eq -- "(^|[^[:alnum:]-])--$o([^[:alnum:]-]|\$)" || missing+=("--$o")
done
assert_eq "cogd.8 documents every option of cogd --help" "" "${missing[*]}"

# The other way: the options the page lists under OPTIONS (the core) and
# under each PLUGIN OPTIONS subsection (".SS name ...") must exist, for every
# plugin that is built here.
installed=" cogd $(printf '%s\n' "$help" | sed -n 's/^Installed [a-z]* plugins: //p' | tr -d ',' |
  tr '\n' ' ') "
stale=()
while read -r owner opt; do
  case $installed in *" $owner "*) ;; *) continue ;; esac
  printf '%s\n' "${help_opts[@]}" | grep -Fxq -- "$opt" || stale+=("--$opt ($owner)")
done < <(awk '
  /^\.SH / { sec = $0; owner = "cogd" }
  /^\.SS / { if (sec ~ /PLUGIN OPTIONS/) owner = $2 }
  prev == ".TP" && sec ~ /^\.SH (PLUGIN )?OPTIONS/ {
    line = $0
    gsub(/\\-/, "-", line)
    if (match(line, /--[a-z0-9-]+/)) print owner, substr(line, RSTART + 2, RLENGTH - 2)
  }
  { prev = $0 }' "$DOCS/cogd.8")
assert_eq "every option cogd.8 lists exists in cogd --help" "" "${stale[*]}"
finish
