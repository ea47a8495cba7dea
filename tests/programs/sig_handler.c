/* Mechanism: signal dispositions (handler address, SA_RESTART flag, sa_mask) survive
 * restore, and a signal delivered after restore runs the handler with the right mask.
 * The test sends SIGUSR1 after restore (any time after "waiting"); the handler sets a flag.
 * Failure: a FAIL: line (wrong disposition/mask, or no signal within 20 s). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static volatile sig_atomic_t mask_in_handler_ok;

static void on_usr1(int sig)
{
    sigset_t cur;
    (void)sig;
    /* Inside the handler SIGUSR1 (the signal itself) and SIGUSR2 (sa_mask) are blocked. */
    if (sigprocmask(SIG_SETMASK, NULL, &cur) == 0 && sigismember(&cur, SIGUSR1) == 1 &&
        sigismember(&cur, SIGUSR2) == 1 && sigismember(&cur, SIGINT) == 1 &&
        sigismember(&cur, SIGTERM) == 0)
        mask_in_handler_ok = 1;
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
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGINT);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) {
        printf("FAIL: sigaction\n");
        return 1;
    }
    signal(SIGALRM, on_alarm);
    alarm(20);

    printf("waiting\n");
    fflush(stdout);

    uint64_t x = 88172645463325252ULL;
    while (!got) {
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x));
    }
    alarm(0);

    int ok = 1;
    printf("got SIGUSR1\n");
    if (got != 1) {
        printf("FAIL: handler ran %d times\n", (int)got);
        ok = 0;
    }
    if (!mask_in_handler_ok) {
        printf("FAIL: signal mask inside the handler was wrong\n");
        ok = 0;
    } else {
        printf("handler mask ok\n");
    }

    struct sigaction cur;
    sigset_t m;
    if (sigaction(SIGUSR1, NULL, &cur) != 0 || cur.sa_handler != on_usr1 ||
        !(cur.sa_flags & SA_RESTART) || (cur.sa_flags & (SA_ONSTACK | SA_RESETHAND | SA_NODEFER | SA_SIGINFO)) ||
        sigismember(&cur.sa_mask, SIGUSR2) != 1 || sigismember(&cur.sa_mask, SIGINT) != 1 ||
        sigismember(&cur.sa_mask, SIGTERM) != 0) {
        printf("FAIL: SIGUSR1 disposition changed\n");
        ok = 0;
    } else {
        printf("disposition ok\n");
    }
    sigprocmask(SIG_SETMASK, NULL, &m);
    if (sigismember(&m, SIGUSR1) || sigismember(&m, SIGUSR2) || sigismember(&m, SIGINT)) {
        printf("FAIL: mask not restored after the handler returned\n");
        ok = 0;
    }
    fflush(stdout);
    return ok ? 0 : 1;
}
