/*
 * Exercises file I/O, directory, memory and time syscalls and prints only results that are
 * the same on every run and every (correct) kernel: sizes, checksums, errno names, yes/no
 * facts. The test runs it natively and in rvisor and compares stdout and exit status.
 *
 * usage: syscalls [io|fs|mm|time|all]   (default: all)
 * Exit status: the number of failed checks (0 natively).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok) {
    printf("%s: %s\n", what, ok ? "yes" : "NO");
    if (!ok)
        failures++;
}

static const char *err(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* Prints the result of a call that is expected to fail, with its errno name. The call is made
 * before errno is read (argument evaluation order is unspecified, so not inside printf). */
#define SHOW(what, expr)                                                        \
    do {                                                                        \
        errno = 0;                                                              \
        long long r_ = (long long)(expr);                                       \
        int e_ = errno;                                                         \
        printf("%s: %lld %s\n", what, r_, r_ < 0 ? err(e_) : "ok");             \
    } while (0)

static void print_hex(const char *what, const unsigned char *p, ssize_t n) {
    printf("%s: %zd bytes:", what, n);
    for (ssize_t i = 0; i < n; i++)
        printf(" %02x", p[i]);
    printf("\n");
}

/* Reads a whole file with read(2) in chunks of `chunk` bytes. */
static void read_whole(const char *path, size_t chunk, uint64_t *sum, off_t *total) {
    static unsigned char buf[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *sum = FNV_INIT;
    *total = 0;
    if (fd < 0) {
        printf("open %s: %s\n", path, err(errno));
        failures++;
        return;
    }
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0) {
            printf("read %s: %s\n", path, err(errno));
            failures++;
            break;
        }
        if (n == 0)
            break;
        *sum = fnv1a(*sum, buf, n);
        *total += n;
    }
    close(fd);
}

