/* Migration transparency: after "waiting" the test migrates this process
 * from node1 to node2, and creates "go" once it saw it there. Everything it asks afterwards must be answered as at
 * home: hostname, node-local file, PID, parent, files it writes, exit code. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
    printf("pid %d\n", getpid());
    printf("waiting\n");
    fflush(stdout);
    volatile unsigned long x = 0;
    for (long i = 0; i < 1500000000L; i++)
        x += i;
    /* Until the test has seen it where it runs (it ran out before `mosaic
     * ps` showed it, when the loop took under a second). */
    while (access("/srv/mosaic-node/go", F_OK) != 0)
        usleep(20000);
    struct utsname u;
    uname(&u);
    printf("hostname %s\n", u.nodename);
    char buf[64] = {0};
    int fd = open("/srv/mosaic-node/hostname.txt", O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0)
        printf("FAIL: cannot read hostname.txt\n");
    close(fd);
    printf("file %s", buf);
    printf("pid %d ppid %d\n", getpid(), getppid());
    /* The kernel it runs on knows it by its home IDs (its own PID
     * namespace on the guest's node). */
    static int cleared;
    printf("tid %ld set_tid_address %ld\n", syscall(SYS_gettid), syscall(SYS_set_tid_address, &cleared));
    fd = open("/srv/mosaic-node/written.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "hello from a guest\n", 19) != 19)
        printf("FAIL: cannot write written.txt\n");
    close(fd);
    /* Gathering and scattering calls. */
    char a[3] = {0}, b[16] = {0};
    struct iovec in[2] = {{a, 3}, {b, sizeof b - 1}};
    fd = open("/srv/mosaic-node/hostname.txt", O_RDONLY);
    ssize_t n = readv(fd, in, 2);
    close(fd);
    fflush(stdout);
    struct iovec out[3] = {{"readv ", 6}, {a, 3}, {b, (size_t)(n > 3 ? n - 3 : 0)}};
    if (writev(1, out, 3) != 6 + (n > 3 ? n : 3))
        printf("FAIL: writev\n");
    fprintf(stderr, "to stderr\n");
    printf("sum %lu\n", x);
    return 42;
}
