//! Feature `qemu`: measures the stack high-water mark of [`super::inference`]
//! by painting the free stack, and reports it through semihosting.
//!
//! ```text
//! qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native -kernel FIRMWARE
//! ```
//! prints `stack high-water: N bytes (inference runs ok: 3, karate output == expected: 1)`
//! and exits 0 when the three runs succeeded and the outputs of the float and
//! the sparse run match `models/karate-gcn/expected_int8.bin`, else 1.

use core::ptr::{addr_of, read_volatile, write_volatile};

extern "C" {
    /// End of `.bss`/`.uninit` (cortex-m-rt): the lowest address the stack may reach.
    static _stack_end: u32;
}

const PAINT: u32 = 0x5AA5_C33C;
/// Words just below the current stack pointer left unpainted.
const MARGIN: usize = 64;

fn semihosting_write0(s: &[u8]) {
    // SAFETY: SYS_WRITE0 (0x04) reads a NUL-terminated string; `s` ends with 0.
    unsafe {
        cortex_m::asm::semihosting_syscall(0x04, s.as_ptr() as u32);
    }
}

fn exit(success: bool) -> ! {
    // SYS_EXIT (0x18): ADP_Stopped_ApplicationExit (exit 0) or RunTimeErrorUnknown (exit 1).
    let reason = if success { 0x2_0026 } else { 0x2_0023 };
    // SAFETY: SYS_EXIT does not return under QEMU.
    unsafe {
        cortex_m::asm::semihosting_syscall(0x18, reason);
    }
    loop {
        cortex_m::asm::nop();
    }
}

/// Appends `v` in decimal to `buf` at `*at`.
fn put_u32(buf: &mut [u8], at: &mut usize, v: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = v;
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 || n >= digits.len() {
            break;
        }
    }
    while n > 0 {
        n -= 1;
        put_str(buf, at, &[digits.get(n).copied().unwrap_or(b'?')]);
    }
}

fn put_str(buf: &mut [u8], at: &mut usize, s: &[u8]) {
    for &b in s {
        if let Some(slot) = buf.get_mut(*at) {
            *slot = b;
            *at += 1;
        }
    }
}

pub fn measure_and_exit() -> ! {
    // Only the address of the linker symbol is taken.
    let lo = addr_of!(_stack_end) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp.saturating_sub(MARGIN);
    // Paint the free stack [lo, top). Nothing lives there: it is below this
    // frame and above the static data.
    let mut p = lo;
    while p < top {
        // SAFETY: word-aligned addresses of unused RAM.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    let ok = super::inference();
    let mut p = lo;
    // SAFETY: as above.
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    let used = sp.saturating_sub(p) as u32;
    // SAFETY: single-threaded; written only by `super::sink`.
    let same_f32 = unsafe { read_volatile(addr_of!(super::SINK).cast::<u32>().add(2)) };
    // SAFETY: as above.
    let same_sparse = unsafe { read_volatile(addr_of!(super::SINK).cast::<u32>().add(8)) };
    let same = u32::from(same_f32 == 1 && same_sparse == 1);

    let mut buf = [0u8; 128];
    let mut at = 0;
    put_str(&mut buf, &mut at, b"stack high-water: ");
    put_u32(&mut buf, &mut at, used);
    put_str(&mut buf, &mut at, b" bytes (inference runs ok: ");
    put_u32(&mut buf, &mut at, ok);
    put_str(&mut buf, &mut at, b", karate output == expected: ");
    put_u32(&mut buf, &mut at, same);
    put_str(&mut buf, &mut at, b")\n\0");
    if let Some(last) = buf.last_mut() {
        *last = 0;
    }
    semihosting_write0(&buf);
    exit(ok == 3 && same == 1)
}
