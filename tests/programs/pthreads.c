/* Multi-threaded, one mechanism per thread, checkpointed and restored mid-run. Four threads
 * compute (names, own masks, __thread counters, a contended priority-inheritance mutex, a
 * barrier); a holder keeps a robust mutex and exits without unlocking it (EOWNERDEAD for
 * main); a churn thread creates and joins short threads all the time (also while being
 * captured); a real-time signal is queued to calc2 alone before the checkpoint (with a value)
 * and taken after it; the harness's process-directed SIGUSR1 must reach calc3, the only
 * thread not blocking it; main's pthread_kill SIGUSR2 must run in calc1, on its altstack.
 * Every thread's TID must still be what it was (glibc and the kernel keep TIDs in memory)
 * and /proc/self/task must list exactly them; each ends allowed on main's CPUs. The last thread calls exit(3).
 * Output is deterministic; failures print FAIL lines. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N 4
#define ITERS 1200000000L

static pid_t tid_of[N];
static pid_t holder_tid, churn_tid, main_tid;
static pthread_t workers[N];
static pthread_mutex_t pi, robust;
static pthread_barrier_t computed, checked;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int holder_locked, holder_release;
static volatile int stop_churn;
static uint64_t shared_count;
static __thread uint64_t tls_count;
static uint64_t sums[N], tls_counts[N];
static int tid_same[N], mask_same[N], cpus_same[N];
static cpu_set_t main_cpus;
static volatile sig_atomic_t usr1_tid, usr2_tid, rt_tid, rt_value;
static volatile uintptr_t usr2_at;
static char altstack[1 << 16];

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void on_usr1(int sig) { (void)sig; usr1_tid = gettid_(); }
static void on_usr2(int sig)
{
    char here;
    (void)sig;
    usr2_tid = gettid_();
    usr2_at = (uintptr_t)&here;
}
static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)ctx;
    rt_tid = gettid_();
    rt_value = si->si_value.sival_int;
}

static void nap(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static sigset_t expected_mask(int i)
{
    sigset_t s;
    sigemptyset(&s);
    if (i != 3)
        sigaddset(&s, SIGUSR1);
    if (i == 2)
        sigaddset(&s, SIGRTMIN);
    if (i == 0)
        sigaddset(&s, SIGWINCH);
    return s;
}

static void *calc(void *arg)
{
    int i = (int)(intptr_t)arg;
    tid_of[i] = gettid_();
    char name[16];
    snprintf(name, sizeof name, "calc%d", i);
    pthread_setname_np(pthread_self(), name);
    sigset_t mine = expected_mask(i);
    pthread_sigmask(SIG_SETMASK, &mine, NULL);
    if (i == 1) {
        stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
        if (sigaltstack(&ss, NULL) != 0)
            printf("FAIL: sigaltstack: %s\n", strerror(errno));
    }
    uint64_t x = (uint64_t)i + 1;
    for (long k = 0; k < ITERS; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if ((k & 0xfffff) == 0) {
            pthread_mutex_lock(&pi);
            shared_count++;
            pthread_mutex_unlock(&pi);
            tls_count++;
        }
    }
    sums[i] = x;
    tls_counts[i] = tls_count;
    pthread_barrier_wait(&computed);
    /* main checks names and the task list here */
    pthread_barrier_wait(&checked);
    if (i == 2) {
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN);
        pthread_sigmask(SIG_UNBLOCK, &rt, NULL); /* the queued signal runs here, now */
        pthread_sigmask(SIG_BLOCK, &rt, NULL);
    }
    for (int waited = 0; (i == 3 && !usr1_tid) || (i == 1 && !usr2_tid); waited++) {
        if (waited == 2000) {
            printf("FAIL: no signal\n");
            break;
        }
        nap(10);
    }
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    mask_same[i] = sigismember(&now, SIGUSR1) == sigismember(&mine, SIGUSR1) &&
                   sigismember(&now, SIGRTMIN) == sigismember(&mine, SIGRTMIN) &&
                   sigismember(&now, SIGWINCH) == sigismember(&mine, SIGWINCH);
    tid_same[i] = tid_of[i] == gettid_();
    cpu_set_t cpus;
    cpus_same[i] = sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_EQUAL(&cpus, &main_cpus);
    return NULL;
}

static void *holder(void *arg)
{
    (void)arg;
    holder_tid = gettid_();
    pthread_mutex_lock(&robust);
    pthread_mutex_lock(&lock);
    holder_locked = 1;
    pthread_cond_broadcast(&cond);
    while (!holder_release)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL; /* still holding `robust` */
}

static void *nothing(void *arg) { return arg; }

