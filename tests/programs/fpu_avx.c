/* Mechanism: FPU/SIMD state: x87 (long double + control word), SSE (scalar doubles,
 * MXCSR rounding mode) and AVX2 (full 256-bit ymm accumulators live across the loop).
 * Rounding is set to "upward" at start so a lost MXCSR/x87 control word changes results.
 * Failure: printed values differ from a native run, or a FAIL: line about the control regs. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ITERS 180000000L

static uint16_t get_x87_cw(void)
{
    uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

static void set_x87_cw(uint16_t cw)
{
    __asm__ volatile("fldcw %0" : : "m"(cw));
}

/* Result of one run; printed with %.17g / %.21Lg. */
struct result {
    double s[4];      /* scalar SSE chains */
    long double x;    /* x87 chain */
    double v[16];     /* 4 x __m256d accumulators */
    double t[2];      /* scalar chains live inside the AVX loop */
    long double y;    /* x87 chain live inside the AVX loop */
};

/* Scalar SSE and x87 work only (legacy SSE encoding, non-AVX function). */
__attribute__((noinline)) static void scalar_part(struct result *r, long iters)
{
    double s0 = 1.0, s1 = 0.5, s2 = 0.25, s3 = 2.0;
    long double x = 1.0L;
    for (long i = 0; i < iters; i++) {
        double di = (double)(i & 1023);
        s0 = s0 * 0.999999 + di * 1e-7;
        s1 = s1 * 1.000001 - s0 * 1e-9;
        s2 = s2 + s1 / (s0 + 3.0);
        s3 = s3 * 0.9999999 + 1e-3 / (s2 + 1.0);
        x = x * 0.99999999L + (long double)s3 * 1e-8L;
        __asm__ volatile("" : "+x"(s0), "+x"(s1), "+x"(s2), "+x"(s3), "+t"(x));
    }
    r->s[0] = s0; r->s[1] = s1; r->s[2] = s2; r->s[3] = s3;
    r->x = x;
}

__attribute__((target("avx2"), noinline)) static void avx_part(struct result *r, long iters)
{
    __m256d a = _mm256_set_pd(1.0, 2.0, 3.0, 4.0);
    __m256d b = _mm256_set_pd(0.1, 0.2, 0.3, 0.4);
    __m256d c = _mm256_set_pd(-1.0, 0.5, -0.25, 0.125);
    __m256d d = _mm256_set1_pd(1.0);
    const __m256d k1 = _mm256_set1_pd(0.9999999);
    const __m256d k2 = _mm256_set_pd(1e-7, 2e-7, 3e-7, 4e-7);
    const __m256d k3 = _mm256_set1_pd(1.0000001);
    __m256d step = _mm256_set_pd(1e-9, 3e-9, 5e-9, 7e-9);
    double t0 = 0.75, t1 = 1.25;
    long double y = 3.0L;
    for (long i = 0; i < iters; i++) {
        t0 = t0 * 0.9999997 + (double)(i & 255) * 1e-8;
        t1 = t1 + t0 / (t1 + 7.0);
        y = y * 0.999999999L + (long double)t0 * 1e-9L;
        a = _mm256_add_pd(_mm256_mul_pd(a, k1), k2);
        b = _mm256_add_pd(_mm256_mul_pd(b, k3), _mm256_mul_pd(a, step));
        c = _mm256_sub_pd(c, _mm256_div_pd(b, _mm256_add_pd(a, d)));
        d = _mm256_add_pd(_mm256_mul_pd(d, k1), _mm256_permute4x64_pd(c, 0x39) * 1e-6);
        step = _mm256_add_pd(step, _mm256_set1_pd(1e-18));
        __asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d), "+x"(step),
                         "+x"(t0), "+x"(t1), "+t"(y));
    }
    r->t[0] = t0; r->t[1] = t1; r->y = y;
    _mm256_storeu_pd(&r->v[0], a);
    _mm256_storeu_pd(&r->v[4], b);
    _mm256_storeu_pd(&r->v[8], c);
    _mm256_storeu_pd(&r->v[12], d);
}

int main(void)
{
    struct result r;
    int ok = 1;
    memset(&r, 0, sizeof r);

    printf("start\n");
    fflush(stdout);

    /* Non-default rounding: MXCSR RC=10 (up), x87 RC=10 (up). */
    uint32_t mxcsr0 = _mm_getcsr();
    uint16_t cw0 = get_x87_cw();
    _mm_setcsr((mxcsr0 & ~0x6000u) | 0x4000u);
    set_x87_cw((uint16_t)((cw0 & ~0x0C00u) | 0x0800u));

    scalar_part(&r, ITERS / 3);
    int have_avx2 = __builtin_cpu_supports("avx2");
    if (have_avx2)
        avx_part(&r, ITERS);

    if ((_mm_getcsr() & 0x6000u) != 0x4000u) {
        printf("FAIL: MXCSR rounding mode lost (expected upward)\n");
        ok = 0;
    }
    if ((get_x87_cw() & 0x0C00u) != 0x0800u) {
        printf("FAIL: x87 control word rounding mode lost (expected upward)\n");
        ok = 0;
    }
    _mm_setcsr(mxcsr0);
    set_x87_cw(cw0);

    for (int i = 0; i < 4; i++)
        printf("s%d = %.17g\n", i, r.s[i]);
    printf("x87 = %.21Lg\n", r.x);
    if (have_avx2) {
        for (int i = 0; i < 16; i++)
            printf("v%d = %.17g\n", i, r.v[i]);
        printf("t0 = %.17g\nt1 = %.17g\n", r.t[0], r.t[1]);
        printf("y87 = %.21Lg\n", r.y);
    } else {
        printf("avx2 unsupported\n");
    }
    fflush(stdout);
    return ok ? 0 : 1;
}
