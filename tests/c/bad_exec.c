/*
 * Hostile execve input.
 *
 *   bad_exec elf SEED N DIR  mutates this (static) program's ELF header and program headers N
 *                            times (seeded: truncations, huge p_filesz/p_memsz, p_offset past
 *                            EOF, overlapping segments, PT_INTERP nowhere/huge/unterminated,
 *                            e_phnum 0/65535, wrong class/data/machine/type, bad e_phoff,
 *                            e_phentsize, entry, alignments, random byte flips), writes each
 *                            mutant to DIR and execs it in a child. The exec must fail with
 *                            an errno a bad binary deserves, or the child must run (a mutant
 *                            that still works exits at once) or die of a signal. Prints
 *                            "elf mutants: N, ran: R, failed: F, signalled: S, odd: 0".
 *   bad_exec argv            execve with oversized argv/envp; prints each result (the same
 *                            natively and in rvisor: E2BIG past MAX_ARG_STRLEN or ARG_MAX).
 *   bad_exec child           what a mutant that still runs does: exit 42.
 * (`elf ... DIR v` prints each mutant's outcome too.)
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

static const uint64_t hostile[] = {
    0, 1, 0x1000, 0xfff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull, 0x7ffffffff000ull,
    0x800000000000ull, 0xffff800000000000ull, 0xffffffffff600000ull, 0xffffffffffffffffull,
    0xfffffffffffff000ull, 0x4000000000000000ull, 1ull << 47, 3, 0x400000,
};
static uint64_t hval(void) { return rnd() % 3 ? hostile[rnd() % (sizeof hostile / sizeof *hostile)] : rnd(); }

static char *img;
static char desc[128];      /* which mutations, for `v` output */
static size_t img_len;

/* Applies one random mutation to `m` (length *len). */
static void mutate(unsigned char *m, size_t *len) {
    Elf64_Ehdr *e = (Elf64_Ehdr *)m;
    size_t nph = e->e_phnum;
    Elf64_Phdr *ph = 0;
    if (e->e_phoff < *len && e->e_phentsize == sizeof(Elf64_Phdr) && nph > 0 &&
        e->e_phoff + nph * sizeof(Elf64_Phdr) <= *len)
        ph = (Elf64_Phdr *)(m + e->e_phoff);
    Elf64_Phdr *p = ph ? &ph[rnd() % nph] : 0;
    int kind = rnd() % 16;
    size_t dl = strlen(desc);
    snprintf(desc + dl, sizeof desc - dl, " m%d", kind);
    switch (kind) {
    case 0: *len = rnd() % 3 ? rnd() % 1024 : rnd() % *len; break;          /* truncate */
    case 1: if (p) p->p_filesz = hval(); break;
    case 2: if (p) p->p_memsz = hval(); break;
    case 3: if (p) p->p_offset = rnd() % 2 ? img_len + rnd() % 100000 : hval(); break;
    case 4: if (p && ph) { Elf64_Phdr *q = &ph[rnd() % nph]; p->p_vaddr = q->p_vaddr + rnd() % 0x2000; p->p_type = PT_LOAD; } break;
    case 5: /* PT_INTERP somewhere */
        if (p) {
            p->p_type = PT_INTERP;
            switch (rnd() % 4) {
            case 0: p->p_offset = hval(); p->p_filesz = hval(); break;
            case 1: p->p_filesz = 0x100000 + rnd() % 0x1000000; break;
            case 2: p->p_offset = 64; p->p_filesz = 8; break;         /* not NUL-terminated */
            default: {
                static const char nowhere[] = "/nonexistent/ld.so";
                if (*len > 0x300 + sizeof nowhere) { memcpy(m + 0x300, nowhere, sizeof nowhere); p->p_offset = 0x300; p->p_filesz = sizeof nowhere; }
            }
            }
        }
        break;
    case 6: { static const uint16_t n[] = {0, 65535, 1, 64, 2000}; e->e_phnum = n[rnd() % 5]; break; }
    case 7: e->e_ident[EI_CLASS] = rnd() % 2 ? ELFCLASS32 : (unsigned char)rnd(); break;
    case 8: e->e_machine = rnd() % 2 ? EM_386 : (uint16_t)rnd(); break;
    case 9: e->e_phoff = rnd() % 2 ? hval() : e->e_phoff + 1 + rnd() % 8; break;
    case 10: e->e_phentsize = (uint16_t)(rnd() % 2 ? 0 : rnd()); break;
    case 11: e->e_entry = hval(); break;
    case 12: if (p) { p->p_align = hval(); p->p_vaddr = rnd() % 2 ? hval() : p->p_vaddr; } break;
    case 13: e->e_type = (uint16_t)(rnd() % 2 ? ET_DYN : rnd() % 5); break;
    case 14: e->e_ident[EI_DATA] = ELFDATA2MSB; break;
    default: for (int i = 0; i < 8 && *len; i++) m[rnd() % (*len < 4096 ? *len : 4096)] ^= (unsigned char)rnd(); break;
    }
}

static int expected_errno(int e) {
    switch (e) {
    case ENOEXEC: case EINVAL: case ENOMEM: case EFAULT: case ENOENT: case ELIBBAD: case EACCES:
    case EIO: case ENOTDIR: case ELOOP: case EISDIR: case ENAMETOOLONG: case E2BIG: case ETXTBSY:
        return 1;
    }
    return 0;
}

