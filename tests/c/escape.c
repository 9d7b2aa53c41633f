/*
 * Tries to reach files outside the sandbox's root. Run inside `rvisor do --rootfs ROOT` by
 * tests/tests/fs_workloads.rs, which lays out:
 *   OUTSIDE/secret        "SECRET"   (outside the root: must never be read)
 *   ROOT = OUTSIDE/root
 *   ROOT/secret           "INSIDE"   (what every `..` trick must land on instead)
 *   ROOT/abs   -> OUTSIDE/secret     (absolute host path: inside the root it names nothing)
 *   ROOT/shadow -> /etc/shadow       (the host's; the root has no /etc/shadow)
 *   ROOT/rel   -> ../secret          (`..` of the root is the root)
 *   ROOT/swap  (swapped by the test between a directory holding "secret" = "INSIDE" and a
 *              symlink to OUTSIDE while this program opens /swap/secret in a loop)
 *
 * usage: escape static | escape race N
 * Prints "case: CONTENT" (the first line read) or "case: ERRNO-NAME" per attempt.
 */
#include "rvtest.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* The first line of `path` (opened relative to `dirfd`), or the errno's name. */
static const char *first_line_at(int dirfd, const char *path) {
    static char buf[256];
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err(errno);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return err(e);
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    return buf;
}

static const char *first_line(const char *path) {
    return first_line_at(AT_FDCWD, path);
}

/* The sorted names in a directory, joined with spaces. */
static const char *listing(const char *path) {
    static char out_buf[4096];
    char *names[256];
    int n = 0;
    DIR *d = opendir(path);
    if (!d)
        return err(errno);
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        names[n++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    out_buf[0] = 0;
    for (int i = 0; i < n; i++) {
        strncat(out_buf, names[i], sizeof out_buf - strlen(out_buf) - 2);
        strcat(out_buf, " ");
        free(names[i]);
    }
    return out_buf;
}

static void statics(void) {
    out("dotdot: %s\n", first_line("/../../../../secret"));
    out("dotdot-relative: %s\n", first_line("../../../../../secret"));
    REQUIRE(chdir("/") == 0);
    for (int i = 0; i < 8; i++)
        REQUIRE(chdir("..") == 0);
    out("chdir-up: %s\n", first_line("secret"));
    out("abs-symlink: %s\n", first_line("/abs"));
    out("shadow-symlink: %s\n", first_line("/shadow"));
    out("rel-symlink: %s\n", first_line("/rel"));
    out("proc-self-root: %s\n", first_line("/proc/self/root/../../secret"));
    out("proc-1-root: %s\n", first_line("/proc/1/root/../secret"));
    const char *root_list = listing("/");
    char saved[4096];
    snprintf(saved, sizeof saved, "%s", root_list);
    check("proc-self-root-listing-is-root", strcmp(listing("/proc/self/root/../.."), saved) == 0);
    check("proc-1-root-listing-is-root", strcmp(listing("/proc/1/root/.."), saved) == 0);

    /* Through a directory fd of the root. */
    int rootfd = open("/", O_RDONLY | O_DIRECTORY);
    REQUIRE(rootfd >= 0);
    out("openat-dotdot: %s\n", first_line_at(rootfd, "../../secret"));

    /* openat2 RESOLVE_IN_ROOT / BENEATH on the real root. */
    struct {
        uint64_t flags, mode, resolve;
    } how = {O_RDONLY, 0, 0x08 /* RESOLVE_BENEATH */};
    long fd = syscall(SYS_openat2, rootfd, "../secret", &how, sizeof how);
    out("openat2-beneath-dotdot: %s\n", fd >= 0 ? "opened" : err(errno));
    if (fd >= 0)
        close((int)fd);

    /* Hard links and renames that name outside files. */
    out("link-abs: %s\n", link("/abs", "/tmp/hl") == 0 ? "linked" : err(errno));
    int r = linkat(AT_FDCWD, "/abs", AT_FDCWD, "/tmp/hl2", AT_SYMLINK_FOLLOW);
    out("linkat-follow-abs: %s\n", r == 0 ? "linked" : err(errno));
    r = linkat(AT_FDCWD, "/proc/self/root/../../secret", AT_FDCWD, "/tmp/hl3", 0);
    out("link-proc-root-dotdot: %s\n", r == 0 ? first_line("/tmp/hl3") : err(errno));
    close(rootfd);
}

static void race(int n) {
    int inside = 0, missing = 0, other = 0;
    for (int i = 0; i < n; i++) {
        const char *s = first_line("/swap/secret");
        if (strcmp(s, "INSIDE") == 0)
            inside++;
        else if (strcmp(s, "ENOENT") == 0 || strcmp(s, "ENOTDIR") == 0)
            missing++;
        else {
            other++;
            out("race-read: %s\n", s);
        }
    }
    check("race-only-inside-or-missing", other == 0);
    /* How often each happened depends on the dentry cache and timing; only reads of
     * anything but the inside file matter. */
    (void)inside;
    (void)missing;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "static") == 0)
        statics();
    else if (argc >= 3 && strcmp(argv[1], "race") == 0)
        race(atoi(argv[2]));
    else {
        out("usage: escape static | escape race N\n");
        return 2;
    }
    return failures;
}
