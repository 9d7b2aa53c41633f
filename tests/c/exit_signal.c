/*
 * A child's custom exit signal (clone's CSIGNAL) goes only to the image that asked for it:
 * once the parent has exec'd, the child's exit is reported with SIGCHLD (Linux's
 * parent_exec_id check). Without an exec in between, the custom signal arrives.
 *
 * usage: exit_signal            (then re-executes itself as `exit_signal after PID FD`)
 */
#include "rvtest.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Makes a child with exit signal SIGUSR1 that exits once a byte arrives on the returned fd. */
static pid_t usr1_child(int *go) {
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t c = (pid_t)syscall(SYS_clone, (long)SIGUSR1, 0L, 0L, 0L, 0L);
    if (c == 0) {
        close(p[1]);
        char b;
        _exit(read(p[0], &b, 1) == 1 ? 5 : 6);
    }
    close(p[0]);
    *go = p[1];
    return c;
}

/* Lets the child exit, reaps it and says which of SIGUSR1/SIGCHLD are pending. */
static void finish(const char *when, pid_t c, int go) {
    if (write(go, "g", 1) != 1)
        out("%s: write failed\n", when);
    int st = 0;
    pid_t w = waitpid(c, &st, __WALL);
    sigset_t pend;
    sigpending(&pend);
    out("%s: reaped %s, status %d, SIGUSR1 pending %s, SIGCHLD pending %s\n", when,
        w == c ? "yes" : "no", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
        sigismember(&pend, SIGUSR1) ? "yes" : "no", sigismember(&pend, SIGCHLD) ? "yes" : "no");
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "after")) {
        /* The signal mask survives execve: both are still blocked. */
        finish("after the parent exec'd", (pid_t)atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGCHLD);
    sigprocmask(SIG_BLOCK, &both, NULL);

    int go;
    pid_t c = usr1_child(&go);
    if (c < 0)
        return 1;
    finish("without an exec", c, go);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&both, NULL, &zero) > 0) {}

    c = usr1_child(&go);
    if (c < 0)
        return 1;
    char pid[16], fd[16];
    snprintf(pid, sizeof pid, "%d", c);
    snprintf(fd, sizeof fd, "%d", go);
    execl("/proc/self/exe", argv[0], "after", pid, fd, (char *)NULL);
    out("execl failed: %s\n", strerror(errno));
    return 1;
}
