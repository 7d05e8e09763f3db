#!/usr/bin/env bash
# The documentation agrees with the code it describes:
#   - every statement of the current plugin ABI version in README.md,
#     docs/getting-started.md, docs/plugin-abi.md, docs/ABI.md and
#     cogd-plugin(7) names COG_ABI_MAJOR.COG_ABI_MINOR of include/cogd/plugin.h;
#   - every default contrib/cogd.conf shows (a commented "# key = value" line)
#     is the default `cogd --check-config` / `cogd --help` reports, and every
#     key there is an option cogd has;
#   - README.md's configure table lists every --with-X / --enable-X option of
#     configure.ac;
#   - docs/plugin-abi.md names every field of the descriptor cog_plugin_t, and
#     docs/ABI.md's version log too.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "documentation: reads files, cogd only prints --help and --check-config"

S=$top_srcdir
HDR=$S/include/cogd/plugin.h

# ------------------------------------------------------------ ABI version
major=$(sed -n 's/^#define COG_ABI_MAJOR  *\([0-9]*\).*/\1/p' "$HDR")
minor=$(sed -n 's/^#define COG_ABI_MINOR  *\([0-9]*\).*/\1/p' "$HDR")
assert_match "plugin.h defines COG_ABI_MAJOR and COG_ABI_MINOR" '^[0-9]+\.[0-9]+$' "$major.$minor"
abi=$major.$minor

# abi_claims FILE ERE: every version the statements matching ERE make (the
# ERE ends just before the version), one a line.
abi_claims() {
  sed 's/\\-/-/g; s/\\(em/ /g' "$1" | grep -oE -- "$2[0-9]+\.[0-9]+" | grep -oE '[0-9]+\.[0-9]+$'
}
# check_abi FILE WHAT ERE: FILE states the ABI at least once that way, and
# every such statement names the header's version.
check_abi() {
  local f=$1 what=$2 ere=$3 claims wrong
  claims=$(abi_claims "$S/$f" "$ere")
  if [ -z "$claims" ]; then
    fail "$f states the plugin ABI version ($what)" "no match for: $ere"
    return
  fi
  wrong=$(printf '%s\n' "$claims" | grep -vFx "$abi" | sort -u | paste -sd' ' -)
  assert_eq "$f: $what = $abi (plugin.h)" "" "$wrong"
}
# "plugin ABI 1.1", but not the refused plugin of a refusal message
# ("built for plugin ABI 2.0").
check_abi README.md 'status line' '(^|[^r] )plugin ABI '
check_abi docs/getting-started.md '--version, --check-config output' '(^|[^r] )plugin ABI '
check_abi docs/cogd-plugin.7 'the ABI the page describes' '(^|[^r] )plugin ABI '
check_abi docs/plugin-abi.md 'the contract'"'"'s version' 'contract between the cogd core and its plugins, for ABI '
check_abi docs/plugin-abi.md 'refusal messages' "(provides ABI |this cogd's )"
# docs/ABI.md logs the versions newest first: its first "## X.Y:" entry.
newest=$(sed -n 's/^## \([0-9]*\.[0-9]*\):.*/\1/p' "$S/docs/ABI.md" | head -n 1)
assert_eq "docs/ABI.md: the newest version logged = $abi (plugin.h)" "$abi" "$newest"

