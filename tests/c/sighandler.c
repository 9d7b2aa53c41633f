/*
 * Guest signal handlers and their frames: siginfo contents, the saved ucontext (registers,
 * mask, FP state) and edits to it taking effect at sigreturn, the stack a handler runs on
 * (alignment, red zone, sigaltstack), SA_NODEFER, SA_RESETHAND. Prints one deterministic
 * line per check, to be compared between a native run and a run in rvisor.
 * usage: sighandler
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

extern char __executable_start[], etext[];

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags, const sigset_t *mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask)
        sa.sa_mask = *mask;
    else
        sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("sigaction");
        exit(1);
    }
}

static int in_text(uintptr_t p) {
    return p >= (uintptr_t)__executable_start && p < (uintptr_t)etext;
}

/* ---- siginfo from kill, tgkill, sigqueue; the saved context ---- */

static volatile int g_signo, g_code, g_pid_ok, g_uid_ok, g_value, g_rip_in_text, g_rsp_ok;
static volatile int g_uc_flags, g_fp_aligned, g_fp_magic, g_blocked_self, g_uc_mask_usr2;
static volatile int g_info_uc_gap, g_uc_rsp_gap;
static volatile uintptr_t g_entry_rsp;

static void info_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    g_signo = si->si_signo;
    g_code = si->si_code;
    g_pid_ok = si->si_pid == getpid();
    g_uid_ok = si->si_uid == getuid();
    g_value = si->si_value.sival_int;
    g_rip_in_text = in_text((uintptr_t)uc->uc_mcontext.gregs[REG_RIP]);
    /* The interrupted rsp is above this handler's frame. */
    g_rsp_ok = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP] > (uintptr_t)&uc;
    g_uc_flags = (int)uc->uc_flags;
    g_fp_aligned = uc->uc_mcontext.fpregs && ((uintptr_t)uc->uc_mcontext.fpregs % 64) == 0;
    /* FP_XSTATE_MAGIC1 in the software-reserved bytes (offset 464). */
    g_fp_magic = uc->uc_mcontext.fpregs && uc->uc_mcontext.fpregs->__glibc_reserved1[12] == 0x46505853u;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    g_blocked_self = sigismember(&cur, sig);
    g_uc_mask_usr2 = sigismember(&uc->uc_sigmask, SIGUSR2);
    g_info_uc_gap = (int)((char *)si - (char *)uc);
    (void)g_entry_rsp;
}

static void test_siginfo(void) {
    install(SIGUSR1, info_handler, 0, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);

    kill(getpid(), SIGUSR1);
    printf("kill: signo=%d code=%d pid_ok=%d uid_ok=%d rip_in_text=%d rsp_ok=%d\n", g_signo, g_code, g_pid_ok,
           g_uid_ok, g_rip_in_text, g_rsp_ok);
    printf("kill: uc_flags=%#x fp_aligned=%d fp_magic=%d blocked_in_handler=%d saved_mask_has_usr2=%d info-uc=%d\n",
           g_uc_flags, g_fp_aligned, g_fp_magic, g_blocked_self, g_uc_mask_usr2, g_info_uc_gap);

    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    printf("tgkill: signo=%d code=%d pid_ok=%d\n", g_signo, g_code, g_pid_ok);

    union sigval v = {.sival_int = 4242};
    sigqueue(getpid(), SIGUSR1, v);
    printf("sigqueue: signo=%d code=%d pid_ok=%d value=%d\n", g_signo, g_code, g_pid_ok, g_value);

    sigprocmask(SIG_UNBLOCK, &m, NULL);
}

/* ---- handler entry: stack alignment and frame layout ---- */

/* The first instruction of the handler records rsp before any prologue runs. */
void align_handler_c(int sig, siginfo_t *si, void *ucv);
__asm__(".text\n"
        ".globl align_handler\n"
        "align_handler:\n\t"
        "movq %rsp, g_entry_rsp(%rip)\n\t"
        "jmp align_handler_c\n");
