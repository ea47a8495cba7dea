/* Spins 1.5 s (the test migrates it meanwhile), then dies by SIGSEGV. */
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
    *(volatile int *)8 = 1;
    return 0;
}
