/* Bench workload: argv[1] = T threads, started at once and held at a
 * barrier; prints its pid and "waiting", spins ~1 s (the bench migrates it
 * then), then the T threads make 20000 getppid() calls between them and it
 * prints "calls_per_s X" (calls of all threads over the time from the
 * barrier to the last thread's end). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CALLS 20000

static pthread_barrier_t go;
static long each;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *caller(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&go);
    for (long i = 0; i < each; i++)
        getppid();
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 64)
        return 2;
    each = CALLS / n;
    pthread_t t[64];
    pthread_barrier_init(&go, NULL, n + 1);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, caller, NULL) != 0)
            return 1;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    double start = now();
    while (now() - start < 1.0)
        ;
    double t0 = now();
    pthread_barrier_wait(&go);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    double t1 = now();
    printf("calls_per_s %.0f\n", (double)(each * n) / (t1 - t0));
    return 0;
}
