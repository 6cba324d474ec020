//! Running a model: arena planning and execution of the op list.
//!
//! A [`Session`] borrows a validated [`Model`] and a caller-provided arena
//! (`&mut [u8]`, any alignment). Each [`Session::run`]:
//! 1. validates the [`GraphInput`] ([`crate::graph`]);
//! 2. checks the arena against the exact need ([`Model::arena_bytes`] plus the
//!    slack to align its start to 8), else [`Error::ArenaTooSmall`];
//! 3. builds the target-sorted CSR in the arena (stable counting sort, `u32`
//!    row offsets, `u16` sources, Q16 `u32` weights when the model uses edge
//!    weights) and the per-graph node counts (the `batch` vector itself is
//!    read in place from the input, which the run borrows, so it is not copied);
//! 4. quantizes (or copies) the features into the input tensor — except for
//!    sparse features ([`Features::SparseI8`]) when the model reads them in
//!    place ([`Model::reads_sparse_input`]): then the input tensor takes no arena bytes
//!    and the ops that read it get the CSR rows themselves (`ops::Src::Sparse`);
//! 5. runs the ops in order; each writes its output tensor's slot.
//!
//! # Example
//! ```
//! # #[cfg(all(feature = "std", feature = "unstable-internals"))] {
//! # // A one-op model (normally written by the host tool and read from flash).
//! # use tinygnn::format::writer::{ChannelRecord, ModelWriter};
//! # use tinygnn::format::{Activation, TensorDesc, TensorKind};
//! # use tinygnn::ops::{GcnConv, Op};
//! # let mut w = ModelWriter::new();
//! # let t = |channels| TensorDesc { kind: TensorKind::Node, channels, scale: 0.1, zero_point: 0 };
//! # let x = w.add_tensor(t(2));
//! # let y = w.add_tensor(t(1));
//! # let weights = w.add_i8(&[1, 1]);
//! # let params = w.add_channel_params(&[ChannelRecord { bias: 0, mult: 1 << 30, shift: 1 }]);
//! # w.add_op(Op::GcnConv(GcnConv {
//! #     input: x, output: y, weights, params, act: Activation::Relu,
//! #     improved: false, add_self_loops: true, normalize: true, edge_weight: false,
//! # }));
//! # let bytes = w.finish(x, &[y], 16, 32, 1).unwrap();
//! use tinygnn::{Features, GraphInput, Model, Session};
//!
//! let model = Model::from_bytes(&bytes)?;
//! let mut arena = [0u8; 1024];
//! assert!(model.arena_bytes(3, 2, 1) + 7 <= arena.len());
//! let mut session = Session::new(&model, &mut arena);
//! let x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
//! let out = session.run(&GraphInput::new(3, Features::F32(&x), &[0, 1], &[1, 2]))?;
//! assert_eq!((out.rows, out.channels), (3, 1));
//! assert_eq!(out.argmax(0), Some(0));
//! # }
//! # Ok::<(), tinygnn::Error>(())
//! ```
//!
//! # Arena layout (every region starts 8-aligned, sizes rounded up to 8)
//! ```text
//! [align slack][row_ptr u32 × (N+1)][sources u16 × E][weights u32 × E]?
//! [graph node counts u32 × G][marks]?[slot 0][slot 1]…[slot S−1][scratch]
//! ```
//! # Memory plan
//! Computed once per model from the op list alone (so it does not depend on
//! the graph): every tensor gets a slot; walking the ops in order, a slot is
//! freed once the last op reading its tensor has run (an op's output never
//! shares a slot with its inputs), and the input and all output tensors are
//! never freed, so they stay readable after the run. A new tensor takes a
//! free slot already large enough for it, else the first free slot, else a new
//! slot. A slot's size is `max(N · node_channels, G · graph_channels)` over the
//! tensors it holds. An op's scratch (its need is documented with the op)
//! starts right after the last slot holding a live tensor while it runs
//! (its inputs, its output, every tensor read later, the kept ones): over
//! the slots of tensors not written yet or no longer read, and on past the
//! last slot. The arena is the most any op needs that way. (An incremental
//! run keeps every tensor between runs: its scratch starts after all slots,
//! and its marks sit before them.)
//!
//! With sparse features read in place the input's slot takes no bytes (the
//! input is kept, so no other tensor ever shares its slot: this is exactly
//! the plan without the input tensor), and [`Model::arena_bytes_sparse`] gives
//! its exact size; when the model cannot read them in place (an op other than
//! `Linear`, `GcnConv`, `GatConv` or a `Sum`/`Mean` `SageConv` reads the input, or the
//! input is an output), sparse features are expanded into the input slot and
//! `arena_bytes_sparse` equals [`Model::arena_bytes`].

use crate::error::{Error, Result};
use crate::format::TensorKind;
use crate::graph::{self, Dims, EdgeAttr, Features, GraphInput};
use crate::kernels::aggregate::{self, Csr};
use crate::kernels::sparse::SparseRows;
use crate::ops::{self, region_bytes, Ctx, In, Out, Scratch, SparseIn, Src};
use crate::{incremental, Model, MAX_OPS, MAX_TENSORS};

/// Index of the slot recorded as `s` in [`Plan::slot_of`] (`index + 1`,
/// so that "no slot" is 0 and the array starts zeroed like every other
/// planning buffer: one `memclr` variant in the code-size build).
fn slot_index(s: u8) -> Option<usize> {
    usize::from(s).checked_sub(1)
}

/// Whether an op family that reads edge-feature tensors is compiled in.
const EDGE_READERS: bool = cfg!(any(feature = "op-gat", feature = "op-gine"));

/// One arena slot of the plan.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Largest node-tensor channel count of the tensors it holds.
    node_ch: u16,
    /// Largest graph-tensor channel count of the tensors it holds.
    graph_ch: u16,
    /// Largest edge-tensor channel count of the tensors it holds.
    edge_ch: u16,
    /// Largest pair-tensor channel count of the tensors it holds.
    pair_ch: u16,
}

/// Whether an op that reads edge features is compiled in (else no edge
/// tensor is ever written or read: it takes no bytes).
const EDGE_OPS: bool = cfg!(any(feature = "op-gat", feature = "op-gine"));

impl Slot {
    /// Rows × channels of an edge or pair tensor, 0 in a build whose ops
    /// cannot read (edges) or write (pairs) one: such a model is
    /// `OpNotCompiled` there, and the code for them is left out.
    fn extra(compiled: bool, rows: usize, ch: u16) -> usize {
        if compiled {
            rows.saturating_mul(usize::from(ch))
        } else {
            0
        }
    }

    /// Byte size for `d`.
    fn bytes(&self, d: Dims) -> usize {
        region_bytes::<i8>(
            d.nodes
                .saturating_mul(usize::from(self.node_ch))
                .max(d.graphs.saturating_mul(usize::from(self.graph_ch)))
                .max(Self::extra(EDGE_OPS, d.edges, self.edge_ch))
                .max(Self::extra(
                    cfg!(feature = "op-link"),
                    d.pairs,
                    self.pair_ch,
                )),
        )
    }
}

/// Planning state of one tensor.
#[derive(Debug, Clone, Copy, Default)]
struct Life {
    /// Index of the last op that reads (or, if none, writes) it.
    last_use: u16,
    /// Never freed: the model input or an output.
    keep: bool,
    /// Its slot was released.
    freed: bool,
}

/// The slot assignment of a model (independent of the graph size).
#[derive(Debug, Clone)]
struct Plan {
    /// Slot of each tensor plus one, or 0 for none ([`slot_index`]).
    slot_of: [u8; MAX_TENSORS],
    /// The slots, in arena order.
    slots: heapless::Vec<Slot, MAX_TENSORS>,
    /// The input tensor's slot takes no bytes and cannot be located (sparse
    /// features read in place). No other tensor ever shares that slot (the
    /// input is kept), so this is exactly the plan without the input tensor.
    skip_input: bool,
    /// The key of the first op whose graph normalisation the session shares
    /// ([`ops::shared_norm_key`]): computed once per graph (with the CSR, in
    /// the graph region, kept by a prepared graph) and read by every op with
    /// the same key instead of computing its own.
    norm: Option<u8>,
    /// Every tensor keeps its own slot (incremental runs,
    /// [`Session::prepare_incremental`]), and the arena ends with the
    /// per-node marks of [`crate::incremental`].
    retain: bool,
    /// Size the scratch for every op at its full width
    /// ([`Model::wide_arena_bytes`]); otherwise at its least
    /// ([`ops::scratch_bytes`]).
    wide: bool,
    /// For each op, the slots (a prefix of [`Plan::slots`]) holding a live
    /// tensor while it runs: its inputs, its output and every tensor read
    /// later or kept. The op's scratch starts right after them, over slots
    /// that hold nothing yet or nothing any more.
    top: [u8; MAX_OPS],
}

impl Plan {
    /// The plan for dense input (`skip_input` false).
    fn new(model: &Model<'_>) -> Plan {
        Self::with(model, false)
    }

    /// The plan of an incremental session: no tensor shares a slot.
    #[cfg(feature = "incremental")]
    fn retained(model: &Model<'_>) -> Plan {
        Self::with(model, true)
    }

