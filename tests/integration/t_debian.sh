#!/usr/bin/env bash
# The Debian packages (contrib/debian/):
#  - contrib/debian/build-packages builds them (dpkg-buildpackage -b);
#  - lintian reports no error and no warning;
#  - each package holds what it should: cogd the server, its protocol plugins
#    and what contrib/ ships for operators; each cogd-queue-* its plugin only,
#    depending on cogd (= version) and its own client library; cogd-dev the
#    header, cogd-plugin.pc and the example plugin (which builds against them);
#  - installed into a throwaway root with dpkg -x (no maintainer script runs,
#    nothing on the machine changes), cogd alone runs jobs in memory, finds
#    its plugins in the packaged plugin directory (its built-in default), and
#    once cogd-queue-sqlite is added, -q sqlite works with no other step: a
#    background job survives a restart.
# It skips (77) only when dpkg-buildpackage cannot be installed (no apt-get,
# not root and no sudo).  KEEP_TMP=1 keeps the packages and logs.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "packaging: builds the .deb packages and runs the installed cogd, not this build's"
need gearman python3 dpkg-deb

# ------------------------------------------------------------ the tools
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
apt_ok() { command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; }
missing=()
command -v dpkg-buildpackage >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v dh >/dev/null 2>&1 || missing+=(debhelper)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
if [ ${#missing[@]} -gt 0 ] && apt_ok; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null 2>&1
      $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1; }
fi
command -v dpkg-buildpackage >/dev/null 2>&1 && command -v dh >/dev/null 2>&1 ||
  skip "dpkg-buildpackage/debhelper missing and apt-get unusable here"

# ------------------------------------------------------------ the build
DEBS=$TMPD/debs
start=$SECONDS
# nice: make check runs other tests beside this full compile
nice -n 10 timeout 900 "$top_srcdir/contrib/debian/build-packages" "$DEBS" > "$TMPD/build.out" 2>&1
rc=$?
[ "$rc" = 77 ] && skip "build-packages: $(tail -n 1 "$TMPD/build.out")"
if [ "$rc" != 0 ]; then
  fail "contrib/debian/build-packages (status $rc)" "$(tail -n 25 "$TMPD/build.out")"
  finish
fi
ok "contrib/debian/build-packages built the packages in $((SECONDS - start)) s"

VERSION=$(dpkg-parsechangelog -l "$top_srcdir/contrib/debian/changelog" -S Version 2>/dev/null)
AC_VERSION=$(sed -n 's/^AC_INIT(\[cogd\], *\[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
assert_eq "debian/changelog's upstream version is configure.ac's" "$AC_VERSION" "${VERSION%-*}"
ARCH=$(dpkg --print-architecture)
deb() { echo "$DEBS/${1}_${VERSION}_$ARCH.deb"; }
QUEUES="sqlite postgres redis memcached"
for p in cogd cogd-dev $(for q in $QUEUES; do echo "cogd-queue-$q"; done); do
  [ -f "$(deb "$p")" ] || { fail "package $p was built" "$(ls "$DEBS")"; finish; }
done
ok "packages: cogd cogd-dev cogd-queue-{sqlite,postgres,redis,memcached}"

# ------------------------------------------------------------ lintian
if command -v lintian >/dev/null 2>&1; then
  # -I: the information tags too, among them the overrides that no longer
  # match anything (unused-override), which are then to be removed
  lintian -I --tag-display-limit 0 "$DEBS"/*.changes > "$TMPD/lintian.out" 2>&1
  assert_eq "lintian: no error" "" "$(grep '^E:' "$TMPD/lintian.out")"
  assert_eq "lintian: no warning" "" "$(grep '^W:' "$TMPD/lintian.out")"
  assert_eq "lintian: every override is still needed" "" \
    "$(grep -E '^[A-Z]: .*(unused|mismatched)-override' "$TMPD/lintian.out")"
  log "lintian: $(grep -c '^I:' "$TMPD/lintian.out") information tags"
  grep '^I:' "$TMPD/lintian.out" | sed 's/^/#   /'
else
  fail "lintian is not installed (apt-get install lintian)"
fi

# ---------------------------------------------------- package contents
# files PKG: the package's files and links, without directories and without
# its documentation and lintian overrides
files() {
  dpkg-deb --fsys-tarfile "$(deb "$1")" | tar -t | grep -v '/$' | sed 's|^\./|/|' |
    grep -Ev "^/usr/share/(doc/$1/|lintian/overrides/$1\$)"
}
# dep_names PKG: the package names in Depends, one a line, sorted
dep_names() {
  dpkg-deb -f "$(deb "$1")" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep . | sort
}

# the plugin directory, from the packaged protocol plugin
pdir=$(files cogd | sed -n 's|/protocol_binary\.so$||p')
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
assert_eq "the plugin directory is \$(libdir)/cogd" "/usr/lib/$MULTIARCH/cogd" "$pdir"

cogd_files=$(files cogd)
for f in /usr/sbin/cogd "$pdir/protocol_binary.so" "$pdir/protocol_admin.so" "$pdir/protocol_http.so"; do
  assert_line "cogd has $f" "$f" "$cogd_files"
done
assert_nomatch "cogd has no queue plugin" '/queue_' "$cogd_files"
assert_nomatch "cogd has no .la file" '\.la$' "$cogd_files"
assert_line "cogd has /etc/cogd/cogd.conf.d/" ./etc/cogd/cogd.conf.d/ \
  "$(dpkg-deb -c "$(deb cogd)" | awk '{ print $6 }')"
conffiles=$(dpkg-deb --ctrl-tarfile "$(deb cogd)" | tar -xO ./conffiles 2>/dev/null)
for f in /etc/cogd/cogd.conf /etc/logrotate.d/cogd /usr/bin/cogctl \
         /usr/share/man/man8/cogd.8.gz /usr/share/man/man5/cogd.conf.5.gz \
         /usr/share/man/man1/cogctl.1.gz; do
  assert_line "cogd has $f" "$f" "$cogd_files"
done
# README links these
cogd_docs=$(dpkg-deb --fsys-tarfile "$(deb cogd)" | tar -t | sed -n 's|^\./usr/share/doc/cogd/||p')
for f in security.md reliability.md; do
  assert_match "cogd has the $f that README links" "^$f(\.gz)?\$" "$(printf '%s\n' "$cogd_docs" | grep "^$f")"
done
# man_paths PKG: the text of its man pages (\- read as -)
man_paths() {
  local m
  dpkg-deb --fsys-tarfile "$(deb "$1")" | tar -t | grep '^\./usr/share/man/.*\.gz$' | while read -r m; do
    dpkg-deb --fsys-tarfile "$(deb "$1")" | tar -xO "$m" | gzip -dc
  done | sed 's/\\-/-/g'
}
assert_eq "the packaged man pages name no /usr/local path" "" \
  "$( { man_paths cogd; man_paths cogd-dev; } | grep -o '/usr/local[^ ]*' | sort -u | paste -sd' ' -)"
assert_line "/etc/cogd/cogd.conf is a conffile" /etc/cogd/cogd.conf "$conffiles"
assert_match "cogd has the systemd unit" '^(/usr)?/lib/systemd/system/cogd\.service$' \
  "$(printf '%s\n' "$cogd_files" | grep 'cogd\.service$')"
postinst=$(dpkg-deb --ctrl-tarfile "$(deb cogd)" | tar -xO ./postinst 2>/dev/null)
# the service is started only where systemd runs (not in a chroot or in a
# container without systemd), and not restarted by upgrades
assert_match "postinst starts cogd only where systemd runs" \
  '\[ -d /run/systemd/system \]; then' "$(printf '%s\n' "$postinst" | grep -B3 'deb-systemd-invoke start')"
assert_nomatch "postinst does not restart cogd on upgrades" 'restart' "$postinst"
dev_files=$(files cogd-dev)
for f in /usr/include/cogd/plugin.h "/usr/lib/$MULTIARCH/pkgconfig/cogd-plugin.pc" \
         /usr/share/man/man7/cogd-plugin.7.gz; do
  assert_line "cogd-dev has $f" "$f" "$dev_files"
done
assert_match "cogd.8 names the packaged plugin directory" "$pdir" "$(man_paths cogd)"
assert_match "cogd-plugin.7 names the packaged header" "/usr/include/cogd/plugin.h" "$(man_paths cogd-dev)"

# Depends: cogd only the libraries it links (libc, libevent and its OpenSSL
# part, libltdl, libssl for --ssl, liburing for --io-uring); each queue
# package cogd of the same version, and one library besides those.
assert_eq "cogd depends on libc, libevent, libevent-openssl, libltdl, libssl and liburing only" \
  "libc6 libevent libevent-openssl libltdl libssl liburing" \
  "$(dep_names cogd | sed -E 's/^libevent-openssl-.*/libevent-openssl/; s/^libevent-[0-9].*/libevent/;
      s/^libltdl[0-9]+$/libltdl/; s/^libssl[0-9.]+$/libssl/; s/^liburing[0-9]+$/liburing/' | sort |
      paste -sd' ' -)"
assert_eq "cogd provides cogd-abi-N" \
  "cogd-abi-$(awk '/^#define[ \t]+COG_ABI_MAJOR[ \t]/ { print $3 }' "$top_srcdir/include/cogd/plugin.h")" \
  "$(dpkg-deb -f "$(deb cogd)" Provides)"
declare -A LIB=([sqlite]='libsqlite3-[0-9]+' [postgres]='libpq[0-9]+' [redis]='libhiredis[0-9.]+'
                [memcached]='libmemcached[0-9]+')
for q in $QUEUES; do
  p=cogd-queue-$q
  assert_eq "$p holds its plugin only" "$pdir/queue_$q.so" "$(files "$p")"
  depends=$(dpkg-deb -f "$(deb "$p")" Depends)
  assert_match "$p depends on cogd (= $VERSION)" "(^|, )cogd \(= $VERSION\)(,|$)" "$depends"
  own=$(dep_names "$p" | grep -Ev '^(cogd|libc6|libevent-.*)$' | paste -sd' ' -)
  assert_match "$p depends on its own client library only (besides cogd's)" "^${LIB[$q]}$" "$own"
done

# ------------------------------------------- install: the server alone
ROOT=$TMPD/root
mkdir -p "$ROOT"
dpkg -x "$(deb cogd)" "$ROOT"
COGD=$ROOT/usr/sbin/cogd
COGD_PLUGIN_DIR=$ROOT$pdir
export COGD COGD_PLUGIN_DIR
CONF=$ROOT/etc/cogd/cogd.conf

assert_match "the installed cogd runs" "^cogd $AC_VERSION" "$("$COGD" --version 2>&1)"
assert_match "its default plugin directory is the packaged one" \
  "--plugin-dir DIRS .*\(default: $pdir\)" "$("$COGD" -c "$CONF" --help 2>&1 | grep -- '--plugin-dir')"
help=$("$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1)
assert_line "cogd alone: its protocol plugins load" "Installed protocol plugins: admin, binary, http" "$help"
assert_line "cogd alone: no queue plugin" "Installed queue plugins: (none)" "$help"
out=$("$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR" --check-config 2>&1)
assert_eq "the packaged cogd.conf passes --check-config" 0 "$?"
assert_line "the packaged cogd.conf listens on loopback only" "listen = 127.0.0.1" \
  "$(grep '^listen' "$CONF" | sed 's/ *#.*//')"
"$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR" --check-args -q sqlite \
  --libsqlite3-db "$TMPD/x.db" > "$TMPD/noq.out" 2>&1
assert_ne "cogd alone: -q sqlite is refused" 0 "$?"

# -c: never the machine's /etc/cogd/cogd.conf
server_start -c "$CONF"
bg gearman -h 127.0.0.1 -p "$PORT" -w -f rev -- rev
assert_eq "cogd alone: a job through the in-memory queue" "olleh" "$(gm -f rev hello)"
assert_match "the packaged cogctl talks to it" "^version +$AC_VERSION" \
  "$(timeout 10 "$ROOT/usr/bin/cogctl" -p "$PORT" version 2>&1)"
kill_bg "$BG_PID"
server_stop

# ----------------------------------------- install: add the queue packages
for q in $QUEUES; do dpkg -x "$(deb "cogd-queue-$q")" "$ROOT"; done
help=$("$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1)
assert_line "with the queue packages: every queue plugin is found" \
  "Installed queue plugins: memcached, postgres, redis, sqlite" "$help"
"$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR" --check-args -q sqlite \
  --libsqlite3-db "$TMPD/x.db" > "$TMPD/q.out" 2>&1
assert_eq "with cogd-queue-sqlite: --check-args -q sqlite passes" 0 "$?"

DB=$TMPD/queue.db
server_start -c "$CONF" -q sqlite --libsqlite3-db "$DB"
assert_eq "a background job into the SQLite queue" 0 \
  "$(gm -b -f deb_bg -- "from the package" > /dev/null 2>&1; echo $?)"
server_stop
server_start -c "$CONF" -q sqlite --libsqlite3-db "$DB"
bg gearman -h 127.0.0.1 -p "$PORT" -w -c 1 -f deb_bg -- sh -c "cat > '$TMPD/bg.out'"
wait_until 15 test -s "$TMPD/bg.out" || true
assert_eq "the background job survived the restart and ran" "from the package" \
  "$(cat "$TMPD/bg.out" 2>/dev/null)"
kill_bg "$BG_PID"
server_stop

# ------------------------------------------------------ install: cogd-dev
dpkg -x "$(deb cogd-dev)" "$ROOT"
pc=$ROOT/usr/lib/$MULTIARCH/pkgconfig/cogd-plugin.pc
ex=$ROOT/usr/share/doc/cogd-dev/examples/example-plugin
if command -v "${CC:-cc}" > /dev/null 2>&1 && command -v pkg-config > /dev/null 2>&1; then
  assert_eq "cogd-plugin.pc names the packaged plugin directory" "$pdir" \
    "$(PKG_CONFIG_PATH=${pc%/*} pkg-config --variable=plugindir cogd-plugin)"
  cflags=$(PKG_CONFIG_PATH=${pc%/*} PKG_CONFIG_SYSROOT_DIR=$ROOT \
    PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 pkg-config --cflags cogd-plugin)
  mkdir -p "$TMPD/plug"
  if "${CC:-cc}" -std=c11 -fPIC -shared $cflags -o "$TMPD/plug/queue_logq.so" "$ex/logq.c" \
       > "$TMPD/cc.out" 2>&1; then
    ok "the packaged example plugin builds against cogd-dev"
    assert_match "cogd loads it beside the packaged plugins" "^Installed queue plugins: .*logq" \
      "$("$COGD" -c "$CONF" --plugin-dir "$COGD_PLUGIN_DIR:$TMPD/plug" --help 2>&1 | grep '^Installed queue')"
  else
    fail "the packaged example plugin builds against cogd-dev" "$(tail -n 5 "$TMPD/cc.out")"
  fi
fi

finish
