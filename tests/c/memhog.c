/* Allocates and touches memory in 1 MiB steps (256 MiB by default, or argv[1] MiB),
 * printing "MiB N" after each step, then "done". Under a memory limit it is expected to
 * be killed (SIGKILL) partway. `memhog N bulk` maps all N MiB at once and fills them with
 * one memset, as fast as the faults go. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long total = argc > 1 ? atol(argv[1]) : 256;
    long page = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && strcmp(argv[2], "bulk") == 0) {
        size_t len = (size_t)total << 20;
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("mmap failed\n");
            return 2;
        }
        memset(p, 1, len);
        printf("done\n");
        return 0;
    }
    for (long i = 1; i <= total; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) {
            printf("malloc failed at MiB %ld\n", i);
            return 2;
        }
        /* Touch every page so it is really allocated. */
        for (long off = 0; off < (1 << 20); off += page)
            p[off] = (char)i;
        printf("MiB %ld\n", i);
    }
    printf("done\n");
    return 0;
}
