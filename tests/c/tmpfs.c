/*
 * Files in a writable directory (in rvisor: its tmpfs /tmp and /dev/shm): creating,
 * linking, renaming and removing names with Linux's errnos, sizes, modes, owners and
 * times, the sticky bit for an unprivileged user, shared mappings of files, POSIX shared
 * memory (shm_open) and named semaphores (sem_open) across fork.
 *
 * usage: tmpfs BASE [SECTION...]   (sections: create dirs rename links attrs sticky mmap
 *        shm sem tmpfile). Each section works in a fresh folder BASE/SECTION; BASE must be a
 *        writable directory, the program runs as root (the sticky section drops to uid
 *        1000 in a child).
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

static const char *base;

/* errno name of a call's failure, "ok" if it succeeded. */
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

/* The file's contents ("<errno>" if it cannot be read). */
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

static struct stat st_of(const char *path) {
    struct stat st;
    memset(&st, 0, sizeof st);
    if (lstat(path, &st) != 0)
        st.st_nlink = 999;
    return st;
}

static int wait_code(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

/* Sorted names in `dir` other than . and .., space-separated. */
static const char *listing(const char *dir) {
    static char buf[4096];
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    buf[0] = 0;
    if (n < 0)
        return err(errno);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            strncat(buf, names[i]->d_name, sizeof buf - strlen(buf) - 2);
            strcat(buf, " ");
        }
        free(names[i]);
    }
    free(names);
    return buf;
}

static void section_create(void) {
    enter("create");
    int fd = open("f", O_CREAT | O_EXCL | O_WRONLY, 0666);
    check("O_CREAT|O_EXCL creates", fd >= 0);
    check("umask applied (0644)", (st_of("f").st_mode & 07777) == 0644);
    check("a new file is empty", st_of("f").st_size == 0);
    REQUIRE(write(fd, "hello", 5) == 5);
    close(fd);
    expect("O_EXCL on an existing file", E(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644)), "EEXIST");
    expect("contents", get("f"), "hello");
    fd = open("f", O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "!", 1) == 1);
    struct stat st;
    fstat(fd, &st);
    check("O_APPEND writes at the end", st.st_size == 6 && strcmp(get("f"), "hello!") == 0);
    close(fd);
    fd = open("f", O_WRONLY | O_TRUNC);
    check("O_TRUNC empties", fd >= 0 && st_of("f").st_size == 0);
    close(fd);
    fd = creat("c", 0600);
    check("creat", fd >= 0 && (st_of("c").st_mode & 07777) == 0600);
    check("creat opens write-only", write(fd, "x", 1) == 1 && read(fd, &st, 1) < 0 && errno == EBADF);
    close(fd);
    fd = open("ro", O_CREAT | O_RDWR, 0444);
    check("the creator may write a file it makes read-only", fd >= 0 && write(fd, "y", 1) == 1);
    close(fd);
    expect("O_CREAT with a trailing slash", E(open("new/", O_CREAT | O_WRONLY, 0644)), "EISDIR");
    expect("O_CREAT on .", E(open(".", O_CREAT | O_WRONLY, 0644)), "EISDIR");
    expect("O_CREAT|O_DIRECTORY", E(open("nd", O_CREAT | O_DIRECTORY | O_RDONLY, 0644)), "EINVAL");
    expect("O_CREAT in a missing folder", E(open("nodir/x", O_CREAT | O_WRONLY, 0644)), "ENOENT");
    expect("O_CREAT below a file", E(open("f/x", O_CREAT | O_WRONLY, 0644)), "ENOTDIR");
    REQUIRE(symlink("target", "dangling") == 0);
    expect("O_CREAT|O_EXCL on a symlink", E(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644)), "EEXIST");
    expect("O_CREAT|O_NOFOLLOW on a symlink", E(open("dangling", O_CREAT | O_NOFOLLOW | O_WRONLY, 0644)), "ELOOP");
    fd = open("dangling", O_CREAT | O_WRONLY, 0644);
    check("O_CREAT through a dangling symlink creates its target", fd >= 0 && st_of("target").st_nlink == 1);
    close(fd);
    char name[300];
    memset(name, 'n', sizeof name);
    name[256] = 0;
    expect("a 256-byte name", E(open(name, O_CREAT | O_WRONLY, 0644)), "ENAMETOOLONG");
    name[255] = 0;
    fd = open(name, O_CREAT | O_WRONLY, 0644);
    check("a 255-byte name", fd >= 0);
    close(fd);
    REQUIRE(unlink(name) == 0);
    expect("listing", listing("."), "c dangling f ro target ");
    /* Many files, then all removed while listing (as rm -r does). */
    REQUIRE(mkdir("many", 0755) == 0);
    for (int i = 0; i < 300; i++) {
        char p[64];
        snprintf(p, sizeof p, "many/file-%03d", i);
        put(p, "z");
    }
    DIR *d = opendir("many");
    REQUIRE(d);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[300];
        snprintf(p, sizeof p, "many/%s", e->d_name);
        if (e->d_name[0] != '.' && unlink(p) == 0)
            removed++;
    }
    closedir(d);
    out("removed while listing: %d\n", removed);
    expect("rmdir of the emptied folder", E(rmdir("many")), "ok");
}

