/*
 * futex(2) called directly: FUTEX_WAIT timeouts (relative, absolute, bitset), EAGAIN on a
 * value mismatch, argument errors, FUTEX_WAKE counts and address/bitset matching between
 * threads, and shared futexes between two processes (MAP_SHARED anonymous memory inherited
 * through fork, and one file mapped by both) where the PRIVATE flag must not match.
 *
 * Wake counts are made deterministic without sleeping: the futex word is never changed, so a
 * waiter that is not asleep yet falls asleep later, and the waker repeats FUTEX_WAKE until it
 * has woken everybody (bounded by a deadline).
 *
 * usage: futex [SECTION...]   (sections: wait errors wake bitset shared private file)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long futex(volatile void *uaddr, int op, uint32_t val, const struct timespec *ts, void *uaddr2,
                  uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

/* The result of a futex call as "0" / "1" / "-1 EAGAIN". */
static const char *res(long r, int e) {
    static char buf[8][64];
    static int n;
    char *b = buf[n++ % 8];
    if (r < 0)
        snprintf(b, 64, "-1 %s", err(e));
    else
        snprintf(b, 64, "%ld", r);
    return b;
}

#define CALL(what, expr)                                                                   \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (expr);                                                                  \
        int e_ = errno;                                                                    \
        out("%s: %s\n", what, res(r_, e_));                                                \
    } while (0)

static const int64_t DEADLINE_NS = 10LL * 1000000000; /* give up waking after 10 s */

/* FUTEX_WAKE `op` on `uaddr` with `nr` until `want` waiters were woken in total. Returns the
 * total; sets *max_per_call to the largest single result. */
static long wake_until(volatile uint32_t *uaddr, int op, int nr, long want, uint32_t bitset, long *max_per_call) {
    long total = 0;
    *max_per_call = 0;
    int64_t start = now_ns();
    while (total < want && now_ns() - start < DEADLINE_NS) {
        long r = futex(uaddr, op, nr, NULL, NULL, bitset);
        if (r < 0)
            return -1000 - errno;
        if (r > *max_per_call)
            *max_per_call = r;
        total += r;
        if (total < want)
            sched_yield();
    }
    if (total < want) {
        /* Whoever was not woken would block the joins below forever. */
        out("gave up after 10 s: woke %ld of %ld waiters\n", total, want);
        _exit(97);
    }
    return total;
}

/* ---- wait: timeouts and value mismatch ---- */
static void section_wait(void) {
    static uint32_t word = 7;
    struct timespec rel = {0, 50 * 1000000};

    CALL("FUTEX_WAIT, value differs", futex(&word, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0));
    CALL("FUTEX_WAIT (shared), value differs", futex(&word, FUTEX_WAIT, 8, NULL, NULL, 0));

    int64_t t0 = now_ns();
    CALL("FUTEX_WAIT 50 ms, nobody wakes", futex(&word, FUTEX_WAIT_PRIVATE, 7, &rel, NULL, 0));
    int64_t waited = now_ns() - t0;
    check("waited at least 50 ms", waited >= 50 * 1000000);
    check("and less than 5 s", waited < 5000000000LL);

    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 30 * 1000000;
    if (abs.tv_nsec >= 1000000000)
        abs.tv_sec++, abs.tv_nsec -= 1000000000;
    CALL("FUTEX_WAIT_BITSET absolute monotonic deadline", futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &abs, NULL, FUTEX_BITSET_MATCH_ANY));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    check("returned after the deadline",
          now.tv_sec > abs.tv_sec || (now.tv_sec == abs.tv_sec && now.tv_nsec >= abs.tv_nsec));

    /* A CLOCK_REALTIME deadline in the past times out at once. */
    struct timespec past;
    clock_gettime(CLOCK_REALTIME, &past);
    past.tv_sec -= 10;
    t0 = now_ns();
    CALL("FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME deadline in the past",
         futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &past, NULL, FUTEX_BITSET_MATCH_ANY));
    check("returned within 1 s", now_ns() - t0 < 1000000000LL);

    struct timespec zero = {0, 0};
    CALL("FUTEX_WAIT with a zero timeout", futex(&word, FUTEX_WAIT_PRIVATE, 7, &zero, NULL, 0));
    CALL("FUTEX_WAKE with nobody waiting", futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
}

