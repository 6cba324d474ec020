//! Board-independent firmware logic for tinygnn.
//!
//! A board crate embeds a `.tgnn` model and an input [`bundle`] in flash
//! (generated into its `OUT_DIR` by [`build::generate`] from its `build.rs`),
//! provides an arena, a [`Report`] sink (semihosting, defmt, UART…) and a
//! [`Clock`] (instruction or cycle counter), and calls [`run`]. `run` checks
//! the model and the bundle, runs every sample, and reports, line by line:
//!
//! ```text
//! tinygnn board=qemu-m4 model_bytes=1234 bundle_bytes=5678 arena_bytes=4096 engine=session
//! model ops=3 tensors=4 input_channels=8 outputs=1
//! sample 0 nodes=5 edges=8 graphs=1
//! out 0 rows=5 channels=4 scale=3.125000e-2 zp=-3 crc=1a2b3c4d
//! hex 0 0a0bf3…            (the output bytes, 32 per line, row-major)
//! cost 0 123456 insn
//! stack 0 2400 base=1900  (deepest stack use from the top during this inference, and the depth at the call)
//! acc 0 4/5
//! summary samples=1 cost_total=123456 cost_max=123456 unit=insn correct=4 scored=5 arena_used=4096 stack_max=2400 stack_total=3100
//! ```
//!
//! The host harness (`scripts/qemu-run.sh`) compares the `out`/`hex` lines
//! with those of the same model run on the host. Errors are reported as an
//! `error …` line and returned; nothing here panics.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
pub mod build;
pub mod bundle;
mod engine;
pub mod stack;
#[cfg(feature = "std")]
pub mod synth;

use core::fmt::Write as _;

pub use bundle::{Bundle, BundleError, Sample};
pub use engine::{graph_input, required_arena, ENGINE};
pub use stack::StackProbe;
pub use tinygnn::Output;

/// Bytes of output printed per `hex` line.
pub const HEX_PER_LINE: usize = 32;

/// Aligns embedded bytes: `static M: &Aligned<[u8]> = &Aligned(*include_bytes!("m.tgnn"));`
/// then `&M.0` is 16-aligned (the model's weight sections and the bundle's
/// arrays are read in place).
#[repr(C, align(16))]
pub struct Aligned<B: ?Sized>(pub B);

/// Where a board sends its report lines (no trailing newline given).
pub trait Report {
    /// Emits one line.
    fn line(&mut self, line: &str);
}

/// A cost counter around each inference.
pub trait Clock {
    /// Unit of the counts (`insn`, `cycles`, `us`).
    const UNIT: &'static str;
    /// Starts a measurement.
    fn start(&mut self);
    /// Counts since the last [`Clock::start`].
    fn elapsed(&mut self) -> u64;
}

/// A clock that measures nothing (host reference runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    const UNIT: &'static str = "none";
    fn start(&mut self) {}
    fn elapsed(&mut self) -> u64 {
        0
    }
}

/// Sends report lines through defmt (`defmt::println!`), e.g. over RTT.
#[cfg(feature = "defmt")]
#[derive(Debug, Default, Clone, Copy)]
pub struct DefmtReport;

#[cfg(feature = "defmt")]
impl Report for DefmtReport {
    fn line(&mut self, line: &str) {
        defmt::println!("{=str}", line);
    }
}

/// CPU cycles from the DWT cycle counter (Cortex-M3/M4/M7; not in QEMU,
/// not on M0/M0+). Inferences longer than 2^32 cycles wrap.
#[cfg(feature = "cortex-m")]
#[derive(Debug)]
pub struct DwtClock {
    t0: u32,
}

#[cfg(feature = "cortex-m")]
impl DwtClock {
    /// Enables trace and the cycle counter.
    pub fn new(dcb: &mut cortex_m::peripheral::DCB, dwt: &mut cortex_m::peripheral::DWT) -> Self {
        dcb.enable_trace();
        dwt.enable_cycle_counter();
        DwtClock { t0: 0 }
    }
}

#[cfg(feature = "cortex-m")]
impl Clock for DwtClock {
    const UNIT: &'static str = "cycles";
    fn start(&mut self) {
        self.t0 = cortex_m::peripheral::DWT::cycle_count();
    }
    fn elapsed(&mut self) -> u64 {
        u64::from(cortex_m::peripheral::DWT::cycle_count().wrapping_sub(self.t0))
    }
}

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AppError {
    /// The model was rejected by the runtime.
    Model(tinygnn::Error),
    /// The input bundle is malformed.
    Bundle(BundleError),
    /// Inference of sample `sample` failed.
    Inference {
        /// Sample index.
        sample: u16,
        /// Runtime error.
        error: tinygnn::Error,
    },
    /// The arena is smaller than sample `sample` needs.
    ArenaTooSmall {
        /// Sample index.
        sample: u16,
        /// Bytes needed.
        needed: u32,
        /// Bytes available.
        available: u32,
    },
}