void align_handler(int, siginfo_t *, void *);

void align_handler_c(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    g_uc_rsp_gap = (int)((char *)ucv - (char *)g_entry_rsp);
    g_info_uc_gap = (int)((char *)si - (char *)ucv);
}

static void test_alignment(void) {
    install(SIGUSR1, align_handler, 0, NULL);
    for (int i = 0; i < 3; i++) {
        /* Vary the interrupted stack pointer. */
        volatile char *pad = alloca(1 + i * 7);
        pad[0] = 0;
        raise(SIGUSR1);
        printf("entry: (rsp+8)%%16=%d uc-rsp=%d info-uc=%d\n", (int)((g_entry_rsp + 8) % 16), g_uc_rsp_gap,
               g_info_uc_gap);
    }
}

/* ---- the red zone below the interrupted rsp survives ---- */

int redzone_probe(void);
__asm__(".text\n"
        ".globl redzone_probe\n"
        "redzone_probe:\n\t"
        "movabsq $0x5a5a5a5a5a5a5a5a, %r8\n\t"
        ".irp off,8,16,24,32,40,48,56,64,72,80,88,96,104,112,120,128\n\t"
        "movq %r8, -\\off(%rsp)\n\t"
        ".endr\n\t"
        "movl $39, %eax\n\t" /* getpid */
        "syscall\n\t"
        "movq %rax, %rdi\n\t"
        "movl $10, %esi\n\t" /* SIGUSR1 */
        "movl $62, %eax\n\t" /* kill: the handler runs as the syscall returns */
        "syscall\n\t"
        "xorl %eax, %eax\n\t"
        ".irp off,8,16,24,32,40,48,56,64,72,80,88,96,104,112,120,128\n\t"
        "cmpq %r8, -\\off(%rsp)\n\t"
        "jne 1f\n\t"
        ".endr\n\t"
        "movl $1, %eax\n"
        "1:\n\t"
        "ret\n");

static volatile int g_dirty_count;

static void dirty_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
    volatile char buf[512];
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (char)i;
    g_dirty_count++;
}

static void test_redzone(void) {
    install(SIGUSR1, dirty_handler, 0, NULL);
    int ok = redzone_probe();
    printf("redzone: intact=%d handler_ran=%d\n", ok, g_dirty_count);
}

/* ---- a fault whose handler edits registers and resumes elsewhere ---- */

void fault_insn(void), fault_resume(void);
static volatile int g_fault_code, g_fault_addr_ok, g_fault_rip_ok, g_fault_trapno, g_fault_err, g_fault_cr2_ok;
static volatile uintptr_t g_bad;

static void segv_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig;
    g_fault_code = si->si_code;
    g_fault_addr_ok = (uintptr_t)si->si_addr == g_bad;
    g_fault_rip_ok = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)fault_insn;
    g_fault_trapno = (int)uc->uc_mcontext.gregs[REG_TRAPNO];
    g_fault_err = (int)uc->uc_mcontext.gregs[REG_ERR];
    g_fault_cr2_ok = (uintptr_t)uc->uc_mcontext.gregs[REG_CR2] == g_bad;
    uc->uc_mcontext.gregs[REG_RBX] = 42;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)fault_resume;
}

__attribute__((noinline)) static long fault_and_resume(uintptr_t bad) {
    long out;
    __asm__ volatile("movq $1, %%rbx\n\t"
                     ".globl fault_insn\n"
                     "fault_insn:\n\t"
                     "movq (%%rax), %%rbx\n\t"
                     ".globl fault_resume\n"
                     "fault_resume:\n\t"
                     "movq %%rbx, %0\n\t"
                     : "=r"(out)
                     : "a"(bad)
                     : "rbx", "memory");
    return out;
}