    fn with(model: &Model<'_>, retain: bool) -> Plan {
        let tensors = model.tensors();
        let mut plan = Plan {
            slot_of: [0; MAX_TENSORS],
            slots: heapless::Vec::new(),
            skip_input: false,
            norm: None,
            retain,
            wide: false,
            // Every slot, until op 0 (if any) is planned.
            top: [0; MAX_OPS],
        };
        plan.top[0] = u8::MAX;
        let mut life = [Life::default(); MAX_TENSORS];
        // Which slots are free for a new tensor: needed while planning
        // only, so kept here rather than in every `Session`'s plan.
        let mut free = [false; MAX_TENSORS];
        let mut mark = |t: u8, f: &mut dyn FnMut(&mut Life)| {
            if let Some(l) = life.get_mut(usize::from(t)) {
                f(l);
            }
        };
        mark(model.input(), &mut |l| l.keep = true);
        // The state inputs are written before the first op, like the input.
        #[cfg(feature = "op-recurrent")]
        for (s, _) in model.states() {
            mark(s, &mut |l| l.keep = true);
        }
        for &o in model.outputs() {
            mark(o, &mut |l| l.keep = true);
        }
        // Op indices counted by hand, not by `enumerate()`: an `Enumerate`
        // over the ops moves each (large) `Op` once more (docs/size.md).
        let mut k = 0u16;
        for op in model.ops() {
            if plan.norm.is_none() {
                plan.norm = ops::shared_norm_key(&op);
            }
            mark(op.output(), &mut |l| l.last_use = k);
            ops::inputs(&op, &mut |t| mark(t, &mut |l| l.last_use = k));
            k = k.saturating_add(1);
        }
        // The retained plan: no tensor is ever freed. (Here, not in `mark`:
        // a closure that reads `retain` costs the plain build 200 bytes of
        // code, docs/size.md.)
        #[cfg(feature = "incremental")]
        if retain {
            for l in life.iter_mut() {
                l.keep = true;
            }
        }
        plan.assign(
            &mut free,
            tensors,
            model.input(),
            model.is_i4(model.input()),
        );
        #[cfg(feature = "op-recurrent")]
        for (s, _) in model.states() {
            plan.assign(&mut free, tensors, s, false);
        }
        if let Some(e) = model.edge_input() {
            // Written (quantized) before the first op, freed after its last reader.
            plan.assign(&mut free, tensors, e, false);
        }
        let mut k = 0usize;
        for op in model.ops() {
            // Release the slots of tensors whose last reader ran before op k.
            for (l, &s) in life.iter_mut().zip(plan.slot_of.iter()) {
                let Some(s) = slot_index(s) else { continue };
                if !l.keep && !l.freed && usize::from(l.last_use) < k {
                    l.freed = true;
                    if let Some(f) = free.get_mut(s) {
                        *f = true;
                    }
                }
            }
            plan.assign(&mut free, tensors, op.output(), model.is_i4(op.output()));
            let live = free
                .iter()
                .take(plan.slots.len())
                .rposition(|&f| !f)
                .map_or(0, |i| i + 1);
            if let Some(t) = plan.top.get_mut(k) {
                *t = live as u8;
            }
            k += 1;
        }
        // A retained plan keeps every slot live in every op: a later op's
        // output holds the previous run's values.
        #[cfg(feature = "incremental")]
        if retain {
            plan.top = [plan.slots.len() as u8; MAX_OPS];
        }
        plan
    }

    /// Gives tensor `t` a slot marked in `free` already large enough, else
    /// the first free slot, else a new one (and marks it taken). An int4 tensor (`i4`, [`Model::is_i4`]) has rows
    /// of `ceil(channels / 2)` bytes: its slot is sized as for that many int8
    /// channels.
    fn assign(
        &mut self,
        free: &mut [bool; MAX_TENSORS],
        tensors: &[crate::format::TensorDesc],
        t: u8,
        i4: bool,
    ) {
        let Some(desc) = tensors.get(usize::from(t)) else {
            return;
        };
        let ch = if cfg!(feature = "act-i4") && i4 {
            desc.channels.div_ceil(2)
        } else {
            desc.channels
        };
        let (cn, cg, ce, cp) = match desc.kind {
            TensorKind::Node => (ch, 0, 0, 0),
            TensorKind::Graph => (0, ch, 0, 0),
            // (0 where no compiled op uses the kind: see `Slot::extra`.)
            TensorKind::Edge => (0, 0, if EDGE_OPS { ch } else { 0 }, 0),
            TensorKind::Pair => (0, 0, 0, if cfg!(feature = "op-link") { ch } else { 0 }),
        };
        let fits = self.slots.iter().zip(free.iter()).position(|(s, &f)| {
            f && s.node_ch >= cn && s.graph_ch >= cg && s.edge_ch >= ce && s.pair_ch >= cp
        });
        let any = free.iter().take(self.slots.len()).position(|&f| f);
        let index = match fits.or(any) {
            Some(i) => i,
            None => {
                if self.slots.push(Slot::default()).is_err() {
                    return;
                }
                self.slots.len() - 1
            }
        };
        if let Some(f) = free.get_mut(index) {
            *f = false;
        }
        if let Some(slot) = self.slots.get_mut(index) {
            slot.node_ch = slot.node_ch.max(cn);
            slot.graph_ch = slot.graph_ch.max(cg);
            slot.edge_ch = slot.edge_ch.max(ce);
            slot.pair_ch = slot.pair_ch.max(cp);
        }
        if let (Some(so), Ok(i)) = (
            self.slot_of.get_mut(usize::from(t)),
            u8::try_from(index + 1),
        ) {
            *so = i;
        }
    }

    /// Whether slot `s` is the input's and takes no bytes.
    fn skipped(&self, model: &Model<'_>, s: usize) -> bool {
        self.skip_input
            && self
                .slot_of
                .get(usize::from(model.input()))
                .is_some_and(|&i| slot_index(i) == Some(s))
    }

    /// Bytes of slot `s` for a graph of size `d`.
    fn slot_bytes(&self, model: &Model<'_>, s: usize, d: Dims) -> usize {
        match self.slots.get(s) {
            Some(slot) if !self.skipped(model, s) => slot.bytes(d),
            _ => 0,
        }
    }

    /// Bytes of the first `n` slots: the offset of slot `n`.
    fn prefix_bytes(&self, model: &Model<'_>, n: usize, d: Dims) -> usize {
        (0..n).fold(0usize, |acc, s| {
            acc.saturating_add(self.slot_bytes(model, s, d))
        })
    }

    /// Bytes of the slots live while op `k` runs ([`Plan::top`]): where its
    /// scratch starts.
    fn live_bytes(&self, model: &Model<'_>, k: usize, d: Dims) -> usize {
        let n = self
            .top
            .get(k)
            .map_or(self.slots.len(), |&t| usize::from(t));
        self.prefix_bytes(model, n, d)
    }

    /// Where tensor `t` lives for a graph of size `d` (`None` for the input
    /// when it is read in place).
    fn locate(&self, model: &Model<'_>, t: u8, d: Dims) -> Option<Loc> {
        let desc = model.tensors().get(usize::from(t))?;
        let s = slot_index(*self.slot_of.get(usize::from(t))?)?;
        if s >= self.slots.len() || self.skipped(model, s) {
            return None;
        }
        Some(Loc {
            offset: self.prefix_bytes(model, s, d),
            slot_bytes: self.slot_bytes(model, s, d),
            rows: match desc.kind {
                TensorKind::Edge => d.edges,
                kind => ops::rows_of(kind, d.nodes, d.graphs, d.pairs),
            },
            channels: usize::from(desc.channels),
            scale: desc.scale,
            zero_point: desc.zero_point,
            #[cfg(feature = "act-i4")]
            packed: model.is_i4(t),
        })
    }
}

/// A tensor's place in the slot region and its shape.
#[derive(Debug, Clone, Copy)]
struct Loc {
    /// Offset of its slot from the start of the slot region.
    offset: usize,
    /// Size of its slot.
    slot_bytes: usize,
    rows: usize,
    channels: usize,
    scale: f32,
    zero_point: i8,
    /// An int4 tensor ([`Model::is_i4`]): rows of `ceil(channels / 2)` bytes.
    #[cfg(feature = "act-i4")]
    packed: bool,
}

impl Loc {
    /// Bytes of the tensor itself (`rows × channels`, or `rows ×
    /// ceil(channels / 2)` when packed; at most the slot size).
    /// Not inlined: used at many places, a call is smaller (docs/size.md).
    #[inline(never)]
    fn len(&self) -> usize {
        #[cfg(feature = "act-i4")]
        return self
            .rows
            .saturating_mul(ops::out_row_bytes(self.channels, self.packed));
        #[cfg(not(feature = "act-i4"))]
        self.rows.saturating_mul(self.channels)
    }
}

