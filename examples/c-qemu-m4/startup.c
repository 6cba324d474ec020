/* Minimal bare-metal start-up for QEMU mps2-an386 (Cortex-M4F): vector table,
   .data/.bss initialisation, FPU enable, and ARM semihosting for output and
   exit (QEMU runs with -semihosting-config enable=on,target=native). */
#include <stdint.h>
#include "semihosting.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
int main(void);

static void default_handler(void) {
    sh_puts("error: unexpected exception\n");
    sh_exit(1);
}

void reset_handler(void) {
    /* Full access to CP10/CP11 (the FPU): libtinygnn.a is built for the
       hard-float ABI (thumbv7em-none-eabihf). */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm volatile("dsb\n isb" ::: "memory");
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    sh_exit(main());
}

/* Initial stack pointer, reset, then NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".vectors"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))(&__stack_top), reset_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler,
};

static int semihost(int op, const void *arg) {
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_puts(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

void sh_exit(int status) {
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (QEMU exit status 0) or
       ADP_Stopped_RunTimeErrorUnknown (exit status 1). */
    semihost(0x18, (const void *)(status == 0 ? 0x20026 : 0x20023));
    for (;;) {}
}