static void *churn(void *arg)
{
    (void)arg;
    churn_tid = gettid_();
    long made = 0;
    while (!stop_churn) {
        pthread_t t;
        void *back = NULL;
        if (pthread_create(&t, NULL, nothing, (void *)(intptr_t)(made + 1)) != 0) {
            printf("FAIL: churn pthread_create\n");
            return NULL;
        }
        pthread_join(t, &back);
        if ((intptr_t)back != made + 1)
            printf("FAIL: churn thread %ld returned %ld\n", made + 1, (long)(intptr_t)back);
        made++;
        if (made % 64 == 0)
            nap(1);
    }
    return NULL;
}

static void *last(void *arg)
{
    (void)arg;
    fflush(stdout);
    exit(3);
}

static int task_list_is(const pid_t *want, int n)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int seen = 0, ok = 1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        pid_t t = atoi(e->d_name);
        int found = 0;
        for (int i = 0; i < n; i++)
            found |= want[i] == t;
        ok &= found;
        seen++;
    }
    closedir(d);
    return ok && seen == n;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_tid = gettid_();
    sched_getaffinity(0, sizeof main_cpus, &main_cpus);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi, &a);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_barrier_init(&computed, NULL, N + 1);
    pthread_barrier_init(&checked, NULL, N + 1);

    struct sigaction sa = { 0 };
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* inherited; calc3 unblocks SIGUSR1 */

    pthread_t h, c;
    pthread_create(&h, NULL, holder, NULL);
    pthread_mutex_lock(&lock);
    while (!holder_locked)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < N; i++)
        pthread_create(&workers[i], NULL, calc, (void *)(intptr_t)i);
    pthread_create(&c, NULL, churn, NULL);
    while (!tid_of[0] || !tid_of[1] || !tid_of[2] || !tid_of[3] || !churn_tid)
        nap(1);
    union sigval v = { .sival_int = 42 };
    if (pthread_sigqueue(workers[2], SIGRTMIN, v) != 0)
        printf("FAIL: pthread_sigqueue\n");
    printf("ready\n");

    pthread_barrier_wait(&computed);
    stop_churn = 1;
    pthread_join(c, NULL);
    pid_t all[N + 2] = { main_tid, holder_tid, tid_of[0], tid_of[1], tid_of[2], tid_of[3] };
    printf("task list %s\n", task_list_is(all, N + 2) ? "matches" : "FAIL: differs");
    for (int i = 0; i < N; i++) {
        char path[64], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid_of[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(name, sizeof name, f))
                name[0] = 0;
            fclose(f);
        }
        name[strcspn(name, "\n")] = 0;
        printf("thread %d named %s\n", i, name);
    }
    pthread_barrier_wait(&checked);
    pthread_kill(workers[1], SIGUSR2);
    for (int i = 0; i < N; i++)
        pthread_join(workers[i], NULL);

    pthread_mutex_lock(&lock);
    holder_release = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(h, NULL);
    int r = pthread_mutex_lock(&robust);
    printf("robust mutex after its owner exited: %s\n",
           r == EOWNERDEAD ? "EOWNERDEAD" : r == 0 ? "FAIL: locked as if unowned" : strerror(r));
    if (r == EOWNERDEAD)
        pthread_mutex_consistent(&robust);
    pthread_mutex_unlock(&robust);

    for (int i = 0; i < N; i++)
        printf("thread %d: sum %016llx, own count %llu, same tid %s, same mask %s, same CPUs %s\n",
               i, (unsigned long long)sums[i], (unsigned long long)tls_counts[i],
               tid_same[i] ? "yes" : "FAIL", mask_same[i] ? "yes" : "FAIL",
               cpus_same[i] ? "yes" : "FAIL");
    printf("pi mutex count %llu\n", (unsigned long long)shared_count);
    printf("SIGUSR1 (to the process) ran in %s\n",
           usr1_tid == tid_of[3] ? "calc3" : "FAIL: another thread");
    int on_alt = usr2_at >= (uintptr_t)altstack && usr2_at < (uintptr_t)altstack + sizeof altstack;
    printf("SIGUSR2 (to calc1) ran in %s, %s\n", usr2_tid == tid_of[1] ? "calc1" : "FAIL: another",
           on_alt ? "on its altstack" : "FAIL: not on its altstack");
    printf("SIGRTMIN (queued to calc2) ran in %s with value %d\n",
           rt_tid == tid_of[2] ? "calc2" : "FAIL: another", (int)rt_value);
    pthread_t l;
    pthread_create(&l, NULL, last, NULL);
    pthread_join(l, NULL);
    printf("FAIL: exit(3) in a thread did not end the process\n");
    return 1;
}
