//! Running a model: arena planning and execution of the op list.
//!
//! A [`Session`] borrows a validated [`Model`] and a caller-provided arena
//! (`&mut [u8]`, any alignment). Each [`Session::run`]:
//! 1. validates the [`GraphInput`] ([`crate::graph`]);
//! 2. checks the arena against the exact need ([`Model::arena_bytes`] plus the
//!    slack to align its start to 8), else [`Error::ArenaTooSmall`];
//! 3. builds the target-sorted CSR in the arena (stable counting sort, `u32`
//!    row offsets, `u16` sources, Q16 `u32` weights when the model uses edge
//!    weights) and the per-graph node counts;
//! 4. quantizes (or copies) the features into the input tensor;
//! 5. runs the ops in order; each writes its output tensor's slot.
//!
//! # Arena layout (every region starts 8-aligned, sizes rounded up to 8)
//! ```text
//! [align slack][row_ptr u32 × (N+1)][sources u16 × E][weights u32 × E]?
//! [graph node counts u32 × G][slot 0][slot 1]…[slot S−1][scratch]
//! ```
//! # Memory plan
//! Computed once per model from the op list alone (so it does not depend on
//! the graph): every tensor gets a slot; walking the ops in order, a slot is
//! freed once the last op reading its tensor has run (an op's output never
//! shares a slot with its inputs), and the input and all output tensors are
//! never freed, so they stay readable after the run. A new tensor takes a
//! free slot already large enough for it, else the first free slot, else a new
//! slot. A slot's size is `max(N · node_channels, G · graph_channels)` over the
//! tensors it holds. The scratch region is the largest scratch any single op
//! takes (see [`crate::ops`]).

use crate::error::{Error, Result};
use crate::format::{Op, TensorKind};
use crate::graph::{self, Dims, Features, GraphInput};
use crate::kernels::aggregate::Csr;
use crate::ops::{self, region_bytes, Ctx, In, Out, Scratch};
use crate::{Model, MAX_TENSORS};

const NO_SLOT: u8 = u8::MAX;

/// The slot assignment of a model (independent of the graph size).
#[derive(Debug, Clone)]
struct Plan {
    /// Slot of each tensor, or [`NO_SLOT`].
    slot_of: [u8; MAX_TENSORS],
    /// Largest node-tensor channel count per slot.
    node_ch: [usize; MAX_TENSORS],
    /// Largest graph-tensor channel count per slot.
    graph_ch: [usize; MAX_TENSORS],
    /// Number of slots.
    slots: usize,
}

impl Plan {
    fn new(model: &Model<'_>) -> Plan {
        let tensors = model.tensors();
        let mut plan = Plan {
            slot_of: [NO_SLOT; MAX_TENSORS],
            node_ch: [0; MAX_TENSORS],
            graph_ch: [0; MAX_TENSORS],
            slots: 0,
        };
        let mut last_use = [0usize; MAX_TENSORS];
        let mut keep = [false; MAX_TENSORS];
        let mut freed = [false; MAX_TENSORS];
        let mut slot_free = [false; MAX_TENSORS];
        if let Some(k) = keep.get_mut(usize::from(model.input())) {
            *k = true;
        }
        for &o in model.outputs() {
            if let Some(k) = keep.get_mut(usize::from(o)) {
                *k = true;
            }
        }
        for (k, op) in model.ops().enumerate() {
            if let Some(l) = last_use.get_mut(usize::from(op.output())) {
                *l = k;
            }
            op.for_each_input(|t| {
                if let Some(l) = last_use.get_mut(usize::from(t)) {
                    *l = k;
                }
            });
        }
        let assign = |plan: &mut Plan, slot_free: &mut [bool; MAX_TENSORS], t: u8| {
            let Some(desc) = tensors.get(usize::from(t)) else {
                return;
            };
            let ch = usize::from(desc.channels);
            let (cn, cg) = match desc.kind {
                TensorKind::Node => (ch, 0),
                TensorKind::Graph => (0, ch),
            };
            let fits = (0..plan.slots)
                .find(|&s| slot_free[s] && plan.node_ch[s] >= cn && plan.graph_ch[s] >= cg);
            let any = (0..plan.slots).find(|&s| slot_free[s]);
            let s = match fits.or(any) {
                Some(s) => s,
                None => {
                    if plan.slots >= MAX_TENSORS {
                        return;
                    }
                    plan.slots += 1;
                    plan.slots - 1
                }
            };
            slot_free[s] = false;
            plan.node_ch[s] = plan.node_ch[s].max(cn);
            plan.graph_ch[s] = plan.graph_ch[s].max(cg);
            if let Some(so) = plan.slot_of.get_mut(usize::from(t)) {
                *so = s as u8;
            }
        };
        assign(&mut plan, &mut slot_free, model.input());
        for (k, op) in model.ops().enumerate() {
            for t in 0..tensors.len().min(MAX_TENSORS) {
                let s = plan.slot_of[t];
                if s != NO_SLOT && !keep[t] && !freed[t] && last_use[t] < k {
                    freed[t] = true;
                    if let Some(f) = slot_free.get_mut(usize::from(s)) {
                        *f = true;
                    }
                }
            }
            assign(&mut plan, &mut slot_free, op.output());
        }
        plan
    }

