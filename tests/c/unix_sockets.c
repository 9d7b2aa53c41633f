/*
 * AF_UNIX sockets: named stream servers and clients, abstract names (exact bytes and
 * lengths), datagrams between paths, seqpacket record boundaries, file passing
 * (SCM_RIGHTS), credentials (SCM_CREDENTIALS, SO_PASSCRED, SO_PEERCRED), shutdown,
 * non-blocking accept and connect, readiness of listeners.
 *
 * usage: unix_sockets BASE [SECTION...]   (sections: named abstract dgram seqpacket rights
 *        creds shutdown nonblock poll). BASE is a writable directory; socket files are made
 *        in BASE/SECTION-*. Nothing printed depends on BASE, pids or the uid.
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char *base;

#define E(call) ((call) < 0 ? err(errno) : "ok")

static void expect(const char *what, const char *got, const char *want) {
    out("%s: %s", what, got);
    if (strcmp(got, want) != 0) {
        out(" (want %s) NO\n", want);
        failures++;
    } else {
        out("\n");
    }
}

/* A path address BASE/name; returns its length as bind wants it. */
static socklen_t path_addr(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", base, name);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/* An abstract address "\0name"; the length covers exactly the name. */
static socklen_t abstract_addr(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int listener(int type, const char *name, int backlog) {
    struct sockaddr_un a;
    socklen_t len = path_addr(&a, name);
    unlink(a.sun_path);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0 || listen(s, backlog) < 0) {
        out("listener %s: %s NO\n", name, err(errno));
        failures++;
    }
    return s;
}

static int connect_to(int type, const char *name) {
    struct sockaddr_un a;
    socklen_t len = path_addr(&a, name);
    int c = socket(AF_UNIX, type, 0);
    if (connect(c, (struct sockaddr *)&a, len) < 0)
        return -errno;
    return c;
}

static int intopt(int s, int opt) {
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(s, SOL_SOCKET, opt, &v, &l) < 0)
        return -errno;
    return v;
}

