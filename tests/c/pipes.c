/*
 * Pipes: pipe2 flags (O_CLOEXEC, O_NONBLOCK, O_DIRECT packet mode), EOF, atomic writes of
 * PIPE_BUF bytes from two writer processes, EPIPE and SIGPIPE, F_GETPIPE_SZ/F_SETPIPE_SZ and
 * the capacity they set, FIONREAD, and poll/select/pselect readiness and timeouts.
 *
 * usage: pipes [SECTION...]   (sections: flags eof atomic epipe size poll select)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/select.h>
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

static int wait_status(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return st;
}

/* Fills a non-blocking pipe; returns how many bytes it took. */
static long fill_nonblocking(int wfd) {
    static char chunk[1024];
    long total = 0;
    for (;;) {
        ssize_t n = write(wfd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno != EAGAIN)
                return -1;
            /* Less than a chunk may still fit: then byte by byte. */
            while (write(wfd, chunk, 1) == 1)
                total++;
            return total;
        }
        total += n;
    }
}

/* ---- flags ---- */
static void section_flags(void) {
    int p[2];
    REQUIRE(pipe2(p, 0) == 0);
    out("pipe2(0): FD_CLOEXEC %d/%d, O_NONBLOCK %d/%d, read end O_ACCMODE is O_RDONLY: %s, write end O_WRONLY: %s\n",
        fcntl(p[0], F_GETFD) & FD_CLOEXEC, fcntl(p[1], F_GETFD) & FD_CLOEXEC,
        !!(fcntl(p[0], F_GETFL) & O_NONBLOCK), !!(fcntl(p[1], F_GETFL) & O_NONBLOCK),
        (fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY ? "yes" : "no",
        (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY ? "yes" : "no");
    SHOW("write to the read end", write(p[0], "x", 1));
    char c;
    SHOW("read from the write end", read(p[1], &c, 1));
    close(p[0]), close(p[1]);

    REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    out("pipe2(O_CLOEXEC|O_NONBLOCK): FD_CLOEXEC %d/%d, O_NONBLOCK %d/%d\n", fcntl(p[0], F_GETFD) & FD_CLOEXEC,
        fcntl(p[1], F_GETFD) & FD_CLOEXEC, !!(fcntl(p[0], F_GETFL) & O_NONBLOCK), !!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
    SHOW("read of an empty O_NONBLOCK pipe", read(p[0], &c, 1));
    long cap = fill_nonblocking(p[1]);
    out("bytes a non-blocking write could put into a new pipe: %ld\n", cap);
    SHOW("write to a full O_NONBLOCK pipe", write(p[1], "x", 1));
    /* Clearing O_NONBLOCK with F_SETFL on one end. */
    REQUIRE(fcntl(p[0], F_SETFL, 0) == 0);
    out("after F_SETFL 0: O_NONBLOCK %d\n", !!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    close(p[0]), close(p[1]);

    /* O_DIRECT: packet mode; each write is one packet, a read returns at most one. */
    REQUIRE(pipe2(p, O_DIRECT) == 0);
    out("pipe2(O_DIRECT): O_DIRECT in F_GETFL of the read end: %s, of the write end: %s\n",
        fcntl(p[0], F_GETFL) & O_DIRECT ? "yes" : "no", fcntl(p[1], F_GETFL) & O_DIRECT ? "yes" : "no");
    REQUIRE(write(p[1], "abc", 3) == 3 && write(p[1], "defgh", 5) == 5);
    char buf[100];
    ssize_t n1 = read(p[0], buf, sizeof buf);
    ssize_t n2 = read(p[0], buf + 10, sizeof buf - 10);
    out("packet reads: %zd '%.3s', %zd '%.5s'\n", n1, buf, n2, buf + 10);
    /* A read shorter than the packet discards the rest of it. */
    REQUIRE(write(p[1], "123456", 6) == 6 && write(p[1], "78", 2) == 2);
    n1 = read(p[0], buf, 2);
    n2 = read(p[0], buf + 10, sizeof buf - 10);
    out("short packet read: %zd '%.2s', then %zd '%.2s'\n", n1, buf, n2, buf + 10);
    close(p[0]), close(p[1]);

    SHOW("pipe2 with an unknown flag", pipe2(p, O_APPEND));
    SHOW("pipe2 with a bad pointer", syscall(SYS_pipe2, 8L, 0L));
}

/* ---- eof ---- */
static void section_eof(void) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    REQUIRE(write(p[1], "tail", 4) == 4);
    close(p[1]);
    char buf[16];
    ssize_t n = read(p[0], buf, sizeof buf);
    out("read after the writer closed: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    SHOW("then", read(p[0], buf, sizeof buf));
    close(p[0]);

    /* A reader blocked on an empty pipe gets EOF when the last writer (another process) exits. */
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        char c = 'k';
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        _exit(0); /* the last write end closes with the exit */
    }
    close(p[1]);
    char c;
    SHOW("blocking read, child wrote one byte", read(p[0], &c, 1));
    SHOW("blocking read until the child exited", read(p[0], &c, 1));
    wait_status(pid);
    close(p[0]);
    /* A dup of the write end keeps the pipe open. */
    REQUIRE(pipe2(p, O_NONBLOCK) == 0);
    int dup_w = dup(p[1]);
    close(p[1]);
    SHOW("read with a dup of the write end still open", read(p[0], &c, 1));
    close(dup_w);
    SHOW("read after the dup closed too", read(p[0], &c, 1));
    close(p[0]);
}

/* ---- atomic: two processes write 4096-byte records; none may interleave ---- */
#define RECORDS 500
static void writer(int fd, char letter) {
    char rec[PIPE_BUF];
    memset(rec, letter, sizeof rec);
    for (int i = 0; i < RECORDS; i++) {
        rec[0] = letter;
        if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
            _exit(1);
    }
    _exit(0);
}

static void section_atomic(void) {
    out("PIPE_BUF: %d\n", PIPE_BUF);
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t a = fork();
    REQUIRE(a >= 0);
    if (a == 0) {
        close(p[0]);
        writer(p[1], 'A');
    }
    pid_t b = fork();
    REQUIRE(b >= 0);
    if (b == 0) {
        close(p[0]);
        writer(p[1], 'B');
    }
    close(p[1]);
    /* Read in odd-sized pieces and cut the stream into records again. */
    static char rec[PIPE_BUF];
    size_t fill = 0;
    long count_a = 0, count_b = 0, mixed = 0, total = 0;
    char buf[3000];
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += n;
        for (ssize_t i = 0; i < n; i++) {
            rec[fill++] = buf[i];
            if (fill == PIPE_BUF) {
                int all_same = 1;
                for (int j = 1; j < PIPE_BUF; j++)
                    all_same &= rec[j] == rec[0];
                if (!all_same)
                    mixed++;
                else if (rec[0] == 'A')
                    count_a++;
                else if (rec[0] == 'B')
                    count_b++;
                else
                    mixed++;
                fill = 0;
            }
        }
    }
    close(p[0]);
    int sa = wait_status(a), sb = wait_status(b);
    out("bytes read: %ld, records from A: %ld, from B: %ld, interleaved: %ld\n", total, count_a, count_b, mixed);
    check("both writers exited 0", WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
}

/* ---- epipe ---- */
static volatile int sigpipe_count;
static void on_sigpipe(int sig) {
    (void)sig;
    sigpipe_count++;
}

static void section_epipe(void) {
    int p[2];
    /* Default action: a writer to a pipe without readers dies of SIGPIPE. */
    REQUIRE(pipe(p) == 0);
    close(p[0]);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        ssize_t r = write(p[1], "x", 1);
        _exit(r < 0 ? 10 : 11);
    }
    int st = wait_status(pid);
    out("write with no reader, SIGPIPE default: %s %s\n", WIFSIGNALED(st) ? "killed by" : "exited",
        WIFSIGNALED(st) ? signame(WTERMSIG(st)) : "");

    /* Ignored: write fails with EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    SHOW("write with no reader, SIGPIPE ignored", write(p[1], "x", 1));

    /* Handled: the handler runs once per write, which then fails with EPIPE. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    REQUIRE(sigaction(SIGPIPE, &sa, NULL) == 0);
    SHOW("write with no reader, SIGPIPE handled", write(p[1], "x", 1));
    SHOW("again", write(p[1], "yz", 2));
    out("handler ran %d time(s)\n", sigpipe_count);

    /* Blocked: EPIPE, and SIGPIPE stays pending. */
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    REQUIRE(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
    SHOW("write with no reader, SIGPIPE blocked", write(p[1], "x", 1));
    sigpending(&pend);
    check("SIGPIPE pending", sigismember(&pend, SIGPIPE));
    sigpipe_count = 0;
    REQUIRE(sigprocmask(SIG_UNBLOCK, &s, NULL) == 0);
    out("handler ran %d time(s) on unblocking\n", sigpipe_count);
    close(p[1]);

    /* A writer blocked on a full pipe gets EPIPE when the reader goes away. */
    REQUIRE(pipe(p) == 0);
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        close(ready[0]);
        signal(SIGPIPE, SIG_IGN);
        int fl = fcntl(p[1], F_GETFL);
        fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
        fill_nonblocking(p[1]);
        fcntl(p[1], F_SETFL, fl);
        if (write(ready[1], "f", 1) != 1)
            _exit(1);
        ssize_t r = write(p[1], "more", 4); /* blocks: the pipe is full */
        _exit(r < 0 && errno == EPIPE ? 0 : 2);
    }
    close(p[1]);
    close(ready[1]);
    char c;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(p[0]); /* wakes the blocked writer */
    st = wait_status(pid);
    out("blocked writer when the reader closed: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "EPIPE" : "other");
    close(ready[0]);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- size ---- */
static void section_size(void) {
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK) == 0);
    SHOW("F_GETPIPE_SZ of a new pipe", fcntl(p[0], F_GETPIPE_SZ));
    SHOW("F_SETPIPE_SZ 100000", fcntl(p[1], F_SETPIPE_SZ, 100000));
    SHOW("F_GETPIPE_SZ on the other end", fcntl(p[0], F_GETPIPE_SZ));
    out("bytes that fit: %ld\n", fill_nonblocking(p[1]));
    int n;
    REQUIRE(ioctl(p[0], FIONREAD, &n) == 0);
    out("FIONREAD: %d\n", n);
    SHOW("F_SETPIPE_SZ 4096 while 131072 bytes are in it", fcntl(p[1], F_SETPIPE_SZ, 4096));
    /* Drain, then shrink. */
    static char buf[1 << 16];
    while (read(p[0], buf, sizeof buf) > 0)
        ;
    SHOW("F_SETPIPE_SZ 1 on the empty pipe", fcntl(p[1], F_SETPIPE_SZ, 1));
    out("bytes that fit: %ld\n", fill_nonblocking(p[1]));
    REQUIRE(ioctl(p[0], FIONREAD, &n) == 0);
    out("FIONREAD: %d\n", n);
    while (read(p[0], buf, sizeof buf) > 0)
        ;
    SHOW("F_SETPIPE_SZ 65536", fcntl(p[1], F_SETPIPE_SZ, 65536));
    SHOW("F_SETPIPE_SZ 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    SHOW("F_SETPIPE_SZ -1", fcntl(p[1], F_SETPIPE_SZ, -1));
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    SHOW("F_GETPIPE_SZ on a directory", fcntl(dir, F_GETPIPE_SZ));
    close(dir);
    close(p[0]), close(p[1]);
}

/* ---- poll ---- */
static const char *revents(short r) {
    static char buf[64];
    buf[0] = 0;
    if (r & POLLIN)
        strcat(buf, "IN|");
    if (r & POLLOUT)
        strcat(buf, "OUT|");
    if (r & POLLHUP)
        strcat(buf, "HUP|");
    if (r & POLLERR)
        strcat(buf, "ERR|");
    if (r & POLLNVAL)
        strcat(buf, "NVAL|");
    if (buf[0])
        buf[strlen(buf) - 1] = 0;
    else
        strcpy(buf, "none");
    return buf;
}

static void poll_one(const char *what, int fd, short events, int timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = events};
    int64_t t0 = now_ns();
    int r = poll(&pfd, 1, timeout_ms);
    int64_t ms = (now_ns() - t0) / 1000000;
    out("%s: poll returned %d, revents %s", what, r, revents(pfd.revents));
    if (timeout_ms > 0 && r == 0)
        out(", waited the timeout: %s", ms >= timeout_ms && ms < 5000 ? "yes" : "no");
    out("\n");
}

static void section_poll(void) {
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK) == 0);
    poll_one("empty pipe, read end, 50 ms", p[0], POLLIN, 50);
    poll_one("empty pipe, read end, timeout 0", p[0], POLLIN, 0);
    poll_one("empty pipe, write end", p[1], POLLOUT, 1000);
    REQUIRE(write(p[1], "x", 1) == 1);
    poll_one("one byte in it, read end", p[0], POLLIN, 1000);
    fill_nonblocking(p[1]);
    poll_one("full pipe, write end, 50 ms", p[1], POLLOUT, 50);
    /* POLLOUT comes back once PIPE_BUF bytes are free. */
    static char buf[PIPE_BUF];
    REQUIRE(read(p[0], buf, 100) == 100);
    poll_one("full pipe less 100 bytes, write end, timeout 0", p[1], POLLOUT, 0);
    REQUIRE(read(p[0], buf, PIPE_BUF) == PIPE_BUF);
    poll_one("PIPE_BUF+100 bytes free, write end", p[1], POLLOUT, 1000);
    close(p[1]);
    poll_one("writer closed, data left, read end", p[0], POLLIN, 1000);
    while (read(p[0], buf, sizeof buf) > 0)
        ;
    poll_one("writer closed, drained, read end", p[0], POLLIN, 1000);
    close(p[0]);

    REQUIRE(pipe(p) == 0);
    close(p[0]);
    poll_one("reader closed, write end", p[1], POLLOUT, 1000);
    close(p[1]);
    poll_one("closed fd", p[1], POLLIN, 1000);
    struct pollfd neg = {.fd = -1, .events = POLLIN, .revents = 0x7};
    int r = poll(&neg, 1, 0);
    out("negative fd: poll returned %d, revents cleared: %s\n", r, neg.revents == 0 ? "yes" : "no");

    /* A poll with no timeout woken by another process's write. */
    REQUIRE(pipe(p) == 0);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) /* wait for the parent to be (about to be) in poll */
            _exit(1);
        if (write(p[1], "w", 1) != 1)
            _exit(2);
        /* Stay until the parent has seen the byte: an exit would add POLLHUP. */
        _exit(read(go[0], &c, 1) == 0 ? 0 : 3);
    }
    close(p[1]);
    close(go[0]);
    REQUIRE(write(go[1], "g", 1) == 1);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    r = poll(&pfd, 1, -1);
    out("poll(-1) woken by a child's write: %d, revents %s\n", r, revents(pfd.revents));
    close(go[1]);
    int st = wait_status(pid);
    check("child exited 0", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[0]);
}