    /// Byte size of slot `s` for `d`.
    fn slot_bytes(&self, s: usize, d: Dims) -> usize {
        let cn = self.node_ch.get(s).copied().unwrap_or(0);
        let cg = self.graph_ch.get(s).copied().unwrap_or(0);
        region_bytes::<i8>(d.nodes.saturating_mul(cn).max(d.graphs.saturating_mul(cg)))
    }
}

/// Byte sizes of the arena regions for one graph size.
#[derive(Debug, Clone, Copy)]
struct Layout {
    row_ptr: usize,
    sources: usize,
    weights: usize,
    counts: usize,
    slots: usize,
    scratch: usize,
}

impl Layout {
    fn new(model: &Model<'_>, plan: &Plan, d: Dims) -> Layout {
        let slots =
            (0..plan.slots).fold(0usize, |acc, s| acc.saturating_add(plan.slot_bytes(s, d)));
        let scratch = model
            .ops()
            .map(|op| ops::scratch_bytes(&op, model.tensors(), d.nodes, d.graphs))
            .max()
            .unwrap_or(0);
        Layout {
            row_ptr: region_bytes::<u32>(d.nodes.saturating_add(1)),
            sources: region_bytes::<u16>(d.edges),
            weights: if model.uses_edge_weight() {
                region_bytes::<u32>(d.edges)
            } else {
                0
            },
            counts: region_bytes::<u32>(d.graphs),
            slots,
            scratch,
        }
    }

    fn graph_bytes(&self) -> usize {
        self.row_ptr
            .saturating_add(self.sources)
            .saturating_add(self.weights)
            .saturating_add(self.counts)
    }

    fn total(&self) -> usize {
        self.graph_bytes()
            .saturating_add(self.slots)
            .saturating_add(self.scratch)
    }
}

impl Model<'_> {
    /// The exact number of arena bytes [`Session::run`] uses for a graph of
    /// `nodes` nodes, `edges` edges and `graphs` graphs, when the arena starts
    /// 8-aligned (an unaligned arena needs up to 7 bytes more). Saturates at
    /// `usize::MAX` for absurd sizes.
    pub fn arena_bytes(&self, nodes: usize, edges: usize, graphs: usize) -> usize {
        let plan = Plan::new(self);
        Layout::new(
            self,
            &plan,
            Dims {
                nodes,
                edges,
                graphs,
            },
        )
        .total()
    }
}

/// One output tensor of a run: int8 values with their quantization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Output<'s> {
    /// Values, row-major `[rows, channels]`.
    pub data: &'s [i8],
    /// Rows (nodes, or graphs for a graph-level tensor).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Quantization scale.
    pub scale: f32,
    /// Quantization zero point.
    pub zero_point: i8,
}

impl Output<'_> {
    /// Row `i`, or `None` if out of range.
    pub fn row(&self, i: usize) -> Option<&[i8]> {
        if i >= self.rows {
            return None;
        }
        let start = i.checked_mul(self.channels)?;
        self.data.get(start..start.checked_add(self.channels)?)
    }

    /// Index of the largest value of row `i` (the first one on ties), or
    /// `None` if the row is out of range or empty.
    pub fn argmax(&self, i: usize) -> Option<usize> {
        let row = self.row(i)?;
        let mut best: Option<(usize, i8)> = None;
        for (c, &v) in row.iter().enumerate() {
            match best {
                Some((_, b)) if v <= b => {}
                _ => best = Some((c, v)),
            }
        }
        best.map(|(c, _)| c)
    }

    /// The real value `scale · (q − zero_point)` at row `i`, channel `c`.
    pub fn dequantize(&self, i: usize, c: usize) -> Option<f32> {
        if c >= self.channels {
            return None;
        }
        let q = *self.row(i)?.get(c)?;
        Some(self.scale * (i32::from(q) - i32::from(self.zero_point)) as f32)
    }
}

