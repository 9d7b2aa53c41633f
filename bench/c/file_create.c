/* File creation: open(O_CREAT|O_TRUNC) + write(4 KiB) + close + unlink of one name in DIR,
 * in a loop. usage: file_create ITERATIONS DIR; prints ns_per_op=<ns> (one op = four calls) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int once(const char *path) {
    static char buf[4096] = {1};
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = write(fd, buf, sizeof buf) == (ssize_t)sizeof buf;
    ok = close(fd) == 0 && ok;
    return ok && unlink(path) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    long n = atol(argv[1]);
    if (n <= 0)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-create-%d", argv[2], (int)getpid());
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
