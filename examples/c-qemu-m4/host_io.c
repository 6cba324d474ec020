/* The semihosting calls of the C examples on the host (stdio), so link.c also
   runs as a host program linked with the host's libtinygnn.a. */
#include <stdio.h>
#include <stdlib.h>

#include "semihosting.h"

void sh_puts(const char *s) { fputs(s, stdout); }

void sh_exit(int status) {
    fflush(stdout);
    exit(status);
}
