/* Three bombs at once, for the denial-of-service test (tests/tests/dos.rs): a fork bomb, a
 * memory bomb and an fd bomb, each in its own process, started by this one, which then waits
 * forever (until the container is killed). The fd bomb goes first and the others start
 * once its table is full. Progress lines go to stdout (unbuffered), one
 * fact per line, so the test can wait until every bomb is going:
 *
 *   fdbomb fds N error E      the fd bomb filled N fds (pipes with full buffers, then dups)
 *                             until it got errno E; it then holds them and retries now and then
 *   forkbomb full             the first fork of the fork bomb failed (the pids limit holds)
 *   membomb killed N          the memory bomb's hog was killed by SIGKILL for the N-th time;
 *                             it starts another hog whenever a fork succeeds
 *
 * With argument `fdonly` it runs just the fd bomb in the foreground and exits after printing
 * its line (for a test of the sandbox-wide caps). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    default: return "other";
    }
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Fills the fd table: pipes whose buffers are raised to 1 MiB and filled, then dups of
 * /dev/null, until something fails. Returns the fds made; *err is the failure's errno. */
static long fill_fds(int *err) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    long n = 0;
    *err = 0;
    for (;;) {
        int p[2];
        if (pipe2(p, O_NONBLOCK) < 0) {
            *err = errno;
            break;
        }
        n += 2;
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        while (write(p[1], chunk, sizeof chunk) > 0) {
        }
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        n++;
        for (;;) {
            if (dup(null) < 0) {
                *err = errno;
                break;
            }
            n++;
        }
    }
    return n;
}

/* Fills the fds, reports, then tells the starter (through `ready`) and holds them. */
static int ready = -1;

static void fd_bomb(void) {
    int err;
    long n = fill_fds(&err);
    printf("fdbomb fds %ld error %s\n", n, errno_name(err));
    if (write(ready, "r", 1) < 0)
        printf("fdbomb cannot say it is ready\n");
    for (;;) {
        /* Keep knocking: any fd freed elsewhere is taken again. */
        nap_ms(50);
        int p[2];
        if (pipe2(p, O_NONBLOCK) < 0)
            continue;
    }
}

/* The classic bomb: every process forks for ever; a failed fork only slows it a little. */
static void fork_bomb(void) {
    int said = 0;
    for (;;) {
        pid_t p = fork();
        if (p < 0) {
            if (!said) {
                printf("forkbomb full\n");
                said = 1;
            }
            nap_ms(1);
        } else if (p == 0) {
            said = 1;
        }
    }
}

/* Allocates memory until killed: 16 MiB at a time, populated at once (one call, not a
 * fault per page, so it grows fast even while the fork bomb takes the CPU). */
static void hog(void) {
    size_t len = 16 << 20;
    for (;;) {
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) {
            nap_ms(10);
            continue;
        }
        p[0] = 1;
        p[len - 1] = 1;
    }
}

static void memory_bomb(void) {
    long kills = 0;
    for (;;) {
        pid_t p = fork();
        if (p < 0) {
            nap_ms(1);
            continue;
        }
        if (p == 0)
            hog();
        int st;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            printf("membomb killed %ld\n", ++kills);
    }
}

static void start(void (*bomb)(void)) {
    for (;;) {
        pid_t p = fork();
        if (p == 0) {
            bomb();
            _exit(0);
        }
        if (p > 0)
            return;
        nap_ms(10);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "fdonly") == 0) {
        int err;
        long n = fill_fds(&err);
        printf("fdbomb fds %ld error %s\n", n, errno_name(err));
        return 0;
    }
    /* Reap whatever dies, as an init must. */
    signal(SIGCHLD, SIG_DFL);
    /* The fd bomb fills its table first (fast while it runs alone), then all three rage. */
    int sync[2];
    if (pipe(sync) < 0)
        return 1;
    ready = sync[1];
    start(fd_bomb);
    char c;
    while (read(sync[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(sync[0]);
    close(sync[1]);
    start(memory_bomb);
    start(fork_bomb);
    for (;;) {
        if (wait(NULL) < 0)
            nap_ms(100);
    }
}
