#!/usr/bin/env python3
"""run_io_suite.py - the HTTP benchmark behind `make bench-io`.

Serves the same page (demo/httpd's GET /, 136 bytes) from four servers and
drives each with wrk, reporting requests per second and the median and
99th-percentile latency, each beside libfiber's:

  server                    Debian package   program
  libfiber (demo/httpd)     -                demo/httpd
  Go net/http, GOMAXPROCS=1 golang-go        tests/bench/peers/go_httpd.go
  nginx, one worker         nginx-light      a configuration written here
  Python asyncio streams    python3          tests/bench/peers/asyncio_httpd.py

Each load is run with keep-alive and with Connection: close (a new
connection per request), at 100 and at 10,000 connections.  The two
servers that can, httpd (--defer-accept) and nginx (listen ... deferred),
take connections only once their request has begun to arrive
(TCP_DEFER_ACCEPT).  Besides what wrk sees, each cell gives the server's
CPU time per request: with a new connection per request the one wrk
thread is the bottleneck, and requests/s then say more of the client.  Every server
is pinned to one CPU with taskset and wrk to another.  The servers are
started together and wait idle for their turns: in each round, each load
is run on each server in turn (the order rotates each round), and each
cell reports the median of the rounds with their range.  After each run the script waits
for the server's descriptors to come back to where they were, and reports
any that did not.  libfiber also answers 10,000 connections of
tests/http_client, which checks every answer byte for byte.

Finally tests/load/echo_load.sh runs the echo load (libfiber, Go and
asyncio echo servers), pinned the same way, and its output is quoted.

A server whose program is missing is reported as skipped, and so is the
whole suite without wrk.  `make bench-deps` installs them.  --quick is the
smoke run of `make check`: one round of one second at 100 connections.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FULL = {"rounds": 5, "duration": 3, "duration_10k": 5,
        "connections": [100, 10000], "echo": True}
QUICK = {"rounds": 1, "duration": 1, "duration_10k": 1,
         "connections": [100], "echo": False}

PAGE = (b"Hello from libfiber's httpd.\n"
        b"Each connection is served by a fiber of its own; try /sleep?s=0.5 many\n"
        b"times at once and see them overlap.\n")

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 32768;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 10s;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096 deferred;
        location / {{
            default_type "text/plain; charset=utf-8";
            return 200 "{body}";
        }}
    }}
}}
"""


class Server:
    """One program serving the page."""

    def __init__(self, key, title, package):
        self.key = key
        self.title = title
        self.package = package
        self.argv = None
        self.env = None
        self.port_arg = True     # takes its port as its last argument
        self.status = "ok"
        self.note = ""
        self.version = ""
        self.proc = None
        self.port = None


def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout + out.stderr).strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(servers, args, workdir):
    missing = "not installed (Debian package {}; make bench-deps)"
    peers = os.path.join(args.srcdir, "tests", "bench", "peers")
    for s in servers:
        if args.servers and s.key not in args.servers:
            s.status, s.note = "skipped", "not selected (--servers)"
            continue
        if s.key == "libfiber":
            s.argv = [os.path.join(args.builddir, "demo", "httpd"), "--defer-accept"]
            if not os.access(s.argv[0], os.X_OK):
                s.status, s.note = "failed", "demo/httpd is not built"
            s.version = "libfiber " + command_output(
                ["sh", "-c", "sed -n 's/^AC_INIT(\\[libfiber\\], \\[\\([^]]*\\)\\].*/\\1/p' "
                 + os.path.join(args.srcdir, "configure.ac")])
        elif s.key == "go":
            if not shutil.which("go"):
                s.status, s.note = "skipped", "go: " + missing.format(s.package)
                continue
            env = dict(os.environ, GOCACHE=os.path.join(workdir, "go-cache"),
                       GOPATH=os.path.join(workdir, "go-path"),
                       GO111MODULE="off")
            exe = os.path.join(workdir, "go_httpd")
            out = subprocess.run(["go", "build", "-o", exe,
                                  os.path.join(peers, "go_httpd.go")],
                                 capture_output=True, text=True, env=env,
                                 timeout=600)
            if out.returncode != 0:
                s.status = "failed"
                s.note = "build: " + (out.stderr.strip().splitlines() or ["?"])[-1]
                continue
            s.argv, s.env = [exe], {"GOMAXPROCS": "1"}
            s.version = " ".join(command_output(["go", "version"]).split()[2:3])
        elif s.key == "nginx":
            nginx = shutil.which("nginx") or (
                "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
            if not nginx:
                s.status, s.note = "skipped", "nginx: " + missing.format(s.package)
                continue
            d = os.path.join(workdir, "nginx")
            os.makedirs(d, exist_ok=True)
            s.port = free_port()
            body = PAGE.decode().replace("\\", "\\\\").replace('"', '\\"') \
                               .replace("\n", "\\n")
            with open(os.path.join(d, "nginx.conf"), "w") as f:
                f.write(NGINX_CONF.format(dir=d, port=s.port, body=body))
            s.argv = [nginx, "-p", d, "-e", os.path.join(d, "error.log"),
                      "-c", os.path.join(d, "nginx.conf")]
            s.port_arg = False
            s.version = command_output([nginx, "-v"]).replace("nginx version: ", "")
        elif s.key == "asyncio":
            if not shutil.which(args.python):
                s.status, s.note = "skipped", "python3: " + missing.format(s.package)
                continue
            s.argv = [args.python, os.path.join(peers, "asyncio_httpd.py")]
            s.version = command_output([args.python, "--version"])


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu)] + argv if cpu is not None else argv


