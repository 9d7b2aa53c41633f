/*
 * CPU-time interval timers: ITIMER_PROF and ITIMER_VIRTUAL fire (SIGPROF, SIGVTALRM) while
 * the process spins, and getitimer reports an armed timer. Prints yes/no only.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t prof, vt;
static void on_prof(int s) { (void)s; prof++; }
static void on_vt(int s) { (void)s; vt++; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
    signal(SIGPROF, on_prof);
    signal(SIGVTALRM, on_vt);
    struct itimerval every_20ms = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_PROF, &every_20ms, NULL);
    setitimer(ITIMER_VIRTUAL, &every_20ms, NULL);
    struct itimerval cur;
    getitimer(ITIMER_PROF, &cur);
    printf("getitimer shows the interval: %s\n", cur.it_interval.tv_usec == 20000 ? "yes" : "no");
    volatile unsigned long x = 0;
    double start = now();
    while ((prof < 3 || vt < 3) && now() - start < 10)
        for (int i = 0; i < 100000; i++)
            x++;
    printf("SIGPROF fired repeatedly: %s\n", prof >= 3 ? "yes" : "no");
    printf("SIGVTALRM fired repeatedly: %s\n", vt >= 3 ? "yes" : "no");
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    getitimer(ITIMER_PROF, &cur);
    printf("disarmed: %s\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0 ? "yes" : "no");
    return 0;
}
