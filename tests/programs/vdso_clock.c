/* Mechanism: the vDSO (clock_gettime/gettimeofday via glibc) keeps working after restore:
 * the restored process must have a usable vDSO/vvar mapping at the addresses glibc cached.
 * Checks CLOCK_MONOTONIC never goes backwards, agrees with the real syscall, and that
 * >= 2 s elapsed. Failure: a FAIL: line, or a crash (SIGSEGV) inside the vDSO. */
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

int main(void)
{
    struct timespec t0, t, prev, sys;
    struct timeval tv0, tv, tvprev;
    int ok = 1;
    uint64_t iters = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    gettimeofday(&tv0, NULL);
    prev = t0;
    tvprev = tv0;
    for (;;) {
        if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
            printf("FAIL: clock_gettime failed\n");
            return 1;
        }
        if (ns(&t) < ns(&prev)) {
            printf("FAIL: CLOCK_MONOTONIC went backwards by %lld ns\n",
                   (long long)(ns(&prev) - ns(&t)));
            ok = 0;
            break;
        }
        if (gettimeofday(&tv, NULL) != 0) {
            printf("FAIL: gettimeofday failed\n");
            return 1;
        }
        int64_t us = (tv.tv_sec - tvprev.tv_sec) * 1000000LL + (tv.tv_usec - tvprev.tv_usec);
        if (us < -1000000) { /* tolerate small NTP steps of the wall clock */
            printf("FAIL: gettimeofday went backwards by %lld us\n", (long long)-us);
            ok = 0;
            break;
        }
        /* Every so often: vDSO reading <= raw syscall <= vDSO reading. */
        if ((iters & 0xfff) == 0) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &sys);
            clock_gettime(CLOCK_MONOTONIC, &b);
            if (ns(&a) > ns(&sys) || ns(&sys) > ns(&b)) {
                printf("FAIL: vDSO CLOCK_MONOTONIC disagrees with the syscall\n");
                ok = 0;
                break;
            }
        }
        prev = t;
        tvprev = tv;
        iters++;
        if (ns(&t) - ns(&t0) >= 2500000000LL)
            break;
    }
    if (ok) {
        int64_t mono = ns(&t) - ns(&t0);
        int64_t wall = (tv.tv_sec - tv0.tv_sec) * 1000000LL + (tv.tv_usec - tv0.tv_usec);
        if (mono < 2000000000LL) {
            printf("FAIL: CLOCK_MONOTONIC advanced only %lld ms\n", (long long)(mono / 1000000));
            ok = 0;
        } else if (wall < 2000000LL) {
            printf("FAIL: gettimeofday advanced only %lld ms\n", (long long)(wall / 1000));
            ok = 0;
        } else if (iters < 1000) {
            printf("FAIL: only %llu clock reads in 2.5 s\n", (unsigned long long)iters);
            ok = 0;
        }
    }
    if (ok)
        printf("monotonic ok\n");
    fflush(stdout);
    return ok ? 0 : 1;
}
