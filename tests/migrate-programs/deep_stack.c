/* Recursion 64 MiB deep, after 1.5 s of CPU-bound work (moved
 * meanwhile): it needs the stack limit its shell gave it (`ulimit -s
 * unlimited`), as its own kernel enforces it wherever it runs. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long deep(long n)
{
    volatile char frame[1024];
    memset((char *)frame, (int)n, sizeof frame);
    if (n == 0)
        return frame[0];
    return deep(n - 1) + frame[n % sizeof frame];
}

int main(void)
{
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    double end = now() + 1.5;
    while (now() < end)
        ;
    long r = deep(64 * 1024);
    printf("deep %ld\n", r & 1);
    return 0;
}
