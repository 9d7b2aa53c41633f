/*
 * Permission checks with the caller's credentials: root sets up files and folders, then a
 * child that dropped to nobody (uid/gid 65534, no supplementary groups) tries what Linux
 * forbids it: reading, writing, creating, removing, chmod/chown, utimensat, access(2),
 * execve, hard links (fs.protected_hardlinks) and the search permission of every folder a
 * path crosses. Writes by a non-root owner clear set-ID bits. Every line is a call and its
 * errno name, so a native run and a sandboxed one compare byte for byte.
 *
 * usage: perms BASE [SECTION...]   (sections: walk files attrs exec setid bindsetid realids, and
 *        noexec, which mounts a tmpfs and runs only when named: natively, run it in a
 *        private mount namespace). Each section works in a fresh folder BASE/SECTION; BASE
 *        must be a writable folder others may search, and the program must run as root.
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define NOBODY 65534

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
    out("== %s\n", section);
    snprintf(path, sizeof path, "%s/%s", base, section);
    REQUIRE(mkdir(path, 0755) == 0 && chmod(path, 0755) == 0);
    REQUIRE(chdir(path) == 0);
    umask(0);
}

/* Creates `path` (as the caller) with `data` and exactly `mode`. */
static void put(const char *path, const char *data, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    REQUIRE(fchmod(fd, mode) == 0);
    REQUIRE(close(fd) == 0);
}

static void dir(const char *path, mode_t mode) {
    REQUIRE(mkdir(path, mode) == 0 && chmod(path, mode) == 0);
}

/* The permission bits of `path` in octal ("<errno>" if stat fails). */
static const char *mode_of(const char *path) {
    static char buf[32];
    struct stat st;
    if (stat(path, &st) != 0)
        snprintf(buf, sizeof buf, "<%s>", err(errno));
    else
        snprintf(buf, sizeof buf, "%04o", (unsigned)(st.st_mode & 07777));
    return buf;
}

static int wait_code(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

/* Becomes nobody for good. */
static void drop_to_nobody(void) {
    REQUIRE(setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0);
}

/* Runs `fn` in a child that dropped to nobody; its failures count here. */
static void as_nobody(void (*fn)(void)) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        failures = 0;
        drop_to_nobody();
        fn();
        _exit(failures);
    }
    int code = wait_code(pid);
    if (code != 0)
        out("child: %d failures\n", code);
    failures += code;
}

/* execve(path) in a child: "ok" if the program ran and exited 0, else execve's errno. */
static const char *exec_result(const char *path) {
    static char buf[32];
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char *argv[] = {(char *)path, NULL};
        char *envp[] = {NULL};
        execve(path, argv, envp);
        _exit(100 + errno);
    }
    int code = wait_code(pid);
    if (code == 0)
        return "ok";
    if (code > 100 && code < 100 + 134)
        return err(code - 100);
    snprintf(buf, sizeof buf, "exit %d", code);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* walk: search permission on every folder a path crosses */

static void walk_child(void) {
    struct stat st;
    expect("stat under a 0700 root folder", E(stat("locked/f", &st)), "EACCES");
    expect("stat of a missing name under it", E(stat("locked/nothing", &st)), "EACCES");
    expect("open under it", E(open("locked/f", O_RDONLY)), "EACCES");
    expect("stat of the folder itself", E(stat("locked", &st)), "ok");
    expect("stat of the folder with a trailing slash", E(stat("locked/", &st)), "ok");
    expect("stat of locked/.", E(stat("locked/.", &st)), "EACCES");
    expect("stat of locked/..", E(stat("locked/..", &st)), "EACCES");
    expect("stat deeper under it", E(stat("locked/sub/g", &st)), "EACCES");
    expect("stat through a symlink into it", E(stat("link", &st)), "EACCES");
    expect("lstat of that symlink", E(lstat("link", &st)), "ok");
    expect("stat through a symlink to the folder/", E(stat("dirlink", &st)), "ok");
    expect("unlink under it", E(unlink("locked/f")), "EACCES");
    expect("mkdir under it", E(mkdir("locked/new", 0755)), "EACCES");
    expect("creat under it", E(open("locked/new", O_CREAT | O_WRONLY, 0644)), "EACCES");
    expect("rename out of it", E(rename("locked/f", "out")), "EACCES");
    expect("chdir into it", E(chdir("locked")), "EACCES");
    expect("access(F_OK) under it", E(access("locked/f", F_OK)), "EACCES");
    expect("opendir of a 0711 folder", E(open("xonly", O_RDONLY | O_DIRECTORY)), "EACCES");
    expect("stat under a 0711 folder", E(stat("xonly/f", &st)), "ok");
    expect("open under a 0711 folder", E(open("xonly/f", O_RDONLY)), "ok");
    expect("opendir of a 0744 folder", E(open("ronly", O_RDONLY | O_DIRECTORY)), "ok");
    expect("stat under a 0744 folder", E(stat("ronly/f", &st)), "EACCES");
    int fd = open("ronly", O_RDONLY | O_DIRECTORY);
    expect("fstatat from a 0744 folder's fd", E(fstatat(fd, "f", &st, 0)), "EACCES");
    expect("fstatat of the fd itself (AT_EMPTY_PATH)", E(fstatat(fd, "", &st, AT_EMPTY_PATH)), "ok");
    close(fd);
    expect("chdir into a 0711 folder", E(chdir("xonly")), "ok");
    expect("stat relative to it", E(stat("f", &st)), "ok");
    expect("stat of . in it", E(stat(".", &st)), "ok");
    expect("chdir back", E(chdir("..")), "ok");
    expect("chdir into a 0744 folder", E(chdir("ronly")), "EACCES");
}

