/* Bench workload for migration: touches N MiB (argv[1]), starts K more
 * threads that sleep (argv[2], default 0), prints its pid and "waiting", then reads the clock in a tight loop, keeping the longest gap
 * between two readings: a migration freezes it for that long. On SIGTERM
 * (sent to its home PID, so the handler runs wherever it is) it prints
 * "gap NS" and exits. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void on_term(int sig)
{
    (void)sig;
    done = 1;
}

static int64_t now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    size_t len = (argc > 1 ? strtoul(argv[1], 0, 10) : 1) << 20;
    uint64_t *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < len / 8; i++)
        p[i] = i * 0x9e3779b97f4a7c15ULL;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL); /* the sleepers' */
    for (long k = argc > 2 ? strtol(argv[2], 0, 10) : 0; k > 0; k--) {
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL) != 0)
            return 1;
    }
    pthread_sigmask(SIG_UNBLOCK, &term, NULL);
    signal(SIGTERM, on_term);
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    int64_t last = now(), gap = 0;
    while (!done) {
        int64_t t = now();
        if (t - last > gap)
            gap = t - last;
        last = t;
    }
    printf("gap %lld\n", (long long)gap);
    return 0;
}
