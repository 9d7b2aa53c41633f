/*
 * Prints its arguments and some environment variables, then exits with the status given as
 * argv[1]. The test runs it natively and in rvisor and compares.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s]\n", i, argv[i]);
    const char *names[] = {"RVISOR_T1", "RVISOR_T2", "RVISOR_T3", "RVISOR_UNSET"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v)
            printf("%s=[%s]\n", names[i], v);
        else
            printf("%s unset\n", names[i]);
    }
    return argc > 1 ? atoi(argv[1]) : 0;
}
