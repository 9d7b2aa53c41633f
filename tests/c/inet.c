/*
 * IP sockets on loopback: the socket API's semantics as servers and clients rely on them.
 * socket() errors, bind conflicts and SO_REUSEADDR, ephemeral ports, listen backlog,
 * refused and non-blocking connects, MSG_PEEK/MSG_WAITALL, shutdown and poll bits, EPIPE
 * and SIGPIPE, socket option round trips, UDP (MSG_TRUNC, connected sockets, port
 * unreachable), IPv6 dual-stack listeners, epoll readiness, sendfile, sendmmsg/recvmmsg and
 * getaddrinfo("localhost").
 *
 * usage: inet [SECTION...]   (sections: errors bind ephemeral backlog connect data shutdown
 *        epipe options udp v6 epoll sendfile mmsg gai)
 * Nothing printed depends on ports, pids or timings. Exit status: the number of failed
 * checks (0 natively, in a fresh network namespace with lo up).
 */
#include "rvtest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>

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

static struct sockaddr_in v4(const char *ip, uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

static uint16_t port_of(int s) {
    struct sockaddr_storage a;
    socklen_t l = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &l) < 0)
        return 0;
    if (a.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel. */
static int listener4(int backlog) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", 0);
    REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, backlog) == 0);
    return s;
}

static int connect4(uint16_t port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", port);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(c);
        return -e;
    }
    return c;
}

/* A connected TCP pair over 127.0.0.1. */
static void tcp_pair(int *client, int *server) {
    int l = listener4(1);
    *client = connect4(port_of(l));
    REQUIRE(*client >= 0);
    *server = accept(l, NULL, NULL);
    REQUIRE(*server >= 0);
    close(l);
}

/* poll(2) for `events` for at most 10 s; the revents. */
static short wait_for(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 10000) <= 0)
        return 0;
    return p.revents;
}

static const char *pollbits(short r) {
    static char buf[128];
    buf[0] = 0;
    static const struct { short bit; const char *name; } names[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"}, {POLLHUP, "HUP"}, {POLLRDHUP, "RDHUP"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (r & names[i].bit) {
            strcat(buf, buf[0] ? "|" : "");
            strcat(buf, names[i].name);
        }
    return buf[0] ? buf : "0";
}

static short poll_now(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static int intopt(int s, int level, int opt) {
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(s, level, opt, &v, &l) < 0)
        return -errno;
    return v;
}

static void setint(int s, int level, int opt, int v) {
    if (setsockopt(s, level, opt, &v, sizeof v) < 0) {
        out("setsockopt %d/%d: %s NO\n", level, opt, err(errno));
        failures++;
    }
}