/// Byte sizes of the arena regions for one graph size.
#[derive(Debug, Clone, Copy)]
struct Layout {
    row_ptr: usize,
    sources: usize,
    weights: usize,
    counts: usize,
    /// The shared `dinv` table ([`Plan::norm`]), one `u32` per node.
    dinv: usize,
    /// The slots and the scratch: the most bytes past the start of the
    /// slots that an op takes (its live slots, then its scratch:
    /// [`Plan::top`]), and at least all slots.
    work: usize,
    /// For an incremental run, `dist` and `need` (a byte per node each) and
    /// the tensors' levels (a byte per tensor id, [`crate::incremental`]);
    /// 0 otherwise.
    marks: usize,
}

impl Layout {
    fn new(model: &Model<'_>, plan: &Plan, d: Dims) -> Layout {
        // The most any op needs past the start of the slots: its live slots
        // and its scratch after them. By a plain loop: smaller at opt-level
        // "z" than `map(..).max()` (docs/size.md).
        // (Op 0's live slots: every slot in a model without ops.) Ops
        // counted by hand, as in `Plan::with`.
        let mut work = plan.live_bytes(model, 0, d);
        let norm = plan.norm;
        let mut k = 0;
        #[allow(clippy::explicit_counter_loop)]
        for op in model.ops() {
            let own =
                ops::scratch_bytes(&op, model.tensors(), d.nodes, d.edges, d.graphs, plan.wide);
            // A `GcnConv` reading the shared `dinv` table takes no table of its own.
            let shared = if norm.is_some() && ops::shared_norm_key(&op) == norm {
                ops::shared_norm_bytes(d.nodes)
            } else {
                0
            };
            let need = plan
                .live_bytes(model, k, d)
                .saturating_add(own.saturating_sub(shared));
            work = work.max(need);
            k += 1;
        }
        Layout {
            row_ptr: region_bytes::<u32>(d.nodes.saturating_add(1)),
            sources: region_bytes::<u16>(d.edges),
            weights: if model.uses_edge_weight() {
                region_bytes::<u32>(d.edges)
            } else {
                0
            },
            counts: region_bytes::<u32>(d.graphs),
            dinv: if norm.is_some() {
                ops::shared_norm_bytes(d.nodes)
            } else {
                0
            },
            work,
            marks: if cfg!(feature = "incremental") && plan.retain {
                region_bytes::<u8>(d.nodes.saturating_mul(2).saturating_add(MAX_TENSORS))
            } else {
                0
            },
        }
    }

    fn graph_bytes(&self) -> usize {
        self.row_ptr
            .saturating_add(self.sources)
            .saturating_add(self.weights)
            .saturating_add(self.counts)
            .saturating_add(self.dinv)
    }

    /// Offset of the slots: after the graph region and the marks.
    fn slots_start(&self) -> usize {
        self.graph_bytes().saturating_add(self.marks)
    }

    fn total(&self) -> usize {
        self.slots_start().saturating_add(self.work)
    }
}

impl Model<'_> {
    /// Whether [`Session::run`] reads sparse features ([`Features::SparseI8`])
    /// in place: every op that reads the input tensor is a `Linear`, a
    /// `GcnConv`, a `GatConv` or a `SageConv` with `Sum`/`Mean` aggregation, and the input
    /// is not an output. Then the dense input tensor takes no arena space
    /// ([`Model::arena_bytes_sparse`]) and the first layer sums weight columns
    /// of the stored entries (`kernels::sparse`) instead of
    /// multiplying zeros; otherwise sparse features are expanded into the
    /// dense input tensor first. Same output bytes either way.
    pub fn reads_sparse_input(&self) -> bool {
        let input = self.input();
        // `any`, not `contains`: the latter links memchr (docs/size.md).
        #[allow(clippy::manual_contains)]
        if self.outputs().iter().any(|&o| o == input) {
            return false;
        }
        self.ops().all(|op| {
            let mut reads = false;
            ops::inputs(&op, &mut |t| reads |= t == input);
            !reads || ops::takes_sparse_input(&op)
        })
    }

    /// The exact number of arena bytes [`Session::run`] uses for sparse
    /// features ([`Features::SparseI8`]) on a graph of `nodes` nodes, `edges`
    /// edges and `graphs` graphs (8-aligned arena, as for
    /// [`Model::arena_bytes`]): without the dense input tensor when the model
    /// reads sparse features in place ([`Model::reads_sparse_input`]), else
    /// the same as [`Model::arena_bytes`]. Non-decreasing in each argument
    /// and never above [`Model::arena_bytes`].
    pub fn arena_bytes_sparse(&self, nodes: usize, edges: usize, graphs: usize) -> usize {
        self.layout_total(&mut Plan::new(self), true, nodes, edges, graphs)
    }

    /// The arena bytes of `plan` for a graph of `nodes` nodes, `edges` edges
    /// and `graphs` graphs, sized for the model's full pair capacity; with
    /// `sparse`, for sparse features (without the dense input tensor when
    /// the model reads them in place).
    fn layout_total(
        &self,
        plan: &mut Plan,
        sparse: bool,
        nodes: usize,
        edges: usize,
        graphs: usize,
    ) -> usize {
        plan.skip_input = sparse && self.reads_sparse_input();
        let pairs = self.max_pairs() as usize;
        Layout::new(
            self,
            plan,
            Dims {
                nodes,
                edges,
                graphs,
                pairs,
            },
        )
        .total()
    }

    /// The arena at which every op of a run on a graph of `nodes` nodes,
    /// `edges` edges and `graphs` graphs (with `sparse` features:
    /// [`Features::SparseI8`]; 8-aligned arena) runs at its full width, the
    /// fastest: [`Model::arena_bytes`] (or [`Model::arena_bytes_sparse`])
    /// is the least a run needs, and a `GcnConv` or sum/mean `SageConv`
    /// whose `W·x` for all its output channels would take more than 16 KiB
    /// then computes its output in passes over blocks of channels. Any arena
    /// from the least up works, the same output bytes: the ops use what the
    /// arena has beyond the need for wider passes, and from this size on
    /// every such layer runs in one.
    /// Equal to the least for graphs where no op narrows. Non-decreasing in
    /// each argument.
    pub fn wide_arena_bytes(
        &self,
        nodes: usize,
        edges: usize,
        graphs: usize,
        sparse: bool,
    ) -> usize {
        let mut plan = Plan::new(self);
        plan.wide = true;
        self.layout_total(&mut plan, sparse, nodes, edges, graphs)
    }

    /// The exact number of arena bytes [`Session::prepare_incremental`] and
    /// [`Session::update`] use for a graph of `nodes` nodes, `edges` edges
    /// and `graphs` graphs (8-aligned arena): every tensor in its own slot,
    /// and marks: two bytes per node and one per tensor id. With `sparse`, for sparse features
    /// ([`Features::SparseI8`]; read in place when
    /// [`Model::reads_sparse_input`], so without the dense input tensor).
    /// Non-decreasing in each argument.
    #[cfg(feature = "incremental")]
    pub fn incremental_arena_bytes(
        &self,
        nodes: usize,
        edges: usize,
        graphs: usize,
        sparse: bool,
    ) -> usize {
        self.layout_total(&mut Plan::retained(self), sparse, nodes, edges, graphs)
    }

    /// The exact number of bytes at the front of the arena (after the slack
    /// that aligns it to 8) that a graph prepared by [`Session::prepare`]
    /// keeps between runs: target-sorted CSR, edge weights (if the model uses
    /// them), per-graph node counts and the shared GCN `dinv` table (if the
    /// model has a normalising `GcnConv`). Part of [`Model::arena_bytes`]
    /// (and [`Model::arena_bytes_sparse`]), which stay the exact need of a
    /// prepared run: preparing costs no extra arena.
    pub fn prepared_bytes(&self, nodes: usize, edges: usize, graphs: usize) -> usize {
        let plan = Plan::new(self);
        Layout::new(
            self,
            &plan,
            Dims {
                nodes,
                edges,
                graphs,
                pairs: self.max_pairs() as usize,
            },
        )
        .graph_bytes()
    }

    /// The exact number of arena bytes [`Session::run`] uses for a graph of
    /// `nodes` nodes, `edges` edges and `graphs` graphs, when the arena starts
    /// 8-aligned (an unaligned arena needs up to 7 bytes more). Saturates at
    /// `usize::MAX` for absurd sizes.
    ///
    /// Non-decreasing in each argument, so `arena_bytes` at the model's
    /// [`Model::capacity`] is enough for every input the model accepts: size
    /// a static arena with it (plus 7 if its alignment is not guaranteed).
    ///
    /// For sparse features see [`Model::arena_bytes_sparse`] (never more).
    ///
    /// A model with a pair head ([`Model::has_pairs`]) is sized here for its
    /// full pair capacity [`Model::max_pairs`] (0 for every other model):
    /// exact for a run with that many pairs, an upper bound otherwise; the
    /// exact size for any pair count is [`Model::arena_bytes_with_pairs`].
    pub fn arena_bytes(&self, nodes: usize, edges: usize, graphs: usize) -> usize {
        self.arena_bytes_with_pairs(nodes, edges, graphs, self.max_pairs() as usize)
    }

    /// The exact number of arena bytes [`Session::run`] uses for a graph of
    /// `nodes` nodes, `edges` edges and `graphs` graphs with `pairs` node
    /// pairs to score (dense features, 8-aligned arena). `pairs` only counts
    /// for a model with a pair head ([`Model::has_pairs`]): a model without
    /// one takes no pair rows and ignores it. Non-decreasing in each argument.
    pub fn arena_bytes_with_pairs(
        &self,
        nodes: usize,
        edges: usize,
        graphs: usize,
        pairs: usize,
    ) -> usize {
        let plan = Plan::new(self);
        Layout::new(
            self,
            &plan,
            Dims {
                nodes,
                edges,
                graphs,
                pairs,
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
    /// Sizes of the last successful run and the arena offset of its first slot.
    last: Option<(Dims, usize)>,
    /// Stamp of the graph prepared in the arena ([`Session::prepare`]), if
    /// its graph region still holds it.
    prepared: Option<u32>,
    /// Stamp of the last [`Session::prepare`].
    stamp: u32,
    /// With the retained plan ([`Session::prepare_incremental`]): the stamp
    /// of the prepared graph whose run last completed, its tensors all in
    /// the arena, and whether it read sparse features in place.
    #[cfg(feature = "incremental")]
    fresh: Option<(u32, bool)>,
}

/// A graph validated and laid out once in a session's arena by
/// [`Session::prepare`]: its CSR, edge weights, per-graph node counts and
/// GCN degrees and normalisation, ready for many
/// [`Session::run_prepared`] calls with new node features.
///
/// It borrows the graph's slices (the batch vector and node pairs are read
/// in place by every run) and is only good for the session that made it,
/// until that session runs or prepares another graph
/// ([`Error::NotPrepared`] after that).
#[derive(Debug, Clone, Copy)]
pub struct PreparedGraph<'g> {
    input: GraphInput<'g>,
    dims: Dims,
    stamp: u32,
    /// Address of the session's arena (a token from another session is refused).
    arena: usize,
}

impl PreparedGraph<'_> {
    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.dims.nodes
    }

    /// Number of edges.
    pub fn num_edges(&self) -> usize {
        self.dims.edges
    }

    /// Number of graphs of the batch.
    pub fn num_graphs(&self) -> usize {
        self.dims.graphs
    }
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

