/* A parent that reports what wait() tells it about its child, the way a
 * shell sees its jobs: stops and continues (WUNTRACED | WCONTINUED), the
 * exit code or the killing signal. Usage: parent PROGRAM [ARGS...]
 * Like a shell, it puts the child in a process group of its own: a group
 * whose members all have parents outside the session would be orphaned, and
 * the kernel discards SIGTSTP sent to it (the test would then depend on how
 * it was started). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    setpgid(child, child);
    for (;;) {
        int st;
        if (waitpid(child, &st, WUNTRACED | WCONTINUED) < 0)
            return 1;
        if (WIFSTOPPED(st))
            printf("stopped %d\n", WSTOPSIG(st));
        else if (WIFCONTINUED(st))
            printf("continued\n");
        else if (WIFEXITED(st)) {
            printf("exited %d\n", WEXITSTATUS(st));
            return 0;
        } else if (WIFSIGNALED(st)) {
            printf("killed %d\n", WTERMSIG(st));
            return 0;
        }
        fflush(stdout);
    }
}