/* ---- select ---- */
static void section_select(void) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = {0, 50 * 1000};
    int64_t t0 = now_ns();
    int r = select(p[0] + 1, &rd, NULL, NULL, &tv);
    int64_t ms = (now_ns() - t0) / 1000000;
    out("select on an empty pipe, 50 ms: %d, read set still has it: %s, waited the timeout: %s, timeval left 0: %s\n",
        r, FD_ISSET(p[0], &rd) ? "yes" : "no", ms >= 50 && ms < 5000 ? "yes" : "no",
        tv.tv_sec == 0 && tv.tv_usec == 0 ? "yes" : "no");

    REQUIRE(write(p[1], "abc", 3) == 3);
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(p[0], &rd);
    FD_SET(p[1], &wr);
    tv = (struct timeval){5, 0};
    r = select(p[1] + 1, &rd, &wr, NULL, &tv);
    out("select with data in the pipe: %d, readable: %s, writable: %s, time left over 1 s: %s\n", r,
        FD_ISSET(p[0], &rd) ? "yes" : "no", FD_ISSET(p[1], &wr) ? "yes" : "no", tv.tv_sec >= 1 ? "yes" : "no");

    /* pselect with a timespec that it does not update, and a signal mask. */
    char buf[8];
    REQUIRE(read(p[0], buf, sizeof buf) == 3);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timespec ts = {0, 30 * 1000000};
    sigset_t mask;
    sigemptyset(&mask);
    r = pselect(p[0] + 1, &rd, NULL, NULL, &ts, &mask);
    out("pselect on an empty pipe, 30 ms: %d, timespec unchanged: %s\n", r,
        ts.tv_sec == 0 && ts.tv_nsec == 30 * 1000000 ? "yes" : "no");

    close(p[1]);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv = (struct timeval){5, 0};
    r = select(p[0] + 1, &rd, NULL, NULL, &tv);
    out("select after the writer closed: %d, readable (EOF): %s\n", r, FD_ISSET(p[0], &rd) ? "yes" : "no");
    close(p[0]);

    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv = (struct timeval){0, 0};
    errno = 0;
    r = select(p[0] + 1, &rd, NULL, NULL, &tv);
    out("select on a closed fd: %d %s\n", r, err(r < 0 ? errno : 0));
    tv = (struct timeval){0, -1};
    errno = 0;
    r = select(0, NULL, NULL, NULL, &tv);
    out("select with a negative timeout: %d %s\n", r, err(r < 0 ? errno : 0));
}

int main(int argc, char **argv) {
    static const struct section sections[] = {
        {"flags", section_flags}, {"eof", section_eof},   {"atomic", section_atomic}, {"epipe", section_epipe},
        {"size", section_size},   {"poll", section_poll}, {"select", section_select},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
