/*
 * A 32-bit `int 0x80` syscall from a 64-bit program (i386 getpid, number 20 — writev as
 * an x86_64 number). Natively it returns the pid; rvisor does not emulate the i386 table
 * and must answer ENOSYS rather than run x86_64 syscall 20.
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    printf("int 0x80 getpid: %s\n", r == getpid() ? "the pid" : (r == -38 ? "ENOSYS" : "something else"));
    return 0;
}
