/* Times N rounds of fork + execv(PATH, ARGS) + waitpid.
 * usage: spawn N PATH [ARGS...]; prints ns_per_op=<ns> (one op = one spawn and wait). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) { execv(argv[2], argv + 2); _exit(127); }
        int st; waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "bad status %x\n", st); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("ns_per_op=%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
