/* Spins 1.5 s (the test migrates it meanwhile), then reads stdin to its end
 * and prints how many bytes came and a checksum of them. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    time_t start = time(0);
    while (time(0) - start < 2)
        ;
    unsigned long long n = 0, sum = 0;
    unsigned char buf[7000];
    ssize_t got;
    while ((got = read(0, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < got; i++, n++)
            sum = sum * 31 + buf[i];
    printf("bytes %llu sum %llu\n", n, sum);
    return got < 0 ? 1 : 0;
}
