/* A forwarded call that blocks at home (read on a pipe nobody writes yet)
 * is interrupted by a signal sent to the home PID: the handler runs on the
 * guest's node and read fails with EINTR, or, with argument "restart"
 * (SA_RESTART), read goes on and returns what the test writes later. */
#include <string.h>
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

int main(int argc, char **argv)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    if (argc > 1 && strcmp(argv[1], "restart") == 0)
        sa.sa_flags = SA_RESTART;
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
    if (n < 0)
        printf("read -1 %s", err == EINTR ? "EINTR" : strerror(err));
    else
        printf("read %zd '%c'", n, n == 1 ? c : '?');
    printf(", handler %s\n", got ? "ran" : "did not run");
    return 0;
}