impl<'a, 'm> Session<'a, 'm> {
    /// A session running `model` in `arena`. The arena is checked on each run.
    pub fn new(model: &'a Model<'m>, arena: &'a mut [u8]) -> Self {
        Session {
            plan: Plan::new(model),
            model,
            arena,
            last: None,
            prepared: None,
            stamp: 0,
            #[cfg(feature = "incremental")]
            fresh: None,
        }
    }

    /// Switches back from the retained plan of incremental runs to the
    /// plain one. Not inlined: the plan is built in this frame, not in the
    /// frames of the runs (docs/guarantees.md, the stack bound).
    #[cfg(feature = "incremental")]
    #[inline(never)]
    fn plain_plan(&mut self) {
        if self.plan.retain {
            self.plan = Plan::new(self.model);
        }
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        self.model
    }

    /// Runs the model on `input` and returns its first output (the others
    /// through [`Session::output`]).
    ///
    /// A graph with zero nodes is valid: node-level outputs have no rows,
    /// graph-level ones one row per graph holding the empty-graph value.
    ///
    /// # Errors
    /// * an input-graph error ([`crate::graph`] lists them) — nothing is written;
    /// * [`Error::ArenaTooSmall`] with the exact need (including the slack to
    ///   align this arena's start to 8; [`Model::arena_bytes`], or
    ///   [`Model::arena_bytes_sparse`] for sparse features) — nothing is written;
    /// * [`Error::Overflow`] from an op whose intermediate does not fit (GCN
    ///   coefficients above `i32::MAX`, i.e. absurd edge weights).
    ///
    /// After an error, [`Session::output`] returns `None` until the next successful run.
    pub fn run(&mut self, input: &GraphInput<'_>) -> Result<Output<'_>> {
        self.run_inspect(input, |_, _| {})
    }

    /// Like [`Session::run`], calling `f(op_index, tensor)` after each op with
    /// the tensor that op produced (for per-op debugging and the host tool's
    /// `verify --per-op`). Errors as for [`Session::run`].
    pub fn run_inspect(
        &mut self,
        input: &GraphInput<'_>,
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        self.last = None;
        #[cfg(feature = "op-recurrent")]
        if self.model.num_states() > 0 {
            return Err(Error::StateRequired);
        }
        let dims = graph::validate(self.model, input)?;
        // The graph region is rebuilt: a prepared graph is gone.
        self.prepared = None;
        #[cfg(feature = "incremental")]
        self.plain_plan();
        self.run_dims(input, dims, true, f)
    }

    /// One step of a recurrent model ([`Model::state`]): runs the model on
    /// `input` with the state `state` (`[nodes, H]` int8 values in the
    /// model's state quantization, [`Model::state_bytes`] long; all zero
    /// points for the initial state) and writes the next state back into
    /// `state`. Returns the first output, as [`Session::run`].
    ///
    /// # Errors
    /// [`Error::NotRecurrent`] for a model without state;
    /// [`Error::StateSize`] for a state buffer of the wrong length; the
    /// errors of [`Session::run`]. After any error `state` is unchanged.
    #[cfg(feature = "op-recurrent")]
    pub fn run_step(&mut self, input: &GraphInput<'_>, state: &mut [i8]) -> Result<Output<'_>> {
        self.run_step_inspect(input, state, |_, _| {})
    }

    /// Like [`Session::run_step`], calling `f(op_index, tensor)` after each
    /// op as [`Session::run_inspect`] does.
    #[cfg(feature = "op-recurrent")]
    // Not inlined into the caller: a board that runs both recurrent and
    // plain models would otherwise carry this frame on every plain run.
    #[inline(never)]
    pub fn run_step_inspect(
        &mut self,
        input: &GraphInput<'_>,
        state: &mut [i8],
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        self.last = None;
        if self.model.num_states() == 0 {
            return Err(Error::NotRecurrent);
        }
        let dims = graph::validate(self.model, input)?;
        let expected = self.model.state_bytes(dims.nodes);
        if state.len() != expected {
            return Err(Error::StateSize {
                expected: to_u32(expected),
                actual: to_u32(state.len()),
            });
        }
        self.prepared = None;
        let direct =
            matches!(input.features, Features::SparseI8 { .. }) && self.model.reads_sparse_input();
        self.plan.skip_input = direct;
        let layout = Layout::new(self.model, &self.plan, dims);
        let slack = self.align_slack();
        let needed = slack.saturating_add(layout.total());
        if needed > self.arena.len() {
            return Err(Error::ArenaTooSmall {
                needed: to_u32(needed),
                actual: to_u32(self.arena.len()),
            });
        }
        // Each state goes into its slot, which no op writes and no other
        // tensor shares (it is kept); the run then reads it like any tensor.
        // The buffer holds the states one after the other.
        let mut from = 0usize;
        for (s_in, _) in self.model.states() {
            let l = self
                .plan
                .locate(self.model, s_in, dims)
                .ok_or(Error::InvalidState)?;
            let start = slack
                .saturating_add(layout.slots_start())
                .saturating_add(l.offset);
            let dst = self
                .arena
                .get_mut(start..start.saturating_add(l.len()))
                .ok_or(Error::InvalidState)?;
            let src = state
                .get(from..from.saturating_add(l.len()))
                .ok_or(Error::InvalidState)?;
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v as u8;
            }
            from = from.saturating_add(l.len());
        }
        self.run_dims(input, dims, true, f)?;
        let (d, slots_start) = self.last.ok_or(Error::InvalidOutputs)?;
        // Every next state is checked before the buffer is written, so that
        // after an error `state` is unchanged.
        let mut total = 0usize;
        for (_, s_out) in self.model.states() {
            let next = self
                .tensor(s_out, d, slots_start)
                .ok_or(Error::InvalidState)?;
            total = total.saturating_add(next.data.len());
        }
        if total != state.len() {
            return Err(Error::InvalidState);
        }
        let mut dst = state.iter_mut();
        for (_, s_out) in self.model.states() {
            let next = self
                .tensor(s_out, d, slots_start)
                .ok_or(Error::InvalidState)?;
            // `next.data` first: the zip stops on it without taking from `dst`.
            for (&v, o) in next.data.iter().zip(dst.by_ref()) {
                *o = v;
            }
        }
        self.output(0).ok_or(Error::InvalidOutputs)
    }

    /// Runs `input` of validated sizes `dims`, building the graph region
    /// first if `build`, else reading the prepared one.
    fn run_dims(
        &mut self,
        input: &GraphInput<'_>,
        dims: Dims,
        build: bool,
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        self.run_feed(input, dims, build, Feed::Full, f)
    }

    /// [`Session::run_dims`] with what the run writes and recomputes.
    fn run_feed(
        &mut self,
        input: &GraphInput<'_>,
        dims: Dims,
        build: bool,
        feed: Feed<'_>,
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        #[cfg(feature = "incremental")]
        {
            self.fresh = None;
        }
        let direct =
            matches!(input.features, Features::SparseI8 { .. }) && self.model.reads_sparse_input();
        self.plan.skip_input = direct;
        let slots_start = self.execute(input, dims, build, feed, f)?;
        self.last = Some((dims, slots_start));
        #[cfg(feature = "incremental")]
        if self.plan.retain {
            self.fresh = self.prepared.map(|stamp| (stamp, direct));
        }
        self.output(0).ok_or(Error::InvalidOutputs)
    }

    /// Prepares `graph` as [`Session::prepare`] does, for incremental runs:
    /// from now on every tensor of a run keeps its own arena slot
    /// ([`Model::incremental_arena_bytes`], more than [`Model::arena_bytes`]),
    /// so that [`Session::update`] can recompute only what changed. Runs the
    /// model once on `graph`'s features (its outputs through
    /// [`Session::output`]). [`Session::run`] and [`Session::prepare`]
    /// switch the session back to plain runs.
    ///
    /// # Errors
    /// As [`Session::prepare`] and [`Session::run_prepared`]
    /// ([`Error::ArenaTooSmall`] with the exact incremental need).
    #[cfg(feature = "incremental")]
    pub fn prepare_incremental<'g>(&mut self, graph: &GraphInput<'g>) -> Result<PreparedGraph<'g>> {
        #[cfg(feature = "op-recurrent")]
        if self.model.num_states() > 0 {
            return Err(Error::StateRequired);
        }
        self.retained_plan();
        let prepared = self.prepare_plan(graph)?;
        self.run_prepared(&prepared, graph.features)?;
        Ok(prepared)
    }

    /// The retained plan of incremental runs (see [`Session::plain_plan`]).
    #[cfg(feature = "incremental")]
    #[inline(never)]
    fn retained_plan(&mut self) {
        if !self.plan.retain {
            self.plan = Plan::retained(self.model);
        }
    }

    /// An incremental run on the graph prepared by
    /// [`Session::prepare_incremental`]: `features` are all the nodes'
    /// features (`[num_nodes, F]`, as for [`Session::run_prepared`]) and
    /// `changed` lists the nodes whose feature rows differ from the previous
    /// run's (in any order; repeats are harmless). Only the rows of each
    /// tensor that can depend on a changed node are recomputed: for an op,
    /// the nodes within as many edges of a changed node as the ops up to it
    /// pass messages (`OpDef::hops` of each op); after an op whose rows
    /// depend on every row (pooling, global attention, a kNN graph) every
    /// row. Returns the first output; the output bytes are those of
    /// [`Session::run_prepared`] with the same `features`, provided the rows
    /// of the nodes not in `changed` are the previous run's.
    ///
    /// The rows of the nodes not listed are not read for the model input:
    /// a row that changed but is not listed keeps its previous value in the
    /// dense input tensor, and with sparse features read in place it is read
    /// only by the recomputed rows. List every changed node. Features of
    /// another kind than the previous run's (dense after sparse, or the
    /// reverse) make a full run.
    ///
    /// # Errors
    /// * [`Error::NotIncremental`] unless the previous run of this session
    ///   was a successful run of `graph` prepared by
    ///   [`Session::prepare_incremental`] (then nothing is written);
    /// * [`Error::ChangedNodeOutOfRange`] for a node not in the graph, and
    ///   the feature errors of [`Session::run_prepared`] — nothing is written;
    /// * [`Error::Overflow`] as for [`Session::run`] (then the next update
    ///   is refused: prepare again).
    #[cfg(feature = "incremental")]
    pub fn update(
        &mut self,
        graph: &PreparedGraph<'_>,
        features: Features<'_>,
        changed: &[u16],
    ) -> Result<Output<'_>> {
        self.update_inspect(graph, features, changed, |_, _| {})
    }

    /// Like [`Session::update`], calling `f(op_index, tensor)` after each op
    /// as [`Session::run_inspect`] does (the whole tensor: the rows
    /// recomputed and those kept).
    #[cfg(feature = "incremental")]
    pub fn update_inspect(
        &mut self,
        graph: &PreparedGraph<'_>,
        features: Features<'_>,
        changed: &[u16],
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        // (The retained tensors stay valid after a refused update: only a
        // run that starts clears `fresh`.)
        self.last = None;
        let ok = self.plan.retain
            && self.prepared == Some(graph.stamp)
            && graph.arena == self.arena.as_ptr() as usize
            && self.fresh.is_some_and(|(stamp, _)| stamp == graph.stamp);
        if !ok {
            return Err(Error::NotIncremental);
        }
        graph::validate_features(self.model, graph.dims.nodes, features)?;
        if let Some(k) = changed
            .iter()
            .position(|&v| usize::from(v) >= graph.dims.nodes)
        {
            return Err(Error::ChangedNodeOutOfRange {
                position: to_u32(k),
                index: changed.get(k).map_or(0, |&v| u32::from(v)),
            });
        }
        let mut input = graph.input;
        input.features = features;
        let direct =
            matches!(features, Features::SparseI8 { .. }) && self.model.reads_sparse_input();
        let feed = if self.fresh.is_some_and(|(_, d)| d == direct) {
            Feed::Changed(changed)
        } else {
            Feed::Full
        };
        self.run_feed(&input, graph.dims, false, feed, f)
    }

    /// Validates `graph` and builds, once, everything of a run that depends
    /// on the graph alone: the target-sorted CSR, the edge weights, the
    /// per-graph node counts and the GCN degrees and normalisation (`dinv`).
    /// They stay in the front of the arena ([`Model::prepared_bytes`] bytes
    /// of it), and [`Session::run_prepared`] then runs the model on new
    /// node features without validating the graph or building any of them
    /// again — same output bytes as [`Session::run`] on the whole input.
    ///
    /// The features of `graph` are validated (they must have the model's
    /// shape) and the arena is checked for a run with features of their
    /// kind, but the model is not run. The returned token borrows `graph`'s
    /// slices; it is good until this session runs ([`Session::run`]) or
    /// prepares another graph.
    ///
    /// # Errors
    /// As [`Session::run`]: an input-graph error or [`Error::ArenaTooSmall`]
    /// (the exact need, as for a run) — then nothing is written and no graph
    /// is prepared any more.
    pub fn prepare<'g>(&mut self, graph: &GraphInput<'g>) -> Result<PreparedGraph<'g>> {
        #[cfg(feature = "incremental")]
        self.plain_plan();
        self.prepare_plan(graph)
    }

    /// [`Session::prepare`] with the session's plan as it is.
    fn prepare_plan<'g>(&mut self, graph: &GraphInput<'g>) -> Result<PreparedGraph<'g>> {
        self.last = None;
        self.prepared = None;
        #[cfg(feature = "incremental")]
        {
            self.fresh = None;
        }
        let dims = graph::validate(self.model, graph)?;
        let direct =
            matches!(graph.features, Features::SparseI8 { .. }) && self.model.reads_sparse_input();
        self.plan.skip_input = direct;
        let layout = Layout::new(self.model, &self.plan, dims);
        let slack = self.align_slack();
        let needed = slack.saturating_add(layout.total());
        if needed > self.arena.len() {
            return Err(Error::ArenaTooSmall {
                needed: to_u32(needed),
                actual: to_u32(self.arena.len()),
            });
        }
        let norm = self.plan.norm;
        let regions = self.graph_regions(&layout, dims)?;
        build_graph_regions(norm, graph, dims, regions, None)?;
        self.stamp = self.stamp.wrapping_add(1);
        self.prepared = Some(self.stamp);
        Ok(PreparedGraph {
            input: *graph,
            dims,
            stamp: self.stamp,
            arena: self.arena.as_ptr() as usize,
        })
    }

    /// Runs the model on the graph prepared by [`Session::prepare`] with new
    /// node `features` (`[num_nodes, F]`, any [`Features`] kind) and returns
    /// its first output (the others through [`Session::output`]). Only the
    /// features are validated; the output bytes are those of
    /// [`Session::run`] on the prepared graph with these features.
    ///
    /// # Errors
    /// * [`Error::NotPrepared`] if `graph` is not the graph this session
    ///   holds prepared (the session ran or prepared another graph since, or
    ///   the token is another session's);
    /// * a feature error ([`Error::FeatureShape`],
    ///   [`Error::NonFiniteFeature`], [`Error::InvalidSparseFeatures`]) or
    ///   [`Error::ArenaTooSmall`] (features of another kind than at
    ///   [`Session::prepare`] may need more) — nothing is written;
    /// * [`Error::Overflow`] as for [`Session::run`].
    ///
    /// The prepared graph stays prepared after any of these errors.
    pub fn run_prepared(
        &mut self,
        graph: &PreparedGraph<'_>,
        features: Features<'_>,
    ) -> Result<Output<'_>> {
        self.run_prepared_inspect(graph, features, |_, _| {})
    }

    /// Like [`Session::run_prepared`], calling `f(op_index, tensor)` after
    /// each op as [`Session::run_inspect`] does.
    pub fn run_prepared_inspect(
        &mut self,
        graph: &PreparedGraph<'_>,
        features: Features<'_>,
        f: impl FnMut(usize, Output<'_>),
    ) -> Result<Output<'_>> {
        self.last = None;
        #[cfg(feature = "op-recurrent")]
        if self.model.num_states() > 0 {
            return Err(Error::StateRequired);
        }
        if self.prepared != Some(graph.stamp) || graph.arena != self.arena.as_ptr() as usize {
            return Err(Error::NotPrepared);
        }
        graph::validate_features(self.model, graph.dims.nodes, features)?;
        let mut input = graph.input;
        input.features = features;
        self.run_dims(&input, graph.dims, false, f)
    }

    /// The graph regions of the arena for `layout` (checked to fit).
    fn graph_regions(&mut self, layout: &Layout, d: Dims) -> Result<GraphRegions<'_>> {
        let slack = self.align_slack();
        let needed = slack.saturating_add(layout.total());
        let too_small = Error::ArenaTooSmall {
            needed: to_u32(needed),
            actual: to_u32(self.arena.len()),
        };
        if self.arena.len() < needed {
            return Err(too_small);
        }
        let mut rest: &mut [u8] = self.arena.get_mut(slack..).ok_or(too_small)?;
        GraphRegions::carve(&mut rest, layout, self.model, d).ok_or(too_small)
    }

    /// Output `index` of the last successful run (`None` before one, or if
    /// the model has fewer outputs).
    pub fn output(&self, index: usize) -> Option<Output<'_>> {
        let (dims, slots_start) = self.last?;
        let t = *self.model.outputs().get(index)?;
        self.tensor(t, dims, slots_start)
    }

    /// Offset of the aligned arena start. An empty arena has no address to
    /// align (its pointer is any dangling value): no slack, so that the need
    /// it reports does not depend on how the empty slice was made.
    fn align_slack(&self) -> usize {
        if self.arena.is_empty() {
            return 0;
        }
        let off = self.arena.as_ptr().align_offset(8);
        if off >= 8 {
            0
        } else {
            off
        }
    }

    /// Read access to tensor `t` after a run.
    fn tensor(&self, t: u8, d: Dims, slots_start: usize) -> Option<Output<'_>> {
        let l = self.plan.locate(self.model, t, d)?;
        let start = slots_start.checked_add(l.offset)?;
        let bytes = self.arena.get(start..start.checked_add(l.len())?)?;
        Some(Output {
            data: bytemuck::try_cast_slice(bytes).ok()?,
            rows: l.rows,
            channels: l.channels,
            scale: l.scale,
            zero_point: l.zero_point,
        })
    }

    fn execute(
        &mut self,
        input: &GraphInput<'_>,
        d: Dims,
        build: bool,
        feed: Feed<'_>,
        mut f: impl FnMut(usize, Output<'_>),
    ) -> Result<usize> {
        let model = self.model;
        let layout = Layout::new(model, &self.plan, d);
        let slack = self.align_slack();
        let slots_start = slack.saturating_add(layout.slots_start());
        let direct = self.plan.skip_input;
        let GraphRegions {
            row_ptr,
            sources,
            mut weights,
            counts,
            dinv,
            #[cfg(feature = "incremental")]
            marks,
            work,
        } = {
            let needed = slack.saturating_add(layout.total());
            let too_small = Error::ArenaTooSmall {
                needed: to_u32(needed),
                actual: to_u32(self.arena.len()),
            };
            if self.arena.len() < needed {
                return Err(too_small);
            }
            let mut rest: &mut [u8] = self.arena.get_mut(slack..).ok_or(too_small)?;
            GraphRegions::carve(&mut rest, &layout, model, d).ok_or(too_small)?
        };
        let plan = &self.plan;
        let internal = Error::InvalidOutputs;
        let loc = |t: u8| plan.locate(model, t, d);
        // Edge features (if the model reads them) are quantized into their
        // tensor while the CSR is built, each row at its edge's CSR position
        // (also for a prepared graph: the tensor's slot is not kept).
        let edge_dst = match model.edge_input() {
            Some(e) => {
                let l = loc(e).ok_or(internal)?;
                let buf = work.get_mut(l.offset..).ok_or(internal)?;
                let dst: &mut [i8] = cast(buf, l.len()).ok_or(internal)?;
                Some((dst, l))
            }
            None => None,
        };
        if build || edge_dst.is_some() {
            build_graph(
                input,
                d,
                row_ptr,
                sources,
                weights.as_deref_mut(),
                edge_dst,
                counts,
            )?;
        }
        let mut ctx_base = Ctx {
            op: 0,
            csr: Csr {
                row_ptr: &*row_ptr,
                sources: &*sources,
                weights: weights.as_deref(),
            },
            batch: input.batch,
            graph_nodes: &*counts,
            pairs: match input.pairs {
                Some(p) if d.pairs > 0 => (p.sources, p.targets),
                _ => (&[], &[]),
            },
            dinv: &[],
            dinv_key: 0,
            #[cfg(feature = "op-hypergraph")]
            hyperedges: hyperedges_of(model, input),
            #[cfg(feature = "incremental")]
            dirty: ops::Dirty::ALL,
        };
        if let Some(key) = plan.norm {
            if build {
                ops::fill_shared_norm(key, &ctx_base, dinv);
            }
            ctx_base.dinv = &*dinv;
            ctx_base.dinv_key = key;
        }

        // ---- input features (read in place by the ops when `direct`) -------
        let sparse_in = feed_input(model, plan, d, input, feed, direct, work)?;
        // ---- incremental: which rows each op recomputes -------------------
        let inc = match feed {
            #[cfg(feature = "incremental")]
            Feed::Changed(nodes) => Some(Inc::new(model, &ctx_base.csr, nodes, marks, d.nodes)?),
            _ => None,
        };

        // ---- ops ----------------------------------------------------------
        let views = Views {
            model,
            plan,
            d,
            sparse_in,
        };
        views.run_ops(&ctx_base, work, inc, &mut f)?;
        Ok(slots_start)
    }
}

