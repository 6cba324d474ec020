//! The smallest useful tinygnn firmware: the bundled `karate-gcn` model (two
//! GcnConv layers and a Linear) run once on the karate club graph with sparse
//! int8 features, on QEMU `mps2-an386` (Cortex-M4F). No reporting, no
//! formatting: the firmware compares the output bytes with those the host
//! runtime computed at build time (`build.rs`) and exits QEMU through
//! semihosting with status 0 (equal) or 1.
//!
//! It exists to measure the runtime's code size (`scripts/size-check.sh`):
//! the runtime is built with only the `op-gcn` and `op-linear` features, and
//! the feature `baseline` builds the same firmware without the inference
//! (`Model::from_bytes` + `Session::run`), whose `.text` is subtracted.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;

#[allow(dead_code)] // the baseline leaves ARENA_BYTES unused
mod data {
    include!(concat!(env!("OUT_DIR"), "/data.rs"));
}

/// 16-aligned embedded bytes (the model is read in place).
#[repr(C, align(16))]
struct Aligned<B: ?Sized>(B);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.tgnn")));

#[cfg(not(feature = "baseline"))]
#[inline(never)]
fn infer() -> bool {
    use tinygnn::{Features, GraphInput, Model, Session};
    // In .bss (zeroed by the startup code, which the baseline has too). The
    // exact need: `Model::arena_bytes_sparse`, computed by build.rs.
    static mut ARENA: Aligned<[u8; data::ARENA_BYTES]> = Aligned([0; data::ARENA_BYTES]);
    // SAFETY: `infer` runs once, from `main`, so this is the only reference.
    let arena = unsafe { &mut (*core::ptr::addr_of_mut!(ARENA)).0 };
    let Ok(model) = Model::from_bytes(black_box(&MODEL.0)) else {
        return false;
    };
    let mut session = Session::new(&model, arena);
    let input = GraphInput::new(
        data::NODES,
        Features::SparseI8 {
            row_ptr: black_box(data::ROW_PTR),
            cols: black_box(data::COLS),
            values: black_box(data::VALUES),
        },
        black_box(data::SOURCES),
        black_box(data::TARGETS),
    );
    match session.run(&input) {
        Ok(out) => out.data == data::EXPECTED,
        Err(_) => false,
    }
}

/// The same data referenced, no runtime call; the same comparison of the
/// output bytes with the expected ones (the firmware's check, not runtime
/// code: `memcmp`), here of the expected bytes with themselves.
#[cfg(feature = "baseline")]
#[inline(never)]
fn infer() -> bool {
    let n = black_box(&MODEL.0).len()
        + black_box(data::ROW_PTR).len()
        + black_box(data::COLS).len()
        + black_box(data::VALUES).len()
        + black_box(data::SOURCES).len()
        + black_box(data::TARGETS).len();
    n > 0 && black_box(data::EXPECTED) == black_box(data::EXPECTED)
}

#[entry]
fn main() -> ! {
    let ok = infer();
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
