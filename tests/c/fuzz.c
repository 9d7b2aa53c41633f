/*
 * A seeded random syscall driver, run ONLY inside rvisor (never natively: its calls are
 * random). Forks a child per batch that makes 300 syscalls with random numbers and
 * arguments (bad pointers, huge lengths, negative fds); calls that would end, block or
 * unmap the driver itself are skipped. The sentry must survive all of it.
 * usage: fuzz BATCHES [SEED]; prints "batches done: N, odd deaths: 0".
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static long arg(void) {
    switch (rnd() % 8) {
    case 0: return 0; case 1: return -1; case 2: return rnd() % 4096; case 3: return (long)rnd();
    case 4: return 0x7fff00000000 + (rnd() % 0x100000000); case 5: return rnd() % 16;
    case 6: return (long)(uintptr_t)&s; default: return 1L << (rnd() % 64);
    }
}
int main(int argc, char **argv) {
    int batches = argc > 1 ? atoi(argv[1]) : 50;
    if (argc > 2) s = strtoull(argv[2], 0, 10);
    static const int skip[] = {SYS_exit, SYS_exit_group, SYS_kill, SYS_tkill, SYS_tgkill, SYS_pause, SYS_rt_sigsuspend, SYS_vfork, SYS_fork, SYS_clone, SYS_clone3, SYS_execve, SYS_execveat, SYS_wait4, SYS_waitid, SYS_nanosleep, SYS_clock_nanosleep, SYS_read, SYS_readv, SYS_pread64, SYS_futex, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6, SYS_rt_sigtimedwait, SYS_rt_sigreturn, SYS_setitimer, SYS_alarm, SYS_recvfrom, SYS_recvmsg, SYS_epoll_wait, SYS_epoll_pwait, SYS_accept, SYS_accept4, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_restart_syscall, SYS_munmap, SYS_mremap, SYS_brk, SYS_prctl, SYS_arch_prctl, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_sigaltstack, SYS_set_tid_address, SYS_mprotect, SYS_madvise, SYS_close, SYS_close_range, SYS_dup2, SYS_dup3, SYS_setrlimit, SYS_prlimit64, SYS_write, SYS_writev, SYS_pwrite64, SYS_sendto, SYS_sendmsg, SYS_setsid, SYS_setpgid, SYS_pidfd_send_signal, SYS_epoll_pwait2, SYS_futex_waitv, SYS_msgrcv, SYS_semop, SYS_semtimedop, SYS_mq_timedreceive, SYS_io_getevents, SYS_io_pgetevents};
    int crashed = 0;
    for (int b = 0; b < batches; b++) {
        uint64_t seed = rnd();
        pid_t p = fork();
        if (p == 0) {
            s = seed | 1; alarm(2);
            for (int i = 0; i < 300; i++) {
                long nr = rnd() % 463; int bad = 0;
                for (unsigned k = 0; k < sizeof skip / sizeof *skip; k++) if (skip[k] == nr) bad = 1;
                if (bad) continue;
                syscall(nr, arg(), arg(), arg(), arg(), arg(), arg());
            }
            _exit(0);
        }
        int st; waitpid(p, &st, 0);
        if (WIFSIGNALED(st) && WTERMSIG(st) != SIGALRM && WTERMSIG(st) != SIGSEGV && WTERMSIG(st) != SIGBUS && WTERMSIG(st) != SIGPIPE && WTERMSIG(st) != SIGSYS) crashed++;
    }
    printf("batches done: %d, odd deaths: %d\n", batches, crashed);
    return 0;
}
