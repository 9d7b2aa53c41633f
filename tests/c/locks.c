/*
 * File locks and memfd: `locks BASE [SECTION...]` works in the folder BASE.
 *
 * POSIX record locks between a parent and a forked child (conflicts, F_GETLK reports,
 * splitting, release on close of another fd, F_SETLKW blocking and EINTR, EDEADLK), OFD
 * locks, flock(2), and memfd_create with seals. Pids are never printed, only whether a
 * reported pid is the expected process.
 */
#include "rvtest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

static const char *base;

static char *path_of(const char *name) {
    static char buf[4][512];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", base, name);
    return b;
}

/* A fresh file of `size` bytes. */
static int make_file(const char *name, int size) {
    int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, size) == 0);
    return fd;
}

static int setlk(int fd, int cmd, short type, short whence, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl) == 0 ? 0 : errno;
}

/* F_GETLK for a write lock over [start, start+len): "unlocked" or "W start len". */
static const char *getlk(int fd, int cmd, short type, off_t start, off_t len, pid_t *pid) {
    static char buf[64];
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) {
        snprintf(buf, sizeof buf, "%s", err(errno));
        return buf;
    }
    if (pid)
        *pid = fl.l_pid;
    if (fl.l_type == F_UNLCK)
        return "unlocked";
    snprintf(buf, sizeof buf, "%s %lld %lld", fl.l_type == F_WRLCK ? "W" : "R", (long long)fl.l_start, (long long)fl.l_len);
    return buf;
}

static int wait_child(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void posix(void) {
    int fd = make_file("posix", 200);
    pid_t parent = getpid();
    out("lock W 0..9: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10)));
    out("own lock seen by F_GETLK: %s\n", getlk(fd, F_GETLK, F_WRLCK, 0, 100, NULL));
    out("lock R 50..EOF: %s\n", err(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 50, 0)));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        pid_t who = 0;
        out("child W 5..5: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 5, 1)));
        out("child R 20..29: %s\n", err(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 20, 10)));
        out("child getlk W 0..99: %s\n", getlk(fd, F_GETLK, F_WRLCK, 0, 100, &who));
        check("reported pid is the parent", who == parent);
        out("child getlk W 40..199: %s\n", getlk(fd, F_GETLK, F_WRLCK, 40, 160, NULL));
        out("child getlk R 40..199: %s\n", getlk(fd, F_GETLK, F_RDLCK, 40, 160, NULL));
        out("child R 60..69: %s\n", err(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 60, 10)));
        out("child W 60..69: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 60, 10)));
        _exit(failures);
    }
    out("child status %d\n", wait_child(c));
    /* The child's locks went with it. */
    out("after child exit, getlk W 20..29: %s\n", getlk(fd, F_GETLK, F_WRLCK, 20, 10, NULL));
    /* Split: unlock the middle of 0..99 (made one write lock first). */
    out("lock W 0..99: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 100)));
    out("unlock 40..59: %s\n", err(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 40, 20)));
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("child getlk W 0..199: %s\n", getlk(fd, F_GETLK, F_WRLCK, 0, 200, NULL));
        out("child getlk W 40..199: %s\n", getlk(fd, F_GETLK, F_WRLCK, 40, 160, NULL));
        out("child W 45..49: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 45, 5)));
        _exit(0);
    }
    out("child status %d\n", wait_child(c));
    /* l_whence SEEK_CUR and SEEK_END, negative lengths. */
    REQUIRE(lseek(fd, 150, SEEK_SET) == 150);
    out("unlock all: %s\n", err(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0)));
    out("lock W cur-10 len -5: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_CUR, -10, -5)));
    out("lock R end-20 len 10: %s\n", err(setlk(fd, F_SETLK, F_RDLCK, SEEK_END, -20, 10)));
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("child getlk W 0..EOF: %s\n", getlk(fd, F_GETLK, F_WRLCK, 0, 0, NULL));
        out("child getlk W 150..EOF: %s\n", getlk(fd, F_GETLK, F_WRLCK, 150, 0, NULL));
        _exit(0);
    }
    out("child status %d\n", wait_child(c));
    /* Errors. */
    out("start before 0: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, -1, 1)));
    out("bad type: %s\n", err(setlk(fd, F_SETLK, 7, SEEK_SET, 0, 1)));
    out("bad whence: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, 9, 0, 1)));
    out("getlk F_UNLCK: %s\n", getlk(fd, F_GETLK, F_UNLCK, 0, 1, NULL));
    int ro = open(path_of("posix"), O_RDONLY);
    REQUIRE(ro >= 0);
    out("W on read-only fd: %s\n", err(setlk(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    out("R on read-only fd: %s\n", err(setlk(ro, F_SETLK, F_RDLCK, SEEK_SET, 0, 1)));
    out("bad fd: %s\n", err(setlk(999, F_SETLK, F_RDLCK, SEEK_SET, 0, 1)));
    out("bad pointer: %s\n", fcntl(fd, F_SETLK, (void *)8) == 0 ? "ok" : err(errno));
    close(ro);
    close(fd);
}

/* Closing any fd of the file drops the process's POSIX locks on it. */
static void close_release(void) {
    int a = make_file("closerel", 10);
    int b = open(path_of("closerel"), O_RDONLY);
    REQUIRE(b >= 0);
    int d = dup(a);
    out("lock W via a: %s\n", err(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 0)));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("child sees: %s\n", getlk(a, F_GETLK, F_RDLCK, 0, 0, NULL));
        /* The child closing its copies does not release the parent's locks. */
        close(a);
        close(b);
        _exit(0);
    }
    wait_child(c);
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("after the child closed its fds, another child sees: %s\n", getlk(a, F_GETLK, F_RDLCK, 0, 0, NULL));
        _exit(0);
    }
    wait_child(c);
    close(b);
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("after parent closed another fd, child sees: %s\n", getlk(a, F_GETLK, F_WRLCK, 0, 0, NULL));
        _exit(0);
    }
    wait_child(c);
    out("lock W via dup: %s\n", err(setlk(d, F_SETLK, F_WRLCK, SEEK_SET, 0, 0)));
    int e = open(path_of("closerel"), O_RDWR);
    REQUIRE(dup2(e, d) == d);
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("after dup2 over an fd of the file, child sees: %s\n", getlk(a, F_GETLK, F_WRLCK, 0, 0, NULL));
        _exit(0);
    }
    wait_child(c);
    close(a);
    close(d);
    close(e);
}