/// Runs a model on input graphs inside a caller-provided arena.
///
/// The session keeps the results of the last successful run in the arena:
/// [`Session::output`] reads them until the next run.
#[derive(Debug)]
pub struct Session<'a, 'm> {
    model: &'a Model<'m>,
    arena: &'a mut [u8],
    plan: Plan,
    last: Option<Dims>,
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Takes `bytes` (a multiple of 8) off the front of `rest`.
fn carve<'x>(rest: &mut &'x mut [u8], bytes: usize) -> Option<&'x mut [u8]> {
    let buf = core::mem::take(rest);
    if bytes > buf.len() {
        return None;
    }
    let (head, tail) = buf.split_at_mut(bytes);
    *rest = tail;
    Some(head)
}

/// Casts the first `count` values of `T` of a carved region.
fn cast<T: bytemuck::Pod>(region: &mut [u8], count: usize) -> Option<&mut [T]> {
    let bytes = count.checked_mul(core::mem::size_of::<T>())?;
    bytemuck::try_cast_slice_mut(region.get_mut(..bytes)?).ok()
}

/// The slots other than the one being written, read-only.
struct OtherSlots<'x> {
    before: &'x [&'x mut [u8]],
    after: &'x [&'x mut [u8]],
    out: usize,
}

impl<'x> OtherSlots<'x> {
    fn get(&self, s: usize) -> Option<&'x [u8]> {
        if s < self.out {
            self.before.get(s).map(|v| &**v)
        } else if s > self.out {
            self.after.get(s - self.out - 1).map(|v| &**v)
        } else {
            None
        }
    }
}

impl<'a, 'm> Session<'a, 'm> {
    /// A session running `model` in `arena`. The arena is checked on each run.
    pub fn new(model: &'a Model<'m>, arena: &'a mut [u8]) -> Self {
        Session {
            plan: Plan::new(model),
            model,
            arena,
            last: None,
        }
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        self.model
    }

    /// Runs the model on `input` and returns its first output.
    pub fn run(&mut self, input: &GraphInput<'_>) -> Result<Output<'_>> {
        self.run_inspect(input, |_, _| {})
    }

    /// Like [`Session::run`], calling `f(op_index, tensor)` after each op with
    /// the tensor that op produced.
    pub fn run_inspect(
        &mut self,
        input: &GraphInput<'_>,
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        self.last = None;
        let dims = graph::validate(self.model, input)?;
        self.execute(input, dims, f)?;
        self.last = Some(dims);
        self.output(0).ok_or(Error::InvalidOutputs)
    }

    /// Output `index` of the last successful run (`None` before one, or if
    /// the model has fewer outputs).
    pub fn output(&self, index: usize) -> Option<Output<'_>> {
        let dims = self.last?;
        let t = *self.model.outputs().get(index)?;
        self.tensor(t, dims)
    }

    /// Offset of the aligned arena start.
    fn align_slack(&self) -> usize {
        let off = self.arena.as_ptr().align_offset(8);
        if off >= 8 {
            0
        } else {
            off
        }
    }

