/* oci_checker: the OCI conformance suite's in-container checker (tests/tests/oci_conformance.rs).
 *
 * Run as a container's process. Reads its expectations from /oci_expect (or argv[1] when it
 * starts with "--expect="): one check per line, fields separated by TABs:
 *
 *   NAME <TAB> KIND <TAB> ARG...
 *
 * and prints "NAME: ok" or "NAME: FAIL detail" for each, then "oci_checker: done N failed"
 * and exits with the number of failed checks (at most 100).  The kinds are the facts the
 * runtime spec (config.md, config-linux.md) makes about the container's process.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXF 32

static int g_argc;
static char **g_argv;
static int failed;
static char detail[1024];

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return 0;
}

/* Reads at most `cap - 1` bytes of `path`; -1 and errno on error. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return (ssize_t)n;
}

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
}

/* The value of "Key:\t..." in /proc/self/status. */
static int status_field(const char *key, char *out, size_t cap) {
    static char buf[16384];
    if (read_file("/proc/self/status", buf, sizeof buf) < 0)
        return -1;
    size_t kl = strlen(key);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            char *v = line + kl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, cap, "%s", v);
            return 0;
        }
    }
    return -1;
}

/* Whether a new file can be created in directory `dir` (removed again); errno otherwise. */
static int try_create(const char *dir) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.oci_checker_probe", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(p);
    return 0;
}

