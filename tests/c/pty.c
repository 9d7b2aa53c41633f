/*
 * Pseudo-terminals: `pty SECTION`, sections canon, raw, isig, winch, pgrp, attrs.
 * Opens /dev/ptmx, grantpt/unlockpt/ptsname, opens the replica, and checks the line
 * discipline, signals from the terminal, window size and job-control ioctls.
 */
#include "rvtest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static int master = -1, replica = -1;
static char rname[64];

static void open_pair(int replica_flags) {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(grantpt(master) == 0);
    REQUIRE(unlockpt(master) == 0);
    REQUIRE(ptsname_r(master, rname, sizeof rname) == 0);
    check("ptsname is under /dev/pts", strncmp(rname, "/dev/pts/", 9) == 0);
    check("master is a tty", isatty(master));
    if (replica_flags >= 0) {
        replica = open(rname, replica_flags);
        REQUIRE(replica >= 0);
    }
}

/* Reads exactly `n` bytes (blocking). */
static int read_n(int fd, char *buf, int n) {
    int got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got;
        got += r;
    }
    return got;
}

static void canon(void) {
    open_pair(O_RDWR | O_NOCTTY);
    check("replica is a tty", isatty(replica));
    REQUIRE(write(master, "ab\x7f" "c\n", 5) == 5);
    char buf[64] = {0};
    ssize_t n = read(replica, buf, sizeof buf);
    check("canonical read gets the edited line", n == 3 && memcmp(buf, "ac\n", 3) == 0);
    memset(buf, 0, sizeof buf);
    check("echo erases with backspace-space-backspace", read_n(master, buf, 8) == 8 && memcmp(buf, "ab\b \bc\r\n", 8) == 0);
    REQUIRE(write(replica, "x\ny", 3) == 3);
    check("output maps NL to CR NL", read_n(master, buf, 4) == 4 && memcmp(buf, "x\r\ny", 4) == 0);
    REQUIRE(write(master, "one\x04", 4) == 4);
    n = read(replica, buf, sizeof buf);
    check("VEOF ends a line without a newline", n == 3 && memcmp(buf, "one", 3) == 0);
    REQUIRE(write(master, "\x04", 1) == 1);
    check("VEOF at line start reads 0", read(replica, buf, sizeof buf) == 0);
    REQUIRE(write(master, "word more\x17" "x\x15" "z\r", 14) == 14);
    n = read(replica, buf, sizeof buf);
    check("word erase, kill and ICRNL", n == 2 && memcmp(buf, "z\n", 2) == 0);
    REQUIRE(write(master, "abc\n", 4) == 4);
    n = read(replica, buf, 2);
    check("a short read takes part of the line", n == 2 && memcmp(buf, "ab", 2) == 0);
    n = read(replica, buf, sizeof buf);
    check("the rest of the line follows", n == 2 && memcmp(buf, "c\n", 2) == 0);
    struct termios t;
    REQUIRE(tcgetattr(replica, &t) == 0);
    check("default lflag has ICANON ECHO ISIG", (t.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG));
    check("default iflag has ICRNL", (t.c_iflag & ICRNL) != 0);
    check("default oflag has OPOST ONLCR", (t.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR));
    check("VERASE is DEL, VINTR ^C", t.c_cc[VERASE] == 0177 && t.c_cc[VINTR] == 3);
    check("speed is 38400", cfgetospeed(&t) == B38400);
}

static void raw(void) {
    open_pair(O_RDWR | O_NOCTTY);
    struct termios t;
    REQUIRE(tcgetattr(replica, &t) == 0);
    cfmakeraw(&t);
    REQUIRE(tcsetattr(replica, TCSANOW, &t) == 0);
    REQUIRE(write(master, "\x03" "a\r", 3) == 3);
    char buf[16] = {0};
    check("raw read passes bytes unchanged", read_n(replica, buf, 3) == 3 && memcmp(buf, "\x03" "a\r", 3) == 0);
    int fl = fcntl(replica, F_GETFL);
    REQUIRE(fcntl(replica, F_SETFL, fl | O_NONBLOCK) == 0);
    errno = 0;
    ssize_t n = read(replica, buf, sizeof buf);
    check("empty non-blocking read is EAGAIN", n < 0 && errno == EAGAIN);
    REQUIRE(fcntl(replica, F_SETFL, fl) == 0);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    REQUIRE(tcsetattr(replica, TCSANOW, &t) == 0);
    check("VMIN=0 VTIME=0 read returns 0", read(replica, buf, sizeof buf) == 0);
    REQUIRE(write(replica, "p\n", 2) == 2);
    check("no output processing without OPOST", read_n(master, buf, 2) == 2 && memcmp(buf, "p\n", 2) == 0);
    REQUIRE(write(master, "xyz", 3) == 3);
    int avail = -1;
    /* Linux moves input to the replica asynchronously: wait for it to arrive. */
    for (int i = 0; i < 1000 && avail != 3; i++) {
        REQUIRE(ioctl(replica, FIONREAD, &avail) == 0);
        if (avail != 3)
            usleep(1000);
    }
    check("FIONREAD counts raw input", avail == 3);
    REQUIRE(tcflush(replica, TCIFLUSH) == 0);
    REQUIRE(ioctl(replica, FIONREAD, &avail) == 0);
    check("TCIFLUSH discards input", avail == 0);
}