/// Writes the input features into the input tensor — every row, or the
/// rows of the changed nodes ([`Feed::Changed`]) — or, when `direct`, gives
/// the sparse features for the ops to read in place.
fn feed_input<'x>(
    model: &Model<'_>,
    plan: &Plan,
    d: Dims,
    input: &GraphInput<'x>,
    feed: Feed<'_>,
    direct: bool,
    slots_region: &mut [u8],
) -> Result<Option<SparseIn<'x>>> {
    let desc = model.input_desc();
    if let (
        Features::SparseI8 {
            row_ptr,
            cols,
            values,
        },
        true,
    ) = (input.features, direct)
    {
        return Ok(Some(SparseIn {
            x: SparseRows {
                row_ptr,
                cols,
                values,
            },
            rows: d.nodes,
            channels: usize::from(desc.channels),
            zp: desc.zero_point,
        }));
    }
    let internal = Error::InvalidOutputs;
    let l = plan.locate(model, model.input(), d).ok_or(internal)?;
    let buf = slots_region.get_mut(l.offset..).ok_or(internal)?;
    match feed {
        #[cfg(feature = "incremental")]
        Feed::Changed(nodes) => {
            write_input_rows(buf, l, input.features, desc, nodes).ok_or(internal)?
        }
        _ => write_input(buf, l, input.features, desc).ok_or(internal)?,
    }
    Ok(None)
}