impl core::fmt::Display for AppError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AppError::Model(e) => write!(f, "model rejected: {e}"),
            AppError::Bundle(e) => write!(f, "{e}"),
            AppError::Inference { sample, error } => write!(f, "sample {sample}: {error}"),
            AppError::ArenaTooSmall {
                sample,
                needed,
                available,
            } => write!(
                f,
                "sample {sample}: arena needs {needed} bytes, has {available}"
            ),
        }
    }
}

/// Totals of a successful run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Samples run.
    pub samples: u16,
    /// Sum of per-inference costs.
    pub cost_total: u64,
    /// Largest per-inference cost.
    pub cost_max: u64,
    /// Correct argmax predictions (over scored rows).
    pub correct: u32,
    /// Rows with a label (not −1).
    pub scored: u32,
    /// Largest arena any sample needed.
    pub arena_used: u32,
    /// Deepest stack use of any inference (bytes below the stack top, so it
    /// includes the frames of `main` and `run`), when a probe was given.
    pub stack_max: u32,
    /// Deepest stack use of the whole run (bytes below the stack top), from
    /// the boot paint to the summary line: model parsing, bundle decoding,
    /// every inference and the reporting, when a probe was given.
    pub stack_total: u32,
}

/// A line buffer; lines longer than its capacity are cut (never a panic).
type Line = heapless::String<160>;

#[inline(never)]
fn emit<R: Report>(r: &mut R, args: core::fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = l.write_fmt(args);
    r.line(&l);
}

/// Index of the largest value of a row (the first on ties).
pub fn argmax(row: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row.get(best).copied().unwrap_or(i8::MIN) {
            best = i;
        }
    }
    best
}

/// What a board hands to [`run`].
pub struct Board<'a, R, C> {
    /// Board name, printed in the first line.
    pub name: &'a str,
    /// The `.tgnn` model bytes (read in place).
    pub model: &'a [u8],
    /// The input bundle bytes (4-aligned, read in place).
    pub inputs: &'a [u8],
    /// Working memory for inference.
    pub arena: &'a mut [u8],
    /// Report sink.
    pub report: R,
    /// Cost counter.
    pub clock: C,
    /// Stack probe: repainted before each inference and read after it.
    pub stack: Option<StackProbe>,
}

/// Checks the model and the bundle, runs every sample and reports as
/// described in the crate docs. On error, an `error …` line is reported too.
pub fn run<R: Report, C: Clock>(b: &mut Board<'_, R, C>) -> Result<Summary, AppError> {
    let report = &mut b.report;
    let r = run_inner(
        b.name,
        b.model,
        b.inputs,
        b.arena,
        report,
        &mut b.clock,
        &mut b.stack,
    );
    let r = r.map(|mut s| {
        s.stack_total = b.stack.as_ref().map_or(0, |p| p.deepest() as u32);
        s
    });
    match &r {
        Ok(s) => emit(
            report,
            format_args!(
                "summary samples={} cost_total={} cost_max={} unit={} correct={} scored={} arena_used={} stack_max={} stack_total={}",
                s.samples,
                s.cost_total,
                s.cost_max,
                C::UNIT,
                s.correct,
                s.scored,
                s.arena_used,
                s.stack_max,
                s.stack_total
            ),
        ),
        Err(e) => emit(report, format_args!("error {e}")),
    }
    r
}

/// Validation's temporaries live in this frame, popped before inference
/// (keeps the stack at inference time small on 16 KB parts).
#[inline(never)]
fn load_model(bytes: &[u8]) -> Result<tinygnn::Model<'_>, AppError> {
    tinygnn::Model::from_bytes(bytes).map_err(AppError::Model)
}

