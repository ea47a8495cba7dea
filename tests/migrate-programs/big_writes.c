/* One thread writes large blocks to the file argv[1] (4 MiB by write, three
 * 96 KiB buffers by writev), each block's bytes its own, while a
 * second thread makes a small call every millisecond (getppid) until the
 * writer is done. Prints "pid N" and "waiting" at its start, then how
 * much it wrote, whether every write was whole, and whether the small
 * calls were answered with the same parent all along. Output and file are
 * deterministic. Moved while it writes, its large writes go home in
 * pieces between the small calls; stopped or sent home mid-write, a write
 * given up is made again, never twice. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define BLOCK (4 << 20)
#define SMALL (96 << 10)
#define ROUNDS 100

static volatile int done;
static long small_calls;
static int parent_changed;

static void *small(void *arg)
{
    (void)arg;
    pid_t parent = getppid();
    struct timespec ms = {0, 1000000};
    while (!done) {
        if (getppid() != parent)
            parent_changed = 1;
        small_calls++;
        nanosleep(&ms, NULL);
    }
    return NULL;
}

/* Block `round`'s bytes. */
static void fill(unsigned char *b, size_t n, unsigned round)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 131 + (i >> 9) + round * 7);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, small, NULL);
    unsigned char *block = malloc(BLOCK);
    unsigned char *parts[3];
    for (int i = 0; i < 3; i++)
        parts[i] = malloc(SMALL);
    long wrote = 0;
    int whole = 1;
    for (unsigned r = 0; r < ROUNDS; r++) {
        fill(block, BLOCK, r);
        ssize_t n = write(fd, block, BLOCK);
        whole &= n == BLOCK;
        wrote += n > 0 ? n : 0;
        struct iovec iov[3];
        for (int i = 0; i < 3; i++) {
            fill(parts[i], SMALL, r * 3 + i + 1000);
            iov[i].iov_base = parts[i];
            iov[i].iov_len = SMALL;
        }
        n = writev(fd, iov, 3);
        whole &= n == 3 * SMALL;
        wrote += n > 0 ? n : 0;
    }
    done = 1;
    pthread_join(t, NULL);
    printf("wrote %ld bytes\nevery write whole: %s\n", wrote, whole ? "yes" : "no");
    printf("small calls answered: %s\nparent kept: %s\n", small_calls > 10 ? "yes" : "no",
           parent_changed ? "no" : "yes");
    return close(fd) == 0 ? 0 : 1;
}
