# backend_memcached.sh -- a private memcached for the queue tests.  Source
# after lib.sh.
#
#   mc_start [PORT]  start memcached on 127.0.0.1 (a free port unless given);
#                    sets MC_PORT and MC_PID.  64 MB, -M: memcached refuses
#                    writes when full rather than evicting queued jobs.
#   mc_stop          stop it (SIGTERM, then SIGKILL) and wait for it
#
# Also writes $TMPD/mctext.py (a tiny memcached text-protocol client for
# inspecting keys) and puts $TMPD on PYTHONPATH.

need memcached python3

MC_PORT=
MC_PID=

mc_start() {
  MC_PORT=${1:-$(free_port)}
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u nobody)
  bg memcached -p "$MC_PORT" -l 127.0.0.1 -U 0 -m 64 -M "${user[@]}" \
    >> "$TMPD/memcached.log" 2>&1
  MC_PID=$BG_PID
  if ! wait_until 10 port_open "$MC_PORT"; then
    fail "memcached did not start on port $MC_PORT" "$(tail -n 5 "$TMPD/memcached.log")"
    finish
  fi
  log "memcached started: pid $MC_PID port $MC_PORT"
}

mc_stop() {
  [ -n "$MC_PID" ] || return 0
  kill -CONT "$MC_PID" 2>/dev/null
  kill_bg "$MC_PID"
  MC_PID=
}

cat > "$TMPD/mctext.py" <<'PY'
import os, socket

class MC:
    """Blocking memcached text-protocol client, enough to look at keys."""
    def __init__(self, port=None):
        port = int(port or os.environ["MC_PORT"])
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.b = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("memcached closed the connection")
        self.b += d

    def _line(self):
        while b"\r\n" not in self.b:
            self._fill()
        l, self.b = self.b.split(b"\r\n", 1)
        return l

    def _exact(self, n):
        while len(self.b) < n:
            self._fill()
        d, self.b = self.b[:n], self.b[n:]
        return d

    def get(self, key):
        """(flags, value) or None"""
        self.s.sendall(b"get " + key + b"\r\n")
        l = self._line()
        if l == b"END":
            return None
        _, _, flags, n = l.split()
        v = self._exact(int(n) + 2)[:-2]
        assert self._line() == b"END"
        return int(flags), v

    def value(self, key):
        r = self.get(key)
        return None if r is None else r[1]

    def set(self, key, val, flags=0):
        self.s.sendall(b"set %s %d 0 %d\r\n" % (key, flags, len(val)) + val + b"\r\n")
        return self._line()

    def append(self, key, val):
        self.s.sendall(b"append %s 0 0 %d\r\n" % (key, len(val)) + val + b"\r\n")
        return self._line()

    def stat(self, name):
        self.s.sendall(b"stats\r\n")
        v = None
        while True:
            l = self._line()
            if l == b"END":
                return v
            f = l.split()
            if f[1] == name:
                v = int(f[2])

def ids(chunk):
    return [int.from_bytes(chunk[i:i + 8], "little") for i in range(0, len(chunk) - 7, 8)]
PY
export PYTHONPATH="$TMPD${PYTHONPATH:+:$PYTHONPATH}"
