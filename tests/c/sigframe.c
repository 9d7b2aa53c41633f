/*
 * Where and how signal handlers run: on an alternate signal stack (sigaltstack, SA_ONSTACK,
 * nesting, stack overflow caught on the altstack), and synchronous faults that a handler
 * repairs and returns from (SIGSEGV on a read-only, PROT_NONE, unmapped or non-executable
 * page; SIGBUS past the end of a mapped file), with si_code, si_addr and the page-fault error
 * code in the ucontext. Writes no files (the sandbox's root is read-only).
 *
 * usage: sigframe [SECTION...]   (sections: altstack overflow segv-fix bus-fix)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>

#define PAGE 4096
#define ALT_SIZE (64 * 1024)

static char *alt_lo, *alt_hi;

static int on_altstack(const volatile void *p) {
    return (const char *)p >= alt_lo && (const char *)p < alt_hi;
}

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

/* ---- altstack ---- */
static volatile int usr1_on_alt, usr1_flags_onstack, usr1_eperm, usr2_on_alt, usr2_below, winch_on_alt;
static volatile uintptr_t usr1_local_addr;
static volatile int nested_winch;

static void on_usr2(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
    volatile char local = 0;
    usr2_on_alt = on_altstack(&local);
    usr2_below = (uintptr_t)&local < usr1_local_addr;
}

static void on_winch(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
    volatile char local = 0;
    winch_on_alt = on_altstack(&local);
}

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
    volatile char local = 0;
    usr1_local_addr = (uintptr_t)&local;
    usr1_on_alt = on_altstack(&local);
    stack_t cur;
    sigaltstack(NULL, &cur);
    usr1_flags_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
    /* The alternate stack cannot be changed while running on it. */
    static char other[ALT_SIZE];
    stack_t n = {.ss_sp = other, .ss_size = sizeof other, .ss_flags = 0};
    usr1_eperm = sigaltstack(&n, NULL) == -1 && errno == EPERM;
    raise(SIGUSR2); /* SA_ONSTACK handler, nested: further down the same alternate stack */
    if (nested_winch)
        raise(SIGWINCH); /* no SA_ONSTACK, but already on the altstack: stays there */
}

static void *thread_altstack(void *arg) {
    (void)arg;
    stack_t cur;
    sigaltstack(NULL, &cur);
    return (void *)(long)(cur.ss_flags == SS_DISABLE);
}

static void section_altstack(void) {
    stack_t old;
    REQUIRE(sigaltstack(NULL, &old) == 0);
    check("no alternate stack at start (SS_DISABLE)", old.ss_flags == SS_DISABLE);

    stack_t small = {.ss_sp = malloc(1024), .ss_size = 1024, .ss_flags = 0};
    errno = 0;
    out("sigaltstack smaller than MINSIGSTKSZ: %s\n", sigaltstack(&small, NULL) == 0 ? "ok" : err(errno));
    stack_t badflags = {.ss_sp = small.ss_sp, .ss_size = ALT_SIZE, .ss_flags = 0x1234};
    errno = 0;
    out("sigaltstack with unknown flags: %s\n", sigaltstack(&badflags, NULL) == 0 ? "ok" : err(errno));

    alt_lo = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(alt_lo != MAP_FAILED);
    alt_hi = alt_lo + ALT_SIZE;
    stack_t ss = {.ss_sp = alt_lo, .ss_size = ALT_SIZE, .ss_flags = 0};
    REQUIRE(sigaltstack(&ss, NULL) == 0);
    stack_t cur;
    REQUIRE(sigaltstack(NULL, &cur) == 0);
    check("sigaltstack reads back the stack", cur.ss_sp == alt_lo && cur.ss_size == ALT_SIZE && cur.ss_flags == 0);

    set_handler(SIGUSR1, on_usr1, SA_ONSTACK);
    set_handler(SIGUSR2, on_usr2, SA_ONSTACK);
    set_handler(SIGWINCH, on_winch, 0);
    nested_winch = 1;
    raise(SIGUSR1);
    check("SA_ONSTACK handler's local variable is inside the alternate stack", usr1_on_alt);
    check("sigaltstack in the handler reports SS_ONSTACK", usr1_flags_onstack);
    check("changing the alternate stack while on it fails with EPERM", usr1_eperm);
    check("nested SA_ONSTACK handler runs on the alternate stack too", usr2_on_alt);
    check("nested handler's frame is below the outer handler's", usr2_below);
    check("handler without SA_ONSTACK raised on the alternate stack stays on it", winch_on_alt);
    REQUIRE(sigaltstack(NULL, &cur) == 0);
    check("SS_ONSTACK is clear again after the handler returned", (cur.ss_flags & SS_ONSTACK) == 0);

    nested_winch = 0;
    winch_on_alt = -1;
    raise(SIGWINCH);
    check("handler without SA_ONSTACK runs on the normal stack", winch_on_alt == 0);

    pthread_t t;
    void *r;
    REQUIRE(pthread_create(&t, NULL, thread_altstack, NULL) == 0);
    pthread_join(t, &r);
    check("a new thread has no alternate stack", (long)r == 1);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        usr1_on_alt = 0;
        raise(SIGUSR1);
        _exit(usr1_on_alt ? 0 : 1);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    check("a forked child inherits the alternate stack", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    stack_t off = {.ss_flags = SS_DISABLE};
    REQUIRE(sigaltstack(&off, NULL) == 0);
    usr1_on_alt = -1;
    raise(SIGUSR1);
    check("after SS_DISABLE the SA_ONSTACK handler runs on the normal stack", usr1_on_alt == 0);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGWINCH, SIG_DFL);
    free(small.ss_sp);
}