static void section_walk(void) {
    enter("walk");
    dir("locked", 0700);
    put("locked/f", "secret", 0644);
    dir("locked/sub", 0755);
    put("locked/sub/g", "g", 0644);
    dir("xonly", 0711);
    put("xonly/f", "x", 0644);
    dir("ronly", 0744);
    put("ronly/f", "r", 0644);
    REQUIRE(symlink("locked/f", "link") == 0);
    REQUIRE(symlink("locked/", "dirlink") == 0);
    struct stat st;
    expect("root: stat under a 0700 folder", E(stat("locked/f", &st)), "ok");
    expect("root: stat under a 0000 folder", E(chmod("locked", 0) == 0 ? stat("locked/f", &st) : -1), "ok");
    REQUIRE(chmod("locked", 0700) == 0);
    as_nobody(walk_child);
}

/* ---------------------------------------------------------------------------------------- */
/* files: open, create, remove, rename */

static void files_child(void) {
    expect("read a 0600 root file", E(open("secret", O_RDONLY)), "EACCES");
    expect("write a 0644 root file", E(open("readable", O_WRONLY)), "EACCES");
    expect("read a 0644 root file", E(open("readable", O_RDONLY)), "ok");
    expect("O_TRUNC a 0644 root file", E(open("readable", O_RDONLY | O_TRUNC)), "EACCES");
    expect("read+write a 0666 root file", E(open("public", O_RDWR)), "ok");
    expect("create in a 0755 root folder", E(open("rootdir/x", O_CREAT | O_WRONLY, 0644)), "EACCES");
    expect("mkdir in a 0755 root folder", E(mkdir("rootdir/x", 0755)), "EACCES");
    expect("symlink in a 0755 root folder", E(symlink("a", "rootdir/x")), "EACCES");
    expect("unlink in a 0755 root folder", E(unlink("rootdir/f")), "EACCES");
    expect("unlink root's file in a 1777 folder", E(unlink("sticky/rootfile")), "EPERM");
    expect("rmdir root's folder in a 1777 folder", E(rmdir("sticky/rootsub")), "EPERM");
    expect("create our own file in a 1777 folder", E(open("sticky/mine", O_CREAT | O_WRONLY, 0644)), "ok");
    expect("rename ours over root's file in a 1777 folder", E(rename("sticky/mine", "sticky/victim")), "EPERM");
    expect("rename root's file away in a 1777 folder", E(rename("sticky/rootfile", "sticky/taken")), "EPERM");
    expect("rename ours within the 1777 folder", E(rename("sticky/mine", "sticky/mine2")), "ok");
    expect("unlink ours in the 1777 folder", E(unlink("sticky/mine2")), "ok");
    expect("unlink in a 0777 folder (no sticky bit)", E(unlink("open/rootfile")), "ok");
    expect("chmod a root file", E(chmod("public", 0777)), "EPERM");
    expect("chown a root file to ourselves", E(chown("public", NOBODY, NOBODY)), "EPERM");
    expect("chown a root file to root (no change)", E(chown("public", 0, 0)), "EPERM");
    expect("link to a 0600 root file", E(link("secret", "sticky/hl1")), "EPERM");
    expect("link to a 0644 root file", E(link("readable", "sticky/hl2")), "EPERM");
    expect("link to a 0666 root file", E(link("public", "sticky/hl3")), "ok");
    expect("link to a 04777 root file", E(link("suidroot", "sticky/hl4")), "EPERM");
}

