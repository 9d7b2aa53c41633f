/*
 * fork(2) and memory: a child gets a copy-on-write snapshot of the parent's private memory
 * (data, bss, heap, stack, private anonymous and private file mappings), writes on either
 * side stay on that side, MAP_SHARED memory stays shared, and protections are inherited.
 * Writes no files (the sandbox's root is read-only).
 *
 * usage: cow_fork [SECTION...]   (sections: private shared file nested protect madvise many)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define BIG (8u << 20) /* 8 MiB of private anonymous memory */

static int data_array[4096] = {1, 2, 3}; /* .data */
static int bss_array[4096];              /* .bss */

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7 + (i >> 12));
}

/* Exit status of a child that ran `fn` and returned its own failure count. */
static int wait_code(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 1000 + WTERMSIG(st);
}

static void write_all(int fd, const void *p, size_t n) {
    REQUIRE(write(fd, p, n) == (ssize_t)n);
}

static void read_all(int fd, void *p, size_t n) {
    REQUIRE(read(fd, p, n) == (ssize_t)n);
}

/* Private memory of every kind: the child's writes are its own, and the parent's writes
 * after fork are not seen by the child. */
static void section_private(void) {
    unsigned char stack_array[3 * PAGE];
    unsigned char *heap = malloc(1 << 20);
    unsigned char *anon = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Never touched before fork: the child's first write must not show in the parent. */
    unsigned char *untouched = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(heap && anon != MAP_FAILED && untouched != MAP_FAILED);
    fill(stack_array, sizeof stack_array, 1);
    fill(heap, 1 << 20, 2);
    fill(anon, BIG, 3);
    for (int i = 0; i < 4096; i++)
        data_array[i] = i * 3, bss_array[i] = i * 5;
    uint64_t h_stack = fnv1a(stack_array, sizeof stack_array), h_heap = fnv1a(heap, 1 << 20),
             h_anon = fnv1a(anon, BIG), h_data = fnv1a(data_array, sizeof data_array),
             h_bss = fnv1a(bss_array, sizeof bss_array), h_untouched = fnv1a(untouched, 16 * PAGE);

    int to_child[2], to_parent[2];
    REQUIRE(pipe(to_child) == 0 && pipe(to_parent) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        /* The child sees the parent's memory as it was at fork. */
        bad += fnv1a(stack_array, sizeof stack_array) != h_stack;
        bad += fnv1a(heap, 1 << 20) != h_heap;
        bad += fnv1a(anon, BIG) != h_anon;
        bad += fnv1a(data_array, sizeof data_array) != h_data;
        bad += fnv1a(bss_array, sizeof bss_array) != h_bss;
        bad += fnv1a(untouched, 16 * PAGE) != h_untouched;
        /* It writes its own values everywhere... */
        fill(stack_array, sizeof stack_array, 11);
        fill(heap, 1 << 20, 12);
        for (size_t off = 0; off < BIG; off += PAGE)
            anon[off + 5] ^= 0xff; /* every page of the big mapping */
        data_array[7] = -1;
        bss_array[4095] = -1;
        memset(untouched, 0xab, 16 * PAGE);
        write_all(to_parent[1], "w", 1);
        /* ...then the parent writes its own; the child must still see only its own. */
        char c;
        read_all(to_child[0], &c, 1);
        unsigned char expect_stack[3 * PAGE];
        fill(expect_stack, sizeof expect_stack, 11);
        bad += memcmp(stack_array, expect_stack, sizeof expect_stack) != 0;
        bad += heap[0] != (unsigned char)12;
        bad += data_array[7] != -1 || data_array[8] != 24;
        bad += bss_array[4095] != -1 || bss_array[0] != 0;
        bad += untouched[0] != 0xab || untouched[16 * PAGE - 1] != 0xab;
        unsigned char a5 = anon[5];
        fill(anon, 16, 3);
        bad += a5 != (unsigned char)(anon[5] ^ 0xff);
        _exit(bad);
    }
    char c;
    read_all(to_parent[0], &c, 1);
    check("parent's private memory unchanged by the child's writes",
          fnv1a(stack_array, sizeof stack_array) == h_stack && fnv1a(heap, 1 << 20) == h_heap &&
              fnv1a(anon, BIG) == h_anon && fnv1a(data_array, sizeof data_array) == h_data &&
              fnv1a(bss_array, sizeof bss_array) == h_bss);
    check("parent's untouched pages still zero after the child wrote them",
          fnv1a(untouched, 16 * PAGE) == h_untouched && untouched[0] == 0);
    /* Now the parent writes after fork. */
    fill(stack_array, sizeof stack_array, 21);
    heap[0] = 99;
    data_array[8] = 77;
    bss_array[0] = 77;
    untouched[0] = 1;
    for (size_t off = 0; off < BIG; off += PAGE)
        anon[off + 5] = 0;
    write_all(to_child[1], "p", 1);
    int bad = wait_code(pid);
    out("child's failed checks: %d\n", bad);
    check("child saw the fork-time snapshot, its own writes and not the parent's later writes", bad == 0);
    unsigned char expect_stack[3 * PAGE];
    fill(expect_stack, sizeof expect_stack, 21);
    check("parent sees its own writes after the child exited",
          memcmp(stack_array, expect_stack, sizeof expect_stack) == 0 && heap[0] == 99 &&
              data_array[8] == 77 && bss_array[0] == 77 && untouched[0] == 1 && anon[BIG - PAGE + 5] == 0);
    close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
    munmap(anon, BIG);
    munmap(untouched, 16 * PAGE);
    free(heap);
}

