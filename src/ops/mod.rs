//! The ops: one module per op family, each implementing the exact integer
//! semantics documented on [`crate::format::Op`] (with the PyG layer it
//! reproduces stated at the top of the module).
//!
//! An op receives read-only views of its input tensors, a mutable view of its
//! output tensor, the graph ([`Ctx`]) and a [`Scratch`] region; it never
//! allocates and never touches the arena layout. Each op module has a
//! `scratch_bytes` function that returns exactly what the op takes from its
//! [`Scratch`]: the session sizes the arena with it, so a run never fails for
//! lack of scratch once the arena check passed.

#[cfg(feature = "op-edgeconv")]
pub mod edge_conv;
#[cfg(feature = "op-elementwise")]
pub mod elementwise;
#[cfg(feature = "op-gat")]
pub mod gat;
#[cfg(any(feature = "op-gcn", feature = "op-propagate"))]
pub mod gcn;
#[cfg(feature = "op-gin")]
pub mod gin;
#[cfg(feature = "op-gine")]
pub mod gine;
#[cfg(feature = "op-linear")]
pub mod linear;
#[cfg(feature = "op-link")]
pub mod link;
#[cfg(feature = "op-lut")]
pub mod lut;
#[cfg(feature = "op-pool")]
pub mod pool;
#[cfg(feature = "op-propagate")]
pub mod propagate;
#[cfg(feature = "op-sage")]
pub mod sage;

/// Whether `op`'s family is compiled into this build (cargo features
/// `op-linear`, `op-gcn`, `op-sage`, `op-gin`, `op-pool`, `op-elementwise`, `op-gat`,
/// `op-gine`, `op-lut`, `op-edgeconv`, `op-propagate`, `op-link`,
/// all on by default through `all-ops`). [`crate::Model::from_bytes`] rejects
/// a model with an op that is not as [`crate::Error::OpNotCompiled`].
pub const fn compiled(op: &Op) -> bool {
    match op {
        Op::Linear { .. } => cfg!(feature = "op-linear"),
        Op::GcnConv { .. } => cfg!(feature = "op-gcn"),
        Op::SageConv { .. } => cfg!(feature = "op-sage"),
        Op::GinAggregate { .. } => cfg!(feature = "op-gin"),
        Op::GlobalPool { .. } => cfg!(feature = "op-pool"),
        Op::Add { .. } | Op::Concat { .. } | Op::Act { .. } => cfg!(feature = "op-elementwise"),
        Op::GatConv { .. } => cfg!(feature = "op-gat"),
        Op::Propagate { .. } => cfg!(feature = "op-propagate"),
        Op::GineConv { .. } => cfg!(feature = "op-gine"),
        Op::Lut { .. } => cfg!(feature = "op-lut"),
        Op::EdgeConv { .. } => cfg!(feature = "op-edgeconv"),
        Op::InnerProduct { .. } | Op::PairFeatures { .. } => cfg!(feature = "op-link"),
    }
}

use crate::error::{Error, Result};
use crate::format::{Op, TensorDesc, TensorKind};
use crate::kernels::aggregate::Csr;
use crate::kernels::dense_i4::Matrix;
use crate::kernels::sparse::{self, SparseRows};

/// Bytes a region of `count` values of `T` occupies in the arena: rounded up
/// to a multiple of 8 so the next region stays 8-aligned. Saturates.
pub const fn region_bytes<T>(count: usize) -> usize {
    let b = count.saturating_mul(core::mem::size_of::<T>());
    match b.checked_add(7) {
        Some(v) => v & !7,
        None => usize::MAX & !7,
    }
}

/// Accumulates [`region_bytes`] saturating.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScratchSize(pub usize);

impl ScratchSize {
    /// Adds a region of `count` values of `T`.
    pub fn add<T>(&mut self, count: usize) -> &mut Self {
        self.0 = self.0.saturating_add(region_bytes::<T>(count));
        self
    }
}