static void on_alarm(int sig) {
    (void)sig;
}

static void setlkw(void) {
    int fd = make_file("setlkw", 10);
    int p[2];
    REQUIRE(pipe(p) == 0);
    out("parent W: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        close(p[0]);
        int r = setlk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1);
        char ch = r == 0 ? 'y' : 'n';
        REQUIRE(write(p[1], &ch, 1) == 1);
        _exit(0);
    }
    close(p[1]);
    usleep(100 * 1000);
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    char ch = 0;
    ssize_t n = read(p[0], &ch, 1);
    check("child still waits while the lock is held", n < 0 && errno == EAGAIN);
    fcntl(p[0], F_SETFL, fl);
    out("parent unlock: %s\n", err(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 1)));
    n = read(p[0], &ch, 1);
    check("child got the lock after the release", n == 1 && ch == 'y');
    out("child status %d\n", wait_child(c));
    close(p[0]);

    /* A handled signal without SA_RESTART interrupts F_SETLKW with EINTR. */
    out("parent W again: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {.it_value = {.tv_usec = 50 * 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
        out("child F_SETLKW with a signal: %s\n", err(setlk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1)));
        _exit(0);
    }
    out("child status %d\n", wait_child(c));
    close(fd);
}

/* Two processes each hold one byte and wait for the other's: one of them gets EDEADLK. */
static void deadlock(void) {
    int fd = make_file("deadlock", 10);
    int p[2];
    REQUIRE(pipe(p) == 0);
    out("parent W byte 0: %s\n", err(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        close(p[0]);
        REQUIRE(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 1, 1) == 0);
        REQUIRE(write(p[1], "x", 1) == 1);
        int r = setlk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1);
        _exit(r == EDEADLK ? 1 : r == 0 ? 0 : 2);
    }
    close(p[1]);
    char ch;
    REQUIRE(read(p[0], &ch, 1) == 1);
    usleep(50 * 1000);
    int r = setlk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 1, 1);
    if (r == EDEADLK)
        setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 1);
    int st = wait_child(c);
    check("exactly one side got EDEADLK", (r == EDEADLK && st == 0) || (r == 0 && st == 1));
    close(p[0]);
    close(fd);
}

