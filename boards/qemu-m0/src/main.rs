//! tinygnn on QEMU `microbit` (nRF51822, Cortex-M0, 16 KB RAM).
//!
//! Runs the bundled model on every bundled input graph, prints the report
//! lines of `tinygnn_board_app::run` over semihosting, then the stack
//! high-water mark, and exits QEMU with status 0 (success) or 1.
//!
//! Cost: with `-icount shift=10` every instruction takes 2^10 ns of virtual
//! time; the nRF51 TIMER0 (16 MHz, 32-bit mode, captured through
//! TASKS_CAPTURE[0]) then counts `instructions = ticks · 1e9 / (16e6 · 2^10)`.
//! It wraps after about 262 M instructions per inference, far beyond what a
//! model that fits this board needs.
#![no_std]
#![no_main]

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use cortex_m as _;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use tinygnn_board_app::{stack, Aligned, Board, Clock, Lines, StackProbe};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// The `-icount shift` the runner uses (see .cargo/config.toml).
const ICOUNT_SHIFT: u32 = 10;
const TIMER0: usize = 0x4000_8000;
const TASKS_START: usize = 0x000;
const TASKS_CLEAR: usize = 0x00c;
const TASKS_CAPTURE0: usize = 0x040;
const MODE: usize = 0x504;
const BITMODE: usize = 0x508;
const PRESCALER: usize = 0x510;
const CC0: usize = 0x540;

static mut ARENA: Aligned<[u8; bundle::ARENA_BYTES]> = Aligned([0; bundle::ARENA_BYTES]);

struct Semihosting;

impl Lines for Semihosting {
    fn line(&mut self, line: &str) {
        hprintln!("{}", line);
    }
}

fn reg_write(off: usize, v: u32) {
    // SAFETY: a TIMER0 register of the nRF51 memory map.
    unsafe { write_volatile((TIMER0 + off) as *mut u32, v) }
}

fn reg_read(off: usize) -> u32 {
    // SAFETY: a TIMER0 register of the nRF51 memory map.
    unsafe { read_volatile((TIMER0 + off) as *const u32) }
}

/// Instruction counter from nRF51 TIMER0 under `-icount`.
struct IcountTimer {
    t0: u32,
}

impl IcountTimer {
    fn new() -> Self {
        reg_write(MODE, 0); // timer
        reg_write(BITMODE, 3); // 32 bit
        reg_write(PRESCALER, 0); // 16 MHz
        reg_write(TASKS_CLEAR, 1);
        reg_write(TASKS_START, 1);
        IcountTimer { t0: 0 }
    }

    fn now(&self) -> u32 {
        reg_write(TASKS_CAPTURE0, 1);
        reg_read(CC0)
    }
}

impl Clock for IcountTimer {
    const UNIT: &'static str = "insn";

    fn start(&mut self) {
        self.t0 = self.now();
    }

    fn elapsed(&mut self) -> u64 {
        let ticks = u64::from(self.now().wrapping_sub(self.t0));
        // ticks · 1e9 / (16e6 · 2^shift) = ticks · 125 / 2^(shift+1), rounded.
        (ticks * 125 + (1 << ICOUNT_SHIFT)) >> (ICOUNT_SHIFT + 1)
    }
}

#[entry]
fn main() -> ! {
    let (stack_lo, stack_hi) = stack::cortex_m_rt_region();
    // SAFETY: [__sheap, _stack_start) is the stack region laid out by
    // cortex-m-rt, used by this (only) thread.
    let probe = unsafe { StackProbe::new(stack_lo, stack_hi) };
    // SAFETY: `main` runs once and is the only user of ARENA.
    let arena: &mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let mut board = Board {
        name: "qemu-m0",
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: Semihosting,
        clock: IcountTimer::new(),
        stack: Some(probe),
    };
    let r = tinygnn_board_app::run(&mut board);
    debug::exit(if r.is_ok() {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A fault (e.g. the stack grown into the arena and a clobbered return
/// address, as `shapes-dgcnn` did with a 15.5 KB arena) ends the run with an
/// `error` line and exit status 1 instead of QEMU spinning in the default
/// handler until the runner's timeout.
#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    hprintln!(
        "error hardfault pc={:#010x} lr={:#010x} sp={:#010x}",
        ef.pc(),
        ef.lr(),
        ef as *const ExceptionFrame as usize
    );
    debug::exit(debug::EXIT_FAILURE);
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
