/* Mechanism: a process checkpointed while blocked in nanosleep(); after restore the
 * interrupted sleep must resume (EINTR + remaining time, or restart_syscall) and the
 * total sleep must still last at least the requested time.
 * Failure: a FAIL: line (nanosleep error other than EINTR, or it returned early). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    struct timespec req = { 2, 0 }, rem;
    double t0 = now();

    printf("waiting\n");
    fflush(stdout);

    int rc;
    while ((rc = nanosleep(&req, &rem)) == -1 && errno == EINTR)
        req = rem;
    if (rc != 0) {
        printf("FAIL: nanosleep: %s\n", strerror(errno));
        return 1;
    }
    double elapsed = now() - t0;
    if (elapsed < 1.9) {
        printf("FAIL: slept only %.3f s (< 1.9 s)\n", elapsed);
        return 1;
    }
    printf("slept enough\n");
    fflush(stdout);
    return 0;
}