/// A bump allocator over an 8-aligned byte region, handing out typed,
/// zero-initialised slices (regions rounded to 8 bytes, see [`region_bytes`]).
#[derive(Debug)]
pub struct Scratch<'a> {
    buf: &'a mut [u8],
    taken: usize,
}

impl<'a> Scratch<'a> {
    /// Wraps a region whose start is 8-aligned.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Scratch { buf, taken: 0 }
    }

    /// Takes `count` zeroed values of `T` (`T` of alignment ≤ 8).
    pub fn take<T: bytemuck::Pod>(&mut self, count: usize) -> Result<&'a mut [T]> {
        let bytes = region_bytes::<T>(count);
        let used = count.saturating_mul(core::mem::size_of::<T>());
        let buf = core::mem::take(&mut self.buf);
        let too_small = Error::ArenaTooSmall {
            needed: u32::try_from(self.taken.saturating_add(bytes)).unwrap_or(u32::MAX),
            actual: u32::try_from(self.taken.saturating_add(buf.len())).unwrap_or(u32::MAX),
        };
        if bytes > buf.len() {
            return Err(too_small);
        }
        let (head, tail) = buf.split_at_mut(bytes);
        self.buf = tail;
        self.taken += bytes;
        let head = head.get_mut(..used).ok_or(too_small)?;
        // Zeroed as `T` (aligned), not as bytes: one fewer `memclr` variant
        // in a code-size build (docs/size.md).
        let values: &mut [T] = bytemuck::try_cast_slice_mut(head).map_err(|_| too_small)?;
        values.fill(T::zeroed());
        Ok(values)
    }
}

/// A read-only int8 tensor: `[rows, channels]` with its zero point.
#[derive(Debug, Clone, Copy)]
pub struct In<'a> {
    /// Values, row-major, exactly `rows × channels`.
    pub data: &'a [i8],
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Zero point.
    pub zp: i8,
}

/// The model input given as sparse int8 rows ([`crate::Features::SparseI8`]),
/// read in place by the ops that take it directly (see [`Src`]).
#[derive(Debug, Clone, Copy)]
pub struct SparseIn<'a> {
    /// The rows (validated CSR).
    pub x: SparseRows<'a>,
    /// Rows (nodes).
    pub rows: usize,
    /// Channels (the dense width).
    pub channels: usize,
    /// Zero point (the value of every entry not stored).
    pub zp: i8,
}

/// What an op that starts with a linear map reads: a dense tensor, or the
/// model input as sparse rows. Only [`Op::Linear`], [`Op::GcnConv`] and
/// [`Op::SageConv`] with `Sum`/`Mean` aggregation take [`Src::Sparse`]
/// (see [`takes_sparse_input`]); the session densifies the input otherwise.
#[derive(Debug, Clone, Copy)]
pub enum Src<'a> {
    /// A dense int8 tensor.
    Dense(In<'a>),
    /// The sparse model input.
    Sparse(SparseIn<'a>),
}

impl<'a> From<In<'a>> for Src<'a> {
    fn from(x: In<'a>) -> Self {
        Src::Dense(x)
    }
}

