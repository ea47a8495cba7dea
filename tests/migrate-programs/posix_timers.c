/* Two POSIX timers ticking every 10 ms: one SIGEV_SIGNAL (SIGUSR1, value
 * 111), one SIGEV_THREAD_ID to its own thread (SIGUSR2, value 222). For
 * 30 windows of 100 ms of CPU-bound work it prints the ticks each timer
 * gave in the window ("w A B"); a tick with the wrong value counts as bad.
 * At the end both timers must still be there under their ids. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks[2], bad;

static void on_tick(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int which = sig == SIGUSR1 ? 0 : 1;
    if (si->si_value.sival_int != (which ? 222 : 111) || si->si_code != SI_TIMER)
        bad++;
    ticks[which]++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    timer_t id[2];
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    sev.sigev_value.sival_int = 111;
    if (timer_create(CLOCK_MONOTONIC, &sev, &id[0]))
        return 2;
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev._sigev_un._tid = syscall(SYS_gettid); /* sigev_notify_thread_id */
    sev.sigev_signo = SIGUSR2;
    sev.sigev_value.sival_int = 222;
    if (timer_create(CLOCK_MONOTONIC, &sev, &id[1]))
        return 3;
    struct itimerspec its = {{0, 10000000}, {0, 10000000}};
    for (int i = 0; i < 2; i++)
        if (timer_settime(id[i], 0, &its, NULL))
            return 4;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    int seen[2] = {0, 0};
    for (int w = 0; w < 30; w++) {
        double end = now() + 0.1;
        while (now() < end)
            ;
        int a = ticks[0], b = ticks[1];
        printf("w %d %d\n", a - seen[0], b - seen[1]);
        fflush(stdout);
        seen[0] = a;
        seen[1] = b;
    }
    struct itimerspec left;
    for (int i = 0; i < 2; i++)
        if (timer_gettime(id[i], &left) || left.it_interval.tv_nsec != 10000000)
            return 5;
    for (int i = 0; i < 2; i++)
        if (timer_delete(id[i]))
            return 6;
    printf("bad %d\n", (int)bad);
    return 0;
}
