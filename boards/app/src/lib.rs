//! Board-independent firmware logic for tinygnn.
//!
//! A board crate embeds a `.tgnn` model and an input [`bundle`] in flash
//! (generated into its `OUT_DIR` by [`build::generate`] from its `build.rs`),
//! provides an arena, a [`Report`] sink and a [`Clock`] (instruction or cycle
//! counter), and calls [`run`]. `run` checks the model and the bundle, runs
//! every sample, and reports [`Event`]s with typed values. A text sink
//! (semihosting, a UART, stdout) implements [`Lines`] and gets them as these
//! lines; [`DefmtReport`] (feature `defmt`) logs the same values as defmt
//! types (`{=u32}`, `{=[u8]:02x}`, the runtime's `defmt::Format` errors), so
//! no text is formatted on the device:
//!
//! ```text
//! tinygnn board=qemu-m4 model_bytes=1234 bundle_bytes=5678 arena_bytes=4096 engine=session
//! model ops=3 tensors=4 input_channels=8 outputs=1
//! state bytes=800 nodes=100 channels=8 zp=-3   (recurrent models only)
//! sample 0 nodes=5 edges=8 graphs=1
//! out 0 rows=5 channels=4 scale=3.125000e-2 zp=-3 crc=1a2b3c4d
//! hex 0 0a0bf3…            (the output bytes, 32 per line, row-major)
//! cost 0 123456 insn
//! stack 0 2400 base=1900  (deepest stack use from the top during this inference, and the depth at the call)
//! acc 0 4/5
//! summary samples=1 cost_total=123456 cost_max=123456 unit=insn correct=4 scored=5 arena_used=4096 stack_max=2400 stack_total=3100
//! ```
//!
//! A recurrent model (one with a state, [`tinygnn::Model::state`]) runs the
//! bundle as a **sequence**: the samples are the steps in order, every one
//! of the same graph, each run with [`tinygnn::Session::run_step`] on a
//! state the firmware owns: the first [`state_region`] bytes of the arena,
//! set to the state's zero point before step 0 and carried from step to
//! step. The `state` line gives its size; `arena_bytes` counts it, and
//! `arena_used` in the summary is the session's arena after it (so the RAM
//! of the run is the state bytes rounded up to 16 plus `arena_used`).
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
pub mod incremental;
pub mod stack;
#[cfg(feature = "std")]
pub mod synth;

use core::fmt::Write as _;

pub use bundle::{Bundle, BundleError, Sample};
pub use engine::{graph_input, required_arena, state_region, wide_arena, ENGINE};
pub use incremental::run_incremental;
pub use stack::StackProbe;
pub use tinygnn::Output;

/// Bytes of output printed per `hex` line.
pub const HEX_PER_LINE: usize = 32;

/// Aligns embedded bytes: `static M: &Aligned<[u8]> = &Aligned(*include_bytes!("m.tgnn"));`
/// then `&M.0` is 16-aligned (the model's weight sections and the bundle's
/// arrays are read in place).
#[repr(C, align(16))]
pub struct Aligned<B: ?Sized>(pub B);