static void errors(void) {
    expect("socket(12345, STREAM)", E(socket(12345, SOCK_STREAM, 0)), "EAFNOSUPPORT");
    expect("socket(INET, type 12345)", E(socket(AF_INET, 12345, 0)), "EINVAL");
    expect("socket(INET, STREAM, UDP)", E(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)), "EPROTONOSUPPORT");
    expect("socket(INET, DGRAM, TCP)", E(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP)), "EPROTONOSUPPORT");
    expect("socket(INET6, STREAM, UDP)", E(socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP)), "EPROTONOSUPPORT");
    expect("socket(INET, STREAM, bad flags)", E(socket(AF_INET, SOCK_STREAM | 0x40000000, 0)), "EINVAL");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check("socket(INET, STREAM|NONBLOCK|CLOEXEC)", s >= 0);
    check("O_NONBLOCK set", (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    check("FD_CLOEXEC set", (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    out("SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d SO_ACCEPTCONN %d\n", intopt(s, SOL_SOCKET, SO_TYPE),
        intopt(s, SOL_SOCKET, SO_DOMAIN), intopt(s, SOL_SOCKET, SO_PROTOCOL), intopt(s, SOL_SOCKET, SO_ACCEPTCONN));
    int u = socket(AF_INET6, SOCK_DGRAM, 0);
    out("udp6 SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d\n", intopt(u, SOL_SOCKET, SO_TYPE), intopt(u, SOL_SOCKET, SO_DOMAIN),
        intopt(u, SOL_SOCKET, SO_PROTOCOL));
    expect("listen on a UDP socket", E(listen(u, 1)), "EOPNOTSUPP");
    expect("accept on an unbound TCP socket", E(accept(s, NULL, NULL)), "EINVAL");
    struct sockaddr_in a = v4("127.0.0.1", 1);
    expect("getpeername unconnected", E(getpeername(s, (struct sockaddr *)&a, &(socklen_t){sizeof a})), "ENOTCONN");
    char c;
    expect("recv on an unconnected TCP socket", E(recv(s, &c, 1, 0)), "ENOTCONN");
    expect("send on an unconnected TCP socket", E(send(s, "x", 1, MSG_NOSIGNAL)), "EPIPE");
    expect("shutdown unconnected", E(shutdown(s, SHUT_RD)), "ENOTCONN");
    expect("getsockopt unknown level", E(getsockopt(s, 12345, 1, &c, &(socklen_t){1})), "EOPNOTSUPP");
    expect("getsockopt unknown SOL_SOCKET option", E(getsockopt(s, SOL_SOCKET, 12345, &c, &(socklen_t){1})), "ENOPROTOOPT");
    close(s);
    close(u);
}

static void bind_section(void) {
    int a = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = v4("127.0.0.1", 0);
    expect("bind 127.0.0.1:0", E(bind(a, (struct sockaddr *)&any, sizeof any)), "ok");
    uint16_t p = port_of(a);
    check("a port was chosen", p != 0);
    expect("bind again", E(bind(a, (struct sockaddr *)&any, sizeof any)), "EINVAL");
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in same = v4("127.0.0.1", p);
    expect("bind a bound port", E(bind(b, (struct sockaddr *)&same, sizeof same)), "EADDRINUSE");
    expect("bind with a short length", E(bind(b, (struct sockaddr *)&same, sizeof same - 1)), "EINVAL");
    struct sockaddr_in6 six = v6("::1", 0);
    expect("bind an AF_INET6 address to an AF_INET socket", E(bind(b, (struct sockaddr *)&six, sizeof six)), "EAFNOSUPPORT");
    struct sockaddr_in far = v4("192.0.2.1", 0);
    expect("bind a non-local address", E(bind(b, (struct sockaddr *)&far, sizeof far)), "EADDRNOTAVAIL");
    close(b);

    /* SO_REUSEADDR on both, the first listening: still in use. */
    setint(a, SOL_SOCKET, SO_REUSEADDR, 1);
    listen(a, 4);
    b = socket(AF_INET, SOCK_STREAM, 0);
    setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
    expect("SO_REUSEADDR bind to a listening port", E(bind(b, (struct sockaddr *)&same, sizeof same)), "EADDRINUSE");
    close(b);

    /* A connection closed by the server first leaves the server's port in TIME_WAIT. */
    int c = connect4(p);
    int s = accept(a, NULL, NULL);
    REQUIRE(c >= 0 && s >= 0);
    close(s);
    char x;
    check("client sees EOF", read(c, &x, 1) == 0);
    close(c);
    close(a);
    b = socket(AF_INET, SOCK_STREAM, 0);
    expect("bind a TIME_WAIT port without SO_REUSEADDR", E(bind(b, (struct sockaddr *)&same, sizeof same)), "EADDRINUSE");
    close(b);
    b = socket(AF_INET, SOCK_STREAM, 0);
    setint(b, SOL_SOCKET, SO_REUSEADDR, 1);
    expect("bind a TIME_WAIT port with SO_REUSEADDR", E(bind(b, (struct sockaddr *)&same, sizeof same)), "ok");
    expect("listen there", E(listen(b, 1)), "ok");
    close(b);

    /* UDP: the same port is free for TCP. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    expect("UDP bind to the TCP port", E(bind(u, (struct sockaddr *)&same, sizeof same)), "ok");
    int u2 = socket(AF_INET, SOCK_DGRAM, 0);
    expect("second UDP bind", E(bind(u2, (struct sockaddr *)&same, sizeof same)), "EADDRINUSE");
    close(u);
    close(u2);
}

static void ephemeral(void) {
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        fclose(f);
    }
    int in_range = 1;
    for (int i = 0; i < 8; i++) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = v4("127.0.0.1", 0);
        bind(s, (struct sockaddr *)&a, sizeof a);
        int p = port_of(s);
        in_range &= p >= lo && p <= hi;
        close(s);
    }
    check("bind port 0 picks ports in ip_local_port_range", in_range);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    expect("listen without bind", E(listen(l, 1)), "ok");
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &al);
    check("listener got a port in range", ntohs(a.sin_port) >= lo && ntohs(a.sin_port) <= hi);
    out("listener address %s len %d\n", inet_ntoa(a.sin_addr), (int)al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = v4("127.0.0.1", ntohs(a.sin_port));
    expect("connect to it on 127.0.0.1", E(connect(c, (struct sockaddr *)&to, sizeof to)), "ok");
    struct sockaddr_in me;
    al = sizeof me;
    getsockname(c, (struct sockaddr *)&me, &al);
    check("connect bound the client to an ephemeral port", ntohs(me.sin_port) >= lo && ntohs(me.sin_port) <= hi);
    out("client address %s\n", inet_ntoa(me.sin_addr));
    struct sockaddr_in peer;
    al = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &al);
    check("accept gives the client's address", s >= 0 && peer.sin_port == me.sin_port && peer.sin_addr.s_addr == me.sin_addr.s_addr);
    al = sizeof peer;
    getsockname(s, (struct sockaddr *)&peer, &al);
    out("accepted socket's local address %s, same port %d\n", inet_ntoa(peer.sin_addr), peer.sin_port == a.sin_port);
    close(s);
    close(c);
    close(l);
}

static void backlog(void) {
    int l = listener4(32);
    uint16_t p = port_of(l);
    int cs[20];
    int started = 0, connected = 0;
    for (int i = 0; i < 20; i++) {
        cs[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = v4("127.0.0.1", p);
        int r = connect(cs[i], (struct sockaddr *)&a, sizeof a);
        started += r == 0 || errno == EINPROGRESS;
    }
    for (int i = 0; i < 20; i++)
        connected += (wait_for(cs[i], POLLOUT) & POLLOUT) && intopt(cs[i], SOL_SOCKET, SO_ERROR) == 0;
    out("20 non-blocking connects: %d started, %d connected\n", started, connected);
    fcntl(l, F_SETFL, O_NONBLOCK);
    int accepted = 0, matched = 0, nonblocking = 0;
    for (int i = 0; i < 25; i++) {
        if (!(wait_for(l, POLLIN) & POLLIN))
            break;
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int s = accept4(l, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
        if (s < 0)
            break;
        accepted++;
        for (int j = 0; j < 20; j++)
            matched += port_of(cs[j]) == ntohs(peer.sin_port);
        nonblocking += (fcntl(s, F_GETFL) & O_NONBLOCK) != 0;
        close(s);
        if (accepted == 20)
            break;
    }
    out("accepted %d, peers matching a client %d, non-blocking %d\n", accepted, matched, nonblocking);
    expect("accept with none pending", E(accept(l, NULL, NULL)), "EAGAIN");
    for (int i = 0; i < 20; i++)
        close(cs[i]);
    close(l);
}

static void connect_section(void) {
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", 0);
    bind(t, (struct sockaddr *)&a, sizeof a);
    uint16_t closed = port_of(t);
    close(t);
    int r = connect4(closed);
    expect("connect to a closed port", r < 0 ? err(-r) : "ok", "ECONNREFUSED");
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = v4("127.0.0.1", closed);
    int e = connect(c, (struct sockaddr *)&to, sizeof to) < 0 ? errno : 0;
    if (e == EINPROGRESS) {
        wait_for(c, POLLOUT);
        e = intopt(c, SOL_SOCKET, SO_ERROR);
    }
    expect("non-blocking connect to a closed port ends in", err(e), "ECONNREFUSED");
    close(c);

    int l = listener4(4);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    to = v4("127.0.0.1", port_of(l));
    e = connect(c, (struct sockaddr *)&to, sizeof to) < 0 ? errno : 0;
    check("non-blocking connect: EINPROGRESS (or done at once)", e == EINPROGRESS || e == 0);
    short rv = wait_for(c, POLLOUT);
    out("poll after connect: %s\n", pollbits(rv));
    out("SO_ERROR %s\n", err(intopt(c, SOL_SOCKET, SO_ERROR)));
    /* Linux: the first connect after a non-blocking one completed reports success, the
     * next one EISCONN. */
    expect("connect again after completion", E(connect(c, (struct sockaddr *)&to, sizeof to)), "ok");
    expect("connect a third time", E(connect(c, (struct sockaddr *)&to, sizeof to)), "EISCONN");
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    expect("getpeername", E(getpeername(c, (struct sockaddr *)&peer, &pl)), "ok");
    check("peer is the listener", peer.sin_port == to.sin_port && peer.sin_addr.s_addr == to.sin_addr.s_addr);
    int s = accept(l, NULL, NULL);
    check("accepted", s >= 0);
    expect("connect a listener", E(connect(l, (struct sockaddr *)&to, sizeof to)), "EISCONN");
    close(s);
    close(c);
    close(l);
}

static void data(void) {
    int c, s;
    tcp_pair(&c, &s);
    char buf[4096];
    write(c, "hello world", 11);
    wait_for(s, POLLIN);
    ssize_t n = recv(s, buf, 5, MSG_PEEK);
    out("MSG_PEEK: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    /* Everything sent so far, in one or more reads. */
    size_t got = 0;
    while (got < 11 && (n = recv(s, buf + got, sizeof buf - got, 0)) > 0)
        got += (size_t)n;
    out("read after peek: %zu '%.*s'\n", got, (int)got, buf);
    expect("MSG_DONTWAIT on an empty socket", E(recv(s, buf, 1, MSG_DONTWAIT)), "EAGAIN");
    pid_t child = fork();
    if (child == 0) {
        char chunk[1000];
        memset(chunk, 'w', sizeof chunk);
        for (int i = 0; i < 3; i++) {
            write(c, chunk, sizeof chunk);
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        _exit(0);
    }
    n = recv(s, buf, 3000, MSG_WAITALL);
    out("MSG_WAITALL 3000 over three writes: %zd\n", n);
    waitpid(child, NULL, 0);
    /* Large transfer, both directions intact. */
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 31 + 7);
    child = fork();
    if (child == 0) {
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t w = write(c, big + off, sizeof big - off);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    static char rbig[1 << 20];
    size_t r = 0;
    while (r < sizeof rbig && (n = read(s, rbig + r, sizeof rbig - r)) > 0)
        r += (size_t)n;
    int st;
    waitpid(child, &st, 0);
    check("1 MiB arrives intact", r == sizeof big && memcmp(big, rbig, r) == 0);
    write(c, "12345", 5);
    wait_for(s, POLLIN);
    int avail = -1;
    ioctl(s, FIONREAD, &avail);
    out("FIONREAD with 5 bytes queued: %d\n", avail);
    close(c);
    close(s);
}

static void shutdown_section(void) {
    int c, s;
    tcp_pair(&c, &s);
    expect("shutdown(SHUT_WR)", E(shutdown(c, SHUT_WR)), "ok");
    char buf[16];
    wait_for(s, POLLIN);
    out("peer reads %zd\n", read(s, buf, sizeof buf));
    out("peer poll: %s\n", pollbits(poll_now(s, POLLIN | POLLOUT | POLLRDHUP)));
    out("write after own SHUT_WR: %s\n", E(send(c, "x", 1, MSG_NOSIGNAL)));
    write(s, "back", 4);
    wait_for(c, POLLIN);
    ssize_t n = read(c, buf, sizeof buf);
    out("half-closed side still reads: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    shutdown(s, SHUT_WR);
    wait_for(c, POLLRDHUP);
    out("both shut, client poll: %s\n", pollbits(poll_now(c, POLLIN | POLLOUT | POLLRDHUP)));
    out("server poll: %s\n", pollbits(poll_now(s, POLLIN | POLLOUT | POLLRDHUP)));
    close(c);
    close(s);

    tcp_pair(&c, &s);
    close(c);
    wait_for(s, POLLRDHUP);
    out("after peer close: %s\n", pollbits(poll_now(s, POLLIN | POLLOUT | POLLRDHUP)));
    out("read %zd\n", read(s, buf, sizeof buf));
    close(s);

    tcp_pair(&c, &s);
    expect("shutdown(SHUT_RD)", E(shutdown(s, SHUT_RD)), "ok");
    out("read after SHUT_RD: %zd\n", read(s, buf, sizeof buf));
    expect("shutdown bad how", E(shutdown(s, 7)), "EINVAL");
    close(c);
    close(s);
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) {
    (void)sig;
    sigpipes++;
}

static void epipe(void) {
    signal(SIGPIPE, on_sigpipe);
    int c, s;
    tcp_pair(&c, &s);
    shutdown(c, SHUT_WR);
    expect("send after SHUT_WR", E(send(c, "x", 1, 0)), "EPIPE");
    out("SIGPIPEs: %d\n", (int)sigpipes);
    expect("send MSG_NOSIGNAL", E(send(c, "x", 1, MSG_NOSIGNAL)), "EPIPE");
    out("SIGPIPEs: %d\n", (int)sigpipes);
    expect("write after SHUT_WR", E(write(c, "x", 1)), "EPIPE");
    out("SIGPIPEs: %d\n", (int)sigpipes);
    close(c);
    close(s);

    /* The peer is gone: the first write is answered with a reset, the next one fails. */
    tcp_pair(&c, &s);
    close(c);
    wait_for(s, POLLRDHUP);
    sigpipes = 0;
    check("first write to a closed peer", send(s, "x", 1, MSG_NOSIGNAL) == 1);
    wait_for(s, POLLERR | POLLHUP);
    out("after the reset: %s\n", pollbits(poll_now(s, POLLIN | POLLOUT | POLLRDHUP)));
    ssize_t r = send(s, "x", 1, 0);
    int e = r < 0 ? errno : 0;
    check("second write fails with EPIPE or ECONNRESET", e == EPIPE || e == ECONNRESET);
    out("SIGPIPE for an EPIPE write: %d\n", e == EPIPE ? (int)sigpipes : 1);
    close(s);
    signal(SIGPIPE, SIG_DFL);
}

static void options(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    setint(s, SOL_SOCKET, SO_RCVBUF, 65536);
    out("SO_RCVBUF 65536 -> %d\n", intopt(s, SOL_SOCKET, SO_RCVBUF));
    setint(s, SOL_SOCKET, SO_SNDBUF, 65536);
    out("SO_SNDBUF 65536 -> %d\n", intopt(s, SOL_SOCKET, SO_SNDBUF));
    out("TCP_NODELAY default %d", intopt(s, IPPROTO_TCP, TCP_NODELAY));
    setint(s, IPPROTO_TCP, TCP_NODELAY, 1);
    out(", set 1 -> %d\n", intopt(s, IPPROTO_TCP, TCP_NODELAY));
    setint(s, IPPROTO_TCP, TCP_NODELAY, 5);
    out("TCP_NODELAY 5 -> %d\n", intopt(s, IPPROTO_TCP, TCP_NODELAY));
    setint(s, IPPROTO_TCP, TCP_CORK, 1);
    out("TCP_CORK 1 -> %d\n", intopt(s, IPPROTO_TCP, TCP_CORK));
    setint(s, IPPROTO_TCP, TCP_CORK, 0);
    out("SO_KEEPALIVE default %d", intopt(s, SOL_SOCKET, SO_KEEPALIVE));
    setint(s, SOL_SOCKET, SO_KEEPALIVE, 1);
    out(", set -> %d\n", intopt(s, SOL_SOCKET, SO_KEEPALIVE));
    out("TCP_KEEPIDLE default %d TCP_KEEPINTVL %d TCP_KEEPCNT %d\n", intopt(s, IPPROTO_TCP, TCP_KEEPIDLE),
        intopt(s, IPPROTO_TCP, TCP_KEEPINTVL), intopt(s, IPPROTO_TCP, TCP_KEEPCNT));
    setint(s, IPPROTO_TCP, TCP_KEEPIDLE, 77);
    setint(s, IPPROTO_TCP, TCP_KEEPINTVL, 13);
    setint(s, IPPROTO_TCP, TCP_KEEPCNT, 4);
    out("set 77/13/4 -> %d/%d/%d\n", intopt(s, IPPROTO_TCP, TCP_KEEPIDLE), intopt(s, IPPROTO_TCP, TCP_KEEPINTVL),
        intopt(s, IPPROTO_TCP, TCP_KEEPCNT));
    int zero = 0;
    expect("TCP_KEEPIDLE 0", E(setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &zero, sizeof zero)), "EINVAL");
    struct linger lg = {1, 5};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct linger got = {-1, -1};
    socklen_t gl = sizeof got;
    getsockopt(s, SOL_SOCKET, SO_LINGER, &got, &gl);
    out("SO_LINGER {1,5} -> {%d,%d} len %d\n", got.l_onoff, got.l_linger, (int)gl);
    out("SO_REUSEADDR default %d", intopt(s, SOL_SOCKET, SO_REUSEADDR));
    setint(s, SOL_SOCKET, SO_REUSEADDR, 1);
    out(", set -> %d\n", intopt(s, SOL_SOCKET, SO_REUSEADDR));
    setint(s, SOL_SOCKET, SO_REUSEPORT, 1);
    out("SO_REUSEPORT -> %d\n", intopt(s, SOL_SOCKET, SO_REUSEPORT));
    out("SO_ERROR %d\n", intopt(s, SOL_SOCKET, SO_ERROR));
    char small = 1;
    expect("setsockopt with a 1-byte int", E(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &small, 1)), "EINVAL");
    int v = -1;
    gl = 2;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &gl);
    out("getsockopt SO_TYPE with len 2: len %d\n", (int)gl);
    close(s);

    /* TCP_CORK held, then released: a small write is not stalled. */
    int c, srv;
    tcp_pair(&c, &srv);
    setint(c, IPPROTO_TCP, TCP_CORK, 1);
    write(c, "HTTP/1.1 200 OK\r\n\r\n", 19);
    write(c, "body", 4);
    setint(c, IPPROTO_TCP, TCP_CORK, 0);
    char buf[64];
    size_t got_n = 0;
    ssize_t n;
    while (got_n < 23 && (wait_for(srv, POLLIN) & POLLIN) && (n = read(srv, buf + got_n, sizeof buf - got_n)) > 0)
        got_n += (size_t)n;
    out("corked then uncorked: %zu bytes arrive\n", got_n);
    close(c);
    close(srv);
}

static void udp(void) {
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in la = v4("127.0.0.1", 0);
    bind(a, (struct sockaddr *)&la, sizeof la);
    bind(b, (struct sockaddr *)&la, sizeof la);
    struct sockaddr_in ta = v4("127.0.0.1", port_of(a)), tb = v4("127.0.0.1", port_of(b));
    char msg[100];
    memset(msg, 'u', sizeof msg);
    out("sendto 100: %zd\n", sendto(b, msg, sizeof msg, 0, (struct sockaddr *)&ta, sizeof ta));
    wait_for(a, POLLIN);
    char buf[2048];
    struct sockaddr_in from;
    struct iovec iov = {buf, 10};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(a, &mh, MSG_TRUNC);
    out("recvmsg into 10 bytes with MSG_TRUNC: %zd, msg_flags MSG_TRUNC %d\n", n, (mh.msg_flags & MSG_TRUNC) != 0);
    check("sender address", from.sin_port == tb.sin_port && from.sin_addr.s_addr == tb.sin_addr.s_addr);
    sendto(b, msg, sizeof msg, 0, (struct sockaddr *)&ta, sizeof ta);
    wait_for(a, POLLIN);
    mh.msg_flags = 0;
    n = recvmsg(a, &mh, 0);
    out("recvmsg into 10 bytes: %zd, msg_flags MSG_TRUNC %d\n", n, (mh.msg_flags & MSG_TRUNC) != 0);
    sendto(b, "", 0, 0, (struct sockaddr *)&ta, sizeof ta);
    wait_for(a, POLLIN);
    out("empty datagram: %zd\n", recv(a, buf, sizeof buf, 0));
    sendto(b, msg, 50, 0, (struct sockaddr *)&ta, sizeof ta);
    wait_for(a, POLLIN);
    int avail = -1;
    ioctl(a, FIONREAD, &avail);
    out("FIONREAD: %d\n", avail);
    recv(a, buf, sizeof buf, 0);
    expect("recv on empty, MSG_DONTWAIT", E(recv(a, buf, 1, MSG_DONTWAIT)), "EAGAIN");
    expect("send without an address", E(send(a, "x", 1, 0)), "EDESTADDRREQ");
    expect("connect", E(connect(a, (struct sockaddr *)&tb, sizeof tb)), "ok");
    out("send connected: %zd\n", send(a, "abc", 3, 0));
    wait_for(b, POLLIN);
    socklen_t fl = sizeof from;
    n = recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    out("received %zd from the connected socket's port %d\n", n, from.sin_port == ta.sin_port);
    /* A connected socket drops datagrams from other senders. */
    int o = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(o, "zz", 2, 0, (struct sockaddr *)&ta, sizeof ta);
    sendto(b, "ok", 2, 0, (struct sockaddr *)&ta, sizeof ta);
    wait_for(a, POLLIN);
    n = recv(a, buf, sizeof buf, 0);
    out("connected socket receives '%.*s'\n", (int)(n > 0 ? n : 0), buf);
    expect("sendto another address on a connected socket", E(sendto(a, "x", 1, 0, (struct sockaddr *)&ta, sizeof ta)), "ok");
    wait_for(a, POLLIN);
    recv(a, buf, sizeof buf, MSG_DONTWAIT);
    /* Port unreachable reaches a connected socket as ECONNREFUSED. */
    int t = socket(AF_INET, SOCK_DGRAM, 0);
    bind(t, (struct sockaddr *)&la, sizeof la);
    struct sockaddr_in gone = v4("127.0.0.1", port_of(t));
    close(t);
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    connect(d, (struct sockaddr *)&gone, sizeof gone);
    send(d, "x", 1, 0);
    out("poll after sending to a closed port: %s\n", pollbits(wait_for(d, POLLIN)));
    expect("recv", E(recv(d, buf, sizeof buf, MSG_DONTWAIT)), "ECONNREFUSED");
    expect("recv again", E(recv(d, buf, sizeof buf, MSG_DONTWAIT)), "EAGAIN");
    struct sockaddr_in unspec = {.sin_family = AF_UNSPEC};
    expect("disconnect (AF_UNSPEC)", E(connect(a, (struct sockaddr *)&unspec, sizeof unspec)), "ok");
    expect("send after disconnect", E(send(a, "x", 1, 0)), "EDESTADDRREQ");
    close(a);
    close(b);
    close(o);
    close(d);
}

static void v6_section(void) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    out("IPV6_V6ONLY default %d\n", intopt(l, IPPROTO_IPV6, IPV6_V6ONLY));
    struct sockaddr_in6 any = v6("::", 0);
    REQUIRE(bind(l, (struct sockaddr *)&any, sizeof any) == 0 && listen(l, 4) == 0);
    uint16_t p = port_of(l);
    int c = connect4(p);
    check("an AF_INET client connects to the dual-stack listener", c >= 0);
    struct sockaddr_in6 peer;
    socklen_t pl = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &pl);
    char txt[64] = "?";
    inet_ntop(AF_INET6, &peer.sin6_addr, txt, sizeof txt);
    out("accepted family %s len %d peer %s, port matches %d\n", peer.sin6_family == AF_INET6 ? "AF_INET6" : "other",
        (int)pl, txt, ntohs(peer.sin6_port) == port_of(c));
    struct sockaddr_in6 me;
    pl = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &pl);
    inet_ntop(AF_INET6, &me.sin6_addr, txt, sizeof txt);
    out("accepted socket's local address %s\n", txt);
    write(c, "46", 2);
    char buf[8];
    wait_for(s, POLLIN);
    out("read %zd\n", read(s, buf, sizeof buf));
    close(s);
    close(c);
    int b4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in same4 = v4("0.0.0.0", p);
    expect("AF_INET bind to the dual-stack port", E(bind(b4, (struct sockaddr *)&same4, sizeof same4)), "EADDRINUSE");
    close(b4);
    close(l);

    l = socket(AF_INET6, SOCK_STREAM, 0);
    setint(l, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    out("IPV6_V6ONLY set -> %d\n", intopt(l, IPPROTO_IPV6, IPV6_V6ONLY));
    REQUIRE(bind(l, (struct sockaddr *)&any, sizeof any) == 0 && listen(l, 4) == 0);
    p = port_of(l);
    int r = connect4(p);
    expect("AF_INET client to a V6ONLY listener", r < 0 ? err(-r) : "ok", "ECONNREFUSED");
    b4 = socket(AF_INET, SOCK_STREAM, 0);
    same4 = v4("0.0.0.0", p);
    expect("AF_INET bind to the V6ONLY port", E(bind(b4, (struct sockaddr *)&same4, sizeof same4)), "ok");
    c = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo6 = v6("::1", p);
    expect("connect to [::1]", E(connect(c, (struct sockaddr *)&lo6, sizeof lo6)), "ok");
    pl = sizeof peer;
    s = accept(l, (struct sockaddr *)&peer, &pl);
    inet_ntop(AF_INET6, &peer.sin6_addr, txt, sizeof txt);
    out("peer %s\n", txt);
    expect("set IPV6_V6ONLY on a bound socket", E(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int))), "EINVAL");
    close(s);
    close(c);
    close(b4);
    close(l);

    int u = socket(AF_INET6, SOCK_DGRAM, 0), u2 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 l6 = v6("::1", 0);
    bind(u, (struct sockaddr *)&l6, sizeof l6);
    struct sockaddr_in6 to = v6("::1", port_of(u));
    out("udp6 sendto: %zd\n", sendto(u2, "six", 3, 0, (struct sockaddr *)&to, sizeof to));
    wait_for(u, POLLIN);
    struct sockaddr_in6 from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    inet_ntop(AF_INET6, &from.sin6_addr, txt, sizeof txt);
    out("udp6 recvfrom: %zd from %s len %d\n", n, txt, (int)fl);
    close(u);
    close(u2);
}