static void section_dirs(void) {
    enter("dirs");
    expect("mkdir", E(mkdir("d", 0777)), "ok");
    check("mkdir applies the umask", (st_of("d").st_mode & 07777) == 0755 && S_ISDIR(st_of("d").st_mode));
    check("a new folder has 2 links", st_of("d").st_nlink == 2);
    expect("mkdir of an existing name", E(mkdir("d", 0755)), "EEXIST");
    expect("mkdir with a trailing slash", E(mkdir("e/", 0755)), "ok");
    expect("mkdir .", E(mkdir(".", 0755)), "EEXIST");
    expect("mkdir ..", E(mkdir("d/..", 0755)), "EEXIST");
    expect("mkdir in a missing folder", E(mkdir("x/y", 0755)), "ENOENT");
    put("f", "data");
    expect("mkdir below a file", E(mkdir("f/x", 0755)), "ENOTDIR");
    expect("mkdir over a file", E(mkdir("f", 0755)), "EEXIST");
    REQUIRE(mkdir("d/sub", 0755) == 0);
    check("a subfolder links its parent", st_of("d").st_nlink == 3);
    put("d/sub/g", "g");
    expect("rmdir of a non-empty folder", E(rmdir("d")), "ENOTEMPTY");
    expect("rmdir of a file", E(rmdir("f")), "ENOTDIR");
    expect("rmdir of a missing name", E(rmdir("nope")), "ENOENT");
    expect("rmdir d/.", E(rmdir("d/.")), "EINVAL");
    expect("rmdir d/sub/..", E(rmdir("d/sub/..")), "ENOTEMPTY");
    expect("unlink of a folder", E(unlink("d")), "EISDIR");
    expect("unlink with a trailing slash (file)", E(unlink("f/")), "ENOTDIR");
    expect("unlink with a trailing slash (folder)", E(unlink("d/")), "EISDIR");
    expect("unlink of a missing name", E(unlink("nope")), "ENOENT");
    expect("unlink d/sub/g", E(unlink("d/sub/g")), "ok");
    expect("rmdir with a trailing slash", E(rmdir("d/sub/")), "ok");
    check("the parent lost a link", st_of("d").st_nlink == 2);
    expect("unlinkat AT_REMOVEDIR", E(unlinkat(AT_FDCWD, "e", AT_REMOVEDIR)), "ok");
    expect("unlinkat AT_REMOVEDIR on a file", E(unlinkat(AT_FDCWD, "f", AT_REMOVEDIR)), "ENOTDIR");
    expect("unlinkat with a bad flag", E(unlinkat(AT_FDCWD, "f", 0x1)), "EINVAL");
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    expect("mkdirat", E(mkdirat(dfd, "m", 0700)), "ok");
    check("mkdirat made d/m", S_ISDIR(st_of("d/m").st_mode));
    expect("unlinkat relative to a dirfd", E(unlinkat(dfd, "m", AT_REMOVEDIR)), "ok");
    close(dfd);
    /* The working folder removed under us. */
    REQUIRE(mkdir("gone", 0755) == 0);
    REQUIRE(chdir("gone") == 0);
    expect("rmdir of the working folder", E(rmdir("../gone")), "ok");
    expect("creating in a removed folder", E(open("x", O_CREAT | O_WRONLY, 0644)), "ENOENT");
    expect("mkdir in a removed folder", E(mkdir("x", 0755)), "ENOENT");
    REQUIRE(chdir("..") == 0);
    expect("listing", listing("."), "d f ");
}

