/* A forwarded call that blocks at home (read on a pipe nobody writes) is
 * interrupted by a signal sent to the home PID: read fails with EINTR and
 * the handler runs on the guest's node. */
#include <errno.h>
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

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, 0);
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    /* Spin first, so the test can migrate before the read. */
    time_t start = time(0);
    while (time(0) - start < 2)
        ;
    char c;
    ssize_t n = read(0, &c, 1);
    int err = errno;
    start = time(0);
    while (!got && time(0) - start < 5)
        ;
    printf("read %zd %s, handler %s\n", n, n < 0 && err == EINTR ? "EINTR" : "?", got ? "ran" : "did not run");
    return 0;
}
