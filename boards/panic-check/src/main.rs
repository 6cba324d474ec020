//! Link-time panic-freedom check of the tinygnn inference path.
//!
//! This firmware calls the whole public inference API — [`Model::from_bytes`],
//! [`Model::arena_bytes`], [`Session::new`], [`Session::run`],
//! [`Session::run_inspect`], [`Session::prepare`], [`Session::run_prepared`],
//! [`Session::run_step`],
//! [`Session::output`], [`Output::row`],
//! [`Output::argmax`], [`Output::dequantize`] — with float, int8 and sparse int8
//! features, with and without edge weights and a batch vector, on inputs the
//! compiler cannot know: every input (the model bytes included) is reached
//! through one `read_volatile` of [`INPUTS`], so nothing constant-folds and
//! every op implementation is linked in.
//!
//! Its `#[panic_handler]` calls `tinygnn_panic_path_survived_link_error`,
//! which is defined nowhere. The handler is only linked if some code that
//! survived optimisation can panic, so **this firmware links if and only if
//! the optimised inference path contains no panic path** (indexing, slicing,
//! `unwrap`, division by zero, `copy_from_slice` lengths, …).
//! `scripts/panic-check.sh` builds it for `thumbv7em-none-eabihf` and
//! `thumbv6m-none-eabi`.
//!
//! Feature `diagnose` turns the handler into a loop so the firmware links
//! anyway and the surviving callers of `core::panicking::*` can be listed
//! with `llvm-objdump` (the script does this when the check fails).
//! Feature `qemu` additionally measures the stack high-water mark of the
//! inference calls and reports it through semihosting (see `docs/guarantees.md`).
#![no_std]
#![no_main]

mod karate;

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use cortex_m_rt::entry;
use tinygnn::{Features, GraphInput, Model, Output, Session};

/// Nodes of the karate graph (and input channels of `karate-gcn`: one-hot features).
const N: usize = 34;

/// The float one-hot features `x = I_34` of `models/karate-gcn/graphs.safetensors`.
static FEATURES_F32: [f32; N * N] = {
    let mut x = [0.0f32; N * N];
    let mut i = 0;
    while i < N {
        x[i * N + i] = 1.0;
        i += 1;
    }
    x
};

/// Some int8 features of the same shape.
static FEATURES_I8: [i8; N * N] = {
    let mut x = [0i8; N * N];
    let mut i = 0;
    while i < N * N {
        x[i] = ((i * 37) % 256) as u8 as i8;
        i += 1;
    }
    x
};

/// The same one-hot features as sparse int8 CSR: row `i` stores column `i`.
static SPARSE_ROW_PTR: [u32; N + 1] = {
    let mut r = [0u32; N + 1];
    let mut i = 0;
    while i <= N {
        r[i] = i as u32;
        i += 1;
    }
    r
};
/// `karate-gcn`'s input is quantized with scale 1/255, zero point −128:
/// 1.0 is 127 (and a missing entry, the zero point, is 0.0).
static SPARSE_VALUES: [i8; N] = [127; N];
static SPARSE_COLS: [u16; N] = {
    let mut c = [0u16; N];
    let mut i = 0;
    while i < N {
        c[i] = i as u16;
        i += 1;
    }
    c
};

/// Edge weights, one per edge.
static EDGE_WEIGHT: [f32; 156] = {
    let mut w = [0.0f32; 156];
    let mut i = 0;
    while i < 156 {
        w[i] = 0.25 + (i % 7) as f32 * 0.5;
        i += 1;
    }
    w
};

/// A batch vector (every node in graph 0: `karate-gcn` allows one graph).
static BATCH: [u16; N] = [0; N];

