/*
 * mincore over a huge reserved mapping (64 GiB, PROT_NONE, nothing touched) and over a
 * range with a hole: the answers must match Linux without the kernel side allocating a
 * vector for the whole range at once. Prints deterministic facts only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    size_t len = (size_t)64 << 30;
    unsigned char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return 2;
    size_t pages = len / 4096;
    unsigned char *vec = malloc(pages);
    if (!vec)
        return 3;
    memset(vec, 0xff, pages);
    int r = mincore(p, len, vec);
    size_t resident = 0;
    for (size_t i = 0; i < pages; i++)
        resident += vec[i] & 1;
    printf("mincore of 64 GiB untouched: %d, resident pages: %zu\n", r, resident);
    munmap(p + 4096 * 10, 4096);
    r = mincore(p, 4096 * 20, vec);
    printf("mincore across a hole: %d %s\n", r, r ? strerror(errno) : "");
    return 0;
}