static void test_io(void) {
    printf("== io\n");
    uint64_t sum;
    off_t total;
    read_whole("/etc/os-release", 7, &sum, &total);
    printf("os-release: %lld bytes, fnv %016llx\n", (long long)total, (unsigned long long)sum);
    off_t os_release_size = total;
    read_whole("/bin/busybox", 65536, &sum, &total);
    printf("busybox: %lld bytes, fnv %016llx\n", (long long)total, (unsigned long long)sum);

    int fd = open("/etc/os-release", O_RDONLY);
    if (fd < 0) {
        printf("open: %s\n", err(errno));
        failures++;
        return;
    }
    unsigned char buf[64];
    off_t end = lseek(fd, 0, SEEK_END);
    check("lseek SEEK_END equals the bytes read", end == os_release_size);
    struct stat st;
    check("fstat size equals lseek SEEK_END", fstat(fd, &st) == 0 && st.st_size == end);
    printf("lseek SEEK_SET 7: %lld\n", (long long)lseek(fd, 7, SEEK_SET));
    print_hex("read 5 at 7", buf, read(fd, buf, 5));
    printf("lseek SEEK_CUR 0: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    print_hex("pread 10 at 3", buf, pread(fd, buf, 10, 3));
    printf("offset unchanged by pread: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("pread past end: %zd\n", pread(fd, buf, sizeof buf, end + 100));
    SHOW("lseek negative", lseek(fd, -1, SEEK_SET));
    SHOW("write to read-only fd", write(fd, "x", 1));
    close(fd);
    SHOW("read closed fd", read(fd, buf, 1));

    int null = open("/dev/null", O_WRONLY);
    printf("write /dev/null: %zd\n", write(null, "0123456789", 10));
    close(null);
    fflush(stdout);
    static const char direct[] = "write(1) directly: ok\n";
    check("write(1) returns full length", write(1, direct, sizeof direct - 1) == sizeof direct - 1);
}

struct entry {
    char name[256];
    unsigned char type;
};

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static const char *type_name(unsigned t) {
    switch (t) {
    case DT_REG: return "reg";
    case DT_DIR: return "dir";
    case DT_LNK: return "lnk";
    case DT_UNKNOWN: return "unknown";
    default: return "other";
    }
}

static void test_fs(void) {
    printf("== fs\n");
    const char *dir = "/usr/share/doc/busybox-static";
    int dfd = openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        printf("openat %s: %s\n", dir, err(errno));
        failures++;
        return;
    }
    /* A small buffer so that the listing takes several getdents64 calls. */
    static struct entry entries[512];
    int count = 0, calls = 0;
    char buf[96] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n < 0) {
            printf("getdents64: %s\n", err(errno));
            failures++;
            break;
        }
        if (n == 0)
            break;
        calls++;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (count < 512) {
                snprintf(entries[count].name, sizeof entries[count].name, "%s", d->d_name);
                entries[count].type = d->d_type;
                count++;
            }
            off += d->d_reclen;
        }
    }
    qsort(entries, count, sizeof entries[0], cmp_entry);
    printf("getdents64 %s: %d entries\n", dir, count);
    for (int i = 0; i < count; i++)
        printf("  %s %s\n", type_name(entries[i].type), entries[i].name);
    check("getdents64 needed more than one call", calls > 1);

    struct stat st;
    long r = syscall(SYS_newfstatat, dfd, "copyright", &st, 0);
    printf("newfstatat copyright: %ld size %lld mode %o\n", r, (long long)st.st_size, st.st_mode);
    int fd = openat(dfd, "copyright", O_RDONLY);
    struct stat st2;
    check("openat relative to dirfd + fstat agree with newfstatat",
          fd >= 0 && fstat(fd, &st2) == 0 && st2.st_size == st.st_size && st2.st_mode == st.st_mode);
    close(fd);
    r = syscall(SYS_newfstatat, dfd, "examples", &st, 0);
    printf("newfstatat examples: %ld isdir %d\n", r, S_ISDIR(st.st_mode));
    r = syscall(SYS_newfstatat, AT_FDCWD, "/etc/os-release", &st, AT_SYMLINK_NOFOLLOW);
    printf("newfstatat nofollow /etc/os-release: %ld islnk %d\n", r, S_ISLNK(st.st_mode));
    r = syscall(SYS_newfstatat, AT_FDCWD, "/etc/os-release", &st, 0);
    printf("newfstatat follow /etc/os-release: %ld isreg %d size %lld\n", r, S_ISREG(st.st_mode),
           (long long)st.st_size);
    r = syscall(SYS_newfstatat, AT_FDCWD, "/bin/busybox", &st, 0);
    printf("newfstatat /bin/busybox: %ld size %lld mode %o\n", r, (long long)st.st_size, st.st_mode);
    SHOW("newfstatat /nonexistent/x", syscall(SYS_newfstatat, AT_FDCWD, "/nonexistent/x", &st, 0));

    char link[256];
    ssize_t n = readlinkat(AT_FDCWD, "/etc/os-release", link, sizeof link - 1);
    if (n >= 0)
        link[n] = 0;
    printf("readlinkat /etc/os-release: %zd \"%s\"\n", n, n >= 0 ? link : err(errno));
    n = readlinkat(AT_FDCWD, "/bin", link, sizeof link - 1);
    if (n >= 0)
        link[n] = 0;
    printf("readlinkat /bin: %zd \"%s\"\n", n, n >= 0 ? link : err(errno));
    SHOW("readlinkat regular file", readlinkat(dfd, "copyright", link, sizeof link));
    SHOW("openat missing", openat(dfd, "missing", O_RDONLY));
    SHOW("openat file with O_DIRECTORY", openat(dfd, "copyright", O_RDONLY | O_DIRECTORY));
    SHOW("openat directory for writing", openat(AT_FDCWD, dir, O_WRONLY));
    close(dfd);
}

