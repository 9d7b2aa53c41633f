/*
 * Zombies and reparenting, run as the init (pid 1) of its pid namespace: in rvisor it is the
 * sandbox's first process; natively the test runs it under `unshare --pid --fork`.
 *
 * - A child that exits stays a zombie (kill(pid, 0) finds it, waitid WNOWAIT sees it) until
 *   it is reaped; then it is gone (ESRCH).
 * - A child forks a grandchild and exits: the orphaned grandchild's getppid() becomes 1, and
 *   init's wait() reaps it with its exit status.
 * - Grandchildren that exited before their parent (zombies) are reparented to init too and
 *   reaped by its wait().
 *
 * usage: reparent
 * Exit status: the number of failed checks (0 natively as pid 1).
 */
#include "rvtest.h"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdlib.h>
#include <sys/wait.h>

static void write_all(int fd, const void *p, size_t n) {
    REQUIRE(write(fd, p, n) == (ssize_t)n);
}

int main(void) {
    check("running as pid 1", getpid() == 1);

    /* ---- zombie ---- */
    pid_t z = fork();
    REQUIRE(z >= 0);
    if (z == 0)
        _exit(17);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    REQUIRE(waitid(P_PID, z, &si, WEXITED | WNOWAIT) == 0);
    out("zombie: waitid WNOWAIT says %s status %d\n", codename(SIGCHLD, si.si_code), si.si_status);
    check("kill(zombie, 0) succeeds", kill(z, 0) == 0);
    check("getpgid(zombie) succeeds", getpgid(z) == getpgid(0));
    int st;
    REQUIRE(waitpid(z, &st, 0) == z);
    out("reaped with status %d\n", WEXITSTATUS(st));
    errno = 0;
    check("kill(reaped child, 0) fails with ESRCH", kill(z, 0) == -1 && errno == ESRCH);

    /* ---- orphan: child forks a grandchild and exits ---- */
    int report[2], hold[2], started[2];
    REQUIRE(pipe(report) == 0 && pipe(hold) == 0 && pipe(started) == 0);
    pid_t middle = fork();
    REQUIRE(middle >= 0);
    if (middle == 0) {
        close(report[0]);
        pid_t g = fork();
        if (g < 0)
            _exit(50);
        if (g == 0) {
            close(hold[1]);
            close(started[0]);
            pid_t first_parent = getppid();
            write_all(started[1], "s", 1);
            close(started[1]);
            /* EOF once the middle process has exited (it holds the only write end). */
            char c;
            ssize_t n = read(hold[0], &c, 1);
            /* Its files close before it is reparented: wait (bounded) for the new parent. */
            int64_t start = now_ns();
            while (getppid() == first_parent && now_ns() - start < 10000000000LL)
                sched_yield();
            char r[3] = {n == 0 ? 'e' : '?', first_parent != 1 ? 'm' : '?', getppid() == 1 ? 'y' : 'n'};
            write_all(report[1], r, 3);
            _exit(9);
        }
        close(started[1]);
        close(hold[0]);
        char c;
        /* Exit only once the grandchild has seen its first parent. */
        if (read(started[0], &c, 1) != 1)
            _exit(52);
        write_all(report[1], &g, sizeof g);
        _exit(3);
    }
    close(report[1]);
    close(hold[0]);
    close(hold[1]);
    close(started[0]);
    close(started[1]);
    pid_t grandchild;
    REQUIRE(read(report[0], &grandchild, sizeof grandchild) == sizeof grandchild);
    REQUIRE(waitpid(middle, &st, 0) == middle);
    out("middle process exited with %d\n", WEXITSTATUS(st));
    char r[3];
    REQUIRE(read(report[0], r, 3) == 3);
    close(report[0]);
    check("grandchild saw EOF when its parent exited", r[0] == 'e');
    check("grandchild's first parent was the middle process", r[1] == 'm');
    check("grandchild's getppid() is 1 after its parent exited", r[2] == 'y');
    pid_t w = wait(&st);
    check("init's wait() reaped the orphaned grandchild", w == grandchild);
    out("grandchild's exit status: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* ---- zombie grandchildren reparented to init ---- */
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    middle = fork();
    REQUIRE(middle >= 0);
    if (middle == 0) {
        close(ready[0]);
        pid_t kids[3];
        for (int i = 0; i < 3; i++) {
            kids[i] = fork();
            if (kids[i] < 0)
                _exit(50);
            if (kids[i] == 0)
                _exit(20 + i);
        }
        /* Make sure all three are zombies, then exit without reaping them. */
        for (int i = 0; i < 3; i++) {
            siginfo_t s2;
            if (waitid(P_PID, kids[i], &s2, WEXITED | WNOWAIT) != 0)
                _exit(51);
        }
        write_all(ready[1], kids, sizeof kids);
        _exit(4);
    }
    close(ready[1]);
    pid_t kids[3];
    REQUIRE(read(ready[0], kids, sizeof kids) == sizeof kids);
    close(ready[0]);
    REQUIRE(waitpid(middle, &st, 0) == middle);
    out("middle process with 3 zombie children exited with %d\n", WEXITSTATUS(st));
    int statuses = 0, found = 0;
    for (int i = 0; i < 3; i++) {
        w = wait(&st);
        for (int k = 0; k < 3; k++)
            if (w == kids[k]) {
                found++;
                statuses += WEXITSTATUS(st);
            }
    }
    out("zombie grandchildren reaped by init: %d, sum of their statuses: %d\n", found, statuses);
    errno = 0;
    check("no children left (ECHILD)", wait(NULL) == -1 && errno == ECHILD);

    /* The orphans are init's before their parent can be reaped: repeated, as a race. */
    int missed = 0;
    for (int round = 0; round < 20; round++) {
        REQUIRE(pipe(ready) == 0);
        middle = fork();
        REQUIRE(middle >= 0);
        if (middle == 0) {
            close(ready[0]);
            pid_t k3[3];
            for (int i = 0; i < 3; i++) {
                k3[i] = fork();
                if (k3[i] < 0)
                    _exit(50);
                if (k3[i] == 0)
                    _exit(0);
            }
            for (int i = 0; i < 3; i++) {
                siginfo_t s2;
                if (waitid(P_PID, k3[i], &s2, WEXITED | WNOWAIT) != 0)
                    _exit(51);
            }
            write_all(ready[1], k3, sizeof k3);
            _exit(0);
        }
        close(ready[1]);
        REQUIRE(read(ready[0], kids, sizeof kids) == sizeof kids);
        close(ready[0]);
        REQUIRE(waitpid(middle, &st, 0) == middle);
        for (int i = 0; i < 3; i++) {
            w = waitpid(-1, &st, WNOHANG);
            if (w != kids[0] && w != kids[1] && w != kids[2])
                missed++;
        }
        while (waitpid(-1, &st, 0) > 0) {}
    }
    out("orphaned zombies not yet init's when their parent was reaped, in 20 rounds: %d\n", missed);

    /* An orphan's custom exit signal becomes SIGCHLD when init inherits it: a child made
     * with exit signal SIGUSR1 whose parent is gone notifies init with SIGCHLD. */
    sigset_t both, pend;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGCHLD);
    REQUIRE(sigprocmask(SIG_BLOCK, &both, NULL) == 0);
    int go[2];
    REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
    middle = fork();
    REQUIRE(middle >= 0);
    if (middle == 0) {
        close(ready[0]);
        pid_t g = (pid_t)syscall(SYS_clone, (long)SIGUSR1, 0L, 0L, 0L, 0L);
        if (g < 0)
            _exit(50);
        if (g == 0) {
            /* Exits when init says so (after it inherited this process). */
            close(go[1]);
            char c;
            _exit(read(go[0], &c, 1) == 1 ? 7 : 8);
        }
        write_all(ready[1], &g, sizeof g);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    pid_t orphan;
    REQUIRE(read(ready[0], &orphan, sizeof orphan) == sizeof orphan);
    close(ready[0]);
    REQUIRE(waitpid(middle, &st, 0) == middle);
    /* Drop the SIGCHLD of the middle process, then let the orphan exit and reap it (made
     * as a clone child, exit signal not SIGCHLD: __WALL). */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&both, NULL, &zero) > 0) {}
    write_all(go[1], "g", 1);
    close(go[1]);
    w = waitpid(orphan, &st, __WALL);
    REQUIRE(sigpending(&pend) == 0);
    out("orphan made with exit signal SIGUSR1 reaped by init: %s, status %d; init got SIGCHLD: %s, SIGUSR1: %s\n",
        w == orphan ? "yes" : "no", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
        sigismember(&pend, SIGCHLD) ? "yes" : "no", sigismember(&pend, SIGUSR1) ? "yes" : "no");
    REQUIRE(sigprocmask(SIG_UNBLOCK, &both, NULL) == 0);
    return failures;
}
