/*
 * Child state changes: SIGCHLD (its siginfo in an SA_SIGINFO handler), waitid(2) (si_code
 * CLD_EXITED/KILLED/STOPPED/CONTINUED, si_status, si_pid, WNOWAIT, WNOHANG), waitpid status
 * macros, SA_NOCLDSTOP, and SIGCHLD set to SIG_IGN (children reaped automatically).
 *
 * SIGCHLD is kept blocked while a child changes state and unblocked only after waitid has
 * seen the change, so the handler runs exactly once per checked event.
 *
 * usage: sigchld [SECTION...]   (sections: exited killed stopped nohang nocldstop ignored)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <stdlib.h>
#include <sys/wait.h>

static volatile int chld_count, chld_code, chld_status, chld_signo;
static volatile pid_t chld_pid;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    chld_count++;
    chld_signo = si->si_signo;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid = si->si_pid;
}

static void install(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | flags;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGCHLD, &sa, NULL) == 0);
}

static void block_chld(int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    REQUIRE(sigprocmask(how, &s, NULL) == 0);
}

static int chld_pending(void) {
    sigset_t s;
    REQUIRE(sigpending(&s) == 0);
    return sigismember(&s, SIGCHLD);
}

/* waitid on `pid` with `options`; prints what it says. */
static void show_waitid(const char *what, pid_t pid, int options) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    errno = 0;
    int r = waitid(P_PID, pid, &si, options);
    if (r != 0) {
        out("%s: waitid failed: %s\n", what, err(errno));
        failures++;
        return;
    }
    int status_is_sig = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED || si.si_code == CLD_STOPPED ||
                        si.si_code == CLD_CONTINUED;
    out("%s: si_signo %s, si_code %s, si_status %s%d, si_pid is the child: %s, si_uid is ours: %s\n", what,
        signame(si.si_signo), codename(SIGCHLD, si.si_code), status_is_sig ? "signal " : "",
        si.si_status, si.si_pid == pid ? "yes" : "no", si.si_uid == getuid() ? "yes" : "no");
}

static void show_handler(const char *what, pid_t pid) {
    out("%s: handler ran %d time(s): %s, %s, status %d, si_pid is the child: %s\n", what, chld_count,
        signame(chld_signo), codename(SIGCHLD, chld_code), chld_status, chld_pid == pid ? "yes" : "no");
    chld_count = 0;
}

/* Waits (at most 10 s) for the blocked SIGCHLD and prints its siginfo. */
static void wait_chld_signal(const char *what, pid_t pid) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec ten = {10, 0};
    int sig = sigtimedwait(&s, &si, &ten);
    if (sig < 0) {
        out("%s: sigtimedwait: %s\n", what, err(errno));
        failures++;
        return;
    }
    out("%s: %s, %s, status signal %s, si_pid is the child: %s\n", what, signame(sig),
        codename(SIGCHLD, si.si_code), signame(si.si_status), si.si_pid == pid ? "yes" : "no");
}

static void section_exited(void) {
    install(0);
    block_chld(SIG_BLOCK);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(42);
    show_waitid("waitid WEXITED|WNOWAIT", pid, WEXITED | WNOWAIT);
    check("SIGCHLD pending once the exit is visible", chld_pending());
    check("kill(child, 0) still finds the zombie", kill(pid, 0) == 0);
    block_chld(SIG_UNBLOCK);
    show_handler("SIGCHLD", pid);
    show_waitid("waitid WEXITED", pid, WEXITED);
    errno = 0;
    check("kill(child, 0) after reaping fails with ESRCH", kill(pid, 0) == -1 && errno == ESRCH);
    siginfo_t si;
    errno = 0;
    out("waitid P_ALL with no children: %s\n", waitid(P_ALL, 0, &si, WEXITED) == 0 ? "ok" : err(errno));
    errno = 0;
    out("waitpid(-1) with no children: %s\n", waitpid(-1, NULL, 0) == -1 ? err(errno) : "ok");
}

