/* Private file mappings made while migrated: after "waiting" the test moves
 * it to node2; then it maps files of its home (node1's node-local
 * directory) and prints what it sees. A private mapping holds the file's
 * bytes, writes to it stay private, an offset maps the right pages. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    time_t start = time(0);
    while (time(0) - start < 2)
        ;
    int fd = open("/srv/mosaic-node/hostname.txt", O_RDONLY);
    char *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (fd < 0 || m == MAP_FAILED)
        return 1;
    printf("mapped %.*s", (int)strcspn(m, "\n") + 1, m);
    m[0] = 'X'; /* private: the file keeps its byte */
    char first;
    if (pread(fd, &first, 1, 0) != 1)
        return 2;
    printf("file still starts with %c, mapping with %c\n", first, m[0]);
    close(fd);

    /* Three pages of 'a', 'b', 'c'; map the last two (offset 4096). */
    fd = open("/srv/mosaic-node/pages", O_CREAT | O_RDWR | O_TRUNC, 0644);
    static char page[4096];
    for (char c = 'a'; c <= 'c'; c++) {
        memset(page, c, sizeof page);
        if (write(fd, page, sizeof page) != sizeof page)
            return 3;
    }
    char *p = mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
    if (p == MAP_FAILED)
        return 4;
    printf("offset map %c%c %c%c\n", p[0], p[4095], p[4096], p[8191]);
    /* Bad descriptor: the error mmap gives. */
    void *bad = mmap(0, 4096, PROT_READ, MAP_PRIVATE, 99, 0);
    printf("bad fd %s\n", bad == MAP_FAILED ? "fails" : "maps?!");
    return 0;
}
