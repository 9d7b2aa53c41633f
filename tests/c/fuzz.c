/*
 * A seeded random syscall driver, run ONLY inside rvisor (never natively: its calls are
 * random). The sentry must survive all of it: no panic, no hang, no leaked host resources.
 *
 * Every batch runs in a forked child that first opens one fd of every kind it can (pipe,
 * sockets, eventfd, epoll, timerfd, memfd, signalfd, inotify, pidfd, /proc and /dev files,
 * tmpfs and gofer files and directories) and then makes CALLS syscalls with random numbers
 * (all of 0..~470, a few beyond, x32-flagged and negative ones) and hostile arguments: NULL,
 * kernel and vsyscall-page and non-canonical addresses, the end of a mapping, overlapping
 * pointers into one buffer, huge/negative lengths, negative and valid fds of every kind.
 * Calls that may block, unmap the caller, change its signal state or end it run one per
 * grandchild (killed after 200 ms); the kill family and pid-taking calls that could reach
 * the driver get their target replaced by the caller itself. Only reboot is never made.
 *
 * usage:
 *   fuzz seeds BATCHES SEED...   regression: BATCHES batches per seed;
 *                                prints "batches done: N, odd deaths: D, stuck: S"
 *   fuzz batch SEED...           one batch per (batch) seed, as printed by "odd death" lines
 *   fuzz timed SECS SEED GOFILE  prints "ready", waits until GOFILE exists, fuzzes for SECS
 *                                seconds, kills and reaps every other process, prints
 *                                "done: batches N, odd deaths: D, stuck: S" and then stays
 *                                alive (the test counts the sentry's host fds and threads).
 * A batch child's death is "odd" unless by a signal a bad call deserves (SEGV, BUS, SYS,
 * PIPE, ALRM) or by our own timeout kill; "stuck" counts processes that did
 * not die within 10 s of SIGKILL (a sentry hang).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define CALLS 300
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

static int fds[40];
static int nfds;
static char *buf;              /* a 64 KiB read-write mapping */
static char *ro;               /* a read-only page */
#define BUFSZ 65536

static long ptr(void) {
    switch (rnd() % 12) {
    case 0: return 0;
    case 1: return (long)(buf + rnd() % BUFSZ);                 /* overlapping pointers */
    case 2: return (long)(buf + BUFSZ - 1 - rnd() % 16);        /* runs off the end */
    case 3: return (long)0xffffffffff600000ull;                 /* vsyscall page */
    case 4: return (long)0xffffffff81000000ull;                 /* kernel text */
    case 5: return (long)0xffff880000000000ull + (long)(rnd() % 4096);
    case 6: return (long)0x0000800000000000ull - (long)(rnd() % 64); /* non-canonical edge */
    case 7: return (long)ro + (long)(rnd() % 4096);             /* read-only */
    case 8: return (long)(uintptr_t)&s;
    case 9: return (long)rnd() % 4096;                          /* NULL page */
    case 10: return (long)(buf + (rnd() % 16) * 4096);
    default: return (long)0x7fff00000000 + (long)(rnd() % 0x100000000);
    }
}

static long len(void) {
    static const long l[] = {0, 1, 8, 16, 64, 4096, 65536, 65537, 0x7fffffff, -1, (long)1 << 31,
                             (long)1 << 32, (long)1 << 62, INT32_MIN, 0x7ffffffff000};
    return l[rnd() % (sizeof l / sizeof *l)];
}

static long fd(void) {
    switch (rnd() % 6) {
    case 0: return -1 - (long)(rnd() % 4);
    case 1: return (long)(rnd() % 64);
    case 2: return AT_FDCWD;
    case 3: return (long)(int)rnd();
    default: return nfds ? fds[rnd() % nfds] : 0;
    }
}

static long arg(void) {
    switch (rnd() % 10) {
    case 0: return 0; case 1: return -1; case 2: return (long)(rnd() % 4096); case 3: return (long)rnd();
    case 4: return ptr(); case 5: return (long)(rnd() % 16);
    case 6: return len(); case 7: return fd();
    case 8: return ptr();
    default: return 1L << (rnd() % 64);
    }
}

static long nr_pick(void) {
    switch (rnd() % 40) {
    case 0: return 0x40000000 | (long)(rnd() % 550);            /* x32 ABI */
    case 1: return 463 + (long)(rnd() % 600);                   /* past the table */
    case 2: return -1 - (long)(rnd() % 3);
    case 3: return (long)rnd();
    default: return (long)(rnd() % 463);
    }
}

