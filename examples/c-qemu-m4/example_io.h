/* Text output and instruction timing shared by the C examples (main.c, link.c).
   Output goes through sh_puts (semihosting.h: startup.c on the M4, host_io.c on
   the host); nothing here uses printf, so the firmware links no stdio. */
#ifndef EXAMPLE_IO_H
#define EXAMPLE_IO_H
#include <stddef.h>
#include <stdint.h>

#include "tinygnn.h"
#include "semihosting.h"

/* CMSDK APB TIMER0 of mps2-an386 (25 MHz, 32-bit, counts down). Under QEMU
   `-icount shift=10` every instruction takes 2^10 ns of virtual time, so
   instructions = ticks * 1e9 / (25e6 * 2^10) = ticks * 40 / 1024. */
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

/* Starts TIMER0 from the top and returns its first value. */
static inline uint32_t timer0_start(void) {
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1u;
    return TIMER0_VALUE;
}

/* Instructions between two TIMER0 readings (t0 first), rounded. */
static inline size_t timer0_instructions(uint32_t t0, uint32_t t1) {
    return (size_t)((((uint64_t)(t0 - t1)) * 40u + 512u) >> 10);
}

static inline char *put_str(char *p, const char *s) {
    while (*s) *p++ = *s++;
    return p;
}

static inline char *put_uint(char *p, size_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Prints "error <what>: <status name>" and exits with 1. */
static inline void fail(const char *what, tgnn_status s) {
    static char msg[160];
    char *p = put_str(msg, "error ");
    p = put_str(p, what);
    p = put_str(p, ": ");
    p = put_str(p, tgnn_status_name(s));
    put_str(p, "\n")[0] = 0;
    sh_puts(msg);
    sh_exit(1);
}
#endif
