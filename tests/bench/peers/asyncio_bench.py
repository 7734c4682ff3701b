"""asyncio_bench.py - the suite's workloads done with Python's asyncio, for
comparison with libfiber (tests/bench/fiber_workloads.c).

Same arguments and output as fiber_workloads:

  asyncio_bench.py switch COUNT REPS   two tasks ping-pong with
                                       asyncio.sleep(0)
  asyncio_bench.py spawn COUNT REPS    create_task of a coroutine that
                                       returns at once, then await the task
  asyncio_bench.py sleepers N MAX_S    N tasks asyncio.sleep uniform
                                       [0, MAX_S] seconds

Only the standard library is used, with its defaults: the default event
loop (no uvloop) and the cyclic garbage collector left on.
"""

import asyncio
import resource
import statistics
import sys
import time

MAX_REPS = 101


def usage():
    print("usage: asyncio_bench.py switch COUNT REPS | spawn COUNT REPS | "
          "sleepers N MAX_SECONDS", file=sys.stderr)
    sys.exit(2)


def count_arg(text, maximum):
    try:
        value = int(text)
    except ValueError:
        usage()
    if not 1 <= value <= maximum:
        usage()
    return value


def cpu_ns():
    """User plus system CPU time of the process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def vm_hwm_kib():
    """VmHWM from /proc/self/status: the peak RSS of the process."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def sleep_delay_ns(i, max_ns):
    """Sleeper i's delay, uniform in [0, max_ns], from the sequence every
    program of the suite computes, so that all sleep the same delays."""
    x = ((i + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    return int((x >> 11) / 9007199254740992.0 * max_ns)


async def yielder(yields):
    for _ in range(yields):
        await asyncio.sleep(0)


async def switch_main(count, reps):
    yields = max(count // 2, 1)
    ns = []
    # Repetition -1 is an untimed warm-up.
    for rep in range(-1, reps):
        first = asyncio.create_task(yielder(yields))
        second = asyncio.create_task(yielder(yields))
        t0 = time.perf_counter_ns()
        await first
        await second
        elapsed = time.perf_counter_ns() - t0
        if rep >= 0:
            ns.append(elapsed / (2 * yields))
    print(f"switch_ns={statistics.median(ns):.3f}")


async def return_arg(value):
    return value


async def spawn_main(count, reps):
    ns = []
    total = 0
    for rep in range(-1, reps):
        t0 = time.perf_counter_ns()
        for i in range(1, count + 1):
            total += await asyncio.create_task(return_arg(i))
        elapsed = time.perf_counter_ns() - t0
        if rep >= 0:
            ns.append(elapsed / count)
    if total != (reps + 1) * count * (count + 1) // 2:
        print("asyncio_bench.py: spawn: wrong results", file=sys.stderr)
        sys.exit(1)
    print(f"spawn_ns={statistics.median(ns):.3f}")


async def sleeper(delay_ns, lateness, i):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(delay_ns / 1e9)
    lateness[i] = int((loop.time() - start) * 1e9) - delay_ns


async def sleepers_main(delays, lateness, result):
    n = len(delays)
    t0 = time.perf_counter_ns()
    tasks = [asyncio.create_task(sleeper(delays[i], lateness, i))
             for i in range(n)]
    result["spawn_ns"] = time.perf_counter_ns() - t0
    result["cpu0"] = cpu_ns()
    await asyncio.gather(*tasks)


def run_sleepers(n, max_s):
    delays = [sleep_delay_ns(i, int(max_s * 1e9)) for i in range(n)]
    lateness = [0] * n
    result = {}
    base_kib = vm_hwm_kib()
    t0 = time.perf_counter_ns()
    asyncio.run(sleepers_main(delays, lateness, result))
    wall = time.perf_counter_ns() - t0
    cpu = cpu_ns() - result["cpu0"]
    peak_kib = vm_hwm_kib()

    early = sum(1 for late in lateness if late < 0)
    lateness.sort()
    print(f"wall_s={wall / 1e9:.6f}")
    print(f"spawn_ns={result['spawn_ns'] / n:.3f}")
    print(f"cpu_us={cpu / 1e3 / n:.4f}")
    print(f"late_med_us={lateness[n // 2] / 1e3:.3f}")
    print(f"late_p90_us={lateness[(n * 9 + 9) // 10 - 1] / 1e3:.3f}")
    print(f"late_p99_us={lateness[(n * 99 + 99) // 100 - 1] / 1e3:.3f}")
    print(f"late_max_us={lateness[n - 1] / 1e3:.3f}")
    print(f"early={early}")
    print(f"rss_kib={(peak_kib - base_kib) / n:.4f}")


def main(argv):
    if len(argv) != 4:
        usage()
    if argv[1] == "switch":
        asyncio.run(switch_main(count_arg(argv[2], 10**9),
                                count_arg(argv[3], MAX_REPS)))
    elif argv[1] == "spawn":
        asyncio.run(spawn_main(count_arg(argv[2], 10**9),
                               count_arg(argv[3], MAX_REPS)))
    elif argv[1] == "sleepers":
        try:
            max_s = float(argv[3])
        except ValueError:
            usage()
        if not 0 <= max_s <= 3600:
            usage()
        run_sleepers(count_arg(argv[2], 10**8), max_s)
    else:
        usage()


if __name__ == "__main__":
    main(sys.argv)
