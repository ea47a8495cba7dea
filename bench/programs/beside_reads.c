/* Bench workload: argv[1] = a file of 8 MiB, argv[2] "write" to write
 * it 8 MiB a call instead of reading it (a large argument rather than a
 * large result). Prints its pid and
 * "waiting", spins ~1 s (the bench migrates it then); then one thread
 * times 300 getppid() calls 2 ms apart, first alone, then while another
 * thread reads the file 8 MiB a call, and prints the median and the 99th
 * percentile of each, in µs ("alone_p50 X", "alone_p99 X", "beside_p50 X",
 * "beside_p99 X"): a large result for one thread must not hold up
 * another's small call. Also the 99th percentile of the time from when
 * each sleep was due to end to the call's end ("alone_held_p99 X",
 * "beside_held_p99 X"): a thread's wake-up waits for a CPU too. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N 300
#define BIG (8 << 20)

static volatile int reading, done;
static const char *path;
static int writing;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
    (void)arg;
    char *buf = calloc(1, BIG);
    int fd = open(path, writing ? O_WRONLY : O_RDONLY);
    if (!buf || fd < 0)
        exit(1);
    while (!done) {
        if (!reading) {
            usleep(1000);
            continue;
        }
        ssize_t n = writing ? pwrite(fd, buf, BIG, 0) : pread(fd, buf, BIG, 0);
        if (n != BIG)
            exit(1);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(const char *name)
{
    static double lat[N], held[N];
    double due = now();
    for (int i = 0; i < N; i++) {
        double t0 = now();
        syscall(SYS_getppid);
        double t1 = now();
        lat[i] = (t1 - t0) * 1e6;
        /* From when its sleep was due to end to the call's end: the wait
         * for a CPU after the wake-up counts too (natively, a thread
         * woken beside one copying 8 MiB in a read waits for it). */
        held[i] = (t1 - due) * 1e6;
        due = now() + 2e-3;
        usleep(2000);
    }
    qsort(lat, N, sizeof lat[0], cmp);
    qsort(held, N, sizeof held[0], cmp);
    printf("%s_p50 %.1f\n%s_p99 %.1f\n", name, lat[N / 2], name, lat[N * 99 / 100]);
    printf("%s_held_p99 %.1f\n", name, held[N * 99 / 100]);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    path = argv[1];
    writing = argc > 2 && argv[2][0] == 'w';
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0)
        return 1;
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    double start = now();
    while (now() - start < 1.0)
        ;
    measure("alone");
    reading = 1;
    measure("beside");
    done = 1;
    pthread_join(t, NULL);
    return 0;
}
