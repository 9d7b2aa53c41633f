/*
 * Per-mount and per-filesystem limits: read-only mounts (remount ro, read-only bind
 * mounts, tmpfs mounted ro) refuse every change with EROFS at Linux's points; nodev
 * mounts refuse to open device nodes; tmpfs size= limits give ENOSPC and show in statfs;
 * O_TMPFILE makes unnamed files that linkat can name.
 *
 * usage: mounts BASE [SECTION...]   (sections: ro nodev size tmpfile). Runs as root; each
 *        section mounts what it needs below a fresh folder BASE/SECTION and unmounts it
 *        again. Natively run it in a private mount namespace (unshare -m).
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>

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

static void enter(const char *section) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", base, section);
    REQUIRE(mkdir(path, 0755) == 0);
    REQUIRE(chdir(path) == 0);
    umask(022);
}

static void put(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    REQUIRE(close(fd) == 0);
}

static const char *get(const char *path) {
    static char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(buf, sizeof buf, "<%s>", err(errno));
        return buf;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

/* open(2) and close: the errno name or "ok". */
static const char *try_open(const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd < 0)
        return err(errno);
    close(fd);
    return "ok";
}

/* Every change below `dir` (holding file f, dir d, symlink s) gives `want`. */
static void all_changes(const char *dir, const char *want) {
    char f[512], d[512], n[512], s[512];
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(d, sizeof d, "%s/d", dir);
    snprintf(n, sizeof n, "%s/new", dir);
    snprintf(s, sizeof s, "%s/s", dir);
    expect("open O_WRONLY", try_open(f, O_WRONLY), want);
    expect("open O_RDWR", try_open(f, O_RDWR), want);
    expect("open O_RDONLY|O_TRUNC", try_open(f, O_RDONLY | O_TRUNC), want);
    expect("open O_CREAT new", try_open(n, O_CREAT | O_WRONLY), want);
    remove(n);
    expect("open O_CREAT|O_EXCL existing", try_open(f, O_CREAT | O_EXCL | O_RDONLY), "EEXIST");
    expect("open O_RDONLY", try_open(f, O_RDONLY), "ok");
    expect("open O_CREAT existing read-only", try_open(f, O_CREAT | O_RDONLY), "ok");
    expect("mkdir", E(mkdir(n, 0755)), want);
    remove(n);
    expect("mkdir existing", E(mkdir(d, 0755)), "EEXIST");
    expect("mknod fifo", E(mknod(n, S_IFIFO | 0644, 0)), want);
    remove(n);
    expect("symlink", E(symlink("f", n)), want);
    remove(n);
    expect("link", E(link(f, n)), want);
    remove(n);
    expect("unlink", E(unlink(f)), want);
    expect("unlink missing", E(unlink(n)), strcmp(want, "ok") == 0 ? "ENOENT" : want);
    if (strcmp(want, "ok") == 0)
        put(f, "hello");
    expect("rmdir", E(rmdir(d)), want);
    if (strcmp(want, "ok") == 0)
        REQUIRE(mkdir(d, 0755) == 0);
    expect("rename", E(rename(f, n)), want);
    if (strcmp(want, "ok") == 0)
        REQUIRE(rename(n, f) == 0);
    expect("chmod", E(chmod(f, 0600)), want);
    expect("chown", E(chown(f, 0, 0)), want);
    expect("lchown symlink", E(lchown(s, 0, 0)), want);
    expect("utimes", E(utimes(f, NULL)), want);
    expect("truncate", E(truncate(f, 5)), want);
    expect("setxattr", E(setxattr(f, "user.x", "1", 1, 0)), want);
    expect("removexattr", E(removexattr(f, "user.x")), strcmp(want, "ok") == 0 ? "ok" : want);
    expect("access W_OK", E(access(f, W_OK)), want);
    expect("access R_OK", E(access(f, R_OK)), "ok");
    expect("contents kept", get(f), "hello");
}

static void populate(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/f", dir);
    put(p, "hello");
    snprintf(p, sizeof p, "%s/d", dir);
    REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/s", dir);
    REQUIRE(symlink("f", p) == 0);
}