/* Calls made one per grandchild: they may block, unmap/remap the caller, change its signal
 * state or timers (and so die of any signal), or end it. */
static const long dangerous[] = {
    SYS_exit, SYS_exit_group, SYS_kill, SYS_tkill, SYS_tgkill, SYS_pause, SYS_rt_sigsuspend,
    SYS_vfork, SYS_fork, SYS_clone, SYS_clone3, SYS_execve, SYS_execveat, SYS_wait4, SYS_waitid,
    SYS_nanosleep, SYS_clock_nanosleep, SYS_read, SYS_readv, SYS_pread64, SYS_preadv, SYS_preadv2,
    SYS_futex, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6, SYS_rt_sigtimedwait, SYS_rt_sigreturn,
    SYS_setitimer, SYS_alarm, SYS_recvfrom, SYS_recvmsg, SYS_recvmmsg, SYS_epoll_wait, SYS_epoll_pwait,
    SYS_accept, SYS_accept4, SYS_connect, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_restart_syscall,
    SYS_munmap, SYS_mremap, SYS_brk, SYS_prctl, SYS_arch_prctl, SYS_rt_sigprocmask, SYS_rt_sigaction,
    SYS_sigaltstack, SYS_set_tid_address, SYS_mprotect, SYS_madvise, SYS_close, SYS_close_range,
    SYS_dup2, SYS_dup3, SYS_setrlimit, SYS_prlimit64, SYS_write, SYS_writev, SYS_pwrite64,
    SYS_pwritev, SYS_pwritev2, SYS_sendto, SYS_sendmsg, SYS_sendmmsg, SYS_sendfile, SYS_splice,
    SYS_tee, SYS_vmsplice, SYS_copy_file_range, SYS_setsid, SYS_setpgid, SYS_pidfd_send_signal,
    SYS_epoll_pwait2, SYS_futex_waitv, SYS_msgrcv, SYS_msgsnd, SYS_semop, SYS_semtimedop,
    SYS_mq_timedreceive, SYS_mq_timedsend, SYS_mq_notify, SYS_io_getevents, SYS_io_pgetevents,
    SYS_timer_create, SYS_timer_settime, SYS_fcntl, SYS_ioctl, SYS_flock, SYS_ptrace,
    SYS_process_vm_readv, SYS_process_vm_writev, SYS_process_madvise, SYS_set_robust_list,
    SYS_rseq, SYS_mmap, SYS_remap_file_pages, SYS_mlockall, SYS_munlockall, SYS_mlock, SYS_mlock2,
    SYS_shmat, SYS_shmdt, SYS_seccomp, SYS_unshare, SYS_setns, SYS_chroot, SYS_pivot_root,
    SYS_umount2, SYS_mount, SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid,
    SYS_setresgid, SYS_setfsuid, SYS_setfsgid, SYS_setgroups, SYS_capset, SYS_personality,
    SYS_sched_setaffinity, SYS_sched_setscheduler, SYS_sched_setattr, SYS_sched_setparam,
    SYS_userfaultfd, SYS_io_uring_enter, SYS_io_uring_setup, SYS_signalfd, SYS_signalfd4,
    SYS_migrate_pages, SYS_move_pages, SYS_mbind, SYS_set_mempolicy, SYS_ftruncate, SYS_fallocate,
    SYS_truncate,
};

static int is_dangerous(long nr) {
    for (unsigned k = 0; k < sizeof dangerous / sizeof *dangerous; k++)
        if (dangerous[k] == nr) return 1;
    return 0;
}

/* pid arguments that cannot reach the driver: the caller itself or pids that do not exist. */
static long self_pid(void) {
    static const long p[] = {0, -2147483647 - 1, 4194304, 99999};
    switch (rnd() % 4) {
    case 0: return getpid();
    case 1: return -getpid();
    default: return p[rnd() % 4];
    }
}