static void section_rename(void) {
    enter("rename");
    put("a", "A");
    put("b", "B");
    ino_t ino_a = st_of("a").st_ino;
    expect("rename to a new name", E(rename("a", "a2")), "ok");
    check("the inode moved", st_of("a2").st_ino == ino_a && st_of("a").st_nlink == 999);
    expect("rename over a file", E(rename("a2", "b")), "ok");
    expect("the target now holds", get("b"), "A");
    expect("rename of a missing name", E(rename("a", "c")), "ENOENT");
    expect("rename to itself", E(rename("b", "b")), "ok");
    REQUIRE(link("b", "b2") == 0);
    expect("rename onto another link of the same file", E(rename("b", "b2")), "ok");
    check("both names stay", st_of("b").st_nlink == 2 && st_of("b2").st_nlink == 2);
    REQUIRE(mkdir("d", 0755) == 0);
    REQUIRE(mkdir("e", 0755) == 0);
    put("e/inside", "i");
    expect("folder onto a non-empty folder", E(rename("d", "e")), "ENOTEMPTY");
    expect("folder onto a file", E(rename("d", "b")), "ENOTDIR");
    expect("file onto a folder", E(rename("b", "d")), "EISDIR");
    expect("folder into itself", E(rename("e", "e/sub")), "EINVAL");
    expect("file with a trailing slash", E(rename("b/", "z")), "ENOTDIR");
    expect("to a name with a trailing slash", E(rename("b", "z/")), "ENOTDIR");
    expect("rename of .", E(rename(".", "z")), "EBUSY");
    expect("rename onto ..", E(rename("b", "d/..")), "EBUSY");
    expect("folder onto an empty folder", E(rename("e", "d")), "ok");
    expect("listing of the moved folder", listing("d"), "inside ");
    expect("folder with a trailing slash", E(rename("d/", "d2/")), "ok");
    /* A working folder that is renamed reports its new path. */
    REQUIRE(mkdir("d2/cwd", 0755) == 0);
    REQUIRE(chdir("d2/cwd") == 0);
    REQUIRE(rename("../../d2", "../../d3") == 0);
    char cwd[4096];
    REQUIRE(getcwd(cwd, sizeof cwd));
    const char *tail = strrchr(cwd, '/');
    check("getcwd follows a rename of an ancestor", tail && strcmp(tail, "/cwd") == 0 && strstr(cwd, "/d3/cwd") != NULL);
    REQUIRE(chdir("../..") == 0);
    /* renameat2 */
    put("x", "X");
    put("y", "Y");
    expect("RENAME_NOREPLACE onto an existing name", E(syscall(SYS_renameat2, AT_FDCWD, "x", AT_FDCWD, "y", 1)), "EEXIST");
    expect("RENAME_NOREPLACE to a new name", E(syscall(SYS_renameat2, AT_FDCWD, "x", AT_FDCWD, "x2", 1)), "ok");
    expect("RENAME_EXCHANGE", E(syscall(SYS_renameat2, AT_FDCWD, "x2", AT_FDCWD, "y", 2)), "ok");
    check("exchanged", strcmp(get("x2"), "Y") == 0 && strcmp(get("y"), "X") == 0);
    expect("RENAME_EXCHANGE with a missing target", E(syscall(SYS_renameat2, AT_FDCWD, "x2", AT_FDCWD, "nope", 2)), "ENOENT");
    expect("RENAME_EXCHANGE of a file and a folder", E(syscall(SYS_renameat2, AT_FDCWD, "y", AT_FDCWD, "d3", 2)), "ok");
    check("the folder took the file's name", S_ISDIR(st_of("y").st_mode) && S_ISREG(st_of("d3").st_mode));
    expect("NOREPLACE|EXCHANGE", E(syscall(SYS_renameat2, AT_FDCWD, "y", AT_FDCWD, "d3", 3)), "EINVAL");
    expect("an unknown flag", E(syscall(SYS_renameat2, AT_FDCWD, "y", AT_FDCWD, "d3", 8)), "EINVAL");
    int dfd = open("y", O_RDONLY | O_DIRECTORY);
    expect("renameat between dirfds", E(renameat(dfd, "cwd", AT_FDCWD, "moved")), "ok");
    close(dfd);
    expect("listing", listing("."), "b b2 d3 moved x2 y ");
}