# -------------------------------------------- descriptor fields in the docs
fields=$(awk '/^typedef struct cog_plugin \{/ { on = 1; next }
  on && /^\} cog_plugin_t;/ { exit }
  on { line = $0
       # comments, also those running over several lines, are not fields
       if (incomment) { if (sub(/^.*\*\//, "", line)) incomment = 0; else next }
       gsub(/\/\*([^*]|\*[^\/])*\*\//, "", line)
       if (sub(/\/\*.*$/, "", line)) incomment = 1
       $0 = line
       if (match($0, /\(\*[a-z_]+\)/)) print substr($0, RSTART + 2, RLENGTH - 3)
       else if (match($0, /[a-z_]+;/)) print substr($0, RSTART, RLENGTH - 1) }' "$HDR")
assert_true "cog_plugin_t has its fields (found $(printf '%s\n' "$fields" | wc -l))" \
  test "$(printf '%s\n' "$fields" | wc -l)" -ge 14
for doc in docs/plugin-abi.md docs/ABI.md; do
  missing=()
  for f in $fields; do grep -q -- "\`$f\`" "$S/$doc" || missing+=("$f"); done
  assert_eq "$doc names every field of cog_plugin_t" "" "${missing[*]}"
done
# plugin-abi.md's copy of the struct holds every field too.
block=$(awk '/^typedef struct cog_plugin \{/ { on = 1 } on { print } on && /^\} cog_plugin_t;/ { exit }' \
  "$S/docs/plugin-abi.md")
missing=()
for f in $fields; do printf '%s\n' "$block" | grep -qE -- "[ *(]$f[);]" || missing+=("$f"); done
assert_eq "docs/plugin-abi.md's cog_plugin_t matches the header's fields" "" "${missing[*]}"

# ------------------------------------------------------- contrib/cogd.conf
help=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1)
effective=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --check-config 2>&1)
# A key's default: "no" for a flag (no argument in --help); else what
# --check-config prints for it; else the "(default: X)" of --help; else
# nothing is known ("?").  Prints "-" for an unknown option.
conf_default() {
  local k=$1 line v
  line=$(printf '%s\n' "$help" | grep -E -- "^ +(-[[:alnum:]], )?--$k( |\$)" | head -n 1)
  [ -n "$line" ] || { echo -; return; }
  if [[ $line =~ --$k(\ \ |$) ]]; then echo "=no"; return; fi
  v=$(printf '%s\n' "$effective" | sed -n "s/^$k = //p" | head -n 1)
  if [ -n "$v" ]; then echo "=$v"; return; fi
  if [[ $line =~ \(default:\ ([^\)]*)\)\ *$ ]]; then echo "=${BASH_REMATCH[1]}"; return; fi
  echo "?"
}
# Lines "# key = value   # comment".  A value shown with "example",
# "default:" or "repeatable" in its comment, and any later line for a key
# already seen, is an example; every other line shows the default.  An empty
# value says there is no fixed default (none, or one computed at start-up).
seen=" "
bad=()
unknown=()
checked=0
while IFS= read -r l; do
  [[ $l =~ ^#\ ([a-z0-9-]+)\ =(\ ([^#]*[^#\ ])?)?\ *(#(.*))?$ ]] || continue
  k=${BASH_REMATCH[1]} v=${BASH_REMATCH[3]} c=${BASH_REMATCH[5]}
  d=$(conf_default "$k")
  if [ "$d" = - ]; then unknown+=("$k"); continue; fi
  case $seen in *" $k "*) continue ;; esac
  seen="$seen$k "
  case $c in *example*|*default:*|*repeatable*) continue ;; esac
  case $d in
    \?) ;;
    *) if [ -n "$v" ]; then
         [ "$v" = "${d#=}" ] || bad+=("$k = $v (cogd: ${d#=})")
       elif printf '%s\n' "$effective" | grep -q "^$k = "; then
         bad+=("$k = (cogd: ${d#=})")
       fi ;;
  esac
  checked=$((checked + 1))
done < "$S/contrib/cogd.conf"
assert_true "contrib/cogd.conf shows defaults (checked $checked)" test "$checked" -ge 30
assert_eq "contrib/cogd.conf: every key is an option of cogd --help" "" "${unknown[*]}"
assert_eq "contrib/cogd.conf: every default shown is cogd's" "" "$(IFS=';'; echo "${bad[*]}")"

# ------------------------------------------------- README's configure table
opts=$(sed -n 's/^AC_ARG_\(WITH\|ENABLE\)(\[\([a-z0-9-]*\)\].*/\1 \2/p; s/^COG_OPTIONAL(\[\([a-z0-9-]*\)\].*/WITH \1/p' \
  "$S/configure.ac" | while read -r kind name; do
    [ "$kind" = WITH ] && echo "--with-$name" || echo "--enable-$name"; done)
assert_true "configure.ac has options (found $(printf '%s\n' "$opts" | wc -l))" \
  test "$(printf '%s\n' "$opts" | wc -l)" -ge 7
table=$(sed -n '/^| option | effect |/,/^$/p' "$S/README.md")
missing=()
for o in $opts; do printf '%s\n' "$table" | grep -qF -- "\`$o\`" || missing+=("$o"); done
assert_eq "README.md's configure table lists every option of configure.ac" "" "${missing[*]}"

finish
