/*
 * epoll and eventfd: level- and edge-triggered readiness, EPOLLONESHOT and MOD re-arming,
 * epoll_ctl errors, epoll on pipes, eventfds and nested epolls, timeouts, maxevents,
 * epoll_pwait's signal mask, and an epoll_wait in one thread woken by a write in another.
 *
 * usage: epoll
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, op, fd, &ev);
}

/* epoll_wait with a zero timeout; prints "what: n [events/data ...]". */
static void waitshow(const char *what, int ep, int max, int timeout) {
    struct epoll_event evs[8];
    errno = 0;
    int n = epoll_wait(ep, evs, max, timeout);
    if (n < 0) {
        out("%s: -1 %s\n", what, err(errno));
        return;
    }
    char buf[512];
    int off = snprintf(buf, sizeof buf, "%s: %d", what, n);
    for (int i = 0; i < n && off < (int)sizeof buf; i++)
        off += snprintf(buf + off, sizeof buf - off, " [%#x/%llu]", evs[i].events, (unsigned long long)evs[i].data.u64);
    out("%s\n", buf);
}

static void basics(void) {
    out("-- basics\n");
    SHOW("epoll_create(0)", epoll_create(0));
    SHOW("epoll_create1(bad)", epoll_create1(1));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    check("cloexec", fcntl(ep, F_GETFD) == FD_CLOEXEC);
    out("F_GETFL: %#x\n", fcntl(ep, F_GETFL));
    struct stat st;
    REQUIRE(fstat(ep, &st) == 0);
    out("epoll mode: %#o\n", st.st_mode);
    int p[2];
    REQUIRE(pipe(p) == 0);
    SHOW("ctl add", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 10));
    SHOW("ctl add again", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 10));
    SHOW("ctl mod unknown", ctl(ep, EPOLL_CTL_MOD, p[1], EPOLLOUT, 0));
    SHOW("ctl del unknown", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    SHOW("ctl bad op", ctl(ep, 7, p[1], EPOLLOUT, 0));
    SHOW("ctl self", ctl(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 0));
    SHOW("ctl bad fd", ctl(ep, EPOLL_CTL_ADD, 999, EPOLLIN, 0));
    SHOW("ctl not epoll", ctl(p[0], EPOLL_CTL_ADD, p[1], EPOLLOUT, 0));
    int reg = open("/proc/self/exe", O_RDONLY);
    if (reg < 0)
        reg = open("/", O_RDONLY | O_DIRECTORY);
    REQUIRE(reg >= 0);
    SHOW("ctl regular/dir file", ctl(ep, EPOLL_CTL_ADD, reg, EPOLLIN, 0));
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    SHOW("ctl directory", ctl(ep, EPOLL_CTL_ADD, dir, EPOLLIN, 0));
    SHOW("ctl exclusive+oneshot", ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 0));
    SHOW("ctl exclusive", ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 11));
    SHOW("ctl mod exclusive", ctl(ep, EPOLL_CTL_MOD, p[1], EPOLLOUT, 11));
    SHOW("ctl del", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    struct epoll_event evs[2];
    SHOW("wait maxevents 0", epoll_wait(ep, evs, 0, 0));
    SHOW("wait maxevents huge", syscall(SYS_epoll_wait, ep, evs, INT32_MAX / 12 + 1, 0));
    SHOW("wait bad fd", epoll_wait(999, evs, 1, 0));
    SHOW("wait not epoll", epoll_wait(p[0], evs, 1, 0));
    SHOW("read epoll", read(ep, evs, sizeof evs));
    waitshow("empty", ep, 8, 0);
    int64_t t0 = now_ns();
    waitshow("timeout 50ms", ep, 8, 50);
    check("waited at least 50ms", now_ns() - t0 >= 50000000);
    struct timespec ts = {0, 30000000};
    t0 = now_ns();
    SHOW("pwait2 30ms", syscall(SYS_epoll_pwait2, ep, evs, 2, &ts, NULL, 8));
    check("waited at least 30ms", now_ns() - t0 >= 30000000);
    ts.tv_nsec = 1000000000;
    SHOW("pwait2 bad timespec", syscall(SYS_epoll_pwait2, ep, evs, 2, &ts, NULL, 8));
    close(reg);
    close(dir);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void level_and_edge(void) {
    out("-- level and edge\n");
    int ep = epoll_create(1);
    int a[2], b[2];
    REQUIRE(pipe2(a, O_NONBLOCK) == 0 && pipe2(b, O_NONBLOCK) == 0);
    ctl(ep, EPOLL_CTL_ADD, a[0], EPOLLIN, 1);
    ctl(ep, EPOLL_CTL_ADD, b[0], EPOLLIN | EPOLLET, 2);
    ctl(ep, EPOLL_CTL_ADD, a[1], EPOLLOUT | EPOLLET, 3);
    waitshow("writable edge", ep, 8, 0);
    waitshow("no new edge", ep, 8, 0);
    /* rvisor's wake-ups carry no event key: a write would be a (spurious) EPOLLOUT edge. */
    epoll_ctl(ep, EPOLL_CTL_DEL, a[1], NULL);
    write(a[1], "x", 1);
    write(b[1], "y", 1);
    waitshow("both readable", ep, 8, 0);
    waitshow("level again, edge not", ep, 8, 0);
    write(b[1], "z", 1);
    waitshow("new data is a new edge", ep, 8, 0);
    char buf[16];
    read(a[0], buf, sizeof buf);
    read(b[0], buf, sizeof buf);
    waitshow("drained", ep, 8, 0);
    write(b[1], "w", 1);
    read(b[0], buf, sizeof buf);
    write(b[1], "v", 1);
    waitshow("drain and refill", ep, 8, 0);
    /* maxevents rotates through ready level-triggered entries. */
    write(a[1], "x", 1);
    ctl(ep, EPOLL_CTL_MOD, b[0], EPOLLIN, 2);
    waitshow("max 1 (a)", ep, 1, 0);
    waitshow("max 1 (b)", ep, 1, 0);
    waitshow("max 1 (a again)", ep, 1, 0);
    /* Hang-up and error are reported unasked. */
    ctl(ep, EPOLL_CTL_MOD, b[0], 0, 2);
    close(b[1]);
    waitshow("hup", ep, 8, 0);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    waitshow("closed files vanish", ep, 8, 0);
    close(ep);
}

static void oneshot_and_dup(void) {
    out("-- oneshot and dup\n");
    int ep = epoll_create1(0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    write(p[1], "x", 1);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLONESHOT, 5);
    waitshow("oneshot", ep, 8, 0);
    waitshow("disarmed", ep, 8, 0);
    SHOW("mod rearm", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 6));
    waitshow("rearmed", ep, 8, 0);
    SHOW("add disarmed again", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 6));
    /* The entry belongs to the file description: closing one dup keeps it. */
    int d = dup(p[0]);
    SHOW("add dup", ctl(ep, EPOLL_CTL_ADD, d, EPOLLIN, 7));
    close(d);
    waitshow("dup closed, description open", ep, 8, 0);
    SHOW("del closed fd", epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL));
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void eventfds(void) {
    out("-- eventfd\n");
    SHOW("eventfd2 bad flags", eventfd(0, 0x10));
    int e = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    REQUIRE(e >= 0);
    out("F_GETFL: %#x cloexec %d\n", fcntl(e, F_GETFL), fcntl(e, F_GETFD));
    struct stat st;
    REQUIRE(fstat(e, &st) == 0);
    out("eventfd mode: %#o size %lld\n", st.st_mode, (long long)st.st_size);
    uint64_t v = 0;
    SHOW("short read", read(e, &v, 4));
    SHOW("read", read(e, &v, 8));
    out("value: %llu\n", (unsigned long long)v);
    SHOW("read empty", read(e, &v, 8));
    v = UINT64_MAX;
    SHOW("write max", write(e, &v, 8));
    v = UINT64_MAX - 1;
    SHOW("write max-1", write(e, &v, 8));
    v = 1;
    SHOW("write overflow", write(e, &v, 8));
    struct pollfd pf = {e, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    out("poll full: %#x\n", pf.revents);
    SHOW("read full", read(e, &v, 8));
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    int ep = epoll_create1(0);
    ctl(ep, EPOLL_CTL_ADD, s, EPOLLIN | EPOLLOUT, 8);
    ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLOUT | EPOLLET, 9);
    waitshow("eventfds", ep, 8, 0);
    SHOW("sem read", read(s, &v, 8));
    out("value: %llu\n", (unsigned long long)v);
    SHOW("sem read", read(s, &v, 8));
    SHOW("sem read empty", read(s, &v, 8));
    v = 4;
    write(e, &v, 8);
    waitshow("after write", ep, 8, 0);
    /* A nested epoll is readable while its inner entries are. */
    int outer = epoll_create1(0);
    ctl(outer, EPOLL_CTL_ADD, ep, EPOLLIN, 42);
    SHOW("loop", ctl(ep, EPOLL_CTL_ADD, outer, EPOLLIN, 0));
    waitshow("nested", outer, 8, 0);
    pf.fd = ep;
    pf.events = POLLIN;
    SHOW("poll on epoll", poll(&pf, 1, 0));
    close(outer);
    close(ep);
    close(s);
    close(e);
}