static void section_files(void) {
    enter("files");
    put("secret", "secret", 0600);
    put("readable", "readable", 0644);
    put("public", "public", 0666);
    put("suidroot", "suid", 04777);
    dir("rootdir", 0755);
    put("rootdir/f", "f", 0644);
    dir("sticky", 01777);
    put("sticky/rootfile", "r", 0644);
    put("sticky/victim", "v", 0644);
    dir("sticky/rootsub", 0755);
    dir("open", 0777);
    put("open/rootfile", "r", 0644);
    as_nobody(files_child);
    expect("root: link to our own 0600 file", E(link("secret", "hl")), "ok");
}

/* ---------------------------------------------------------------------------------------- */
/* attrs: utimensat and access(2) */

static void attrs_child(void) {
    struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    struct timespec set[2] = {{5, 0}, {5, 0}};
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    expect("utimensat(NULL) on a 0666 root file", E(utimensat(AT_FDCWD, "public", NULL, 0)), "ok");
    expect("utimensat(NOW, NOW) on it", E(utimensat(AT_FDCWD, "public", now, 0)), "ok");
    expect("utimensat(NOW, OMIT) on it", E(utimensat(AT_FDCWD, "public", now_omit, 0)), "EPERM");
    expect("utimensat(explicit) on it", E(utimensat(AT_FDCWD, "public", set, 0)), "EPERM");
    expect("utimensat(OMIT, OMIT) on it", E(utimensat(AT_FDCWD, "public", omit, 0)), "ok");
    expect("utimensat(NULL) on a 0644 root file", E(utimensat(AT_FDCWD, "readable", NULL, 0)), "EACCES");
    expect("utimes(NULL) on it", E(utimes("readable", NULL)), "EACCES");
    expect("utimensat(explicit) on our own file", E(utimensat(AT_FDCWD, "mine", set, 0)), "ok");
    int fd = open("public", O_RDWR);
    expect("futimens(NULL) through a writable fd", E(futimens(fd, NULL)), "ok");
    expect("futimens(explicit) through it", E(futimens(fd, set)), "EPERM");
    close(fd);
    expect("access(R_OK) of a 0600 root file", E(access("secret", R_OK)), "EACCES");
    expect("access(F_OK) of it", E(access("secret", F_OK)), "ok");
    expect("access(R_OK|W_OK) of a 0666 root file", E(access("public", R_OK | W_OK)), "ok");
    expect("access(X_OK) of it", E(access("public", X_OK)), "EACCES");
    expect("access(W_OK) of a 0644 root file", E(access("readable", W_OK)), "EACCES");
    expect("access(X_OK) of a 0711 root file", E(access("prog", X_OK)), "ok");
    expect("access(R_OK) of it", E(access("prog", R_OK)), "EACCES");
    expect("access(W_OK) of a 0755 root folder", E(access(".", W_OK)), "EACCES");
    expect("access(X_OK) of a 0755 root folder", E(access(".", X_OK)), "ok");
    expect("access(R_OK) of a folder in our group (0070)", E(access("grpdir", R_OK)), "ok");
    expect("access(R_OK) of a 0604 file of our group (group bits, not other)", E(access("othergrp", R_OK)), "EACCES");
}

static void section_attrs(void) {
    enter("attrs");
    put("public", "p", 0666);
    put("readable", "r", 0644);
    put("secret", "s", 0600);
    put("prog", "#!/bin/true\n", 0711);
    put("mine", "m", 0644);
    REQUIRE(chown("mine", NOBODY, NOBODY) == 0);
    dir("grpdir", 0070);
    REQUIRE(chown("grpdir", 0, NOBODY) == 0);
    put("othergrp", "o", 0604);
    REQUIRE(chown("othergrp", 0, NOBODY) == 0);
    struct timespec set[2] = {{5, 0}, {5, 0}};
    expect("root: utimensat(explicit) on a file it does not own", E(utimensat(AT_FDCWD, "mine", set, 0)), "ok");
    expect("root: access(X_OK) of a 0644 file", E(access("readable", X_OK)), "EACCES");
    expect("root: access(R_OK|W_OK) of a 0000 file", E(chmod("secret", 0) == 0 ? access("secret", R_OK | W_OK) : -1), "ok");
    REQUIRE(chmod("secret", 0600) == 0);
    as_nobody(attrs_child);
}

