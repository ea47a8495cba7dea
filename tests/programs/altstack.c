/* Mechanism: sigaltstack settings (ss_sp, ss_size, flags) and SA_ONSTACK dispositions.
 * After restore the test sends SIGUSR1; its handler must run on the static alternate
 * stack, and sigaltstack() must still report the same stack.
 * Failure: a FAIL: line (handler on the normal stack, altstack settings lost, no signal). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static char altbuf[ALT_SIZE] __attribute__((aligned(16)));
static volatile sig_atomic_t got;
static volatile sig_atomic_t on_alt;       /* local variable address inside altbuf */
static volatile sig_atomic_t ss_onstack;   /* sigaltstack() reports SS_ONSTACK in handler */

static void on_usr1(int sig)
{
    volatile char local = 0;
    stack_t cur;
    (void)sig;
    uintptr_t a = (uintptr_t)&local;
    if (a >= (uintptr_t)altbuf && a < (uintptr_t)altbuf + sizeof altbuf)
        on_alt = 1;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK))
        ss_onstack = 1;
    local = 1;
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
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altbuf;
    ss.ss_size = sizeof altbuf;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        printf("FAIL: sigaltstack\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGALRM, on_alarm);
    alarm(20);

    printf("waiting\n");
    fflush(stdout);

    uint64_t x = 0x2545f4914f6cdd1dULL;
    while (!got) {
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x));
    }
    alarm(0);

    int ok = 1;
    printf("got SIGUSR1\n");
    if (on_alt) {
        printf("on altstack\n");
    } else {
        printf("FAIL: handler did not run on the alternate stack\n");
        ok = 0;
    }
    if (!ss_onstack) {
        printf("FAIL: sigaltstack did not report SS_ONSTACK inside the handler\n");
        ok = 0;
    }
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || cur.ss_sp != (void *)altbuf ||
        cur.ss_size != sizeof altbuf || cur.ss_flags != 0) {
        printf("FAIL: sigaltstack settings changed\n");
        ok = 0;
    } else {
        printf("altstack settings ok\n");
    }
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    if (!(now.sa_flags & SA_ONSTACK) || now.sa_handler != on_usr1) {
        printf("FAIL: SIGUSR1 lost SA_ONSTACK\n");
        ok = 0;
    }
    fflush(stdout);
    return ok ? 0 : 1;
}