/* MAP_SHARED anonymous memory is the same memory in both processes, both ways. */
static void section_shared(void) {
    volatile unsigned char *sh = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    sh[0] = 1;
    int to_child[2], to_parent[2];
    REQUIRE(pipe(to_child) == 0 && pipe(to_parent) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = sh[0] != 1;
        for (int i = 0; i < 64; i++)
            sh[i * PAGE + 1] = (unsigned char)(i + 1);
        write_all(to_parent[1], "w", 1);
        char c;
        read_all(to_child[0], &c, 1);
        bad += sh[2] != 42 || sh[63 * PAGE + 2] != 43;
        _exit(bad);
    }
    char c;
    read_all(to_parent[0], &c, 1);
    int all = 1;
    for (int i = 0; i < 64; i++)
        all &= sh[i * PAGE + 1] == i + 1;
    check("parent sees the child's writes to MAP_SHARED|MAP_ANONYMOUS memory", all);
    sh[2] = 42;
    sh[63 * PAGE + 2] = 43;
    write_all(to_child[1], "p", 1);
    check("child sees the parent's later writes to the shared memory", wait_code(pid) == 0);
    close(to_child[0]), close(to_child[1]), close(to_parent[0]), close(to_parent[1]);
    munmap((void *)sh, 64 * PAGE);
}

/* MAP_PRIVATE mapping of a file (the program's own executable, opened read-only: the
 * sandbox's root is read-only): the child's writes change neither the parent's view nor the
 * file, and the parent's private copy made before fork is what the child sees. */
static const char *self_path;

static void section_file(void) {
    int fd = open(self_path, O_RDONLY);
    REQUIRE(fd >= 0);
    unsigned char orig[4 * PAGE];
    REQUIRE(pread(fd, orig, sizeof orig, 0) == (ssize_t)sizeof orig);
    unsigned char *priv = mmap(NULL, sizeof orig, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const volatile unsigned char *shared = mmap(NULL, sizeof orig, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(priv != MAP_FAILED && shared != MAP_FAILED);
    check("private mapping shows the file", memcmp(priv, orig, sizeof orig) == 0);
    priv[PAGE] = (unsigned char)(orig[PAGE] ^ 0x11); /* the parent's private copy of page 1 */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = priv[PAGE] != (unsigned char)(orig[PAGE] ^ 0x11) || priv[0] != orig[0] || priv[2 * PAGE] != orig[2 * PAGE];
        priv[0] ^= 0x22;          /* a file page nobody wrote before */
        priv[PAGE + 1] ^= 0x33;   /* the parent's private copy */
        priv[3 * PAGE + 5] ^= 0x44;
        bad += priv[0] != (unsigned char)(orig[0] ^ 0x22);
        _exit(bad);
    }
    int bad = wait_code(pid);
    check("child sees the parent's private file pages as at fork", bad == 0);
    check("parent's MAP_PRIVATE file pages unchanged by the child",
          priv[0] == orig[0] && priv[PAGE] == (unsigned char)(orig[PAGE] ^ 0x11) && priv[PAGE + 1] == orig[PAGE + 1] &&
              priv[3 * PAGE + 5] == orig[3 * PAGE + 5]);
    unsigned char now[4 * PAGE];
    REQUIRE(pread(fd, now, sizeof now, 0) == (ssize_t)sizeof now);
    check("the file and a MAP_SHARED view of it show none of the private writes",
          memcmp(now, orig, sizeof orig) == 0 && shared[0] == orig[0] && shared[PAGE] == orig[PAGE] &&
              shared[PAGE + 1] == orig[PAGE + 1]);
    munmap(priv, sizeof orig);
    munmap((void *)shared, sizeof orig);
    close(fd);
}

/* A grandchild forked after the child's write sees the child's value; the parent does not. */
static void section_nested(void) {
    unsigned char *anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(anon != MAP_FAILED);
    memset(anon, 1, 4 * PAGE);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        memset(anon, 2, PAGE);
        pid_t g = fork();
        if (g < 0)
            _exit(50);
        if (g == 0) {
            int bad = anon[0] != 2 || anon[PAGE] != 1;
            memset(anon, 3, 2 * PAGE);
            _exit(bad);
        }
        int gbad = wait_code(g);
        _exit(gbad + (anon[0] != 2) + (anon[PAGE] != 1));
    }
    check("grandchild saw the child's write, and neither's writes leaked upwards", wait_code(pid) == 0);
    check("parent still sees its own values", anon[0] == 1 && anon[PAGE] == 1 && anon[4 * PAGE - 1] == 1);
    munmap(anon, 4 * PAGE);
}

