/* Mechanism: a large private anonymous heap (512 MiB malloc = one big mmap) dumped and
 * restored intact while being read; each of 3 passes checks every word and re-checksums.
 * Failure: a FAIL: line (pattern mismatch / checksums differ between passes) or a printed
 * checksum different from the native run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SIZE (512UL << 20)
#define WORDS (SIZE / sizeof(uint64_t))
#define PASSES 3

static inline uint64_t pattern(uint64_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ULL + 0x1234567ULL;
    z ^= z >> 31;
    z *= 0xbf58476d1ce4e5b9ULL;
    return z ^ (z >> 29);
}

/* Deliberately slow, serial hash of every word so one pass takes ~0.5 s. */
static uint64_t checksum(const uint64_t *buf, int *bad, uint64_t *bad_index)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint64_t i = 0; i < WORDS; i++) {
        uint64_t w = buf[i];
        if (w != pattern(i) && !*bad) {
            *bad = 1;
            *bad_index = i;
        }
        h ^= w;
        for (int r = 0; r < 2; r++) {
            h *= 0x100000001b3ULL;
            h ^= h >> 27;
            h *= 0x94d049bb133111ebULL;
            h ^= h >> 31;
        }
    }
    return h;
}

int main(void)
{
    uint64_t *buf = malloc(SIZE);
    if (!buf) {
        printf("FAIL: malloc of 512 MiB failed\n");
        return 1;
    }
    printf("allocated 512 MiB\n");
    fflush(stdout);

    for (uint64_t i = 0; i < WORDS; i++)
        buf[i] = pattern(i);
    printf("filled\n");
    fflush(stdout);

    uint64_t first = 0;
    for (int p = 0; p < PASSES; p++) {
        int bad = 0;
        uint64_t bad_index = 0;
        uint64_t h = checksum(buf, &bad, &bad_index);
        if (bad) {
            printf("FAIL: pass %d: word %llu does not match the pattern\n", p + 1,
                   (unsigned long long)bad_index);
            return 1;
        }
        if (p == 0)
            first = h;
        else if (h != first) {
            printf("FAIL: pass %d checksum %016llx differs from pass 1 %016llx\n", p + 1,
                   (unsigned long long)h, (unsigned long long)first);
            return 1;
        }
        printf("pass %d checksum %016llx\n", p + 1, (unsigned long long)h);
        fflush(stdout);
    }
    free(buf);
    printf("ok\n");
    fflush(stdout);
    return 0;
}
