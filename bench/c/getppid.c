/* Syscall round trip: getppid(2) through syscall(2), so that libc cannot cache it.
 * usage: getppid ITERATIONS; prints ns_per_op=<ns> */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (n <= 0)
        return 2;
    long sink = 0;
    for (long i = 0; i < n / 10 + 1; i++) /* warm-up */
        sink += syscall(SYS_getppid);
    double start = now_ns();
    for (long i = 0; i < n; i++)
        sink += syscall(SYS_getppid);
    double elapsed = now_ns() - start;
    printf("ns_per_op=%.1f\n", elapsed / n);
    return sink == -12345 ? 1 : 0;
}
