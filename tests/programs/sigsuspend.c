/* Mechanism: a process checkpointed inside sigsuspend(), i.e. with a temporary signal mask
 * installed by the kernel (saved_sigmask). After restore, SIGUSR1 (sent by the test) must
 * wake it and the original mask (SIGUSR1 blocked) must be restored exactly on return.
 * Failure: a FAIL: line (wrong mask after return, handler not run, no signal in 20 s). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static volatile sig_atomic_t handler_mask_ok;

static void on_usr1(int sig)
{
    sigset_t cur;
    (void)sig;
    /* During the handler: sigsuspend's mask plus SIGUSR1 itself; SIGUSR2 was in the
     * original mask only, so it must not be blocked here. */
    if (sigprocmask(SIG_SETMASK, NULL, &cur) == 0 && sigismember(&cur, SIGUSR1) == 1 &&
        sigismember(&cur, SIGUSR2) == 0 && sigismember(&cur, SIGHUP) == 1)
        handler_mask_ok = 1;
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

    /* Original mask: SIGUSR1 and SIGUSR2 blocked. */
    sigset_t block, orig, during, after;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_SETMASK, &block, NULL);
    sigprocmask(SIG_SETMASK, NULL, &orig);

    /* Mask while suspended: allow SIGUSR1, block SIGHUP instead of SIGUSR2. */
    sigemptyset(&during);
    sigaddset(&during, SIGHUP);

    alarm(20);
    printf("waiting\n");
    fflush(stdout);

    int rc = sigsuspend(&during);
    int err = errno;
    alarm(0);
    int ok = 1;
    if (rc != -1 || err != EINTR) {
        printf("FAIL: sigsuspend returned %d (%s)\n", rc, strerror(err));
        ok = 0;
    }
    if (got != 1) {
        printf("FAIL: SIGUSR1 handler ran %d times\n", (int)got);
        ok = 0;
    } else {
        printf("woken\n");
    }
    if (!handler_mask_ok) {
        printf("FAIL: mask inside the handler was not the sigsuspend mask\n");
        ok = 0;
    }
    sigprocmask(SIG_SETMASK, NULL, &after);
    int diff = 0;
    for (int s = 1; s <= SIGRTMAX; s++)
        if (sigismember(&after, s) != sigismember(&orig, s)) {
            printf("FAIL: mask after sigsuspend differs at signal %d\n", s);
            diff = 1;
            ok = 0;
            break;
        }
    if (!diff)
        printf("mask restored\n");
    fflush(stdout);
    return ok ? 0 : 1;
}
