/* Puts itself under a seccomp filter (negative test): a checkpoint would lose the filter, so
 * it must be refused, and the process must keep running unharmed and exit 0. mosaic's own
 * guests run under such a filter, so this is also what keeps a node from capturing a guest
 * as if it were one of its own processes.
 * Failure: a FAIL: line, or an exit code other than 0. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
    /* The smallest filter: allow everything. */
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {.len = 1, .filter = allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        printf("FAIL: cannot install a seccomp filter\n");
        return 1;
    }
    printf("waiting\n");
    fflush(stdout);
    int64_t t0 = now_ns();
    uint64_t x = 1;
    while (now_ns() - t0 < 4000000000LL) {
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x));
    }
    printf("done\n");
    return 0;
}
