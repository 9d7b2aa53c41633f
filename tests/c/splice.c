/*
 * Copies inside the kernel and scoped opens: `splice BASE [SECTION...]` works in BASE.
 *
 * sendfile, splice, tee and copy_file_range between files and pipes (counts, offsets,
 * file positions, contents, errors), and openat2 with RESOLVE_* flags and O_PATH.
 */
#include "rvtest.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static const char *base;

static char *path_of(const char *name) {
    static char buf[4][512];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", base, name);
    return b;
}

#define DATA_LEN 200000
static unsigned char data[DATA_LEN];

/* A file holding `len` bytes of the test pattern. */
static int pattern_file(const char *name, int len) {
    for (int i = 0; i < DATA_LEN; i++)
        data[i] = (unsigned char)(i * 7 + i / 251);
    int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, len) == len);
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

static long long pos(int fd) {
    return (long long)lseek(fd, 0, SEEK_CUR);
}

static const char *res(ssize_t r) {
    static char buf[4][32];
    static int n;
    char *b = buf[n++ % 4];
    if (r < 0)
        snprintf(b, sizeof buf[0], "%s", err(errno));
    else
        snprintf(b, sizeof buf[0], "%zd", r);
    return b;
}

/* Whether `fd` (from offset 0) holds `len` bytes equal to the pattern from `from`. */
static int same_as_pattern(int fd, int from, int len) {
    static unsigned char buf[DATA_LEN];
    ssize_t n = pread(fd, buf, len, 0);
    return n == len && memcmp(buf, data + from, len) == 0;
}