static void do_call(long nr, long a[6]) {
    switch (nr) {
    case SYS_reboot: return;
    case SYS_kill: case SYS_rt_sigqueueinfo: case SYS_prlimit64:
        a[0] = self_pid(); break;
    case SYS_tkill: case SYS_migrate_pages: case SYS_move_pages: case SYS_process_vm_readv:
    case SYS_process_vm_writev:
        a[0] = getpid(); break;
    case SYS_tgkill: case SYS_rt_tgsigqueueinfo:
        a[0] = getpid(); a[1] = getpid(); break;
    case SYS_ptrace:
        a[1] = getpid(); break;
    case SYS_pidfd_send_signal: case SYS_process_madvise:
        a[0] = syscall(SYS_pidfd_open, getpid(), 0); break;
    case SYS_setpgid:
        a[0] = 0; break;
    /* A CLONE_PARENT child would be the batch child's, and its random exit signal would
     * then (legitimately) kill the batch child: keep new processes our own. */
    case SYS_clone:
        a[0] &= ~(long)CLONE_PARENT; break;
    case SYS_clone3:
        if ((char *)a[0] >= buf && (char *)a[0] < buf + BUFSZ - 8) *(uint64_t *)a[0] &= ~(uint64_t)CLONE_PARENT;
        else if ((uint64_t *)a[0] == &s) s &= ~(uint64_t)CLONE_PARENT;
        else if ((char *)a[0] >= ro && (char *)a[0] < ro + 4096) a[0] = 0;
        break;
    }
    syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, 0);
}

static int stuck;
static int trace;            /* FUZZ_TRACE=1: each call to stderr before it is made */

/* Waits for `p`, SIGKILLing it after `ms`. Returns its status; *killed says whether we did. */
static int wait_bounded(pid_t p, long ms, int *killed) {
    int st = 0;
    *killed = 0;
    for (long waited = 0;; waited++) {
        pid_t r = waitpid(p, &st, WNOHANG | __WALL);
        if (r == p) return st;
        if (r < 0 && errno != EINTR) return 0;
        if (waited == ms && !*killed) { kill(p, SIGKILL); *killed = 1; waited = 0; ms = 10000; }
        else if (waited == ms && *killed) { stuck++; return 0; }
        msleep(1);
    }
}

static void open_fds(void) {
    int p[2];
    nfds = 0;
#define ADD(x) do { int f_ = (x); if (f_ >= 0 && nfds < 40) fds[nfds++] = f_; } while (0)
    if (pipe2(p, O_NONBLOCK) == 0) { ADD(p[0]); ADD(p[1]); }
    if (pipe(p) == 0) { ADD(p[0]); ADD(p[1]); }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0) { ADD(p[0]); ADD(p[1]); }
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, p) == 0) { ADD(p[0]); ADD(p[1]); }
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (t >= 0 && bind(t, (void *)&sin, sizeof sin) == 0) listen(t, 4);
    ADD(t);
    ADD(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
    ADD(socket(AF_INET6, SOCK_STREAM, 0));
    ADD(socket(AF_NETLINK, SOCK_RAW, 0));
    int u = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "fz.%d", getpid());
    if (u >= 0 && bind(u, (void *)&sun, sizeof sun) == 0) { listen(u, 4); unlink(sun.sun_path); }
    ADD(u);
    ADD(eventfd(3, EFD_NONBLOCK));
    int e = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (e >= 0 && nfds) epoll_ctl(e, EPOLL_CTL_ADD, fds[0], &ev);
    ADD(e);
    ADD(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
    int m = memfd_create("fz", MFD_ALLOW_SEALING);
    if (m >= 0 && ftruncate(m, 8192) != 0) { /* keep going */ }
    ADD(m);
    sigset_t ss; sigemptyset(&ss); sigaddset(&ss, SIGUSR1);
    ADD(signalfd(-1, &ss, SFD_NONBLOCK));
    ADD(inotify_init1(IN_NONBLOCK));
    ADD((int)syscall(SYS_pidfd_open, getpid(), 0));
    ADD(open("/proc/self/status", O_RDONLY));
    ADD(open("/proc/self/maps", O_RDONLY));
    ADD(open("/proc/self/mem", O_RDWR));
    ADD(open("/proc", O_RDONLY | O_DIRECTORY));
    ADD(open("/dev/null", O_RDWR));
    ADD(open("/dev/zero", O_RDONLY));
    ADD(open("/dev/urandom", O_RDONLY));
    char name[64];
    snprintf(name, sizeof name, "fz.%d.f", getpid());
    int f = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f >= 0) { if (write(f, "hello fuzz\n", 11) != 11) { /* keep going */ } unlink(name); }
    ADD(f);
    ADD(open(".", O_RDONLY | O_DIRECTORY));
    ADD(open("/", O_RDONLY | O_DIRECTORY));
    ADD(open("/bin", O_PATH));
    ADD(open("/proc/self/exe", O_RDONLY));
#undef ADD
}