static void epoll_section(void) {
    int l = listener4(4);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event got[4];
    out("listener, nothing pending: %d\n", epoll_wait(ep, got, 4, 0));
    int c = connect4(port_of(l));
    int n = epoll_wait(ep, got, 4, 10000);
    out("after a connect: %d events, data %u, EPOLLIN %d\n", n, got[0].data.u32, (got[0].events & EPOLLIN) != 0);
    int s = accept(l, NULL, NULL);
    out("after accept: %d\n", epoll_wait(ep, got, 4, 0));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    n = epoll_wait(ep, got, 4, 10000);
    out("accepted socket: %d events, data %u, OUT %d IN %d\n", n, got[0].data.u32, (got[0].events & EPOLLOUT) != 0,
        (got[0].events & EPOLLIN) != 0);
    out("edge-triggered, nothing new: %d\n", epoll_wait(ep, got, 4, 0));
    write(c, "ping", 4);
    n = epoll_wait(ep, got, 4, 10000);
    out("after the peer writes: %d events, IN %d\n", n, (got[0].events & EPOLLIN) != 0);
    char buf[8];
    read(s, buf, sizeof buf);
    shutdown(c, SHUT_WR);
    n = epoll_wait(ep, got, 4, 10000);
    out("after the peer's SHUT_WR: %d events, IN %d RDHUP %d\n", n, (got[0].events & EPOLLIN) != 0,
        (got[0].events & EPOLLRDHUP) != 0);
    close(s);
    close(c);
    close(ep);
    close(l);
}