static void named(void) {
    umask(022);
    int l = listener(SOCK_STREAM, "named-srv", 4);
    struct sockaddr_un a;
    socklen_t want = path_addr(&a, "named-srv");
    struct stat st;
    check("socket node is S_IFSOCK", stat(a.sun_path, &st) == 0 && S_ISSOCK(st.st_mode));
    out("node mode %o\n", st.st_mode & 0777);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    check("getsockname of listener", getsockname(l, (struct sockaddr *)&got, &gl) == 0 && gl == want && strcmp(got.sun_path, a.sun_path) == 0);
    out("SO_ACCEPTCONN listener %d, SO_TYPE %d, SO_DOMAIN %d\n", intopt(l, SO_ACCEPTCONN), intopt(l, SO_TYPE), intopt(l, SO_DOMAIN));
    int c = connect_to(SOCK_STREAM, "named-srv");
    check("connect", c >= 0);
    check("send before accept", write(c, "hello", 5) == 5);
    struct sockaddr_un pa;
    socklen_t pl = sizeof pa;
    int s = accept4(l, (struct sockaddr *)&pa, &pl, SOCK_CLOEXEC);
    check("accept4", s >= 0);
    out("accepted peer addrlen %d, cloexec %d\n", (int)pl, (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    out("SO_ACCEPTCONN client %d accepted %d\n", intopt(c, SO_ACCEPTCONN), intopt(s, SO_ACCEPTCONN));
    char buf[64] = {0};
    ssize_t n = read(s, buf, sizeof buf);
    out("server read %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    check("reply", write(s, "world!", 6) == 6);
    n = read(c, buf, sizeof buf);
    out("client read %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    gl = sizeof got;
    check("client getpeername is the server path", getpeername(c, (struct sockaddr *)&got, &gl) == 0 && gl == want && strcmp(got.sun_path, a.sun_path) == 0);
    gl = sizeof got;
    getsockname(c, (struct sockaddr *)&got, &gl);
    out("client getsockname len %d\n", (int)gl);
    gl = sizeof got;
    check("accepted getsockname is the server path", getsockname(s, (struct sockaddr *)&got, &gl) == 0 && gl == want);
    gl = sizeof got;
    const char *gp = E(getpeername(s, (struct sockaddr *)&got, &gl));
    out("accepted getpeername: %s len %d\n", gp, (int)gl);
    struct sockaddr_un other;
    socklen_t otl = path_addr(&other, "named-other");
    expect("bind a bound socket", E(bind(l, (struct sockaddr *)&other, otl)), "EINVAL");
    check("no node for the failed bind", access(other.sun_path, F_OK) != 0);
    int o = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("bind an existing path", E(bind(o, (struct sockaddr *)&a, want)), "EADDRINUSE");
    expect("listen unbound", E(listen(o, 1)), "EINVAL");
    expect("accept on a non-listener", E(accept(o, NULL, NULL)), "EINVAL");
    expect("connect a connected socket", E(connect(c, (struct sockaddr *)&a, want)), "EISCONN");
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect("connect a dgram socket to a stream listener", E(connect(d, (struct sockaddr *)&a, want)), "EPROTOTYPE");
    close(d);
    /* Connecting needs write permission on the socket node. */
    chmod(a.sun_path, 0755);
    pid_t child = fork();
    if (child == 0) {
        /* Closed here, not left to exit: the ECONNREFUSED check after waitpid below must not
         * depend on when an exited child's files are released (rvisor releases them only
         * after the child became waitable; Linux before). */
        close(l);
        setgid(65534);
        setuid(65534);
        int r = connect_to(SOCK_STREAM, "named-srv");
        out("unprivileged connect to a 0755 node: %s\n", r < 0 ? err(-r) : "ok");
        _exit(0);
    }
    int wst;
    waitpid(child, &wst, 0);
    close(l);
    int r = connect_to(SOCK_STREAM, "named-srv");
    expect("connect after the listener closed", r < 0 ? err(-r) : "ok", "ECONNREFUSED");
    unlink(a.sun_path);
    r = connect_to(SOCK_STREAM, "named-srv");
    expect("connect after unlink", r < 0 ? err(-r) : "ok", "ENOENT");
    struct sockaddr_un f;
    socklen_t fl = path_addr(&f, "named-file");
    close(open(f.sun_path, O_CREAT | O_WRONLY, 0600));
    expect("connect to a regular file", E(connect(o, (struct sockaddr *)&f, fl)), "ECONNREFUSED");
    fl = path_addr(&f, "no-such-dir/x");
    expect("bind in a missing directory", E(bind(o, (struct sockaddr *)&f, fl)), "ENOENT");
    close(o);
    close(c);
    close(s);
}

static void abstract(void) {
    char name[64];
    snprintf(name, sizeof name, "rvtest-abs-%d", (int)getpid());
    struct sockaddr_un a;
    socklen_t len = abstract_addr(&a, name);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("bind abstract", E(bind(l, (struct sockaddr *)&a, len)), "ok");
    listen(l, 2);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    getsockname(l, (struct sockaddr *)&got, &gl);
    check("getsockname gives the exact length", gl == len);
    check("getsockname gives the exact bytes", memcmp(&got, &a, len) == 0);
    int o = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("bind the same name", E(bind(o, (struct sockaddr *)&a, len)), "EADDRINUSE");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("connect with a longer length", E(connect(c, (struct sockaddr *)&a, len + 1)), "ECONNREFUSED");
    expect("connect with the exact length", E(connect(c, (struct sockaddr *)&a, len)), "ok");
    gl = sizeof got;
    getpeername(c, (struct sockaddr *)&got, &gl);
    check("getpeername gives the listener's name", gl == len && memcmp(&got, &a, len) == 0);
    int s = accept(l, NULL, NULL);
    check("accept", s >= 0);
    /* autobind */
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    expect("bind with only the family", E(bind(o, (struct sockaddr *)&u, sizeof(sa_family_t))), "ok");
    gl = sizeof got;
    getsockname(o, (struct sockaddr *)&got, &gl);
    int hex = 1;
    for (int i = 1; i < 6; i++)
        hex &= (got.sun_path[i] >= '0' && got.sun_path[i] <= '9') || (got.sun_path[i] >= 'a' && got.sun_path[i] <= 'f');
    out("autobind length %d, abstract %d, 5 hex digits %d\n", (int)gl, got.sun_path[0] == 0, hex);
    close(l);
    expect("connect after close", E(connect(o, (struct sockaddr *)&a, len)), "ECONNREFUSED");
    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("the name is free again", E(bind(again, (struct sockaddr *)&a, len)), "ok");
    close(again);
    close(o);
    close(c);
    close(s);
}

static void dgram(void) {
    struct sockaddr_un sa, ca, from;
    socklen_t sl = path_addr(&sa, "dgram-srv"), cl = path_addr(&ca, "dgram-cli");
    unlink(sa.sun_path);
    unlink(ca.sun_path);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0), c = socket(AF_UNIX, SOCK_DGRAM, 0), u = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect("bind server", E(bind(s, (struct sockaddr *)&sa, sl)), "ok");
    expect("bind client", E(bind(c, (struct sockaddr *)&ca, cl)), "ok");
    expect("send unconnected without address", E(send(c, "x", 1, 0)), "ENOTCONN");
    expect("sendto server", E(sendto(c, "ping", 4, 0, (struct sockaddr *)&sa, sl)), "ok");
    expect("sendto server (empty)", E(sendto(u, "", 0, 0, (struct sockaddr *)&sa, sl)), "ok");
    char buf[32];
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    out("recvfrom %zd '%.*s', sender is the client path %d\n", n, (int)(n > 0 ? n : 0), buf, fl == cl && strcmp(from.sun_path, ca.sun_path) == 0);
    fl = sizeof from;
    n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    out("recvfrom %zd from an unbound sender: addrlen %d\n", n, (int)fl);
    expect("reply to the sender", E(sendto(s, "pong", 4, 0, (struct sockaddr *)&ca, cl)), "ok");
    n = recv(c, buf, sizeof buf, 0);
    out("client got %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    expect("connect client to server", E(connect(c, (struct sockaddr *)&sa, sl)), "ok");
    expect("send connected", E(send(c, "abc", 3, 0)), "ok");
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    out("server got %zd\n", n);
    struct sockaddr_un gp;
    socklen_t gpl = sizeof gp;
    check("getpeername of a connected dgram socket", getpeername(c, (struct sockaddr *)&gp, &gpl) == 0 && gpl == sl);
    gpl = sizeof gp;
    expect("getpeername of an unconnected one", E(getpeername(u, (struct sockaddr *)&gp, &gpl)), "ENOTCONN");
    expect("recv nothing queued", E(recv(s, buf, sizeof buf, MSG_DONTWAIT)), "EAGAIN");
    struct sockaddr_un nx;
    socklen_t nxl = path_addr(&nx, "dgram-none");
    expect("sendto a missing path", E(sendto(u, "x", 1, 0, (struct sockaddr *)&nx, nxl)), "ENOENT");
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("stream sendto unconnected", E(sendto(st, "x", 1, 0, (struct sockaddr *)&sa, sl)), "EOPNOTSUPP");
    close(st);
    int pc = socket(AF_UNIX, SOCK_DGRAM, 0), one = 1;
    setsockopt(pc, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    expect("sendto from an unbound SO_PASSCRED socket", E(sendto(pc, "p", 1, 0, (struct sockaddr *)&sa, sl)), "ok");
    fl = sizeof from;
    n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    out("it was autobound: %zd bytes, addrlen %d, abstract %d\n", n, (int)fl, fl > 2 && from.sun_path[0] == 0);
    close(pc);
    close(s);
    expect("sendto a closed server's path", E(sendto(u, "x", 1, 0, (struct sockaddr *)&sa, sl)), "ECONNREFUSED");
    expect("send on the connected client after the server closed", E(send(c, "x", 1, 0)), "ECONNREFUSED");
    close(c);
    close(u);
}

static void seqpacket(void) {
    int l = listener(SOCK_SEQPACKET, "seq-srv", 2);
    int c = connect_to(SOCK_SEQPACKET, "seq-srv");
    int s = accept(l, NULL, NULL);
    check("connected", c >= 0 && s >= 0);
    send(c, "abc", 3, 0);
    send(c, "defgh", 5, 0);
    send(c, "", 0, 0);
    send(c, "ijklmnop", 8, 0);
    char buf[16];
    ssize_t n = recv(s, buf, 4, 0);
    out("record 1: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(s, &m, 0);
    out("record 2: %zd '%.*s' MSG_TRUNC %d\n", n, (int)(n > 0 ? n : 0), buf, (m.msg_flags & MSG_TRUNC) != 0);
    n = recv(s, buf, 4, 0);
    out("record 3: %zd\n", n);
    n = recv(s, buf, 2, MSG_TRUNC);
    out("record 4 with MSG_TRUNC: %zd\n", n);
    close(c);
    n = recv(s, buf, sizeof buf, 0);
    out("after the peer closed: %zd\n", n);
    expect("send to a closed peer", E(send(s, "x", 1, MSG_NOSIGNAL)), "EPIPE");
    close(s);
    close(l);
}

/* Sends `n` fds with one byte of data on `s`. */
static ssize_t send_fds(int s, const int *fds, int n, const char *data, size_t len) {
    char ctl[CMSG_SPACE(sizeof(int) * 300)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)data, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(s, &m, 0);
}

/* Receives with room for `room` fds; stores them in fds, returns the count (or -errno). */
static int recv_fds(int s, int *fds, int room, int flags, ssize_t *got, int *mflags) {
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    char buf[64];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = room ? CMSG_LEN(sizeof(int) * room) : 0};
    ssize_t n = recvmsg(s, &m, flags);
    if (n < 0)
        return -errno;
    *got = n;
    *mflags = m.msg_flags;
    int k = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds + k, CMSG_DATA(c), sizeof(int) * cnt);
            k += cnt;
        }
    return k;
}

static void rights(void) {
    int sv[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    char path[200];
    snprintf(path, sizeof path, "%s/rights-file", base);
    int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(f, "filedata", 8);
    lseek(f, 0, SEEK_SET);
    int two[2] = {p[0], f};
    expect("send a pipe end and a file", E(send_fds(sv[0], two, 2, "x", 1)), "ok");
    close(p[0]);
    close(f);
    int fds[8];
    ssize_t got = 0;
    int mf = 0;
    int k = recv_fds(sv[1], fds, 4, MSG_CMSG_CLOEXEC, &got, &mf);
    out("received %d fds with %zd bytes, MSG_CTRUNC %d\n", k, got, (mf & MSG_CTRUNC) != 0);
    if (k == 2) {
        out("cloexec %d\n", (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
        write(p[1], "through", 7);
        char buf[16] = {0};
        ssize_t n = read(fds[0], buf, sizeof buf);
        out("pipe via passed end: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
        n = read(fds[1], buf, sizeof buf);
        out("file via passed fd: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
        close(fds[0]);
        close(fds[1]);
    }
    /* Short control buffer: one fd fits, the other is closed. */
    int pp[2];
    pipe(pp);
    int dup2fds[2] = {pp[0], pp[0]};
    send_fds(sv[0], dup2fds, 2, "y", 1);
    close(pp[0]);
    k = recv_fds(sv[1], fds, 1, 0, &got, &mf);
    out("short buffer: %d fds, MSG_CTRUNC %d, cloexec %d\n", k, (mf & MSG_CTRUNC) != 0, k > 0 && (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
    if (k > 0)
        close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    expect("the dropped fd is closed too (write to the pipe)", E(write(pp[1], "z", 1)), "EPIPE");
    close(pp[1]);
    /* No control buffer at all. */
    int one = p[1];
    send_fds(sv[0], &one, 1, "z", 1);
    k = recv_fds(sv[1], fds, 0, 0, &got, &mf);
    out("no buffer: %d fds, MSG_CTRUNC %d\n", k, (mf & MSG_CTRUNC) != 0);
    /* A stream read ends after data carrying files. */
    write(sv[0], "aa", 2);
    send_fds(sv[0], &one, 1, "bb", 2);
    write(sv[0], "cc", 2);
    k = recv_fds(sv[1], fds, 2, 0, &got, &mf);
    out("first read: %zd bytes, %d fds\n", got, k);
    if (k > 0)
        close(fds[0]);
    k = recv_fds(sv[1], fds, 2, 0, &got, &mf);
    out("second read: %zd bytes, %d fds\n", got, k);
    /* Errors. */
    int bad = 999;
    expect("send a bad fd", E(send_fds(sv[0], &bad, 1, "x", 1)), "EBADF");
    int many[254];
    for (int i = 0; i < 254; i++)
        many[i] = 0;
    expect("send 254 fds", E(send_fds(sv[0], many, 254, "x", 1)), "EINVAL");
    expect("send 253 fds", E(send_fds(sv[0], many, 253, "x", 1)), "ok");
    char buf[8];
    out("plain read of it: %zd\n", read(sv[1], buf, sizeof buf));
    /* Over a datagram pair and a seqpacket pair. */
    int dv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dv);
    send_fds(dv[0], &one, 1, "d", 1);
    k = recv_fds(dv[1], fds, 2, 0, &got, &mf);
    out("dgram: %d fds, %zd bytes\n", k, got);
    if (k > 0)
        close(fds[0]);
    /* A full fd table: the files that cannot be installed are closed, MSG_CTRUNC. */
    struct rlimit rl, low;
    getrlimit(RLIMIT_NOFILE, &rl);
    int p3[2];
    pipe(p3);
    int four[4] = {p3[0], p3[0], p3[0], p3[0]};
    send_fds(sv[0], four, 4, "m", 1);
    close(p3[0]);
    int probe = dup(0);
    close(probe);
    low = rl;
    low.rlim_cur = probe + 2;
    setrlimit(RLIMIT_NOFILE, &low);
    k = recv_fds(sv[1], fds, 4, 0, &got, &mf);
    setrlimit(RLIMIT_NOFILE, &rl);
    out("full table: %d fds, MSG_CTRUNC %d\n", k, (mf & MSG_CTRUNC) != 0);
    for (int i = 0; i < k; i++)
        close(fds[i]);
    expect("all of them closed (write to the pipe)", E(write(p3[1], "z", 1)), "EPIPE");
    close(p3[1]);
    /* A socket sent over itself, then closed: a cycle (no crash). */
    int cyc[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, cyc);
    expect("send a socket over itself", E(send_fds(cyc[0], &cyc[1], 1, "c", 1)), "ok");
    close(cyc[0]);
    close(cyc[1]);
    close(dv[0]);
    close(dv[1]);
    close(sv[0]);
    close(sv[1]);
    close(p[1]);
    unlink(path);
}

/* Receives one message on s and reports SCM_CREDENTIALS. */
static void show_creds(const char *what, int s, pid_t want_pid) {
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    char buf[16];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(s, &m, 0);
    struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (c && c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred u;
        memcpy(&u, CMSG_DATA(c), sizeof u);
        out("%s: %zd bytes, creds: pid is sender %d, uid matches %d, gid matches %d\n", what, n, u.pid == want_pid, u.uid == getuid(), u.gid == getgid());
    } else {
        out("%s: %zd bytes, no creds (controllen %zu)\n", what, n, (size_t)m.msg_controllen);
    }
}

static ssize_t send_creds(int s, struct ucred u) {
    char ctl[CMSG_SPACE(sizeof u)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {"k", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof u);
    memcpy(CMSG_DATA(c), &u, sizeof u);
    return sendmsg(s, &m, 0);
}

static void creds(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    struct ucred u;
    socklen_t ul = sizeof u;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &u, &ul);
    out("SO_PEERCRED of a pair: len %d, pid is self %d, uid %d, gid %d\n", (int)ul, u.pid == getpid(), u.uid == geteuid(), u.gid == getegid());
    out("SO_PASSCRED default %d\n", intopt(sv[1], SO_PASSCRED));
    send(sv[0], "a", 1, 0);
    show_creds("without SO_PASSCRED", sv[1], getpid());
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    out("SO_PASSCRED now %d\n", intopt(sv[1], SO_PASSCRED));
    send(sv[0], "b", 1, 0);
    show_creds("with SO_PASSCRED", sv[1], getpid());
    struct ucred mine = {getpid(), getuid(), getgid()};
    expect("send own creds", E(send_creds(sv[0], mine)), "ok");
    show_creds("explicit own creds", sv[1], getpid());
    pid_t child = fork();
    if (child == 0) {
        setgid(65534);
        setuid(65534);
        struct ucred other = {getpid(), 0, 0};
        int ok = getuid() != 0;
        const char *r = E(send_creds(sv[0], other));
        struct ucred badpid = {getppid(), getuid(), getgid()};
        const char *r2 = E(send_creds(sv[0], badpid));
        out("unprivileged %d: claim uid 0: %s, claim another pid: %s\n", ok, r, r2);
        write(sv[0], "c", 1); /* write(2): the writer's credentials too */
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    show_creds("from the child", sv[1], child);
    close(sv[0]);
    close(sv[1]);
    /* A named connection: the server sees the client's pid. */
    int l = listener(SOCK_STREAM, "creds-srv", 2);
    child = fork();
    if (child == 0) {
        int c = connect_to(SOCK_STREAM, "creds-srv");
        struct ucred pu;
        socklen_t pl = sizeof pu;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &pu, &pl);
        out("client: server's pid is the parent %d\n", pu.pid == getppid());
        write(c, "x", 1);
        char b;
        read(c, &b, 1);
        _exit(0);
    }
    int s = accept(l, NULL, NULL);
    char b;
    read(s, &b, 1);
    ul = sizeof u;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &u, &ul);
    out("server: client's pid is the child %d, uid %d\n", u.pid == child, u.uid == geteuid());
    write(s, "y", 1);
    waitpid(child, &st, 0);
    int un = socket(AF_UNIX, SOCK_STREAM, 0);
    ul = sizeof u;
    getsockopt(un, SOL_SOCKET, SO_PEERCRED, &u, &ul);
    out("unconnected SO_PEERCRED: pid %d uid %d gid %d\n", u.pid, (int)u.uid, (int)u.gid);
    close(un);
    close(s);
    close(l);
}

static int sigpipes;
static void on_pipe(int sig) {
    (void)sig;
    sigpipes++;
}

static void shutdown_section(void) {
    signal(SIGPIPE, on_pipe);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "q", 1);
    expect("shutdown SHUT_WR", E(shutdown(sv[0], SHUT_WR)), "ok");
    char buf[8];
    out("peer reads %zd\n", read(sv[1], buf, sizeof buf));
    expect("write after SHUT_WR", E(send(sv[0], "x", 1, 0)), "EPIPE");
    out("SIGPIPE count %d\n", sigpipes);
    expect("with MSG_NOSIGNAL", E(send(sv[0], "x", 1, MSG_NOSIGNAL)), "EPIPE");
    out("SIGPIPE count %d\n", sigpipes);
    out("own read still gets queued data %zd\n", read(sv[0], buf, sizeof buf));
    struct pollfd pfd = {sv[1], POLLIN | POLLRDHUP, 0};
    poll(&pfd, 1, 0);
    out("peer poll: POLLIN %d POLLRDHUP %d POLLHUP %d\n", (pfd.revents & POLLIN) != 0, (pfd.revents & POLLRDHUP) != 0, (pfd.revents & POLLHUP) != 0);
    expect("shutdown SHUT_RD", E(shutdown(sv[1], SHUT_RD)), "ok");
    expect("write to a SHUT_RD peer", E(send(sv[0], "x", 1, MSG_NOSIGNAL)), "EPIPE");
    pfd.fd = sv[0];
    pfd.revents = 0;
    poll(&pfd, 1, 0);
    out("after both: POLLHUP %d\n", (pfd.revents & POLLHUP) != 0);
    expect("bad how", E(shutdown(sv[0], 7)), "EINVAL");
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("shutdown unconnected stream", E(shutdown(u, SHUT_RDWR)), "ok");
    close(u);
    close(sv[0]);
    close(sv[1]);
    signal(SIGPIPE, SIG_DFL);
}

static void nonblock(void) {
    int l = listener(SOCK_STREAM, "nb-srv", 1);
    fcntl(l, F_SETFL, O_NONBLOCK);
    expect("accept with nothing pending", E(accept(l, NULL, NULL)), "EAGAIN");
    int ok = 0, last = 0;
    int cs[8];
    for (int i = 0; i < 8; i++) {
        struct sockaddr_un a;
        socklen_t len = path_addr(&a, "nb-srv");
        cs[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(cs[i], (struct sockaddr *)&a, len) == 0) {
            ok++;
        } else {
            last = errno;
            break;
        }
    }
    out("non-blocking connects before the backlog filled: %d, then %s\n", ok, err(last));
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    check("accept4 SOCK_NONBLOCK", s >= 0 && (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    char b;
    expect("non-blocking read of the accepted socket", E(read(s, &b, 1)), "EAGAIN");
    for (int i = 0; i <= ok && i < 8; i++)
        close(cs[i]);
    close(s);
    close(l);
}

static void poll_section(void) {
    int l = listener(SOCK_STREAM, "poll-srv", 4);
    struct pollfd pfd = {l, POLLIN | POLLOUT, 0};
    out("idle listener: poll %d revents %#x\n", poll(&pfd, 1, 0), pfd.revents);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    pid_t child = fork();
    if (child == 0) {
        int c = connect_to(SOCK_STREAM, "poll-srv");
        char b;
        read(c, &b, 1);
        _exit(0);
    }
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, 10000);
    out("epoll after a connect: %d, data %u, EPOLLIN %d\n", n, got.data.u32, (got.events & EPOLLIN) != 0);
    pfd.revents = 0;
    n = poll(&pfd, 1, 0);
    out("poll: %d revents %#x\n", n, pfd.revents);
    int s = accept(l, NULL, NULL);
    pfd.revents = 0;
    n = poll(&pfd, 1, 0);
    out("after accept: poll %d revents %#x\n", n, pfd.revents);
    write(s, "z", 1);
    int st;
    waitpid(child, &st, 0);
    close(s);
    close(ep);
    close(l);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: unix_sockets BASE [SECTION...]\n");
        return 2;
    }
    base = argv[1];
    static const struct section sections[] = {
        {"named", named}, {"abstract", abstract}, {"dgram", dgram}, {"seqpacket", seqpacket}, {"rights", rights},
        {"creds", creds}, {"shutdown", shutdown_section}, {"nonblock", nonblock}, {"poll", poll_section},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc - 1, argv + 1);
}