static void test_fault(void) {
    install(SIGSEGV, segv_handler, 0, NULL);
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p, 4096) != 0)
        exit(3);
    g_bad = (uintptr_t)p + 8;
    long rbx = fault_and_resume(g_bad);
    printf("fault: code=%d addr_ok=%d rip_ok=%d trapno=%d err=%d cr2_ok=%d rbx_after=%ld\n", g_fault_code,
           g_fault_addr_ok, g_fault_rip_ok, g_fault_trapno, g_fault_err, g_fault_cr2_ok, rbx);
    signal(SIGSEGV, SIG_DFL);
}

/* ---- sigaltstack and SA_ONSTACK ---- */

static char *g_alt;
static size_t g_alt_size;
static volatile int g_on_alt, g_uc_stack_ok, g_uc_stack_flags, g_sas_flags, g_alt_depth, g_alt_nested_on;

static void alt_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)si;
    char local;
    int on = &local > g_alt && &local < g_alt + g_alt_size;
    if (g_alt_depth++ == 0) {
        g_on_alt = on;
        g_uc_stack_ok = uc->uc_stack.ss_sp == g_alt && uc->uc_stack.ss_size == g_alt_size;
        g_uc_stack_flags = uc->uc_stack.ss_flags;
        stack_t cur;
        sigaltstack(NULL, &cur);
        g_sas_flags = cur.ss_flags;
        /* A nested signal stays on the alternate stack, below this frame. */
        raise(sig);
    } else {
        g_alt_nested_on = on && &local < (char *)uc;
    }
    g_alt_depth--;
}

