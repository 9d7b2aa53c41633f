/* Path lookup: stat(2) of one path, in a loop.
 * usage: stat ITERATIONS PATH; prints ns_per_op=<ns> */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    long n = atol(argv[1]);
    const char *path = argv[2];
    if (n <= 0)
        return 2;
    struct stat st;
    for (long i = 0; i < n / 10 + 1; i++) /* warm-up */
        if (stat(path, &st) != 0) {
            perror(path);
            return 1;
        }
    double start = now_ns();
    for (long i = 0; i < n; i++)
        if (stat(path, &st) != 0) {
            perror(path);
            return 1;
        }
    double elapsed = now_ns() - start;
    printf("ns_per_op=%.1f\n", elapsed / n);
    return 0;
}
