/* Mechanism: the program break (mm brk/start_brk) and brk heap contents: sbrk() grows the heap
 * 100 x 64 KiB over ~2 s, so a restored process must keep the same break and keep growing it.
 * Failure: a FAIL: line (sbrk failed, break moved, or chunk pattern corrupted).
 * Uses write(2), no malloc/stdio, so nothing else moves the break. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEPS 100
#define CHUNK (64 * 1024)
#define WORDS (CHUNK / sizeof(uint64_t))

static void out(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(2);
        }
        p += w;
        n -= w;
    }
}

static inline uint64_t pattern(unsigned step, uint64_t i)
{
    uint64_t z = ((uint64_t)step << 32 | i) * 0x9e3779b97f4a7c15ULL;
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    return z ^ (z >> 27);
}

static void sleep_ms(long ms)
{
    struct timespec req = { ms / 1000, (ms % 1000) * 1000000L }, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR)
        req = rem;
}

/* Returns the number of the first bad chunk, or -1 if all 0..n-1 are intact. */
static int verify(char *base, unsigned n)
{
    for (unsigned s = 0; s < n; s++) {
        const uint64_t *w = (const uint64_t *)(base + (size_t)s * CHUNK);
        for (uint64_t i = 0; i < WORDS; i++)
            if (w[i] != pattern(s, i))
                return (int)s;
    }
    return -1;
}

int main(void)
{
    char *base = sbrk(0);
    if (base == (char *)-1) {
        out("FAIL: sbrk(0) failed\n");
        return 1;
    }
    /* Align the start of our region to 8 bytes. */
    uintptr_t mis = (uintptr_t)base & 7;
    if (mis) {
        if (sbrk(8 - mis) == (void *)-1) {
            out("FAIL: sbrk align failed\n");
            return 1;
        }
        base += 8 - mis;
    }
    out("start\n");

    for (unsigned s = 0; s < STEPS; s++) {
        char *expect = base + (size_t)s * CHUNK;
        char *cur = sbrk(0);
        if (cur != expect) {
            out("FAIL: step %u: break moved unexpectedly (off by %ld bytes)\n", s,
                (long)(cur - expect));
            return 1;
        }
        void *p = sbrk(CHUNK);
        if (p == (void *)-1) {
            out("FAIL: step %u: sbrk(%d) failed: %s\n", s, CHUNK, strerror(errno));
            return 1;
        }
        if ((char *)p != expect) {
            out("FAIL: step %u: sbrk returned a non-contiguous chunk\n", s);
            return 1;
        }
        uint64_t *w = p;
        for (uint64_t i = 0; i < WORDS; i++)
            if (w[i] != 0) {
                out("FAIL: step %u: new brk memory is not zero-filled\n", s);
                return 1;
            }
        for (uint64_t i = 0; i < WORDS; i++)
            w[i] = pattern(s, i);
        int bad = verify(base, s + 1);
        if (bad >= 0) {
            out("FAIL: step %u: chunk %d corrupted\n", s, bad);
            return 1;
        }
        if ((s + 1) % 10 == 0)
            out("grown %u chunks\n", s + 1);
        sleep_ms(20);
    }

    /* Shrink and grow back once to check brk can also go down after a restore. */
    if (sbrk(-CHUNK) == (void *)-1 || sbrk(0) != base + (size_t)(STEPS - 1) * CHUNK) {
        out("FAIL: shrinking the break failed\n");
        return 1;
    }
    if (sbrk(CHUNK) == (void *)-1) {
        out("FAIL: regrowing the break failed\n");
        return 1;
    }
    const uint64_t *last = (const uint64_t *)(base + (size_t)(STEPS - 1) * CHUNK);
    for (uint64_t i = 0; i < WORDS; i++)
        if (last[i] != 0) {
            out("FAIL: regrown chunk is not zero-filled\n");
            return 1;
        }
    uint64_t *lw = (uint64_t *)last;
    for (uint64_t i = 0; i < WORDS; i++)
        lw[i] = pattern(STEPS - 1, i);

    int bad = verify(base, STEPS);
    if (bad >= 0) {
        out("FAIL: final check: chunk %d corrupted\n", bad);
        return 1;
    }
    if ((char *)sbrk(0) != base + (size_t)STEPS * CHUNK) {
        out("FAIL: final break is not start + %d bytes\n", STEPS * CHUNK);
        return 1;
    }
    out("brk grew by %d chunks of %d bytes, all verified\n", STEPS, CHUNK);
    return 0;
}
