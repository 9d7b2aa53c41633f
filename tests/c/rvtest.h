/*
 * Helpers shared by the test programs in this folder (a header, so build.rs does not build
 * it as a program of its own).
 *
 * Output goes straight to fd 1 with write(2): no stdio buffer that fork would duplicate or
 * _exit would lose. Programs print only facts that are the same on every run and on every
 * correct kernel (counts, errno names, yes/no comparisons), never pids, addresses or times.
 * check() prints "what: yes" or "what: NO" and counts the failures; a program exits with that
 * count (0 natively).
 */
#ifndef RVTEST_H
#define RVTEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

static int failures UNUSED;

/* Writes all of `n` bytes of `p` to fd 1 (async-signal-safe). */
static UNUSED void out_raw(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(120);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* printf to fd 1 with one write(2) per call (not async-signal-safe: not from handlers). */
static UNUSED __attribute__((format(printf, 1, 2))) void out(const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        _exit(121);
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    out_raw(buf, (size_t)n);
}

static UNUSED void check(const char *what, int ok) {
    out("%s: %s\n", what, ok ? "yes" : "NO");
    if (!ok)
        failures++;
}

/* The errno's name ("EAGAIN"), or "ok" for 0. */
static UNUSED const char *err(int e) {
    if (e == 0)
        return "ok";
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* The signal's abbreviation ("USR1"), or "RTMIN+n" for real-time signals. */
static UNUSED const char *signame(int sig) {
    static char buf[4][24];
    static int n;
    char *b = buf[n++ % 4];
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(b, sizeof buf[0], "RTMIN+%d", sig - SIGRTMIN);
    else if (sigabbrev_np(sig))
        snprintf(b, sizeof buf[0], "%s", sigabbrev_np(sig));
    else
        snprintf(b, sizeof buf[0], "SIG%d", sig);
    return b;
}

/* The name of a siginfo si_code for signal `sig`. */
static UNUSED const char *codename(int sig, int code) {
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_TIMER: return "SI_TIMER";
    case SI_MESGQ: return "SI_MESGQ";
    case SI_ASYNCIO: return "SI_ASYNCIO";
    }
    if (sig == SIGCHLD) {
        switch (code) {
        case CLD_EXITED: return "CLD_EXITED";
        case CLD_KILLED: return "CLD_KILLED";
        case CLD_DUMPED: return "CLD_DUMPED";
        case CLD_TRAPPED: return "CLD_TRAPPED";
        case CLD_STOPPED: return "CLD_STOPPED";
        case CLD_CONTINUED: return "CLD_CONTINUED";
        }
    } else if (sig == SIGSEGV) {
        switch (code) {
        case SEGV_MAPERR: return "SEGV_MAPERR";
        case SEGV_ACCERR: return "SEGV_ACCERR";
        }
    } else if (sig == SIGBUS) {
        switch (code) {
        case BUS_ADRALN: return "BUS_ADRALN";
        case BUS_ADRERR: return "BUS_ADRERR";
        case BUS_OBJERR: return "BUS_OBJERR";
        }
    }
    static char buf[32];
    snprintf(buf, sizeof buf, "code %d", code);
    return buf;
}

/* A set-up step that must not fail: otherwise say where and stop with status 99. */
#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            out("%s:%d: set-up failed: %s (%s)\n", __FILE__, __LINE__, #cond, err(errno)); \
            _exit(99);                                                                  \
        }                                                                               \
    } while (0)

static UNUSED int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static UNUSED uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Runs the sections named on the command line (all of them without arguments). */
struct section {
    const char *name;
    void (*run)(void);
};

static UNUSED int run_sections(const struct section *s, size_t n, int argc, char **argv) {
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], s[i].name) == 0)
                wanted = 1;
        if (!wanted)
            continue;
        out("== %s\n", s[i].name);
        s[i].run();
    }
    for (int a = 1; a < argc; a++) {
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(argv[a], s[i].name) == 0;
        if (!known) {
            out("unknown section %s\n", argv[a]);
            return 2;
        }
    }
    return failures > 98 ? 98 : failures;
}

#endif