/* A child in its own session with the replica as controlling terminal: reports "ok" on the
 * terminal once set up, then blocks reading it. */
static pid_t session_child(void) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(master);
        if (setsid() < 0)
            _exit(90);
        int fd = open(rname, O_RDWR);
        if (fd < 0)
            _exit(91);
        int ok = tcgetpgrp(fd) == getpid() && tcgetsid(fd) == getpid();
        if (write(fd, ok ? "ok" : "no", 2) != 2)
            _exit(92);
        char b[8];
        for (;;)
            if (read(fd, b, sizeof b) < 0 && errno != EINTR)
                _exit(93);
    }
    char buf[2];
    check("child acquired the terminal", read_n(master, buf, 2) == 2 && memcmp(buf, "ok", 2) == 0);
    return pid;
}

static void isig(void) {
    open_pair(O_RDWR | O_NOCTTY);
    pid_t pid = session_child();
    REQUIRE(write(master, "\x03", 1) == 1);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    check("^C kills the foreground group with SIGINT", WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    char buf[8];
    check("^C is echoed", read_n(master, buf, 2) == 2 && memcmp(buf, "^C", 2) == 0);
    /* Job control needs a group that is not orphaned: a leader and its child's group. */
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(master);
        setsid();
        int fd = open(rname, O_RDWR);
        REQUIRE(fd >= 0);
        pid_t g = fork();
        REQUIRE(g >= 0);
        if (g == 0) {
            setpgid(0, 0);
            while (tcgetpgrp(fd) != getpid())
                usleep(1000);
            if (write(fd, "ok", 2) != 2)
                _exit(92);
            char b[8];
            for (;;)
                if (read(fd, b, sizeof b) < 0 && errno != EINTR)
                    _exit(93);
        }
        setpgid(g, g);
        REQUIRE(tcsetpgrp(fd, g) == 0);
        int gs, bad = 0;
        REQUIRE(waitpid(g, &gs, WUNTRACED) == g);
        bad |= !(WIFSTOPPED(gs) && WSTOPSIG(gs) == SIGTSTP);
        kill(g, SIGCONT);
        REQUIRE(waitpid(g, &gs, WCONTINUED) == g);
        bad |= !WIFCONTINUED(gs) << 1;
        REQUIRE(write(fd, "c", 1) == 1);
        REQUIRE(waitpid(g, &gs, 0) == g);
        bad |= !(WIFSIGNALED(gs) && WTERMSIG(gs) == SIGQUIT) << 2;
        _exit(bad);
    }
    check("the job's group is in the foreground", read_n(master, buf, 2) == 2 && memcmp(buf, "ok", 2) == 0);
    REQUIRE(write(master, "\x1a", 1) == 1);
    check("^Z is echoed", read_n(master, buf, 2) == 2 && memcmp(buf, "^Z", 2) == 0);
    check("the job stopped and continued", read_n(master, buf, 1) == 1 && buf[0] == 'c');
    REQUIRE(write(master, "\x1c", 1) == 1);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    check("^Z stops with SIGTSTP, SIGCONT resumes, ^\\ sends SIGQUIT", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static volatile sig_atomic_t winched;
static void on_winch(int s) {
    (void)s;
    winched = 1;
}

static void winch(void) {
    open_pair(O_RDWR | O_NOCTTY);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(master);
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, &old);
        signal(SIGWINCH, on_winch);
        if (setsid() < 0)
            _exit(90);
        int fd = open(rname, O_RDWR);
        if (fd < 0 || write(fd, "r", 1) != 1)
            _exit(91);
        while (!winched)
            sigsuspend(&old);
        struct winsize ws;
        if (ioctl(fd, TIOCGWINSZ, &ws) != 0)
            _exit(92);
        _exit(ws.ws_row == 24 && ws.ws_col == 80 ? 0 : 93);
    }
    char b;
    REQUIRE(read_n(master, &b, 1) == 1);
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    REQUIRE(ioctl(master, TIOCSWINSZ, &ws) == 0);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    check("TIOCSWINSZ sends SIGWINCH and the size is seen", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct winsize got;
    REQUIRE(ioctl(master, TIOCGWINSZ, &got) == 0);
    check("the master sees the same size", got.ws_row == 24 && got.ws_col == 80);
}

static void pgrp(void) {
    open_pair(O_RDWR | O_NOCTTY);
    errno = 0;
    check("tcgetpgrp on a terminal that is not ours is ENOTTY", tcgetpgrp(replica) < 0 && errno == ENOTTY);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(master);
        close(replica);
        setsid();
        errno = 0;
        int t = open("/dev/tty", O_RDWR);
        check("/dev/tty without a controlling terminal is ENXIO", t < 0 && errno == ENXIO);
        int fd = open(rname, O_RDWR);
        REQUIRE(fd >= 0);
        t = open("/dev/tty", O_RDWR);
        check("/dev/tty opens the controlling terminal", t >= 0 && isatty(t));
        check("leader is in the foreground", tcgetpgrp(fd) == getpid());
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t g = fork();
        REQUIRE(g >= 0);
        if (g == 0) {
            setpgid(0, 0);
            char c;
            if (read(p[0], &c, 1) != 1)
                _exit(1);
            _exit(0);
        }
        setpgid(g, g);
        check("tcsetpgrp to the child's group", tcsetpgrp(fd, g) == 0 && tcgetpgrp(fd) == g);
        errno = 0;
        signal(SIGTTIN, SIG_IGN);
        char c;
        errno = 0;
        check("background read with SIGTTIN ignored is EIO", read(fd, &c, 1) < 0 && errno == EIO);
        signal(SIGTTOU, SIG_IGN);
        check("background tcsetpgrp with SIGTTOU ignored works", tcsetpgrp(fd, getpid()) == 0 && tcgetpgrp(fd) == getpid());
        signal(SIGTTOU, SIG_DFL);
        REQUIRE(tcsetpgrp(fd, g) == 0);
        /* In the background with SIGTTOU at its default: tcsetpgrp stops the caller. */
        pid_t h = fork();
        REQUIRE(h >= 0);
        if (h == 0) {
            setpgid(0, 0); /* not orphaned: the leader is its parent in another group */
            tcsetpgrp(fd, getpgrp());
            _exit(7);
        }
        int st;
        REQUIRE(waitpid(h, &st, WUNTRACED) == h);
        check("background tcsetpgrp stops with SIGTTOU", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTOU);
        kill(h, SIGKILL);
        waitpid(h, &st, 0);
        REQUIRE(write(p[1], "x", 1) == 1);
        waitpid(g, &st, 0);
        pid_t sid = -1;
        check("TIOCGSID is the session", ioctl(fd, TIOCGSID, &sid) == 0 && sid == getpid());
        _exit(failures);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    failures += WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void attrs(void) {
    open_pair(O_RDWR | O_NOCTTY);
    struct termios a, b;
    REQUIRE(tcgetattr(replica, &a) == 0);
    a.c_lflag &= ~(ECHO | ICANON);
    a.c_iflag &= ~ICRNL;
    a.c_cc[VINTR] = 1;
    a.c_cc[VMIN] = 3;
    REQUIRE(tcsetattr(replica, TCSAFLUSH, &a) == 0);
    REQUIRE(tcgetattr(master, &b) == 0);
    check("the master sees the replica's attributes",
          a.c_lflag == b.c_lflag && a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag &&
              memcmp(a.c_cc, b.c_cc, NCCS) == 0);
    int lock = 1;
    REQUIRE(ioctl(master, TIOCSPTLCK, &lock) == 0);
    errno = 0;
    check("a locked replica cannot be opened", open(rname, O_RDWR | O_NOCTTY) < 0 && errno == EIO);
    unsigned n = 99;
    check("TIOCGPTN names the replica", ioctl(master, TIOCGPTN, &n) == 0 && (int)n == atoi(rname + 9));
    close(master);
    char c;
    check("the replica reads 0 after the master closed", read(replica, &c, 1) == 0);
    errno = 0;
    check("and writes fail with EIO", write(replica, "x", 1) < 0 && errno == EIO);
}

int main(int argc, char **argv) {
    const char *s = argc > 1 ? argv[1] : "";
    out("== %s\n", s);
    if (!strcmp(s, "canon"))
        canon();
    else if (!strcmp(s, "raw"))
        raw();
    else if (!strcmp(s, "isig"))
        isig();
    else if (!strcmp(s, "winch"))
        winch();
    else if (!strcmp(s, "pgrp"))
        pgrp();
    else if (!strcmp(s, "attrs"))
        attrs();
    else {
        out("unknown section\n");
        return 2;
    }
    return failures;
}
