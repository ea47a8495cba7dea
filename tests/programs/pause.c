/* Mechanism: a process checkpointed while blocked in pause(); after restore it must
 * still be blocked there (not woken spuriously) and a SIGUSR1 sent after restore must run
 * the handler and make pause() return with EINTR.
 * Failure: a FAIL: line (pause returned without the handler, or no signal within 20 s). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
    (void)sig;
    got++;
}

static void on_alarm(int sig)
{
    static const char msg[] = "FAIL: no signal\n";
    (void)sig;
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGALRM, on_alarm);
    alarm(20);

    printf("waiting\n");
    fflush(stdout);

    int rc = pause();
    int err = errno;
    alarm(0);
    if (rc != -1 || err != EINTR) {
        printf("FAIL: pause returned %d (%s)\n", rc, strerror(err));
        return 1;
    }
    if (got != 1) {
        printf("FAIL: pause returned but the SIGUSR1 handler ran %d times\n", (int)got);
        return 1;
    }
    printf("woken\n");
    fflush(stdout);
    return 0;
}
