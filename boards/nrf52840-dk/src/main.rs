//! tinygnn on the nRF52840-DK.
//!
//! Runs the bundled model on every bundled input graph and prints the report
//! lines of `tinygnn_board_app::run` with defmt over RTT; the cost of each
//! inference is in CPU cycles (DWT CYCCNT, 64 MHz). LED1 lights on success,
//! LED2 on failure; then the core halts on a breakpoint so `probe-rs run`
//! returns.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;
use panic_probe as _;
use tinygnn_board_app::{stack, Aligned, Board, DefmtReport, DwtClock, StackProbe};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

static mut ARENA: Aligned<[u8; bundle::ARENA_BYTES]> = Aligned([0; bundle::ARENA_BYTES]);

#[entry]
fn main() -> ! {
    let (stack_lo, stack_hi) = stack::cortex_m_rt_region();
    // SAFETY: [__sheap, _stack_start) is the stack region laid out by
    // cortex-m-rt, used by this (only) thread.
    let probe = unsafe { StackProbe::new(stack_lo, stack_hi) };
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    let port0 = p0::Parts::new(dp.P0);
    // LEDs are active low.
    let mut led_ok = port0.p0_13.into_push_pull_output(Level::High);
    let mut led_err = port0.p0_14.into_push_pull_output(Level::High);
    let clock = DwtClock::new(&mut cp.DCB, &mut cp.DWT);
    // SAFETY: `main` runs once and is the only user of ARENA.
    let arena: &mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let mut board = Board {
        name: "nrf52840-dk",
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: DefmtReport,
        clock,
        stack: Some(probe),
    };
    let ok = tinygnn_board_app::run(&mut board).is_ok();
    let _ = if ok {
        led_ok.set_low()
    } else {
        led_err.set_low()
    };
    defmt::info!("done ok={=bool} (cycles at 64 MHz)", ok);
    loop {
        cortex_m::asm::bkpt();
    }
}