static void test_mm(void) {
    printf("== mm\n");
    const size_t big = 64u << 20;
    uint64_t *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap 64 MiB: %s\n", err(errno));
        failures++;
        return;
    }
    size_t words = big / 8;
    check("fresh anonymous memory reads as zero", p[0] == 0 && p[words / 2] == 0 && p[words - 1] == 0);
    for (size_t i = 0; i < words; i++)
        p[i] = i * 0x9e3779b97f4a7c15ULL;
    uint64_t sum = 0;
    for (size_t i = 0; i < words; i++)
        sum += p[i] ^ (i >> 3);
    printf("64 MiB anonymous mapping checksum: %016llx\n", (unsigned long long)sum);

    check("mprotect PROT_READ", mprotect(p, big, PROT_READ) == 0);
    uint64_t sum2 = 0;
    for (size_t i = 0; i < words; i++)
        sum2 += p[i] ^ (i >> 3);
    check("read-only mapping reads the same", sum2 == sum);
    check("mprotect back to PROT_READ|PROT_WRITE", mprotect(p, big, PROT_READ | PROT_WRITE) == 0);
    p[12345] = 42;
    check("writable again", p[12345] == 42);

    /* Unmap a page in the middle; the pages around it stay. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    check("munmap one page in the middle", munmap((char *)p + 16 * page, page) == 0);
    check("pages around the hole keep their data",
          p[16 * page / 8 - 1] == (16 * page / 8 - 1) * 0x9e3779b97f4a7c15ULL &&
              p[17 * page / 8] == (17 * page / 8) * 0x9e3779b97f4a7c15ULL);
    check("munmap the rest", munmap(p, big) == 0);
    SHOW("mmap length 0", (intptr_t)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    SHOW("munmap unaligned address", munmap((char *)p + 1, page));

    /* A private file mapping shows the file's bytes. */
    int fd = open("/etc/os-release", O_RDONLY);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        char *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        char *b = malloc(st.st_size);
        check("file mapping matches read()", m != MAP_FAILED && b &&
                                                 read(fd, b, st.st_size) == st.st_size &&
                                                 memcmp(m, b, st.st_size) == 0);
        printf("file mapping fnv: %016llx\n",
               m != MAP_FAILED ? (unsigned long long)fnv1a(FNV_INIT, (void *)m, st.st_size) : 0ULL);
        if (m != MAP_FAILED)
            munmap(m, st.st_size);
        free(b);
        close(fd);
    } else {
        printf("open /etc/os-release: %s\n", err(errno));
        failures++;
    }

    /* brk through the raw syscall: grow by 1 MiB, use it, shrink back. */
    uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
    uintptr_t grown = (uintptr_t)syscall(SYS_brk, cur + (1u << 20));
    check("brk grows by 1 MiB", grown == cur + (1u << 20));
    if (grown == cur + (1u << 20)) {
        volatile char *heap = (volatile char *)cur;
        heap[0] = 1;
        heap[(1u << 20) - 1] = 2;
        check("new brk memory is usable", heap[0] + heap[(1u << 20) - 1] == 3);
    }
    uintptr_t shrunk = (uintptr_t)syscall(SYS_brk, cur);
    check("brk shrinks back", shrunk == cur);
    check("brk(0) reports the current break", (uintptr_t)syscall(SYS_brk, 0) == cur);
}

static long long ns(const struct timespec *t) {
    return t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void test_time(void) {
    printf("== time\n");
    struct timespec a, b, c, res, real;
    check("clock_gettime(CLOCK_MONOTONIC)", clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    volatile unsigned long spin = 0;
    for (int i = 0; i < 1000000; i++)
        spin += i;
    clock_gettime(CLOCK_MONOTONIC, &b);
    check("monotonic does not go back", ns(&b) >= ns(&a));
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    check("nanosleep 10 ms returns 0", nanosleep(&ten_ms, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &c);
    check("monotonic advanced", ns(&c) > ns(&a));
    check("slept at least 10 ms", ns(&c) - ns(&b) >= 10 * 1000 * 1000);
    check("clock_getres(CLOCK_MONOTONIC) <= 1 ms",
          clock_getres(CLOCK_MONOTONIC, &res) == 0 && ns(&res) > 0 && ns(&res) <= 1000000);
    check("clock_gettime(CLOCK_REALTIME)", clock_gettime(CLOCK_REALTIME, &real) == 0);
    check("realtime is after 2020", real.tv_sec > 1577836800);
    struct timeval tv;
    check("gettimeofday within 5 s of CLOCK_REALTIME",
          gettimeofday(&tv, NULL) == 0 && llabs((long long)tv.tv_sec - real.tv_sec) <= 5);
    check("time() within 5 s of CLOCK_REALTIME", llabs((long long)time(NULL) - real.tv_sec) <= 5);
    SHOW("clock_gettime bad clock", clock_gettime(12345, &a));
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    int all = strcmp(what, "all") == 0;
    if (all || strcmp(what, "io") == 0)
        test_io();
    if (all || strcmp(what, "fs") == 0)
        test_fs();
    if (all || strcmp(what, "mm") == 0)
        test_mm();
    if (all || strcmp(what, "time") == 0)
        test_time();
    printf("failures: %d\n", failures);
    return failures > 125 ? 125 : failures;
}
