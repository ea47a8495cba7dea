/* Mechanism: rseq registration (glibc >= 2.35 registers each thread's struct rseq). After
 * restore the kernel must again be updating the same rseq area: sched_getcpu() (which reads
 * rseq->cpu_id) must follow explicit CPU pinning, and re-registering must fail with EBUSY.
 * Failure: a FAIL: line (CPU id out of range or stale, or rseq no longer registered). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define HAVE_SYS_RSEQ 1
#endif
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#ifdef HAVE_SYS_RSEQ
static struct rseq *rseq_area(void)
{
    char *tp;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));
#else
    tp = __builtin_thread_pointer();
#endif
    return (struct rseq *)(tp + __rseq_offset);
}

/* 1 if the kernel says this exact area is already registered, 0 if not, -1 unknown. */
static int rseq_still_registered(struct rseq *rs)
{
#ifdef SYS_rseq
    unsigned lens[2] = { 32, __rseq_size };
    for (int i = 0; i < 2; i++) {
        long rc = syscall(SYS_rseq, rs, lens[i], 0, RSEQ_SIG);
        if (rc == 0)
            return 0; /* we just registered it: it was not registered before */
        if (errno == EBUSY)
            return 1;
    }
#else
    (void)rs;
#endif
    return -1;
}
#endif

int main(void)
{
    int ok = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    if (ncpu < 1)
        ncpu = 1;
    cpu_set_t orig;
    if (sched_getaffinity(0, sizeof orig, &orig) != 0) {
        printf("FAIL: sched_getaffinity: %s\n", strerror(errno));
        return 1;
    }

    printf("start\n");
#ifdef HAVE_SYS_RSEQ
    struct rseq *rs = NULL;
    if (__rseq_size > 0) {
        rs = rseq_area();
        printf("rseq registered\n");
        if (rseq_still_registered(rs) == 0) {
            printf("FAIL: glibc claims rseq but the kernel had it unregistered\n");
            return 1;
        }
    } else {
        printf("rseq not registered\n");
    }
#else
    printf("rseq not registered (no <sys/rseq.h>)\n");
#endif
    fflush(stdout);

    int64_t t0 = now_ns();
    uint64_t iters = 0, pins = 0;
    int next = 0;
    while (ok && now_ns() - t0 < 2500000000LL) {
        int c = sched_getcpu();
        if (c < 0 || c >= ncpu) {
            printf("FAIL: sched_getcpu returned %d, not in [0, %ld)\n", c, ncpu);
            ok = 0;
            break;
        }
        if (++iters % 20000 != 0)
            continue;

        /* Pin to the next originally-allowed CPU and check that the reported CPU follows. */
        for (int k = 0; k < CPU_SETSIZE; k++) {
            next = (next + 1) % CPU_SETSIZE;
            if (CPU_ISSET(next, &orig))
                break;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(next, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0)
            continue; /* e.g. CPU not allowed in the restored environment */
        pins++;
        c = sched_getcpu();
        if (c != next) {
            printf("FAIL: pinned to CPU %d but sched_getcpu says %d (stale rseq cpu_id?)\n",
                   next, c);
            ok = 0;
        }
#ifdef HAVE_SYS_RSEQ
        if (rs) {
            if ((int)rs->cpu_id != next || (int)rs->cpu_id_start != next) {
                printf("FAIL: pinned to CPU %d but rseq cpu_id=%d cpu_id_start=%u\n", next,
                       (int)rs->cpu_id, rs->cpu_id_start);
                ok = 0;
            }
            if (rseq_still_registered(rs) == 0) {
                printf("FAIL: rseq area is no longer registered with the kernel\n");
                ok = 0;
            }
        }
#endif
    }
    sched_setaffinity(0, sizeof orig, &orig);
    if (ok && pins == 0) {
        printf("FAIL: could not pin to any CPU\n");
        ok = 0;
    }
    if (ok)
        printf("cpu ok\n");
    fflush(stdout);
    return ok ? 0 : 1;
}