static void ofd(void) {
    int a = make_file("ofd", 100);
    int b = open(path_of("ofd"), O_RDWR);
    REQUIRE(b >= 0);
    pid_t who = 0;
    out("OFD W via a: %s\n", err(setlk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10)));
    out("OFD W via b (same process): %s\n", err(setlk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 1)));
    out("OFD getlk via b: %s\n", getlk(b, F_OFD_GETLK, F_RDLCK, 0, 0, &who));
    out("reported pid: %d\n", who);
    out("POSIX W via b: %s\n", err(setlk(b, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    out("POSIX getlk via b: %s\n", getlk(b, F_GETLK, F_WRLCK, 0, 0, NULL));
    out("OFD W via dup of a: %s\n", err(setlk(dup(a), F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 20)));
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    out("OFD with l_pid set: %s\n", fcntl(b, F_OFD_SETLK, &fl) == 0 ? "ok" : err(errno));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        /* The child shares description a: its lock is the child's too. */
        out("child OFD W via a: %s\n", err(setlk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 20)));
        out("child OFD W via b: %s\n", err(setlk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 20)));
        _exit(0);
    }
    wait_child(c);
    close(a);
    out("with a dup of a still open: %s\n", err(setlk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 20)));
    for (int fd = 3; fd < 64; fd++)
        if (fd != b)
            close(fd);
    out("after every fd of a closed: %s\n", err(setlk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 20)));
    out("OFD W via b blocking (free): %s\n", err(setlk(b, F_OFD_SETLKW, F_WRLCK, SEEK_SET, 0, 0)));
    close(b);
}

static const char *flk(int fd, int op) {
    return flock(fd, op) == 0 ? "ok" : err(errno);
}

