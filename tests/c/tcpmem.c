/* Memory the network stack holds per socket, from a guest that makes many of them on
 * loopback. Natively every step works; in rvisor under a small memory limit the sandbox's
 * socket buffer budget may refuse some sockets (ENOBUFS, or a connection that never
 * completes because the listener could take no new one), which the output tolerates, but
 * the sandbox must never grow until the host kills it.
 *
 *   tcpmem churn N KIB   N connections one after another: the client sends KIB KiB, the
 *                        server echoes them and closes first (its side lingers in
 *                        TIME_WAIT), the client checks the echo and closes
 *   tcpmem hold N KIB    opens up to N connections and keeps them, each with KIB KiB left
 *                        unread in both directions; stops at the first refusal; then
 *                        closes them all and makes one more connection
 *   tcpmem udp N         binds up to N UDP sockets, each left with four 60000-byte
 *                        datagrams unread; stops at the first refusal; then closes them
 *                        all and binds one more
 *   tcpmem bulk MIB [KIB] one connection carries MIB MiB in writes and reads of KIB KiB
 *                        (default 64; a child reads); prints the rate on stderr
 *   tcpmem all N KIB     churn N KIB, hold N KIB and udp N in turn
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 4096

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A byte of connection `c`'s stream at offset `i`. */
static unsigned char pattern(int c, long i) {
    return (unsigned char)(c * 31 + i * 7 + (i >> 12));
}

static int listener(struct sockaddr_in *at) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(l, 128) < 0)
        die("listen");
    socklen_t len = sizeof *at;
    if (getsockname(l, (struct sockaddr *)at, &len) < 0)
        die("getsockname");
    return l;
}

/* Whether errno says the stack had no memory for the socket. */
static int refused(int e) {
    return e == ENOBUFS || e == ENOMEM;
}

/* A client connected to `at`, or -1 with errno (a connection not made within 2 s, which
 * only a listener that cannot take it leaves waiting, is EINPROGRESS). */
static int dial(const struct sockaddr_in *at) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2};
    if (setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        die("SO_SNDTIMEO");
    if (connect(c, (const struct sockaddr *)at, sizeof *at) < 0) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

static void write_all(int fd, const unsigned char *p, long n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= w;
    }
}

