/*
 * Waiting for and being interrupted by signals: a blocking pipe read interrupted by SIGALRM
 * (alarm) with and without SA_RESTART, calls that are never restarted (nanosleep, poll),
 * sigsuspend, and rt_sigtimedwait (timeouts, si_code of kill and sigqueue, coalescing of
 * standard signals, queueing and order of real-time signals, a signal from another process,
 * interruption by a handled signal outside the set).
 *
 * usage: sigwait [SECTION...]   (sections: restart eintr norestart sigsuspend timedwait)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

static int alarm_pipe[2];
static volatile int handled, handled_sig;

/* Counts the signal and puts one byte into the pipe (write(2) is async-signal-safe). */
static void on_alarm(int sig) {
    handled++;
    handled_sig = sig;
    char c = 'h';
    if (write(alarm_pipe[1], &c, 1) != 1)
        _exit(97);
}

static void on_count(int sig) {
    handled++;
    handled_sig = sig;
}

static void set_handler(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

/* A read of an empty pipe (whose write end we hold, so no EOF) that SIGALRM interrupts. */
static void interrupted_read(int flags) {
    REQUIRE(pipe(alarm_pipe) == 0);
    set_handler(SIGALRM, on_alarm, flags);
    handled = 0;
    alarm(1);
    char buf[8];
    errno = 0;
    ssize_t n = read(alarm_pipe[0], buf, sizeof buf);
    int e = errno;
    if (n > 0)
        out("read returned %zd byte(s): '%c' (the handler's), handler ran %d time(s)\n", n, buf[0], handled);
    else
        out("read returned %zd %s, handler ran %d time(s)\n", n, err(n < 0 ? e : 0), handled);
    if (n < 0) {
        n = read(alarm_pipe[0], buf, sizeof buf);
        out("next read: %zd byte(s)\n", n);
    }
    close(alarm_pipe[0]);
    close(alarm_pipe[1]);
    signal(SIGALRM, SIG_DFL);
}

static void section_restart(void) {
    out("blocking pipe read, SIGALRM handler with SA_RESTART:\n");
    interrupted_read(SA_RESTART);
}

static void section_eintr(void) {
    out("blocking pipe read, SIGALRM handler without SA_RESTART:\n");
    interrupted_read(0);
}

/* nanosleep and poll return EINTR even when the handler has SA_RESTART. */
static void section_norestart(void) {
    set_handler(SIGALRM, on_count, SA_RESTART);
    struct itimerval it = {.it_value = {0, 100 * 1000}};
    handled = 0;
    REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0);
    struct timespec req = {10, 0}, rem = {0, 0};
    errno = 0;
    int r = nanosleep(&req, &rem);
    out("nanosleep(10 s) interrupted: %d %s, handler ran %d time(s)\n", r, err(r ? errno : 0), handled);
    check("remaining time reported is over 5 s", rem.tv_sec >= 5);

    int p[2];
    REQUIRE(pipe(p) == 0);
    handled = 0;
    REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    errno = 0;
    r = poll(&pfd, 1, 10000);
    out("poll(10 s) interrupted: %d %s, handler ran %d time(s)\n", r, err(r < 0 ? errno : 0), handled);
    close(p[0]);
    close(p[1]);
    signal(SIGALRM, SIG_DFL);
}

static int blocked(int sig) {
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, sig);
}

static int pending(int sig) {
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, sig);
}

static void section_sigsuspend(void) {
    set_handler(SIGUSR1, on_count, 0);
    set_handler(SIGUSR2, on_count, 0);
    sigset_t usr, none, only_usr1;
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    sigaddset(&usr, SIGUSR2);
    sigemptyset(&none);
    sigemptyset(&only_usr1);
    sigaddset(&only_usr1, SIGUSR1);
    REQUIRE(sigprocmask(SIG_BLOCK, &usr, NULL) == 0);

    /* Another process sends SIGUSR1 while we are (or are about to be) suspended. */
    handled = 0;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    errno = 0;
    int r = sigsuspend(&none);
    out("sigsuspend woken by a child's SIGUSR1: %d %s, handler ran %d time(s) for %s\n", r, err(errno), handled,
        signame(handled_sig));
    check("mask restored: SIGUSR1 blocked again", blocked(SIGUSR1) && blocked(SIGUSR2));
    REQUIRE(waitpid(pid, NULL, 0) == pid);

    /* A signal already pending ends sigsuspend at once. */
    handled = 0;
    raise(SIGUSR2);
    check("SIGUSR2 pending while blocked", pending(SIGUSR2));
    r = sigsuspend(&none);
    out("sigsuspend with SIGUSR2 already pending: %d %s, handler ran %d time(s) for %s\n", r, err(errno), handled,
        signame(handled_sig));

    /* The temporary mask keeps SIGUSR1 blocked: it stays pending, SIGUSR2 wakes us. */
    handled = 0;
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(kill(getppid(), SIGUSR1) == 0 && kill(getppid(), SIGUSR2) == 0 ? 0 : 1);
    r = sigsuspend(&only_usr1);
    out("sigsuspend with SIGUSR1 still blocked: %d %s, handler ran %d time(s) for %s\n", r, err(errno), handled,
        signame(handled_sig));
    REQUIRE(waitpid(pid, NULL, 0) == pid);
    check("SIGUSR1 still pending afterwards", pending(SIGUSR1));
    handled = 0;
    REQUIRE(sigprocmask(SIG_UNBLOCK, &usr, NULL) == 0);
    out("unblocking delivered: %d signal(s), %s\n", handled, signame(handled_sig));
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

/* ---- rt_sigtimedwait ---- */
static void show_wait(const char *what, const sigset_t *set, long timeout_ms) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
    errno = 0;
    int sig = sigtimedwait(set, &si, &ts);
    if (sig < 0) {
        out("%s: -1 %s\n", what, err(errno));
        return;
    }
    out("%s: %s, %s, si_pid is us: %s", what, signame(sig), codename(sig, si.si_code), si.si_pid == getpid() ? "yes" : "no");
    if (si.si_code == SI_QUEUE)
        out(", value %d", si.si_value.sival_int);
    out("\n");
}

