//! tinygnn streaming firmware for the nRF52840-DK.
//!
//! Serves the tinygnn streaming protocol (`tinygnn-proto`, docs/stream.md)
//! on UARTE0, wired on the DK to the interface MCU's virtual COM port (TXD
//! P0.06, RXD P0.08; RTS P0.05 and CTS P0.07 with the feature `hwfc`), at
//! 115200 baud, 8N1: the host runs `tinygnn stream GRAPHS --port
//! /dev/ttyACM0`. Answers `Hello` with the embedded model's name, CRC and
//! capacities, runs the model on every `Request` and answers with its int8
//! outputs and the CPU cycles the inference took (DWT CYCCNT, 64 MHz), and
//! answers every corrupt, oversized or out-of-capacity frame with an error
//! reply. The UARTE is nrf52840-hal's own `embedded_io` 0.7 implementation
//! (`Uarte::split`: one-byte EasyDMA reads, buffered writes), joined into one
//! link by `tinygnn_proto::server::Duplex`.
//!
//! defmt over RTT (probe-rs) prints a ready line and link errors; LED1 lights
//! while the server waits for frames. Memory: the buffers are sized at build
//! time from the model's declared capacity (build.rs) and live in `.bss`.
#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::OutputPin as _;
use nrf52840_hal::clocks::Clocks;
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;
use nrf52840_hal::uarte::{Baudrate, Parity, Pins, Uarte};
use panic_probe as _;
use tinygnn_board_app::{Aligned, DwtClock};
use tinygnn_proto::server::{Buffers, Clock, Duplex, Server};
use tinygnn_proto::GraphBuffers;

mod gen {
    include!(concat!(env!("OUT_DIR"), "/stream.rs"));
}

/// Everything the server works in besides the arena (`.bss`, zeroed at boot).
struct Memory {
    rx: [u8; gen::RX_BYTES],
    tx: [u8; gen::TX_BYTES],
    features: [f32; gen::MAX_NODES * gen::CHANNELS],
    sources: [u16; gen::MAX_EDGES],
    targets: [u16; gen::MAX_EDGES],
    edge_weight: [f32; gen::MAX_EDGES],
    batch: [u16; gen::MAX_NODES],
}

static mut MEMORY: Memory = Memory {
    rx: [0; gen::RX_BYTES],
    tx: [0; gen::TX_BYTES],
    features: [0.0; gen::MAX_NODES * gen::CHANNELS],
    sources: [0; gen::MAX_EDGES],
    targets: [0; gen::MAX_EDGES],
    edge_weight: [0.0; gen::MAX_EDGES],
    batch: [0; gen::MAX_NODES],
};

static mut ARENA: Aligned<[u8; gen::ARENA_BYTES]> = Aligned([0; gen::ARENA_BYTES]);

/// The UARTE's EasyDMA buffers (in RAM, as EasyDMA requires): writes are
/// gathered in 64 bytes, reads take one byte per transfer.
static mut UARTE_TX: [u8; 64] = [0; 64];
static mut UARTE_RX: [u8; 1] = [0; 1];

/// CPU cycles (DWT CYCCNT) around each inference.
struct Cycles(DwtClock);

impl Clock for Cycles {
    const UNIT: &'static str = "cycles";
    fn start(&mut self) {
        tinygnn_board_app::Clock::start(&mut self.0);
    }
    fn elapsed(&mut self) -> u64 {
        tinygnn_board_app::Clock::elapsed(&mut self.0)
    }
}

#[entry]
fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice");
    };
    // The external 32 MHz crystal: an accurate baud rate.
    let _clocks = Clocks::new(dp.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(dp.P0);
    // LEDs are active low.
    let mut led_ready = port0.p0_13.into_push_pull_output(Level::High);
    let pins = Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        #[cfg(feature = "hwfc")]
        cts: Some(port0.p0_07.into_floating_input().degrade()),
        #[cfg(feature = "hwfc")]
        rts: Some(port0.p0_05.into_push_pull_output(Level::High).degrade()),
        #[cfg(not(feature = "hwfc"))]
        cts: None,
        #[cfg(not(feature = "hwfc"))]
        rts: None,
    };
    let uarte = Uarte::new(dp.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    // SAFETY: `main` runs once and is the only user of these statics; each
    // gets one `&'static mut`.
    let (tx_buf, rx_buf, mem, arena) = unsafe {
        (
            &mut *addr_of_mut!(UARTE_TX),
            &mut *addr_of_mut!(UARTE_RX),
            &mut *addr_of_mut!(MEMORY),
            &mut (*addr_of_mut!(ARENA)).0,
        )
    };
    let Ok((tx, rx)) = uarte.split(tx_buf, rx_buf) else {
        defmt::panic!("UARTE buffers rejected");
    };
    let mut link = Duplex { rx, tx };
    let model = match tinygnn::Model::from_bytes(&gen::MODEL.0) {
        Ok(m) => m,
        Err(e) => defmt::panic!("model rejected: {}", e),
    };
    let buffers = Buffers {
        rx: &mut mem.rx,
        tx: &mut mem.tx,
        graph: GraphBuffers {
            features: &mut mem.features,
            sources: &mut mem.sources,
            targets: &mut mem.targets,
            edge_weight: &mut mem.edge_weight,
            batch: &mut mem.batch,
        },
        arena,
    };
    let clock = Cycles(DwtClock::new(&mut cp.DCB, &mut cp.DWT));
    let mut server = Server::new(&model, gen::MODEL_NAME, buffers, clock);
    let info = server.info();
    defmt::println!(
        "tinygnn-stream board=nrf52840-dk model={=str} max_nodes={=u32} max_edges={=u32} max_graphs={=u32} max_frame={=u32} arena_bytes={=usize} ready on UARTE0 (115200 8N1)",
        info.model,
        info.max_nodes,
        info.max_edges,
        info.max_graphs,
        info.max_frame,
        gen::ARENA_BYTES
    );
    let _ = led_ready.set_low();
    loop {
        // A UART never reports the end of the stream; a receive or transmit
        // error ends `serve`, and the server goes on with the next frame.
        if let Err(e) = server.serve(&mut link) {
            defmt::warn!("link error: {}", defmt::Debug2Format(&e));
        }
    }
}
