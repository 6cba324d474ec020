//! tinygnn on the NUCLEO-H743ZI (STM32H743ZI, Cortex-M7).
//!
//! Runs the bundled model on every bundled input graph and prints the report
//! lines of `tinygnn_board_app::run` with defmt over RTT; the cost of each
//! inference is in CPU cycles (DWT CYCCNT) at 400 MHz with the I- and
//! D-caches on. LD1 (green, PB0) lights on success, LD3 (red, PB14) on
//! failure; then the core halts on a breakpoint so `probe-rs run` returns.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use stm32h7xx_hal::{pac, prelude::*};
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
    let pwrcfg = dp.PWR.constrain().freeze();
    let ccdr = dp
        .RCC
        .constrain()
        .sys_ck(400.MHz())
        .freeze(pwrcfg, &dp.SYSCFG);
    cp.SCB.enable_icache();
    cp.SCB.enable_dcache(&mut cp.CPUID);
    let gpiob = dp.GPIOB.split(ccdr.peripheral.GPIOB);
    let mut led_ok = gpiob.pb0.into_push_pull_output();
    let mut led_err = gpiob.pb14.into_push_pull_output();
    let clock = DwtClock::new(&mut cp.DCB, &mut cp.DWT);
    defmt::info!("sys_ck {=u32} Hz", ccdr.clocks.sys_ck().raw());
    // SAFETY: `main` runs once and is the only user of ARENA.
    let arena: &mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let mut board = Board {
        name: "nucleo-h743zi",
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: DefmtReport,
        clock,
        stack: Some(probe),
    };
    let ok = tinygnn_board_app::run(&mut board).is_ok();
    if ok {
        led_ok.set_high();
    } else {
        led_err.set_high();
    }
    defmt::info!("done ok={=bool} (cycles at 400 MHz)", ok);
    loop {
        cortex_m::asm::bkpt();
    }
}
