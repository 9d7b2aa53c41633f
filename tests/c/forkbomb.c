/* Forks until fork fails (at most 4096 times), each child waiting in pause(); prints
 * "forks N" and the errno name of the failure ("EAGAIN"), then kills and reaps its
 * children and exits 0. Exits 1 if fork never failed. `forkbomb hold` prints "holding"
 * after the failure and keeps its children until SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FORKS 4096

static volatile sig_atomic_t got_term;

static void on_term(int sig) {
    (void)sig;
    got_term = 1;
}

static const char *errno_name(int e) {
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    static pid_t kids[MAX_FORKS];
    int n = 0, err = 0;
    int hold = argc > 1 && strcmp(argv[1], "hold") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (hold)
        signal(SIGTERM, on_term);
    while (n < MAX_FORKS) {
        pid_t p = fork();
        if (p < 0) {
            err = errno;
            break;
        }
        if (p == 0) {
            for (;;)
                pause();
        }
        kids[n++] = p;
    }
    printf("forks %d\n", n);
    printf("error %s\n", err ? errno_name(err) : "none");
    if (hold) {
        printf("holding\n");
        while (!got_term)
            pause();
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    int reaped = 0;
    while (reaped < n && wait(NULL) > 0)
        reaped++;
    printf("reaped %d\n", reaped);
    return err ? 0 : 1;
}