/// Everything the firmware feeds the runtime.
struct Inputs {
    /// Model files (`.tgnn`); `model` selects one.
    models: [&'static [u8]; 2],
    model: usize,
    num_nodes: usize,
    features_f32: &'static [f32],
    features_i8: &'static [i8],
    /// Sparse features: row offsets, columns, values.
    sparse_row_ptr: &'static [u32],
    sparse_cols: &'static [u16],
    sparse_values: &'static [i8],
    sources: &'static [u16],
    targets: &'static [u16],
    edge_weight: &'static [f32],
    batch: &'static [u16],
    /// The int8 output of `karate-gcn` on the float features (for the QEMU run).
    expected: &'static [u8],
}

/// The inputs, only ever read with `read_volatile`: the optimiser must treat
/// the model bytes, the graph and every length as unknown.
static INPUTS: Inputs = Inputs {
    models: [
        include_bytes!("../../../models/karate-gcn/karate-gcn.tgnn"),
        include_bytes!("../../../models/digits-gin/digits-gin.tgnn"),
    ],
    model: 0,
    num_nodes: N,
    features_f32: &FEATURES_F32,
    features_i8: &FEATURES_I8,
    sparse_row_ptr: &SPARSE_ROW_PTR,
    sparse_cols: &SPARSE_COLS,
    sparse_values: &SPARSE_VALUES,
    sources: &karate::SOURCES,
    targets: &karate::TARGETS,
    edge_weight: &EDGE_WEIGHT,
    batch: &BATCH,
    expected: include_bytes!("../../../models/karate-gcn/expected_int8.bin"),
};

/// The arena (64 KiB, in `.bss`).
static mut ARENA: [u8; 64 * 1024] = [0; 64 * 1024];

/// Results are written here with `write_volatile`, so no computation is dead.
static mut SINK: [u32; 16] = [0; 16];

fn sink(i: usize, v: u32) {
    // SAFETY: single-threaded firmware, no interrupt touches SINK.
    unsafe {
        let s = &mut *addr_of_mut!(SINK);
        if let Some(slot) = s.get_mut(i) {
            write_volatile(slot, v);
        }
    }
}

/// Everything an application would read from an output.
fn consume(base: usize, out: &Output<'_>) -> u32 {
    let mut acc = 0u32;
    for i in 0..out.rows {
        if let Some(c) = out.argmax(i) {
            acc = acc.wrapping_mul(31).wrapping_add(c as u32);
        }
        if let Some(v) = out.dequantize(i, i % out.channels.max(1)) {
            acc = acc.wrapping_add(v.to_bits());
        }
        if let Some(r) = out.row(i) {
            for &b in r {
                acc = acc.wrapping_mul(3).wrapping_add(b as u8 as u32);
            }
        }
    }
    sink(base, acc);
    acc
}

/// `Model::from_bytes` (its own function so its stack shows separately).
#[inline(never)]
fn load(bytes: &'static [u8]) -> Option<Model<'static>> {
    Model::from_bytes(bytes).ok()
}

/// `Model::arena_bytes` at the model's capacity.
#[inline(never)]
fn arena_need(model: &Model<'_>) -> usize {
    let (max_n, max_e, max_g) = model.capacity();
    model.arena_bytes(max_n as usize, max_e as usize, max_g as usize)
}

/// `Session::new`.
#[inline(never)]
fn new_session<'a, 'm>(model: &'a Model<'m>, arena: &'a mut [u8]) -> Session<'a, 'm> {
    Session::new(model, arena)
}

/// `Session::run` on float features, no edge weights, no batch; checks the
/// output against `expected`.
#[inline(never)]
fn run_f32(session: &mut Session<'_, '_>, inp: &Inputs) -> u32 {
    let g = GraphInput::new(
        inp.num_nodes,
        Features::F32(inp.features_f32),
        inp.sources,
        inp.targets,
    );
    match session.run(&g) {
        Ok(out) => {
            let same = out.data.len() == inp.expected.len()
                && out
                    .data
                    .iter()
                    .zip(inp.expected)
                    .all(|(&a, &b)| a as u8 == b);
            sink(2, u32::from(same));
            consume(3, &out);
            1
        }
        Err(_) => {
            sink(2, 0xE000_0002);
            0
        }
    }
}

/// `Session::run_inspect` on int8 features with edge weights and a batch vector.
#[inline(never)]
fn run_i8_inspect(session: &mut Session<'_, '_>, inp: &Inputs) -> u32 {
    let g = GraphInput::new(
        inp.num_nodes,
        Features::I8(inp.features_i8),
        inp.sources,
        inp.targets,
    )
    .with_edge_weight(inp.edge_weight)
    .with_batch(inp.batch);
    let mut per_op = 0u32;
    let ok = match session.run_inspect(&g, |k, t| {
        per_op = per_op.wrapping_add(k as u32).wrapping_add(consume(4, &t));
    }) {
        Ok(out) => {
            consume(5, &out);
            1
        }
        Err(_) => {
            sink(5, 0xE000_0003);
            0
        }
    };
    sink(6, per_op);
    ok
}

/// `Session::run` on sparse int8 features (the one-hot features in the
/// input quantization: same output as [`run_f32`]), with edge weights.
#[inline(never)]
fn run_sparse(session: &mut Session<'_, '_>, inp: &Inputs) -> u32 {
    let g = GraphInput::new(
        inp.num_nodes,
        Features::SparseI8 {
            row_ptr: inp.sparse_row_ptr,
            cols: inp.sparse_cols,
            values: inp.sparse_values,
        },
        inp.sources,
        inp.targets,
    )
    .with_edge_weight(inp.edge_weight);
    match session.run(&g) {
        Ok(out) => {
            let same = out.data.len() == inp.expected.len()
                && out
                    .data
                    .iter()
                    .zip(inp.expected)
                    .all(|(&a, &b)| a as u8 == b);
            sink(8, u32::from(same));
            consume(9, &out);
            1
        }
        Err(_) => {
            sink(8, 0xE000_0004);
            0
        }
    }
}

/// `Session::run_step` (recurrent cells) with a state buffer whose length
/// the optimiser cannot see; the bundled models carry no state, so this
/// returns `NotRecurrent` at run time, but every path of `run_step` is linked
/// (and must be panic-free). Adds 0 to the run count.
#[inline(never)]
fn run_step_f32(session: &mut Session<'_, '_>, inp: &Inputs) -> u32 {
    let mut state = [0i8; 64];
    let len = inp.num_nodes.min(state.len());
    let g = GraphInput::new(
        inp.num_nodes,
        Features::F32(inp.features_f32),
        inp.sources,
        inp.targets,
    );
    match session.run_step(&g, &mut state[..len]) {
        Ok(out) => {
            consume(12, &out);
            sink(13, state.iter().map(|&v| v as u32).sum());
        }
        Err(_) => sink(13, 0xE000_000D),
    }
    0
}

/// `Session::prepare` and `Session::run_prepared` on float features (the
/// graph of [`run_f32`], prepared once, run twice); counts as one run when
/// both give the expected output.
#[inline(never)]
fn run_prepared_f32(session: &mut Session<'_, '_>, inp: &Inputs) -> u32 {
    let g = GraphInput::new(
        inp.num_nodes,
        Features::F32(inp.features_f32),
        inp.sources,
        inp.targets,
    );
    let Ok(p) = session.prepare(&g) else {
        sink(10, 0xE000_0005);
        return 0;
    };
    let mut ok = 1;
    for _ in 0..2 {
        match session.run_prepared(&p, Features::F32(inp.features_f32)) {
            Ok(out) => {
                let same = out.data.len() == inp.expected.len()
                    && out
                        .data
                        .iter()
                        .zip(inp.expected)
                        .all(|(&a, &b)| a as u8 == b);
                ok &= u32::from(same);
                consume(11, &out);
            }
            Err(_) => {
                sink(10, 0xE000_0006);
                ok = 0;
            }
        }
    }
    ok
}

/// `Session::output` for every output of the last run.
#[inline(never)]
fn read_outputs(session: &Session<'_, '_>) {
    let mut k = 0;
    while let Some(out) = session.output(k) {
        consume(7, &out);
        k += 1;
    }
}

/// The whole inference path; returns the number of successful runs (3).
#[inline(never)]
fn inference() -> u32 {
    // SAFETY: INPUTS is a valid, initialised static; the volatile read only
    // hides its value from the optimiser.
    let inp: Inputs = unsafe { read_volatile(addr_of!(INPUTS)) };
    let bytes = inp.models.get(inp.model).copied().unwrap_or(&[]);
    let Some(model) = load(bytes) else {
        sink(0, 0xE000_0001);
        return 0;
    };
    sink(1, arena_need(&model) as u32);
    // SAFETY: the only reference to ARENA, taken once.
    let arena: &mut [u8] = unsafe { &mut *addr_of_mut!(ARENA) };
    let mut session = new_session(&model, arena);
    // (`run_prepared_f32` last but one: `run_i8_inspect`'s outputs are read after.)
    let ok = run_f32(&mut session, &inp) * run_prepared_f32(&mut session, &inp)
        + run_sparse(&mut session, &inp)
        + run_step_f32(&mut session, &inp)
        + run_i8_inspect(&mut session, &inp);
    read_outputs(&session);
    ok
}

#[entry]
fn main() -> ! {
    #[cfg(feature = "qemu")]
    qemu::measure_and_exit();
    #[cfg(not(feature = "qemu"))]
    {
        let ok = inference();
        sink(15, ok);
        loop {
            cortex_m::asm::wfi();
        }
    }
}

#[cfg(not(feature = "diagnose"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "C" {
        /// Defined nowhere: if this is referenced, a panic path survived.
        fn tinygnn_panic_path_survived_link_error() -> !;
    }
    // SAFETY: never actually called — the firmware does not link if it is reachable.
    unsafe { tinygnn_panic_path_survived_link_error() }
}

#[cfg(feature = "diagnose")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}

#[cfg(feature = "qemu")]
mod qemu;