/* ---- overflow: unbounded recursion; SIGSEGV handled on the alternate stack ---- */
static sigjmp_buf overflow_env;
static volatile int segv_on_alt, segv_code;

static void on_overflow(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    volatile char local = 0;
    segv_on_alt = on_altstack(&local);
    segv_code = si->si_code;
    siglongjmp(overflow_env, 1);
}

static volatile int never; /* keeps the compiler from calling the recursion infinite */

static int recurse(int depth) {
    volatile char frame[1024];
    if (never)
        return 0;
    frame[0] = (char)depth;
    frame[1023] = (char)depth;
    return recurse(depth + 1) + frame[0] + frame[1023];
}

static void section_overflow(void) {
    alt_lo = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(alt_lo != MAP_FAILED);
    alt_hi = alt_lo + ALT_SIZE;
    stack_t ss = {.ss_sp = alt_lo, .ss_size = ALT_SIZE, .ss_flags = 0};
    REQUIRE(sigaltstack(&ss, NULL) == 0);
    set_handler(SIGSEGV, on_overflow, SA_ONSTACK);
    if (sigsetjmp(overflow_env, 1) == 0) {
        recurse(0);
        out("recursion ended without a fault\n");
        failures++;
    } else {
        check("stack overflow caught by a SIGSEGV handler on the alternate stack", segv_on_alt);
        out("si_code: %s\n", codename(SIGSEGV, segv_code));
    }
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    check("SIGSEGV unblocked again after siglongjmp out of the handler", !sigismember(&now, SIGSEGV));
    /* The main stack works again: another, shallower call chain. */
    volatile char buf[64 * 1024];
    memset((char *)buf, 1, sizeof buf);
    check("main stack usable after recovery", buf[sizeof buf - 1] == 1);
    signal(SIGSEGV, SIG_DFL);
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
}

/* ---- segv-fix: the handler repairs the mapping and returns; the access is retried ---- */
enum fix { FIX_PROTECT, FIX_MAP };
static volatile int fix_how, fix_prot, faults, fault_code;
static volatile uintptr_t fault_addr, fault_ip;
static volatile long fault_err, fault_trapno;

