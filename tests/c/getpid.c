/* Prints the process id, from glibc and from the raw syscall. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    printf("getpid=%d\n", (int)getpid());
    printf("SYS_getpid=%ld\n", syscall(SYS_getpid));
    return 0;
}