impl Src<'_> {
    /// Channels (the dense width).
    pub fn channels(&self) -> usize {
        match self {
            Src::Dense(x) => x.channels,
            Src::Sparse(x) => x.channels,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Src::Dense(x) => x.rows,
            Src::Sparse(x) => x.rows,
        }
    }

    /// `sums[c] = Σ_k w[c,k]` for the dense path ([`Matrix::weight_sums`]);
    /// nothing for the sparse one (which does not use them).
    pub fn weight_sums(&self, w: Matrix<'_>, sums: &mut [i32]) {
        if let Src::Dense(x) = self {
            w.weight_sums(x.channels, sums);
        }
    }

    /// `out[c] = Σ_k w[c,k]·(x[i,k] − zp)` for row `i` (0 for a missing row);
    /// `sums` from [`Src::weight_sums`].
    pub fn matvec_row(&self, w: Matrix<'_>, i: usize, sums: &[i32], out: &mut [i32]) {
        match self {
            Src::Dense(x) => {
                let ic = x.channels;
                let row = i
                    .checked_mul(ic)
                    .and_then(|a| x.data.get(a..a.saturating_add(ic)))
                    .unwrap_or(&[]);
                if row.is_empty() && ic > 0 {
                    out.iter_mut().for_each(|o| *o = 0);
                } else {
                    w.matvec(ic, row, x.zp, sums, out);
                }
            }
            Src::Sparse(x) => {
                let (cols, values) = x.x.row(i);
                match w {
                    Matrix::I8(w) => sparse::matvec(w, x.channels, cols, values, x.zp, out),
                    #[cfg(feature = "weights-i4")]
                    Matrix::I4(w) => sparse::matvec_i4(w, x.channels, cols, values, x.zp, out),
                    // Rejected by `Model::from_bytes` without `weights-i4`.
                    #[cfg(not(feature = "weights-i4"))]
                    Matrix::I4(_) => out.fill(0),
                }
            }
        }
    }

    /// [`Src::matvec_row`] for every row: `out` is `[rows, sums.len()]`.
    pub fn matmul(&self, w: Matrix<'_>, sums: &[i32], out: &mut [i32]) {
        match self {
            Src::Dense(x) => w.matmul(x.channels, x.data, x.zp, sums, out),
            Src::Sparse(x) => match w {
                Matrix::I8(w) => sparse::matmul(w, x.channels, x.x, x.zp, sums.len(), out),
                #[cfg(feature = "weights-i4")]
                Matrix::I4(w) => sparse::matmul_i4(w, x.channels, x.x, x.zp, sums.len(), out),
                #[cfg(not(feature = "weights-i4"))]
                Matrix::I4(_) => out.fill(0),
            },
        }
    }
}

/// Whether `op` can read the model input as sparse rows ([`Src::Sparse`])
/// when it reads it at all.
pub fn takes_sparse_input(op: &Op) -> bool {
    match op {
        Op::Linear { .. } | Op::GcnConv { .. } => true,
        // With a weight matrix (SGConv) the first step is a linear map.
        // (Families not compiled in never run: no arm, less code.)
        #[cfg(feature = "op-propagate")]
        Op::Propagate { weights, .. } => weights.len != 0,
        #[cfg(feature = "op-sage")]
        Op::SageConv { aggr, .. } => *aggr != crate::format::Aggr::Max,
        _ => false,
    }
}

/// A writable int8 tensor: `[rows, channels]` with its zero point.
#[derive(Debug)]
pub struct Out<'a> {
    /// Values, row-major, exactly `rows × channels`.
    pub data: &'a mut [i8],
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Zero point.
    pub zp: i8,
}

/// Iterates the rows of a row-major slice (`channels = 0` gives no rows).
pub fn rows(data: &[i8], channels: usize) -> core::slice::ChunksExact<'_, i8> {
    data.chunks_exact(channels.max(1))
}

/// Iterates the rows of a mutable row-major slice.
pub fn rows_mut(data: &mut [i8], channels: usize) -> core::slice::ChunksExactMut<'_, i8> {
    data.chunks_exact_mut(channels.max(1))
}

/// Pairs the rows of `x` (`xc` channels) with those of `out` (`oc` channels),
/// stopping at the shorter: the same as `rows(x, xc).zip(rows_mut(out, oc))`,
/// but without `Zip`'s length computation, which divides by the chunk sizes in
/// an out-of-line function where the optimiser may not see they are non-zero
/// (a panic path at some optimisation levels).
pub fn zip_rows<'x, 'o>(
    x: &'x [i8],
    xc: usize,
    out: &'o mut [i8],
    oc: usize,
) -> impl Iterator<Item = (&'x [i8], &'o mut [i8])> {
    let mut xs = rows(x, xc);
    let mut os = rows_mut(out, oc);
    core::iter::from_fn(move || Some((xs.next()?, os.next()?)))
}

