//! Stack high-water measurement by painting.
//!
//! At boot, [`paint`] fills the free stack (from the lowest address the stack
//! may reach up to a little below the current stack pointer) with a pattern;
//! after the work, [`high_water`] finds the lowest word that no longer holds
//! it. The result is the deepest the stack went since painting, to 4 bytes
//! (a frame that reserved stack but never wrote it is not seen).
//!
//! The bounds come from the linker: with cortex-m-rt, the stack grows down
//! from `_stack_start` and may reach `_stack_end` (by default `__sheap`, the
//! end of `.bss`/`.uninit`; the M0's memory.x puts the stack below `.data`
//! instead, from `_stack_start` down to the start of RAM), see
//! [`cortex_m_rt_region`].
//!
//! [`StackProbe`] keeps the deepest use across repaints, so a board reports
//! both the stack of each inference and of the whole run (model parsing,
//! bundle decoding, reporting).
#![allow(unsafe_code)]

/// The paint pattern.
pub const PATTERN: u32 = 0xA5A5_5A5A;
/// Bytes left unpainted below the current stack pointer (the painter's own frame).
const MARGIN: usize = 256;

/// The approximate current stack pointer (address of a local).
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    core::ptr::addr_of!(marker) as usize
}

/// Paints `[lo, sp − 256)` with [`PATTERN`]. Call once, early, from the
/// main thread.
///
/// # Safety
/// `lo` must be the lowest address of a region reserved for the stack (no
/// static or heap data in `[lo, current sp)`), 4-aligned.
pub unsafe fn paint(lo: usize) {
    let top = stack_pointer().saturating_sub(MARGIN) & !3;
    let mut p = lo;
    while p < top {
        // SAFETY: by the caller's contract, [lo, sp) is unused stack; we stay
        // MARGIN bytes below our own frame.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// Bytes of stack used since [`paint`]: `hi` minus the lowest overwritten word.
///
/// # Safety
/// `[lo, hi)` must be the stack region given to [`paint`] (readable memory).
pub unsafe fn high_water(lo: usize, hi: usize) -> usize {
    let mut p = lo;
    while p < hi {
        // SAFETY: [lo, hi) is readable RAM (the stack region).
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PATTERN {
            break;
        }
        p += 4;
    }
    hi - p
}

/// A painted stack region: [`StackProbe::new`] paints it once (the unsafe
/// step, with the contract of [`paint`]); then it can be repainted and
/// measured any time from the same thread, safely.
#[derive(Debug)]
pub struct StackProbe {
    lo: usize,
    hi: usize,
    /// Deepest use seen before the last repaint.
    deepest: usize,
}

impl StackProbe {
    /// Paints `[lo, sp − 256)`.
    ///
    /// # Safety
    /// `[lo, hi)` must be the stack region of the calling thread (no static
    /// or heap data in it, readable and writable, 4-aligned), the stack
    /// growing down from `hi`; the probe must be used from this thread only.
    pub unsafe fn new(lo: usize, hi: usize) -> Self {
        // SAFETY: forwarded contract.
        unsafe { paint(lo) };
        StackProbe { lo, hi, deepest: 0 }
    }

    /// Repaints the unused part of the stack (below the caller's frame),
    /// first folding the deepest use so far into [`StackProbe::deepest`].
    pub fn repaint(&mut self) {
        self.deepest = self.deepest.max(self.high_water());
        // SAFETY: the region was vouched for in `new`; painting stops below
        // the current stack pointer, so no live frame is touched.
        unsafe { paint(self.lo) }
    }

    /// Deepest stack use since the last paint, in bytes from the top.
    pub fn high_water(&self) -> usize {
        // SAFETY: the region was vouched for in `new`.
        unsafe { high_water(self.lo, self.hi) }
    }

    /// Deepest stack use since [`StackProbe::new`] (the boot paint), across
    /// every repaint, in bytes from the top.
    pub fn deepest(&self) -> usize {
        self.deepest.max(self.high_water())
    }

    /// Current depth: bytes between the stack top and the caller's frame.
    pub fn depth(&self) -> usize {
        self.hi.saturating_sub(stack_pointer())
    }

    /// Bytes of the region.
    pub fn size(&self) -> usize {
        self.hi - self.lo
    }
}

/// The stack region `(lowest, top)` laid out by cortex-m-rt's `link.x`:
/// `[_stack_end, _stack_start)` (`_stack_end` defaults to `__sheap`, the end
/// of `.bss`/`.uninit`; a memory.x may set both, as the M0's does).
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn cortex_m_rt_region() -> (usize, usize) {
    extern "C" {
        static _stack_end: u32;
        static _stack_start: u32;
    }
    // Only the addresses of these linker symbols are taken (safe since Rust 1.82).
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// The stack region `(lowest, top)` laid out by esp-hal's linker scripts
/// (RISC-V chips: the stack grows down from `_stack_start` to `_stack_end`).
#[cfg(all(target_arch = "riscv32", target_os = "none"))]
pub fn esp_riscv_region() -> (usize, usize) {
    extern "C" {
        static _stack_end: u32;
        static _stack_start: u32;
    }
    // Only the addresses of these linker symbols are taken (safe since Rust 1.82).
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}
