/* Two threads: a second pthread spins while main sleeps in nanosleep (5 x 1 s). Checkpointed
 * and restored mid-run, both threads go on: the output is the same and it exits 0.
 * Failure: a FAIL: line (thread creation/join failed or the spinner stopped making progress). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile int stop;
static volatile uint64_t spins;

static void *spinner(void *arg)
{
    (void)arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    while (!stop) {
        for (int i = 0; i < 10000; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x));
        spins++;
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, spinner, NULL);
    if (rc != 0) {
        printf("FAIL: pthread_create: %s\n", strerror(rc));
        return 1;
    }
    printf("waiting\n");
    fflush(stdout);

    uint64_t before = spins;
    for (int i = 0; i < 5; i++) {
        struct timespec req = { 1, 0 };
        while (nanosleep(&req, &req) != 0 && errno == EINTR)
            ;
    }
    uint64_t after = spins;
    stop = 1;
    rc = pthread_join(t, NULL);
    if (rc != 0) {
        printf("FAIL: pthread_join: %s\n", strerror(rc));
        return 1;
    }
    if (after == before) {
        printf("FAIL: spinner thread made no progress\n");
        return 1;
    }
    printf("done\n");
    fflush(stdout);
    return 0;
}