/// The (validated) hyperedges of `input` for a model that reads them, else none.
#[cfg(feature = "op-hypergraph")]
fn hyperedges_of<'x>(model: &Model<'_>, input: &GraphInput<'x>) -> crate::graph::Hyperedges<'x> {
    match input.hyperedges {
        Some(h) if model.uses_hyperedges() => h,
        _ => crate::graph::Hyperedges::EMPTY,
    }
}

/// The arena regions of a run, carved in order from its 8-aligned start:
/// the graph region (kept by a prepared graph), the slots and the scratch.
struct GraphRegions<'x> {
    row_ptr: &'x mut [u32],
    sources: &'x mut [u16],
    weights: Option<&'x mut [u32]>,
    counts: &'x mut [u32],
    dinv: &'x mut [u32],
    /// `dist`, `need` (a byte per node each) and the tensors' levels
    /// (incremental runs only).
    #[cfg(feature = "incremental")]
    marks: &'x mut [u8],
    /// The slots, then the scratch: the rest of the arena. Each op's scratch
    /// starts after the slots live while it runs ([`Plan::top`]).
    work: &'x mut [u8],
}

impl<'x> GraphRegions<'x> {
    fn carve(rest: &mut &'x mut [u8], layout: &Layout, model: &Model<'_>, d: Dims) -> Option<Self> {
        let row_ptr = cast(carve(rest, layout.row_ptr)?, d.nodes.checked_add(1)?)?;
        let sources = cast(carve(rest, layout.sources)?, d.edges)?;
        let weights = carve(rest, layout.weights)?;
        let weights = if model.uses_edge_weight() {
            Some(cast(weights, d.edges)?)
        } else {
            None
        };
        let counts = cast(carve(rest, layout.counts)?, d.graphs)?;
        let dinv_len = if layout.dinv > 0 { d.nodes } else { 0 };
        let dinv = cast(carve(rest, layout.dinv)?, dinv_len)?;
        Some(GraphRegions {
            row_ptr,
            sources,
            weights,
            counts,
            dinv,
            #[cfg(feature = "incremental")]
            marks: carve(rest, layout.marks)?,
            // The slots and the scratch are the rest of the arena: at least
            // the layout's, and whatever the arena has beyond the need, which
            // ops with a narrower, leaner form use to run wider
            // ([`Model::wide_arena_bytes`]).
            // (At least `layout.work` bytes: the callers check the arena
            // against the layout's total first.)
            work: core::mem::take(rest),
        })
    }
}

