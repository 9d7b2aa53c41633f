/*
 * timerfd: one-shot and periodic timers, expiration counts, non-blocking reads, gettime,
 * absolute times, argument errors, poll and epoll readiness.
 *
 * usage: timerfd [SECTION...]
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#define MS 1000000L

/* Prints "what: r ERRNO" or "what: r" for a result taken before errno is read. */
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

/* Reads the expiration count: prints "what: 8 count N" or the errno. */
static void rd(const char *what, int fd) {
    uint64_t n = 0;
    errno = 0;
    long r = read(fd, &n, 8);
    int e = errno;
    if (r < 0)
        out("%s: -1 %s\n", what, err(e));
    else
        out("%s: %ld count %llu\n", what, r, (unsigned long long)n);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * MS};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static struct itimerspec its(long value_ms, long interval_ms) {
    struct itimerspec t = {{interval_ms / 1000, (interval_ms % 1000) * MS}, {value_ms / 1000, (value_ms % 1000) * MS}};
    return t;
}

static void oneshot(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    REQUIRE(fd >= 0);
    check("cloexec set", fcntl(fd, F_GETFD) == FD_CLOEXEC);
    check("nonblock set", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    uint64_t n = 0;
    SHOW("read disarmed", read(fd, &n, 8));
    struct itimerspec cur;
    REQUIRE(timerfd_gettime(fd, &cur) == 0);
    check("disarmed gettime is zero", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0 && cur.it_interval.tv_sec == 0);
    struct itimerspec t = its(20, 0), old;
    REQUIRE(timerfd_settime(fd, 0, &t, &old) == 0);
    check("old setting was zero", old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);
    REQUIRE(timerfd_gettime(fd, &cur) == 0);
    check("armed gettime in (0, 20ms]", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20 * MS);
    SHOW("read before expiry", read(fd, &n, 8));
    struct pollfd p = {fd, POLLIN, 0};
    int pr = poll(&p, 1, 5000);
    out("poll until expiry: %d revents %#x\n", pr, p.revents);
    rd("read", fd);
    SHOW("read again", read(fd, &n, 8));
    REQUIRE(timerfd_gettime(fd, &cur) == 0);
    check("expired one-shot gettime is zero", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    p.revents = 0;
    out("poll after read: %d\n", poll(&p, 1, 0));
    /* A blocking read on a blocking fd. */
    int b = timerfd_create(CLOCK_REALTIME, 0);
    REQUIRE(b >= 0);
    t = its(10, 0);
    REQUIRE(timerfd_settime(b, 0, &t, NULL) == 0);
    rd("blocking read", b);
    /* Disarming drops unread expirations. */
    t = its(1, 0);
    REQUIRE(timerfd_settime(b, 0, &t, NULL) == 0);
    sleep_ms(10);
    struct itimerspec zero = its(0, 0);
    REQUIRE(timerfd_settime(b, 0, &zero, NULL) == 0);
    REQUIRE(fcntl(b, F_SETFL, O_NONBLOCK) == 0);
    SHOW("read after disarm", read(b, &n, 8));
    close(b);
    close(fd);
}

static void periodic(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    REQUIRE(fd >= 0);
    struct itimerspec t = its(5, 5), cur;
    REQUIRE(timerfd_settime(fd, 0, &t, NULL) == 0);
    sleep_ms(60);
    uint64_t n = 0;
    REQUIRE(read(fd, &n, 8) == 8);
    check("at least 10 expirations counted after 60ms", n >= 10);
    REQUIRE(timerfd_gettime(fd, &cur) == 0);
    check("interval reported", cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 5 * MS);
    check("next expiry within an interval", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 5 * MS);
    n = 0;
    REQUIRE(read(fd, &n, 8) == 8);
    check("blocking read counts at least one more", n >= 1);
    /* Absolute time in the past: expires at once. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {{0, 0}, {now.tv_sec - 1 > 0 ? now.tv_sec - 1 : 0, 1}};
    REQUIRE(timerfd_settime(fd, TFD_TIMER_ABSTIME, &abs, NULL) == 0);
    rd("absolute time in the past", fd);
    /* Absolute realtime 30ms ahead. */
    int r = timerfd_create(CLOCK_REALTIME, 0);
    REQUIRE(r >= 0);
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 30 * MS;
    if (now.tv_nsec >= 1000000000) {
        now.tv_sec++;
        now.tv_nsec -= 1000000000;
    }
    struct itimerspec rabs = {{0, 0}, now};
    REQUIRE(timerfd_settime(r, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &rabs, NULL) == 0);
    int64_t start = now_ns();
    rd("absolute realtime", r);
    check("absolute realtime waited", now_ns() - start >= 10 * MS);
    close(r);
    close(fd);
}

static void errors(void) {
    SHOW("bad clock", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
    SHOW("bad flags", timerfd_create(CLOCK_MONOTONIC, 1));
    int fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    REQUIRE(fd >= 0);
    struct itimerspec bad = its(0, 0);
    bad.it_value.tv_nsec = 1000000000;
    SHOW("bad nsec", timerfd_settime(fd, 0, &bad, NULL));
    struct itimerspec ok = its(1000, 0);
    SHOW("bad settime flags", timerfd_settime(fd, 4, &ok, NULL));
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    SHOW("settime on a pipe", timerfd_settime(pfd[0], 0, &ok, NULL));
    struct itimerspec cur;
    SHOW("gettime on a pipe", timerfd_gettime(pfd[0], &cur));
    SHOW("gettime on a bad fd", timerfd_gettime(999, &cur));
    char small[4];
    SHOW("short read", read(fd, small, 4));
    SHOW("write", write(fd, "12345678", 8));
    close(pfd[0]);
    close(pfd[1]);
    close(fd);
}

static void epoll(void) {
    int ep = epoll_create1(0);
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    REQUIRE(ep >= 0 && fd >= 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 7}, got[2];
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    out("epoll before arming: %d\n", epoll_wait(ep, got, 2, 0));
    struct itimerspec t = its(10, 10);
    REQUIRE(timerfd_settime(fd, 0, &t, NULL) == 0);
    int n = epoll_wait(ep, got, 2, 5000);
    out("epoll wait: %d events %#x data %llu\n", n, n > 0 ? got[0].events : 0, n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
    uint64_t c = 0;
    check("read after epoll", read(fd, &c, 8) == 8 && c >= 1);
    n = epoll_wait(ep, got, 2, 5000);
    out("epoll wait for the next period: %d\n", n);
    close(fd);
    close(ep);
}

int main(int argc, char **argv) {
    static const struct section s[] = {{"oneshot", oneshot}, {"periodic", periodic}, {"errors", errors}, {"epoll", epoll}};
    return run_sections(s, sizeof s / sizeof s[0], argc, argv);
}
