/* Socket buffers: what a full AF_UNIX socket does, and (in rvisor) the sandbox-wide cap on
 * all sockets' queued bytes.
 *
 *   sockbuf own             one pair: EAGAIN when full, poll not writable, writable again
 *                           after the reader drains, EMSGSIZE for an oversized datagram
 *   sockbuf blocked-same    a blocking writer in a child unblocks when the parent drains
 *                           the same socket
 *   sockbuf bounded N KIB   fills N pairs until EAGAIN: the total stays within KIB, late
 *                           pairs get nothing, and draining pair 0 makes the last one
 *                           writable (only under a sandbox-wide cap)
 *   sockbuf blocked-other N a child blocked writing to a fresh pair while N full pairs hold
 *                           the budget unblocks when the parent drains pair 0 (cap only)
 *   sockbuf close N         fills N pairs, closes them, and a filled pair whose reader is
 *                           in flight (SCM_RIGHTS) in a closed pair; refilling takes as
 *                           much as the first time
 *   sockbuf all N KIB       bounded, blocked-other and close in turn
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 4096
#define MAXPAIRS 1024

static char chunk[CHUNK];
static char big[256 * 1024];

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static void mkpair(int type, int sv[2]) {
    if (socketpair(AF_UNIX, type, 0, sv) < 0)
        die("socketpair");
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
}

/* Writes chunks to a non-blocking socket until EAGAIN: the bytes taken. */
static long fill(int fd) {
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, chunk, CHUNK);
        if (n < 0) {
            if (errno != EAGAIN)
                die("fill write");
            return total;
        }
        total += n;
    }
}

/* Reads a non-blocking socket until EAGAIN: the bytes read. */
static long drain(int fd) {
    long total = 0;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                die("drain read");
            return total;
        }
        if (n == 0)
            return total;
        total += n;
    }
}

static const char *writable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r = poll(&p, 1, 0);
    if (r < 0)
        die("poll");
    return (r == 1 && (p.revents & POLLOUT)) ? "yes" : "no";
}

static const char *write_result(int fd, const void *buf, size_t len) {
    ssize_t n = write(fd, buf, len);
    if (n == (ssize_t)len)
        return "ok";
    if (n >= 0)
        return "short";
    return errno == EAGAIN ? "EAGAIN" : errno == EMSGSIZE ? "EMSGSIZE" : strerror(errno);
}

static void own(void) {
    int sv[2], dv[2];
    mkpair(SOCK_STREAM, sv);
    long n = fill(sv[0]);
    printf("own: filled until EAGAIN: %s\n", n > 0 ? "yes" : "no");
    printf("own: writable when full: %s\n", writable(sv[0]));
    printf("own: drained all: %s\n", drain(sv[1]) == n ? "yes" : "no");
    printf("own: writable after drain: %s\n", writable(sv[0]));
    printf("own: write after drain: %s\n", write_result(sv[0], chunk, CHUNK));
    mkpair(SOCK_DGRAM, dv);
    printf("own: oversized datagram: %s\n", write_result(dv[0], big, sizeof big));
    close(sv[0]);
    close(sv[1]);
    close(dv[0]);
    close(dv[1]);
}

/* A child writes 1000 bytes blocking to `fd` after a non-blocking try; the parent learns
 * through a pipe that it is about to block, drains `drain_fd`, waits for the child and
 * drains `peer`: the bytes read by the first drain, and in `*late` by the second. */