/// Builds the graph region of a prepared graph: CSR, weights, node counts
/// and the shared `dinv` table.
fn build_graph_regions(
    norm: Option<u8>,
    input: &GraphInput<'_>,
    d: Dims,
    r: GraphRegions<'_>,
    edge_dst: Option<(&mut [i8], Loc)>,
) -> Result<()> {
    let GraphRegions {
        row_ptr,
        sources,
        mut weights,
        counts,
        dinv,
        ..
    } = r;
    build_graph(
        input,
        d,
        row_ptr,
        sources,
        weights.as_deref_mut(),
        edge_dst,
        counts,
    )?;
    if let Some(key) = norm {
        let ctx = Ctx {
            op: 0,
            csr: Csr {
                row_ptr: &*row_ptr,
                sources: &*sources,
                weights: weights.as_deref(),
            },
            batch: input.batch,
            graph_nodes: &*counts,
            pairs: (&[], &[]),
            dinv: &[],
            dinv_key: 0,
            #[cfg(feature = "op-hypergraph")]
            hyperedges: crate::graph::Hyperedges::EMPTY,
            #[cfg(feature = "incremental")]
            dirty: ops::Dirty::ALL,
        };
        ops::fill_shared_norm(key, &ctx, dinv);
    }
    Ok(())
}

/// Builds the target-sorted CSR of `input` (with its edge weights when the
/// model reads them), quantizes the edge features into their tensor at each
/// edge's CSR position (`edge_dst`), and counts the nodes of each graph.
fn build_graph(
    input: &GraphInput<'_>,
    d: Dims,
    row_ptr: &mut [u32],
    sources: &mut [u16],
    weights: Option<&mut [u32]>,
    edge_dst: Option<(&mut [i8], Loc)>,
    counts: &mut [u32],
) -> Result<()> {
    match (edge_dst, input.edge_attr) {
        // Only GATConv and GINEConv read edge tensors (no op writes one
        // and none is an output): without them the edge input's values
        // never reach a result, and the plain CSR build is enough.
        (Some((dst, l)), Some(attr)) if EDGE_READERS => {
            let dim = l.channels;
            aggregate::build_csr_with(
                input.sources,
                input.targets,
                input.edge_weight.unwrap_or(&[]),
                row_ptr,
                sources,
                weights,
                |k, pos| {
                    let (a, b) = (k.saturating_mul(dim), pos.saturating_mul(dim));
                    let Some(out) = dst.get_mut(b..b.saturating_add(dim)) else {
                        return;
                    };
                    match attr {
                        EdgeAttr::F32(v) => {
                            let row = v.get(a..a.saturating_add(dim)).unwrap_or(&[]);
                            for (o, &x) in out.iter_mut().zip(row) {
                                *o = graph::quantize_value(x, l.scale, l.zero_point);
                            }
                        }
                        EdgeAttr::I8(v) => {
                            let row = v.get(a..a.saturating_add(dim)).unwrap_or(&[]);
                            out.iter_mut().zip(row).for_each(|(o, &x)| *o = x);
                        }
                    }
                },
            );
        }
        // Validated: a model with an edge input always gets edge_attr.
        (Some(_), None) => return Err(Error::MissingEdgeAttr),
        _ => aggregate::build_csr(
            input.sources,
            input.targets,
            input.edge_weight.unwrap_or(&[]),
            row_ptr,
            sources,
            weights,
        ),
    }
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
    Ok(())
}

/// What a run writes into the input tensor and which rows it recomputes.
#[derive(Debug, Clone, Copy)]
enum Feed<'x> {
    /// Every row of every tensor, from all the features.
    Full,
    /// An incremental run ([`Session::update`]): only these nodes' feature
    /// rows changed since the previous run.
    #[cfg_attr(not(feature = "incremental"), allow(dead_code))]
    Changed(&'x [u16]),
}

/// The per-node marks of an incremental run ([`crate::incremental`]).
#[cfg_attr(not(feature = "incremental"), allow(dead_code))]
struct Inc<'a> {
    dist: &'a [u8],
    need: &'a mut [u8],
    /// The level of every tensor ([`crate::incremental::levels`]; in the
    /// arena: this struct lives in the run's frame).
    level: &'a [u8],
}

#[cfg_attr(not(feature = "incremental"), allow(dead_code))]
impl<'a> Inc<'a> {
    /// The marks of an incremental run whose changed nodes are `nodes`, in
    /// `marks` (`dist` then `need`, `nodes` bytes each, then the levels).
    fn new(
        model: &Model<'_>,
        csr: &Csr<'_>,
        changed: &[u16],
        marks: &'a mut [u8],
        nodes: usize,
    ) -> Result<Inc<'a>> {
        let internal = Error::InvalidOutputs;
        let (dist, rest) = marks.split_at_mut_checked(nodes).ok_or(internal)?;
        let (need, rest) = rest.split_at_mut_checked(nodes).ok_or(internal)?;
        let level = rest.get_mut(..MAX_TENSORS).ok_or(internal)?;
        let reach = incremental::levels(model, level);
        incremental::fill_dist(csr, changed, dist, reach);
        Ok(Inc { dist, need, level })
    }

    /// The rows `op` must compute; fills `need` for an op that reads
    /// other rows than its own.
    fn dirty(&mut self, op: &ops::Op, csr: &Csr<'_>) -> ops::Dirty<'_> {
        let level = self
            .level
            .get(usize::from(op.output()))
            .copied()
            .unwrap_or(incremental::ALL);
        if level == incremental::ALL {
            return ops::Dirty::ALL;
        }
        let needed = if ops::hops(op).is_some_and(|h| h > 0) {
            incremental::fill_need(csr, self.dist, level, self.need)
        } else {
            0
        };
        ops::Dirty {
            dist: self.dist,
            level,
            need: &*self.need,
            rows: incremental::count_rows(self.dist, level),
            needed,
        }
    }
}

/// Writes the feature rows of `nodes` into the input tensor (see
/// [`write_input`]); the other rows keep their values.
#[cfg(feature = "incremental")]
fn write_input_rows(
    buf: &mut [u8],
    l: Loc,
    features: Features<'_>,
    desc: crate::format::TensorDesc,
    nodes: &[u16],
) -> Option<()> {
    let f = usize::from(desc.channels);
    #[cfg(feature = "act-i4")]
    let packed = l.packed;
    #[cfg(not(feature = "act-i4"))]
    let packed = false;
    let rb = ops::out_row_bytes(f, packed);
    let all = buf.get_mut(..l.len())?;
    for &v in nodes {
        let i = usize::from(v);
        let row = all.get_mut(i.checked_mul(rb)?..i.checked_add(1)?.checked_mul(rb)?)?;
        let one = match features {
            Features::F32(x) => {
                Features::F32(x.get(i.checked_mul(f)?..i.checked_add(1)?.checked_mul(f)?)?)
            }
            Features::I8(x) => {
                Features::I8(x.get(i.checked_mul(f)?..i.checked_add(1)?.checked_mul(f)?)?)
            }
            Features::SparseI8 {
                row_ptr,
                cols,
                values,
            } => Features::SparseI8 {
                row_ptr: row_ptr.get(i..i.checked_add(2)?)?,
                cols,
                values,
            },
        };
        #[cfg(feature = "act-i4")]
        if packed {
            write_features_i4(row, one, desc);
            continue;
        }
        write_features(bytemuck::try_cast_slice_mut(row).ok()?, one, desc);
    }
    Some(())
}

/// Writes the features into the input tensor at the start of `buf` (its
/// place `l`): [`write_features`], or packed for an int4 input.
#[inline(always)]
fn write_input(
    buf: &mut [u8],
    l: Loc,
    features: Features<'_>,
    desc: crate::format::TensorDesc,
) -> Option<()> {
    #[cfg(feature = "act-i4")]
    if l.packed {
        write_features_i4(cast(buf, l.len())?, features, desc);
        return Some(());
    }
    write_features(cast(buf, l.len())?, features, desc);
    Some(())
}

