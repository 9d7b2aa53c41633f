/*
 * PR_SET_CHILD_SUBREAPER and PR_SET_PDEATHSIG: a grandchild whose parent exits gets its
 * death signal and is reparented to the subreaper (here the first process), which reaps it.
 * Prints deterministic facts only.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_signal(int s) { got = s; }

int main(void) {
    pid_t reaper = getpid();
    int r = prctl(PR_SET_CHILD_SUBREAPER, 1);
    int v = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    printf("subreaper set: %d, reads back: %d\n", r, v);
    fflush(stdout);
    int p[2];
    if (pipe(p) != 0)
        return 2;
    pid_t c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            signal(SIGUSR1, on_signal);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            int back = 0;
            prctl(PR_GET_PDEATHSIG, &back);
            printf("pdeath signal reads back: %d\n", back);
            fflush(stdout);
            if (write(p[1], "r", 1) != 1)
                _exit(3);
            while (!got)
                pause();
            printf("grandchild got signal %d after its parent died; new parent is the subreaper: %s\n", (int)got,
                   getppid() == reaper ? "yes" : "no");
            fflush(stdout);
            _exit(5);
        }
        char b;
        if (read(p[0], &b, 1) != 1)
            _exit(4);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    pid_t w = wait(&st);
    printf("subreaper reaped the grandchild: %s, status %d\n", w > 0 ? "yes" : "no", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("no children left: %s\n", wait(&st) < 0 ? "yes" : "no");
    return 0;
}
