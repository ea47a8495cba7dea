/* Counts ticks of 100 ms of CPU-bound work into a file (argv[1], rewritten
 * at offset 0 each tick), so a test can see whether it runs; after 80
 * ticks it exits with 5. Job control tests stop and continue it. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    for (int tick = 1; tick <= 80; tick++) {
        double end = now() + 0.1;
        while (now() < end)
            ;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%08d\n", tick);
        if (pwrite(fd, buf, n, 0) != n)
            return 4;
    }
    return 5;
}
