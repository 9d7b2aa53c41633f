/*
 * The guest's CPU time: getrusage (self, children), times and CLOCK_PROCESS_CPUTIME_ID
 * grow by what the process (and its waited-for child) spent spinning. Prints yes/no only.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Burns `secs` of wall time in user code (on an idle CPU, about as much CPU time). */
static void spin(double secs) {
    volatile unsigned long x = 0;
    double start = now(CLOCK_MONOTONIC);
    while (now(CLOCK_MONOTONIC) - start < secs)
        for (int i = 0; i < 100000; i++)
            x++;
}

static double total(const struct rusage *ru) {
    return ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 + ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

int main(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("children cpu before any child: %s\n", total(&ru) == 0 ? "zero" : "nonzero");
    spin(0.3);
    getrusage(RUSAGE_SELF, &ru);
    printf("self cpu at least 0.1 s: %s\n", total(&ru) >= 0.1 ? "yes" : "no");
    printf("process cpu clock at least 0.1 s: %s\n", now(CLOCK_PROCESS_CPUTIME_ID) >= 0.1 ? "yes" : "no");
    pid_t p = fork();
    if (p == 0) {
        spin(0.3);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("children cpu at least 0.1 s after waiting: %s\n", total(&ru) >= 0.1 ? "yes" : "no");
    struct tms t;
    times(&t);
    printf("times: self at least 10 ticks: %s, children at least 10 ticks: %s\n",
           t.tms_utime + t.tms_stime >= 10 ? "yes" : "no", t.tms_cutime + t.tms_cstime >= 10 ? "yes" : "no");
    return 0;
}
