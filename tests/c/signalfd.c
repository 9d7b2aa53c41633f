/*
 * signalfd: reading blocked pending signals as signalfd_siginfo records (kill, tgkill,
 * sigqueue, a child's kill), mask updates through the same fd, several records per read,
 * argument errors, poll and epoll readiness, a blocking read woken by another process's
 * signal, and a forked child reading its own signals through the inherited fd.
 *
 * usage: signalfd [SECTION...]
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void show(const char *what, long r, int e) {
    if (r < 0)
        out("%s: -1 %s\n", what, err(e));
    else
        out("%s: %ld\n", what, r);
}

#define SHOW(what, expr)                                                                   \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(expr);                                                            \
        show(what, r_, errno);                                                             \
    } while (0)

static void block(int a, int b) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, a);
    if (b)
        sigaddset(&s, b);
    REQUIRE(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
}

/* Reads one record and prints what does not vary between runs. */
static void rd(const char *what, int fd, pid_t expect_pid) {
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof si);
    errno = 0;
    long r = read(fd, &si, sizeof si);
    int e = errno;
    if (r < 0) {
        out("%s: -1 %s\n", what, err(e));
        return;
    }
    out("%s: %ld %s %s int %d pid %s uid %u\n", what, r, signame((int)si.ssi_signo), codename((int)si.ssi_signo, si.ssi_code),
        si.ssi_int, (pid_t)si.ssi_pid == expect_pid ? "as expected" : "OTHER", si.ssi_uid);
}

static int readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, 0);
    return n == 1 && (p.revents & POLLIN);
}

static void basic(void) {
    block(SIGUSR1, SIGUSR2);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGKILL);
    int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    REQUIRE(fd >= 0);
    check("cloexec", fcntl(fd, F_GETFD) == FD_CLOEXEC);
    rd("read with nothing pending", fd, 0);
    check("not readable", !readable(fd));
    raise(SIGUSR1);
    check("readable after raise", readable(fd));
    rd("read after raise", fd, getpid());
    check("not readable after read", !readable(fd));
    kill(getpid(), SIGUSR1);
    rd("read after kill", fd, getpid());
    union sigval v = {.sival_int = 42};
    REQUIRE(sigqueue(getpid(), SIGUSR1, v) == 0);
    rd("read after sigqueue", fd, getpid());
    raise(SIGUSR2);
    check("USR2 outside the mask is not readable", !readable(fd));
    rd("read with USR2 pending", fd, 0);
    sigaddset(&m, SIGUSR2);
    SHOW("update the mask", signalfd(fd, &m, 0));
    check("readable after the mask update", readable(fd));
    raise(SIGUSR1);
    struct signalfd_siginfo two[3];
    errno = 0;
    long r = read(fd, two, sizeof two);
    out("read of three records: %ld, %s then %s\n", r, signame((int)two[0].ssi_signo), signame((int)two[1].ssi_signo));
    sigset_t pend;
    sigpending(&pend);
    check("nothing left pending", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2));
    char small[64];
    raise(SIGUSR1);
    SHOW("short read", read(fd, small, sizeof small));
    rd("the signal is still there", fd, getpid());
    SHOW("write", write(fd, small, 8));
    close(fd);
}

static void errors(void) {
    sigset_t m;
    sigemptyset(&m);
    SHOW("bad sizemask", syscall(SYS_signalfd4, -1, &m, 4, 0));
    SHOW("bad flags", syscall(SYS_signalfd4, -1, &m, 8, 1));
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    SHOW("update a pipe", signalfd(pfd[0], &m, 0));
    SHOW("update a bad fd", signalfd(999, &m, 0));
    SHOW("bad mask pointer", syscall(SYS_signalfd4, -1, (void *)8, 8, 0));
    close(pfd[0]);
    close(pfd[1]);
}

static void epoll(void) {
    block(SIGUSR1, 0);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    int fd = signalfd(-1, &m, SFD_NONBLOCK);
    int ep = epoll_create1(0);
    REQUIRE(fd >= 0 && ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, got[2];
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    SHOW("epoll with nothing pending", epoll_wait(ep, got, 2, 0));
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    int n = epoll_wait(ep, got, 2, 5000);
    out("epoll wait for a child's kill: %d events %#x\n", n, n > 0 ? got[0].events : 0);
    rd("read", fd, child);
    REQUIRE(waitpid(child, NULL, 0) == child);
    close(ep);
    close(fd);
}

static void blocking(void) {
    block(SIGUSR1, 0);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    int fd = signalfd(-1, &m, 0);
    REQUIRE(fd >= 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        /* The child reads its own signals through the inherited fd. */
        raise(SIGUSR1);
        struct signalfd_siginfo si;
        int ok = read(fd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1 && (pid_t)si.ssi_pid == getpid();
        kill(getppid(), SIGUSR1);
        _exit(ok ? 0 : 1);
    }
    rd("blocking read woken by the child's kill", fd, child);
    int st;
    REQUIRE(waitpid(child, &st, 0) == child);
    check("the child read its own signal", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd);
}

int main(int argc, char **argv) {
    static const struct section s[] = {{"basic", basic}, {"errors", errors}, {"epoll", epoll}, {"blocking", blocking}};
    return run_sections(s, sizeof s / sizeof s[0], argc, argv);
}
