/* Signals on the home PID reach a migrated process: SIGUSR1 runs its handler
 * on the guest's node; with an argument it then spins until SIGKILL, which
 * must end both sides. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
    (void)sig;
    got = 1;
}

int main(int argc, char **argv)
{
    (void)argv;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    time_t start = time(0);
    while (!got)
        if (time(0) - start > 30) {
            printf("FAIL: no signal\n");
            return 1;
        }
    printf("got usr1\n");
    fflush(stdout);
    if (argc > 1)
        for (;;)
            ;
    return 0;
}
