/* Signals queued while blocked travel once: SIGUSR1 raised twice (one
 * pending, standard signals coalesce) and SIGRTMIN queued twice with
 * values 7 and 8 (two pending). After 1.5 s of CPU-bound work (moved
 * meanwhile) it unblocks them and prints what it got. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, rt, values[4];

static void on_usr1(int sig) { (void)sig; usr1++; }

static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    if (rt < 4)
        values[rt] = si->si_value.sival_int;
    rt++;
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
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 7});
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 8});
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    double end = now() + 1.5;
    while (now() < end)
        ;
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("usr1 %d rt %d values %d %d\n", (int)usr1, (int)rt, (int)values[0], (int)values[1]);
    return 0;
}
