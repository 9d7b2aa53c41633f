/*
 * inotify: the events of file operations in a directory (create, open, modify, access,
 * close, attrib, rename with a shared cookie, unlink, mkdir/rmdir), watches on a file
 * (IN_DELETE_SELF, IN_IGNORED), inotify_rm_watch, IN_ONESHOT, and argument errors; then
 * truncate, O_TRUNC, link/symlink/mknod, removing open files (IN_DELETE_SELF at the last
 * close), IN_EXCL_UNLINK and rename over a watched file.
 *
 * usage: inotify BASE  (BASE: an empty writable folder)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static int wd_dir, wd_file;

static const char *names(uint32_t m) {
    static char buf[256];
    static const struct { uint32_t bit; const char *name; } t[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"}, {IN_CLOSE_WRITE, "CLOSE_WRITE"},
        {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}};
    buf[0] = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (m & t[i].bit) {
            if (buf[0])
                strcat(buf, "|");
            strcat(buf, t[i].name);
        }
    return buf;
}

/* Prints every queued event; returns the cookie of the last MOVED_* one. */
static uint32_t drain(int fd) {
    char buf[4096] __attribute__((aligned(8)));
    uint32_t cookie = 0, from_cookie = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (errno != EAGAIN)
                out("read: %s\n", err(errno));
            break;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            const char *who = e->wd == wd_dir ? "dir" : e->wd == wd_file ? "file" : "other";
            out("  %s %s %s len %u", who, names(e->mask), e->len ? e->name : "-", e->len);
            if (e->mask & IN_MOVED_FROM)
                from_cookie = e->cookie;
            if (e->mask & IN_MOVED_TO)
                out(" cookie %s", e->cookie != 0 && e->cookie == from_cookie ? "matches" : "DIFFERS");
            out("\n");
            cookie = e->cookie;
            p += sizeof *e + e->len;
        }
    }
    return cookie;
}

