#!/usr/bin/env python3
"""run_suite.py - the benchmark suite behind `make bench`.

Runs the same workloads with libfiber (tests/bench/fiber_workloads) and with
its peers from Debian's packages, then writes a report: a Markdown table and
a CSV with every figure beside libfiber's and the ratio, and a plot of how
the costs grow with the number of fibers.

  peer            Debian package          program in tests/bench/peers/
  Go goroutines   golang-go               go_bench.go
  Python asyncio  python3                 asyncio_bench.py
  GNU Pth         libpth-dev              pth_bench.c
  Boost.Context   libboost-context-dev    boost_context_bench.cpp

A peer whose compiler, interpreter or headers are missing is reported as
skipped; a peer that fails is reported as failed.  Neither fails the suite:
only a failure of libfiber does (exit status 1), except at the largest N,
where a failure is reported in its row.  `make bench-deps` installs the
peers.  --quick is the smoke run of `make check`: tiny counts, well under
five seconds.
"""

import argparse
import csv
import datetime
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

# How each workload is sized.  Every program gets the same arguments.
FULL = {
    "switch": (400_000, 5),      # switches a repetition, timed repetitions
    "spawn": (50_000, 5),        # spawn+join pairs a repetition, repetitions
    "rounds": 3,                 # switch and spawn: rounds of every program
    "sizes": [1_000, 10_000, 100_000, 1_000_000],
    "max_delay": 1.0,            # sleepers sleep uniform [0, max_delay] s
    "runs": 3,                   # processes per sleepers point (median)
    "big_n": 1_000_000,          # from this N on, one run per point
    "long_run": 5.0,             # a point whose first run took longer: 1 run
    "budget": 60.0,              # kill a peer's run after this long, and do
                                 # not start one projected to take twice it
    "timeout": 300.0,            # kill any one run of libfiber after this
}
QUICK = {
    "switch": (2_000, 3),
    "spawn": (500, 3),
    "rounds": 1,
    "sizes": [10, 100],
    "max_delay": 0.02,
    "runs": 1,
    "big_n": 100,
    "long_run": 1.0,
    "budget": 10.0,
    "timeout": 30.0,
}

# The sleepers' metrics: key, label, unit.
SLEEP_METRICS = [
    ("wall_s", "wall time", "s"),
    ("spawn_ns", "spawn, per sleeper", "ns"),
    ("cpu_us", "sleep + wake CPU, per sleeper", "µs"),
    ("busy_us", "sleep + wake work (loop busy), per sleeper", "µs"),
    ("late_med_us", "wake-up lateness, median", "µs"),
    ("late_p90_us", "wake-up lateness, 90th percentile", "µs"),
    ("late_p99_us", "wake-up lateness, 99th percentile", "µs"),
    ("late_max_us", "wake-up lateness, maximum", "µs"),
    ("early", "early wake-ups (must be 0)", "count"),
    ("rss_kib", "peak RSS, per sleeper", "KiB"),
]
GROWTH_METRICS = ["spawn_ns", "cpu_us", "rss_kib", "wall_s"]
# Figures only libfiber's loop can give: the peers print none.
LIBFIBER_ONLY_METRICS = {"busy_us"}


class Runner:
    """One program of the suite: libfiber's or a peer's."""

    def __init__(self, key, title, package, workloads, how):
        self.key = key
        self.title = title
        self.package = package
        self.workloads = workloads
        self.how = how
        self.argv = None       # the command, once built
        self.env = None        # extra environment
        self.status = "ok"     # ok, skipped or failed
        self.note = ""
        self.version = ""


class Result:
    """One point: a runner's figures for one workload and size."""

    def __init__(self, status, metrics=None, runs=0, note=""):
        self.status = status   # ok, skipped, failed, timeout, n/a
        self.metrics = metrics or {}
        self.runs = runs
        self.note = note


