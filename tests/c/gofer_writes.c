/* Extended attributes and special nodes in a writable directory:
 * `gofer_writes DIR` works on DIR/f (a regular file), DIR (a directory), DIR/sl (a
 * symlink to f) and DIR/p (a fifo), which it makes, and prints every result and errno so
 * that a native run and a sandboxed one can be compared line by line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char path_buf[4096];

static const char *at(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

static void report(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* The names of a list, sorted, on one line. */
static void print_list(const char *what, const char *buf, long n) {
    const char *names[64];
    int count = 0;
    for (long i = 0; i < n && count < 64; i += strlen(buf + i) + 1)
        names[count++] = buf + i;
    for (int i = 0; i < count; i++)
        for (int j = i + 1; j < count; j++)
            if (strcmp(names[j], names[i]) < 0) {
                const char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    printf("%s:", what);
    for (int i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static void on_path(const char *label, const char *path) {
    char buf[256], what[128];
    printf("== %s\n", label);
    report("set user.color", setxattr(path, "user.color", "blue", 4, 0));
    report("set again XATTR_CREATE", setxattr(path, "user.color", "red", 4, XATTR_CREATE));
    report("replace missing", setxattr(path, "user.none", "x", 1, XATTR_REPLACE));
    report("replace", setxattr(path, "user.color", "green", 5, XATTR_REPLACE));
    report("set empty value", setxattr(path, "user.empty", "", 0, 0));
    report("size query", getxattr(path, "user.color", NULL, 0));
    report("small buffer", getxattr(path, "user.color", buf, 2));
    long n = getxattr(path, "user.color", buf, sizeof buf);
    report("get", n);
    if (n >= 0)
        printf("value: %.*s\n", (int)n, buf);
    report("get empty", getxattr(path, "user.empty", buf, sizeof buf));
    report("get missing", getxattr(path, "user.missing", buf, sizeof buf));
    report("get bad namespace", getxattr(path, "foo.bar", buf, sizeof buf));
    report("get bare prefix", getxattr(path, "user.", buf, sizeof buf));
    report("list size", listxattr(path, NULL, 0));
    report("list small", listxattr(path, buf, 3));
    n = listxattr(path, buf, sizeof buf);
    if (n >= 0)
        print_list("list", buf, n);
    else
        report("list", n);
    report("remove", removexattr(path, "user.empty"));
    report("remove missing", removexattr(path, "user.empty"));
    n = listxattr(path, buf, sizeof buf);
    if (n >= 0)
        print_list("list after remove", buf, n);
    char big[300];
    memset(big, 'n', sizeof big);
    memcpy(big, "user.", 5);
    big[299] = 0;
    report("name too long", getxattr(path, big, buf, sizeof buf));
    static char huge[70000];
    snprintf(what, sizeof what, "value too big");
    report(what, setxattr(path, "user.big", huge, sizeof huge, 0));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gofer_writes DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int fd = open(at(dir, "f"), O_CREAT | O_EXCL | O_RDWR, 0644);
    report("create f", fd);
    report("write", write(fd, "hello", 5));
    on_path("file", at(dir, "f"));
    char buf[64];
    printf("== fd\n");
    report("fset", fsetxattr(fd, "user.viafd", "1", 1, 0));
    report("fget", fgetxattr(fd, "user.viafd", buf, sizeof buf));
    report("fremove", fremovexattr(fd, "user.viafd"));
    close(fd);
    on_path("dir", dir);
    printf("== symlink\n");
    report("symlink", symlink("f", at(dir, "sl")));
    report("lset on symlink", lsetxattr(at(dir, "sl"), "user.x", "1", 1, 0));
    report("lget on symlink", lgetxattr(at(dir, "sl"), "user.color", buf, sizeof buf));
    report("get through symlink", getxattr(at(dir, "sl"), "user.color", buf, sizeof buf));
    printf("== fifo and socket nodes\n");
    report("mkfifo", mkfifo(at(dir, "p"), 0640));
    report("set on fifo", setxattr(at(dir, "p"), "user.x", "1", 1, 0));
    report("get on fifo", getxattr(at(dir, "p"), "user.x", buf, sizeof buf));
    struct stat st;
    report("stat fifo", stat(at(dir, "p"), &st));
    printf("fifo type %o mode %o\n", st.st_mode & S_IFMT, st.st_mode & 07777);
    report("mknod socket", mknod(at(dir, "s"), S_IFSOCK | 0600, 0));
    report("stat socket", lstat(at(dir, "s"), &st));
    printf("socket type %o mode %o\n", st.st_mode & S_IFMT, st.st_mode & 07777);
    report("mknod regular", mknod(at(dir, "r"), 0600, 0));
    report("mknod dir", mknod(at(dir, "dd"), S_IFDIR | 0700, 0));
    report("mknod exists", mknod(at(dir, "r"), S_IFIFO | 0600, 0));
    report("open fifo O_RDWR", fd = open(at(dir, "p"), O_RDWR));
    report("write fifo", write(fd, "xyz", 3));
    report("read fifo", read(fd, buf, sizeof buf));
    close(fd);
    report("open fifo O_WRONLY|O_NONBLOCK without reader", open(at(dir, "p"), O_WRONLY | O_NONBLOCK));
    return 0;
}
