//! tinygnn on the Raspberry Pi Pico (RP2040).
//!
//! Runs the bundled model on every bundled input graph and prints the report
//! lines of `tinygnn_board_app::run` with defmt over RTT. The Cortex-M0+ has
//! no cycle counter: the cost of each inference is in microseconds from the
//! RP2040 TIMER (1 MHz; the core runs at 125 MHz, so cycles ≈ µs × 125). The
//! on-board LED (GPIO25) lights on success and blinks on failure.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use defmt_rtt as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use panic_probe as _;
use rp2040_hal::{self as hal, pac, Clock as _};
use tinygnn_board_app::{stack, Aligned, Board, Clock, DefmtReport, StackProbe};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// The second-stage bootloader for the Pico's W25Q080 flash.
#[link_section = ".boot2"]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XOSC_HZ: u32 = 12_000_000;

static mut ARENA: Aligned<[u8; bundle::ARENA_BYTES]> = Aligned([0; bundle::ARENA_BYTES]);

/// Microseconds from the RP2040 64-bit TIMER.
struct MicrosClock {
    timer: hal::Timer,
    t0: u64,
}

impl Clock for MicrosClock {
    const UNIT: &'static str = "us";
    fn start(&mut self) {
        self.t0 = self.timer.get_counter().ticks();
    }
    fn elapsed(&mut self) -> u64 {
        self.timer.get_counter().ticks().wrapping_sub(self.t0)
    }
}

#[hal::entry]
fn main() -> ! {
    let (stack_lo, stack_hi) = stack::cortex_m_rt_region();
    // SAFETY: [__sheap, _stack_start) is the stack region laid out by
    // cortex-m-rt, used by this (only) thread (core 1 is never started).
    let probe = unsafe { StackProbe::new(stack_lo, stack_hi) };
    let Some(mut pac) = pac::Peripherals::take() else {
        defmt::panic!("peripherals taken twice");
    };
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        XOSC_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        defmt::panic!("clock setup failed");
    };
    defmt::info!("sys clock {=u32} Hz", clocks.system_clock.freq().to_Hz());
    let sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let mut led = pins.gpio25.into_push_pull_output();
    let timer = hal::Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);
    let mut delay = timer;
    // SAFETY: `main` runs once and is the only user of ARENA.
    let arena: &mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let mut board = Board {
        name: "rp-pico",
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: DefmtReport,
        clock: MicrosClock { timer, t0: 0 },
        stack: Some(probe),
    };
    let ok = tinygnn_board_app::run(&mut board).is_ok();
    defmt::info!("done ok={=bool} (cost in microseconds at 125 MHz)", ok);
    loop {
        let _ = led.set_high();
        delay.delay_ms(if ok { 1000 } else { 100 });
        if !ok {
            let _ = led.set_low();
            delay.delay_ms(100);
        }
    }
}