/* ---------------------------------------------------------------------------------------- */
/* exec */

static void exec_child(void) {
    expect("execve of a 0644 file", exec_result("./plain"), "EACCES");
    expect("execve of a 0700 root program", exec_result("./rootonly"), "EACCES");
    expect("execve of a 0755 program", exec_result("./runme"), "ok");
    expect("execve of a 0711 program we cannot read", exec_result("./xonly"), "ok");
    expect("execve of a folder", exec_result("./adir"), "EACCES");
    expect("execve under a 0700 root folder", exec_result("./locked/runme"), "EACCES");
    expect("execve of a 0755 script whose interpreter is 0700", exec_result("./viaprivate"), "EACCES");
    expect("execve of a missing file", exec_result("./missing"), "ENOENT");
}

static void section_exec(void) {
    enter("exec");
    put("plain", "#!/bin/true\n", 0644);
    put("rootonly", "#!/bin/true\n", 0700);
    put("runme", "#!/bin/true\n", 0755);
    put("xonly", "#!/bin/true\n", 0711);
    put("other_x", "#!/bin/true\n", 0001);
    dir("adir", 0755);
    dir("locked", 0700);
    put("locked/runme", "#!/bin/true\n", 0755);
    char cwd[4096], script[4200];
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(script, sizeof script, "#!%s/rootonly\n", cwd);
    put("viaprivate", script, 0755);
    expect("root: execve of a 0644 file", exec_result("./plain"), "EACCES");
    expect("root: execve of a 0001 program", exec_result("./other_x"), "ok");
    expect("root: execve of a folder", exec_result("./adir"), "EACCES");
    as_nobody(exec_child);
}

/* ---------------------------------------------------------------------------------------- */
/* setid: writes and truncations by a non-root owner clear set-ID bits */

static void setid_child(void) {
    put("suid", "x", 04777);
    expect("mode after creating and chmod", mode_of("suid"), "4777");
    int fd = open("suid", O_WRONLY);
    REQUIRE(fd >= 0);
    expect("write of nothing", E(write(fd, "", 0)), "ok");
    expect("mode after an empty write", mode_of("suid"), "4777");
    expect("write one byte", E(write(fd, "y", 1)), "ok");
    expect("mode after the write", mode_of("suid"), "0777");
    REQUIRE(fchmod(fd, 06775) == 0);
    expect("pwrite one byte", E(pwrite(fd, "z", 1, 0)), "ok");
    expect("mode after pwrite (setgid with group exec)", mode_of("suid"), "0775");
    REQUIRE(fchmod(fd, 02765) == 0);
    expect("write to a setgid file without group exec", E(write(fd, "w", 1)), "ok");
    expect("mode after it (mandatory-locking bit stays)", mode_of("suid"), "2765");
    REQUIRE(fchmod(fd, 04755) == 0);
    expect("ftruncate", E(ftruncate(fd, 0)), "ok");
    expect("mode after ftruncate", mode_of("suid"), "0755");
    close(fd);
    REQUIRE(chmod("suid", 04755) == 0);
    expect("truncate", E(truncate("suid", 1)), "ok");
    expect("mode after truncate", mode_of("suid"), "0755");
    REQUIRE(chmod("suid", 04755) == 0);
    fd = open("suid", O_RDONLY);
    expect("read-only fd: write fails", E(write(fd, "r", 1)), "EBADF");
    expect("mode after the failed write", mode_of("suid"), "4755");
    close(fd);
    fd = open("rootsuid_public", O_WRONLY);
    expect("write to root's 04666 file", E(write(fd, "q", 1)), "ok");
    expect("mode of root's file after our write", mode_of("rootsuid_public"), "0666");
    close(fd);
}

