// boost_context_bench.cpp - the suite's workloads done with Boost.Context, for
// comparison with libfiber (tests/bench/fiber_workloads.c).
//
// Same arguments and output as fiber_workloads, for the two workloads that
// Boost.Context can do (it has no scheduler and no timers, so no sleepers):
//
//   boost_context_bench switch COUNT REPS   main and one boost::context::fiber
//                                           (fcontext) resume each other
//   boost_context_bench spawn COUNT REPS    create a fiber whose function
//                                           returns at once and resume it
//                                           until it has finished
//
// Fibers get the default stack allocator (fixedsize_stack: malloc'd).
// Build: c++ -O2 boost_context_bench.cpp -lboost_context
#include <boost/context/fiber.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace ctx = boost::context;

namespace {

const int max_reps = 101;

[[noreturn]] void usage()
{
    std::fprintf(stderr, "usage: boost_context_bench switch COUNT REPS | "
                         "spawn COUNT REPS\n");
    std::exit(2);
}

long count_arg(const char *s, long max)
{
    char *end;
    long v = std::strtol(s, &end, 10);

    if (*end || end == s || v < 1 || v > max)
        usage();
    return v;
}

std::int64_t mono_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void run_switch(long count, int reps)
{
    long round_trips = count / 2 > 0 ? count / 2 : 1;
    std::vector<double> ns;

    // Repetition -1 is an untimed warm-up.
    for (int r = -1; r < reps; r++) {
        volatile long turns = 0;
        ctx::fiber peer{[&turns, round_trips](ctx::fiber &&main) {
            for (long i = 0; i < round_trips; i++) {
                turns = turns + 1;
                main = std::move(main).resume();
            }
            return std::move(main);
        }};
        std::int64_t t0 = mono_ns();
        // Each resume is two switches: into the peer and back to main.
        for (long i = 0; i < round_trips; i++)
            peer = std::move(peer).resume();
        std::int64_t t = mono_ns() - t0;
        // One more resume lets the peer return, so it ends cleanly.
        peer = std::move(peer).resume();
        if (turns != round_trips || peer) {
            std::fprintf(stderr, "boost_context_bench: switch: lost turns\n");
            std::exit(1);
        }
        if (r >= 0)
            ns.push_back(double(t) / double(2 * round_trips));
    }
    std::printf("switch_ns=%.3f\n", median(ns));
}

void run_spawn(long count, int reps)
{
    std::vector<double> ns;
    std::uint64_t sum = 0;

    for (int r = -1; r < reps; r++) {
        std::int64_t t0 = mono_ns();
        for (long i = 0; i < count; i++) {
            std::uint64_t result = 0;
            ctx::fiber task{[&result, i](ctx::fiber &&caller) {
                result = std::uint64_t(i) + 1;
                return std::move(caller);
            }};
            // The function returns at once: one resume finishes the fiber
            // and frees its stack.
            task = std::move(task).resume();
            sum += result;
        }
        std::int64_t t = mono_ns() - t0;
        if (r >= 0)
            ns.push_back(double(t) / double(count));
    }
    std::uint64_t n = std::uint64_t(count);
    if (sum != std::uint64_t(reps + 1) * (n * (n + 1) / 2)) {
        std::fprintf(stderr, "boost_context_bench: spawn: wrong results\n");
        std::exit(1);
    }
    std::printf("spawn_ns=%.3f\n", median(ns));
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 4)
        usage();
    if (std::strcmp(argv[1], "switch") == 0)
        run_switch(count_arg(argv[2], 1000000000L),
                   int(count_arg(argv[3], max_reps)));
    else if (std::strcmp(argv[1], "spawn") == 0)
        run_spawn(count_arg(argv[2], 1000000000L),
                  int(count_arg(argv[3], max_reps)));
    else
        usage();
    return 0;
}
