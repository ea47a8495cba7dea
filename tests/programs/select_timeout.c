/* Mechanism: a process checkpointed while blocked in select() with a timeout. After
 * restore the call must resume or fail with EINTR (Linux writes the remaining time back
 * into the timeval, which the loop reuses) and the total wait must be >= the timeout.
 * Failure: a FAIL: line (select error, fd reported ready, or it returned early). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    struct timeval tv = { 2, 0 };
    double t0 = now();

    printf("waiting\n");
    fflush(stdout);

    int rc;
    for (;;) {
        rc = select(0, NULL, NULL, NULL, &tv);
        if (rc == -1 && errno == EINTR)
            continue; /* tv now holds the remaining time */
        break;
    }
    if (rc != 0) {
        printf("FAIL: select returned %d (%s)\n", rc, rc < 0 ? strerror(errno) : "ready?");
        return 1;
    }
    if (tv.tv_sec != 0 || tv.tv_usec != 0) {
        printf("FAIL: timeout expired but timeval not zeroed\n");
        return 1;
    }
    double elapsed = now() - t0;
    if (elapsed < 1.9) {
        printf("FAIL: select waited only %.3f s (< 1.9 s)\n", elapsed);
        return 1;
    }
    printf("timeout ok\n");
    fflush(stdout);
    return 0;
}