static void flocks(void) {
    int a = make_file("flock", 10);
    int b = open(path_of("flock"), O_RDONLY);
    REQUIRE(b >= 0);
    out("a EX: %s\n", flk(a, LOCK_EX));
    out("a EX again: %s\n", flk(a, LOCK_EX));
    out("b EX|NB: %s\n", flk(b, LOCK_EX | LOCK_NB));
    out("b SH|NB: %s\n", flk(b, LOCK_SH | LOCK_NB));
    out("POSIX W while flocked: %s\n", err(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 1)));
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        out("child a EX|NB (same description): %s\n", flk(a, LOCK_EX | LOCK_NB));
        out("child b SH|NB: %s\n", flk(b, LOCK_SH | LOCK_NB));
        _exit(0);
    }
    wait_child(c);
    out("a SH (downgrade): %s\n", flk(a, LOCK_SH));
    out("b SH|NB: %s\n", flk(b, LOCK_SH | LOCK_NB));
    out("a EX|NB (b shares): %s\n", flk(a, LOCK_EX | LOCK_NB));
    out("b UN: %s\n", flk(b, LOCK_UN));
    out("a EX|NB: %s\n", flk(a, LOCK_EX | LOCK_NB));
    close(a);
    out("b EX|NB after a closed: %s\n", flk(b, LOCK_EX | LOCK_NB));
    out("bad op: %s\n", flk(b, 0));
    out("bad op 3: %s\n", flk(b, LOCK_SH | LOCK_EX));
    out("bad fd: %s\n", flk(999, LOCK_SH));
    /* A blocked flock wakes when the holder lets go. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        int x = open(path_of("flock"), O_RDONLY);
        const char *r = flk(x, LOCK_EX);
        REQUIRE(write(p[1], r, strlen(r)) > 0);
        _exit(0);
    }
    close(p[1]);
    usleep(50 * 1000);
    out("b UN: %s\n", flk(b, LOCK_UN));
    char buf[32] = {0};
    REQUIRE(read(p[0], buf, sizeof buf - 1) > 0);
    out("waiting child's flock: %s\n", buf);
    wait_child(c);
    close(p[0]);
    close(b);
}

static int seals(int fd) {
    int s = fcntl(fd, F_GET_SEALS);
    return s < 0 ? -errno : s;
}

static const char *addseal(int fd, int s) {
    return fcntl(fd, F_ADD_SEALS, s) == 0 ? "ok" : err(errno);
}

static void memfd(void) {
    int fd = memfd_create("rvtest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    out("cloexec: %d\n", fcntl(fd, F_GETFD));
    out("status flags rdwr: %d\n", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    REQUIRE(write(fd, "hello world", 11) == 11);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    out("size %lld, regular %d, nlink %d, mode %o\n", (long long)st.st_size, S_ISREG(st.st_mode), (int)st.st_nlink, st.st_mode & 0777);
    char buf[32] = {0};
    REQUIRE(pread(fd, buf, sizeof buf, 6) == 5);
    out("read back: %s\n", buf);
    out("seals: %d\n", seals(fd));

    /* Shared mappings share pages with a forked child and with read(2). */
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        memcpy(m, "HELLO", 5);
        _exit(0);
    }
    wait_child(c);
    REQUIRE(pread(fd, buf, 11, 0) == 11);
    out("after the child wrote the mapping: %.11s\n", buf);
    out("SEAL_WRITE with a writable mapping: %s\n", addseal(fd, F_SEAL_WRITE));
    REQUIRE(munmap(m, 4096) == 0);

    out("SEAL_SHRINK: %s\n", addseal(fd, F_SEAL_SHRINK));
    out("shrink: %s\n", ftruncate(fd, 2) == 0 ? "ok" : err(errno));
    out("grow: %s\n", ftruncate(fd, 20) == 0 ? "ok" : err(errno));
    out("SEAL_GROW: %s\n", addseal(fd, F_SEAL_GROW));
    out("grow: %s\n", ftruncate(fd, 30) == 0 ? "ok" : err(errno));
    out("same size: %s\n", ftruncate(fd, 20) == 0 ? "ok" : err(errno));
    out("write inside: %s\n", pwrite(fd, "ab", 2, 0) == 2 ? "ok" : err(errno));
    out("write past the end: %s\n", pwrite(fd, "ab", 2, 19) == 2 ? "ok" : err(errno));
    out("SEAL_WRITE: %s\n", addseal(fd, F_SEAL_WRITE));
    out("write: %s\n", pwrite(fd, "ab", 2, 0) == 2 ? "ok" : err(errno));
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    out("shared writable mmap: %s\n", m == MAP_FAILED ? err(errno) : "ok");
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    out("shared read-only mmap: %s\n", m == MAP_FAILED ? err(errno) : "ok");
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    out("private writable mmap: %s\n", m == MAP_FAILED ? err(errno) : "ok");
    out("seals: %d\n", seals(fd));
    out("SEAL_SEAL: %s\n", addseal(fd, F_SEAL_SEAL));
    out("add after SEAL_SEAL: %s\n", addseal(fd, F_SEAL_FUTURE_WRITE));
    out("seals: %d\n", seals(fd));
    out("unknown seal: %s\n", addseal(fd, 0x100));
    close(fd);

    /* Without MFD_ALLOW_SEALING the file is born sealed with F_SEAL_SEAL. */
    fd = memfd_create("plain", 0);
    REQUIRE(fd >= 0);
    out("plain cloexec: %d\n", fcntl(fd, F_GETFD));
    out("plain seals: %d\n", seals(fd));
    out("plain add: %s\n", addseal(fd, F_SEAL_WRITE));
    close(fd);

    fd = memfd_create("future", MFD_ALLOW_SEALING);
    REQUIRE(ftruncate(fd, 4096) == 0);
    out("SEAL_FUTURE_WRITE: %s\n", addseal(fd, F_SEAL_FUTURE_WRITE));
    out("write: %s\n", pwrite(fd, "ab", 2, 0) == 2 ? "ok" : err(errno));
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    out("shared writable mmap: %s\n", m == MAP_FAILED ? err(errno) : "ok");
    close(fd);

    int p[2];
    REQUIRE(pipe(p) == 0);
    out("F_GET_SEALS on a pipe: %d\n", seals(p[0]));
    close(p[0]);
    close(p[1]);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    out("long name: %s\n", memfd_create(longname, 0) >= 0 ? "ok" : err(errno));
    out("bad flags: %s\n", memfd_create("x", 0x1000) >= 0 ? "ok" : err(errno));
    out("bad name pointer: %s\n", memfd_create((char *)8, 0) >= 0 ? "ok" : err(errno));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: locks BASE [SECTION...]\n");
        return 2;
    }
    base = argv[1];
    static const struct section sections[] = {
        {"posix", posix},   {"close_release", close_release}, {"setlkw", setlkw}, {"deadlock", deadlock},
        {"ofd", ofd},       {"flock", flocks},                {"memfd", memfd},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc - 1, argv + 1);
}
