//! tinygnn on QEMU `mps2-an386` (Cortex-M4F).
//!
//! Runs the bundled model on every bundled input graph, prints the report
//! lines of `tinygnn_board_app::run` over semihosting, then the stack
//! high-water mark, and exits QEMU with status 0 (success) or 1. With
//! feature `defmt` the report goes through `DefmtReport` instead (defmt
//! frames over semihosting, for `defmt-print`): the real defmt boards' path.
//!
//! Cost: with `-icount shift=10` every instruction takes 2^10 ns of virtual
//! time; the CMSDK APB TIMER0 (25 MHz, 32-bit) then counts
//! `instructions = ticks · 1e9 / (25e6 · 2^10)`. TIMER0 wraps after about
//! 168 M instructions, so the CMSDK dual timer, prescaled by 256, runs
//! alongside and says how many times it wrapped.
//!
//! Memory: the model and the inputs are in the 4 MiB "flash" at 0, `.data`,
//! `.bss` and the stack in the 4 MiB RAM at 0x2000_0000, and the arena in
//! the 16 MiB RAM at 0x2100_0000 (section `.ram2`, see memory/mps2-an386.x), so that
//! whole-graph inference on Cora (a ~4.2 MB arena) fits. With feature
//! `nrf52840` the same firmware links with memory/nrf52840.x instead: the
//! nRF52840's 1 MiB of flash and 256 KiB of RAM (the stack, then the arena,
//! then `.data`/`.bss`), so what runs there fits that chip.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use tinygnn_board_app::{stack, Aligned, Board, Clock, StackProbe};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// The `-icount shift` the runner uses (see .cargo/config.toml).
const ICOUNT_SHIFT: u32 = 10;
const TIMER0: usize = 0x4000_0000;
const DUALTIMER1: usize = 0x4000_2000;

/// The arena, in RAM2 (NOLOAD: not initialised by cortex-m-rt; `main`
/// zeroes it before making a slice of it).
#[link_section = ".ram2.arena"]
static mut ARENA: MaybeUninit<Aligned<[u8; bundle::ARENA_BYTES]>> = MaybeUninit::uninit();

/// Report lines over semihosting (the text `scripts/qemu-run.sh` parses).
#[cfg(not(feature = "defmt"))]
#[derive(Default)]
struct Semihosting;

/// Where the report goes: text lines, or defmt frames (feature `defmt`).
#[cfg(not(feature = "defmt"))]
type Reporter = Semihosting;
#[cfg(feature = "defmt")]
type Reporter = tinygnn_board_app::DefmtReport;
#[cfg(feature = "defmt")]
use defmt_semihosting as _;

#[cfg(not(feature = "defmt"))]
impl tinygnn_board_app::Lines for Semihosting {
    fn line(&mut self, line: &str) {
        hprintln!("{}", line);
    }
}

/// Instruction counter from the CMSDK timers under `-icount`.
struct IcountTimers {
    fine: u32,
    coarse: u32,
}

fn mmio_read(addr: usize) -> u32 {
    // SAFETY: a CMSDK timer register of the mps2-an386 memory map.
    unsafe { read_volatile(addr as *const u32) }
}

fn mmio_write(addr: usize, v: u32) {
    // SAFETY: a CMSDK timer register of the mps2-an386 memory map.
    unsafe { write_volatile(addr as *mut u32, v) }
}

impl IcountTimers {
    fn new() -> Self {
        // TIMER0: reload and start at 0xffff_ffff, enabled, no interrupt.
        mmio_write(TIMER0 + 0x8, u32::MAX);
        mmio_write(TIMER0 + 0x4, u32::MAX);
        mmio_write(TIMER0, 1);
        // Dual timer 1: free-running, 32-bit, prescale /256, enabled.
        mmio_write(DUALTIMER1, u32::MAX);
        mmio_write(DUALTIMER1 + 0x8, 0x80 | (0b10 << 2) | 0x02);
        IcountTimers { fine: 0, coarse: 0 }
    }

    fn read(&self) -> (u32, u32) {
        (mmio_read(TIMER0 + 0x4), mmio_read(DUALTIMER1 + 0x4))
    }
}

impl Clock for IcountTimers {
    const UNIT: &'static str = "insn";

    // Not inlined: scripts/m4-profile.sh windows its per-address profile
    // between the entries of `start` and `elapsed`.
    #[inline(never)]
    fn start(&mut self) {
        (self.fine, self.coarse) = self.read();
    }

    #[inline(never)]
    fn elapsed(&mut self) -> u64 {
        let (fine, coarse) = self.read();
        // Both count down.
        let fine_mod = u64::from(self.fine.wrapping_sub(fine));
        let coarse = u64::from(self.coarse.wrapping_sub(coarse)) * 256;
        // Number of TIMER0 wraps that makes the fine count agree with the coarse one.
        let wraps = (coarse.saturating_sub(fine_mod) + (1 << 31)) >> 32;
        let ticks = fine_mod + (wraps << 32);
        // ticks · 1e9 / (25e6 · 2^shift) = ticks · 40 / 2^shift, rounded.
        (ticks * 40 + (1 << (ICOUNT_SHIFT - 1))) >> ICOUNT_SHIFT
    }
}

#[entry]
fn main() -> ! {
    let (stack_lo, stack_hi) = stack::cortex_m_rt_region();
    // SAFETY: [__sheap, _stack_start) is the stack region laid out by
    // cortex-m-rt, used by this (only) thread.
    let probe = unsafe { StackProbe::new(stack_lo, stack_hi) };
    // SAFETY: `main` runs once and is the only user of ARENA; the bytes are
    // written (zeroed) before the reference to them is made, and every bit
    // pattern is a valid `[u8; N]`.
    let arena: &mut [u8] = unsafe {
        let p = addr_of_mut!(ARENA);
        (*p).as_mut_ptr().write_bytes(0, 1);
        &mut (*p).assume_init_mut().0
    };
    let mut board = Board {
        name: if cfg!(feature = "nrf52840") {
            "qemu-m4-nrf52840"
        } else {
            "qemu-m4"
        },
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: Reporter::default(),
        clock: IcountTimers::new(),
        stack: Some(probe),
    };
    #[cfg(not(tinygnn_incremental))]
    let r = tinygnn_board_app::run(&mut board);
    #[cfg(tinygnn_incremental)]
    let r = tinygnn_board_app::run_incremental(&mut board);
    debug::exit(if r.is_ok() {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("error panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
