// The real Abraxas client (npm abraxas 2.x) against a server, for
// t_abraxas.sh.  Usage: node abraxas.js MODE PORT DIR
//   client   the checks ("ok ..." / "not ok ..." lines); starts the workers
//            below as child processes of its own (and libgearman's gearman
//            CLI, $GEARMAN, as a client and a worker at the same time)
//   sworker  streaming worker: ab_chunks (N chunks, binary), ab_gate (a
//            chunk, then waits for the file DIR/gate before it ends)
//   shang    streaming worker: ab_hang (a chunk, then never ends)
//   pworker  plain worker: ab_upper, ab_plain_hang (a warning, then never
//            ends)
//   pgood    plain worker: ab_plain_hang, completes
// NODE_PATH names the directory holding node_modules/abraxas.
"use strict";
var Gearman = require("abraxas");
var fs = require("fs");
var path = require("path");
var cp = require("child_process");

var mode = process.argv[2], port = Number(process.argv[3]), dir = process.argv[4];
var TEXT = "Can't create a foreground job with a uniqueid with streaming enabled";

function connect(streaming) {
  var o = { host: "127.0.0.1", port: port };
  if (streaming) o.streaming = true;
  var c = Gearman.Client.connect(o);
  c.on("connection-error", function (e) { console.log("# connection-error: " + e); });
  return c;
}

// chunk i of ab_chunks: binary, NUL bytes included, varying sizes
function chunk(i) {
  var b = Buffer.alloc(1 + (i * 37) % 3000, i % 256);
  b[0] = 0;
  return b;
}
function chunks(n) {
  var a = [];
  for (var i = 0; i < n; i++) a.push(chunk(i));
  return Buffer.concat(a);
}

if (mode === "sworker" || mode === "shang") {
  var w = connect(true);
  if (mode === "sworker") {
    w.registerWorkerStream("ab_chunks", function (task) {
      task.then(function (payload) {
        var n = Number(payload.toString());
        for (var i = 0; i < n; i++) task.write(chunk(i));
        task.end();
      });
    });
    w.registerWorkerStream("ab_gate", function (task) {
      task.write(Buffer.from("first"));
      var t = setInterval(function () {
        if (!fs.existsSync(path.join(dir, "gate"))) return;
        clearInterval(t);
        task.end(Buffer.from("last"));
      }, 20);
    });
  } else {
    w.registerWorkerStream("ab_hang", function (task) {
      task.write(Buffer.from("partial"));
      setInterval(function () {}, 1000);
    });
  }
  w.on("connect", function () { console.log("ready"); });
} else if (mode === "pworker" || mode === "pgood") {
  var p = connect(false);
  if (mode === "pworker") {
    p.registerWorker("ab_upper", function (task) { return task.payload.toString().toUpperCase(); });
    p.registerWorkerStream("ab_plain_hang", function (task) {
      task.warn("started");
      setInterval(function () {}, 1000);
    });
  } else {
    p.registerWorker("ab_plain_hang", function (task) { return "done " + task.payload.toString(); });
  }
  p.on("connect", function () { console.log("ready"); });
} else if (mode === "client") {
  client();
} else {
  console.error("usage: node abraxas.js client|sworker|shang|pworker|pgood PORT DIR");
  process.exit(2);
}