/// What [`run`] reports, in order: [`Event::Start`], [`Event::Model`],
/// [`Event::State`] (recurrent models), per sample [`Event::Sample`], [`Event::Output`], [`Event::Cost`],
/// [`Event::Stack`] (with a probe) and [`Event::Accuracy`] (with labels),
/// then [`Event::Summary`] or [`Event::Error`].
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The board and the sizes of what it runs.
    Start {
        /// Board name.
        board: &'a str,
        /// Bytes of the model.
        model_bytes: usize,
        /// Bytes of the input bundle.
        bundle_bytes: usize,
        /// Bytes of the arena.
        arena_bytes: usize,
        /// [`ENGINE`].
        engine: &'static str,
    },
    /// The model was accepted.
    Model {
        /// Ops.
        ops: usize,
        /// Tensors.
        tensors: usize,
        /// Channels of the input tensor.
        input_channels: u16,
        /// Output tensors.
        outputs: usize,
    },
    /// The model is recurrent: its state, carried from sample to sample.
    State {
        /// Bytes of the state (`nodes × channels`).
        bytes: usize,
        /// Nodes of the graph (every step's).
        nodes: u16,
        /// State channels.
        channels: u16,
        /// Zero point of the state (its initial value).
        zero_point: i8,
    },
    /// Sample `index` is about to run.
    Sample {
        /// Sample index.
        index: usize,
        /// Nodes.
        nodes: u16,
        /// Edges.
        edges: u32,
        /// Graphs.
        graphs: u16,
    },
    /// The output of sample `index`.
    Output {
        /// Sample index.
        index: usize,
        /// Rows.
        rows: usize,
        /// Channels per row.
        channels: usize,
        /// Quantization scale.
        scale: f32,
        /// Quantization zero point.
        zero_point: i8,
        /// CRC-32 (ISO-HDLC) of `bytes`.
        crc: u32,
        /// The int8 output, row-major, as bytes.
        bytes: &'a [u8],
    },
    /// Cost of the inference of sample `index`, in `unit` ([`Clock::UNIT`]).
    Cost {
        /// Sample index.
        index: usize,
        /// Counts.
        cost: u64,
        /// Unit.
        unit: &'static str,
    },
    /// An incremental run of sample `index` ([`run_incremental`]): how many
    /// nodes' features differ from the previous sample's, and the cost of a
    /// full run of the same sample (the [`Event::Cost`] before it is the
    /// incremental run's); both gave the same output bytes.
    Incremental {
        /// Sample index.
        index: usize,
        /// Nodes whose features changed.
        changed: usize,
        /// Cost of the full run, in `unit`.
        full: u64,
        /// Unit.
        unit: &'static str,
    },
    /// Stack of the inference of sample `index`, in bytes from the stack top.
    Stack {
        /// Sample index.
        index: usize,
        /// Deepest use during the inference.
        used: usize,
        /// Depth at the call.
        base: usize,
    },
    /// Argmax hits of sample `index` over its labelled rows.
    Accuracy {
        /// Sample index.
        index: usize,
        /// Correct rows.
        correct: u32,
        /// Labelled rows.
        scored: u32,
    },
    /// The run succeeded.
    Summary {
        /// Totals.
        summary: Summary,
        /// Unit of the costs.
        unit: &'static str,
    },
    /// The run failed.
    Error(AppError),
}