static volatile pid_t waiter_tid;

static void *thread_waiter(void *arg) {
    const sigset_t *set = arg;
    waiter_tid = gettid();
    siginfo_t si;
    struct timespec ten = {10, 0};
    int sig = sigtimedwait(set, &si, &ten);
    return (void *)(long)(sig == SIGUSR1 && si.si_pid == getpid());
}

static void section_timedwait(void) {
    int rt1 = SIGRTMIN + 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, rt1);
    REQUIRE(sigprocmask(SIG_BLOCK, &set, NULL) == 0);

    int64_t t0 = now_ns();
    show_wait("nothing pending, 50 ms timeout", &set, 50);
    int64_t waited = now_ns() - t0;
    check("waited at least 50 ms", waited >= 50 * 1000000);
    check("and less than 5 s", waited < 5000000000LL);
    t0 = now_ns();
    show_wait("nothing pending, zero timeout", &set, 0);
    check("zero timeout returns within 1 s", now_ns() - t0 < 1000000000LL);

    kill(getpid(), SIGUSR1);
    show_wait("after kill", &set, 1000);
    /* raise is tgkill, whose si_code (SI_TKILL, or SI_USER on some recent kernels) differs
     * between kernel versions: not printed. */
    raise(SIGUSR1);
    siginfo_t si;
    struct timespec one = {1, 0};
    int sig = sigtimedwait(&set, &si, &one);
    out("after raise (tgkill): %s, si_pid is us: %s\n", sig > 0 ? signame(sig) : err(errno),
        si.si_pid == getpid() ? "yes" : "no");
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR1, v);
    show_wait("after sigqueue", &set, 1000);

    /* A standard signal sent three times is pending once. */
    for (int i = 0; i < 3; i++)
        kill(getpid(), SIGUSR2);
    show_wait("SIGUSR2 sent 3 times, first wait", &set, 1000);
    show_wait("second wait", &set, 0);

    /* Real-time signals queue, in order. */
    for (int i = 1; i <= 3; i++) {
        v.sival_int = i;
        sigqueue(getpid(), rt1, v);
    }
    for (int i = 0; i < 4; i++)
        show_wait("real-time signal queued 3 times", &set, 0);

    /* Several pending: the lowest number first, standard before real-time. */
    v.sival_int = 9;
    sigqueue(getpid(), rt1, v);
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 3; i++)
        show_wait("several pending", &set, 0);

    /* A signal from another process: wait with no timeout (sigwaitinfo). A handled SIGALRM
     * (not in the set) 10 s later would end a wait for a signal that never comes. */
    set_handler(SIGALRM, on_count, 0);
    handled = 0;
    alarm(10);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(kill(getppid(), SIGUSR2) == 0 ? 0 : 1);
    errno = 0;
    sig = sigwaitinfo(&set, &si);
    alarm(0);
    if (sig < 0)
        out("sigwaitinfo, signal from a child: -1 %s (SIGALRM after 10 s: %d)\n", err(errno), handled);
    else
        out("sigwaitinfo, signal from a child: %s, %s, si_pid is the child: %s\n", signame(sig),
            codename(sig, si.si_code), si.si_pid == pid ? "yes" : "no");
    REQUIRE(waitpid(pid, NULL, 0) == pid);
    signal(SIGALRM, SIG_DFL);

    /* A thread waiting in sigtimedwait receives a signal sent to it with tgkill. */
    pthread_t t;
    waiter_tid = 0;
    REQUIRE(pthread_create(&t, NULL, thread_waiter, &set) == 0);
    int64_t start = now_ns();
    while (waiter_tid == 0 && now_ns() - start < 10000000000LL)
        sched_yield();
    syscall(SYS_tgkill, getpid(), waiter_tid, SIGUSR1);
    void *r;
    pthread_join(t, &r);
    check("thread's sigtimedwait got the SIGUSR1 sent to it with tgkill", (long)r == 1);
    check("nothing left pending for the process", !pending(SIGUSR1) && !pending(SIGUSR2) && !pending(rt1));

    /* A handled signal outside the set interrupts the wait. The signal comes from a timer
     * armed for 200 ms, so it arrives while the process waits (the wait is entered at once;
     * a child's kill could land before it, and then the wait would time out instead). */
    set_handler(SIGWINCH, on_count, 0);
    set_handler(SIGALRM, on_count, 0);
    handled = 0;
    sigset_t only_usr1;
    sigemptyset(&only_usr1);
    sigaddset(&only_usr1, SIGUSR1);
    struct itimerval in_200ms = {{0, 0}, {0, 200000}};
    REQUIRE(setitimer(ITIMER_REAL, &in_200ms, NULL) == 0);
    show_wait("waiting for SIGUSR1, SIGALRM handled", &only_usr1, 10000);
    out("handler ran %d time(s) for %s\n", handled, signame(handled_sig));
    signal(SIGWINCH, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    REQUIRE(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
}

int main(int argc, char **argv) {
    static const struct section sections[] = {
        {"restart", section_restart},       {"eintr", section_eintr},         {"norestart", section_norestart},
        {"sigsuspend", section_sigsuspend}, {"timedwait", section_timedwait},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