function client() {
  var failures = 0, kids = [];
  function ok(cond, desc, detail) {
    console.log((cond ? "ok " : "not ok ") + desc);
    if (!cond) {
      failures++;
      if (detail !== undefined) console.log("       " + String(detail).replace(/\n/g, "\\n"));
    }
  }
  function spawn(args) {
    var k = cp.spawn(args[0], args.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    k.out = [];
    k.stdout.on("data", function (d) { k.out.push(d); });
    k.done = new Promise(function (res) { k.on("close", function (code) { res(code); }); });
    kids.push(k);
    return k;
  }
  function node(m) { return spawn([process.execPath, __filename, m, String(port), dir]); }
  function gearman(args) {
    return spawn([process.env.GEARMAN || "gearman", "-h", "127.0.0.1", "-p", String(port)].concat(args));
  }
  function timeout(p, ms, what) {
    return Promise.race([p, new Promise(function (_, rej) {
      setTimeout(function () { rej(new Error("timeout: " + what)); }, ms);
    })]);
  }
  function settle(p) {
    return p.then(function (v) { return { v: v }; }, function (e) { return { e: e }; });
  }
  function streamOf(task) {
    return new Promise(function (res, rej) {
      var parts = [];
      task.on("data", function (d) { parts.push(Buffer.from(d)); });
      task.on("end", function () { res({ buf: Buffer.concat(parts), n: parts.length }); });
      task.on("error", rej);
    });
  }
  var finish = function () {
    kids.forEach(function (k) { try { k.kill("SIGKILL"); } catch (e) { /* gone */ } });
    console.log("# " + failures + " failure(s)");
    process.exit(failures ? 1 : 0);
  };
  setTimeout(function () { ok(false, "everything done within 100 s"); finish(); }, 100000).unref();

  var sc = connect(true), pc = connect(false);
  var sw = node("sworker"), pw = node("pworker");
  var gw = gearman(["-w", "-f", "gm_cat", "--", "cat"]);
  var N = 200, want = chunks(N);

  Promise.resolve().then(function () {
    // a streaming client, the stream and the promise interfaces
    return timeout(streamOf(sc.submitJob("ab_chunks", String(N))), 30000, "stream");
  }).then(function (r) {
    ok(r.buf.equals(want), "streaming client reads " + N + " chunks from a streaming worker as a stream, byte for byte (" + want.length + " bytes)",
       "got " + r.buf.length + " bytes in " + r.n + " data events");
    return settle(timeout(sc.submitJob("ab_chunks", String(N)), 30000, "promise"));
  }).then(function (r) {
    ok(r.v && Buffer.from(r.v).equals(want), "... and as a promise", r.e || (r.v && r.v.length));
    // a chunk reaches the client before the job ends
    var t = sc.submitJob("ab_gate", "x");
    return timeout(new Promise(function (res, rej) {
      var parts = [];
      t.on("data", function (d) {
        parts.push(Buffer.from(d));
        if (parts.length === 1) {
          ok(Buffer.from(d).toString() === "first", "the first chunk arrives while the job still runs", d);
          fs.writeFileSync(path.join(dir, "gate"), "");
        }
      });
      t.on("end", function () { res(Buffer.concat(parts).toString()); });
      t.on("error", rej);
    }), 30000, "gate");
  }).then(function (s) {
    ok(s === "firstlast", "... then the rest with WORK_COMPLETE", s);
    // a foreground submit with a unique, in streaming mode
    return settle(timeout(sc.submitJob("ab_chunks", { uniqueid: "ab-u1" }, "1"), 15000, "unique"));
  }).then(function (r) {
    ok(r.e && r.e.code === "NO_SUCH_JOB", "streaming client, foreground submit with a uniqueid: error NO_SUCH_JOB", r.e ? r.e.code + " " + r.e.message : "no error: " + r.v);
    ok(r.e && String(r.e.message) === TEXT, "... with Abraxas's text", r.e && r.e.message);
    return settle(timeout(sc.submitJobBg("ab_chunks", { uniqueid: "ab-bg1" }, "1"), 15000, "bg unique"));
  }).then(function (r) {
    ok(r.v !== undefined && !r.e, "streaming client, background submit with a uniqueid: accepted", r.e);
    // at the same time: a plain Abraxas client, libgearman's CLI as client
    // (of a streaming and of a plain Abraxas worker) and as worker
    var cli1 = gearman(["-f", "ab_upper", "lib gearman"]);
    var cli2 = gearman(["-f", "ab_chunks", "20"]);
    return timeout(Promise.all([
      settle(pc.submitJob("ab_upper", { uniqueid: "ab-pu" }, "plain client")),
      settle(pc.submitJob("gm_cat", "to libgearman")),
      settle(sc.submitJob("gm_cat", "streaming to libgearman")),
      settle(sc.submitJob("ab_upper", "streaming to plain")),
      cli1.done, cli2.done
    ]), 40000, "mixed").then(function (rs) {
      ok(rs[0].v && rs[0].v.toString() === "PLAIN CLIENT", "plain Abraxas client, foreground with a uniqueid, plain Abraxas worker", rs[0].e || rs[0].v);
      ok(rs[1].v && rs[1].v.toString() === "to libgearman", "plain Abraxas client to a libgearman worker (gearman -w)", rs[1].e || rs[1].v);
      ok(rs[2].v && rs[2].v.toString() === "streaming to libgearman", "streaming Abraxas client to a libgearman worker", rs[2].e || rs[2].v);
      ok(rs[3].v && rs[3].v.toString() === "STREAMING TO PLAIN", "streaming Abraxas client to a plain Abraxas worker", rs[3].e || rs[3].v);
      var o1 = Buffer.concat(cli1.out).toString();
      ok(rs[4] === 0 && o1.trim() === "LIB GEARMAN", "gearman CLI (libgearman) to a plain Abraxas worker", rs[4] + " " + o1);
      var o2 = Buffer.concat(cli2.out), w20 = chunks(20);
      ok(rs[5] === 0 && (o2.equals(w20) || o2.equals(Buffer.concat([w20, Buffer.from("\n")]))),
         "gearman CLI (libgearman) gets a streaming worker's 20 chunks", rs[5] + ": " + o2.length + " bytes, want " + w20.length);
    });
  }).then(function () {
    // a plain worker killed mid-job: the job is requeued, as today
    var t = pc.submitJob("ab_plain_hang", "p1");
    var res = settle(timeout(t, 40000, "plain requeue"));
    t.once("warn", function () {
      pw.kill("SIGKILL");
      node("pgood");
    });
    return res;
  }).then(function (r) {
    ok(r.v && r.v.toString() === "done p1", "plain Abraxas worker killed mid-job: requeued, another worker completes it", r.e || r.v);
    // a streaming worker killed mid-job: the client's task errors (WORK_FAIL)
    var hw = node("shang");
    var t = sc.submitJob("ab_hang", "h1");
    var got = [];
    var res = timeout(new Promise(function (resolve) {
      t.on("data", function (d) {
        got.push(Buffer.from(d));
        if (got.length === 1) hw.kill("SIGKILL");
      });
      t.on("error", function (e) { resolve({ e: e }); });
      t.on("end", function () { resolve({ end: true }); });
    }), 30000, "streaming kill");
    return res.then(function (r) {
      ok(Buffer.concat(got).toString() === "partial", "streaming worker's chunk seen before it was killed", Buffer.concat(got).toString());
      ok(r.e && r.e.name === "JobFail", "streaming worker killed mid-job: the task emits an error (WORK_FAIL)", r.e ? r.e.name + ": " + r.e.message : "ended without error");
      // a fresh streaming worker for ab_hang must not get the job again
      var hw2 = node("shang");
      var t2 = sc.submitJob("ab_hang", "h2");
      return timeout(new Promise(function (resolve) {
        t2.once("data", function (d) { resolve(Buffer.from(d).toString()); });
      }), 30000, "next job").then(function (s) {
        ok(s === "partial", "the failed job is not requeued: a new worker runs the next job", s);
        hw2.kill("SIGKILL");
      });
    });
  }).then(function () {
    sw.kill("SIGTERM");
    gw.kill("SIGTERM");
    finish();
  }, function (e) {
    ok(false, "no exception", e && e.stack);
    finish();
  });
}
