//! tinygnn on an ESP32-C3 board (e.g. ESP32-C3-DevKitM-1).
//!
//! Runs the bundled model on every bundled input graph and prints the report
//! lines of `tinygnn_board_app::run` with esp-println (USB-serial-JTAG or
//! UART0, shown by `espflash --monitor`); the cost of each inference is in
//! microseconds from the system timer (the CPU runs at 160 MHz). The result
//! is the printed report (the DevKit's LED is an addressable RGB LED, left alone).
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use esp_backtrace as _;
use esp_hal::time::Instant;
use esp_println::println;
use tinygnn_board_app::{stack, Aligned, Board, Clock, Lines, StackProbe};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

esp_bootloader_esp_idf::esp_app_desc!();

static mut ARENA: Aligned<[u8; bundle::ARENA_BYTES]> = Aligned([0; bundle::ARENA_BYTES]);

struct Println;

impl Lines for Println {
    fn line(&mut self, line: &str) {
        println!("{}", line);
    }
}

/// Microseconds from the system timer.
struct Micros(Instant);

impl Clock for Micros {
    const UNIT: &'static str = "us";
    fn start(&mut self) {
        self.0 = Instant::now();
    }
    fn elapsed(&mut self) -> u64 {
        self.0.elapsed().as_micros()
    }
}

#[esp_hal::main]
fn main() -> ! {
    let config = esp_hal::Config::default().with_cpu_clock(esp_hal::clock::CpuClock::max());
    let _peripherals = esp_hal::init(config);
    let (stack_lo, stack_hi) = stack::esp_riscv_region();
    // SAFETY: [_stack_end, _stack_start) is the stack region of esp-hal's
    // linker script, used by this (only) thread.
    let probe = unsafe { StackProbe::new(stack_lo, stack_hi) };
    // SAFETY: `main` runs once and is the only user of ARENA.
    let arena: &mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let mut board = Board {
        name: "esp32c3",
        model: &bundle::MODEL.0,
        inputs: &bundle::INPUTS.0,
        arena,
        report: Println,
        clock: Micros(Instant::now()),
        stack: Some(probe),
    };
    let ok = tinygnn_board_app::run(&mut board).is_ok();
    println!("done ok={} (cost in microseconds at 160 MHz)", ok);
    loop {
        core::hint::spin_loop();
    }
}