    /// Read access to tensor `t` after a run.
    fn tensor(&self, t: u8, d: Dims) -> Option<Output<'_>> {
        let desc = self.model.tensors().get(usize::from(t))?;
        let s = usize::from(*self.plan.slot_of.get(usize::from(t))?);
        let layout = Layout::new(self.model, &self.plan, d);
        let mut start = self.align_slack().checked_add(layout.graph_bytes())?;
        for k in 0..s {
            start = start.checked_add(self.plan.slot_bytes(k, d))?;
        }
        let rows = ops::rows_of(desc.kind, d.nodes, d.graphs);
        let channels = usize::from(desc.channels);
        let len = rows.checked_mul(channels)?;
        let bytes = self.arena.get(start..start.checked_add(len)?)?;
        Some(Output {
            data: bytemuck::try_cast_slice(bytes).ok()?,
            rows,
            channels,
            scale: desc.scale,
            zero_point: desc.zero_point,
        })
    }

    fn execute(
        &mut self,
        input: &GraphInput<'_>,
        d: Dims,
        mut f: impl FnMut(usize, Output<'_>),
    ) -> Result<()> {
        let model = self.model;
        let plan = &self.plan;
        let layout = Layout::new(model, plan, d);
        let slack = self.align_slack();
        let needed = slack.saturating_add(layout.total());
        let actual = self.arena.len();
        let too_small = Error::ArenaTooSmall {
            needed: to_u32(needed),
            actual: to_u32(actual),
        };
        if needed > actual {
            return Err(too_small);
        }
        let mut rest: &mut [u8] = self.arena.get_mut(slack..needed).ok_or(too_small)?;

        // ---- graph: CSR, weights, graph node counts -----------------------
        let row_ptr = carve(&mut rest, layout.row_ptr).ok_or(too_small)?;
        let row_ptr: &mut [u32] = cast(row_ptr, d.nodes + 1).ok_or(too_small)?;
        let sources = carve(&mut rest, layout.sources).ok_or(too_small)?;
        let sources: &mut [u16] = cast(sources, d.edges).ok_or(too_small)?;
        let weights = carve(&mut rest, layout.weights).ok_or(too_small)?;
        let mut weights: Option<&mut [u32]> = if model.uses_edge_weight() {
            Some(cast(weights, d.edges).ok_or(too_small)?)
        } else {
            None
        };
        let counts = carve(&mut rest, layout.counts).ok_or(too_small)?;
        let counts: &mut [u32] = cast(counts, d.graphs).ok_or(too_small)?;
        build_csr(input, row_ptr, sources, weights.as_deref_mut());
        counts.fill(0);
        match input.batch {
            Some(b) => {
                for &g in b {
                    if let Some(c) = counts.get_mut(usize::from(g)) {
                        *c += 1;
                    }
                }
            }
            None => {
                if let Some(c) = counts.first_mut() {
                    *c = to_u32(d.nodes);
                }
            }
        }
        let ctx_base = Ctx {
            op: 0,
            csr: Csr {
                row_ptr: &*row_ptr,
                sources: &*sources,
                weights: weights.as_deref(),
            },
            batch: input.batch,
            graph_nodes: &*counts,
        };

        // ---- tensor slots and scratch -------------------------------------
        let mut slots: [&mut [u8]; MAX_TENSORS] = core::array::from_fn(|s| {
            let bytes = if s < plan.slots {
                plan.slot_bytes(s, d)
            } else {
                0
            };
            carve(&mut rest, bytes).unwrap_or(&mut [])
        });
        let scratch_region = carve(&mut rest, layout.scratch).ok_or(too_small)?;

        let tensor_len = |t: u8| -> Option<(usize, usize, usize, i8)> {
            let desc = model.tensors().get(usize::from(t))?;
            let rows = ops::rows_of(desc.kind, d.nodes, d.graphs);
            let ch = usize::from(desc.channels);
            let slot = usize::from(*plan.slot_of.get(usize::from(t))?);
            Some((slot, rows, ch, desc.zero_point))
        };

        // ---- input features -----------------------------------------------
        {
            let (slot, rows, ch, _) = tensor_len(model.input()).ok_or(too_small)?;
            let desc = model.input_desc();
            let buf = slots.get_mut(slot).ok_or(too_small)?;
            let dst: &mut [i8] = cast(buf, rows * ch).ok_or(too_small)?;
            match input.features {
                Features::F32(v) => {
                    for (o, &x) in dst.iter_mut().zip(v) {
                        *o = graph::quantize_value(x, desc.scale, desc.zero_point);
                    }
                }
                Features::I8(v) => {
                    for (o, &x) in dst.iter_mut().zip(v) {
                        *o = x;
                    }
                }
            }
        }

        // ---- ops ----------------------------------------------------------
        for (k, op) in model.ops().enumerate() {
            let ctx = Ctx {
                op: u16::try_from(k).unwrap_or(u16::MAX),
                ..ctx_base
            };
            let internal = Error::InvalidOp { op: ctx.op };
            let (oslot, orows, och, ozp) = tensor_len(op.output()).ok_or(internal)?;
            let (before, rest_slots) = slots.split_at_mut(oslot);
            let (out_buf, after) = rest_slots.split_first_mut().ok_or(internal)?;
            let others = OtherSlots {
                before: &*before,
                after: &*after,
                out: oslot,
            };
            let view = |t: u8| -> Result<In<'_>> {
                let (slot, rows, ch, zp) = tensor_len(t).ok_or(internal)?;
                let buf = others.get(slot).ok_or(internal)?;
                let data = buf.get(..rows * ch).ok_or(internal)?;
                Ok(In {
                    data: bytemuck::try_cast_slice(data).map_err(|_| internal)?,
                    rows,
                    channels: ch,
                    zp,
                })
            };
            let out_data: &mut [i8] = cast(out_buf, orows * och).ok_or(internal)?;
            let out = Out {
                data: out_data,
                rows: orows,
                channels: och,
                zp: ozp,
            };
            let scratch = Scratch::new(&mut *scratch_region);
            run_op(model, &ctx, &op, &view, out, scratch)?;
            let desc = model
                .tensors()
                .get(usize::from(op.output()))
                .ok_or(internal)?;
            let produced: &[i8] = cast(out_buf, orows * och).ok_or(internal)?;
            f(
                k,
                Output {
                    data: produced,
                    rows: orows,
                    channels: och,
                    scale: desc.scale,
                    zero_point: desc.zero_point,
                },
            );
        }
        Ok(())
    }
}