fn run_inner<R: Report, C: Clock>(
    board: &str,
    model_bytes: &[u8],
    bundle_bytes: &[u8],
    arena: &mut [u8],
    report: &mut R,
    clock: &mut C,
    stack: &mut Option<StackProbe>,
) -> Result<Summary, AppError> {
    emit(
        report,
        format_args!(
            "tinygnn board={board} model_bytes={} bundle_bytes={} arena_bytes={} engine={ENGINE}",
            model_bytes.len(),
            bundle_bytes.len(),
            arena.len()
        ),
    );
    let model = load_model(model_bytes)?;
    emit(
        report,
        format_args!(
            "model ops={} tensors={} input_channels={} outputs={}",
            model.num_ops(),
            model.tensors().len(),
            model.input_desc().channels,
            model.outputs().len()
        ),
    );
    let bundle = Bundle::parse(bundle_bytes).map_err(AppError::Bundle)?;
    let mut sum = Summary::default();
    let available = arena.len();
    let mut session = tinygnn::Session::new(&model, arena);
    for (i, sample) in bundle.samples().enumerate() {
        let sample = sample.map_err(AppError::Bundle)?;
        let index = i as u16;
        emit(
            report,
            format_args!(
                "sample {i} nodes={} edges={} graphs={}",
                sample.nodes, sample.edges, sample.graphs
            ),
        );
        let needed = required_arena(&model, &sample);
        if needed > available {
            return Err(AppError::ArenaTooSmall {
                sample: index,
                needed: needed as u32,
                available: available as u32,
            });
        }
        let input = graph_input(&sample);
        sum.arena_used = sum.arena_used.max(needed as u32);
        let stack_base = stack.as_mut().map(|p| {
            p.repaint();
            p.depth()
        });
        clock.start();
        let out = session.run(&input);
        let cost = clock.elapsed();
        let stack_used = stack.as_ref().map(StackProbe::high_water);
        let out = out.map_err(|error| AppError::Inference {
            sample: index,
            error,
        })?;
        report_output(report, i, &out);
        emit(report, format_args!("cost {i} {cost} {}", C::UNIT));
        if let (Some(used), Some(base)) = (stack_used, stack_base) {
            emit(report, format_args!("stack {i} {used} base={base}"));
            sum.stack_max = sum.stack_max.max(used as u32);
        }
        if let Some(labels) = sample.labels {
            let (correct, scored) = score(&out, labels.values);
            emit(report, format_args!("acc {i} {correct}/{scored}"));
            sum.correct += correct;
            sum.scored += scored;
        }
        sum.samples += 1;
        sum.cost_total += cost;
        sum.cost_max = sum.cost_max.max(cost);
    }
    Ok(sum)
}

#[inline(never)]
fn report_output<R: Report>(report: &mut R, i: usize, out: &Output<'_>) {
    let bytes: &[u8] = bytemuck::cast_slice(out.data);
    let crc = bundle::CRC.checksum(bytes);
    emit(
        report,
        format_args!(
            "out {i} rows={} channels={} scale={} zp={} crc={crc:08x}",
            out.rows,
            out.channels,
            Sci(out.scale),
            out.zero_point
        ),
    );
    for chunk in bytes.chunks(HEX_PER_LINE) {
        let mut l = Line::new();
        let _ = write!(l, "hex {i} ");
        for b in chunk {
            let _ = write!(l, "{b:02x}");
        }
        report.line(&l);
    }
}

/// Formats a positive finite `f32` as `d.dddddde±x` with integer arithmetic
/// on an `f64` copy, so that firmware does not link core's float formatting
/// (about 20 KB of flash). Identical on every target (IEEE f64 arithmetic).
struct Sci(f32);

impl core::fmt::Display for Sci {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut x = f64::from(self.0);
        if !x.is_finite() || x <= 0.0 {
            return write!(f, "bits:{:08x}", self.0.to_bits());
        }
        let mut e = 0i32;
        while x >= 10.0 {
            x /= 10.0;
            e += 1;
        }
        while x < 1.0 {
            x *= 10.0;
            e -= 1;
        }
        // Six decimals, rounded half up.
        let mut m = (x * 1e6 + 0.5) as u64;
        if m >= 10_000_000 {
            m /= 10;
            e += 1;
        }
        write!(f, "{}.{:06}e{}", m / 1_000_000, m % 1_000_000, e)
    }
}

/// Counts argmax hits over labelled rows (label −1 = not scored; labels
/// beyond the output's rows are ignored).
fn score(out: &Output<'_>, labels: &[i16]) -> (u32, u32) {
    let (mut correct, mut scored) = (0, 0);
    if out.channels == 0 {
        return (0, 0);
    }
    for (row, &label) in out.data.chunks(out.channels).zip(labels) {
        if label < 0 {
            continue;
        }
        scored += 1;
        if argmax(row) == label as usize {
            correct += 1;
        }
    }
    (correct, scored)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    extern crate std;
    use super::Sci;
    use std::format;

    #[test]
    fn sci_format() {
        assert_eq!(format!("{}", Sci(0.125)), "1.250000e-1");
        assert_eq!(format!("{}", Sci(1.0)), "1.000000e0");
        assert_eq!(format!("{}", Sci(1234.5)), "1.234500e3");
        assert_eq!(format!("{}", Sci(9.9999999)), "1.000000e1");
        assert_eq!(format!("{}", Sci(0.0)), "bits:00000000");
        assert_eq!(
            format!("{}", Sci(f32::NAN)),
            format!("bits:{:08x}", f32::NAN.to_bits())
        );
    }
}
