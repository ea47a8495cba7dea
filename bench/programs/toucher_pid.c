/* Bench workload for migration: touches N MiB (argv[1]), prints its pid and
 * "waiting", then sleeps in pause() until killed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t len = (argc > 1 ? strtoul(argv[1], 0, 10) : 1) << 20;
    uint64_t *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < len / 8; i++)
        p[i] = i * 0x9e3779b97f4a7c15ULL;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    for (;;)
        pause();
}