/* Opens `path` for writing (a file) or creates a file in it (a directory): -1 + errno. */
static int try_write(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return try_create(path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Finds the last mountinfo line whose mount point is `dest`: fstype and all options
 * (per-mount and super block, comma-joined). */
static int find_mount(const char *dest, char *fstype, size_t tcap, char *opts, size_t ocap) {
    static char buf[65536];
    if (read_file("/proc/self/mountinfo", buf, sizeof buf) < 0)
        return -1;
    int found = -1;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* id parent maj:min root mountpoint mountopts [optional...] - fstype source superopts */
        char *f[MAXF];
        int n = 0;
        char *s2 = NULL;
        for (char *w = strtok_r(line, " ", &s2); w && n < MAXF; w = strtok_r(NULL, " ", &s2))
            f[n++] = w;
        if (n < 7 || strcmp(f[4], dest) != 0)
            continue;
        int dash = -1;
        for (int i = 6; i < n; i++)
            if (strcmp(f[i], "-") == 0) {
                dash = i;
                break;
            }
        if (dash < 0 || dash + 3 > n)
            continue;
        snprintf(fstype, tcap, "%s", f[dash + 1]);
        snprintf(opts, ocap, "%s,%s", f[5], dash + 3 < n ? f[dash + 3] : "");
        found = 0;
    }
    return found;
}

static int has_opt(const char *opts, const char *want) {
    size_t wl = strlen(want);
    for (const char *p = opts; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == wl && strncmp(p, want, wl) == 0)
            return 1;
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}

static unsigned long long cap_bits(const char *list) {
    /* A comma-separated list of capability numbers. */
    unsigned long long v = 0;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", list);
    for (char *w = strtok(tmp, ","); w; w = strtok(NULL, ","))
        if (*w)
            v |= 1ULL << (atoi(w) & 63);
    return v;
}

static int check(int n, char **f) {
    const char *kind = f[0];
    char buf[4096];
    struct stat st;
#define NEED(k)                                                                                    \
    if (n < (k) + 1)                                                                               \
    return fail("kind %s needs %d arguments", kind, k)

    if (!strcmp(kind, "args")) {
        if (g_argc != n - 1)
            return fail("argc %d, want %d", g_argc, n - 1);
        for (int i = 0; i < g_argc; i++)
            if (strcmp(g_argv[i], f[i + 1]))
                return fail("argv[%d] %s, want %s", i, g_argv[i], f[i + 1]);
        return 1;
    }
    if (!strcmp(kind, "env")) { /* env KEY VALUE */
        NEED(2);
        const char *v = getenv(f[1]);
        if (!v)
            return fail("%s unset", f[1]);
        if (strcmp(v, f[2]))
            return fail("%s=%s, want %s", f[1], v, f[2]);
        return 1;
    }
    if (!strcmp(kind, "cwd")) {
        NEED(1);
        if (!getcwd(buf, sizeof buf))
            return fail("getcwd: %s", strerror(errno));
        if (strcmp(buf, f[1]))
            return fail("cwd %s, want %s", buf, f[1]);
        return 1;
    }
    if (!strcmp(kind, "ids")) { /* ids UID GID */
        NEED(2);
        uid_t r, e, s;
        gid_t gr, ge, gs;
        getresuid(&r, &e, &s);
        getresgid(&gr, &ge, &gs);
        unsigned u = strtoul(f[1], NULL, 10), g = strtoul(f[2], NULL, 10);
        if (r != u || e != u || s != u)
            return fail("uids %u %u %u, want %u", r, e, s, u);
        if (gr != g || ge != g || gs != g)
            return fail("gids %u %u %u, want %u", gr, ge, gs, g);
        return 1;
    }
    if (!strcmp(kind, "groups")) { /* groups G1,G2 (any order; "" for none) */
        gid_t gs[256];
        int k = getgroups(256, gs);
        if (k < 0)
            return fail("getgroups: %s", strerror(errno));
        char want[512];
        snprintf(want, sizeof want, "%s", n > 1 ? f[1] : "");
        int wn = 0;
        for (char *w = strtok(want, ","); w; w = strtok(NULL, ",")) {
            gid_t g = strtoul(w, NULL, 10);
            int hit = 0;
            for (int i = 0; i < k; i++)
                hit |= gs[i] == g;
            if (!hit)
                return fail("group %u missing (%d groups)", g, k);
            wn++;
        }
        if (k != wn)
            return fail("%d groups, want %d", k, wn);
        return 1;
    }
    if (!strcmp(kind, "umask")) {
        NEED(1);
        mode_t m = umask(0);
        umask(m);
        if (m != (mode_t)strtoul(f[1], NULL, 8))
            return fail("umask %04o, want %s", m, f[1]);
        return 1;
    }
    if (!strcmp(kind, "rlimit")) { /* rlimit RESOURCE SOFT HARD */
        NEED(3);
        struct rlimit rl;
        if (getrlimit(atoi(f[1]), &rl))
            return fail("getrlimit: %s", strerror(errno));
        unsigned long long s = strtoull(f[2], NULL, 10), h = strtoull(f[3], NULL, 10);
        if (rl.rlim_cur != s || rl.rlim_max != h)
            return fail("%llu/%llu, want %llu/%llu", (unsigned long long)rl.rlim_cur,
                        (unsigned long long)rl.rlim_max, s, h);
        return 1;
    }
    if (!strcmp(kind, "hostname")) {
        NEED(1);
        struct utsname u;
        uname(&u);
        if (strcmp(u.nodename, f[1]))
            return fail("nodename %s, want %s", u.nodename, f[1]);
        return 1;
    }
    if (!strcmp(kind, "pid")) {
        NEED(1);
        if (getpid() != atoi(f[1]))
            return fail("pid %d, want %s", getpid(), f[1]);
        return 1;
    }
    if (!strcmp(kind, "erofs")) { /* writing PATH fails with EROFS */
        NEED(1);
        if (try_write(f[1]) == 0)
            return fail("write to %s succeeded", f[1]);
        if (errno != EROFS)
            return fail("write to %s: %s, want EROFS", f[1], strerror(errno));
        return 1;
    }
    if (!strcmp(kind, "writable")) { /* a file can be created in directory PATH */
        NEED(1);
        if (try_create(f[1]))
            return fail("create in %s: %s", f[1], strerror(errno));
        return 1;
    }
    if (!strcmp(kind, "write")) { /* write PATH CONTENT */
        NEED(2);
        int fd = open(f[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail("open %s: %s", f[1], strerror(errno));
        ssize_t w = write(fd, f[2], strlen(f[2]));
        close(fd);
        if (w != (ssize_t)strlen(f[2]))
            return fail("write %s: %s", f[1], strerror(errno));
        return 1;
    }
    if (!strcmp(kind, "content")) { /* content PATH TEXT (trailing newline ignored) */
        NEED(2);
        if (read_file(f[1], buf, sizeof buf) < 0)
            return fail("read %s: %s", f[1], strerror(errno));
        chomp(buf);
        if (strcmp(buf, f[2]))
            return fail("%s holds \"%s\", want \"%s\"", f[1], buf, f[2]);
        return 1;
    }
    if (!strcmp(kind, "exists")) {
        NEED(1);
        if (lstat(f[1], &st))
            return fail("%s: %s", f[1], strerror(errno));
        return 1;
    }
    if (!strcmp(kind, "isdir")) {
        NEED(1);
        if (stat(f[1], &st))
            return fail("%s: %s", f[1], strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return fail("%s is not a directory", f[1]);
        return 1;
    }
    if (!strcmp(kind, "mode")) { /* mode PATH OCTAL (permission bits incl. sticky) */
        NEED(2);
        if (stat(f[1], &st))
            return fail("%s: %s", f[1], strerror(errno));
        if ((st.st_mode & 07777) != strtoul(f[2], NULL, 8))
            return fail("%s mode %04o, want %s", f[1], st.st_mode & 07777, f[2]);
        return 1;
    }
    if (!strcmp(kind, "mount")) { /* mount DEST FSTYPE OPT,OPT (each must be present) */
        NEED(2);
        char t[64], o[2048];
        if (find_mount(f[1], t, sizeof t, o, sizeof o))
            return fail("%s not in /proc/self/mountinfo", f[1]);
        if (strcmp(t, f[2]))
            return fail("%s fstype %s, want %s", f[1], t, f[2]);
        if (n > 3) {
            char want[512];
            snprintf(want, sizeof want, "%s", f[3]);
            for (char *w = strtok(want, ","); w; w = strtok(NULL, ","))
                if (!has_opt(o, w))
                    return fail("%s lacks option %s (has %s)", f[1], w, o);
        }
        return 1;
    }
    if (!strcmp(kind, "fssize")) { /* fssize PATH BYTES: statfs total size */
        NEED(2);
        struct statfs sf;
        if (statfs(f[1], &sf))
            return fail("statfs %s: %s", f[1], strerror(errno));
        unsigned long long total = (unsigned long long)sf.f_blocks * sf.f_bsize;
        if (total != strtoull(f[2], NULL, 10))
            return fail("%s size %llu, want %s", f[1], total, f[2]);
        return 1;
    }
    if (!strcmp(kind, "masked") || !strcmp(kind, "hidden")) {
        /* masked: an empty file / empty dir, not writable; hidden: that, or absent. */
        NEED(1);
        if (stat(f[1], &st)) {
            if (errno == ENOENT && !strcmp(kind, "hidden"))
                return 1;
            return fail("%s: %s", f[1], strerror(errno));
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(f[1]);
            if (!d)
                return fail("opendir %s: %s", f[1], strerror(errno));
            struct dirent *e;
            int entries = 0;
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    entries++;
            closedir(d);
            if (entries)
                return fail("%s has %d entries", f[1], entries);
            if (try_create(f[1]) == 0)
                return fail("created a file in masked %s", f[1]);
        } else {
            ssize_t r = read_file(f[1], buf, sizeof buf);
            if (r < 0)
                return fail("read %s: %s", f[1], strerror(errno));
            if (r > 0)
                return fail("%s reads %zd bytes", f[1], r);
            int fd = open(f[1], O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t w = write(fd, "x", 1);
                close(fd);
                if (w == 1 && read_file(f[1], buf, sizeof buf) > 0)
                    return fail("wrote through masked %s", f[1]);
            }
        }
        return 1;
    }
    if (!strcmp(kind, "chardev")) { /* chardev PATH MAJOR MINOR (follows symlinks) */
        NEED(3);
        if (stat(f[1], &st))
            return fail("%s: %s", f[1], strerror(errno));
        if (!S_ISCHR(st.st_mode))
            return fail("%s is not a character device (mode %o)", f[1], st.st_mode);
        if (major(st.st_rdev) != (unsigned)atoi(f[2]) || minor(st.st_rdev) != (unsigned)atoi(f[3]))
            return fail("%s is %u:%u, want %s:%s", f[1], major(st.st_rdev), minor(st.st_rdev), f[2], f[3]);
        return 1;
    }
    if (!strcmp(kind, "devsemantics")) { /* null, zero, full, urandom behave */
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0 || write(fd, "abc", 3) != 3 || read(fd, buf, 8) != 0)
            return fail("/dev/null misbehaves: %s", strerror(errno));
        close(fd);
        fd = open("/dev/zero", O_RDONLY);
        memset(buf, 7, 16);
        if (fd < 0 || read(fd, buf, 16) != 16)
            return fail("/dev/zero read: %s", strerror(errno));
        for (int i = 0; i < 16; i++)
            if (buf[i])
                return fail("/dev/zero gave a non-zero byte");
        close(fd);
        fd = open("/dev/full", O_WRONLY);
        if (fd < 0)
            return fail("/dev/full: %s", strerror(errno));
        errno = 0;
        if (write(fd, "x", 1) != -1 || errno != ENOSPC)
            return fail("/dev/full write: %s, want ENOSPC", strerror(errno));
        close(fd);
        fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0 || read(fd, buf, 16) != 16)
            return fail("/dev/urandom read: %s", strerror(errno));
        close(fd);
        fd = open("/dev/ptmx", O_RDWR | O_NOCTTY);
        if (fd < 0)
            return fail("/dev/ptmx: %s", strerror(errno));
        if (grantpt(fd) || unlockpt(fd) || !ptsname(fd))
            return fail("/dev/ptmx gave no pty: %s", strerror(errno));
        close(fd);
        return 1;
    }
    if (!strcmp(kind, "symlink")) { /* symlink PATH TARGET */
        NEED(2);
        ssize_t r = readlink(f[1], buf, sizeof buf - 1);
        if (r < 0)
            return fail("readlink %s: %s", f[1], strerror(errno));
        buf[r] = 0;
        if (strcmp(buf, f[2]))
            return fail("%s -> %s, want %s", f[1], buf, f[2]);
        return 1;
    }
    if (!strcmp(kind, "stdfds")) { /* /proc/self/fd lists 0, 1, 2 */
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            return fail("/proc/self/fd: %s", strerror(errno));
        int seen = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] >= '0' && e->d_name[0] <= '2' && e->d_name[1] == 0)
                seen |= 1 << (e->d_name[0] - '0');
        closedir(d);
        if (seen != 7)
            return fail("fds 0-2 seen mask %d", seen);
        return 1;
    }
    if (!strcmp(kind, "caps")) { /* caps FIELD N,N,... : /proc/self/status CapXxx */
        NEED(1);
        char v[128];
        if (status_field(f[1], v, sizeof v))
            return fail("no %s in /proc/self/status", f[1]);
        unsigned long long have = strtoull(v, NULL, 16), want = cap_bits(n > 2 ? f[2] : "");
        if (have != want)
            return fail("%s %016llx, want %016llx", f[1], have, want);
        return 1;
    }
    if (!strcmp(kind, "chown")) { /* chown PATH ok|EPERM: chown a new file to 1234 */
        NEED(2);
        int fd = open(f[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail("create %s: %s", f[1], strerror(errno));
        close(fd);
        int r = chown(f[1], 1234, 1234);
        int e = errno;
        unlink(f[1]);
        if (!strcmp(f[2], "ok") && r)
            return fail("chown: %s", strerror(e));
        if (!strcmp(f[2], "EPERM") && (r == 0 || e != EPERM))
            return fail("chown: %s, want EPERM", r ? strerror(e) : "success");
        return 1;
    }
    if (!strcmp(kind, "noexec")) { /* noexec DIR: a copy of this program there cannot run */
        NEED(1);
        char dst[PATH_MAX];
        snprintf(dst, sizeof dst, "%s/oci_checker_copy", f[1]);
        int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (in < 0 || out < 0)
            return fail("copying to %s: %s", dst, strerror(errno));
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)r) != r)
                return fail("writing %s: %s", dst, strerror(errno));
        close(in);
        close(out);
        pid_t pid = fork();
        if (pid == 0) {
            char *av[] = {dst, NULL};
            execv(dst, av);
            _exit(errno == EACCES ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        unlink(dst);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return fail("%s ran or failed other than EACCES (status %d)", dst, status);
        return 1;
    }
    if (!strcmp(kind, "nonewprivs")) { /* nonewprivs 0|1: prctl and the status line */
        NEED(1);
        int p = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
        if (p != atoi(f[1]))
            return fail("PR_GET_NO_NEW_PRIVS %d, want %s", p, f[1]);
        char v[32];
        if (status_field("NoNewPrivs", v, sizeof v))
            return fail("no NoNewPrivs in /proc/self/status");
        if (strcmp(v, f[1]))
            return fail("NoNewPrivs: %s, want %s", v, f[1]);
        return 1;
    }
    return fail("unknown check kind %s", kind);
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    const char *path = "/oci_expect";
    static char text[65536];
    if (read_file(path, text, sizeof text) < 0) {
        printf("oci_checker: cannot read %s: %s\n", path, strerror(errno));
        return 100;
    }
    int total = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!*line || *line == '#')
            continue;
        char *f[MAXF + 1];
        int n = 0;
        char *p = line;
        /* Split on TABs, keeping empty fields. */
        while (n < MAXF) {
            f[n++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = 0;
            p = t + 1;
        }
        if (n < 2) {
            printf("%s: FAIL malformed expectation\n", f[0]);
            failed++;
            continue;
        }
        detail[0] = 0;
        total++;
        if (check(n - 1, f + 1)) {
            printf("%s: ok\n", f[0]);
        } else {
            printf("%s: FAIL %s\n", f[0], detail);
            failed++;
        }
        fflush(stdout);
    }
    printf("oci_checker: done %d checks %d failed\n", total, failed);
    return failed > 100 ? 100 : failed;
}
