/* Bench workload: after "waiting" it spins ~1 s (the bench migrates it
 * then), then times N getppid() and N pread() of 4 KiB and prints the mean
 * cost of each in nanoseconds. argv[1] = a file of at least 4 KiB. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = 20000;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    double start = now();
    while (now() - start < 1.0)
        ;
    int fd = open(argc > 1 ? argv[1] : "/etc/passwd", O_RDONLY);
    static char buf[4096];
    double t0 = now();
    for (int i = 0; i < n; i++)
        getppid();
    double t1 = now();
    for (int i = 0; i < n; i++)
        if (pread(fd, buf, sizeof buf, 0) < 0)
            return 1;
    double t2 = now();
    printf("getppid %.0f\npread4k %.0f\n", (t1 - t0) / n * 1e9, (t2 - t1) / n * 1e9);
    return 0;
}
