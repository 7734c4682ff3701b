/*
 * stack_use.h - a fiber that uses a chosen amount of its stack, for the
 * tests that measure stack use (test_debug, test_dump).
 */
#ifndef STACK_USE_H
#define STACK_USE_H

#include <stdint.h>

/* Touch about kib KiB of stack, in a way the compiler cannot flatten. */
__attribute__((noinline)) static int use_stack(int kib)
{
    volatile char frame[1024];

    frame[0] = (char)kib;
    frame[sizeof(frame) - 1] = (char)kib;
    /* The frame's address escapes, so the compiler must keep it whole. */
    __asm__ volatile("" : : "r"(frame) : "memory");
    if (kib <= 1)
        return frame[0];
    return use_stack(kib - 1) + frame[sizeof(frame) - 1];
}

/* A fiber that uses *(int *)arg KiB of stack. */
__attribute__((unused)) static void *recurse_kib(void *arg)
{
    return (void *)(intptr_t)use_stack(*(int *)arg);
}

#endif
