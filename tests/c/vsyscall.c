/* Calls the legacy vsyscall page (time, gettimeofday) as old static binaries do; Linux
 * emulates the calls (vsyscall=xonly), and so must the sentry. */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
int main(void){
  time_t (*vtime)(time_t*) = (void*)0xffffffffff600400;
  int (*vgtod)(struct timeval*, void*) = (void*)0xffffffffff600000;
  struct timeval tv; time_t t2; time_t t = vtime(&t2);
  int r = vgtod(&tv, 0);
  printf("time ok %d gtod %d %d\n", t == t2 && t > 1600000000, r, tv.tv_sec >= t);
  return 0;
}