/* Reads exactly `n` bytes; whether they match connection `c`'s pattern. */
static int read_check(int fd, int c, long n) {
    static unsigned char buf[65536];
    long off = 0;
    int ok = 1;
    while (off < n) {
        long want = n - off < (long)sizeof buf ? n - off : (long)sizeof buf;
        ssize_t r = read(fd, buf, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (r == 0)
            return 0;
        for (ssize_t i = 0; i < r; i++)
            ok &= buf[i] == pattern(c, off + i);
        off += r;
    }
    return ok;
}

static unsigned char *stream(int c, long n) {
    unsigned char *p = malloc(n);
    if (!p)
        die("malloc");
    for (long i = 0; i < n; i++)
        p[i] = pattern(c, i);
    return p;
}

/* One connection's exchange on non-blocking sockets: the client `c` sends `data`, the
 * server `s` echoes every byte, the client checks the echo (connection `id`'s pattern). */
static int exchange(int c, int s, int id, const unsigned char *data, long len) {
    static unsigned char pend[65536], buf[65536];
    long sent = 0, echoed_in = 0, pend_len = 0, back = 0;
    int ok = 1;
    fcntl(c, F_SETFL, O_NONBLOCK);
    fcntl(s, F_SETFL, O_NONBLOCK);
    while (back < len) {
        int progress = 0;
        if (sent < len) {
            ssize_t w = write(c, data + sent, len - sent);
            if (w > 0) {
                sent += w;
                progress = 1;
            } else if (w < 0 && errno != EAGAIN)
                die("client write");
        }
        if (pend_len == 0 && echoed_in < len) {
            ssize_t r = read(s, pend, sizeof pend);
            if (r > 0) {
                pend_len = r;
                echoed_in += r;
                progress = 1;
            } else if (r == 0 || errno != EAGAIN)
                die("server read");
        }
        if (pend_len > 0) {
            ssize_t w = write(s, pend, pend_len);
            if (w > 0) {
                memmove(pend, pend + w, pend_len - w);
                pend_len -= w;
                progress = 1;
            } else if (w < 0 && errno != EAGAIN)
                die("server write");
        }
        ssize_t r = read(c, buf, sizeof buf);
        if (r > 0) {
            for (ssize_t i = 0; i < r; i++)
                ok &= buf[i] == pattern(id, back + i);
            back += r;
            progress = 1;
        } else if (r == 0 || errno != EAGAIN)
            die("client read");
        if (!progress) {
            struct pollfd p[2] = {
                {.fd = c, .events = POLLIN | (sent < len ? POLLOUT : 0)},
                {.fd = s, .events = (pend_len ? POLLOUT : POLLIN)},
            };
            if (poll(p, 2, -1) < 0 && errno != EINTR)
                die("poll");
        }
    }
    return ok;
}

static void churn(int n, long kib) {
    struct sockaddr_in at;
    int l = listener(&at);
    long len = kib * 1024;
    int ok = 1, made = 0;
    for (int i = 0; i < n; i++) {
        unsigned char *data = stream(i, len);
        int c = dial(&at);
        if (c < 0)
            die("churn connect");
        int s = accept(l, NULL, NULL);
        if (s < 0)
            die("churn accept");
        ok &= exchange(c, s, i, data, len);
        /* The server closes first (its side lingers in TIME_WAIT): the client sees EOF. */
        close(s);
        fcntl(c, F_SETFL, 0);
        char b;
        ok &= read(c, &b, 1) == 0;
        close(c);
        free(data);
        made++;
    }
    close(l);
    printf("churn: %d connections, every echo intact: %s\n", made, ok ? "yes" : "no");
}

static void hold(int n, long kib) {
    static int cs[MAXCONN], ss[MAXCONN];
    struct sockaddr_in at;
    int l = listener(&at);
    long len = kib * 1024;
    unsigned char *data = stream(0, len);
    int made = 0, ok = 1, stop = 0;
    if (n > MAXCONN)
        n = MAXCONN;
    for (int i = 0; i < n; i++) {
        int c = dial(&at);
        if (c < 0) {
            if (refused(errno) || errno == EINPROGRESS) {
                fprintf(stderr, "hold: %d connections, then %s\n", made, strerror(errno));
                stop = 1;
                break;
            }
            die("hold connect");
        }
        int s = accept(l, NULL, NULL);
        if (s < 0)
            die("hold accept");
        fcntl(c, F_SETFL, O_NONBLOCK);
        fcntl(s, F_SETFL, O_NONBLOCK);
        /* Both directions keep up to `len` bytes queued (a full buffer takes less). */
        ssize_t a = write(c, data, len), b = write(s, data, len);
        ok &= a > 0 && b > 0;
        cs[i] = c;
        ss[i] = s;
        made++;
    }
    printf("hold: made all or stopped at a refusal: %s\n",
           made == n || stop ? "yes" : "no");
    printf("hold: every connection made took data: %s\n", ok ? "yes" : "no");
    for (int i = 0; i < made; i++) {
        close(cs[i]);
        close(ss[i]);
    }
    int c = dial(&at);
    if (c < 0)
        die("hold: connect after closing all");
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("hold: accept after closing all");
    write_all(c, data, 4096);
    printf("hold: a connection after closing all carries data: %s\n",
           read_check(s, 0, 4096) ? "yes" : "no");
    close(c);
    close(s);
    close(l);
    free(data);
}

static void udp(int n) {
    static int us[MAXCONN];
    static char dgram[60000];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (tx < 0)
        die("udp socket");
    int made = 0, ok = 1, stop = 0;
    if (n > MAXCONN)
        n = MAXCONN;
    for (int i = 0; i < n; i++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        if (u < 0)
            die("udp socket");
        a.sin_port = 0;
        if (bind(u, (struct sockaddr *)&a, sizeof a) < 0) {
            if (refused(errno)) {
                fprintf(stderr, "udp: %d sockets, then %s\n", made, strerror(errno));
                close(u);
                stop = 1;
                break;
            }
            die("udp bind");
        }
        struct sockaddr_in to;
        socklen_t len = sizeof to;
        if (getsockname(u, (struct sockaddr *)&to, &len) < 0)
            die("getsockname");
        for (int k = 0; k < 4; k++) {
            ssize_t w = sendto(tx, dgram, sizeof dgram, 0, (struct sockaddr *)&to, sizeof to);
            if (w < 0 && refused(errno)) {
                fprintf(stderr, "udp: %d sockets, then sendto %s\n", made, strerror(errno));
                stop = 1;
                break;
            }
            ok &= w == sizeof dgram;
        }
        us[made++] = u;
        if (stop)
            break;
    }
    printf("udp: bound all or stopped at a refusal: %s\n", made == n || stop ? "yes" : "no");
    printf("udp: every datagram sent whole: %s\n", ok ? "yes" : "no");
    for (int i = 0; i < made; i++)
        close(us[i]);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_port = 0;
    if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0)
        die("udp: bind after closing all");
    struct sockaddr_in to;
    socklen_t len = sizeof to;
    if (getsockname(u, (struct sockaddr *)&to, &len) < 0)
        die("getsockname");
    if (sendto(tx, dgram, sizeof dgram, 0, (struct sockaddr *)&to, sizeof to) != sizeof dgram)
        die("udp: send after closing all");
    printf("udp: a socket after closing all receives: %s\n",
           recv(u, dgram, sizeof dgram, 0) == sizeof dgram ? "yes" : "no");
    close(u);
    close(tx);
}

static void bulk(long mib, long chunk_kib) {
    struct sockaddr_in at;
    int l = listener(&at);
    static unsigned char buf[1 << 20];
    long chunk = chunk_kib << 10;
    if (chunk <= 0 || chunk > (long)sizeof buf)
        chunk = 65536;
    memset(buf, 'x', sizeof buf);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int c = dial(&at);
        if (c < 0)
            die("bulk connect");
        long total = 0;
        ssize_t r;
        while ((r = read(c, buf, chunk)) > 0)
            total += r;
        _exit(total == mib << 20 ? 0 : 1);
    }
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("bulk accept");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long left = mib << 20; left > 0; left -= chunk)
        write_all(s, buf, left < chunk ? left : chunk);
    close(s);
    int status;
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "bulk: %ld MiB in %.3f s: %.1f MiB/s\n", mib, secs, mib / secs);
    printf("bulk: reader got everything: %s\n",
           WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
    close(l);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: tcpmem churn|hold|all N KIB | udp N | bulk MIB [KIB]\n");
        return 2;
    }
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    long kib = argc > 3 ? atol(argv[3]) : 64;
    if (!strcmp(mode, "churn"))
        churn(n, kib);
    else if (!strcmp(mode, "hold"))
        hold(n, kib);
    else if (!strcmp(mode, "udp"))
        udp(n);
    else if (!strcmp(mode, "bulk"))
        bulk(n, argc > 3 ? kib : 64);
    else if (!strcmp(mode, "all")) {
        churn(n, kib);
        hold(n, kib);
        udp(n);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