static void section_links(void) {
    enter("links");
    put("f", "data");
    expect("link", E(link("f", "g")), "ok");
    check("two links", st_of("f").st_nlink == 2 && st_of("f").st_ino == st_of("g").st_ino);
    expect("link to an existing name", E(link("f", "g")), "EEXIST");
    expect("link of a missing file", E(link("nope", "h")), "ENOENT");
    expect("link with a trailing slash", E(link("f", "h/")), "ENOENT");
    REQUIRE(mkdir("d", 0755) == 0);
    expect("link of a folder", E(link("d", "d2")), "EPERM");
    int fd = open("f", O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(unlink("f") == 0 && unlink("g") == 0);
    struct stat st;
    fstat(fd, &st);
    check("an open file outlives its names", st.st_nlink == 0);
    char buf[8] = {0};
    check("and can still be read", pread(fd, buf, 4, 0) == 4 && memcmp(buf, "data", 4) == 0);
    close(fd);
    expect("symlink", E(symlink("target-file", "s")), "ok");
    char target[64] = {0};
    check("readlink", readlink("s", target, sizeof target) == 11 && strcmp(target, "target-file") == 0);
    check("lstat sees a symlink", S_ISLNK(st_of("s").st_mode) && st_of("s").st_size == 11);
    expect("stat of a dangling symlink", E(stat("s", &st)), "ENOENT");
    expect("symlink onto an existing name", E(symlink("x", "s")), "EEXIST");
    expect("symlink to an empty target", E(symlink("", "e")), "ENOENT");
    put("target-file", "T");
    expect("reading through the symlink", get("s"), "T");
    expect("linkat without AT_SYMLINK_FOLLOW", E(linkat(AT_FDCWD, "s", AT_FDCWD, "l1", 0)), "ok");
    check("links the symlink itself", S_ISLNK(st_of("l1").st_mode));
    expect("linkat with AT_SYMLINK_FOLLOW", E(linkat(AT_FDCWD, "s", AT_FDCWD, "l2", AT_SYMLINK_FOLLOW)), "ok");
    check("links the target", S_ISREG(st_of("l2").st_mode) && st_of("target-file").st_nlink == 2);
    expect("linkat with a bad flag", E(linkat(AT_FDCWD, "s", AT_FDCWD, "l3", 0x1)), "EINVAL");
    expect("symlinkat", E(symlinkat("/", AT_FDCWD, "root")), "ok");
    check("a symlink to / resolves", S_ISDIR(st_of("root/").st_mode));
    expect("unlink of a symlink to a folder", E(unlink("root")), "ok");
    expect("listing", listing("."), "d l1 l2 s target-file ");
}

/* O_TMPFILE: an unnamed file, then given a name by linkat through the fd or /proc. */
static void section_tmpfile(void) {
    enter("tmpfile");
    REQUIRE(mkdir("d", 0755) == 0);
    int fd = open("d", O_TMPFILE | O_RDWR, 0640);
    expect("open O_TMPFILE|O_RDWR", fd >= 0 ? "ok" : err(errno), "ok");
    REQUIRE(fd >= 0);
    struct stat st, dst;
    REQUIRE(fstat(fd, &st) == 0 && stat("d", &dst) == 0);
    check("an unnamed regular file", S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_size == 0);
    check("mode less the umask", (st.st_mode & 07777) == 0640);
    check("on the directory's filesystem", st.st_dev == dst.st_dev);
    expect("the directory stays empty", listing("d"), "");
    REQUIRE(write(fd, "tmp", 3) == 3);
    expect("linkat AT_EMPTY_PATH", E(linkat(fd, "", AT_FDCWD, "d/named", AT_EMPTY_PATH)), "ok");
    REQUIRE(fstat(fd, &st) == 0);
    check("one link now", st.st_nlink == 1 && st_of("d/named").st_ino == st.st_ino);
    expect("the name reads the data", get("d/named"), "tmp");
    expect("listing", listing("d"), "named ");
    close(fd);

    fd = open("d", O_TMPFILE | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    expect("linkat /proc/self/fd/N AT_SYMLINK_FOLLOW",
           E(linkat(AT_FDCWD, proc, AT_FDCWD, "d/via-proc", AT_SYMLINK_FOLLOW)), "ok");
    check("linked once", st_of("d/via-proc").st_nlink == 1);
    expect("a second link", E(linkat(fd, "", AT_FDCWD, "d/again", AT_EMPTY_PATH)), "ok");
    check("two links", st_of("d/via-proc").st_nlink == 2);
    close(fd);

    fd = open("d", O_TMPFILE | O_RDWR | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    expect("O_EXCL forbids linkat", E(linkat(fd, "", AT_FDCWD, "d/excl", AT_EMPTY_PATH)), "ENOENT");
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    expect("also through /proc", E(linkat(AT_FDCWD, proc, AT_FDCWD, "d/excl", AT_SYMLINK_FOLLOW)), "ENOENT");
    check("the file still works", pwrite(fd, "x", 1, 0) == 1 && fstat(fd, &st) == 0 && st.st_size == 1);
    close(fd);

    /* An ordinary file, unlinked while open, cannot be linked back. */
    put("plain", "p");
    fd = open("plain", O_RDWR);
    REQUIRE(fd >= 0 && unlink("plain") == 0);
    expect("linkat of an unlinked file", E(linkat(fd, "", AT_FDCWD, "back", AT_EMPTY_PATH)), "ENOENT");
    close(fd);

    expect("O_TMPFILE read-only", E(open("d", O_TMPFILE | O_RDONLY, 0600)), "EINVAL");
    expect("O_TMPFILE with O_CREAT", E(open("d", O_TMPFILE | O_CREAT | O_RDWR, 0600)), "EINVAL");
    expect("__O_TMPFILE without O_DIRECTORY", E(open("d", (O_TMPFILE & ~O_DIRECTORY) | O_RDWR, 0600)), "EINVAL");
    expect("O_TMPFILE on a file", E(open("d/named", O_TMPFILE | O_RDWR, 0600)), "ENOTDIR");
    expect("O_TMPFILE on a missing folder", E(open("nope", O_TMPFILE | O_RDWR, 0600)), "ENOENT");
    expect("listing", listing("d"), "again named via-proc ");
}

static void section_attrs(void) {
    enter("attrs");
    put("f", "0123456789");
    expect("chmod", E(chmod("f", 04711)), "ok");
    check("mode set", (st_of("f").st_mode & 07777) == 04711);
    expect("chown", E(chown("f", 1000, 1000)), "ok");
    struct stat st = st_of("f");
    check("owner set, set-user-ID cleared", st.st_uid == 1000 && st.st_gid == 1000 && (st.st_mode & 07777) == 0711);
    expect("chown -1 -1", E(chown("f", -1, -1)), "ok");
    int fd = open("f", O_RDWR);
    REQUIRE(fd >= 0);
    expect("fchmod", E(fchmod(fd, 0640)), "ok");
    expect("fchown", E(fchown(fd, 0, 0)), "ok");
    st = st_of("f");
    check("fchmod and fchown applied", (st.st_mode & 07777) == 0640 && st.st_uid == 0);
    REQUIRE(symlink("f", "s") == 0);
    expect("chmod through a symlink", E(chmod("s", 0600)), "ok");
    check("changed the target", (st_of("f").st_mode & 07777) == 0600);
    expect("lchown of a symlink", E(lchown("s", 7, 7)), "ok");
    check("changed the symlink only", st_of("s").st_uid == 7 && st_of("f").st_uid == 0);
    expect("fchownat AT_SYMLINK_NOFOLLOW", E(fchownat(AT_FDCWD, "s", 8, 8, AT_SYMLINK_NOFOLLOW)), "ok");
    check("the symlink's owner", st_of("s").st_uid == 8);
    expect("fchmodat", E(fchmodat(AT_FDCWD, "f", 0644, 0)), "ok");
    /* times */
    struct timespec ts[2] = {{1000000000, 123}, {1200000000, 456}};
    expect("utimensat", E(utimensat(AT_FDCWD, "f", ts, 0)), "ok");
    st = st_of("f");
    check("atime and mtime set", st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 123 &&
                                    st.st_mtim.tv_sec == 1200000000 && st.st_mtim.tv_nsec == 456);
    check("ctime is now", st.st_ctim.tv_sec > 1200000000);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {5, 0}};
    expect("utimensat UTIME_OMIT", E(utimensat(AT_FDCWD, "f", omit, 0)), "ok");
    st = st_of("f");
    check("atime kept, mtime set", st.st_atim.tv_sec == 1000000000 && st.st_mtim.tv_sec == 5);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    expect("utimensat with a bad tv_nsec", E(utimensat(AT_FDCWD, "f", bad, 0)), "EINVAL");
    expect("utimensat with a bad flag", E(utimensat(AT_FDCWD, "f", NULL, 0x1)), "EINVAL");
    expect("futimens (now)", E(futimens(fd, NULL)), "ok");
    check("now", st_of("f").st_mtim.tv_sec > 1200000000);
    struct timespec both_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    expect("utimensat of a missing file, both UTIME_OMIT", E(utimensat(AT_FDCWD, "nope", both_omit, 0)), "ok");
    struct timeval tv[2] = {{1300000000, 5}, {1400000000, 7}};
    expect("utimes", E(utimes("f", tv)), "ok");
    st = st_of("f");
    check("utimes set microseconds", st.st_mtim.tv_sec == 1400000000 && st.st_mtim.tv_nsec == 7000);
    expect("utimensat AT_SYMLINK_NOFOLLOW", E(utimensat(AT_FDCWD, "s", ts, AT_SYMLINK_NOFOLLOW)), "ok");
    check("set the symlink's times", st_of("s").st_mtim.tv_sec == 1200000000 && st_of("f").st_mtim.tv_sec == 1400000000);
    /* sizes */
    expect("truncate", E(truncate("f", 4)), "ok");
    expect("contents after truncate", get("f"), "0123");
    expect("ftruncate", E(ftruncate(fd, 6)), "ok");
    char buf[8];
    check("growing reads zeros", pread(fd, buf, 8, 0) == 6 && memcmp(buf, "0123\0\0", 6) == 0);
    expect("truncate to a negative size", E(truncate("f", -1)), "EINVAL");
    REQUIRE(mkdir("d", 0755) == 0);
    expect("truncate of a folder", E(truncate("d", 0)), "EISDIR");
    int ro = open("f", O_RDONLY);
    expect("ftruncate of a read-only fd", E(ftruncate(ro, 0)), "EINVAL");
    expect("fallocate of a read-only fd", E(fallocate(ro, 0, 0, 10)), "EBADF");
    close(ro);
    expect("fallocate", E(fallocate(fd, 0, 0, 10000)), "ok");
    check("fallocate extends", st_of("f").st_size == 10000);
    expect("fallocate FALLOC_FL_KEEP_SIZE", E(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20000)), "ok");
    check("and keeps the size", st_of("f").st_size == 10000);
    expect("fallocate with a zero length", E(fallocate(fd, 0, 0, 0)), "EINVAL");
    close(fd);
    /* mtime moves on write, not on read */
    fd = open("f", O_RDWR);
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    REQUIRE(futimens(fd, old) == 0);
    REQUIRE(read(fd, buf, 1) == 1);
    check("a read leaves mtime", st_of("f").st_mtim.tv_sec == 1000);
    REQUIRE(write(fd, "w", 1) == 1);
    check("a write moves mtime", st_of("f").st_mtim.tv_sec > 1000);
    close(fd);
}

/* As uid 1000 in a child: what the sticky bit and the permission bits allow. */
static void section_sticky(void) {
    enter("sticky");
    REQUIRE(mkdir("shared", 01777) == 0 && chmod("shared", 01777) == 0);
    REQUIRE(mkdir("private", 0755) == 0);
    put("shared/rootfile", "r");
    put("shared/victim", "v");
    int before = failures;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        REQUIRE(setgroups(0, NULL) == 0 && setgid(1000) == 0 && setuid(1000) == 0);
        expect("unlink of root's file in a sticky folder", E(unlink("shared/rootfile")), "EPERM");
        expect("rename of root's file in a sticky folder", E(rename("shared/rootfile", "shared/mine")), "EPERM");
        put("shared/own", "o");
        check("the file is ours", st_of("shared/own").st_uid == 1000 && st_of("shared/own").st_gid == 1000);
        expect("replacing root's file by rename", E(rename("shared/own", "shared/victim")), "EPERM");
        expect("rename of our own file", E(rename("shared/own", "shared/own2")), "ok");
        expect("unlink of our own file", E(unlink("shared/own2")), "ok");
        expect("writing root's 0644 file", E(open("shared/rootfile", O_WRONLY)), "EACCES");
        expect("creating in a 0755 root folder", E(open("private/x", O_CREAT | O_WRONLY, 0644)), "EACCES");
        expect("mkdir in a 0755 root folder", E(mkdir("private/x", 0755)), "EACCES");
        expect("chmod of root's file", E(chmod("shared/rootfile", 0666)), "EPERM");
        expect("touching root's file", E(utimensat(AT_FDCWD, "shared/rootfile", NULL, 0)), "EACCES");
        put("shared/mine", "m");
        expect("chown of our file to root", E(chown("shared/mine", 0, -1)), "EPERM");
        expect("chgrp to a group we are not in", E(chown("shared/mine", -1, 0)), "EPERM");
        expect("chown to ourselves", E(chown("shared/mine", 1000, 1000)), "ok");
        struct timespec ts[2] = {{5, 0}, {5, 0}};
        expect("explicit times on our file", E(utimensat(AT_FDCWD, "shared/mine", ts, 0)), "ok");
        expect("hard link to root's file", E(link("shared/rootfile", "shared/hl")), "EPERM");
        _exit(failures - before);
    }
    int code = wait_code(pid);
    check("the unprivileged child's checks passed", code == 0);
}