static void on_segv_fix(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    faults++;
    fault_addr = (uintptr_t)si->si_addr;
    fault_code = si->si_code;
    fault_err = uc->uc_mcontext.gregs[REG_ERR];
    fault_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    fault_ip = uc->uc_mcontext.gregs[REG_RIP];
    void *page = (void *)(fault_addr & ~(uintptr_t)(PAGE - 1));
    if (fix_how == FIX_PROTECT)
        mprotect(page, PAGE, fix_prot);
    else
        mmap(page, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void report_fault(const char *what, uintptr_t expect_addr, int expect_write) {
    out("%s: %d fault(s), %s\n", what, faults, codename(SIGSEGV, fault_code));
    check("  si_addr is the faulting address", fault_addr == expect_addr);
    check("  trap number is 14 (page fault)", fault_trapno == 14);
    check(expect_write ? "  error code says write" : "  error code says read", ((fault_err & 2) != 0) == expect_write);
    faults = 0;
}

static void section_segv_fix(void) {
    set_handler(SIGSEGV, on_segv_fix, 0);
    volatile unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    p[0] = 1;
    p[PAGE] = 2;

    /* A write to a read-only page. */
    REQUIRE(mprotect((void *)p, PAGE, PROT_READ) == 0);
    fix_how = FIX_PROTECT, fix_prot = PROT_READ | PROT_WRITE;
    p[100] = 42;
    check("write to a read-only page succeeded after the handler's mprotect", p[100] == 42 && p[0] == 1);
    report_fault("write to a read-only page", (uintptr_t)&p[100], 1);

    /* A read of a PROT_NONE page. */
    REQUIRE(mprotect((void *)(p + PAGE), PAGE, PROT_NONE) == 0);
    fix_prot = PROT_READ;
    unsigned char v = p[PAGE + 8];
    check("read of a PROT_NONE page returned the page's data after the fix", v == 0 && p[PAGE] == 2);
    report_fault("read of a PROT_NONE page", (uintptr_t)&p[PAGE + 8], 0);

    /* A read of an unmapped page: the handler maps one there. */
    REQUIRE(munmap((void *)(p + 2 * PAGE), PAGE) == 0);
    fix_how = FIX_MAP;
    v = p[2 * PAGE + 16];
    check("read of an unmapped page returned 0 after the handler mapped it", v == 0);
    report_fault("read of an unmapped page", (uintptr_t)&p[2 * PAGE + 16], 0);

    /* A call into a readable, non-executable page holding `ret`. */
    volatile unsigned char *code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(code != MAP_FAILED);
    code[0] = 0xb8; /* mov eax, 7 */
    code[1] = 7, code[2] = 0, code[3] = 0, code[4] = 0;
    code[5] = 0xc3; /* ret */
    REQUIRE(mprotect((void *)code, PAGE, PROT_READ) == 0);
    fix_how = FIX_PROTECT, fix_prot = PROT_READ | PROT_EXEC;
    int (*fn)(void) = (int (*)(void))(uintptr_t)code;
    int r = fn();
    out("call into a non-executable page: returned %d after the fix, %d fault(s), %s\n", r, faults,
        codename(SIGSEGV, fault_code));
    check("  si_addr and rip are the page", fault_addr == (uintptr_t)code && fault_ip == (uintptr_t)code);
    check("  error code says instruction fetch", (fault_err & 16) != 0);
    faults = 0;
    signal(SIGSEGV, SIG_DFL);
    munmap((void *)p, 3 * PAGE);
    munmap((void *)code, PAGE);
}

/* ---- bus-fix: a mapped page wholly past the end of a file raises SIGBUS; the handler maps
 * anonymous memory over it and the read is retried. The file is the program's own
 * executable, read-only (the sandbox's root is read-only). ---- */
static const char *self_path;
static volatile int bus_faults, bus_code;
static volatile uintptr_t bus_addr;

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    bus_faults++;
    bus_code = si->si_code;
    bus_addr = (uintptr_t)si->si_addr;
    void *page = (void *)(bus_addr & ~(uintptr_t)(PAGE - 1));
    if (mmap(page, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != page)
        _exit(98);
}

static void section_bus_fix(void) {
    int fd = open(self_path, O_RDONLY);
    REQUIRE(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    REQUIRE(size > 0);
    size_t in_file = ((size_t)size + PAGE - 1) & ~(size_t)(PAGE - 1);
    volatile char *m = mmap(NULL, in_file + PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    char first[4];
    REQUIRE(pread(fd, first, 4, 0) == 4);
    check("pages inside the file read fine", m[0] == first[0] && m[3] == first[3]);
    if ((size_t)size < in_file)
        check("the tail of the last page reads as zero", m[in_file - 1] == 0);
    set_handler(SIGBUS, on_bus, 0);
    char c = m[in_file + 3];
    out("read of a page past the end of the file: %d SIGBUS, %s, value after the fix %d\n", bus_faults,
        codename(SIGBUS, bus_code), c);
    check("  si_addr is the faulting address", bus_addr == (uintptr_t)&m[in_file + 3]);
    signal(SIGBUS, SIG_DFL);
    munmap((void *)m, in_file + PAGE);
    close(fd);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    static const struct section sections[] = {
        {"altstack", section_altstack},
        {"overflow", section_overflow},
        {"segv-fix", section_segv_fix},
        {"bus-fix", section_bus_fix},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
