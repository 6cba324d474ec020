/* ARM semihosting: the only I/O of the C example (see startup.c). */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H
void sh_puts(const char *s);
void sh_exit(int status) __attribute__((noreturn));
#endif
