// AF_UNIX socketpair: stream/dgram/seqpacket boundaries and truncation, EOF after close
// and shutdown, EPIPE with SIGPIPE vs MSG_NOSIGNAL, non-blocking EAGAIN, poll readiness,
// socket options and names, and a pair shared across fork. Prints one line per check;
// the output must match a native run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

static const char *err(long r) {
    static char buf[64];
    if (r >= 0) { snprintf(buf, sizeof buf, "%ld", r); return buf; }
    return strerrorname_np(errno);
}

static void pair(int type, int sv[2]) {
    if (socketpair(AF_UNIX, type, 0, sv) != 0) { perror("socketpair"); _exit(1); }
}

static int revents(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };
    poll(&p, 1, 0);
    return p.revents;
}

static void boundaries(int type, const char *name) {
    int sv[2]; char buf[64];
    pair(type, sv);
    send(sv[0], "hello", 5, 0); send(sv[0], "world!", 6, 0);
    long n = recv(sv[1], buf, sizeof buf, 0);
    printf("%s: first recv %ld\n", name, n);
    if (type != SOCK_STREAM) {
        n = recv(sv[1], buf, 3, 0);
        printf("%s: short recv %ld '%.3s'\n", name, n, buf);
        send(sv[0], "abcdef", 6, 0);
        n = recv(sv[1], buf, 2, MSG_TRUNC);
        printf("%s: MSG_TRUNC recv %ld\n", name, n);
        send(sv[0], "xyz123", 6, 0);
        struct iovec iov = { buf, 4 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
        n = recvmsg(sv[1], &m, 0);
        printf("%s: recvmsg %ld trunc=%d\n", name, n, !!(m.msg_flags & MSG_TRUNC));
        send(sv[0], "", 0, 0);
        printf("%s: empty message %s\n", name, err(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    }
    printf("%s: empty queue %s\n", name, err(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    send(sv[0], "peek", 4, 0);
    n = recv(sv[1], buf, sizeof buf, MSG_PEEK);
    long n2 = recv(sv[1], buf, sizeof buf, 0);
    printf("%s: peek %ld then %ld\n", name, n, n2);
    int v; socklen_t l = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l);
    printf("%s: SO_TYPE %d len %u\n", name, v, l);
    struct stat st; fstat(sv[0], &st);
    printf("%s: S_ISSOCK %d\n", name, S_ISSOCK(st.st_mode));
    // Peer closes.
    send(sv[1], "last", 4, 0);
    close(sv[1]);
    n = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
    printf("%s: after peer close recv %s\n", name, err(n));
    printf("%s: then %s\n", name, err(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT)));
    printf("%s: revents after close 0x%x\n", name, revents(sv[0]));
    sigpipes = 0;
    printf("%s: send after close %s", name, err(send(sv[0], "x", 1, 0)));
    printf(" sigpipes=%d\n", (int)sigpipes);
    sigpipes = 0;
    printf("%s: again nosignal %s", name, err(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    printf(" sigpipes=%d\n", (int)sigpipes);
    close(sv[0]);
}

static void shutdowns(void) {
    int sv[2]; char buf[16];
    pair(SOCK_STREAM, sv);
    send(sv[0], "ab", 2, 0);
    shutdown(sv[0], SHUT_WR);
    printf("shutdown: peer revents 0x%x\n", revents(sv[1]));
    printf("shutdown: peer recv %s", err(recv(sv[1], buf, sizeof buf, 0)));
    printf(" then %s\n", err(recv(sv[1], buf, sizeof buf, 0)));
    sigpipes = 0;
    printf("shutdown: own write %s", err(write(sv[0], "x", 1)));
    printf(" sigpipes=%d\n", (int)sigpipes);
    printf("shutdown: reverse direction %s\n", err(send(sv[1], "ok", 2, 0)));
    printf("shutdown: own revents 0x%x\n", revents(sv[0]));
    shutdown(sv[0], SHUT_RD);
    printf("shutdown: both revents 0x%x / 0x%x\n", revents(sv[0]), revents(sv[1]));
    printf("shutdown: bad how %s\n", err(shutdown(sv[0], 7)));
    close(sv[0]); close(sv[1]);
}

static void nonblocking(void) {
    int sv[2]; char big[4096] = {0};
    pair(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, sv);
    printf("nonblock: flags O_NONBLOCK=%d O_RDWR=%d cloexec=%d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK),
           (fcntl(sv[0], F_GETFL) & O_ACCMODE) == O_RDWR, !!(fcntl(sv[0], F_GETFD) & FD_CLOEXEC));
    printf("nonblock: initial revents 0x%x\n", revents(sv[0]));
    long total = 0, n;
    while ((n = send(sv[0], big, sizeof big, 0)) > 0) total += n;
    printf("nonblock: full %s after >100KiB=%d\n", err(n), total > 100000);
    printf("nonblock: POLLOUT when full %d, peer POLLIN %d\n", !!(revents(sv[0]) & POLLOUT), !!(revents(sv[1]) & POLLIN));
    int got = 0;
    while ((n = read(sv[1], big, sizeof big)) > 0) got += n;
    printf("nonblock: drained all %d, %s\n", got == total, err(n));
    printf("nonblock: POLLOUT again %d\n", !!(revents(sv[0]) & POLLOUT));
    close(sv[0]); close(sv[1]);
}

static void options(void) {
    int sv[2]; int v; socklen_t l;
    pair(SOCK_DGRAM, sv);
    l = sizeof v; getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &l); printf("opt: SO_DOMAIN %d\n", v);
    l = sizeof v; getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &l); printf("opt: SO_ERROR %d\n", v);
    l = sizeof v; getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &l); printf("opt: SO_ACCEPTCONN %d\n", v);
    v = 1000; setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    l = sizeof v; getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l); printf("opt: SO_SNDBUF after 1000 -> %d\n", v);
    v = 1; printf("opt: SO_PASSCRED set %s\n", err(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof v)));
    struct ucred c; l = sizeof c;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &c, &l);
    printf("opt: SO_PEERCRED pid-match=%d uid-match=%d gid-match=%d len=%u\n", c.pid == getpid(), c.uid == geteuid(), c.gid == getegid(), l);
    struct sockaddr_un a; l = sizeof a;
    memset(&a, 0x55, sizeof a);
    printf("opt: getsockname %s", err(getsockname(sv[0], (struct sockaddr *)&a, &l)));
    printf(" len %u family %d\n", l, a.sun_family);
    l = sizeof a;
    printf("opt: getpeername %s", err(getpeername(sv[0], (struct sockaddr *)&a, &l)));
    printf(" len %u\n", l);
    char buf[8]; struct sockaddr_un from; l = sizeof from;
    send(sv[1], "q", 1, 0);
    printf("opt: recvfrom %s", err(recvfrom(sv[0], buf, sizeof buf, 0, (struct sockaddr *)&from, &l)));
    printf(" fromlen %u\n", l);
    l = sizeof v;
    printf("opt: bad level %s\n", err(getsockopt(sv[0], 0 /* SOL_IP */, 1, &v, &l)));
    close(sv[1]);
    printf("dgram: send after peer close %s", err(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    printf(" then %s\n", err(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    close(sv[0]);
    printf("create: AF_INET pair %s\n", err(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    printf("create: bad protocol %s\n", err(socketpair(AF_UNIX, SOCK_STREAM, 17, sv)));
    printf("create: bad type %s\n", err(socketpair(AF_UNIX, 4, 0, sv)));
    printf("create: bad flag %s\n", err(socketpair(AF_UNIX, SOCK_STREAM | 0x100000, 0, sv)));
    printf("create: ENOTSOCK %s\n", err(send(1, "x", 1, 0)));
}

static void forked(void) {
    int sv[2]; char buf[64];
    pair(SOCK_STREAM, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        long n = recv(sv[1], buf, sizeof buf, MSG_WAITALL);
        for (long i = 0; i < n; i++) buf[i] = buf[i] - 'a' + 'A';
        send(sv[1], buf, n, 0);
        _exit(0);
    }
    close(sv[1]);
    send(sv[0], "abc", 3, 0);
    struct pollfd p = { .fd = sv[0], .events = POLLIN };
    poll(&p, 1, 0);
    printf("fork: readable before child wrote %d\n", !!(p.revents & POLLIN));
    send(sv[0], "defghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm", 61, 0);
    int total = 0; long n;
    while (total < 64 && (n = recv(sv[0], buf + total, sizeof buf - total, 0)) > 0) total += n;
    printf("fork: got %d '%.8s'\n", total, buf);
    int st; waitpid(pid, &st, 0);
    printf("fork: eof after child exit %s\n", err(recv(sv[0], buf, sizeof buf, 0)));
    close(sv[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, on_pipe);
    boundaries(SOCK_STREAM, "stream");
    boundaries(SOCK_DGRAM, "dgram");
    boundaries(SOCK_SEQPACKET, "seqpacket");
    shutdowns();
    nonblocking();
    options();
    forked();
    return 0;
}