static void sendfile_section(void) {
    char path[] = "/tmp/rvisor-inet-XXXXXX";
    int f = mkstemp(path);
    REQUIRE(f >= 0);
    unlink(path);
    static char content[300000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (char)(i * 13 + (i >> 9));
    REQUIRE(write(f, content, sizeof content) == (ssize_t)sizeof content);
    int c, s;
    tcp_pair(&c, &s);
    pid_t child = fork();
    if (child == 0) {
        off_t off = 1000;
        size_t left = sizeof content - 1000;
        while (left > 0) {
            ssize_t n = sendfile(s, f, &off, left);
            if (n <= 0)
                _exit(1);
            left -= (size_t)n;
        }
        /* The offset argument moved; the file position did not. */
        _exit(off == (off_t)sizeof content && lseek(f, 0, SEEK_CUR) == (off_t)sizeof content ? 0 : 2);
    }
    close(s);
    static char got[300000];
    size_t total = 0;
    ssize_t n;
    while (total < sizeof got && (n = read(c, got + total, sizeof got - total)) > 0)
        total += (size_t)n;
    int st;
    waitpid(child, &st, 0);
    out("sendfile sent %zu bytes, same as the file %d, sender status %d\n", total,
        total == sizeof content - 1000 && memcmp(got, content + 1000, total) == 0, WEXITSTATUS(st));
    lseek(f, 0, SEEK_SET);
    int c2, s2;
    tcp_pair(&c2, &s2);
    n = sendfile(s2, f, NULL, 5000);
    out("sendfile with NULL offset: %zd, file position %ld\n", n, (long)lseek(f, 0, SEEK_CUR));
    close(c);
    close(c2);
    close(s2);
    close(f);
}

static void mmsg(void) {
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in la = v4("127.0.0.1", 0);
    bind(a, (struct sockaddr *)&la, sizeof la);
    struct sockaddr_in ta = v4("127.0.0.1", port_of(a));
    connect(b, (struct sockaddr *)&ta, sizeof ta);
    struct mmsghdr m[3];
    struct iovec iov[3];
    char data[3][8] = {"a", "bb", "ccc"};
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = data[i];
        iov[i].iov_len = (size_t)i + 1;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(b, m, 3, 0);
    out("sendmmsg: %d, msg_len %u %u %u\n", sent, m[0].msg_len, m[1].msg_len, m[2].msg_len);
    struct mmsghdr r[4];
    struct iovec riov[4];
    char rbuf[4][16];
    int total = 0;
    char lens[32] = "";
    while (total < 3) {
        memset(r, 0, sizeof r);
        for (int i = 0; i < 4; i++) {
            riov[i].iov_base = rbuf[i];
            riov[i].iov_len = sizeof rbuf[i];
            r[i].msg_hdr.msg_iov = &riov[i];
            r[i].msg_hdr.msg_iovlen = 1;
        }
        if (!(wait_for(a, POLLIN) & POLLIN))
            break;
        int n = recvmmsg(a, r, 4, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            char one[8];
            snprintf(one, sizeof one, " %u", r[i].msg_len);
            strcat(lens, one);
        }
        total += n;
    }
    out("recvmmsg: %d datagrams, lengths%s\n", total, lens);
    expect("recvmmsg on empty, MSG_DONTWAIT", E(recvmmsg(a, r, 4, MSG_DONTWAIT, NULL)), "EAGAIN");
    close(a);
    close(b);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void gai(void) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo("localhost", "80", &hints, &res);
    out("getaddrinfo(localhost): %s\n", r == 0 ? "ok" : gai_strerror(r));
    if (r != 0)
        return;
    char *lines[16];
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < 16; ai = ai->ai_next) {
        char txt[64] = "?";
        if (ai->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, txt, sizeof txt);
        else if (ai->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, txt, sizeof txt);
        lines[n] = malloc(96);
        snprintf(lines[n], 96, "%s %s proto %d", ai->ai_family == AF_INET ? "AF_INET" : "AF_INET6", txt, ai->ai_protocol);
        n++;
    }
    qsort(lines, (size_t)n, sizeof lines[0], cmp_str);
    for (int i = 0; i < n; i++) {
        out("  %s\n", lines[i]);
        free(lines[i]);
    }
    freeaddrinfo(res);
    char host[64], serv[16];
    struct sockaddr_in a = v4("127.0.0.1", 80);
    r = getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, serv, sizeof serv, NI_NUMERICSERV);
    out("getnameinfo(127.0.0.1): %s %s\n", r == 0 ? host : gai_strerror(r), r == 0 ? serv : "");
}

int main(int argc, char **argv) {
    static const struct section sections[] = {
        {"errors", errors},   {"bind", bind_section}, {"ephemeral", ephemeral},       {"backlog", backlog},
        {"connect", connect_section}, {"data", data},   {"shutdown", shutdown_section}, {"epipe", epipe},
        {"options", options}, {"udp", udp},           {"v6", v6_section},             {"epoll", epoll_section},
        {"sendfile", sendfile_section}, {"mmsg", mmsg}, {"gai", gai},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