def runners_table():
    return [
        Runner("libfiber", "libfiber", "", {"switch", "spawn", "sleepers"}, {
            "switch": "two fibers, `fiber_yield()`",
            "spawn": "`fiber_spawn()` then `fiber_await()`",
            "sleepers": "`fiber_sleep_ns()`, then `fiber_gather()` of all; "
                        "wall and CPU time stop when the last sleeper has "
                        "been awaited, as Go's and Pth's do, and the loop's "
                        "teardown after that is not counted",
        }),
        Runner("compact", "libfiber compact", "", {"switch", "spawn", "sleepers"}, {
            "switch": "two compact fibers (`fiber_attr.compact`), "
                      "`fiber_yield()`: each switch goes through the "
                      "scheduler and copies their frames",
            "spawn": "as libfiber, with compact fibers",
            "sleepers": "as libfiber, with compact fibers: one shared run "
                        "stack, each sleeper's frames saved on the heap",
        }),
        Runner("go", "Go", "golang-go", {"switch", "spawn", "sleepers"}, {
            "switch": "two goroutines, `runtime.Gosched()`, GOMAXPROCS=1",
            "spawn": "`go f(i, ch)` then receive its result from a buffered "
                     "channel",
            "sleepers": "`time.Sleep()`, `sync.WaitGroup`; each goroutine "
                        "waits at a gate closed once all N exist, since "
                        "the scheduler would otherwise run (and end) early "
                        "ones while later ones are spawned",
        }),
        Runner("asyncio", "asyncio", "python3",
               {"switch", "spawn", "sleepers"}, {
            "switch": "two tasks, `await asyncio.sleep(0)`",
            "spawn": "`await asyncio.create_task(coro)`",
            "sleepers": "`await asyncio.sleep()`, then `asyncio.gather()`; "
                        "default loop and garbage collector; wall and CPU "
                        "time stop when `asyncio.run()` returns",
        }),
        Runner("pth", "GNU Pth", "libpth-dev",
               {"switch", "spawn", "sleepers"}, {
            "switch": "two threads, `pth_yield(NULL)`",
            "spawn": "`pth_spawn()` then `pth_join()`",
            "sleepers": "`pth_nap()` (whole µs), then `pth_join()` of each",
        }),
        Runner("boost", "Boost.Context", "libboost-context-dev",
               {"switch", "spawn"}, {
            "switch": "main and one `boost::context::fiber` (fcontext) "
                      "resume each other",
            "spawn": "create a `fiber` whose function returns at once and "
                     "resume it until it has finished (default "
                     "`fixedsize_stack`: 128 KiB from malloc)",
            "sleepers": "n/a: no scheduler and no timers",
        }),
    ]


# ---- helpers ----------------------------------------------------------------

def log(msg=""):
    print(msg, flush=True)


