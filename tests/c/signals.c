/*
 * Dies of a signal, so that the test can check how rvisor reports it (exit status 128+N).
 * usage: signals kill|abort|term|segv-after-mprotect
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *s) {
    /* write(2), not stdio: the process dies before stdio would flush. */
    if (write(1, s, strlen(s)) < 0)
        _exit(100);
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "";
    say("about to die\n");
    if (strcmp(how, "kill") == 0) {
        kill(getpid(), SIGKILL);
    } else if (strcmp(how, "abort") == 0) {
        abort();
    } else if (strcmp(how, "term") == 0) {
        raise(SIGTERM);
    } else if (strcmp(how, "segv-after-mprotect") == 0) {
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 101;
        p[0] = 1;
        if (mprotect((void *)p, 4096, PROT_READ) != 0)
            return 102;
        say("writing to a read-only page\n");
        p[0] = 2;
        say("write to a read-only page did not fault\n");
        return 103;
    } else {
        return 2;
    }
    say("still alive\n");
    return 104;
}
