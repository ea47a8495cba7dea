/* Three threads compute while a fourth waits in read(0) of a pipe from
 * home, and a POSIX timer signals one computing thread by its TID
 * (SIGEV_THREAD_ID, SIGUSR2, every 5 ms). Prints "ready"; the reader
 * prints each line it reads ("got first", then "got stop"), and "stop"
 * ends the computing. Then: whether every timer tick ran in its thread
 * (the handler compares gettid() with the TID the thread had at its
 * start), and whether the timer ticked between the two lines (the test
 * moves the process between them). Output is deterministic. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define COMPUTING 3

static volatile sig_atomic_t ticks, wrong, at_first = -1;
static volatile int stop;
static pid_t target;
static pthread_barrier_t started;

static pid_t tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void on_tick(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    if (tid() == target && si->si_code == SI_TIMER && si->si_value.sival_int == 42)
        ticks++;
    else
        wrong++;
}

static void *compute(void *arg)
{
    long me = (long)arg;
    /* The timer's signal is for thread 1 only, which unblocks it; the
     * others keep it blocked as main made them, so a tick aimed at any
     * other thread would wait there, never counted. */
    if (me == 1) {
        target = tid();
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    pthread_barrier_wait(&started);
    volatile unsigned long x = 0;
    while (!stop)
        x++;
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    char line[64];
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r <= 0) {
            printf("reader: end of input\n");
            stop = 1;
            return NULL;
        }
        if (c != '\n' && n < sizeof line - 1) {
            line[n++] = c;
            continue;
        }
        line[n] = 0;
        n = 0;
        printf("got %s\n", line);
        if (at_first < 0) {
            at_first = ticks;
        } else {
            printf("ticked between the lines: %s\n", ticks > at_first ? "yes" : "no");
        }
        fflush(stdout);
        if (strcmp(line, "stop") == 0) {
            stop = 1;
            return NULL;
        }
    }
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    /* Blocked here, so in every thread made after (thread 1 unblocks
     * it). */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    pthread_barrier_init(&started, NULL, COMPUTING + 1);
    pthread_t t[COMPUTING], r;
    for (long i = 0; i < COMPUTING; i++)
        pthread_create(&t[i], NULL, compute, (void *)i);
    pthread_barrier_wait(&started);
    pthread_create(&r, NULL, reader, NULL);

    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_value.sival_int = 42;
    ev._sigev_un._tid = target;
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
        perror("timer_create");
        return 1;
    }
    struct itimerspec its = {{0, 5000000}, {0, 5000000}};
    timer_settime(timer, 0, &its, NULL);
    printf("ready\n");
    fflush(stdout);

    pthread_join(r, NULL);
    for (int i = 0; i < COMPUTING; i++)
        pthread_join(t[i], NULL);
    /* A tick sent to the process or to main would wait in main. */
    sigset_t pending;
    sigpending(&pending);
    printf("timer ticks all in their thread: %s\n",
           wrong == 0 && ticks > 0 && !sigismember(&pending, SIGUSR2) ? "yes" : "no");
    return 0;
}
