/*
 * random.c - a seeded per-thread generator: xoshiro256** (Blackman and
 * Vigna, 2018), its state filled from the seed by splitmix64.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "fiber.h"

static _Thread_local struct {
    bool seeded;
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

FIBER_API void fiber_seed(uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng.s[i] = splitmix64(&seed);
    rng.seeded = true;
}

/* FIBER_SEED if it is a decimal number, else entropy from the kernel. */
static void seed_on_first_use(void)
{
    const char *env = getenv("FIBER_SEED");
    char *end;
    uint64_t seed;

    if (env && *env) {
        errno = 0;
        seed = strtoull(env, &end, 10);
        if (errno == 0 && *end == '\0' && *env != '-') {
            fiber_seed(seed);
            return;
        }
    }
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    fiber_seed(seed);
}

FIBER_API uint64_t fiber_random_u64(void)
{
    if (!rng.seeded) {
        int saved = errno;
        seed_on_first_use();
        errno = saved;
    }

    uint64_t *s = rng.s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

FIBER_API double fiber_uniform(double a, double b)
{
    if (!isfinite(a) || !isfinite(b))
        return NAN;
    /* 53 random bits give every double of [0, 1) on a 2^-53 grid. */
    double u = (double)(fiber_random_u64() >> 11) * 0x1.0p-53;
    double x = a + (b - a) * u;
    /* Rounding may step just past the far end; keep inside [a, b]. */
    double lo = a < b ? a : b, hi = a < b ? b : a;
    return x < lo ? lo : x > hi ? hi : x;
}

FIBER_API int fiber_randint(int64_t a, int64_t b, int64_t *out)
{
    if (!out || b < a)
        return -EINVAL;

    uint64_t span = (uint64_t)b - (uint64_t)a; /* values minus one */
    uint64_t x;
    if (span == UINT64_MAX) {
        x = fiber_random_u64();
    } else {
        /* Reject the top partial copy of the range: no modulo bias. */
        uint64_t n = span + 1;
        uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        do
            x = fiber_random_u64();
        while (x >= limit);
        x %= n;
    }
    *out = (int64_t)((uint64_t)a + x);
    return 0;
}