def last_line(text):
    """The last non-blank line of a program's output: where errors are."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1][:240] if lines else ""


def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip()


def debian_version(package):
    """The installed version of a Debian package, or ''."""
    if not shutil.which("dpkg-query"):
        return ""
    out = command_output(["dpkg-query", "-W", "-f", "${Status} ${Version}",
                          package])
    parts = out.split()
    if len(parts) >= 4 and parts[2] == "installed":
        return parts[3]
    return ""


def versioned(name, package):
    """name, followed by the Debian package and version it came from."""
    version = debian_version(package) if package else ""
    return f"{name} ({package} {version})" if version else name


def fmt(value):
    """A figure with three or so significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = abs(value)
    if v >= 100 or value == int(value):
        return f"{value:,.0f}"
    if v >= 10:
        return f"{value:.1f}"
    if v >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(peer, base):
    # A lateness below 0 (an early wake-up) has no meaningful ratio.
    if peer is None or base is None or base <= 0 or peer < 0:
        return "–"
    r = peer / base
    if r < 0.01:
        return "<0.01×"
    if r >= 100:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def short_n(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# ---- the machine ------------------------------------------------------------

def machine_info(args):
    info = {}
    try:
        info["nproc"] = str(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        info["nproc"] = str(os.cpu_count() or "?")
    info["cpu_model"] = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    u = platform.uname()
    info["kernel"] = f"{u.system} {u.release} {u.machine}"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    info["memory"] = f"{kib / 1048576:.0f} GiB"
                    break
    except OSError:
        pass
    info["cc"] = command_output([args.cc, "--version"]).splitlines()[0] \
        if shutil.which(args.cc) else args.cc
    info["date"] = datetime.date.today().isoformat()
    info["load_start"] = f"{os.getloadavg()[0]:.2f}"
    return info


# ---- building the peers -----------------------------------------------------

def header_present(compiler, header, lang):
    """Whether compiler finds header; False if the compiler is missing."""
    if not shutil.which(compiler):
        return False
    try:
        out = subprocess.run([compiler, "-x", lang, "-E", "-"],
                             input=f"#include <{header}>\n", text=True,
                             capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def build(argv, runner, env=None):
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=300, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        runner.status, runner.note = "failed", f"build: {e}"
        return False
    if out.returncode != 0:
        runner.status = "failed"
        runner.note = "build: " + last_line(out.stderr or out.stdout)
        return False
    return True


def prepare(runner, args, workdir):
    peers = os.path.join(args.srcdir, "tests", "bench", "peers")
    if runner.key in ("libfiber", "compact"):
        runner.argv = [os.path.join(args.builddir, "tests", "bench",
                                    "fiber_workloads")]
        if runner.key == "compact":
            runner.env = {"FIBER_WORKLOADS_COMPACT": "1"}
        if not os.access(runner.argv[0], os.X_OK):
            runner.status = "failed"
            runner.note = f"{runner.argv[0]} not built (make bench builds it)"
        return
    if args.peers is not None and runner.key not in args.peers:
        runner.status, runner.note = "skipped", "not selected (--peers)"
        return
    missing = (f"not installed (Debian package {runner.package}; "
               "make bench-deps)")

    if runner.key == "go":
        if not shutil.which(args.go):
            runner.status, runner.note = "skipped", f"{args.go}: {missing}"
            return
        env = dict(os.environ)
        # The build cache lives with the build, so nothing needs $HOME.
        env["GOCACHE"] = os.path.join(workdir, "go-cache")
        env["GOPATH"] = os.path.join(workdir, "go-path")
        env["GO111MODULE"] = "off"
        exe = os.path.join(workdir, "go_bench")
        if build([args.go, "build", "-o", exe,
                  os.path.join(peers, "go_bench.go")], runner, env):
            runner.argv = [exe]
            runner.env = {"GOMAXPROCS": "1"}
            words = command_output([args.go, "version"]).split()
            runner.version = versioned(
                "Go " + (words[2] if len(words) > 2 else "?"), "golang-go")
    elif runner.key == "asyncio":
        python = args.python
        if not python or not shutil.which(python):
            runner.status, runner.note = "skipped", f"python3: {missing}"
            return
        runner.argv = [python, os.path.join(peers, "asyncio_bench.py")]
        runner.version = versioned(command_output([python, "--version"]),
                                   "python3" if python == "/usr/bin/python3"
                                   else "")
    elif runner.key == "pth":
        if not shutil.which(args.cc):
            runner.status = "skipped"
            runner.note = f"no C compiler ({args.cc})"
            return
        if not header_present(args.cc, "pth.h", "c"):
            runner.status, runner.note = "skipped", f"pth.h: {missing}"
            return
        exe = os.path.join(workdir, "pth_bench")
        if build([args.cc, "-std=c11", "-O2", "-o", exe,
                  os.path.join(peers, "pth_bench.c"), "-lpth"], runner):
            runner.argv = [exe]
            runner.version = versioned("GNU Pth", "libpth-dev")
    elif runner.key == "boost":
        if not shutil.which(args.cxx):
            runner.status = "skipped"
            runner.note = f"no C++ compiler ({args.cxx}; Debian package g++)"
            return
        if not header_present(args.cxx, "boost/context/fiber.hpp", "c++"):
            runner.status = "skipped"
            runner.note = f"boost/context/fiber.hpp: {missing}"
            return
        exe = os.path.join(workdir, "boost_context_bench")
        if build([args.cxx, "-std=c++14", "-O2", "-o", exe,
                  os.path.join(peers, "boost_context_bench.cpp"),
                  "-lboost_context"], runner):
            runner.argv = [exe]
            runner.version = versioned("Boost.Context", "libboost-context-dev")


# ---- running ----------------------------------------------------------------

def run_once(runner, workload, a, b, timeout):
    """One process; returns a Result with its key=value figures."""
    env = dict(os.environ)
    env.update(runner.env or {})
    argv = runner.argv + [workload, str(a), str(b)]
    t0 = time.monotonic()
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Result("timeout", note=f"killed after {timeout:.0f} s")
    except OSError as e:
        return Result("failed", note=str(e))
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        if out.returncode < 0:
            note = f"killed by signal {-out.returncode}"
        else:
            note = last_line(out.stderr) or f"exit status {out.returncode}"
        return Result("failed", note=note)
    metrics = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            try:
                metrics[key] = float(value)
            except ValueError:
                pass
    expected = [k for k, _, _ in SLEEP_METRICS
                if runner.key in ("libfiber", "compact")
                or k not in LIBFIBER_ONLY_METRICS] \
        if workload == "sleepers" else [f"{workload}_ns"]
    missing = [k for k in expected if k not in metrics]
    if missing:
        return Result("failed",
                      note="no " + ", ".join(missing) + " in its output")
    metrics["_elapsed"] = elapsed
    return Result("ok", metrics, runs=1)


def median_figures(done):
    """The median of each figure that every one of done reports."""
    keys = set(done[0]).intersection(*done[1:])
    return {k: statistics.median(m[k] for m in done) for k in keys}


def run_point(runner, workload, a, b, runs, cfg):
    """runs processes (fewer if the first is long); medians of each figure."""
    done = []
    timeout = cfg["timeout"] if runner.key in ("libfiber", "compact") \
        else cfg["budget"]
    for _ in range(runs):
        r = run_once(runner, workload, a, b, timeout)
        if r.status != "ok":
            return r
        done.append(r.metrics)
        if r.metrics["_elapsed"] > cfg["long_run"]:
            break
    return Result("ok", median_figures(done), runs=len(done))


def projected_seconds(history, n, max_delay):
    """How long a sleepers run at n should take, extrapolated from the runs
    at smaller N with the growth exponent of the last two (1 to 2)."""
    if not history:
        return 0.0
    n2, w2 = history[-1]
    e2 = max(w2 - max_delay, 1e-3)
    k = 1.0
    if len(history) >= 2:
        n1, w1 = history[-2]
        e1 = max(w1 - max_delay, 1e-3)
        k = min(max(math.log(e2 / e1) / math.log(n2 / n1), 1.0), 2.0)
    return max_delay + e2 * (n / n2) ** k


def describe(result):
    if result.status == "ok":
        return ""
    return f"{result.status}: {result.note}" if result.note else result.status


# ---- the report -------------------------------------------------------------

def cell(result, metric):
    """The Markdown cell of one figure, or the reason there is none."""
    if result is None:
        return "–"
    if result.status == "ok":
        v = result.metrics.get(metric)
        return fmt(v) if v is not None else "–"
    return {"timeout": "timed out"}.get(result.status, result.status)


def value(result, metric):
    if result is None or result.status != "ok":
        return None
    return result.metrics.get(metric)


def write_csv(path, info, runners, results, cfg):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "n", "metric", "unit", "program", "value",
                    "ratio_to_libfiber", "runs", "status", "note"])
        for key in ["nproc", "cpu_model", "kernel", "memory", "cc", "date",
                    "load_start", "load_end"]:
            if key in info:
                w.writerow(["machine", "", key, "text", "", info[key], "", "",
                            "ok", ""])
        for r in runners:
            if r.version:
                w.writerow(["machine", "", "version", "text", r.key,
                            r.version, "", "", "ok", ""])
        rows = [("switch", cfg["switch"][0], "switch_ns", "ns"),
                ("spawn", cfg["spawn"][0], "spawn_ns", "ns")]
        for n in cfg["sizes"]:
            for key, _, unit in SLEEP_METRICS:
                rows.append(("sleepers", n, key, unit))
        for workload, n, metric, unit in rows:
            base = value(results.get((workload, n, "libfiber")), metric)
            for r in runners:
                res = results.get((workload, n, r.key))
                if res is None:
                    continue
                v = value(res, metric)
                ratio = v / base if v is not None and base else None
                w.writerow([workload, n, metric, unit, r.key,
                            "" if v is None else f"{v:.6g}",
                            "" if ratio is None else f"{ratio:.4g}",
                            res.runs, res.status, res.note])


def side_by_side(runners, results, cfg):
    """The headline table: each peer's figure beside libfiber's, and the
    ratio peer / libfiber."""
    peers = [r for r in runners if r.key != "libfiber"]
    head = "| benchmark | libfiber |" + "".join(
        f" {r.title} | ratio |" for r in peers)
    rule = "|---|---:|" + "---:|---:|" * len(peers)
    lines = [head, rule]
    rows = [(f"switch, ns (ping-pong, {cfg['switch'][0]:,} switches)",
             "switch", cfg["switch"][0], "switch_ns"),
            (f"spawn + join of a task that returns at once, ns",
             "spawn", cfg["spawn"][0], "spawn_ns")]
    headline = [n for n in cfg["sizes"] if n in (100_000, 1_000_000)] or \
        cfg["sizes"][-1:]
    for n in headline:
        for key, label, unit in SLEEP_METRICS:
            if n >= 1_000_000 and key == "early":
                continue
            lines_label = f"{short_n(n)} sleepers: {label}, {unit}"
            rows.append((lines_label, "sleepers", n, key))
    for label, workload, n, metric in rows:
        base_res = results.get((workload, n, "libfiber"))
        base = value(base_res, metric)
        line = f"| {label} | {cell(base_res, metric)} |"
        for r in peers:
            res = results.get((workload, n, r.key))
            ratio = fmt_ratio(value(res, metric), base)
            line += f" {cell(res, metric)} | {ratio} |"
        lines.append(line)
    return lines


def growth_table(runners, results, cfg):
    shown = [r for r in runners if "sleepers" in r.workloads]
    peers = [r for r in shown if r.key != "libfiber"]
    head = "| N | metric | libfiber |" + "".join(
        f" {r.title} | ratio |" for r in peers)
    lines = [head, "|---:|---|---:|" + "---:|---:|" * len(peers)]
    labels = {k: (label, unit) for k, label, unit in SLEEP_METRICS}
    for metric in GROWTH_METRICS:
        label, unit = labels[metric]
        for n in cfg["sizes"]:
            base_res = results.get(("sleepers", n, "libfiber"))
            base = value(base_res, metric)
            line = (f"| {short_n(n)} | {label}, {unit} | "
                    f"{cell(base_res, metric)} |")
            for r in peers:
                res = results.get(("sleepers", n, r.key))
                line += f" {cell(res, metric)} | " \
                        f"{fmt_ratio(value(res, metric), base)} |"
            lines.append(line)
    return lines


def plot(prefix, runners, results, cfg):
    """The growth plot as SVG with gnuplot; returns (path, note)."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None, "gnuplot not found (Debian package gnuplot-nox)"
    shown = [r for r in runners if "sleepers" in r.workloads and any(
        value(results.get(("sleepers", n, r.key)), "spawn_ns") is not None
        for n in cfg["sizes"])]
    if not shown:
        return None, "no sleepers figures to plot"
    dat = prefix + "-growth.dat"
    svg = prefix + "-growth.svg"
    metrics = ["spawn_ns", "cpu_us", "rss_kib"]
    with open(dat, "w") as f:
        f.write("# N " + " ".join(f"{r.key}:{m}" for r in shown
                                  for m in metrics) + "\n")
        for n in cfg["sizes"]:
            vals = []
            for r in shown:
                for m in metrics:
                    v = value(results.get(("sleepers", n, r.key)), m)
                    vals.append("NaN" if v is None else f"{v:.6g}")
            f.write(f"{n} " + " ".join(vals) + "\n")
    colours = {"libfiber": "#d62728", "go": "#1f77b4", "asyncio": "#2ca02c",
               "pth": "#9467bd", "boost": "#8c564b"}
    titles = {
        "spawn_ns": ("spawn: ns per fiber", True),
        "cpu_us": ("sleep + wake: CPU µs per sleeper", True),
        "rss_kib": ("peak RSS: KiB per sleeper", False),
    }
    script = [
        "set terminal svg size 1200,400 dynamic font 'Helvetica,12' "
        "background rgb 'white'",
        f"set output '{svg}'",
        "set encoding utf8",
        "set datafile missing 'NaN'",
        "set logscale x 10",
        f"set xrange [{cfg['sizes'][0] / 2:g}:{cfg['sizes'][-1] * 2:g}]",
        "set format x '10^{%L}'",
        "set xlabel 'N fibers sleeping at once'",
        "set grid",
        "set key top right",
        f"set multiplot layout 1,3 title 'How the cost grows with N "
        f"(sleepers uniform [0, {cfg['max_delay']:g}] s)'",
    ]
    for mi, m in enumerate(metrics):
        title, logy = titles[m]
        script.append(f"set title '{title}'")
        script.append("set logscale y 10" if logy else "unset logscale y")
        script.append("set yrange [*:*]" if logy else "set yrange [0:*]")
        if mi == 0:
            script.append("set key top left")
        else:
            script.append("unset key")
        plots = []
        for ri, r in enumerate(shown):
            col = 2 + ri * len(metrics) + mi
            width = 3 if r.key == "libfiber" else 1.5
            plots.append(f"'{dat}' using 1:{col} with linespoints lw {width} "
                         f"pt 7 ps 0.6 lc rgb '{colours.get(r.key, 'black')}' "
                         f"title '{r.title}'")
        script.append("plot " + ", ".join(plots))
    script.append("unset multiplot")
    try:
        out = subprocess.run([gnuplot], input="\n".join(script) + "\n",
                             text=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"gnuplot failed: {e}"
    if out.returncode != 0 or not os.path.exists(svg):
        return None, "gnuplot failed: " + last_line(out.stderr)
    return svg, ""


def notes_for(runners, results, cfg):
    """Why a figure is missing, one line per peer and point."""
    notes = []
    for r in runners:
        if r.status != "ok":
            notes.append(f"- {r.title}: {r.status} — {r.note}")
            continue
        points = sorted(results.items(), key=lambda kv: kv[0][:2])
        for (workload, n, key), res in points:
            if key == r.key and res.status not in ("ok", "n/a"):
                what = workload if workload != "sleepers" else \
                    f"{short_n(n)} sleepers"
                notes.append(f"- {r.title}, {what}: {res.status} — "
                             f"{res.note}")
    return notes


def write_markdown(path, info, runners, results, cfg, svg, plot_note,
                   detail_rows, total_s, quick):
    L = []
    L.append("# libfiber benchmark report")
    L.append("")
    if quick:
        L.append("**Smoke run (--quick): counts far too small for the "
                 "figures to mean anything.**")
        L.append("")
    L.append(f"Measured {info['date']} on {info['nproc']} CPUs (nproc), "
             f"{info['cpu_model']}, {info.get('memory', '?')} RAM, "
             f"{info['kernel']}; libfiber built with {info['cc']}.")
    versions = [r.version for r in runners if r.version]
    if versions:
        L.append("Peers: " + "; ".join(versions) + ".")
    L.append(f"The suite took {total_s:.0f} s; the 1-minute load average "
             f"was {info['load_start']} before it and {info['load_end']} "
             "after (the suite itself adds 1; more means other work shared "
             "the CPUs). Reproduce with `make bench-deps && make bench`.")
    L.append("")
    L.append("Every figure is a median and lower is better, so a ratio "
             "(peer / libfiber) above 1 means libfiber is ahead. "
             f"switch and spawn: median of {cfg['rounds']} processes, "
             "one a round, the programs taking turns round after round; "
             f"each process reports the median of {cfg['switch'][1]} timed "
             "repetitions after a warm-up. Sleepers: "
             + (f"median of {cfg['runs']} processes per point, but one run "
                f"where the first takes over {cfg['long_run']:g} s or "
                f"N ≥ {short_n(cfg['big_n'])}." if cfg["runs"] > 1 else
                "one process per point."))
    L.append("")
    L.append("## Side by side")
    L.append("")
    L.extend(side_by_side(runners, results, cfg))
    L.append("")
    L.append("## Growth with N")
    L.append("")
    L.append(f"N fibers are created, then all sleep at once, uniform "
             f"[0, {cfg['max_delay']:g}] s (the same delays in every "
             "program). *spawn* is the time to create them, per fiber; "
             "*sleep + wake CPU* is the process's CPU time (user + system) "
             "from then until all have been joined, per fiber; *peak RSS* "
             "is VmHWM's growth over the run, per fiber.  In the table "
             "above, libfiber's *sleep + wake work* is the same span's "
             "wall time less the time its loop was idle (`fiber_idle_ns()`), "
             "per fiber: the CPU time counts the loop waiting on the CPU "
             "for deadlines a few microseconds away, which at a million "
             "deadlines a second is most of the time it does not work.")
    L.append("")
    if svg:
        L.append(f"![cost per fiber against N]({os.path.basename(svg)})")
    else:
        L.append(f"(No plot: {plot_note}.)")
    L.append("")
    L.extend(growth_table(runners, results, cfg))
    L.append("")
    notes = notes_for(runners, results, cfg)
    if notes:
        L.append("## Skipped and failed")
        L.append("")
        L.extend(notes)
        L.append("")
    L.append("## What each program does")
    L.append("")
    L.append("Sources: `tests/bench/fiber_workloads.c` and "
             "`tests/bench/peers/`. All run on one core (Go with "
             "GOMAXPROCS=1). A switch is one transfer of control; spawn + "
             "join includes creating the stack.")
    L.append("")
    L.append("| program | switch | spawn + join | sleepers |")
    L.append("|---|---|---|---|")
    for r in runners:
        L.append(f"| {r.title} | {r.how['switch']} | {r.how['spawn']} | "
                 f"{r.how['sleepers']} |")
    L.append("")
    L.append("libfiber lowers its thread's timer slack to 1 ns while a loop "
             "runs; the peers keep the kernel's default (50 µs), which "
             "shows in their lateness.")
    L.append("")
    if detail_rows:
        L.append("## libfiber alone (tests/bench/fiber_bench)")
        L.append("")
        L.append("| benchmark | metric | value | unit |")
        L.append("|---|---|---:|---|")
        for row in detail_rows:
            try:
                v = fmt(float(row["value"]))
            except (KeyError, ValueError):
                v = row.get("value", "")
            L.append(f"| {row.get('benchmark', '')} | {row.get('metric', '')} "
                     f"| {v} | {row.get('unit', '')} |")
        L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


# ---- main -------------------------------------------------------------------

def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--srcdir",
                   default=os.path.normpath(os.path.join(here, "..", "..")),
                   help="the source tree (default: this script's)")
    p.add_argument("--builddir", default=".",
                   help="the build tree holding tests/bench/fiber_workloads")
    p.add_argument("--out", default="bench-report",
                   help="report prefix: PREFIX.md, PREFIX.csv, "
                        "PREFIX-growth.svg (default bench-report)")
    p.add_argument("--workdir", default=None,
                   help="where peers are built "
                        "(default BUILDDIR/tests/bench/peers)")
    p.add_argument("--quick", action="store_true",
                   help="tiny counts: a smoke run of a few seconds")
    p.add_argument("--peers", default=None,
                   help="comma-separated subset of go,asyncio,pth,boost; "
                        "'none' for libfiber alone")
    p.add_argument("--sizes", default=None,
                   help="comma-separated sleeper counts "
                        "(default 1000,10000,100000,1000000)")
    p.add_argument("--no-detail", action="store_true",
                   help="do not run tests/bench/fiber_bench")
    p.add_argument("--cc", default=os.environ.get("CC") or "cc")
    p.add_argument("--cxx", default=os.environ.get("CXX") or "c++")
    p.add_argument("--go", default=os.environ.get("GO") or "go")
    default_python = os.environ.get("ASYNCIO_PYTHON") or (
        "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
        else sys.executable)
    p.add_argument("--python", default=default_python,
                   help="the interpreter of the asyncio peer (default "
                        "Debian's /usr/bin/python3)")
    args = p.parse_args(argv)
    if args.peers is not None:
        args.peers = set() if args.peers == "none" else \
            {s.strip() for s in args.peers.split(",") if s.strip()}
    # A CC such as "gcc -std=gnu11" keeps only its first word here.
    args.cc = args.cc.split()[0]
    args.cxx = args.cxx.split()[0]
    return args


def main(argv):
    args = parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.sizes:
        try:
            cfg["sizes"] = sorted({int(s) for s in args.sizes.split(",")})
        except ValueError:
            sys.exit("run_suite.py: --sizes wants numbers like 1000,10000")
    t_start = time.monotonic()
    workdir = args.workdir or os.path.join(args.builddir, "tests", "bench",
                                           "peers")
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)
    info = machine_info(args)

    log(f"libfiber benchmark suite{' (--quick)' if args.quick else ''}: "
        f"{info['nproc']} CPUs, {info['cpu_model']}, {info['kernel']}")
    runners = runners_table()
    for r in runners:
        prepare(r, args, workdir)
        state = "ready" if r.status == "ok" else f"{r.status}: {r.note}"
        log(f"  {r.title:<14} {state}")
    libfiber = runners[0]
    if libfiber.status != "ok":
        sys.exit(f"run_suite.py: {libfiber.note}")

    detail_rows = []
    if not args.no_detail:
        bench = os.path.join(args.builddir, "tests", "bench", "fiber_bench")
        detail_csv = args.out + "-fiber_bench.csv"
        log("\nlibfiber alone: tests/bench/fiber_bench")
        cmd = [bench, "--csv", detail_csv]
        if args.quick:
            cmd.append("--quick")
        try:
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=cfg["timeout"])
            with open(args.out + "-fiber_bench.txt", "w") as f:
                f.write(out.stdout + out.stderr)
            if out.returncode != 0:
                log(f"  fiber_bench failed: {last_line(out.stderr)}")
            with open(detail_csv) as f:
                detail_rows = [row for row in csv.DictReader(f)
                               if row.get("benchmark") != "machine"]
            log(f"  done: {args.out}-fiber_bench.txt")
        except (OSError, subprocess.SubprocessError) as e:
            log(f"  fiber_bench could not run: {e}")

    results = {}
    libfiber_failed = []

    # The programs take turns, round after round, and each figure is the
    # median of its rounds: on a machine whose speed drifts (a virtual
    # machine sharing its host), a slow spell then costs every program a
    # round, not one program its only run.
    for workload in ("switch", "spawn"):
        count, reps = cfg[workload]
        rounds = cfg["rounds"]
        log(f"\n{workload}: {count:,} a repetition, median of {reps}, "
            f"median of {rounds} round(s)")
        taking_part = [r for r in runners if workload in r.workloads]
        figures = {r.key: [] for r in taking_part}
        for r in taking_part:
            if r.status != "ok":
                results[(workload, count, r.key)] = Result("skipped",
                                                           note=r.note)
        for _ in range(rounds):
            for r in taking_part:
                key = (workload, count, r.key)
                if r.status != "ok" or (key in results and
                                        results[key].status != "ok"):
                    continue
                res = run_point(r, workload, count, reps, 1, cfg)
                if res.status != "ok":
                    results[key] = res
                    continue
                figures[r.key].append(res.metrics)
        for r in taking_part:
            key = (workload, count, r.key)
            if key not in results:
                results[key] = Result("ok", median_figures(figures[r.key]),
                                      runs=len(figures[r.key]))
            res = results[key]
            metric = f"{workload}_ns"
            shown = f"{fmt(res.metrics[metric])} ns" if res.status == "ok" \
                else describe(res)
            log(f"  {r.title:<14} {shown}")
            if r.key == "libfiber" and res.status != "ok":
                libfiber_failed.append(f"{workload}: {describe(res)}")

    history = {r.key: [] for r in runners}
    blocked = {}
    for n in cfg["sizes"]:
        log(f"\n{n:,} sleepers, uniform [0, {cfg['max_delay']:g}] s")
        for r in runners:
            key = ("sleepers", n, r.key)
            if "sleepers" not in r.workloads:
                results[key] = Result("n/a", note=r.how["sleepers"])
                continue
            if r.status != "ok":
                results[key] = Result("skipped", note=r.note)
                continue
            if r.key in blocked:
                results[key] = Result("skipped", note=blocked[r.key])
                log(f"  {r.title:<14} skipped: {blocked[r.key]}")
                continue
            guess = projected_seconds(history[r.key], n, cfg["max_delay"])
            if r.key != "libfiber" and guess > 2 * cfg["budget"]:
                note = (f"projected to take {guess:,.0f} s from smaller N; "
                        f"a run may take {cfg['budget']:g} s")
                results[key] = Result("skipped", note=note)
                blocked[r.key] = f"skipped at smaller N ({note})"
                log(f"  {r.title:<14} skipped: {note}")
                continue
            runs = 1 if n >= cfg["big_n"] else cfg["runs"]
            res = run_point(r, "sleepers", n, cfg["max_delay"], runs, cfg)
            results[key] = res
            if res.status == "ok":
                history[r.key].append((n, res.metrics["wall_s"]))
                m = res.metrics
                log(f"  {r.title:<14} wall {fmt(m['wall_s'])} s, spawn "
                    f"{fmt(m['spawn_ns'])} ns, cpu {fmt(m['cpu_us'])} µs, "
                    f"late {fmt(m['late_med_us'])}/"
                    f"{fmt(m['late_p99_us'])}/{fmt(m['late_max_us'])} µs "
                    f"(median/p99/max), rss "
                    f"{fmt(m['rss_kib'])} KiB ({res.runs} run"
                    f"{'s' if res.runs != 1 else ''})")
                if r.key == "libfiber" and m.get("early", 0) > 0:
                    libfiber_failed.append(f"{n} sleepers: {m['early']:.0f} "
                                           "early wake-ups")
            else:
                blocked[r.key] = f"{res.status} at N = {n:,}"
                log(f"  {r.title:<14} {describe(res)}")
                if r.key == "libfiber" and n < cfg["sizes"][-1]:
                    libfiber_failed.append(f"{n} sleepers: {describe(res)}")

    svg, plot_note = plot(args.out, runners, results, cfg)
    total_s = time.monotonic() - t_start
    info["load_end"] = f"{os.getloadavg()[0]:.2f}"
    write_csv(args.out + ".csv", info, runners, results, cfg)
    write_markdown(args.out + ".md", info, runners, results, cfg, svg,
                   plot_note, detail_rows, total_s, args.quick)

    log("\n" + "\n".join(side_by_side(runners, results, cfg)))
    log(f"\nReport: {args.out}.md, {args.out}.csv"
        + (f", {svg}" if svg else f" ({plot_note})")
        + f"; the suite took {total_s:.0f} s.")
    if libfiber_failed:
        log("libfiber FAILED: " + "; ".join(libfiber_failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