static void section_mmap(void) {
    enter("mmap");
    int fd = open("m", O_RDWR | O_CREAT, 0600);
    REQUIRE(fd >= 0 && ftruncate(fd, 8192) == 0);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(p != MAP_FAILED);
    strcpy(p + 4100, "via mmap");
    char buf[16] = {0};
    check("read(2) sees a write through the mapping", pread(fd, buf, 8, 4100) == 8 && memcmp(buf, "via mmap", 8) == 0);
    REQUIRE(pwrite(fd, "via write", 9, 10) == 9);
    check("the mapping sees write(2)", memcmp(p + 10, "via write", 9) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        strcpy(p + 100, "from the child");
        _exit(0);
    }
    REQUIRE(wait_code(pid) == 0);
    check("the parent sees the child's write", strcmp(p + 100, "from the child") == 0);
    char *q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("a second mapping shares the pages", q != MAP_FAILED && strcmp(q + 100, "from the child") == 0);
    char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(priv != MAP_FAILED);
    check("a private mapping starts with the file", memcmp(priv + 10, "via write", 9) == 0);
    strcpy(priv + 10, "private");
    check("its writes stay private", memcmp(p + 10, "via write", 9) == 0);
    int ro = open("m", O_RDONLY);
    expect("MAP_SHARED|PROT_WRITE of a read-only fd",
           mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? err(errno) : "ok", "EACCES");
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    check("a read-only shared mapping sees the data", r != MAP_FAILED && strcmp(r + 100, "from the child") == 0);
    expect("mprotect of it to writable", E(mprotect(r, 4096, PROT_READ | PROT_WRITE)), "EACCES");
    close(ro);
    /* Growing the file is seen by an existing mapping that reaches that far. */
    char *big = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(big != MAP_FAILED && ftruncate(fd, 4 * 4096) == 0);
    strcpy(big + 3 * 4096, "grown");
    check("pages added by ftruncate are shared", pread(fd, buf, 5, 3 * 4096) == 5 && memcmp(buf, "grown", 5) == 0);
    struct stat st;
    fstat(fd, &st);
    check("the size is the file's, not the mapping's", st.st_size == 4 * 4096);
    close(fd);
    check("the mapping outlives the fd", strcmp(p + 4100, "via mmap") == 0);
    REQUIRE(unlink("m") == 0);
    check("and the name", strcmp(q + 4100, "via mmap") == 0);
}