/// Where a board sends what [`run`] reports. Text sinks implement [`Lines`]
/// instead (every `Lines` is a `Report`).
pub trait Report {
    /// Reports one event.
    fn event(&mut self, e: &Event<'_>);
}

/// A text sink: gets every [`Event`] as the report lines of the crate docs,
/// the protocol `scripts/qemu-run.sh` parses (no trailing newline given).
pub trait Lines {
    /// Emits one line.
    fn line(&mut self, line: &str);
}

impl<L: Lines> Report for L {
    fn event(&mut self, e: &Event<'_>) {
        text_event(self, e);
    }
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

/// Logs every [`Event`] with defmt (e.g. over RTT): one `info` frame per
/// report line (the text lines' words, the values as defmt types, output
/// bytes as `{=[u8]:02x}` chunks of [`HEX_PER_LINE`]), the error as an
/// `error` frame with the runtime's `defmt::Format`. The host decoder does
/// the formatting: the firmware links no `core::fmt` for the report.
#[cfg(feature = "defmt")]
#[derive(Debug, Default, Clone, Copy)]
pub struct DefmtReport;

#[cfg(feature = "defmt")]
impl Report for DefmtReport {
    fn event(&mut self, e: &Event<'_>) {
        match *e {
            Event::Start {
                board,
                model_bytes,
                bundle_bytes,
                arena_bytes,
                engine,
            } => defmt::info!(
                "tinygnn board={=str} model_bytes={=usize} bundle_bytes={=usize} arena_bytes={=usize} engine={=str}",
                board,
                model_bytes,
                bundle_bytes,
                arena_bytes,
                engine
            ),
            Event::Model {
                ops,
                tensors,
                input_channels,
                outputs,
            } => defmt::info!(
                "model ops={=usize} tensors={=usize} input_channels={=u16} outputs={=usize}",
                ops,
                tensors,
                input_channels,
                outputs
            ),
            Event::State {
                bytes,
                nodes,
                channels,
                zero_point,
            } => defmt::info!(
                "state bytes={=usize} nodes={=u16} channels={=u16} zp={=i8}",
                bytes,
                nodes,
                channels,
                zero_point
            ),
            Event::Sample {
                index,
                nodes,
                edges,
                graphs,
            } => defmt::info!(
                "sample {=usize} nodes={=u16} edges={=u32} graphs={=u16}",
                index,
                nodes,
                edges,
                graphs
            ),
            Event::Output {
                index,
                rows,
                channels,
                scale,
                zero_point,
                crc,
                bytes,
            } => {
                defmt::info!(
                    "out {=usize} rows={=usize} channels={=usize} scale={=f32} zp={=i8} crc={=u32:08x}",
                    index,
                    rows,
                    channels,
                    scale,
                    zero_point,
                    crc
                );
                for chunk in bytes.chunks(HEX_PER_LINE) {
                    defmt::info!("hex {=usize} {=[u8]:02x}", index, chunk);
                }
            }
            Event::Cost { index, cost, unit } => {
                defmt::info!("cost {=usize} {=u64} {=str}", index, cost, unit)
            }
            Event::Incremental {
                index,
                changed,
                full,
                unit,
            } => defmt::info!(
                "incremental {=usize} changed={=usize} full={=u64} {=str}",
                index,
                changed,
                full,
                unit
            ),
            Event::Stack { index, used, base } => {
                defmt::info!("stack {=usize} {=usize} base={=usize}", index, used, base)
            }
            Event::Accuracy {
                index,
                correct,
                scored,
            } => defmt::info!("acc {=usize} {=u32}/{=u32}", index, correct, scored),
            Event::Summary { summary: s, unit } => defmt::info!(
                "summary samples={=u16} cost_total={=u64} cost_max={=u64} unit={=str} correct={=u32} scored={=u32} arena_used={=u32} stack_max={=u32} stack_total={=u32}",
                s.samples,
                s.cost_total,
                s.cost_max,
                unit,
                s.correct,
                s.scored,
                s.arena_used,
                s.stack_max,
                s.stack_total
            ),
            Event::Error(e) => defmt::error!("error {}", e),
        }
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
    /// Incremental runs ([`run_incremental`]): sample `sample` is not the
    /// graph of sample 0 with other features, or its incremental output
    /// differs from a full run's.
    Incremental {
        /// Sample index.
        sample: u16,
        /// What went wrong.
        why: &'static str,
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
            AppError::Incremental { sample, why } => write!(f, "sample {sample}: {why}"),
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
fn emit<L: Lines + ?Sized>(r: &mut L, args: core::fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = l.write_fmt(args);
    r.line(&l);
}

/// An event as the text lines of the crate docs.
#[inline(never)]
fn text_event<L: Lines + ?Sized>(r: &mut L, e: &Event<'_>) {
    match *e {
        Event::Start {
            board,
            model_bytes,
            bundle_bytes,
            arena_bytes,
            engine,
        } => emit(
            r,
            format_args!(
                "tinygnn board={board} model_bytes={model_bytes} bundle_bytes={bundle_bytes} arena_bytes={arena_bytes} engine={engine}"
            ),
        ),
        Event::Model {
            ops,
            tensors,
            input_channels,
            outputs,
        } => emit(
            r,
            format_args!(
                "model ops={ops} tensors={tensors} input_channels={input_channels} outputs={outputs}"
            ),
        ),
        Event::State {
            bytes,
            nodes,
            channels,
            zero_point,
        } => emit(
            r,
            format_args!("state bytes={bytes} nodes={nodes} channels={channels} zp={zero_point}"),
        ),
        Event::Sample {
            index,
            nodes,
            edges,
            graphs,
        } => emit(
            r,
            format_args!("sample {index} nodes={nodes} edges={edges} graphs={graphs}"),
        ),
        Event::Output {
            index,
            rows,
            channels,
            scale,
            zero_point,
            crc,
            bytes,
        } => text_output(r, index, (rows, channels, scale, zero_point, crc), bytes),
        Event::Cost { index, cost, unit } => emit(r, format_args!("cost {index} {cost} {unit}")),
        Event::Incremental {
            index,
            changed,
            full,
            unit,
        } => emit(
            r,
            format_args!("incremental {index} changed={changed} full={full} {unit}"),
        ),
        Event::Stack { index, used, base } => {
            emit(r, format_args!("stack {index} {used} base={base}"))
        }
        Event::Accuracy {
            index,
            correct,
            scored,
        } => emit(r, format_args!("acc {index} {correct}/{scored}")),
        Event::Summary { summary: s, unit } => emit(
            r,
            format_args!(
                "summary samples={} cost_total={} cost_max={} unit={unit} correct={} scored={} arena_used={} stack_max={} stack_total={}",
                s.samples,
                s.cost_total,
                s.cost_max,
                s.correct,
                s.scored,
                s.arena_used,
                s.stack_max,
                s.stack_total
            ),
        ),
        Event::Error(e) => emit(r, format_args!("error {e}")),
    }
}

/// The `out` line and the `hex` lines of an output.
fn text_output<L: Lines + ?Sized>(
    r: &mut L,
    i: usize,
    (rows, channels, scale, zp, crc): (usize, usize, f32, i8, u32),
    bytes: &[u8],
) {
    emit(
        r,
        format_args!(
            "out {i} rows={rows} channels={channels} scale={} zp={zp} crc={crc:08x}",
            Sci(scale)
        ),
    );
    for chunk in bytes.chunks(HEX_PER_LINE) {
        let mut l = Line::new();
        let _ = write!(l, "hex {i} ");
        for b in chunk {
            let _ = write!(l, "{b:02x}");
        }
        r.line(&l);
    }
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
    match r {
        Ok(summary) => report.event(&Event::Summary {
            summary,
            unit: C::UNIT,
        }),
        Err(e) => report.event(&Event::Error(e)),
    }
    r
}

/// Validation's temporaries live in this frame, popped before inference
/// (keeps the stack at inference time small on 16 KB parts).
#[inline(never)]
pub(crate) fn load_model(bytes: &[u8]) -> Result<tinygnn::Model<'_>, AppError> {
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
    report.event(&Event::Start {
        board,
        model_bytes: model_bytes.len(),
        bundle_bytes: bundle_bytes.len(),
        arena_bytes: arena.len(),
        engine: ENGINE,
    });
    let model = load_model(model_bytes)?;
    report.event(&Event::Model {
        ops: model.num_ops(),
        tensors: model.tensors().len(),
        input_channels: model.input_desc().channels,
        outputs: model.outputs().len(),
    });
    let bundle = Bundle::parse(bundle_bytes).map_err(AppError::Bundle)?;
    let mut sum = Summary::default();
    // A recurrent model: the state takes the front of the arena (see the crate docs).
    let (state, arena) = split_state(&model, &bundle, arena)?;
    if let (Some(d), Some(st)) = (model.state_desc(), state.as_ref()) {
        // Every state's channels: the buffer is nodes × (H₀ + H₁ + …).
        let channels = model.state_bytes(1);
        report.event(&Event::State {
            bytes: st.len(),
            nodes: (st.len() / channels.max(1)) as u16,
            channels: channels as u16,
            zero_point: d.zero_point,
        });
    }
    let mut state = state;
    let available = arena.len();
    let mut session = tinygnn::Session::new(&model, arena);
    for (i, sample) in bundle.samples().enumerate() {
        let sample = sample.map_err(AppError::Bundle)?;
        let index = i as u16;
        report.event(&Event::Sample {
            index: i,
            nodes: sample.nodes,
            edges: sample.edges,
            graphs: sample.graphs,
        });
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
        let out = match state.as_deref_mut() {
            Some(st) => session.run_step(&input, st),
            None => session.run(&input),
        };
        let cost = clock.elapsed();
        let stack_used = stack.as_ref().map(StackProbe::high_water);
        let out = out.map_err(|error| AppError::Inference {
            sample: index,
            error,
        })?;
        report_output(report, i, &out);
        report.event(&Event::Cost {
            index: i,
            cost,
            unit: C::UNIT,
        });
        if let (Some(used), Some(base)) = (stack_used, stack_base) {
            report.event(&Event::Stack {
                index: i,
                used,
                base,
            });
            sum.stack_max = sum.stack_max.max(used as u32);
        }
        if let Some(labels) = sample.labels {
            let (correct, scored) = score(&out, labels.values);
            report.event(&Event::Accuracy {
                index: i,
                correct,
                scored,
            });
            sum.correct += correct;
            sum.scored += scored;
        }
        sum.samples += 1;
        sum.cost_total += cost;
        sum.cost_max = sum.cost_max.max(cost);
    }
    Ok(sum)
}

/// For a recurrent model, splits the arena into the state (its first
/// [`state_region`] bytes for the nodes of the bundle's first sample; the
/// state proper, set to the zero point) and the session's arena; otherwise
/// no state and the whole arena.
#[allow(clippy::type_complexity)]
fn split_state<'a>(
    model: &tinygnn::Model<'_>,
    bundle: &Bundle<'_>,
    arena: &'a mut [u8],
) -> Result<(Option<&'a mut [i8]>, &'a mut [u8]), AppError> {
    if model.num_states() == 0 {
        return Ok((None, arena));
    }
    let nodes = match bundle.samples().next() {
        Some(s) => usize::from(s.map_err(AppError::Bundle)?.nodes),
        None => 0,
    };
    let (len, region) = (model.state_bytes(nodes), state_region(model, nodes));
    if region > arena.len() {
        return Err(AppError::ArenaTooSmall {
            sample: 0,
            needed: region as u32,
            available: arena.len() as u32,
        });
    }
    let (front, rest) = arena.split_at_mut(region);
    let state: &mut [i8] = bytemuck::cast_slice_mut(&mut front[..len]);
    model
        .init_state(nodes, state)
        .map_err(|error| AppError::Inference { sample: 0, error })?;
    Ok((Some(state), rest))
}

#[inline(never)]
pub(crate) fn report_output<R: Report>(report: &mut R, i: usize, out: &Output<'_>) {
    let bytes: &[u8] = bytemuck::cast_slice(out.data);
    report.event(&Event::Output {
        index: i,
        rows: out.rows,
        channels: out.channels,
        scale: out.scale,
        zero_point: out.zero_point,
        crc: bundle::CRC.checksum(bytes),
        bytes,
    });
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

/// The report of `run`: the text lines (byte for byte the protocol the
/// emulated boards print and `scripts/qemu-run.sh` parses) and the events.
#[cfg(all(test, feature = "std"))]
mod report_tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// `tinygnn pack expect` on `tinygnn pack demo`'s files, as printed
    /// before the report became events; `ARENA` stands for the runtime's
    /// `Model::arena_bytes` of the largest sample (32 nodes, 64 edges).
    const DEMO_REPORT: &str = "\
tinygnn board=host model_bytes=384 bundle_bytes=2124 arena_bytes=ARENA engine=session
model ops=2 tensors=3 input_channels=8 outputs=1
sample 0 nodes=5 edges=10 graphs=1
out 0 rows=5 channels=4 scale=1.250000e-1 zp=3 crc=1b42b41d
hex 0 fe060700ff0507fffd0705fffc0606fffd0704ff
cost 0 0 none
acc 0 0/5
sample 1 nodes=12 edges=24 graphs=1
out 1 rows=12 channels=4 scale=1.250000e-1 zp=3 crc=a62cb482
hex 1 000309fefd0309fffe0408fe010207fefd0606fffb0706fffc0509fefe0607fe
hex 1 000509fcff050600fe0508ff000408ff
cost 1 0 none
acc 1 4/12
sample 2 nodes=32 edges=64 graphs=1
out 2 rows=32 channels=4 scale=1.250000e-1 zp=3 crc=9ff6d1af
hex 2 fd050401fe050701fe0407fffd0306fefe0307fffc0709fefd0509fefc040cfd
hex 2 fd0408fffe060800fe040bfcfe0509fefb040efdfa030afdfe0407fffe0607ff
hex 2 ff0608fffc040afefe0206fefc0503fffe05060000050700fe0207fefe0306fd
hex 2 fc0408fffe040500ff0408fffc0505fffb050900fd0307ffff0307fffd0305ff
cost 2 0 none
acc 2 8/32
summary samples=3 cost_total=0 cost_max=0 unit=none correct=12 scored=49 arena_used=ARENA stack_max=0 stack_total=0
";

    struct Text(Vec<String>);
    impl Lines for Text {
        fn line(&mut self, l: &str) {
            self.0.push(l.to_string());
        }
    }

    struct Kinds(Vec<&'static str>);
    impl Report for Kinds {
        fn event(&mut self, e: &Event<'_>) {
            self.0.push(match e {
                Event::Start { .. } => "start",
                Event::Model { .. } => "model",
                Event::State { .. } => "state",
                Event::Sample { .. } => "sample",
                Event::Output { .. } => "output",
                Event::Cost { .. } => "cost",
                Event::Incremental { .. } => "incremental",
                Event::Stack { .. } => "stack",
                Event::Accuracy { .. } => "acc",
                Event::Summary { .. } => "summary",
                Event::Error(_) => "error",
            });
        }
    }

    /// Runs the demo model on `inputs` (the demo's own bundle when `None`).
    fn demo_run<R: Report>(report: R, inputs: Option<Vec<u8>>) -> (R, Result<Summary, AppError>) {
        let (model, samples) = crate::synth::demo().unwrap();
        let bundle = inputs.unwrap_or_else(|| crate::bundle::writer::write(&samples).unwrap());
        let mut words = std::vec![0u32; bundle.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bundle.len()].copy_from_slice(&bundle);
        let mut arena = std::vec![0u64; 1024];
        let mut b = Board {
            name: "host",
            model: &model,
            inputs: &bytemuck::cast_slice::<u32, u8>(&words)[..bundle.len()],
            arena: bytemuck::cast_slice_mut(&mut arena),
            report,
            clock: NoClock,
            stack: None,
        };
        let r = run(&mut b);
        (b.report, r)
    }

    #[test]
    fn text_lines_are_the_documented_protocol() {
        let (text, r) = demo_run(Text(Vec::new()), None);
        assert!(r.is_ok());
        let (model, _) = crate::synth::demo().unwrap();
        let arena = tinygnn::Model::from_bytes(&model)
            .unwrap()
            .arena_bytes(32, 64, 1);
        let report = DEMO_REPORT.replace("ARENA", &arena.to_string());
        let want: Vec<&str> = report.lines().collect();
        let got: Vec<&str> = text.0.iter().map(String::as_str).collect();
        // The arena is the test's (8 KiB), not the exact one `pack expect` uses.
        assert_eq!(
            got[0],
            "tinygnn board=host model_bytes=384 bundle_bytes=2124 arena_bytes=8192 engine=session"
        );
        assert_eq!(got[1..], want[1..]);
    }

    #[test]
    fn events_come_in_the_documented_order() {
        let (kinds, _) = demo_run(Kinds(Vec::new()), None);
        let mut want = std::vec!["start", "model"];
        for _ in 0..3 {
            want.extend(["sample", "output", "cost", "acc"]);
        }
        want.push("summary");
        assert_eq!(kinds.0, want);
    }

    #[test]
    fn an_error_is_the_last_line_and_event() {
        // A bundle of 34-channel samples for the demo's 8-channel model.
        let karate = std::fs::read(std::concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/karate-gcn/inputs.tgib"
        ))
        .unwrap();
        let (text, r) = demo_run(Text(Vec::new()), Some(karate.clone()));
        assert!(matches!(r, Err(AppError::Inference { sample: 0, .. })));
        assert_eq!(
            text.0.last().map(String::as_str),
            Some("error sample 0: expected 272 feature values, got 1156")
        );
        let (kinds, _) = demo_run(Kinds(Vec::new()), Some(karate));
        assert_eq!(kinds.0, ["start", "model", "sample", "error"]);
    }
}
