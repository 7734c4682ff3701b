/*
 * switch_bench.c - what one switch costs, layer by layer, in one run:
 *
 *   bare swap      six callee-saved registers pushed, rsp exchanged, six
 *                  popped: the textbook stackful switch
 *   context swap   the library's switch between two contexts (the same
 *                  registers, rip and rsp, in ucontext_t slots)
 *   fiber_yield    a full scheduling step: the run queue, errno, the switch
 *
 * Each figure is the median of several runs in which two contexts switch
 * to each other N times each, always from the same call site, as two
 * fibers yielding to each other do.
 *
 * Usage: switch_bench [N]   (default 10,000,000)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "context.h"
#include "fiber.h"

#include "bench_util.h"

#define RUNS 7

static long rounds;

/* ---- bare swap ------------------------------------------------------------ */

#if defined(__x86_64__)
#define HAVE_BARE_SWAP 1
/* void bare_swap(void **save_sp, void *load_sp) */
void bare_swap(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".p2align 4\n"
        "bare_swap:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n");

/* Words bare_swap keeps below a resumed stack pointer, and where among
 * them the address it returns to lies. */
#define BARE_WORDS 7
#define BARE_RETURN_WORD 6
#elif defined(__aarch64__)
#define HAVE_BARE_SWAP 1
/* The same on AArch64: x19-x30 and d8-d15, which AAPCS64 makes
 * callee-saved, stored below sp; returns through the x30 it loads. */
void bare_swap(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".p2align 4\n"
        "bare_swap:\n"
        "    sub sp, sp, #160\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #160\n"
        "    ret\n");

#define BARE_WORDS 20
#define BARE_RETURN_WORD 11
#endif

#ifdef HAVE_BARE_SWAP
/*
 * Two coroutines ping-pong through one shared loop, so that every switch
 * is made from the same call site and returns to it, as two fibers
 * yielding to each other do.
 */
static void *bare_sp_main, *bare_sp_a, *bare_sp_b;

static __attribute__((noinline)) void bare_pingpong(void **mine, void **theirs)
{
    for (long i = 0; i < rounds; i++)
        bare_swap(mine, *theirs);
}

static void bare_entry_a(void)
{
    bare_pingpong(&bare_sp_a, &bare_sp_b);
    bare_swap(&bare_sp_a, bare_sp_main);
}

static void bare_entry_b(void)
{
    bare_pingpong(&bare_sp_b, &bare_sp_a);
}

/* A fresh stack laid out as bare_swap leaves one: the saved registers all
 * zero but the return address, which is the entry point. */
static void *bare_stack(char *stack, size_t size, void (*entry)(void))
{
    void **sp = (void **)(((uintptr_t)stack + size) & ~(uintptr_t)15);
    sp -= BARE_WORDS + (BARE_WORDS % 2); /* stays 16-byte aligned */
    for (int i = 0; i < BARE_WORDS + (BARE_WORDS % 2); i++)
        sp[i] = NULL;
    sp[BARE_RETURN_WORD] = (void *)entry;
    return sp;
}

static double run_bare(char *stack, size_t size)
{
    bare_sp_a = bare_stack(stack, size / 2, bare_entry_a);
    bare_sp_b = bare_stack(stack + size / 2, size / 2, bare_entry_b);
    double t0 = now_s();
    bare_swap(&bare_sp_main, bare_sp_a);
    return now_s() - t0;
}
#endif

/* ---- the library's context switch ------------------------------------------ */

static struct fiber__context ctx_main, ctx_a, ctx_b;

static __attribute__((noinline)) void context_pingpong(struct fiber__context *mine,
                                                       struct fiber__context *theirs)
{
    for (long i = 0; i < rounds; i++)
        fiber__context_switch(mine, theirs);
}

static void context_entry_a(void)
{
    fiber__context_started(&ctx_a);
    context_pingpong(&ctx_a, &ctx_b);
    fiber__context_switch(&ctx_a, &ctx_main);
}

static void context_entry_b(void)
{
    fiber__context_started(&ctx_b);
    context_pingpong(&ctx_b, &ctx_a);
}

static double run_context(char *stack, size_t size)
{
    if (fiber__context_make(&ctx_a, stack, size / 2, context_entry_a) < 0 ||
        fiber__context_make(&ctx_b, stack + size / 2, size / 2, context_entry_b) < 0) {
        fprintf(stderr, "switch_bench: cannot make a context\n");
        exit(1);
    }
    double t0 = now_s();
    fiber__context_switch(&ctx_main, &ctx_a);
    return now_s() - t0;
}

/* ---- fiber_yield -------------------------------------------------------------- */

static void *yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++)
        fiber_yield();
    return NULL;
}

static void *yield_main(void *arg)
{
    double *elapsed = arg;
    fiber_task_t *a, *b;

    if (fiber_spawn(&a, yielder, NULL, NULL) < 0 ||
        fiber_spawn(&b, yielder, NULL, NULL) < 0)
        return NULL;
    double t0 = now_s();
    fiber_await(a, NULL, NULL);
    fiber_await(b, NULL, NULL);
    *elapsed = now_s() - t0;
    return arg;
}

static double run_yield(void)
{
    double elapsed = 0;
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};

    if (fiber_run(yield_main, &elapsed, &opts, NULL, NULL) < 0) {
        fprintf(stderr, "switch_bench: fiber_run failed\n");
        exit(1);
    }
    /* Two fibers each yielding `rounds` times: 2 * rounds switches, the
     * same count as `rounds` round trips elsewhere. */
    return elapsed;
}

int main(int argc, char **argv)
{
    rounds = 10000000;
    if (argc > 1) {
        char *end;
        long v = strtol(argv[1], &end, 10);
        if (*end || v < 1 || v > 1000000000) {
            fprintf(stderr, "switch_bench: N must be an integer in [1, 1e9], got '%s'\n",
                    argv[1]);
            return 2;
        }
        rounds = v;
    }

    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
        fprintf(stderr, "switch_bench: cannot map a stack\n");
        return 1;
    }

    double bare[RUNS], ctx[RUNS], yield[RUNS];
    for (int r = 0; r < RUNS; r++) {
#ifdef HAVE_BARE_SWAP
        bare[r] = run_bare(stack, size);
#else
        bare[r] = 0;
#endif
        ctx[r] = run_context(stack, size);
        yield[r] = run_yield();
    }
    double per = 1e9 / (2.0 * (double)rounds);
    double m_bare = median(bare, RUNS) * per, m_ctx = median(ctx, RUNS) * per;
    double m_yield = median(yield, RUNS) * per;

    printf("switch cost, ns per switch (median of %d runs of 2 x %ld switches)\n",
           RUNS, rounds);
#ifdef HAVE_BARE_SWAP
    printf("  %-34s %6.2f ns\n", "bare callee-saved register swap", m_bare);
#else
    (void)m_bare;
#endif
    printf("  %-34s %6.2f ns\n", "libfiber context switch", m_ctx);
    printf("  %-34s %6.2f ns\n", "fiber_yield (scheduling step)", m_yield);
#ifdef HAVE_BARE_SWAP
    printf("  %-34s %6.2f x\n", "context switch / bare swap", m_ctx / m_bare);
    printf("  %-34s %6.2f x\n", "fiber_yield / bare swap", m_yield / m_bare);
#endif
    munmap(stack, size);
    return 0;
}