struct waker_arg {
    int fd;
    int delay_ms;
};

static void *waker(void *p) {
    struct waker_arg *a = p;
    struct timespec ts = {0, a->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t v = 1;
    write(a->fd, &v, 8);
    return NULL;
}

static void on_usr1(int sig) {
    (void)sig;
}

static void threads_and_signals(void) {
    out("-- threads and signals\n");
    int ep = epoll_create1(0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 77);
    struct waker_arg a = {p[1], 30};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, waker, &a) == 0);
    waitshow("woken by another thread", ep, 8, -1);
    pthread_join(th, NULL);
    /* An fd added by another thread while we sleep. */
    int e = eventfd(0, 0);
    struct waker_arg b = {e, 30};
    char buf[8];
    read(p[0], buf, sizeof buf);
    REQUIRE(pthread_create(&th, NULL, waker, &b) == 0);
    ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN, 78);
    waitshow("eventfd written by a thread", ep, 8, 5000);
    pthread_join(th, NULL);
    /* A signal: EINTR, never restarted, even with SA_RESTART. */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    uint64_t v;
    read(e, &v, 8);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    kill(getpid(), SIGUSR1);
    struct epoll_event evs[2];
    SHOW("blocked signal, timeout", epoll_wait(ep, evs, 2, 20));
    sigset_t none;
    sigemptyset(&none);
    SHOW("pwait unblocks it", epoll_pwait(ep, evs, 2, -1, &none));
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    check("mask restored after the handler", sigismember(&now, SIGUSR1));
    SHOW("pwait bad sigsetsize", syscall(SYS_epoll_pwait, ep, evs, 2, 0, &none, 4));
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(e);
    close(p[0]);
    close(p[1]);
    close(ep);
}

int main(void) {
    basics();
    level_and_edge();
    oneshot_and_dup();
    eventfds();
    threads_and_signals();
    return failures;
}