/* ---- errors: bad arguments ---- */
static void section_errors(void) {
    static uint32_t words[4] = {7, 7, 7, 7};
    struct timespec bad_ns = {0, 1000000000};
    struct timespec neg = {-1, 0};
    CALL("FUTEX_WAIT, tv_nsec = 1e9", futex(&words[0], FUTEX_WAIT_PRIVATE, 7, &bad_ns, NULL, 0));
    CALL("FUTEX_WAIT, tv_sec = -1", futex(&words[0], FUTEX_WAIT_PRIVATE, 7, &neg, NULL, 0));
    CALL("FUTEX_WAIT, misaligned address", futex((char *)&words[0] + 1, FUTEX_WAIT_PRIVATE, 7, NULL, NULL, 0));
    CALL("FUTEX_WAKE, misaligned address", futex((char *)&words[0] + 2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    CALL("FUTEX_WAIT, NULL address", futex(NULL, FUTEX_WAIT_PRIVATE, 7, NULL, NULL, 0));
    CALL("FUTEX_WAIT, unmapped address", futex((void *)0x1000, FUTEX_WAIT_PRIVATE, 7, NULL, NULL, 0));
    CALL("FUTEX_WAIT_BITSET, bitset 0", futex(&words[0], FUTEX_WAIT_BITSET_PRIVATE, 7, NULL, NULL, 0));
    CALL("FUTEX_WAKE_BITSET, bitset 0", futex(&words[0], FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0));
    CALL("futex op 99", futex(&words[0], 99, 0, NULL, NULL, 0));
}

/* ---- wake: 3 threads wait on one word, a 4th on another ---- */
static volatile uint32_t wake_word, other_word;
static atomic_int woken_ok;

static void *waiter(void *arg) {
    (void)arg;
    long r = futex(&wake_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    /* EAGAIN cannot happen: the word never changes. */
    if (r == 0)
        atomic_fetch_add(&woken_ok, 1);
    return (void *)(r == 0 ? 0L : (long)errno);
}

static void *other_waiter(void *arg) {
    (void)arg;
    struct timespec t = {0, 300 * 1000000};
    long r = futex(&other_word, FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0);
    return (void *)(r == 0 ? 0L : (long)errno);
}

static void section_wake(void) {
    pthread_t t[3], other;
    REQUIRE(pthread_create(&other, NULL, other_waiter, NULL) == 0);
    for (int i = 0; i < 3; i++)
        REQUIRE(pthread_create(&t[i], NULL, waiter, NULL) == 0);
    long max1;
    long total = wake_until(&wake_word, FUTEX_WAKE_PRIVATE, 1, 3, 0, &max1);
    out("waiters woken one FUTEX_WAKE(1) at a time: %ld\n", total);
    check("no FUTEX_WAKE(1) woke more than one", max1 <= 1);
    CALL("FUTEX_WAKE after everybody was woken", futex(&wake_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0));
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
    }
    out("waiters whose FUTEX_WAIT returned 0: %d\n", atomic_load(&woken_ok));
    void *r;
    pthread_join(other, &r);
    out("waiter on another word (300 ms timeout): %s\n", err((int)(long)r));

    /* FUTEX_WAKE(INT_MAX) wakes all of them, however many calls it takes to catch them asleep. */
    atomic_store(&woken_ok, 0);
    for (int i = 0; i < 3; i++)
        REQUIRE(pthread_create(&t[i], NULL, waiter, NULL) == 0);
    total = wake_until(&wake_word, FUTEX_WAKE_PRIVATE, INT_MAX, 3, 0, &max1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], &r);
    out("waiters woken by FUTEX_WAKE(INT_MAX): %ld, all returned 0: %s\n", total,
        atomic_load(&woken_ok) == 3 ? "yes" : "no");
}

/* ---- bitset: a wake with a disjoint bitset wakes nobody ---- */
static volatile uint32_t bits_word;

static void *bits_waiter(void *arg) {
    (void)arg;
    long r = futex(&bits_word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0x1);
    return (void *)(r == 0 ? 0L : (long)errno);
}

static void section_bitset(void) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, bits_waiter, NULL) == 0);
    long disjoint = 0;
    for (int i = 0; i < 200; i++) {
        disjoint += futex(&bits_word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2);
        sched_yield();
    }
    out("woken by 200 FUTEX_WAKE_BITSET with bitset 0x2: %ld\n", disjoint);
    long max1;
    long total = wake_until(&bits_word, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, 1, 0x3, &max1);
    out("woken by FUTEX_WAKE_BITSET with bitset 0x3: %ld\n", total);
    void *r;
    pthread_join(t, &r);
    out("FUTEX_WAIT_BITSET 0x1 returned: %s\n", err((int)(long)r));
    /* A plain FUTEX_WAKE matches any bitset. */
    REQUIRE(pthread_create(&t, NULL, bits_waiter, NULL) == 0);
    total = wake_until(&bits_word, FUTEX_WAKE_PRIVATE, 1, 1, 0, &max1);
    pthread_join(t, &r);
    out("woken by plain FUTEX_WAKE: %ld, wait returned %s\n", total, err((int)(long)r));
}