static void section_setid(void) {
    enter("setid");
    REQUIRE(chmod(".", 01777) == 0);
    put("rootsuid", "x", 04755);
    put("rootsuid_public", "x", 04666);
    int fd = open("rootsuid", O_WRONLY);
    REQUIRE(fd >= 0);
    expect("root: write to a 04755 file", E(write(fd, "y", 1)), "ok");
    expect("root: mode after the write", mode_of("rootsuid"), "4755");
    expect("root: ftruncate", E(ftruncate(fd, 0)), "ok");
    expect("root: mode after ftruncate", mode_of("rootsuid"), "4755");
    close(fd);
    as_nobody(setid_child);
}

/* ---------------------------------------------------------------------------------------- */
/* bindsetid: every kind of change to a set-ID file, by root (bits kept) and by nobody
 * (bits cleared), one fresh file per change and caller, so that the files' modes after the
 * run (which the test also reads on the host) show what each change left. The sandboxed
 * run works in a writable bind mount of a host folder. The set-group-ID cases without group
 * execute follow Linux 6.2 and later (cleared for a writer outside the file's group). */

static const char *const changes[] = {
    "write", "pwrite", "writev", "ftruncate", "truncate", "O_TRUNC", "fallocate", "sendfile", "copy_file_range",
};
#define N_CHANGES (int)(sizeof changes / sizeof changes[0])

/* Applies change `c` to `path` (opened for writing when the change needs a descriptor). */
static const char *apply_change(int c, const char *path) {
    const char *name = changes[c];
    if (strcmp(name, "truncate") == 0)
        return E(truncate(path, 1));
    if (strcmp(name, "O_TRUNC") == 0) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd < 0)
            return err(errno);
        close(fd);
        return "ok";
    }
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return err(errno);
    int src = open("source", O_RDONLY);
    REQUIRE(src >= 0);
    struct iovec iov[2] = {{(void *)"a", 1}, {(void *)"b", 1}};
    long r = -1;
    if (strcmp(name, "write") == 0)
        r = write(fd, "y", 1);
    else if (strcmp(name, "pwrite") == 0)
        r = pwrite(fd, "z", 1, 3);
    else if (strcmp(name, "writev") == 0)
        r = writev(fd, iov, 2);
    else if (strcmp(name, "ftruncate") == 0)
        r = ftruncate(fd, 0);
    else if (strcmp(name, "fallocate") == 0)
        r = fallocate(fd, 0, 0, 8192);
    else if (strcmp(name, "sendfile") == 0)
        r = sendfile(fd, src, NULL, 3);
    else if (strcmp(name, "copy_file_range") == 0)
        r = copy_file_range(src, NULL, fd, NULL, 3, 0);
    int e = errno;
    close(src);
    close(fd);
    return r < 0 ? err(e) : "ok";
}

/* The files each caller changes: (name prefix, mode, owner, mode the change leaves). */
struct setid_case {
    const char *prefix;
    mode_t mode;
    uid_t owner;
    const char *after;
};

static const struct setid_case root_cases[] = {
    {"root-4755", 04755, 0, "4755"},
    {"root-2755", 02755, 0, "2755"},
    {"root-6755", 06755, 0, "6755"},
};

static const struct setid_case nobody_cases[] = {
    {"pub-4777", 04777, 0, "0777"},
    {"pub-2777", 02777, 0, "0777"},
    /* set-group-ID without group execute, the writer outside the file's group */
    {"pub-2666", 02666, 0, "0666"},
    {"own-4755", 04755, NOBODY, "0755"},
    {"own-6755", 06755, NOBODY, "0755"},
    /* ... and inside it (the file's group is nobody's): the bit stays */
    {"own-2745", 02745, NOBODY, "2745"},
};

static void case_path(char *buf, size_t len, const struct setid_case *k, int c) {
    snprintf(buf, len, "%s-%s", k->prefix, changes[c]);
}

static void make_cases(const struct setid_case *cases, int n) {
    char path[256];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_CHANGES; c++) {
            case_path(path, sizeof path, &cases[i], c);
            put(path, "data", cases[i].mode);
            if (cases[i].owner != 0) {
                REQUIRE(chown(path, cases[i].owner, cases[i].owner) == 0);
                REQUIRE(chmod(path, cases[i].mode) == 0);
            }
        }
}