static int verbose;
static int elf_mode(uint64_t seed, int n, const char *dir) {
    s = seed | 1;
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror("self"); return 1; }
    img_len = st.st_size;
    img = malloc(img_len);
    unsigned char *m = malloc(img_len);
    if (!img || !m || read(fd, img, img_len) != (ssize_t)img_len) { perror("read self"); return 1; }
    close(fd);
    int ran = 0, failed = 0, signalled = 0, odd = 0;
    for (int i = 0; i < n; i++) {
        memcpy(m, img, img_len);
        size_t len = img_len;
        int k = 1 + rnd() % 3;
        desc[0] = 0;
        for (int j = 0; j < k; j++) mutate(m, &len);
        char path[256];
        snprintf(path, sizeof path, "%s/mutant.%d", dir, i);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (out < 0) { perror(path); return 1; }
        if (write(out, m, len) != (ssize_t)len) { perror("write mutant"); return 1; }
        close(out);
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) != 0) { perror("pipe"); return 1; }
        pid_t c = fork();
        if (c == 0) {
            alarm(5);
            char *argv[] = {"mutant", "child", 0};
            char *envp[] = {0};
            execve(path, argv, envp);
            int e = errno;
            if (write(pfd[1], &e, sizeof e) != sizeof e) { /* parent sees no errno */ }
            _exit(127);
        }
        close(pfd[1]);
        int e = 0, st2 = 0;
        ssize_t got = read(pfd[0], &e, sizeof e);
        close(pfd[0]);
        waitpid(c, &st2, 0);
        unlink(path);
        if (verbose) {
            if (got == sizeof e) printf("%d:%s: errno %d\n", i, desc, e);
            else if (WIFSIGNALED(st2)) printf("%d:%s: signal %d\n", i, desc, WTERMSIG(st2));
            else printf("%d:%s: exit %d\n", i, desc, WEXITSTATUS(st2));
        }
        if (got == sizeof e) {
            if (expected_errno(e)) failed++;
            else { odd++; printf("mutant %d: execve failed with odd errno %d (%s)\n", i, e, strerror(e)); }
        } else if (WIFSIGNALED(st2)) {
            signalled++;
        } else if (WIFEXITED(st2) && WEXITSTATUS(st2) == 0) {
            ran++;
        } else {
            /* A mutant whose code still runs but whose data is damaged may exit oddly. */
            ran++;
        }
    }
    printf("elf mutants: %d, ran: %d, failed: %d, signalled: %d, odd: %d\n", n, ran, failed, signalled, odd);
    return 0;
}

/* execve(self, argv, envp) in a child; prints what happened. */
static void try_exec(const char *what, char **argv, char **envp) {
    pid_t c = fork();
    if (c == 0) {
        execve("/proc/self/exe", argv, envp);
        printf("%s: %s\n", what, strerror(errno));
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 42) printf("%s: ran\n", what);
    else if (!WIFEXITED(st)) printf("%s: died of signal %d\n", what, WTERMSIG(st));
}

static char *str(size_t n, char c) {
    char *p = malloc(n + 1);
    if (!p) { perror("malloc"); exit(1); }
    memset(p, c, n);
    p[n] = 0;
    return p;
}

static int argv_mode(void) {
    char *env0[] = {0};
    /* One string at and past MAX_ARG_STRLEN (131072, counting its NUL). */
    char *a1[] = {"x", "child", str(131071, 'a'), 0};
    try_exec("arg of 131071 bytes", a1, env0);
    char *a2[] = {"x", "child", str(131072, 'a'), 0};
    try_exec("arg of 131072 bytes", a2, env0);
    char *e1[] = {str(131072, 'e'), 0};
    char *a3[] = {"x", "child", 0};
    try_exec("env string of 131072 bytes", a3, e1);
    /* Far past ARG_MAX (a quarter of the stack rlimit, 2 MiB by default). */
    int n = 200;
    char **many = calloc(n + 3, sizeof *many);
    char *chunk = str(100000, 'b');
    many[0] = "x"; many[1] = "child";
    for (int i = 0; i < n; i++) many[2 + i] = chunk;
    try_exec("200 args of 100000 bytes", many, env0);
    char **envs = calloc(n + 1, sizeof *envs);
    for (int i = 0; i < n; i++) envs[i] = chunk;
    try_exec("200 env strings of 100000 bytes", a3, envs);
    /* Many empty strings: the pointers alone are past ARG_MAX. */
    int m = 3000000;
    char **empty = calloc(m + 1, sizeof *empty);
    if (!empty) { perror("calloc"); return 1; }
    empty[0] = "x"; empty[1] = "child";
    for (int i = 2; i < m; i++) empty[i] = "";
    try_exec("3000000 empty args", empty, env0);
    /* A modest argv still works. */
    char *ok[] = {"x", "child", str(1000, 'c'), str(50000, 'd'), 0};
    try_exec("51000 bytes of args", ok, env0);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "child")) return 42;
    if (argc >= 5 && !strcmp(argv[1], "elf")) {
        verbose = argc > 5;
        return elf_mode(strtoull(argv[2], 0, 10), atoi(argv[3]), argv[4]);
    }
    if (argc >= 2 && !strcmp(argv[1], "argv")) return argv_mode();
    fprintf(stderr, "usage: bad_exec elf SEED N DIR | bad_exec argv\n");
    return 2;
}
