/* Deliberately uses MAP_SHARED|MAP_ANONYMOUS memory (negative test): checkpoint must refuse
 * it (shared mappings are unsupported) and the process must keep running unharmed, still
 * printing the correct contents of the mapping and exiting 0.
 * Failure: a FAIL: line (mapping contents changed), or different output than native. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#define MAP_LEN (1 << 20)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned char pat(size_t i)
{
    return (unsigned char)((i * 131u + 7u) ^ (i >> 8));
}

int main(void)
{
    unsigned char *m = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    if (m == MAP_FAILED) {
        printf("FAIL: mmap MAP_SHARED\n");
        return 1;
    }
    for (size_t i = 0; i < MAP_LEN; i++)
        m[i] = pat(i);

    printf("waiting\n");
    fflush(stdout);

    /* ~5 s of busy work, re-checking the mapping as we go. */
    int64_t t0 = now_ns();
    uint64_t x = 1;
    while (now_ns() - t0 < 5000000000LL) {
        for (size_t i = 0; i < MAP_LEN; i += 4096) {
            if (m[i] != pat(i)) {
                printf("FAIL: shared mapping byte %zu changed\n", i);
                return 1;
            }
        }
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x));
    }
    for (size_t i = 0; i < MAP_LEN; i++)
        if (m[i] != pat(i)) {
            printf("FAIL: shared mapping byte %zu changed\n", i);
            return 1;
        }
    printf("first bytes:");
    for (int i = 0; i < 16; i++)
        printf(" %02x", m[i]);
    printf("\n");
    munmap(m, MAP_LEN);
    printf("done\n");
    fflush(stdout);
    return 0;
}
