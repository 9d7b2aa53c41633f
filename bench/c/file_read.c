/* File syscalls: open + fstat + read(4 KiB) + close of one file, in a loop.
 * usage: file_read ITERATIONS PATH; prints ns_per_op=<ns> (one op = the four calls) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int once(const char *path) {
    static char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof buf &&
             read(fd, buf, sizeof buf) == (ssize_t)sizeof buf;
    close(fd);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    long n = atol(argv[1]);
    const char *path = argv[2];
    if (n <= 0)
        return 2;
    for (long i = 0; i < n / 10 + 1; i++) /* warm-up */
        if (once(path) != 0) {
            perror(path);
            return 1;
        }
    double start = now_ns();
    for (long i = 0; i < n; i++)
        if (once(path) != 0) {
            perror(path);
            return 1;
        }
    double elapsed = now_ns() - start;
    printf("ns_per_op=%.1f\n", elapsed / n);
    return 0;
}
