/*
 * execve from a thread that is not the main thread of a multi-threaded process: the other
 * threads (one blocked in a pipe read, one spinning, the main thread in pthread_join) go
 * away, the process keeps its pid and parent, the exec'ing thread becomes the leader
 * (tid == pid), the signal mask of the exec'ing thread is kept, handled signals are reset to
 * SIG_DFL while ignored ones stay ignored, O_CLOEXEC descriptors are closed and the others
 * stay open; the parent's waitpid on the original pid gets the new program's exit status.
 *
 * usage: exec_thread            (forks a child that does the above; the parent reports;
 *                                exit status 0 if all went well)
 *        exec_thread direct     (does the above itself, without forking: as the sandbox's
 *                                init; the new image exits 42 if all its checks pass)
 *        exec_thread after ARGS (the program image after the exec; internal)
 */
#include "rvtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

static char *self;
static int keep_fd, cloexec_fd, block_pipe[2];
static pid_t orig_pid, orig_ppid;

static void on_usr2(int sig) {
    (void)sig;
}

static void *blocked_reader(void *arg) {
    (void)arg;
    char c;
    /* Never returns: nobody writes to this pipe. */
    ssize_t r = read(block_pipe[0], &c, 1);
    (void)r;
    return NULL;
}

static void *spinner(void *arg) {
    (void)arg;
    for (volatile unsigned long i = 0;; i++)
        ;
    return NULL;
}

static void *execer(void *arg) {
    (void)arg;
    /* This thread's mask survives the exec; the main thread's does not matter. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    char a_pid[16], a_ppid[16], a_keep[16], a_cloexec[16], a_tid[16], a_br[16], a_bw[16];
    snprintf(a_pid, sizeof a_pid, "%d", orig_pid);
    snprintf(a_ppid, sizeof a_ppid, "%d", orig_ppid);
    snprintf(a_keep, sizeof a_keep, "%d", keep_fd);
    snprintf(a_cloexec, sizeof a_cloexec, "%d", cloexec_fd);
    snprintf(a_tid, sizeof a_tid, "%d", gettid());
    snprintf(a_br, sizeof a_br, "%d", block_pipe[0]);
    snprintf(a_bw, sizeof a_bw, "%d", block_pipe[1]);
    char *argv[] = {self, "after", a_pid, a_ppid, a_keep, a_cloexec, a_tid, a_br, a_bw, NULL};
    char *envp[] = {"RVISOR_EXEC_FROM_THREAD=1", NULL};
    execve(self, argv, envp);
    out("execve from a thread failed: %s\n", err(errno));
    _exit(90);
}

/* The new image. Prints nothing itself except through its exit status and one report line
 * per fact, written before the parent reads them (the parent waits for our exit). */
static int after(char **argv) {
    pid_t want_pid = atoi(argv[2]), want_ppid = atoi(argv[3]), old_tid = atoi(argv[6]);
    int keep = atoi(argv[4]), cloexec = atoi(argv[5]);
    check("pid unchanged by execve from a thread", getpid() == want_pid);
    check("the exec'ing thread had its own tid before", old_tid != want_pid);
    check("tid is now the pid", gettid() == getpid());
    check("parent unchanged", getppid() == want_ppid);
    check("descriptor without O_CLOEXEC still open", fcntl(keep, F_GETFD) >= 0);
    errno = 0;
    check("descriptor with O_CLOEXEC closed (EBADF)", fcntl(cloexec, F_GETFD) == -1 && errno == EBADF);
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    check("SIGUSR1 still blocked (the exec'ing thread's mask)", sigismember(&s, SIGUSR1));
    struct sigaction sa;
    sigaction(SIGUSR2, NULL, &sa);
    check("handled SIGUSR2 reset to SIG_DFL", sa.sa_handler == SIG_DFL);
    sigaction(SIGHUP, NULL, &sa);
    check("ignored SIGHUP still ignored", sa.sa_handler == SIG_IGN);
    check("environment is the one execve passed", getenv("RVISOR_EXEC_FROM_THREAD") != NULL && getenv("PATH") == NULL);
    /* The old thread that was blocked reading block_pipe is gone: it does not take the byte
     * written now (the pipe's descriptors were inherited through the exec). */
    int br = atoi(argv[7]), bw = atoi(argv[8]);
    REQUIRE(write(bw, "x", 1) == 1);
    REQUIRE(fcntl(br, F_SETFL, O_NONBLOCK) == 0);
    char c = 0;
    check("the byte for the old blocked reader thread is still in the pipe", read(br, &c, 1) == 1 && c == 'x');
    return failures == 0 ? 42 : 43;
}

/* Starts three threads (blocked in read, spinning, exec'ing) and never returns. */
static void threads_then_exec(void) {
    orig_pid = getpid();
    orig_ppid = getppid();
    int p[2];
    REQUIRE(pipe(p) == 0);
    keep_fd = p[0];
    cloexec_fd = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
    REQUIRE(cloexec_fd >= 0);
    REQUIRE(pipe(block_pipe) == 0);
    signal(SIGUSR2, on_usr2);
    signal(SIGHUP, SIG_IGN);
    pthread_t t1, t2, t3;
    REQUIRE(pthread_create(&t1, NULL, blocked_reader, NULL) == 0);
    REQUIRE(pthread_create(&t2, NULL, spinner, NULL) == 0);
    REQUIRE(pthread_create(&t3, NULL, execer, NULL) == 0);
    pthread_join(t3, NULL); /* never returns: the exec ends this thread */
    out("pthread_join returned\n");
    _exit(91);
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc > 8 && strcmp(argv[1], "after") == 0)
        return after(argv);

    if (argc > 1 && strcmp(argv[1], "direct") == 0)
        threads_then_exec(); /* this process itself, pid 1 in the sandbox */

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        threads_then_exec();
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st))
        out("waitpid on the original pid: exited with %d\n", WEXITSTATUS(st));
    else
        out("waitpid on the original pid: killed by %s\n", signame(WTERMSIG(st)));
    errno = 0;
    out("no other child left: %s\n", waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD ? "yes" : "no");
    return WIFEXITED(st) && WEXITSTATUS(st) == 42 ? 0 : 1;
}
