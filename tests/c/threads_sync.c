/*
 * Threads: 8 threads hammering a pthread mutex, condition variables (bounded buffer,
 * broadcast rounds, timed wait), barriers, thread-local storage and thread identities.
 * The pthread primitives are built on futex(2), so this is the futex path glibc uses.
 *
 * usage: threads_sync [SECTION...]   (sections: ids mutex condvar broadcast timedwait barrier)
 * Exit status: the number of failed checks (0 natively).
 */
#include "rvtest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define NTHREADS 8

static pthread_t threads[NTHREADS];

static void start_all(void *(*fn)(void *)) {
    for (long i = 0; i < NTHREADS; i++)
        REQUIRE(pthread_create(&threads[i], NULL, fn, (void *)i) == 0);
}

static long join_all(void) {
    long sum = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        REQUIRE(pthread_join(threads[i], &ret) == 0);
        sum += (long)ret;
    }
    return sum;
}

/* ---- ids: every thread has the process's pid, its own tid and its own TLS. ---- */
static __thread long tls_value = -1;
static pid_t main_pid;

static void *ids_thread(void *arg) {
    long i = (long)arg;
    tls_value = i * 10;
    long ok = getpid() == main_pid && syscall(SYS_gettid) != main_pid &&
              syscall(SYS_gettid) == gettid();
    sched_yield();
    ok &= tls_value == i * 10;
    return (void *)ok;
}

static void section_ids(void) {
    main_pid = getpid();
    tls_value = 5;
    check("main thread's tid is the pid", gettid() == getpid());
    start_all(ids_thread);
    check("8 threads share the pid, have their own tids and their own TLS", join_all() == NTHREADS);
    check("main thread's TLS untouched", tls_value == 5);
}

/* ---- mutex: 8 threads x 200000 increments of a plain counter under one mutex. ---- */
#define INCREMENTS 200000
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static atomic_int inside; /* how many threads are inside the critical section */
static atomic_int overlap;

static void *mutex_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < INCREMENTS; i++) {
        pthread_mutex_lock(&counter_lock);
        if (atomic_fetch_add(&inside, 1) != 0)
            atomic_store(&overlap, 1);
        counter++;
        atomic_fetch_sub(&inside, 1);
        pthread_mutex_unlock(&counter_lock);
    }
    return (void *)0;
}

static void *trylock_thread(void *arg) {
    (void)arg;
    return (void *)(long)pthread_mutex_trylock(&counter_lock);
}

static void section_mutex(void) {
    start_all(mutex_thread);
    join_all();
    out("counter: %ld\n", counter);
    check("counter is 8 x 200000", counter == NTHREADS * INCREMENTS);
    check("no two threads were ever inside the mutex together", atomic_load(&overlap) == 0);
    /* trylock on a mutex another thread holds fails with EBUSY. */
    pthread_mutex_lock(&counter_lock);
    pthread_t t;
    void *ret;
    REQUIRE(pthread_create(&t, NULL, trylock_thread, NULL) == 0);
    REQUIRE(pthread_join(t, &ret) == 0);
    pthread_mutex_unlock(&counter_lock);
    out("trylock of a held mutex from another thread: %s\n", err((int)(long)ret));
}

/* ---- condvar: 4 producers and 4 consumers through a 4-slot buffer. ---- */
#define ITEMS_PER_PRODUCER 20000
#define SLOTS 4
static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static long buffer[SLOTS];
static int head, count, producers_left = NTHREADS / 2;

static void *producer(void *arg) {
    long id = (long)arg;
    for (long i = 1; i <= ITEMS_PER_PRODUCER; i++) {
        pthread_mutex_lock(&buf_lock);
        while (count == SLOTS)
            pthread_cond_wait(&not_full, &buf_lock);
        buffer[(head + count) % SLOTS] = id * 1000000 + i;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&buf_lock);
    }
    pthread_mutex_lock(&buf_lock);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&buf_lock);
    return (void *)0;
}

static void *consumer(void *arg) {
    (void)arg;
    long sum = 0;
    for (;;) {
        pthread_mutex_lock(&buf_lock);
        while (count == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &buf_lock);
        if (count == 0) {
            pthread_mutex_unlock(&buf_lock);
            return (void *)sum;
        }
        sum += buffer[head];
        head = (head + 1) % SLOTS;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&buf_lock);
    }
}

