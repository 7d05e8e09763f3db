#!/usr/bin/env bash
# The manual pages: groff (-ww) and mandoc (-T lint) render all four without
# a warning (the sources in docs/ and the installed ones make writes into
# man/), and cogd.8 and `cogd --help` list the same options both ways
# (every option --help prints is in the page; every option the page lists
# for the core or for a plugin that is built exists), so they cannot drift
# apart; cogctl.1 has every subcommand and option of `cogctl --help` and of
# each `cogctl SUBCOMMAND --help`; man/ names this build's paths (its
# plugin directory, its include directory), not /usr/local's.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "documentation: renders the man pages, cogd only prints --help"
need groff

DOCS=$top_srcdir/docs
MAN=$top_builddir/man
for page in cogd.8 cogd.conf.5 cogd-plugin.7 cogctl.1 \
            "$MAN/cogd.8" "$MAN/cogd.conf.5" "$MAN/cogd-plugin.7" "$MAN/cogctl.1"; do
  f=$DOCS/$page
  [ "${page#/}" = "$page" ] || { f=$page; page=man/${page##*/}; }
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

# ------------------------------------------------------------- cogctl.1
COGCTL=$top_builddir/contrib/cogctl/cogctl
ctl_help=$("$COGCTL" --help 2>&1)
mapfile -t subs < <(printf '%s\n' "$ctl_help" | sed -n '/^SUBCOMMANDS$/,/^$/s/^    \([a-z]\{1,\}\).*/\1/p')
assert_true "cogctl --help lists subcommands (found ${#subs[@]})" test "${#subs[@]}" -ge 9
# every option of the overview and of each subcommand's page
ctl_opts=$( { printf '%s\n' "$ctl_help"; for c in "${subs[@]}"; do "$COGCTL" "$c" --help 2>&1; done; } |
  sed -n 's/^ \{4,\}\(-[[:alnum:]], \)\{0,1\}--\([a-z0-9-]\{1,\}\).*/\1--\2/p' | sort -u)
ctl_text=$(groff -man -Tascii -P-cbou -rLL=250n "$DOCS/cogctl.1" 2>/dev/null)
subcommands=$(printf '%s\n' "$ctl_text" | sed -n '/^SUBCOMMANDS$/,/^[A-Z]/p')
missing=()
for c in "${subs[@]}"; do
  printf '%s\n' "$subcommands" | grep -Eq "^ {7}$c( |\$)" || missing+=("$c")
done
assert_eq "cogctl.1 documents every subcommand of cogctl --help" "" "${missing[*]}"
missing=()
while read -r o; do
  [ -n "$o" ] || continue
  long=${o#*, }
  short=; [ "$long" = "$o" ] || short=${o%%, *}
  printf '%s\n' "$ctl_text" | grep -Eq -- "(^|[^[:alnum:]-])$long([^[:alnum:]-]|\$)" || missing+=("$long")
  if [ -n "$short" ]; then
    printf '%s\n' "$ctl_text" | grep -Eq -- "(^|[^[:alnum:]-])$short, $long" || missing+=("$short")
  fi
done <<< "$ctl_opts"
assert_true "cogctl's pages list options (found $(printf '%s\n' "$ctl_opts" | grep -c .))" \
  test "$(printf '%s\n' "$ctl_opts" | grep -c .)" -ge 10
assert_eq "cogctl.1 documents every option of cogctl's help pages" "" "${missing[*]}"

# ------------------------------------------------- the installed pages
pdir=$(printf '%s\n' "$help" | sed -n 's/.*--plugin-dir DIRS .*(default: \([^)]*\)).*/\1/p')
inc=$(sed -n 's/^includedir=//p' "$top_builddir/cogd-plugin.pc")
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/cogd-plugin.pc")
inc=${inc//\$\{prefix\}/$prefix}
man_text() { groff -man -Tascii -P-cbou -rLL=250n "$MAN/$1" 2>/dev/null; }
assert_match "man/cogd.8 names the plugin directory ($pdir)" "$pdir" "$(man_text cogd.8)"
assert_match "man/cogd-plugin.7 names the include directory ($inc)" "$inc/cogd/plugin.h" \
  "$(man_text cogd-plugin.7)"
if [ "$prefix" != /usr/local ]; then
  assert_eq "the installed pages name no /usr/local path" "" "$(grep -l /usr/local "$MAN"/* 2>/dev/null)"
fi
finish