def start(s, args, workdir):
    """Start s, pinned, and learn its port; True when it serves."""
    env = dict(os.environ)
    env.pop("FIBER_CLOCK", None)
    env.update(s.env or {})
    argv = list(s.argv) + ([str(0)] if s.port_arg else [])
    log = open(os.path.join(workdir, s.key + ".out"), "w+")
    s.proc = subprocess.Popen(pinned(args.server_cpu, argv), stdout=log,
                              stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        if s.proc.poll() is not None:
            break
        if s.port_arg:
            log.seek(0)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read())
            if m:
                s.port = int(m.group(1))
        if s.port and answers(s.port):
            return True
        time.sleep(0.05)
    log.seek(0)
    s.status = "failed"
    s.note = "did not start: " + " ".join(log.read().split())[-200:]
    stop(s)
    return False


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and data.endswith(PAGE)
    except OSError:
        return False


def stop(s):
    if s.proc and s.proc.poll() is None:
        os.killpg(s.proc.pid, signal.SIGTERM)
        try:
            s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
    s.proc = None


def server_pid(s):
    """The pid serving: the child of taskset is taskset itself (it execs)."""
    return s.proc.pid


def cpu_seconds(pid):
    """User and system CPU time of pid so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def wait_fds(pid, at_most, timeout=15):
    deadline = time.time() + timeout
    n = fd_count(pid)
    while n > at_most and time.time() < deadline:
        time.sleep(0.1)
        n = fd_count(pid)
    return n


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def run_wrk(port, connections, close, duration, args):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
            "--timeout", "10s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    try:
        out = subprocess.run(pinned(args.client_cpu, argv), capture_output=True,
                             text=True, timeout=duration + 120)
    except subprocess.TimeoutExpired:
        return {"error": "wrk timed out"}
    text = out.stdout
    r = {"raw": text}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m or out.returncode != 0:
        return {"error": "wrk: " + " ".join((out.stderr or text).split())[-200:]}
    r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        r[key] = to_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", text)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", text)
    r["errors"] = sum(int(x) for x in m.groups()) if m else 0
    r["error_detail"] = m.group(0) if m else ""
    return r


def scenario_name(close, connections):
    return f"{'Connection: close' if close else 'keep-alive'}, {connections:,} connections"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--srcdir", default=".")
    p.add_argument("--builddir", default=".")
    p.add_argument("--out", default="bench-io-report.md")
    p.add_argument("--workdir", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--duration", type=int, default=None)
    p.add_argument("--servers", default=None,
                   help="comma-separated keys: libfiber,go,nginx,asyncio")
    p.add_argument("--python", default="python3")
    p.add_argument("--server-cpu", default=None)
    p.add_argument("--client-cpu", default=None)
    args = p.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.duration:
        cfg["duration"] = cfg["duration_10k"] = args.duration
    args.servers = set(args.servers.split(",")) if args.servers else None

    ncpu = os.cpu_count() or 1
    if shutil.which("taskset") and ncpu >= 2:
        if args.server_cpu is None:
            args.server_cpu = 0
        if args.client_cpu is None:
            args.client_cpu = 1
    else:
        args.server_cpu = args.client_cpu = None
    nofile = raise_nofile()

    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-io-")
    os.makedirs(workdir, exist_ok=True)
    servers = [Server("libfiber", "libfiber (demo/httpd)", ""),
               Server("go", "Go net/http, GOMAXPROCS=1", "golang-go"),
               Server("nginx", "nginx, 1 worker", "nginx-light"),
               Server("asyncio", "Python asyncio streams", "python3")]
    report = [f"# bench-io: HTTP servers, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", ""]

    if not shutil.which("wrk"):
        report += ["wrk is not installed (Debian package wrk; make bench-deps): "
                   "every server skipped.", ""]
        with open(args.out, "w") as f:
            f.write("\n".join(report))
        print("\n".join(report))
        return 0
    prepare(servers, args, workdir)
    connections = [c for c in cfg["connections"] if c + 100 <= nofile]
    scenarios = [(close, c) for c in connections for close in (False, True)]
    results = {}    # (key, close, conns) -> list of wrk results
    fd_leaks = {}   # key -> list of notes
    load_before = loadavg()
    started = time.time()

    # Every server runs the whole time, idle but for its turn, so that the
    # programs take turns load by load: a noisy moment on a shared machine
    # then hurts one run of one program, not all the loads of one.
    live = [s for s in servers if s.status == "ok" and start(s, args, workdir)]
    base_fds = {s.key: fd_count(server_pid(s)) for s in live}
    for rnd in range(cfg["rounds"]):
        order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
        for close, conns in scenarios:
            duration = cfg["duration_10k"] if conns > 1000 else cfg["duration"]
            for s in order:
                if s.proc.poll() is not None:
                    s.status, s.note = "failed", "exited during the benchmark"
                    continue
                pid, base = server_pid(s), base_fds[s.key]
                cpu_before = cpu_seconds(pid)
                r = run_wrk(s.port, conns, close, duration, args)
                cpu_after = cpu_seconds(pid)
                if cpu_before is not None and cpu_after is not None \
                        and r.get("requests"):
                    r["cpu_us"] = (cpu_after - cpu_before) * 1e6 / r["requests"]
                after = wait_fds(pid, base)
                r["fds"] = (base, after)
                if after > base:
                    fd_leaks.setdefault(s.key, []).append(
                        f"round {rnd + 1}, {scenario_name(close, conns)}: {base} "
                        f"descriptors before, {after} 15 s after")
                results.setdefault((s.key, close, conns), []).append(r)
                print(f"round {rnd + 1} {s.key:8} {scenario_name(close, conns):38} "
                      f"{fmt(r.get('rps'))} req/s p50 {fmt(r.get('p50'), 2)} ms "
                      f"p99 {fmt(r.get('p99'), 2)} ms errors {r.get('errors', '?')} "
                      f"non-2xx {r.get('non2xx', '?')} {r.get('error', '')}",
                      flush=True)
    for s in live:
        stop(s)

    # Every answer checked, byte for byte, at 10,000 connections.
    check_note = ""
    client = os.path.join(args.builddir, "tests", "http_client")
    lib = servers[0]
    if lib.status == "ok" and os.access(client, os.X_OK) and 10000 in connections:
        if start(lib, args, workdir):
            pid = server_pid(lib)
            base = fd_count(pid)
            t = time.time()
            out = subprocess.run(pinned(args.client_cpu, [client, "load", str(lib.port),
                                                          "10000", "3", "2"]),
                                 capture_output=True, text=True, timeout=600)
            elapsed = time.time() - t
            after = wait_fds(pid, base)
            check_note = (f"tests/http_client, 10,000 keep-alive connections open at "
                          f"once, 3 rounds of 2 pipelined requests each: "
                          f"`{(out.stdout + out.stderr).strip()}` in {elapsed:.1f} s "
                          f"(every status, length and body checked); server "
                          f"descriptors {base} before, {after} after.")
            stop(lib)
    load_after = loadavg()

    echo = ""
    if cfg["echo"]:
        env = dict(os.environ, top_srcdir=args.srcdir, top_builddir=args.builddir)
        if args.server_cpu is not None:
            env.update(SERVER_CPU=str(args.server_cpu), CLIENT_CPU=str(args.client_cpu))
        try:
            out = subprocess.run(["bash", os.path.join(args.srcdir, "tests", "load",
                                                       "echo_load.sh")],
                                 capture_output=True, text=True, env=env, timeout=1800)
            echo = (out.stdout + out.stderr).strip()
        except subprocess.TimeoutExpired:
            echo = "echo_load.sh timed out"

    # ---- the report ---------------------------------------------------------
    report += [
        f"Machine: {platform.machine()}, {ncpu} CPUs, Linux {platform.release()}; "
        f"servers pinned to CPU {args.server_cpu}, wrk (1 thread) to CPU "
        f"{args.client_cpu}; RLIMIT_NOFILE {nofile}.",
        f"{cfg['rounds']} round(s), the servers taking turns; {cfg['duration']} s per "
        f"run at 100 connections, {cfg['duration_10k']} s at 10,000; each cell is the "
        f"median of the rounds, with their range in brackets.  Load average "
        f"{load_before} before, {load_after} after ({time.time() - started:.0f} s).",
        "", "Servers:", ""]
    for s in servers:
        state = s.version if s.status == "ok" else f"{s.status}: {s.note}"
        report.append(f"- {s.title}: {state}")
    report.append("")

    def med(key, close, conns, field):
        vals = [r[field] for r in results.get((key, close, conns), [])
                if r.get(field) is not None]
        if not vals:
            return None, None, None
        return statistics.median(vals), min(vals), max(vals)

    for close, conns in scenarios:
        report += [f"## {scenario_name(close, conns)}", "",
                   "| server | requests/s | libfiber / server | p50 ms | p99 ms | "
                   "p99 / libfiber's | server CPU µs / request | errors | non-2xx |",
                   "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lib_rps = med("libfiber", close, conns, "rps")[0]
        lib_p99 = med("libfiber", close, conns, "p99")[0]
        for s in servers:
            runs = results.get((s.key, close, conns), [])
            if not runs:
                report.append(f"| {s.title} | {s.status} | | | | | | | |")
                continue
            rps, lo, hi = med(s.key, close, conns, "rps")
            p50 = med(s.key, close, conns, "p50")[0]
            p99 = med(s.key, close, conns, "p99")[0]
            cpu = med(s.key, close, conns, "cpu_us")[0]
            errors = sum(r.get("errors", 0) for r in runs)
            non2xx = sum(r.get("non2xx", 0) for r in runs)
            failed = [r["error"] for r in runs if "error" in r]
            ratio = f"{lib_rps / rps:.2f}x" if rps and lib_rps else "–"
            p99r = f"{p99 / lib_p99:.2f}x" if p99 and lib_p99 else "–"
            spread = f" [{fmt(lo)}–{fmt(hi)}]" if len(runs) > 1 and rps else ""
            note = f" ({'; '.join(failed)})" if failed else ""
            report.append(f"| {s.title} | {fmt(rps)}{spread}{note} | {ratio} | "
                          f"{fmt(p50, 2)} | {fmt(p99, 2)} | {p99r} | {fmt(cpu, 1)} | "
                          f"{errors} | {non2xx} |")
        report.append("")
    # The goals set for demo/httpd, as ratios of medians from this run.
    goals = []
    for close, conns in scenarios:
        lib = med("libfiber", close, conns, "rps")[0]
        lib99 = med("libfiber", close, conns, "p99")[0]
        wants = ([("nginx", 0.8), ("go", 1.3)] if not close else [("go", 1.0)])
        for key, want in wants:
            other = med(key, close, conns, "rps")[0]
            if lib and other:
                got = lib / other
                goals.append(f"| {scenario_name(close, conns)} | requests/s at least "
                             f"{want}x {key}'s | {got:.2f}x | "
                             f"{'met' if got >= want else 'not met'} |")
        go99 = med("go", close, conns, "p99")[0]
        if lib99 and go99:
            goals.append(f"| {scenario_name(close, conns)} | p99 no worse than go's | "
                         f"{lib99:,.2f} against {go99:,.2f} ms | "
                         f"{'met' if lib99 <= go99 else 'not met'} |")
    if goals:
        report += ["## Goals", "", "| load | goal | libfiber | |", "|---|---|---:|---|"]
        report += goals + [""]
    report += ["Errors are wrk's socket errors (connect, read, write, timeout); "
               "non-2xx, the answers whose status was not 2xx or 3xx.", ""]
    report += ["## Descriptors", ""]
    if fd_leaks:
        for key, notes in fd_leaks.items():
            report += [f"- {key}: {n}" for n in notes]
    else:
        report.append("Every server was back to its descriptor count after every run.")
    report.append("")
    if check_note:
        report += [check_note, ""]
    if echo:
        report += ["## Echo load (tests/load/echo_load.sh)", "", "```", echo, "```", ""]

    with open(args.out, "w") as f:
        f.write("\n".join(report))
    print("\n".join(report))
    lib_ok = servers[0].status == "ok" and all(
        "error" not in r for (k, _, _), rs in results.items() if k == "libfiber"
        for r in rs)
    return 0 if lib_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