/// Writes dense features into the input tensor `dst`: f32 quantized with the
/// input's scale and zero point, int8 copied, sparse rows expanded (the zero
/// point where no entry is stored).
fn write_features(dst: &mut [i8], features: Features<'_>, desc: crate::format::TensorDesc) {
    match features {
        Features::F32(v) => graph::quantize_slice(dst, v, desc.scale, desc.zero_point),
        Features::I8(v) => {
            for (o, &x) in dst.iter_mut().zip(v) {
                *o = x;
            }
        }
        Features::SparseI8 {
            row_ptr,
            cols,
            values,
        } => {
            // Validated: offsets are monotone and end at cols.len(),
            // columns are increasing and below F. Each row in one
            // pass: the stored value at the next stored column, the
            // zero point elsewhere (no separate fill: in a code-size
            // build that would link one more `memset` variant).
            let zp = desc.zero_point;
            let f = usize::from(desc.channels);
            for (row, w) in dst.chunks_exact_mut(f.max(1)).zip(row_ptr.windows(2)) {
                let (a, b) = match *w {
                    [a, b] => (a as usize, b as usize),
                    _ => (0, 0),
                };
                let (c, v) = (
                    cols.get(a..b).unwrap_or(&[]),
                    values.get(a..b).unwrap_or(&[]),
                );
                let mut e = 0usize;
                for (j, o) in row.iter_mut().enumerate() {
                    *o = match (c.get(e), v.get(e)) {
                        (Some(&c), Some(&v)) if usize::from(c) == j => {
                            e += 1;
                            v
                        }
                        _ => zp,
                    };
                }
            }
        }
    }
}

/// [`write_features`] for an int4 input tensor (cargo feature `act-i4`):
/// each value as there (f32 quantized with the input's scale and zero
/// point, int8 taken as already quantized, the zero point where a sparse
/// row stores nothing; sparse values are int4, validated), saturated to
/// −8..=7 and packed two per byte into
/// rows of `ceil(channels / 2)` bytes ([`crate::kernels::act_i4`]). Not
/// inlined: its buffer stays out of the run's frame.
#[cfg(feature = "act-i4")]
#[inline(never)]
fn write_features_i4(dst: &mut [u8], features: Features<'_>, desc: crate::format::TensorDesc) {
    use crate::kernels::act_i4::{pack_row, row_bytes, CHUNK};
    let f = usize::from(desc.channels);
    let rb = row_bytes(f).max(1);
    let mut buf = [0i8; CHUNK];
    for (i, row) in dst.chunks_exact_mut(rb).enumerate() {
        let base = i.saturating_mul(f);
        // The stored entries of a sparse row, consumed in column order.
        let (mut cols, mut vals): (&[u16], &[i8]) = (&[], &[]);
        if let Features::SparseI8 {
            row_ptr,
            cols: c,
            values,
        } = features
        {
            let a = row_ptr.get(i).map_or(0, |&a| a as usize);
            let b = row_ptr.get(i + 1).map_or(a, |&b| b as usize);
            cols = c.get(a..b).unwrap_or(&[]);
            vals = values.get(a..b).unwrap_or(&[]);
        }
        let mut k0 = 0usize;
        while k0 < f {
            let len = (f - k0).min(CHUNK);
            let (b, _) = buf.split_at_mut(len);
            for (j, o) in b.iter_mut().enumerate() {
                let k = base.saturating_add(k0 + j);
                *o = match features {
                    Features::F32(v) => v.get(k).map_or(desc.zero_point, |&x| {
                        graph::quantize_value(x, desc.scale, desc.zero_point)
                    }),
                    Features::I8(v) => v.get(k).copied().unwrap_or(desc.zero_point),
                    Features::SparseI8 { .. } => match (cols.first(), vals.first()) {
                        (Some(&c), Some(&v)) if usize::from(c) == k0 + j => {
                            cols = cols.get(1..).unwrap_or(&[]);
                            vals = vals.get(1..).unwrap_or(&[]);
                            v
                        }
                        _ => desc.zero_point,
                    },
                };
            }
            if let Some(o) = row.get_mut(k0 / 2..) {
                pack_row(b, o);
            }
            k0 += len;
        }
    }
}

/// The input tensors of the op being run: the slots before and after its
/// output slot (an op's output never shares a slot with one of its inputs)
/// and the sparse model input read in place.
struct SlotViews<'p, 'm, 'v> {
    model: &'p Model<'m>,
    plan: &'p Plan,
    d: Dims,
    before: &'v [u8],
    after: &'v [u8],
    /// Offset of the output slot, and of the slot after it.
    out_start: usize,
    after_base: usize,
    sparse_in: Option<SparseIn<'v>>,
    internal: Error,
}

impl<'v> SlotViews<'_, '_, 'v> {
    /// Tensor `t`'s bytes as an [`In`] (packed rows for an int4 tensor).
    #[inline(always)]
    fn raw(&self, t: u8) -> Result<In<'v>> {
        let internal = self.internal;
        let l = self.plan.locate(self.model, t, self.d).ok_or(internal)?;
        let len = l.len();
        let bytes = if l.offset.saturating_add(l.slot_bytes) <= self.out_start {
            self.before.get(l.offset..l.offset.saturating_add(len))
        } else if l.offset >= self.after_base {
            let at = l.offset - self.after_base;
            self.after.get(at..at.saturating_add(len))
        } else {
            None
        };
        Ok(In {
            data: bytemuck::try_cast_slice(bytes.ok_or(internal)?).map_err(|_| internal)?,
            rows: l.rows,
            channels: l.channels,
            zp: l.zero_point,
        })
    }
}

impl<'v> ops::Tensors<'v> for SlotViews<'_, '_, 'v> {
    /// A dense int8 view (an int4 tensor has none: only ops that read it
    /// through [`Src::Packed`] are given one, `Model::from_bytes` checks).
    fn view(&self, t: u8) -> Result<In<'v>> {
        #[cfg(feature = "act-i4")]
        if self.model.is_i4(t) {
            return Err(self.internal);
        }
        self.raw(t)
    }

    fn src(&self, t: u8) -> Result<Src<'v>> {
        match self.sparse_in {
            Some(s) if t == self.model.input() => Ok(Src::Sparse(s)),
            #[cfg(feature = "act-i4")]
            _ if self.model.is_i4(t) => self.raw(t).map(Src::Packed),
            _ => self.raw(t).map(Src::Dense),
        }
    }
}

/// What the op loop of a run needs besides the arena regions.
struct Views<'p, 'm, 'v> {
    model: &'p Model<'m>,
    plan: &'p Plan,
    d: Dims,
    sparse_in: Option<SparseIn<'v>>,
}

impl<'v> Views<'_, '_, 'v> {
    /// Runs the ops in order, each writing its output tensor's slot, and
    /// calls `f(op_index, output)` after each. Inlined into the run (one
    /// frame for the run and its loop; the ops run in `ops::run`'s frame).
    #[inline(always)]
    #[cfg_attr(not(feature = "incremental"), allow(unused_mut, unused_variables))]
    fn run_ops(
        &self,
        ctx_base: &Ctx<'_>,
        work: &mut [u8],
        mut inc: Option<Inc<'_>>,
        f: &mut impl FnMut(usize, Output<'_>),
    ) -> Result<()> {
        let mut k = 0usize;
        // Counted by hand, as in `Plan::new` (no `Enumerate` over `Op`s).
        #[allow(clippy::explicit_counter_loop)]
        for op in self.model.ops() {
            let mut ctx = Ctx {
                op: u16::try_from(k).unwrap_or(u16::MAX),
                ..*ctx_base
            };
            #[cfg(feature = "incremental")]
            if let Some(inc) = inc.as_mut() {
                ctx.dirty = inc.dirty(&op, &ctx_base.csr);
            }
            let internal = Error::InvalidOp { op: ctx.op };
            let o = self
                .plan
                .locate(self.model, op.output(), self.d)
                .ok_or(internal)?;
            // The live slots, then the op's scratch (the rest of the arena).
            let live = self.plan.live_bytes(self.model, k, self.d);
            let (slots_region, scratch_region) = work.split_at_mut_checked(live).ok_or(internal)?;
            // Split the live slots around the output slot: inputs live in
            // other slots (the plan never gives an op's output the slot of
            // one of its inputs), read through `before` and `after`.
            let (before, tail) = slots_region
                .split_at_mut_checked(o.offset)
                .ok_or(internal)?;
            let (out_buf, after) = tail.split_at_mut_checked(o.slot_bytes).ok_or(internal)?;
            let after_base = o.offset.saturating_add(o.slot_bytes);
            let views = SlotViews {
                model: self.model,
                plan: self.plan,
                d: self.d,
                before,
                after,
                out_start: o.offset,
                after_base,
                sparse_in: self.sparse_in,
                internal,
            };
            let out = Out {
                data: cast(out_buf, o.len()).ok_or(internal)?,
                #[cfg(feature = "act-i4")]
                packed: o.packed,
                rows: o.rows,
                channels: o.channels,
                zp: o.zero_point,
            };
            let scratch = Scratch::new(scratch_region);
            let env = ops::Env {
                ctx: &ctx,
                data: self.model.weights_data(),
                tensors: &views,
            };
            ops::run(&op, &env, out, scratch)?;
            let produced: &[i8] = cast(out_buf, o.len()).ok_or(internal)?;
            f(
                k,
                Output {
                    data: produced,
                    rows: o.rows,
                    channels: o.channels,
                    scale: o.scale,
                    zero_point: o.zero_point,
                },
            );
            k += 1;
        }
        Ok(())
    }
}