static void *condvar_thread(void *arg) {
    long i = (long)arg;
    return i < NTHREADS / 2 ? producer((void *)i) : consumer(NULL);
}

static void section_condvar(void) {
    start_all(condvar_thread);
    long consumed = join_all();
    long expected = 0;
    for (long id = 0; id < NTHREADS / 2; id++)
        expected += id * 1000000 * ITEMS_PER_PRODUCER + (long)ITEMS_PER_PRODUCER * (ITEMS_PER_PRODUCER + 1) / 2;
    out("sum of consumed items: %ld\n", consumed);
    check("every produced item was consumed exactly once", consumed == expected);
    check("buffer empty at the end", count == 0);
}

/* ---- broadcast: 100 rounds; in each, all 8 threads wait for the round to be announced
 * with pthread_cond_broadcast and then check in. ---- */
#define ROUNDS 100
static pthread_mutex_t round_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t round_start = PTHREAD_COND_INITIALIZER, round_done = PTHREAD_COND_INITIALIZER;
static int round_no, checked_in;

static void *broadcast_thread(void *arg) {
    (void)arg;
    long seen = 0;
    for (int r = 1; r <= ROUNDS; r++) {
        pthread_mutex_lock(&round_lock);
        while (round_no < r)
            pthread_cond_wait(&round_start, &round_lock);
        seen += round_no == r;
        if (++checked_in == NTHREADS)
            pthread_cond_signal(&round_done);
        pthread_mutex_unlock(&round_lock);
    }
    return (void *)seen;
}

static void section_broadcast(void) {
    start_all(broadcast_thread);
    for (int r = 1; r <= ROUNDS; r++) {
        pthread_mutex_lock(&round_lock);
        checked_in = 0;
        round_no = r;
        pthread_cond_broadcast(&round_start);
        while (checked_in < NTHREADS)
            pthread_cond_wait(&round_done, &round_lock);
        pthread_mutex_unlock(&round_lock);
    }
    long seen = join_all();
    out("rounds seen by all threads: %ld\n", seen);
    check("every thread saw every round", seen == NTHREADS * ROUNDS);
}

/* ---- timedwait: nobody signals; the wait ends with ETIMEDOUT after the deadline. ---- */
static void section_timedwait(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c, &ca);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int64_t start = now_ns();
    deadline.tv_nsec += 50 * 1000000;
    if (deadline.tv_nsec >= 1000000000)
        deadline.tv_sec++, deadline.tv_nsec -= 1000000000;
    pthread_mutex_lock(&m);
    int r = pthread_cond_timedwait(&c, &m, &deadline);
    int64_t waited = now_ns() - start;
    pthread_mutex_unlock(&m);
    out("pthread_cond_timedwait with nobody signalling: %s\n", err(r));
    check("waited at least the 50 ms timeout", waited >= 50 * 1000000);
    check("and returned within 5 s", waited < 5000000000LL);
}

/* ---- barrier: 8 threads meet 1000 times; exactly one is the serial thread each time. ---- */
static pthread_barrier_t barrier;
static atomic_int phase_counter;

static void *barrier_thread(void *arg) {
    (void)arg;
    long serial = 0, consistent = 1;
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&phase_counter, 1);
        int r = pthread_barrier_wait(&barrier);
        serial += r == PTHREAD_BARRIER_SERIAL_THREAD;
        /* Everybody has incremented for this phase before anybody passes the barrier. */
        consistent &= atomic_load(&phase_counter) >= (i + 1) * NTHREADS;
        pthread_barrier_wait(&barrier);
    }
    return (void *)(serial * 10 + consistent);
}

static void section_barrier(void) {
    REQUIRE(pthread_barrier_init(&barrier, NULL, NTHREADS) == 0);
    start_all(barrier_thread);
    long r = join_all();
    out("serial threads over 1000 barrier phases: %ld\n", r / 10);
    check("exactly one serial thread per phase", r / 10 == 1000);
    check("no thread passed a barrier before all had arrived", r % 10 == NTHREADS);
}

int main(int argc, char **argv) {
    static const struct section sections[] = {
        {"ids", section_ids},           {"mutex", section_mutex},         {"condvar", section_condvar},
        {"broadcast", section_broadcast}, {"timedwait", section_timedwait}, {"barrier", section_barrier},
    };
    return run_sections(sections, sizeof sections / sizeof sections[0], argc, argv);
}
