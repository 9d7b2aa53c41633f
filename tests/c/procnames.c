/*
 * Names /proc shows: what /proc/self/fd/N links read as for anonymous files (eventfd,
 * timerfd, signalfd, inotify, epoll), memfds, pipes, sockets and unlinked files, as
 * `ls -l /proc/self/fd` shows them; and the name a zombie keeps in /proc/PID/stat, status
 * and comm.
 *
 * usage: procnames [SECTION...]   (sections: fds zombie)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

/* What /proc/self/fd/FD reads as ("<errno>" on failure). */
static const char *link_of(int fd) {
    static char buf[512];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return err(errno);
    buf[n] = 0;
    return buf;
}

static void show(const char *what, int fd) {
    REQUIRE(fd >= 0);
    out("%s: %s\n", what, link_of(fd));
    close(fd);
}

/* The link with its inode number replaced by N: "pipe:[N]". */
static void show_masked(const char *what, int fd) {
    REQUIRE(fd >= 0);
    char s[512];
    snprintf(s, sizeof s, "%s", link_of(fd));
    char *lb = strchr(s, '[');
    if (lb && strchr(lb, ']'))
        strcpy(lb, "[N]");
    out("%s: %s\n", what, s);
}

static void section_fds(void) {
    show("eventfd", eventfd(0, 0));
    show("timerfd", timerfd_create(CLOCK_MONOTONIC, 0));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    show("signalfd", signalfd(-1, &set, 0));
    show("inotify", inotify_init1(0));
    show("epoll", epoll_create1(0));
    show("memfd", memfd_create("hello", 0));
    show("memfd with a long name", memfd_create("a-rather-longer-name.x", MFD_CLOEXEC));
    int p[2];
    REQUIRE(pipe(p) == 0);
    show_masked("pipe read end", p[0]);
    show_masked("pipe write end", p[1]);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    show_masked("socket", sv[0]);
    show("/dev/null", open("/dev/null", O_RDONLY));
    /* An unlinked file: its path with " (deleted)". */
    char path[] = "/dev/shm/procnames-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    char want[600];
    snprintf(want, sizeof want, "%s", path);
    check("a named file reads as its path", strcmp(link_of(fd), want) == 0);
    REQUIRE(unlink(path) == 0);
    snprintf(want, sizeof want, "%s (deleted)", path);
    check("an unlinked one with \" (deleted)\"", strcmp(link_of(fd), want) == 0);
    close(fd);
}

/* The name between the parentheses of /proc/PID/stat and the state letter after them. */
static void stat_name(pid_t pid, char *name, size_t n, char *state) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    REQUIRE(len > 0);
    buf[len] = 0;
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    REQUIRE(l && r && r > l && r[1] == ' ');
    snprintf(name, n, "%.*s", (int)(r - l - 1), l + 1);
    *state = r[2];
}

/* The value of `key:` in /proc/PID/status. */
static const char *status_field(pid_t pid, const char *key) {
    static char val[256];
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    REQUIRE(len > 0);
    buf[len] = 0;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            char *v = line + kl + 1;
            while (*v == '\t' || *v == ' ')
                v++;
            size_t vl = strcspn(v, "\n");
            snprintf(val, sizeof val, "%.*s", (int)vl, v);
            return val;
        }
    }
    return "<missing>";
}

static void section_zombie(void) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_NAME, "zombie-kid");
        _exit(3);
    }
    /* Wait for the exit without reaping: the child stays a zombie. */
    siginfo_t si;
    REQUIRE(waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == 0);
    char name[64], state;
    stat_name(pid, name, sizeof name, &state);
    out("stat name: %s\n", name);
    out("stat state: %c\n", state);
    out("status Name: %s\n", status_field(pid, "Name"));
    out("status State: %s\n", status_field(pid, "State"));
    char path[64], comm[64] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    out("comm: %s", n > 0 ? comm : "<empty>\n");
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    check("exit status 3", WIFEXITED(status) && WEXITSTATUS(status) == 3);
}

int main(int argc, char **argv) {
    static const struct section sections[] = {{"fds", section_fds}, {"zombie", section_zombie}};
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
