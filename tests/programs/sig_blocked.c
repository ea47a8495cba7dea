/* Mechanism: blocked-signal mask and pending signals. SIGUSR2 and SIGTERM are blocked and
 * SIGUSR2 is raised (pending) before "waiting"; after ~2 s of busy work the mask must be
 * exactly as set and exactly SIGUSR2 pending; unblocking must then run its handler once.
 * Failure: a FAIL: line (pending signal lost/extra, mask changed, handler not run). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUSY_ITERS 1000000000ULL

static volatile sig_atomic_t usr2_count;

static void on_usr2(int sig)
{
    (void)sig;
    usr2_count++;
}

/* Compare two sets over every kernel signal number. Returns the first differing
 * signal, or 0 if equal. */
static int set_diff(const sigset_t *a, const sigset_t *b)
{
    for (int s = 1; s <= SIGRTMAX; s++)
        if (sigismember(a, s) != sigismember(b, s))
            return s;
    return 0;
}

static int busy(void)
{
    uint64_t x = 0x243f6a8885a308d3ULL, y = 0x13198a2e03707344ULL;
    for (uint64_t i = 0; i < BUSY_ITERS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        y = y * 6364136223846793005ULL + x;
        __asm__ volatile("" : "+r"(x), "+r"(y));
    }
    return (int)((x ^ y) & 0xff);
}

int main(void)
{
    int ok = 1;
    sigset_t want_mask, cur_mask, want_pending, pending;

    sigemptyset(&want_mask);
    sigaddset(&want_mask, SIGUSR2);
    sigaddset(&want_mask, SIGTERM);
    if (sigprocmask(SIG_SETMASK, &want_mask, NULL) != 0) {
        printf("FAIL: sigprocmask\n");
        return 1;
    }
    /* The kernel's view of the mask is the reference (glibc may hide internal signals). */
    sigprocmask(SIG_SETMASK, NULL, &want_mask);

    if (raise(SIGUSR2) != 0) {
        printf("FAIL: raise\n");
        return 1;
    }
    sigemptyset(&want_pending);
    sigaddset(&want_pending, SIGUSR2);

    printf("waiting\n");
    fflush(stdout);

    int r = busy();
    printf("busy work done %d\n", r);

    sigpending(&pending);
    int d = set_diff(&pending, &want_pending);
    if (d) {
        printf("FAIL: pending set differs at signal %d (%s)\n", d,
               sigismember(&pending, d) ? "unexpectedly pending" : "lost");
        ok = 0;
    } else {
        printf("SIGUSR2 still pending\n");
    }
    sigprocmask(SIG_SETMASK, NULL, &cur_mask);
    d = set_diff(&cur_mask, &want_mask);
    if (d) {
        printf("FAIL: blocked mask differs at signal %d\n", d);
        ok = 0;
    } else {
        printf("mask unchanged\n");
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL); /* the pending SIGUSR2 is delivered here */
    if (usr2_count != 1) {
        printf("FAIL: SIGUSR2 handler ran %d times after unblocking\n", (int)usr2_count);
        ok = 0;
    } else {
        printf("SIGUSR2 handler ran\n");
    }

    sigpending(&pending);
    sigemptyset(&want_pending);
    if ((d = set_diff(&pending, &want_pending))) {
        printf("FAIL: signal %d still pending after unblocking\n", d);
        ok = 0;
    }
    sigprocmask(SIG_SETMASK, NULL, &cur_mask);
    if (sigismember(&cur_mask, SIGTERM) != 1 || sigismember(&cur_mask, SIGUSR2) != 0) {
        printf("FAIL: mask after unblocking is wrong\n");
        ok = 0;
    }
    if (ok)
        printf("ok\n");
    fflush(stdout);
    return ok ? 0 : 1;
}