/* Exit status of a child, or 200 + signal. */
static int wait_code(pid_t pid) {
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

/* ---- shared: MAP_SHARED|MAP_ANONYMOUS word, fork, FUTEX_WAIT/WAKE without PRIVATE ---- */
static void section_shared(void) {
    volatile uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(w != MAP_FAILED);
    w[0] = 0;
    w[1] = 0;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child waits on w[0] until the parent wakes it... */
        long r = futex(&w[0], FUTEX_WAIT, 0, NULL, NULL, 0);
        if (r != 0)
            _exit(10 + errno % 100);
        /* ...then wakes the parent waiting on w[1], by value: set, then wake. */
        w[1] = 1;
        futex(&w[1], FUTEX_WAKE, 1, NULL, NULL, 0);
        _exit(0);
    }
    long max1;
    long total = wake_until(&w[0], FUTEX_WAKE, 1, 1, 0, &max1);
    out("parent's FUTEX_WAKE woke the child in the other process: %ld\n", total);
    /* Wait for the child's wake: the classic loop (the value may change before we sleep). */
    int ok = 1;
    int64_t start = now_ns();
    while (w[1] == 0 && now_ns() - start < DEADLINE_NS) {
        struct timespec t = {1, 0};
        long r = futex(&w[1], FUTEX_WAIT, 0, &t, NULL, 0);
        if (r < 0 && errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR)
            ok = 0;
    }
    check("parent saw the child's store and wake on the shared word", ok && w[1] == 1);
    out("child's status: %d\n", wait_code(pid));
    munmap((void *)w, 4096);
}

/* ---- private: the same shared memory, but FUTEX_PRIVATE_FLAG keys by address space ---- */
static void section_private(void) {
    volatile uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(w != MAP_FAILED);
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct timespec t = {0, 300 * 1000000};
        REQUIRE(write(p[1], "r", 1) == 1);
        long r = futex(&w[0], FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0);
        _exit(r == 0 ? 0 : errno == ETIMEDOUT ? 1 : 2);
    }
    close(p[1]);
    char c;
    REQUIRE(read(p[0], &c, 1) == 1);
    close(p[0]);
    long woken = 0;
    int st;
    int64_t start = now_ns();
    /* Private wakes from this process, until the child gives up (its timeout). */
    while (waitpid(pid, &st, WNOHANG) == 0 && now_ns() - start < DEADLINE_NS) {
        woken += futex(&w[0], FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        sched_yield();
    }
    out("child woken by the parent's FUTEX_WAKE_PRIVATE: %ld\n", woken);
    out("child's private wait ended with: %s\n",
        WIFEXITED(st) ? (WEXITSTATUS(st) == 0 ? "woken" : WEXITSTATUS(st) == 1 ? "ETIMEDOUT" : "other error") : "signal");
    munmap((void *)w, 4096);
}

/* ---- file: two processes map one file on their own; the futex key is the file page. The
 * file is the program's own executable, mapped read-only: FUTEX_WAIT only reads the word. ---- */
static const char *self_path;

static void section_file(void) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        /* A mapping of its own, of the file's second page only, at an unrelated address. */
        int cfd = open(self_path, O_RDONLY);
        if (cfd < 0)
            _exit(20);
        void *pad = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        (void)pad;
        volatile uint32_t *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, cfd, 4096);
        if (m == MAP_FAILED)
            _exit(21);
        uint32_t value = m[16];
        if (write(p[1], "r", 1) != 1)
            _exit(22);
        long r = futex(&m[16], FUTEX_WAIT, value, NULL, NULL, 0);
        _exit(r == 0 ? 0 : 30 + errno % 50);
    }
    close(p[1]);
    char c;
    REQUIRE(read(p[0], &c, 1) == 1);
    close(p[0]);
    int fd = open(self_path, O_RDONLY);
    REQUIRE(fd >= 0);
    volatile uint32_t *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    long max1;
    long total = wake_until(&m[1024 + 16], FUTEX_WAKE, 1, 1, 0, &max1);
    out("woke the other process's waiter through its own mapping of the file: %ld\n", total);
    out("child's status: %d\n", wait_code(pid));
    munmap((void *)m, 8192);
    close(fd);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    static const struct section sections[] = {
        {"wait", section_wait},     {"errors", section_errors},   {"wake", section_wake},
        {"bitset", section_bitset}, {"shared", section_shared},   {"private", section_private},
        {"file", section_file},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
