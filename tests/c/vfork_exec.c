/*
 * vfork(2) and posix_spawn: the vfork child shares the parent's memory and the parent is
 * suspended until the child execs or exits; the exec'd program is a new process image whose
 * parent is the vforking process; an exec failure is reported through the shared memory;
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)) returns the child's exec error itself.
 *
 * usage: vfork_exec            (runs the checks)
 *        vfork_exec child PPID CODE  (the exec'd program; internal: exits CODE if its parent is PPID)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

static volatile int shared_flag, shared_errno;

static int child_main(char **argv) {
    pid_t want_ppid = atoi(argv[2]);
    int code = atoi(argv[3]);
    return getppid() == want_ppid ? code : 100;
}

static int status_of(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

int main(int argc, char **argv) {
    if (argc > 3 && strcmp(argv[1], "child") == 0)
        return child_main(argv);
    char *self = argv[0];
    char me[16];
    snprintf(me, sizeof me, "%d", getpid());

    /* vfork + exec: the child's store before exec is visible to the parent, which runs again
     * only after the exec. */
    shared_flag = 0;
    char *args3[] = {self, "child", me, "3", NULL};
    pid_t pid = vfork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        shared_flag = 1;
        execve(self, args3, environ);
        _exit(127);
    }
    check("parent sees the vfork child's store (shared memory, parent resumed after exec)", shared_flag == 1);
    out("exec'd child's exit status (3 if its parent is us): %d\n", status_of(pid));

    /* vfork + _exit without exec. */
    shared_flag = 0;
    pid = vfork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        shared_flag = 2;
        _exit(5);
    }
    check("parent sees the store of a vfork child that called _exit", shared_flag == 2);
    out("its exit status: %d\n", status_of(pid));

    /* vfork + failing exec: the child reports errno through the shared memory. */
    shared_errno = 0;
    char *missing[] = {"/nonexistent/program", NULL};
    pid = vfork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execve(missing[0], missing, environ);
        shared_errno = errno;
        _exit(127);
    }
    out("vfork child's failed exec: %s, exit status %d\n", err(shared_errno), status_of(pid));

    /* posix_spawn of ourselves and of a missing program. */
    char *args[] = {self, "child", me, "4", NULL};
    int r = posix_spawn(&pid, self, NULL, NULL, args, environ);
    out("posix_spawn: %s, child's exit status %d\n", err(r), r == 0 ? status_of(pid) : -1);
    r = posix_spawn(&pid, missing[0], NULL, NULL, missing, environ);
    out("posix_spawn of a missing program: %s\n", err(r));
    /* posix_spawn with file actions: the child's stdout is /dev/null. */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *args6[] = {self, "child", me, "6", NULL};
    r = posix_spawn(&pid, self, &fa, NULL, args6, environ);
    out("posix_spawn with a file action: %s, child's exit status %d\n", err(r), r == 0 ? status_of(pid) : -1);
    posix_spawn_file_actions_destroy(&fa);

    /* Many vforks in a row. */
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        /* Prepared before vfork: the child should only exec or _exit. */
        char code[8];
        snprintf(code, sizeof code, "%d", i);
        char *a[] = {self, "child", me, code, NULL};
        pid = vfork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            execve(self, a, environ);
            _exit(127);
        }
        ok += status_of(pid) == i;
    }
    out("50 vfork+exec children with the right status: %d\n", ok);
    return failures;
}