static void sendfile_section(void) {
    int in = pattern_file("sf_in", DATA_LEN);
    int dst = open(path_of("sf_out"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(dst >= 0);
    off_t off = 1000;
    out("sendfile at offset: %s\n", res(sendfile(dst, in, &off, 5000)));
    out("offset now %lld, in position %lld, dst position %lld\n", (long long)off, pos(in), pos(dst));
    check("copied bytes match", same_as_pattern(dst, 1000, 5000));
    REQUIRE(ftruncate(dst, 0) == 0 && lseek(dst, 0, SEEK_SET) == 0);
    out("sendfile from position: %s\n", res(sendfile(dst, in, NULL, DATA_LEN)));
    out("in position %lld, dst position %lld\n", pos(in), pos(dst));
    check("whole file copied", same_as_pattern(dst, 0, DATA_LEN));
    out("sendfile at EOF: %s\n", res(sendfile(dst, in, NULL, 100)));
    off = DATA_LEN - 10;
    out("sendfile near EOF: %s, offset %lld\n", res(sendfile(dst, in, &off, 100)), (long long)off);
    int p[2];
    REQUIRE(pipe(p) == 0);
    off = 0;
    out("sendfile to a pipe: %s\n", res(sendfile(p[1], in, &off, 1000)));
    unsigned char buf[2000];
    check("pipe got the bytes", read(p[0], buf, sizeof buf) == 1000 && memcmp(buf, data, 1000) == 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    off = 0;
    out("sendfile into a full non-blocking pipe: %s\n", res(sendfile(p[1], in, &off, DATA_LEN)));
    out("again: %s\n", res(sendfile(p[1], in, &off, DATA_LEN)));
    off = -1;
    out("negative offset: %s\n", res(sendfile(dst, in, &off, 10)));
    int wo = open(path_of("sf_in"), O_WRONLY);
    out("write-only input: %s\n", res(sendfile(dst, wo, NULL, 10)));
    out("read-only output: %s\n", res(sendfile(in, in, NULL, 10)));
    int ap = open(path_of("sf_out"), O_WRONLY | O_APPEND);
    out("O_APPEND output: %s\n", res(sendfile(ap, in, NULL, 10)));
    out("bad fd: %s\n", res(sendfile(99, in, NULL, 10)));
    close(wo);
    close(ap);
    close(p[0]);
    close(p[1]);
    close(in);
    close(dst);
}

static void splice_section(void) {
    int in = pattern_file("sp_in", 100000);
    int dst = open(path_of("sp_out"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(dst >= 0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    loff_t off = 10;
    out("file to pipe at offset: %s\n", res(splice(in, &off, p[1], NULL, 3000, 0)));
    out("offset %lld, in position %lld\n", (long long)off, pos(in));
    out("pipe to file: %s\n", res(splice(p[0], NULL, dst, NULL, 5000, 0)));
    out("dst position %lld\n", pos(dst));
    check("contents", same_as_pattern(dst, 10, 3000));
    out("file to pipe from position, more than the pipe holds: %s\n", res(splice(in, NULL, p[1], NULL, 100000, 0)));
    out("in position %lld\n", pos(in));
    loff_t ooff = 0;
    ssize_t total = 0, n;
    while ((n = splice(p[0], NULL, dst, &ooff, 100000, SPLICE_F_NONBLOCK)) > 0)
        total += n;
    out("drained %zd bytes, last: %s, dst offset %lld, dst position %lld\n", total, res(n), (long long)ooff, pos(dst));
    check("drained bytes match", same_as_pattern(dst, 0, (int)total));
    out("empty pipe, nonblock: %s\n", res(splice(p[0], NULL, dst, NULL, 10, SPLICE_F_NONBLOCK)));
    out("file to file: %s\n", res(splice(in, NULL, dst, NULL, 10, 0)));
    out("offset on a pipe: %s\n", res(splice(p[0], &off, dst, NULL, 10, 0)));
    out("zero length: %s\n", res(splice(in, NULL, p[1], NULL, 0, 0)));
    out("bad flags: %s\n", res(splice(in, NULL, p[1], NULL, 10, 0x100)));
    out("same pipe: %s\n", res(splice(p[0], NULL, p[1], NULL, 10, 0)));
    int q[2];
    REQUIRE(pipe(q) == 0);
    REQUIRE(write(p[1], "pipe-to-pipe", 12) == 12);
    out("pipe to pipe: %s\n", res(splice(p[0], NULL, q[1], NULL, 5, 0)));
    char buf[64] = {0};
    REQUIRE(read(q[0], buf, sizeof buf) == 5);
    out("moved: %s\n", buf);
    memset(buf, 0, sizeof buf);
    REQUIRE(read(p[0], buf, sizeof buf) == 7);
    out("left: %s\n", buf);
    close(p[1]);
    out("at EOF: %s\n", res(splice(p[0], NULL, dst, NULL, 10, 0)));

    /* tee copies without consuming. */
    int a[2], b[2];
    REQUIRE(pipe(a) == 0 && pipe(b) == 0);
    REQUIRE(write(a[1], "tee-data", 8) == 8);
    out("tee: %s\n", res(tee(a[0], b[1], 100, 0)));
    memset(buf, 0, sizeof buf);
    REQUIRE(read(b[0], buf, sizeof buf) == 8);
    out("copy: %s\n", buf);
    memset(buf, 0, sizeof buf);
    REQUIRE(read(a[0], buf, sizeof buf) == 8);
    out("original still there: %s\n", buf);
    out("tee empty nonblock: %s\n", res(tee(a[0], b[1], 100, SPLICE_F_NONBLOCK)));
    out("tee to a file: %s\n", res(tee(a[0], dst, 100, 0)));
    out("tee same pipe: %s\n", res(tee(a[0], a[1], 100, 0)));
    close(a[1]);
    out("tee at EOF: %s\n", res(tee(a[0], b[1], 100, 0)));
    close(a[0]);
    close(b[0]);
    close(b[1]);
    close(q[0]);
    close(q[1]);
    close(p[0]);
    close(in);
    close(dst);
}

static void copy_section(void) {
    int in = pattern_file("cfr_in", 50000);
    int dst = open(path_of("cfr_out"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(dst >= 0);
    loff_t oi = 100, oo = 0;
    out("copy with offsets: %s\n", res(copy_file_range(in, &oi, dst, &oo, 20000, 0)));
    out("offsets %lld %lld, positions %lld %lld\n", (long long)oi, (long long)oo, pos(in), pos(dst));
    check("copied", same_as_pattern(dst, 100, 20000));
    REQUIRE(lseek(in, 49000, SEEK_SET) == 49000);
    out("copy from positions past EOF: %s\n", res(copy_file_range(in, NULL, dst, NULL, 5000, 0)));
    out("positions %lld %lld\n", pos(in), pos(dst));
    out("at EOF: %s\n", res(copy_file_range(in, NULL, dst, NULL, 5000, 0)));
    oi = 0;
    oo = 10;
    out("same file overlapping: %s\n", res(copy_file_range(in, &oi, in, &oo, 100, 0)));
    oo = 60000;
    out("same file apart: %s\n", res(copy_file_range(in, &oi, in, &oo, 100, 0)));
    out("flags: %s\n", res(copy_file_range(in, NULL, dst, NULL, 10, 1)));
    int p[2];
    REQUIRE(pipe(p) == 0);
    out("to a pipe: %s\n", res(copy_file_range(in, NULL, p[1], NULL, 10, 0)));
    int d = open(base, O_RDONLY | O_DIRECTORY);
    out("from a directory: %s\n", res(copy_file_range(d, NULL, dst, NULL, 10, 0)));
    int ro = open(path_of("cfr_out"), O_RDONLY);
    out("to a read-only fd: %s\n", res(copy_file_range(in, NULL, ro, NULL, 10, 0)));
    close(ro);
    close(d);
    close(p[0]);
    close(p[1]);
    close(in);
    close(dst);
}

static long o2(int dirfd, const char *path, unsigned long long flags, unsigned long long mode, unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static const char *o2r(long fd) {
    if (fd < 0)
        return err(errno);
    close((int)fd);
    return "ok";
}

static void openat2_section(void) {
    REQUIRE(mkdir(path_of("o2"), 0755) == 0 || errno == EEXIST);
    REQUIRE(mkdir(path_of("o2/sub"), 0755) == 0 || errno == EEXIST);
    int f = open(path_of("o2/sub/f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(f >= 0);
    REQUIRE(write(f, "in o2\n", 6) == 6);
    close(f);
    unlink(path_of("o2/rel"));
    unlink(path_of("o2/abs"));
    unlink(path_of("o2/up"));
    unlink(path_of("o2/sub/abssub"));
    REQUIRE(symlink("sub/f", path_of("o2/rel")) == 0);
    REQUIRE(symlink("/etc/passwd", path_of("o2/abs")) == 0);
    REQUIRE(symlink("../..", path_of("o2/up")) == 0);
    REQUIRE(symlink("/sub/f", path_of("o2/sub/abssub")) == 0);
    int dfd = open(path_of("o2"), O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);

    out("plain: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0, 0)));
    out("beneath sub/f: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath sub/../sub/f: %s\n", o2r(o2(dfd, "sub/../sub/f", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath ../o2/sub/f: %s\n", o2r(o2(dfd, "../o2/sub/f", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath absolute: %s\n", o2r(o2(dfd, "/etc/passwd", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath relative symlink: %s\n", o2r(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath absolute symlink: %s\n", o2r(o2(dfd, "abs", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("beneath symlink going up: %s\n", o2r(o2(dfd, "up/x", O_RDONLY, 0, RESOLVE_BENEATH)));
    out("in_root /sub/f: %s\n", o2r(o2(dfd, "/sub/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    out("in_root ../../sub/f: %s\n", o2r(o2(dfd, "../../sub/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    out("in_root absolute symlink out: %s\n", o2r(o2(dfd, "abs", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    out("in_root absolute symlink in: %s\n", o2r(o2(dfd, "sub/abssub", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    out("in_root up/sub/f: %s\n", o2r(o2(dfd, "up/sub/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    out("no_symlinks rel: %s\n", o2r(o2(dfd, "rel", O_RDONLY, 0, RESOLVE_NO_SYMLINKS)));
    out("no_symlinks sub/f: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS)));
    out("no_symlinks rel O_PATH|O_NOFOLLOW: %s\n", o2r(o2(dfd, "rel", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS)));
    out("create beneath: %s\n", o2r(o2(dfd, "sub/new", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH)));
    out("create beneath outside: %s\n", o2r(o2(dfd, "../o2-new", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH)));
    out("beneath + in_root: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT)));
    out("unknown resolve: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0, 0x400)));
    out("unknown flag: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY | (1ULL << 40), 0, 0)));
    out("mode without O_CREAT: %s\n", o2r(o2(dfd, "sub/f", O_RDONLY, 0644, 0)));
    out("mode out of range: %s\n", o2r(o2(dfd, "sub/g", O_RDWR | O_CREAT, 010000, 0)));
    out("O_PATH with O_RDWR: %s\n", o2r(o2(dfd, "sub/f", O_PATH | O_RDWR, 0, 0)));
    out("cached create: %s\n", o2r(o2(dfd, "sub/f", O_RDWR | O_CREAT, 0, RESOLVE_CACHED)));

    struct {
        struct open_how how;
        unsigned long long extra;
    } big = {{.flags = O_RDONLY}, 0};
    out("bigger struct, zero tail: %s\n", o2r(syscall(SYS_openat2, dfd, "sub/f", &big, sizeof big)));
    big.extra = 1;
    out("bigger struct, non-zero tail: %s\n", o2r(syscall(SYS_openat2, dfd, "sub/f", &big, sizeof big)));
    out("small struct: %s\n", o2r(syscall(SYS_openat2, dfd, "sub/f", &big, 16)));
    out("bad pointer: %s\n", o2r(syscall(SYS_openat2, dfd, "sub/f", (void *)8, 24)));

    /* O_PATH: names a file, allows no I/O. */
    int op = open(path_of("o2/sub/f"), O_PATH);
    REQUIRE(op >= 0);
    char c;
    out("read O_PATH: %s\n", res(read(op, &c, 1)));
    struct stat st = {0};
    int fr = fstat(op, &st); /* before reading st: argument evaluation order is unspecified */
    out("fstat O_PATH: %s, size %lld\n", fr == 0 ? "ok" : err(errno), (long long)st.st_size);
    out("F_GETFL O_PATH: %s\n", (fcntl(op, F_GETFL) & O_PATH) ? "has O_PATH" : "no");
    int od = open(path_of("o2/sub"), O_PATH | O_DIRECTORY);
    out("openat from an O_PATH dir: %s\n", o2r(openat(od, "f", O_RDONLY)));
    out("O_PATH of a symlink with O_NOFOLLOW: %s\n", o2r(open(path_of("o2/rel"), O_PATH | O_NOFOLLOW)));
    close(op);
    close(od);
    close(dfd);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        out("usage: splice BASE [SECTION...]\n");
        return 2;
    }
    base = argv[1];
    static const struct section sections[] = {
        {"sendfile", sendfile_section},
        {"splice", splice_section},
        {"copy_file_range", copy_section},
        {"openat2", openat2_section},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc - 1, argv + 1);
}