/* One batch (in a fresh child): CALLS random calls. */
static void batch(uint64_t seed) {
    s = seed | 1;
    for (int sig = 1; sig < 65; sig++) signal(sig, SIG_DFL);   /* the driver ignores them */
    alarm(5);
    setpgid(0, 0);
    /* Random writes must not reach the driver's stdout (a host file, when detached: a
     * pwrite at 2^34 made it a 16 GiB sparse file once). */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); if (!trace) dup2(null, 2); close(null); }
    open_fds();
    for (int i = 0; i < CALLS; i++) {
        long nr = nr_pick();
        long a[6];
        for (int k = 0; k < 6; k++) a[k] = arg();
        if (nr == SYS_reboot) continue;
        if (trace) dprintf(2, "%d: %ld(%lx, %lx, %lx, %lx, %lx, %lx)%s\n", i, nr, a[0], a[1], a[2], a[3], a[4], a[5], is_dangerous(nr) ? " in a child" : "");
        if (!is_dangerous(nr)) { syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]); continue; }
        uint64_t gseed = rnd();
        pid_t g = fork();
        if (g == 0) {
            s = gseed | 1;
            setpgid(0, 0);       /* kill(0, ...) must not reach the batch child */
            alarm(1);
            do_call(nr, a);
            _exit(0);
        }
        if (g > 0) { int killed; wait_bounded(g, 200, &killed); }
        while (waitpid(-1, 0, WNOHANG | __WALL) > 0) {}     /* CLONE_PARENT siblings */
    }
    _exit(0);
}

/* What a batch child may die of: its own bad pointers and unmapped/overwritten memory
 * (SEGV, BUS), an unknown call (SYS), a write to a closed pipe or socket (PIPE), its alarm
 * (ALRM). The calls that could make it die of anything else (kill, fcntl F_SETSIG/O_ASYNC,
 * setrlimit, timers...) run in per-call children. */
static int deserved(int sig) {
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGSYS || sig == SIGPIPE || sig == SIGALRM;
}

static int odd;
static long batches;

static void run_batch(uint64_t seed) {
    pid_t p = fork();
    if (p == 0) batch(seed);
    if (p < 0) { msleep(10); return; }
    int killed;
    int st = wait_bounded(p, 6000, &killed);
    if (!killed && WIFSIGNALED(st) && !deserved(WTERMSIG(st))) {
        odd++;
        printf("odd death: batch seed %llu, signal %d\n", (unsigned long long)seed, WTERMSIG(st));
    }
    batches++;
    while (waitpid(-1, 0, WNOHANG | __WALL) > 0) {}         /* orphans reparented to us */
}

/* Ends every other process of the sandbox and reaps them. */
static void kill_rest(void) {
    kill(-1, SIGKILL);
    for (int i = 0; i < 10000; i++) {
        pid_t r = waitpid(-1, 0, WNOHANG | __WALL);
        if (r < 0 && errno == ECHILD) return;
        if (r == 0) msleep(1);
    }
    stuck++;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    trace = getenv("FUZZ_TRACE") != 0;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    /* The driver itself is not under test: signals stray processes send it are ignored. */
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGCHLD && sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGFPE && sig != SIGABRT)
            signal(sig, SIG_IGN);
    buf = mmap(0, BUFSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED || ro == MAP_FAILED) { perror("mmap"); return 1; }
    if (argc >= 4 && !strcmp(argv[1], "seeds")) {
        long n = atol(argv[2]);
        for (int i = 3; i < argc; i++) {
            s = strtoull(argv[i], 0, 10) | 1;
            for (long b = 0; b < n; b++) run_batch(rnd());
        }
        kill_rest();
        printf("batches done: %ld, odd deaths: %d, stuck: %d\n", batches, odd, stuck);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "batch")) {
        for (int i = 2; i < argc; i++) run_batch(strtoull(argv[i], 0, 10));
        kill_rest();
        printf("batches done: %ld, odd deaths: %d, stuck: %d\n", batches, odd, stuck);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "timed")) {
        double secs = atof(argv[2]);
        s = strtoull(argv[3], 0, 10) | 1;
        printf("ready\n");
        struct stat st;
        while (stat(argv[4], &st) != 0) msleep(5);
        double end = now() + secs;
        while (now() < end) run_batch(rnd());
        kill_rest();
        printf("done: batches %ld, odd deaths: %d, stuck: %d\n", batches, odd, stuck);
        for (;;) pause();
    }
    fprintf(stderr, "usage: fuzz seeds BATCHES SEED... | fuzz batch SEED... | fuzz timed SECS SEED GOFILE\n");
    return 2;
}