static void section_ro(void) {
    enter("ro");
    REQUIRE(mkdir("m", 0755) == 0);
    REQUIRE(mount("none", "m", "tmpfs", 0, "size=1m") == 0);
    populate("m");
    out("-- rw tmpfs\n");
    all_changes("m", "ok");

    out("-- remount ro\n");
    REQUIRE(mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
    all_changes("m", "EROFS");
    int fd = open("m/f", O_RDONLY);
    REQUIRE(fd >= 0);
    expect("fchmod", E(fchmod(fd, 0600)), "EROFS");
    expect("fchown", E(fchown(fd, 0, 0)), "EROFS");
    expect("futimens", E(futimens(fd, NULL)), "EROFS");
    expect("fsetxattr", E(fsetxattr(fd, "user.y", "1", 1, 0)), "EROFS");
    expect("ftruncate on O_RDONLY fd", E(ftruncate(fd, 0)), "EINVAL");
    close(fd);
    struct statfs sf;
    REQUIRE(statfs("m", &sf) == 0);
    check("statfs f_flags has ST_RDONLY", (sf.f_flags & ST_RDONLY) != 0);

    out("-- remount rw\n");
    REQUIRE(mount(NULL, "m", NULL, MS_REMOUNT, NULL) == 0);
    all_changes("m", "ok");

    out("-- read-only bind mount\n");
    REQUIRE(mkdir("b", 0755) == 0);
    REQUIRE(mount("m", "b", NULL, MS_BIND, NULL) == 0);
    REQUIRE(mount(NULL, "b", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0);
    all_changes("b", "EROFS");
    expect("original mount still writable", try_open("m/f", O_WRONLY), "ok");
    expect("link across mounts", E(link("m/f", "b/l")), "EROFS");
    expect("rename across mounts", E(rename("b/f", "m/g")), "EXDEV");
    REQUIRE(mount(NULL, "b", NULL, MS_REMOUNT | MS_BIND, NULL) == 0);
    expect("bind remounted rw", try_open("b/f", O_WRONLY), "ok");
    expect("link across writable mounts", E(link("m/f", "b/l")), "EXDEV");
    REQUIRE(umount("b") == 0);
    REQUIRE(umount("m") == 0);

    out("-- tmpfs mounted ro\n");
    REQUIRE(mount("none", "m", "tmpfs", MS_RDONLY, NULL) == 0);
    expect("mkdir", E(mkdir("m/x", 0755)), "EROFS");
    expect("open O_CREAT", try_open("m/x", O_CREAT | O_WRONLY), "EROFS");
    expect("open dir O_RDONLY", try_open("m", O_RDONLY | O_DIRECTORY), "ok");
    REQUIRE(umount("m") == 0);
}

static void section_nodev(void) {
    enter("nodev");
    REQUIRE(mkdir("d", 0755) == 0);
    REQUIRE(mount("/dev", "d", NULL, MS_BIND, NULL) == 0);
    expect("open null on dev bind", try_open("d/null", O_RDWR), "ok");
    REQUIRE(mount(NULL, "d", NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL) == 0);
    expect("open null on nodev bind", try_open("d/null", O_RDWR), "EACCES");
    expect("open zero O_RDONLY on nodev bind", try_open("d/zero", O_RDONLY), "EACCES");
    struct stat st;
    expect("stat null on nodev bind", E(stat("d/null", &st)), "ok");
    expect("open /dev/null itself", try_open("/dev/null", O_RDWR), "ok");
    REQUIRE(umount("d") == 0);
}

static void show_statfs(const char *what, const char *path) {
    struct statfs sf;
    REQUIRE(statfs(path, &sf) == 0);
    out("%s: bsize %ld blocks %ld bfree %ld bavail %ld files %ld ffree %ld\n", what, (long)sf.f_bsize, (long)sf.f_blocks,
        (long)sf.f_bfree, (long)sf.f_bavail, (long)sf.f_files, (long)sf.f_ffree);
}

static void section_size(void) {
    enter("size");
    REQUIRE(mkdir("m", 0755) == 0);
    REQUIRE(mount("none", "m", "tmpfs", 0, "size=64k,nr_inodes=4") == 0);
    show_statfs("empty", "m");
    int fd = open("m/f", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    static char buf[100 << 10];
    memset(buf, 'x', sizeof buf);
    out("write 100k: %zd\n", write(fd, buf, sizeof buf));
    expect("write past the limit", E(write(fd, buf, 1)), "ENOSPC");
    show_statfs("full", "m");
    expect("overwrite", E(pwrite(fd, buf, 4096, 0)), "ok");
    expect("ftruncate up (sparse)", E(ftruncate(fd, 10 << 20)), "ok");
    expect("write into the hole", E(pwrite(fd, buf, 1, 5 << 20)), "ENOSPC");
    expect("fallocate past the limit", E(fallocate(fd, 0, 1 << 20, 4096)), "ENOSPC");
    expect("ftruncate down", E(ftruncate(fd, 16 << 10)), "ok");
    show_statfs("after truncate", "m");
    expect("fallocate within", E(fallocate(fd, 0, 16 << 10, 32 << 10)), "ok");
    expect("fallocate beyond", E(fallocate(fd, 0, 48 << 10, 32 << 10)), "ENOSPC");
    show_statfs("after fallocate", "m");
    expect("remount smaller than in use", E(mount(NULL, "m", NULL, MS_REMOUNT, "size=8k")), "EINVAL");
    expect("remount larger", E(mount(NULL, "m", NULL, MS_REMOUNT, "size=128k")), "ok");
    show_statfs("remounted", "m");
    close(fd);
    REQUIRE(unlink("m/f") == 0);
    show_statfs("after unlink", "m");
    int made = 0;
    for (int i = 0; i < 10; i++) {
        char p[64];
        snprintf(p, sizeof p, "m/n%d", i);
        if (mknod(p, S_IFREG | 0644, 0) != 0) {
            out("file %d: %s\n", i, err(errno));
            break;
        }
        made++;
    }
    out("files made with nr_inodes=4: %d\n", made);
    REQUIRE(umount("m") == 0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: mounts BASE [SECTION...]\n");
        return 2;
    }
    base = argv[1];
    static const struct section sections[] = {
        {"ro", section_ro},
        {"nodev", section_nodev},
        {"size", section_size},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc - 1, argv + 1);
}