static void run_cases(const char *who, const struct setid_case *cases, int n) {
    char path[256], what[400];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_CHANGES; c++) {
            case_path(path, sizeof path, &cases[i], c);
            snprintf(what, sizeof what, "%s: %s of %s", who, changes[c], path);
            expect(what, apply_change(c, path), "ok");
            snprintf(what, sizeof what, "%s: mode of %s after it", who, path);
            expect(what, mode_of(path), cases[i].after);
        }
}

static void bindsetid_child(void) {
    run_cases("nobody", nobody_cases, (int)(sizeof nobody_cases / sizeof nobody_cases[0]));
}

static void section_bindsetid(void) {
    enter("bindsetid");
    put("source", "src", 0644);
    make_cases(root_cases, (int)(sizeof root_cases / sizeof root_cases[0]));
    make_cases(nobody_cases, (int)(sizeof nobody_cases / sizeof nobody_cases[0]));
    run_cases("root", root_cases, (int)(sizeof root_cases / sizeof root_cases[0]));
    as_nobody(bindsetid_child);
}

/* ---------------------------------------------------------------------------------------- */
/* realids: access(2) uses the real ids (for the walk too), AT_EACCESS the effective ones */

static void section_realids(void) {
    enter("realids");
    put("secret", "s", 0600);
    dir("locked", 0700);
    put("locked/f", "f", 0644);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        failures = 0;
        REQUIRE(setgroups(0, NULL) == 0 && setresgid(NOBODY, 0, 0) == 0 && setresuid(NOBODY, 0, 0) == 0);
        struct stat st;
        expect("real nobody, effective root: open a 0600 file", E(open("secret", O_RDONLY)), "ok");
        expect("access(R_OK) of it", E(access("secret", R_OK)), "EACCES");
        expect("faccessat(AT_EACCESS) of it", E(faccessat(AT_FDCWD, "secret", R_OK, AT_EACCESS)), "ok");
        expect("stat under a 0700 folder", E(stat("locked/f", &st)), "ok");
        expect("access(F_OK) under it", E(access("locked/f", F_OK)), "EACCES");
        expect("faccessat(F_OK, AT_EACCESS) under it", E(faccessat(AT_FDCWD, "locked/f", F_OK, AT_EACCESS)), "ok");
        _exit(failures);
    }
    int code = wait_code(pid);
    if (code != 0)
        out("child: %d failures\n", code);
    failures += code;
}

/* ---------------------------------------------------------------------------------------- */
/* noexec: execve refuses files on a noexec mount, even for root */

static void section_noexec(void) {
    enter("noexec");
    dir("mnt", 0755);
    REQUIRE(mount("tmpfs", "mnt", "tmpfs", MS_NOEXEC, "mode=755") == 0);
    put("mnt/runme", "#!/bin/true\n", 0755);
    put("runme", "#!/bin/true\n", 0755);
    char cwd[4096], script[4200];
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(script, sizeof script, "#!%s/mnt/runme\n", cwd);
    put("viamnt", script, 0755);
    expect("root: execve of a 0755 program on a noexec mount", exec_result("./mnt/runme"), "EACCES");
    expect("root: access(X_OK) of it", E(access("mnt/runme", X_OK)), "EACCES");
    expect("root: access(R_OK) of it", E(access("mnt/runme", R_OK)), "ok");
    expect("root: execve of a script whose interpreter is on it", exec_result("./viamnt"), "EACCES");
    expect("root: execve of the same program elsewhere", exec_result("./runme"), "ok");
    REQUIRE(umount2("mnt", 0) == 0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: perms BASE [SECTION...]\n");
        return 99;
    }
    if (geteuid() != 0) {
        out("perms: must run as root\n");
        return 99;
    }
    base = argv[1];
    static const struct {
        const char *name;
        void (*fn)(void);
    } sections[] = {
        {"walk", section_walk},     {"files", section_files}, {"attrs", section_attrs},
        {"exec", section_exec},     {"setid", section_setid}, {"bindsetid", section_bindsetid},
        {"realids", section_realids},
        {"noexec", section_noexec},
    };
    /* Sections that only run when named. */
    static const char *explicit_only = "noexec";
    int n = (int)(sizeof sections / sizeof sections[0]);
    for (int i = 0; i < n; i++) {
        int wanted = argc == 2 && strcmp(sections[i].name, explicit_only) != 0;
        for (int a = 2; a < argc; a++)
            wanted |= strcmp(argv[a], sections[i].name) == 0;
        if (wanted)
            sections[i].fn();
    }
    return failures;
}
