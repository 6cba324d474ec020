//! tinygnn streaming firmware for QEMU `mps2-an386` (Cortex-M4F).
//!
//! Listens on UART0 (0x4000_4000) for frames of the tinygnn streaming
//! protocol (`tinygnn-proto`, docs/stream.md): answers `Hello` with the
//! model's name, CRC and capacities, runs the embedded model on every
//! `Request` and answers with its int8 outputs and the instructions the
//! inference took, and answers every corrupt, oversized or out-of-capacity
//! frame with an error reply, then goes on listening. A line on semihosting
//! says it is ready; QEMU runs until it is killed.
//!
//! Memory: the model in the 4 MiB "flash" at 0; the receive/transmit and
//! graph buffers (sized at build time from the model's declared capacity,
//! see build.rs) in `.bss`; the arena in RAM2 at 0x2100_0000 (as qemu-m4).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod uart;

use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use core::fmt::Write as _;
use cortex_m as _;
use cortex_m_rt::entry;

use cortex_m_semihosting::{debug, hio};
use tinygnn_board_app::Aligned;
use tinygnn_proto::server::{Buffers, Clock, Server};
use tinygnn_proto::GraphBuffers;

mod gen {
    include!(concat!(env!("OUT_DIR"), "/stream.rs"));
}

/// APB clock of the mps2 images (25 MHz).
const PCLK_HZ: u32 = 25_000_000;
/// Baud rate programmed into UART0 (QEMU ignores it; a real board would not).
const BAUD: u32 = 115_200;
/// The `-icount shift` the runner uses (see .cargo/config.toml).
const ICOUNT_SHIFT: u32 = 10;
const TIMER0: usize = 0x4000_0000;
const DUALTIMER1: usize = 0x4000_2000;

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

/// The arena, in RAM2 (NOLOAD: `main` zeroes it before making a slice of it).
// The section is the NOLOAD `.ram2` output section of memory.x (as qemu-m4's).
#[allow(unsafe_code)]
#[link_section = ".ram2.arena"]
static mut ARENA: MaybeUninit<Aligned<[u8; gen::ARENA_BYTES]>> = MaybeUninit::uninit();

/// Instruction counter from the CMSDK timers under `-icount` (the same
/// scheme as boards/qemu-m4: TIMER0 for the count, the dual timer /256 for
/// its wraps).
struct IcountTimers {
    fine: u32,
    coarse: u32,
}

#[allow(unsafe_code)]
fn mmio_read(addr: usize) -> u32 {
    // SAFETY: a CMSDK timer register of the mps2-an386 memory map.
    unsafe { read_volatile(addr as *const u32) }
}

#[allow(unsafe_code)]
fn mmio_write(addr: usize, v: u32) {
    // SAFETY: a CMSDK timer register of the mps2-an386 memory map.
    unsafe { write_volatile(addr as *mut u32, v) }
}

impl IcountTimers {
    fn new() -> Self {
        mmio_write(TIMER0 + 0x8, u32::MAX);
        mmio_write(TIMER0 + 0x4, u32::MAX);
        mmio_write(TIMER0, 1);
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

    fn start(&mut self) {
        (self.fine, self.coarse) = self.read();
    }

    fn elapsed(&mut self) -> u64 {
        let (fine, coarse) = self.read();
        let fine_mod = u64::from(self.fine.wrapping_sub(fine));
        let coarse = u64::from(self.coarse.wrapping_sub(coarse)) * 256;
        let wraps = (coarse.saturating_sub(fine_mod) + (1 << 31)) >> 32;
        let ticks = fine_mod + (wraps << 32);
        (ticks * 40 + (1 << (ICOUNT_SHIFT - 1))) >> ICOUNT_SHIFT
    }
}

/// Prints one line on semihosting. (Not `hprintln!`: its shared stdout
/// handle sits in a `RefCell`, whose borrow check is a panic path.)
fn line(args: core::fmt::Arguments<'_>) {
    let mut l = heapless::String::<256>::new();
    let _ = l.write_fmt(args);
    let _ = l.push('\n');
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(l.as_bytes());
    }
}

#[entry]
fn main() -> ! {
    // SAFETY: `main` runs once and is the only user of MEMORY and ARENA; the
    // arena's bytes are zeroed before the reference to them is made, and
    // every bit pattern is valid for these integer and float arrays.
    #[allow(unsafe_code)]
    let (mem, arena): (&'static mut Memory, &'static mut [u8]) = unsafe {
        let p = addr_of_mut!(ARENA);
        (*p).as_mut_ptr().write_bytes(0, 1);
        (&mut *addr_of_mut!(MEMORY), &mut (*p).assume_init_mut().0)
    };
    let model = match tinygnn::Model::from_bytes(&gen::MODEL.0) {
        Ok(m) => m,
        Err(e) => {
            line(format_args!("error model rejected: {e}"));
            debug::exit(debug::EXIT_FAILURE);
            #[allow(clippy::empty_loop)]
            loop {}
        }
    };
    let mut link = uart::CmsdkUart::uart0(PCLK_HZ, BAUD);
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
    let mut server = Server::new(&model, gen::MODEL_NAME, buffers, IcountTimers::new());
    let info = server.info();
    line(format_args!(
        "tinygnn-stream board=qemu-m4 model={} max_nodes={} max_edges={} max_graphs={} max_frame={} arena_bytes={} ready on UART0",
        info.model,
        info.max_nodes,
        info.max_edges,
        info.max_graphs,
        info.max_frame,
        gen::ARENA_BYTES
    ));
    // The UART never fails (Infallible): serve forever.
    let _ = server.serve(&mut link);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[cfg(feature = "panic-check")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "C" {
        /// Defined nowhere: referenced only if a panic path survived.
        fn tinygnn_stream_panic_path_survived_link_error() -> !;
    }
    #[allow(unsafe_code)]
    // SAFETY: never runs; the link fails if this call survives.
    unsafe {
        tinygnn_stream_panic_path_survived_link_error()
    }
}

#[cfg(not(feature = "panic-check"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    line(format_args!("error panic: {info}"));
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