/* Sizes, links and removals of open files, in BASE/watched2. */
static void more_events(const char *base) {
    char dir[PATH_MAX - 64], f1[PATH_MAX], f2[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/watched2", base);
    snprintf(f1, sizeof f1, "%s/f1", dir);
    snprintf(f2, sizeof f2, "%s/f2", dir);
    REQUIRE(mkdir(dir, 0755) == 0);
    REQUIRE(close(open(f1, O_CREAT | O_WRONLY, 0644)) == 0);
    int fd = inotify_init1(IN_NONBLOCK);
    REQUIRE(fd >= 0);
    wd_dir = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    wd_file = inotify_add_watch(fd, f1, IN_ALL_EVENTS);
    REQUIRE(wd_dir >= 0 && wd_file >= 0);

    out("truncate, ftruncate:\n");
    REQUIRE(truncate(f1, 10) == 0);
    int f = open(f1, O_WRONLY);
    REQUIRE(f >= 0 && ftruncate(f, 3) == 0);
    close(f);
    drain(fd);

    out("open with O_TRUNC:\n");
    REQUIRE(close(open(f1, O_WRONLY | O_TRUNC)) == 0);
    drain(fd);

    out("link, symlink, mknod:\n");
    REQUIRE(link(f1, f2) == 0);
    snprintf(path, sizeof path, "%s/sym", dir);
    REQUIRE(symlink("f1", path) == 0);
    REQUIRE(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/fifo", dir);
    REQUIRE(mknod(path, S_IFIFO | 0600, 0) == 0);
    REQUIRE(unlink(path) == 0);
    drain(fd);

    out("unlink of the first name, then of the last while open:\n");
    f = open(f2, O_RDWR);
    REQUIRE(f >= 0);
    REQUIRE(unlink(f1) == 0);
    REQUIRE(unlink(f2) == 0);
    drain(fd);
    out("writing to it:\n");
    REQUIRE(write(f, "x", 1) == 1);
    drain(fd);
    out("its last close:\n");
    close(f);
    drain(fd);

    out("IN_EXCL_UNLINK:\n");
    REQUIRE(inotify_add_watch(fd, dir, IN_ALL_EVENTS | IN_EXCL_UNLINK) == wd_dir);
    f = open(f1, O_CREAT | O_RDWR, 0644);
    REQUIRE(f >= 0);
    REQUIRE(unlink(f1) == 0);
    REQUIRE(write(f, "x", 1) == 1);
    close(f);
    drain(fd);
    REQUIRE(inotify_add_watch(fd, dir, IN_ALL_EVENTS) == wd_dir);

    out("rename over a watched file:\n");
    REQUIRE(close(open(f1, O_CREAT | O_WRONLY, 0644)) == 0);
    REQUIRE(close(open(f2, O_CREAT | O_WRONLY, 0644)) == 0);
    drain(fd);
    wd_file = inotify_add_watch(fd, f2, IN_ALL_EVENTS);
    REQUIRE(wd_file >= 0);
    REQUIRE(rename(f1, f2) == 0);
    drain(fd);

    out("rename over an open watched file:\n");
    REQUIRE(close(open(f1, O_CREAT | O_WRONLY, 0644)) == 0);
    wd_file = inotify_add_watch(fd, f2, IN_ALL_EVENTS);
    REQUIRE(wd_file >= 0);
    f = open(f2, O_RDONLY);
    REQUIRE(f >= 0);
    drain(fd);
    REQUIRE(rename(f1, f2) == 0);
    drain(fd);
    out("its last close:\n");
    close(f);
    drain(fd);
    unlink(f2);
    rmdir(dir);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    char dir[PATH_MAX - 64], a[PATH_MAX], b[PATH_MAX], sub[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/watched", argv[1]);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    REQUIRE(mkdir(dir, 0755) == 0);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(fd >= 0);
    check("cloexec", fcntl(fd, F_GETFD) == FD_CLOEXEC);
    wd_dir = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    REQUIRE(wd_dir >= 0);
    wd_file = -100;
    struct pollfd p = {fd, POLLIN, 0};
    out("poll with nothing queued: %d\n", poll(&p, 1, 0));

    out("create, write twice, close:\n");
    int f = open(a, O_CREAT | O_WRONLY, 0644);
    REQUIRE(f >= 0);
    REQUIRE(write(f, "hello", 5) == 5);
    REQUIRE(write(f, "hello", 5) == 5);
    close(f);
    int pr = poll(&p, 1, 0);
    out("poll: %d %#x\n", pr, p.revents);
    drain(fd);

    out("open, read, close:\n");
    f = open(a, O_RDONLY);
    char c[4];
    REQUIRE(read(f, c, 4) == 4);
    close(f);
    drain(fd);

    out("chmod:\n");
    REQUIRE(chmod(a, 0600) == 0);
    drain(fd);

    out("rename:\n");
    REQUIRE(rename(a, b) == 0);
    drain(fd);

    out("unlink of a watched file:\n");
    wd_file = inotify_add_watch(fd, b, IN_ALL_EVENTS);
    REQUIRE(wd_file >= 0);
    check("a second watch has another wd", wd_file != wd_dir);
    check("watching the same file again gives the same wd", inotify_add_watch(fd, b, IN_MODIFY | IN_MASK_ADD) == wd_file);
    REQUIRE(unlink(b) == 0);
    drain(fd);
    errno = 0;
    int r = inotify_rm_watch(fd, wd_file);
    out("rm_watch of the removed watch: %d %s\n", r, err(errno));

    out("mkdir, rmdir:\n");
    REQUIRE(mkdir(sub, 0755) == 0);
    REQUIRE(rmdir(sub) == 0);
    drain(fd);

    out("oneshot:\n");
    REQUIRE(inotify_add_watch(fd, dir, IN_CREATE | IN_ONESHOT) == wd_dir);
    REQUIRE(close(open(a, O_CREAT | O_WRONLY, 0644)) == 0);
    REQUIRE(close(open(b, O_CREAT | O_WRONLY, 0644)) == 0);
    drain(fd);
    errno = 0;
    r = inotify_rm_watch(fd, wd_dir);
    out("rm_watch after oneshot: %d %s\n", r, err(errno));

    out("rm_watch:\n");
    wd_dir = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    REQUIRE(wd_dir >= 0);
    REQUIRE(inotify_rm_watch(fd, wd_dir) == 0);
    drain(fd);

    out("errors:\n");
    errno = 0;
    r = inotify_add_watch(fd, dir, 0);
    out("empty mask: %d %s\n", r, err(errno));
    errno = 0;
    r = inotify_add_watch(fd, a, IN_MODIFY | IN_ONLYDIR);
    out("IN_ONLYDIR on a file: %d %s\n", r, err(errno));
    errno = 0;
    r = inotify_add_watch(fd, sub, IN_MODIFY);
    out("missing path: %d %s\n", r, err(errno));
    errno = 0;
    r = inotify_add_watch(fd, a, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE);
    out("MASK_ADD with MASK_CREATE: %d %s\n", r, err(errno));
    int w = inotify_add_watch(fd, a, IN_MODIFY);
    errno = 0;
    r = inotify_add_watch(fd, a, IN_MODIFY | IN_MASK_CREATE);
    out("MASK_CREATE on a watched file: %s %s\n", r == w ? "same wd" : r < 0 ? "-1" : "other", err(errno));
    errno = 0;
    r = inotify_rm_watch(fd, 12345);
    out("rm_watch of an unknown wd: %d %s\n", r, err(errno));
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    errno = 0;
    r = inotify_add_watch(pfd[0], dir, IN_MODIFY);
    out("add_watch on a pipe: %d %s\n", r, err(errno));
    REQUIRE(inotify_add_watch(fd, dir, IN_CREATE) >= 0);
    REQUIRE(close(open(sub, O_CREAT | O_WRONLY, 0644)) == 0);
    char small[8];
    errno = 0;
    ssize_t n = read(fd, small, sizeof small);
    out("read into a too small buffer: %ld %s\n", (long)n, err(errno));
    unlink(sub);
    unlink(a);
    unlink(b);
    rmdir(dir);
    close(fd);
    more_events(argv[1]);
    return failures;
}