static void section_shm(void) {
    enter("shm");
    char name[64];
    snprintf(name, sizeof name, "/rvisor-test-shm-%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    check("shm_open creates", fd >= 0);
    expect("shm_open O_EXCL again", E(shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600)), "EEXIST");
    REQUIRE(ftruncate(fd, 4096) == 0);
    volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(shared != MAP_FAILED);
    shared[0] = 0;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child opens the object by name and maps it on its own. */
        int cfd = shm_open(name, O_RDWR, 0);
        volatile int *c = cfd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (c == MAP_FAILED)
            _exit(3);
        for (int i = 0; i < 1000; i++)
            __atomic_fetch_add(&c[0], 1, __ATOMIC_SEQ_CST);
        c[1] = 42;
        _exit(0);
    }
    for (int i = 0; i < 1000; i++)
        __atomic_fetch_add(&shared[0], 1, __ATOMIC_SEQ_CST);
    check("the child ran", wait_code(pid) == 0);
    check("both processes' increments landed", shared[0] == 2000);
    check("the child's write is seen", shared[1] == 42);
    expect("shm_unlink", E(shm_unlink(name)), "ok");
    expect("shm_open after unlink", E(shm_open(name, O_RDWR, 0)), "ENOENT");
    close(fd);
}

static void section_sem(void) {
    enter("sem");
    char name[64];
    snprintf(name, sizeof name, "/rvisor-test-sem-%d", (int)getpid());
    sem_t *ping = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    check("sem_open creates", ping != SEM_FAILED);
    char name2[72];
    snprintf(name2, sizeof name2, "%s-b", name);
    sem_t *pong = sem_open(name2, O_CREAT | O_EXCL, 0600, 0);
    REQUIRE(ping != SEM_FAILED && pong != SEM_FAILED);
    volatile int *turns = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(turns != MAP_FAILED);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 200; i++) {
            if (sem_wait(ping) != 0)
                _exit(2);
            turns[0]++;
            sem_post(pong);
        }
        _exit(0);
    }
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        sem_post(ping);
        if (sem_wait(pong) != 0 || turns[0] != i + 1)
            ok = 0;
    }
    check("200 ping-pongs between processes", ok && wait_code(pid) == 0);
    int v = -1;
    sem_getvalue(ping, &v);
    check("the semaphore is back to 0", v == 0);
    expect("sem_trywait on 0", sem_trywait(ping) == 0 ? "ok" : err(errno), "EAGAIN");
    sem_t *again = sem_open(name, 0);
    check("sem_open by name finds the same semaphore", again != SEM_FAILED);
    sem_post(again);
    sem_getvalue(ping, &v);
    check("a post through the other handle counts", v == 1);
    expect("sem_unlink", E(sem_unlink(name)), "ok");
    expect("sem_unlink", E(sem_unlink(name2)), "ok");
    expect("sem_open after unlink", sem_open(name, 0) == SEM_FAILED ? err(errno) : "ok", "ENOENT");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: tmpfs BASE [SECTION...]\n");
        return 2;
    }
    base = argv[1];
    static const struct section sections[] = {
        {"create", section_create}, {"dirs", section_dirs}, {"rename", section_rename},
        {"links", section_links},   {"attrs", section_attrs}, {"sticky", section_sticky},
        {"mmap", section_mmap},     {"shm", section_shm},   {"sem", section_sem},
        {"tmpfile", section_tmpfile},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc - 1, argv + 1);
}