static long blocked_writer(const char *tag, int fd, int drain_fd, int peer, long *late) {
    int pp[2];
    if (pipe(pp) < 0)
        die("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(pp[0]);
        printf("%s: child nonblocking write: %s\n", tag, write_result(fd, chunk, 1000));
        fflush(stdout);
        if (fcntl(fd, F_SETFL, 0) < 0)
            die("fcntl");
        if (write(pp[1], "b", 1) != 1)
            die("pipe write");
        ssize_t n = write(fd, chunk, 1000);
        printf("%s: child blocking write: %zd\n", tag, n);
        fflush(stdout);
        _exit(n == 1000 ? 0 : 1);
    }
    close(pp[1]);
    char c;
    if (read(pp[0], &c, 1) != 1)
        die("pipe read");
    close(pp[0]);
    /* Give the child a chance to be asleep in its write (the result does not depend on it). */
    for (int i = 0; i < 1000; i++)
        sched_yield();
    long got = drain(drain_fd);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    printf("%s: child exit: %d\n", tag, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    *late = drain(peer);
    return got;
}

static void blocked_same(void) {
    int sv[2];
    mkpair(SOCK_STREAM, sv);
    long filled = fill(sv[0]);
    long late;
    long got = blocked_writer("blocked-same", sv[0], sv[1], sv[1], &late);
    printf("blocked-same: reader got everything: %s\n", got + late == filled + 1000 ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
}

static int pairs[MAXPAIRS][2];

static long fill_pairs(int n, int *empty) {
    long total = 0;
    *empty = 0;
    for (int i = 0; i < n; i++) {
        mkpair(SOCK_STREAM, pairs[i]);
        long got = fill(pairs[i][0]);
        if (got == 0)
            (*empty)++;
        total += got;
    }
    return total;
}

static void close_pairs(int n) {
    for (int i = 0; i < n; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
}

static void bounded(int n, long kib) {
    int empty, dv[2];
    long total = fill_pairs(n, &empty);
    printf("bounded: total within %ld KiB: %s\n", kib, total <= kib * 1024 ? "yes" : "no");
    printf("bounded: some pairs got nothing: %s\n", empty > 0 ? "yes" : "no");
    printf("bounded: last pair writable: %s\n", writable(pairs[n - 1][0]));
    mkpair(SOCK_DGRAM, dv);
    printf("bounded: datagram within its sndbuf: %s\n", write_result(dv[0], big, 200000));
    printf("bounded: drained pair 0: %s\n", drain(pairs[0][1]) > 0 ? "yes" : "no");
    printf("bounded: last pair writable after draining pair 0: %s\n", writable(pairs[n - 1][0]));
    printf("bounded: write to last pair: %s\n", write_result(pairs[n - 1][0], chunk, CHUNK));
    close(dv[0]);
    close(dv[1]);
    close_pairs(n);
}

static void blocked_other(int n) {
    int empty, sv[2];
    fill_pairs(n, &empty);
    mkpair(SOCK_STREAM, sv);
    long late;
    blocked_writer("blocked-other", sv[0], pairs[0][1], sv[1], &late);
    printf("blocked-other: reader got the child's bytes: %s\n", late == 1000 ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
    close_pairs(n);
}

/* Sends `fd` over the socket `via` with SCM_RIGHTS. */
static void send_fd(int via, int fd) {
    char byte = 'f';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(via, &m, 0) != 1)
        die("sendmsg");
}

static void closing(int n) {
    int empty, x[2], y[2];
    long first = fill_pairs(n, &empty);
    close_pairs(n);
    /* A filled pair whose reader travels, unread, in another pair that is then closed. */
    mkpair(SOCK_STREAM, x);
    mkpair(SOCK_STREAM, y);
    long inflight = fill(x[0]);
    send_fd(y[0], x[1]);
    close(x[0]);
    close(x[1]);
    close(y[0]);
    close(y[1]);
    long again = fill_pairs(n, &empty);
    printf("close: in-flight pair took data: %s\n", inflight > 0 ? "yes" : "no");
    printf("close: refill took as much as the first fill: %s\n", again == first ? "yes" : "no");
    if (again != first)
        printf("close: first %ld, again %ld\n", first, again);
    close_pairs(n);
}

int main(int argc, char **argv) {
    memset(chunk, 'c', sizeof chunk);
    const char *mode = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 0;
    long kib = argc > 3 ? atol(argv[3]) : 0;
    if (argc > 2 && (n < 1 || n > MAXPAIRS)) {
        printf("bad pair count\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "own"))
        own();
    else if (!strcmp(mode, "blocked-same"))
        blocked_same();
    else if (!strcmp(mode, "bounded") && n)
        bounded(n, kib);
    else if (!strcmp(mode, "blocked-other") && n)
        blocked_other(n);
    else if (!strcmp(mode, "close") && n)
        closing(n);
    else if (!strcmp(mode, "all") && n) {
        bounded(n, kib);
        blocked_other(n);
        closing(n);
    } else {
        printf("usage: sockbuf own|blocked-same|bounded N KIB|blocked-other N|close N|all N KIB\n");
        return 2;
    }
    return 0;
}
