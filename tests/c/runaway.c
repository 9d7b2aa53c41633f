/*
 * A process tree that does not end by itself, for checking that the sandbox ends when its
 * first process does (as a pid namespace does when its init exits):
 *   - a child spinning forever (runaway),
 *   - a child that ignores SIGTERM, SIGHUP and SIGINT and sleeps in pause(),
 *   - an orphaned grandchild sleeping in pause() (its parent exited),
 *   - a zombie child never reaped,
 *   - a second thread of the first process blocked in a pipe read.
 * All of them keep stdout open. When everything is in place the program prints "ready" and
 * waits for a line on stdin; then it prints "init exits" and returns 0 without waiting for
 * anybody.
 *
 * usage: runaway
 */
#include "rvtest.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

static int ready_pipe[2], never_pipe[2];

static void say_ready(char c) {
    if (write(ready_pipe[1], &c, 1) != 1)
        _exit(80);
}

static void *blocked_thread(void *arg) {
    (void)arg;
    char c;
    ssize_t r = read(never_pipe[0], &c, 1);
    (void)r;
    return NULL;
}

int main(void) {
    REQUIRE(pipe(ready_pipe) == 0 && pipe(never_pipe) == 0);

    pid_t spinner = fork();
    REQUIRE(spinner >= 0);
    if (spinner == 0) {
        say_ready('s');
        for (volatile unsigned long i = 0;; i++)
            ;
    }

    pid_t stubborn = fork();
    REQUIRE(stubborn >= 0);
    if (stubborn == 0) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        say_ready('i');
        for (;;)
            pause();
    }

    pid_t middle = fork();
    REQUIRE(middle >= 0);
    if (middle == 0) {
        pid_t g = fork();
        if (g < 0)
            _exit(50);
        if (g == 0) {
            say_ready('g');
            for (;;)
                pause();
        }
        _exit(0); /* orphans the grandchild */
    }

    pid_t zombie = fork();
    REQUIRE(zombie >= 0);
    if (zombie == 0)
        _exit(0);

    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, blocked_thread, NULL) == 0);

    /* Everybody running, the middle process gone, the zombie a zombie. */
    char got[3];
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t n = read(ready_pipe[0], got + have, sizeof got - have);
        REQUIRE(n > 0);
        have += (size_t)n;
    }
    int st;
    REQUIRE(waitpid(middle, &st, 0) == middle);
    siginfo_t si;
    REQUIRE(waitid(P_PID, zombie, &si, WEXITED | WNOWAIT) == 0);
    out("ready\n");

    char line[64];
    ssize_t n = read(0, line, sizeof line);
    out("init exits (stdin gave %s)\n", n > 0 ? "a line" : "EOF");
    return 0;
}