/* A read-only private page stays read-only in the child: writing it kills the child with
 * SIGSEGV; a copy-on-write page of the parent does not become writable through the child. */
static void section_protect(void) {
    unsigned char *ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(ro != MAP_FAILED);
    ro[0] = 7;
    REQUIRE(mprotect(ro, PAGE, PROT_READ) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile unsigned char *)ro)[0] = 8;
        _exit(0);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    check("child writing an inherited read-only page dies of SIGSEGV", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    check("the page keeps its value", ro[0] == 7);
    /* The child may make its copy writable; the parent's page stays read-only and unchanged. */
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (mprotect(ro, PAGE, PROT_READ | PROT_WRITE) != 0)
            _exit(60);
        ro[0] = 9;
        _exit(ro[0] == 9 ? 0 : 61);
    }
    check("child can mprotect its copy writable and write it", wait_code(pid) == 0);
    check("parent's page unchanged", ro[0] == 7);
    munmap(ro, PAGE);
}

/* MADV_DONTNEED in the child drops the child's private pages (they read as zero) and
 * leaves the parent's alone. */
static void section_madvise(void) {
    unsigned char *anon = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(anon != MAP_FAILED);
    memset(anon, 0x5a, 8 * PAGE);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        anon[0] = 1;
        if (madvise(anon, 8 * PAGE, MADV_DONTNEED) != 0)
            _exit(70);
        int bad = 0;
        for (int i = 0; i < 8 * PAGE; i += 512)
            bad |= anon[i] != 0;
        _exit(bad);
    }
    check("child's pages read as zero after MADV_DONTNEED", wait_code(pid) == 0);
    int all = 1;
    for (int i = 0; i < 8 * PAGE; i++)
        all &= anon[i] == 0x5a;
    check("parent's pages keep their contents", all);
    munmap(anon, 8 * PAGE);
}

/* Many children, one after another, each changing a different page: the parent's memory is
 * untouched and each child sees the parent's memory, not an earlier sibling's writes. */
static void section_many(void) {
    enum { N = 32 };
    unsigned char *anon = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(anon != MAP_FAILED);
    fill(anon, N * PAGE, 9);
    uint64_t h = fnv1a(anon, N * PAGE);
    int bad_children = 0;
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int bad = fnv1a(anon, N * PAGE) != h;
            memset(anon + i * PAGE, 0, PAGE);
            _exit(bad);
        }
        bad_children += wait_code(pid) != 0;
    }
    out("children that saw a sibling's write: %d of %d\n", bad_children, N);
    check("parent's memory unchanged after 32 children wrote their copies", fnv1a(anon, N * PAGE) == h);
    munmap(anon, N * PAGE);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    static const struct section sections[] = {
        {"private", section_private}, {"shared", section_shared},   {"file", section_file},
        {"nested", section_nested},   {"protect", section_protect}, {"madvise", section_madvise},
        {"many", section_many},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
