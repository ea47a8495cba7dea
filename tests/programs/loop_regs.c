/* Mechanism: general-purpose integer registers (rax..r15, rip, flags) captured and
 * restored mid-loop. The hot loop keeps all state in registers and writes no memory.
 * Failure: the printed final values differ from a native run, i.e. some register was
 * lost or corrupted across checkpoint/restore. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#define ITERS 500000000ULL

__attribute__((noinline)) static void run(uint64_t out[8])
{
    uint64_t a = 0x9e3779b97f4a7c15ULL, b = 0xbf58476d1ce4e5b9ULL;
    uint64_t c = 0x94d049bb133111ebULL, d = 0x2545f4914f6cdd1dULL;
    uint64_t e = 1, f = 2, g = 3, h = 4;
    for (uint64_t i = 0; i < ITERS; i++) {
        /* four xorshift64 chains */
        a ^= a << 13; a ^= a >> 7; a ^= a << 17;
        b ^= b << 13; b ^= b >> 7; b ^= b << 17;
        c ^= c << 13; c ^= c >> 7; c ^= c << 17;
        d ^= d << 13; d ^= d >> 7; d ^= d << 17;
        /* LCG chains mixed with the xorshift chains */
        e = e * 6364136223846793005ULL + 1442695040888963407ULL;
        f = f * 2862933555777941757ULL + (a >> 32);
        g += b ^ (g >> 3);
        h = (h << 1 | h >> 63) ^ c ^ i;
        /* an empty asm keeps gcc from vectorising/restructuring and pins them in regs */
        __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d),
                              "+r"(e), "+r"(f), "+r"(g), "+r"(h));
    }
    out[0] = a; out[1] = b; out[2] = c; out[3] = d;
    out[4] = e; out[5] = f; out[6] = g; out[7] = h;
}

int main(void)
{
    uint64_t v[8];
    printf("start\n");
    fflush(stdout);
    run(v);
    for (int i = 0; i < 8; i++)
        printf("r%d = %016llx\n", i, (unsigned long long)v[i]);
    fflush(stdout);
    return 0;
}