/// The graph an op runs on.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Index of the op in the model (for errors).
    pub op: u16,
    /// Target-sorted CSR.
    pub csr: Csr<'a>,
    /// Graph id of each node (`None`: all in graph 0).
    pub batch: Option<&'a [u16]>,
    /// Node count of each graph of the batch.
    pub graph_nodes: &'a [u32],
    /// The node pairs `(sources, targets)` of a model with a pair head
    /// (validated: equal lengths, indices below the node count); empty otherwise.
    pub pairs: (&'a [u16], &'a [u16]),
}

impl Ctx<'_> {
    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.csr.num_nodes()
    }

    /// Number of graphs.
    pub fn graphs(&self) -> usize {
        self.graph_nodes.len()
    }
}

/// Rows of a tensor of `kind` for a graph of `nodes` nodes in `graphs`
/// graphs with `pairs` node pairs.
pub fn rows_of(kind: TensorKind, nodes: usize, graphs: usize, pairs: usize) -> usize {
    match kind {
        TensorKind::Node => nodes,
        TensorKind::Graph => graphs,
        // One row per edge: the session sizes and locates edge tensors itself.
        TensorKind::Edge => 0,
        TensorKind::Pair => pairs,
    }
}

/// Scratch bytes `op` takes for `nodes` nodes and `graphs` graphs (`tensors`
/// is the model's tensor table). Exactly what the op's `run` takes.
pub fn scratch_bytes(op: &Op, tensors: &[TensorDesc], nodes: usize, graphs: usize) -> usize {
    let ch = |t: u8| {
        tensors
            .get(usize::from(t))
            .map_or(0, |d| usize::from(d.channels))
    };
    // Ops not compiled in take nothing (models using them are rejected).
    let _ = (nodes, graphs, &ch);
    #[allow(unreachable_patterns)]
    match op {
        #[cfg(feature = "op-linear")]
        Op::Linear { input, output, .. } => linear::scratch_bytes(ch(*input), ch(*output)),
        #[cfg(feature = "op-gcn")]
        Op::GcnConv { input, output, .. } => gcn::scratch_bytes(nodes, ch(*input), ch(*output)),
        #[cfg(feature = "op-sage")]
        Op::SageConv {
            input,
            output,
            aggr,
            ..
        } => sage::scratch_bytes(*aggr, nodes, ch(*input), ch(*output)),
        #[cfg(feature = "op-gin")]
        Op::GinAggregate { input, .. } => gin::scratch_bytes(ch(*input)),
        #[cfg(feature = "op-pool")]
        Op::GlobalPool { input, pool, .. } => pool::scratch_bytes(*pool, graphs, ch(*input)),
        #[cfg(feature = "op-gat")]
        Op::GatConv {
            input: _,
            output,
            heads,
            concat,
            v2,
            edge,
            ..
        } => {
            let oc = ch(*output);
            let h = usize::from(*heads);
            let c = gat::per_head(h, *concat, oc).unwrap_or(0);
            let e = if edge.is_some() {
                gat::edge_scratch_bytes(if *v2 { h.saturating_mul(c) } else { h })
            } else {
                0
            };
            gat::scratch_bytes(
                gat::GatShape {
                    heads: h,
                    per_head: c,
                    v2: *v2,
                },
                nodes,
                oc,
            )
            .saturating_add(e)
        }
        #[cfg(feature = "op-propagate")]
        Op::Propagate {
            output,
            weights,
            alpha_q30,
            hops,
            ..
        } => propagate::scratch_bytes(nodes, ch(*output), weights.len != 0, *alpha_q30 != 0, *hops),
        #[cfg(feature = "op-gine")]
        Op::GineConv {
            input, edge_attr, ..
        } => gine::scratch_bytes(ch(*input), ch(*edge_attr)),
        #[cfg(feature = "op-edgeconv")]
        Op::EdgeConv {
            input,
            output,
            k,
            hidden,
            ..
        } => edge_conv::scratch_bytes(
            edge_conv::EdgeConvShape {
                in_ch: ch(*input),
                hidden: usize::from(*hidden),
                out_ch: ch(*output),
                k: usize::from(*k),
            },
            nodes,
        ),
        _ => 0,
    }
}
