/*
 * sanitizers.h - which memory checker the library runs under, for the few
 * places that must tell it about stacks: FIBER__ASAN and FIBER__TSAN when
 * compiled with AddressSanitizer or ThreadSanitizer, and the Valgrind client
 * requests (no-ops when Valgrind's headers are missing; harmless outside
 * Valgrind).
 */
#ifndef FIBER_SANITIZERS_H
#define FIBER_SANITIZERS_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define FIBER__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FIBER__ASAN)
#define FIBER__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(FIBER__TSAN)
#define FIBER__TSAN 1
#endif

#ifdef FIBER__ASAN
#include <sanitizer/asan_interface.h>
#endif

/*
 * Forget AddressSanitizer's marks on stack memory being unmapped or given
 * back for reuse.  A fiber abandoned by its loop (after a deadlock, or in
 * an unbounded shield) never returns from its frames, so their red zones
 * stay in the shadow; whatever is mapped there next, a stack or any other
 * memory, would inherit them and be reported for reads that are fine.
 * Nothing without ASan.
 */
static inline void fiber__asan_forget(void *addr, size_t len)
{
#ifdef FIBER__ASAN
    __asan_unpoison_memory_region(addr, len);
#else
    (void)addr;
    (void)len;
#endif
}

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(start, end) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, len) ((void)(addr), (void)(len))
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif

#endif