static void test_altstack(void) {
    g_alt_size = 64 * 1024;
    g_alt = mmap(NULL, g_alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_alt == MAP_FAILED)
        exit(4);
    stack_t ss = {.ss_sp = g_alt, .ss_size = g_alt_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        exit(5);
    install(SIGUSR2, alt_handler, SA_ONSTACK | SA_NODEFER, NULL);
    raise(SIGUSR2);
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("altstack: on_alt=%d uc_stack_ok=%d uc_stack_flags=%d sas_flags_in_handler=%d nested_on_alt=%d "
           "flags_after=%d\n",
           g_on_alt, g_uc_stack_ok, g_uc_stack_flags, g_sas_flags, g_alt_nested_on, cur.ss_flags);

    /* Without SA_ONSTACK the handler stays on the main stack. */
    g_alt_depth = 1; /* no nesting this time */
    install(SIGUSR2, alt_handler, 0, NULL);
    raise(SIGUSR2);
    printf("altstack without SA_ONSTACK: nested_on_alt=%d\n", g_alt_nested_on);
    g_alt_depth = 0;

    /* SS_AUTODISARM: the stack is disabled while the handler runs and restored after. */
    stack_t ad = {.ss_sp = g_alt, .ss_size = g_alt_size, .ss_flags = SS_AUTODISARM};
    if (sigaltstack(&ad, NULL) == 0) {
        g_alt_depth = 1;
        install(SIGUSR2, alt_handler, SA_ONSTACK, NULL);
        g_sas_flags = -1;
        raise(SIGUSR2);
        sigaltstack(NULL, &cur);
        printf("autodisarm: on_alt=%d flags_after=%#x\n", g_alt_nested_on, (unsigned)cur.ss_flags);
        g_alt_depth = 0;
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
}

/* ---- nesting: SA_NODEFER vs the default self-blocking ---- */

static volatile char g_trace[64];
static volatile int g_trace_len, g_calls;

/* Records "<call>" on entry and "<letter of call>" on exit; only the first call re-raises. */
static void nest_handler(int sig, siginfo_t *si, void *uc) {
    (void)si, (void)uc;
    int me = ++g_calls;
    g_trace[g_trace_len++] = (char)('0' + me);
    if (me == 1)
        raise(sig);
    g_trace[g_trace_len++] = (char)('a' + me - 1);
}

static void test_nesting(void) {
    install(SIGUSR1, nest_handler, SA_NODEFER, NULL);
    g_trace_len = 0;
    g_calls = 0;
    raise(SIGUSR1);
    g_trace[g_trace_len] = 0;
    printf("SA_NODEFER: %s\n", (const char *)g_trace);

    install(SIGUSR1, nest_handler, 0, NULL);
    g_trace_len = 0;
    g_calls = 0;
    raise(SIGUSR1);
    g_trace[g_trace_len] = 0;
    printf("deferred: %s\n", (const char *)g_trace);
}

/* ---- SA_RESETHAND ---- */

static volatile int g_reset_count, g_reset_blocked;

static void reset_handler(int sig, siginfo_t *si, void *uc) {
    (void)si, (void)uc;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    g_reset_blocked = sigismember(&cur, sig);
    g_reset_count++;
}

static void test_resethand(void) {
    install(SIGURG, reset_handler, SA_RESETHAND, NULL);
    raise(SIGURG);
    struct sigaction old;
    sigaction(SIGURG, NULL, &old);
    raise(SIGURG); /* default action of SIGURG: ignore */
    printf("SA_RESETHAND: count=%d handler_is_dfl=%d blocked_in_handler=%d\n", g_reset_count,
           old.sa_handler == SIG_DFL, g_reset_blocked);
}

/* ---- sa_mask, and uc_sigmask edits ---- */

static volatile int g_mask_has_usr2;

static void mask_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig, (void)si;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    g_mask_has_usr2 = sigismember(&cur, SIGUSR2);
    /* Returning installs uc_sigmask: block SIGHUP from now on. */
    sigaddset(&uc->uc_sigmask, SIGHUP);
}

static void test_masks(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    install(SIGUSR1, mask_handler, 0, &m);
    raise(SIGUSR1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("masks: sa_mask_applied=%d usr2_after=%d hup_after=%d\n", g_mask_has_usr2, sigismember(&cur, SIGUSR2),
           sigismember(&cur, SIGHUP));
    sigemptyset(&m);
    sigaddset(&m, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &m, NULL);
}

/* ---- FP state: saved, clean in the handler, edits restored ---- */

static volatile unsigned g_handler_mxcsr, g_saved_mxcsr;
static volatile double g_handler_result;

static unsigned get_mxcsr(void) {
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static void set_mxcsr(unsigned v) {
    __asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static void fp_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    (void)sig, (void)si;
    g_handler_mxcsr = get_mxcsr();
    g_saved_mxcsr = uc->uc_mcontext.fpregs ? uc->uc_mcontext.fpregs->mxcsr : 0;
    /* Clobber the SSE registers the interrupted code may be using. */
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++)
        x = x * 3.0 + 0.5;
    g_handler_result = x;
    /* Change the rounding mode the interrupted code gets back: round toward zero. */
    if (uc->uc_mcontext.fpregs)
        uc->uc_mcontext.fpregs->mxcsr = (uc->uc_mcontext.fpregs->mxcsr & ~0x6000u) | 0x6000u;
}

__attribute__((noinline)) static double fp_work(double a) {
    register double keep __asm__("xmm7") = a * 2.0;
    __asm__ volatile("" : "+x"(keep));
    raise(SIGUSR1);
    __asm__ volatile("" : "+x"(keep));
    return keep;
}

static void test_fp(void) {
    install(SIGUSR1, fp_handler, 0, NULL);
    set_mxcsr((get_mxcsr() & ~0x6000u) | 0x2000u); /* round down */
    double r = fp_work(1.25);
    unsigned after = get_mxcsr();
    set_mxcsr(0x1f80);
    printf("fp: handler_mxcsr=%#x saved_mxcsr=%#x after_mxcsr=%#x kept=%.2f handler_result=%.1f\n",
           g_handler_mxcsr, g_saved_mxcsr, after, r, g_handler_result);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_siginfo();
    test_alignment();
    test_redzone();
    test_fault();
    test_altstack();
    test_nesting();
    test_resethand();
    test_masks();
    test_fp();
    printf("done\n");
    return 0;
}