/// Stable counting sort of the edges by target into `row_ptr`/`sources`/`weights`.
/// The input was validated (indices in range, weights valid, lengths equal).
fn build_csr(
    input: &GraphInput<'_>,
    row_ptr: &mut [u32],
    sources: &mut [u16],
    mut weights: Option<&mut [u32]>,
) {
    row_ptr.fill(0);
    // Count the in-degree of t at row_ptr[t + 1].
    for &t in input.targets {
        if let Some(c) = row_ptr.get_mut(usize::from(t) + 1) {
            *c += 1;
        }
    }
    // Exclusive prefix sum shifted by one: row_ptr[t + 1] = start of t.
    let mut sum = 0u32;
    for c in row_ptr.iter_mut().skip(1) {
        let count = *c;
        *c = sum;
        sum += count;
    }
    // Place edges in input order; row_ptr[t + 1] ends at the end of t = start of t + 1.
    let ew = input.edge_weight.unwrap_or(&[]);
    for (k, (&s, &t)) in input.sources.iter().zip(input.targets).enumerate() {
        if let Some(cursor) = row_ptr.get_mut(usize::from(t) + 1) {
            let pos = *cursor as usize;
            *cursor += 1;
            if let Some(slot) = sources.get_mut(pos) {
                *slot = s;
            }
            if let Some(w) = weights.as_deref_mut().and_then(|w| w.get_mut(pos)) {
                *w = ew
                    .get(k)
                    .and_then(|&x| graph::edge_weight_q16(x))
                    .unwrap_or(0);
            }
        }
    }
}

/// Dispatches one op to its implementation.
fn run_op<'v>(
    model: &Model<'_>,
    ctx: &Ctx<'_>,
    op: &Op,
    view: &impl Fn(u8) -> Result<In<'v>>,
    mut out: Out<'_>,
    scratch: Scratch<'_>,
) -> Result<()> {
    match op {
        Op::Linear {
            input,
            weights,
            params,
            act,
            ..
        } => ops::linear::run(
            model.weights(*weights),
            model.data(*params),
            *act,
            view(*input)?,
            out,
            scratch,
        ),
        Op::GcnConv {
            input,
            weights,
            params,
            act,
            improved,
            add_self_loops,
            normalize,
            edge_weight,
            ..
        } => ops::gcn::run(
            ctx,
            model.weights(*weights),
            model.data(*params),
            *act,
            ops::gcn::GcnFlags {
                improved: *improved,
                add_self_loops: *add_self_loops,
                normalize: *normalize,
                edge_weight: *edge_weight,
            },
            view(*input)?,
            out,
            scratch,
        ),
        Op::SageConv {
            input,
            aggr,
            weights_l,
            weights_r,
            params,
            act,
            normalize,
            ..
        } => ops::sage::run(
            ctx,
            ops::sage::SageParams {
                aggr: *aggr,
                wl: model.weights(*weights_l),
                wr: model.weights(*weights_r),
                params: model.data(*params),
                act: *act,
                normalize: *normalize,
            },
            view(*input)?,
            out,
            scratch,
        ),
        Op::GinAggregate {
            input,
            one_plus_eps_q16,
            mult,
            shift,
            ..
        } => ops::gin::run(
            ctx,
            *one_plus_eps_q16,
            *mult,
            *shift,
            view(*input)?,
            out,
            scratch,
        ),
        Op::GlobalPool {
            input,
            pool,
            mult,
            shift,
            ..
        } => ops::pool::run(ctx, *pool, *mult, *shift, view(*input)?, out, scratch),
        Op::Add {
            a,
            b,
            mult_a_q16,
            mult_b_q16,
            act,
            ..
        } => ops::elementwise::add(view(*a)?, view(*b)?, *mult_a_q16, *mult_b_q16, *act, out),
        Op::Concat { parts, .. } => {
            let mut offset = 0usize;
            for p in parts {
                let v = view(p.input)?;
                let c = v.channels;
                ops::elementwise::concat_part(v, p.mult_q16, offset, &mut out)?;
                offset += c;
            }
            Ok(())
        }
        Op::Act { input, act, .. } => ops::elementwise::act(view(*input)?, *act, out),
    }
}