static void section_killed(void) {
    install(0);
    block_chld(SIG_BLOCK);
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        REQUIRE(write(p[1], "r", 1) == 1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    REQUIRE(read(p[0], &c, 1) == 1);
    close(p[0]);
    REQUIRE(kill(pid, SIGTERM) == 0);
    show_waitid("child killed by SIGTERM", pid, WEXITED | WNOWAIT);
    block_chld(SIG_UNBLOCK);
    show_handler("SIGCHLD", pid);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    out("waitpid: WIFSIGNALED %s, WTERMSIG %s, WCOREDUMP %s\n", WIFSIGNALED(st) ? "yes" : "no",
        signame(WTERMSIG(st)), WCOREDUMP(st) ? "yes" : "no");

    block_chld(SIG_BLOCK);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    show_waitid("child that sent itself SIGKILL", pid, WEXITED);
    block_chld(SIG_UNBLOCK);
    show_handler("SIGCHLD", pid);
}

static void section_stopped(void) {
    install(0);
    block_chld(SIG_BLOCK);
    /* After being continued, a child waits for the pipe to close before it exits: a child
     * that is already a zombie no longer reports "continued". */
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        raise(SIGSTOP);
        _exit(read(p[0], p, 1) == 0 ? 7 : 70);
    }
    show_waitid("child stopped itself", pid, WSTOPPED);
    /* The stopping (or continued) child sends the SIGCHLD itself, possibly just after waitid
     * saw the state change: wait for the signal rather than expecting it pending. */
    wait_chld_signal("SIGCHLD for the stop", pid);
    REQUIRE(kill(pid, SIGCONT) == 0);
    show_waitid("child continued", pid, WCONTINUED);
    wait_chld_signal("SIGCHLD for the continue", pid);
    block_chld(SIG_UNBLOCK);
    close(p[1]);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    out("then exited: WIFEXITED %s, status %d\n", WIFEXITED(st) ? "yes" : "no", WEXITSTATUS(st));
    close(p[0]);

    /* waitpid's view of the same: WUNTRACED and WCONTINUED. */
    REQUIRE(pipe(p) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        raise(SIGSTOP);
        _exit(read(p[0], p, 1) == 0 ? 8 : 80);
    }
    REQUIRE(waitpid(pid, &st, WUNTRACED) == pid);
    out("waitpid WUNTRACED: WIFSTOPPED %s, WSTOPSIG %s\n", WIFSTOPPED(st) ? "yes" : "no", signame(WSTOPSIG(st)));
    REQUIRE(kill(pid, SIGCONT) == 0);
    REQUIRE(waitpid(pid, &st, WCONTINUED) == pid);
    out("waitpid WCONTINUED: WIFCONTINUED %s\n", WIFCONTINUED(st) ? "yes" : "no");
    close(p[1]);
    close(p[0]);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    out("then exited with %d\n", WEXITSTATUS(st));
}

static void section_nohang(void) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        char c;
        /* Runs until the parent closes the pipe. */
        _exit(read(p[0], &c, 1) == 0 ? 5 : 6);
    }
    close(p[0]);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    errno = 0;
    int r = waitid(P_PID, pid, &si, WEXITED | WNOHANG);
    out("waitid WNOHANG on a running child: %d %s, si_pid 0: %s\n", r, err(r ? errno : 0), si.si_pid == 0 ? "yes" : "no");
    out("waitpid WNOHANG on a running child: %d\n", waitpid(pid, NULL, WNOHANG));
    close(p[1]);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    out("child exited with %d after the pipe closed\n", WEXITSTATUS(st));
    errno = 0;
    out("waitid on a pid that is not our child: %s\n", waitid(P_PID, 1 << 22, &si, WEXITED) == 0 ? "ok" : err(errno));
    errno = 0;
    out("waitid with no state option: %s\n", waitid(P_ALL, 0, &si, WNOHANG) == 0 ? "ok" : err(errno));
}

/* SA_NOCLDSTOP: a stop queues no SIGCHLD; an exit still does. */
static void section_nocldstop(void) {
    install(SA_NOCLDSTOP);
    block_chld(SIG_BLOCK);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(9);
    }
    show_waitid("stopped (SA_NOCLDSTOP)", pid, WSTOPPED);
    check("no SIGCHLD pending for the stop", !chld_pending());
    REQUIRE(kill(pid, SIGCONT) == 0);
    show_waitid("exited (SA_NOCLDSTOP)", pid, WEXITED | WNOWAIT);
    check("SIGCHLD pending for the exit", chld_pending());
    block_chld(SIG_UNBLOCK);
    show_handler("SIGCHLD", pid);
    REQUIRE(waitpid(pid, NULL, 0) == pid);
}

/* SIGCHLD ignored: children leave no zombies; wait blocks until they are gone, then ECHILD. */
static void section_ignored(void) {
    signal(SIGCHLD, SIG_IGN);
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            _exit(i);
    }
    errno = 0;
    int r = wait(NULL);
    out("wait() with SIGCHLD ignored and 3 children: %d %s\n", r, err(r < 0 ? errno : 0));
    signal(SIGCHLD, SIG_DFL);
}

/* Every section ends with all its children reaped, so no SIGCHLD can come later; resetting the
 * action to SIG_DFL (default: ignore) discards one still pending. */
#define SECTION(name, fn)                                                                  \
    static void run_##fn(void) {                                                          \
        fn();                                                                              \
        signal(SIGCHLD, SIG_DFL);                                                          \
        block_chld(SIG_UNBLOCK);                                                           \
        chld_count = 0;                                                                    \
    }
SECTION("exited", section_exited)
SECTION("killed", section_killed)
SECTION("stopped", section_stopped)
SECTION("nohang", section_nohang)
SECTION("nocldstop", section_nocldstop)
SECTION("ignored", section_ignored)

int main(int argc, char **argv) {
    static const struct section sections[] = {
        {"exited", run_section_exited},   {"killed", run_section_killed},       {"stopped", run_section_stopped},
        {"nohang", run_section_nohang},   {"nocldstop", run_section_nocldstop}, {"ignored", run_section_ignored},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
