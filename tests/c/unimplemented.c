/*
 * Calls the syscall whose number is argv[1] twice with all-zero arguments and prints the
 * errno name of each call ("ok" if it succeeded). Used with a syscall rvisor does not
 * implement: both calls must fail with ENOSYS, and the log must name it once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: unimplemented NR\n");
        return 2;
    }
    long nr = strtol(argv[1], NULL, 10);
    const char *which[] = {"first", "second"};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        long r = syscall(nr, 0L, 0L, 0L, 0L, 0L, 0L);
        const char *name = strerrorname_np(errno);
        printf("%s call: %s\n", which[i], r == -1 ? (name ? name : "E?") : "ok");
    }
    return 0;
}
