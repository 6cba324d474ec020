//! What every op sees: the [`OpDef`] trait each op's parameter struct
//! implements, the views of its input and output tensors ([`In`], [`Src`],
//! [`Out`]), the graph ([`Ctx`]), its [`Scratch`], the model's data section
//! ([`Weights`]) and the checks against the tensor table ([`Check`]).
//!
//! An op receives read-only views of its input tensors, a mutable view of its
//! output tensor, the graph and a [`Scratch`] region; it never allocates and
//! never touches the arena layout. [`OpDef::scratch_bytes`] returns exactly
//! what the op takes from its [`Scratch`]: the session sizes the arena with
//! it, so a run never fails for lack of scratch once the arena check passed.

use crate::error::{Error, Result};
use crate::format::{self, Activation, Section, TensorDesc, TensorKind, WeightBits};
use crate::kernels::aggregate::Csr;
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant::RowRequant;
use crate::kernels::sparse::{self, SparseRows};
#[cfg(any(feature = "weights-i4", feature = "weights-i2"))]
use crate::kernels::sparse_sub;
use crate::MAX_CHANNELS;

/// What the runtime knows of one op, implemented by the op's parameter
/// struct in its own module. `op_table!` turns the implementations into
/// the [`Op`](crate::ops::Op) enum and its dispatch: static `match`es, no `dyn`, with one
/// `cfg` per op so that an op family left out of a build leaves no code.
pub trait OpDef {
    /// A short lowercase name, for tools and logs.
    fn name(&self) -> &'static str;
    /// The tensor this op writes.
    fn output(&self) -> u8;
    /// Calls `f` for every tensor this op reads.
    fn for_each_input(&self, f: &mut dyn FnMut(u8));
    /// Whether any weight matrix of this op is int4 ([`WeightBits::I4`]).
    fn has_i4_weights(&self) -> bool {
        false
    }
    /// Whether any weight matrix of this op is int2 ([`WeightBits::I2`]).
    fn has_i2_weights(&self) -> bool {
        false
    }
    /// Whether the op reads the graph's edge weights (the graph must then
    /// carry them: [`format::MetaHeader::uses_edge_weight`]).
    fn uses_edge_weight(&self) -> bool {
        false
    }
    /// Whether the op can read the model input as sparse rows
    /// ([`Src::Sparse`]) when it reads it at all.
    fn takes_sparse_input(&self) -> bool {
        false
    }
    /// Whether the op reads int4 inputs ([`Src::Packed`]) and writes an int4
    /// output ([`Out::packed`]) wherever the model has them (cargo feature
    /// `act-i4`; `crate::Model::is_i4`). A model with an int4 tensor
    /// read or written by an op without it is rejected
    /// ([`crate::Error::InvalidOp`]).
    fn takes_i4(&self) -> bool {
        false
    }
    /// Shapes and parameters against the tensor table and the data section
    /// (tensor ids are already known to be in range and defined): `None` if
    /// the op is invalid.
    fn check(&self, c: &Check<'_>) -> Option<()>;
    /// Scratch bytes the op's `run` takes, exactly.
    fn scratch_bytes(&self, _s: &Shapes<'_>) -> usize {
        0
    }
    /// How far, in edges, an output row of the op reads its node inputs
    /// (`crate::Session::update`): `Some(0)` when output row `i` depends on
    /// input rows `i` only (`Linear`, activations, element-wise ops),
    /// `Some(k)` for `k` rounds of message passing along the edges (source →
    /// target), `None` when any row may depend on any other (pooling,
    /// attention over the whole graph, a kNN graph, pair or hyperedge rows):
    /// then every row counts as changed from this op on. The default, `None`,
    /// is always correct; a smaller value only saves work.
    fn hops(&self) -> Option<u8> {
        None
    }
    /// Runs the op: reads its inputs through `env`, writes `out`.
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()>;
}

/// Generates [`Op`](crate::ops::Op) (one variant per op, in tag order: the postcard tag of a
/// variant is its position), [`OP_TAGS`](crate::ops::OP_TAGS) and the dispatch functions from one
/// list of `Variant(module::Params) = "cargo feature"`.
/// What [`OpDef::check`] checks an op against: the model's tensor table and
/// data section.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The tensor table.
    pub tensors: &'a [TensorDesc],
    /// The model's data section.
    pub data: Weights<'a>,
}

impl Check<'_> {
    /// Tensor `id`'s descriptor.
    pub fn tensor(&self, id: u8) -> Option<TensorDesc> {
        self.tensors.get(usize::from(id)).copied()
    }

    /// Tensors `a` and `b`'s channel counts as `usize`.
    pub fn channels(&self, a: u8, b: u8) -> Option<(usize, usize)> {
        Some((
            usize::from(self.tensor(a)?.channels),
            usize::from(self.tensor(b)?.channels),
        ))
    }

    /// `Some(())` if `c`, as the result of a check.
    pub fn ok(c: bool) -> Option<()> {
        c.then_some(())
    }

    /// A fused activation the kernels accept (LeakyReLU slope ≥ 0).
    pub fn act_ok(a: &Activation) -> bool {
        !matches!(a, Activation::LeakyRelu { alpha_q16 } if *alpha_q16 < 0)
    }

    /// Section `s` has exactly `len` bytes inside the data section.
    pub fn section_is(&self, s: Section, len: usize) -> bool {
        s.len as usize == len && format::section(self.data.0, s).is_some()
    }

    /// A weight section of an `[out_ch, in_ch]` matrix: int8 of exactly
    /// `out_ch·in_ch` bytes, int4 ([`format::WEIGHTS_I4_FLAG`]) of exactly
    /// `out_ch·ceil(in_ch/2)` bytes whose row padding nibbles (odd `in_ch`) are
    /// 0, or int2 ([`format::WEIGHTS_I2_FLAG`]) of exactly
    /// `out_ch·ceil(in_ch/4)` bytes whose row padding fields are 0.
    pub fn weights_ok(&self, s: Section, out_ch: usize, in_ch: usize) -> bool {
        let bits = s.weight_bits();
        if (bits == WeightBits::I4 && !cfg!(feature = "weights-i4"))
            || (bits == WeightBits::I2 && !cfg!(feature = "weights-i2"))
        {
            return false;
        }
        let plain = s.weight_bytes();
        let Some(len) = bits.matrix_bytes(out_ch, in_ch) else {
            return false;
        };
        if !self.section_is(plain, len) {
            return false;
        }
        if bits == WeightBits::I4 && in_ch % 2 == 1 {
            let rb = bits.row_bytes(in_ch);
            return self
                .data
                .bytes(plain)
                .chunks_exact(rb.max(1))
                .all(|row| row.last().is_some_and(|b| b >> 4 == 0));
        }
        if cfg!(feature = "weights-i2") && bits == WeightBits::I2 && in_ch % 4 != 0 {
            let rb = bits.row_bytes(in_ch);
            let used = 2 * (in_ch % 4) as u32;
            return self
                .data
                .bytes(plain)
                .chunks_exact(rb.max(1))
                .all(|row| row.last().is_some_and(|b| b >> used == 0));
        }
        true
    }

    /// A [`format::ChannelParams`] section for `channels` channels, in the
    /// full (`12·C` bytes) or the compact (`4·C + 8` bytes) form.
    pub fn params_ok(&self, s: Section, channels: usize) -> bool {
        format::params_form(s.len as usize, channels).is_some()
            && format::section(self.data.0, s).is_some()
    }

    /// Every `(mult, shift)` record of `s` (8 bytes each) has a shift in
    /// `−32..=31`.
    pub fn shifts_ok(&self, s: Section) -> bool {
        self.data.bytes(s).chunks_exact(8).all(|pair| match *pair {
            [_, _, _, _, a, b, c, d] => (-32..=31).contains(&i32::from_le_bytes([a, b, c, d])),
            _ => false,
        })
    }

    /// At most [`MAX_CHANNELS`].
    pub fn channels_ok(c: usize) -> bool {
        c <= MAX_CHANNELS
    }
}

/// The sizes [`OpDef::scratch_bytes`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Shapes<'a> {
    /// The tensor table.
    pub tensors: &'a [TensorDesc],
    /// Nodes of the graph.
    pub nodes: usize,
    /// Edges of the graph.
    pub edges: usize,
    /// Graphs of the batch.
    pub graphs: usize,
    /// The scratch for the op's full width: an op with a leaner, narrower
    /// form (`GcnConv`'s passes over channel blocks) sizes its widest,
    /// fastest one ([`crate::Model::wide_arena_bytes`]); otherwise its least.
    pub wide: bool,
}

impl Shapes<'_> {
    /// Channels of tensor `t` (0 for an unknown id).
    pub fn ch(&self, t: u8) -> usize {
        self.tensors
            .get(usize::from(t))
            .map_or(0, |d| usize::from(d.channels))
    }
}

/// The model's data section, read in place: weight matrices and parameter
/// sections by [`Section`].
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a>(pub &'a [u8]);

impl<'a> Weights<'a> {
    /// The bytes of a section (validated sections always resolve; an unknown
    /// one yields an empty slice).
    pub fn bytes(&self, s: Section) -> &'a [u8] {
        format::section(self.0, s).unwrap_or(&[])
    }

    /// A weight section of either precision ([`WeightBits`]).
    pub fn matrix(&self, s: Section) -> Matrix<'a> {
        match s.weight_bits() {
            WeightBits::I8 => Matrix::I8(bytemuck::cast_slice(self.bytes(s))),
            WeightBits::I4 => Matrix::I4(self.bytes(s.weight_bytes())),
            #[cfg(feature = "weights-i2")]
            WeightBits::I2 => Matrix::I2(self.bytes(s.weight_bytes())),
            // Rejected by `Model::from_bytes` without `weights-i2`.
            #[cfg(not(feature = "weights-i2"))]
            WeightBits::I2 => Matrix::I8(&[]),
        }
    }

    /// A weight section, or `None` for an empty one (an optional matrix).
    pub fn matrix_opt(&self, s: Section) -> Option<Matrix<'a>> {
        (s.len != 0).then(|| self.matrix(s))
    }
}

/// The input tensors of a running op, as the session lays them out.
pub trait Tensors<'v> {
    /// A dense view of tensor `t`.
    fn view(&self, t: u8) -> Result<In<'v>>;
    /// Tensor `t` as a linear map reads it: the sparse model input in place,
    /// or a dense view.
    fn src(&self, t: u8) -> Result<Src<'v>>;
}

/// What an op's `run` gets besides its output and scratch.
#[derive(Debug)]
pub struct Env<'e, T> {
    /// The graph.
    pub ctx: &'e Ctx<'e>,
    /// The model's data section.
    pub data: Weights<'e>,
    /// The tensors written before this op.
    pub tensors: &'e T,
}

impl<'e, 'v, T: Tensors<'v>> Env<'e, T> {
    /// A dense view of tensor `t`.
    pub fn view(&self, t: u8) -> Result<In<'v>> {
        self.tensors.view(t)
    }

    /// Tensor `t` as a linear map reads it ([`Tensors::src`]).
    pub fn src(&self, t: u8) -> Result<Src<'v>> {
        self.tensors.src(t)
    }

    /// The error for a malformed op (one the checks should have refused).
    pub fn invalid(&self) -> Error {
        Error::InvalidOp { op: self.ctx.op }
    }
}

/// Whether a weight section holds int4 values.
pub fn is_i4(s: &Section) -> bool {
    s.weight_bits() == WeightBits::I4
}

/// Whether a weight section holds int2 values.
pub fn is_i2(s: &Section) -> bool {
    s.weight_bits() == WeightBits::I2
}

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

    /// Bytes not yet taken.
    pub fn available(&self) -> usize {
        self.buf.len()
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

    /// `count` prepared channel records ([`crate::kernels::requant::prepare`]),
    /// taken as `i32` words: the same bytes and alignment as
    /// `take::<Prepared>`, without a zeroing loop of its own (code size).
    pub fn take_records(
        &mut self,
        count: usize,
    ) -> Result<&'a mut [crate::kernels::requant::Prepared]> {
        const WORDS: usize = core::mem::size_of::<crate::kernels::requant::Prepared>() / 4;
        let words = self.take::<i32>(count.saturating_mul(WORDS))?;
        // Same alignment, a whole number of records: the cast cannot fail.
        Ok(bytemuck::try_cast_slice_mut(words).unwrap_or_default())
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
/// model input as sparse rows. Only [`Op::Linear`](crate::ops::Op::Linear),
/// [`Op::GcnConv`](crate::ops::Op::GcnConv), [`Op::GatConv`](crate::ops::Op::GatConv) and
/// [`Op::SageConv`](crate::ops::Op::SageConv) with `Sum`/`Mean` aggregation take [`Src::Sparse`]
/// (see [`takes_sparse_input`](crate::ops::takes_sparse_input)); the session densifies the input otherwise.
#[derive(Debug, Clone, Copy)]
pub enum Src<'a> {
    /// A dense int8 tensor.
    Dense(In<'a>),
    /// The sparse model input.
    Sparse(SparseIn<'a>),
    /// An int4 tensor (cargo feature `act-i4`): `data` holds its packed
    /// rows (`ceil(channels / 2)` bytes each, as `i8`;
    /// [`crate::kernels::act_i4`]), `zp` is in −8..=7.
    #[cfg(feature = "act-i4")]
    Packed(In<'a>),
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
            #[cfg(feature = "act-i4")]
            Src::Packed(x) => x.channels,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Src::Dense(x) => x.rows,
            Src::Sparse(x) => x.rows,
            #[cfg(feature = "act-i4")]
            Src::Packed(x) => x.rows,
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
                    Matrix::I4(w) => sparse_sub::matvec_i4(w, x.channels, cols, values, x.zp, out),
                    // Rejected by `Model::from_bytes` without `weights-i4`.
                    #[cfg(not(feature = "weights-i4"))]
                    Matrix::I4(_) => out.fill(0),
                    #[cfg(feature = "weights-i2")]
                    Matrix::I2(w) => sparse_sub::matvec_i2(w, x.channels, cols, values, x.zp, out),
                }
            }
            #[cfg(feature = "act-i4")]
            Src::Packed(x) => {
                let rb = crate::kernels::act_i4::row_bytes(x.channels);
                let bytes: &[u8] = bytemuck::cast_slice(x.data);
                let row = i
                    .checked_mul(rb)
                    .and_then(|a| bytes.get(a..a.saturating_add(rb)))
                    .unwrap_or(&[]);
                crate::kernels::act_i4::matvec(w, x.channels, row, x.zp, out);
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
                Matrix::I4(w) => sparse_sub::matmul_i4(w, x.channels, x.x, x.zp, sums.len(), out),
                #[cfg(not(feature = "weights-i4"))]
                Matrix::I4(_) => out.fill(0),
                #[cfg(feature = "weights-i2")]
                Matrix::I2(w) => sparse_sub::matmul_i2(w, x.channels, x.x, x.zp, sums.len(), out),
            },
            #[cfg(feature = "act-i4")]
            Src::Packed(x) => crate::kernels::act_i4::matmul(
                w,
                x.channels,
                bytemuck::cast_slice(x.data),
                x.zp,
                sums.len(),
                out,
            ),
        }
    }
}

/// A writable int8 tensor: `[rows, channels]` with its zero point; or an
/// int4 one (`packed`).
#[derive(Debug)]
pub struct Out<'a> {
    /// Values, row-major, exactly `rows × channels`; when `packed`, the
    /// packed rows (`rows × ceil(channels / 2)` bytes, as `i8`).
    pub data: &'a mut [i8],
    /// An int4 tensor (cargo feature `act-i4`; only ops with
    /// [`OpDef::takes_i4`] are given one): write it with
    /// `RowRequant::row_i4` ([`Out::is_packed`]).
    #[cfg(feature = "act-i4")]
    pub packed: bool,
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Zero point.
    pub zp: i8,
}

impl Out<'_> {
    /// Whether the tensor is int4 (never without the feature `act-i4`).
    #[inline(always)]
    pub fn is_packed(&self) -> bool {
        #[cfg(feature = "act-i4")]
        return self.packed;
        #[cfg(not(feature = "act-i4"))]
        false
    }
}

/// Bytes of one output row of `channels` values: `channels`, or
/// `ceil(channels / 2)` when `packed` (int4, cargo feature `act-i4`).
#[inline]
pub fn out_row_bytes(channels: usize, packed: bool) -> usize {
    if cfg!(feature = "act-i4") && packed {
        channels.div_ceil(2)
    } else {
        channels
    }
}

/// Requantizes whole rows of `oc` accumulators of `acc` into the rows of
/// `out` ([`RowRequant::rows`]), or, when `packed`, into int4 rows of
/// `ceil(oc / 2)` bytes ([`RowRequant::row_i4`], cargo feature `act-i4`),
/// up to the shorter of the two.
#[inline]
pub fn requant_rows(rq: &RowRequant<'_>, acc: &[i32], out: &mut [i8], oc: usize, packed: bool) {
    #[cfg(feature = "act-i4")]
    if packed {
        let rb = out_row_bytes(oc, true).max(1);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
        let (mut a, mut o) = (acc.chunks_exact(oc.max(1)), bytes.chunks_exact_mut(rb));
        while let (Some(a), Some(o)) = (a.next(), o.next()) {
            rq.row_i4(a, o);
        }
        return;
    }
    let _ = (oc, packed);
    rq.rows(acc, out);
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

/// A hypergraph's node → hyperedge incidence, PyG's `hyperedge_index`
/// `[2, nnz]`: node `nodes[k]` belongs to hyperedge `edges[k]`. Hyperedges
/// are numbered `0..M`, `M = max(edges) + 1` (0 for no incidence), as PyG
/// counts them when `num_edges` is not given; a hyperedge without incidence
/// is empty and contributes nothing. Read in place by each run.
#[derive(Debug, Clone, Copy)]
pub struct Hyperedges<'a> {
    /// `hyperedge_index[0]`: the node of each incidence.
    pub nodes: &'a [u16],
    /// `hyperedge_index[1]`: the hyperedge of each incidence.
    pub edges: &'a [u16],
    /// `hyperedge_weight`: one weight per hyperedge (at least `M` entries),
    /// or `None` for all 1.0.
    pub weight: Option<&'a [f32]>,
}

impl Hyperedges<'_> {
    /// No incidences.
    pub const EMPTY: Hyperedges<'static> = Hyperedges {
        nodes: &[],
        edges: &[],
        weight: None,
    };

    /// The number of hyperedges `M = max(edges) + 1` (0 without incidences).
    pub fn num_hyperedges(&self) -> usize {
        self.edges
            .iter()
            .copied()
            .max()
            .map_or(0, |m| usize::from(m) + 1)
    }
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
    /// The graph's GCN normalisation, computed once per graph by the session
    /// (`crate::ops::gcn::fill_dinv`) for the flags `dinv_key` names
    /// (`crate::ops::gcn::GcnFlags::key`; 0 and an empty table when the model
    /// has no normalising `GcnConv`): one stored `dinv` per node. Ops with
    /// these flags read it instead of computing their own.
    pub dinv: &'a [u32],
    /// The flags `dinv` is for (0: none).
    pub dinv_key: u8,
    /// The hypergraph incidence of a model with a `HypergraphConv`
    /// (validated; [`Hyperedges::EMPTY`] otherwise).
    #[cfg(feature = "op-hypergraph")]
    pub hyperedges: Hyperedges<'a>,
    /// Which output rows the op must compute ([`Dirty::ALL`] but in an
    /// incremental run, `crate::Session::update`; read it with
    /// [`Ctx::dirty`]).
    #[cfg(feature = "incremental")]
    pub dirty: Dirty<'a>,
}

/// The output rows an op of an incremental run (`crate::Session::update`)
/// must compute: node `i`'s row when `dist[i] ≤ level`, `dist[i]` being the
/// number of edges from the nearest node whose features changed (255: not
/// within reach of any op). The other rows hold the previous run's values,
/// which are still exact. An op may compute more rows than asked (all of
/// them, if it does not look at this): the values are the same.
#[derive(Debug, Clone, Copy)]
pub struct Dirty<'a> {
    /// Per node: edges from the nearest changed node (empty: every row).
    pub dist: &'a [u8],
    /// Rows with `dist ≤ level` are computed.
    pub level: u8,
    /// Per node, nonzero for the node itself or an in-neighbour of a row to
    /// compute (the rows of a per-node product an aggregation reads; empty
    /// unless `dist` is not).
    pub need: &'a [u8],
    /// How many rows have `dist ≤ level`.
    pub rows: usize,
    /// How many nodes `need` marks (0 unless the op reads other rows).
    pub needed: usize,
}

impl Dirty<'_> {
    /// Every row (a full run).
    pub const ALL: Dirty<'static> = Dirty {
        dist: &[],
        level: u8::MAX,
        need: &[],
        rows: 0,
        needed: 0,
    };

    /// Whether an op should compute these rows one by one rather than all
    /// rows with its whole-tensor kernels: when at most two thirds of the
    /// `nodes` rows are asked for (`reads`: the rows its inputs are read
    /// at, [`Dirty::needed`] for an aggregation, [`Dirty::rows`] per row).
    #[inline]
    pub fn by_rows(&self, reads: usize, nodes: usize) -> bool {
        !self.is_all() && reads.saturating_mul(3) <= nodes.saturating_mul(2)
    }

    /// Whether every row must be computed.
    #[inline]
    pub fn is_all(&self) -> bool {
        // (Constant without the feature: the row-by-row variants of the
        // ops are then left out of the build.)
        !cfg!(feature = "incremental") || self.dist.is_empty() || self.level == u8::MAX
    }

    /// Whether output row `i` must be computed.
    #[inline]
    pub fn row(&self, i: usize) -> bool {
        self.is_all() || self.dist.get(i).is_some_and(|&d| d <= self.level)
    }

    /// Whether input row `j` is read by a row to compute one edge away.
    #[inline]
    pub fn needs(&self, j: usize) -> bool {
        self.is_all() || self.need.get(j).is_some_and(|&m| m != 0)
    }
}

impl Ctx<'_> {
    /// Which output rows the op must compute ([`Dirty::ALL`] in a full run,
    /// and always without the cargo feature `incremental`).
    #[inline(always)]
    pub fn dirty(&self) -> Dirty<'_> {
        #[cfg(feature = "incremental")]
        return self.dirty;
        #[cfg(not(feature = "incremental"))]
        Dirty::ALL
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.csr.num_nodes()
    }

    /// Number of graphs.
    pub fn graphs(&self) -> usize {
        self.graph_nodes.len()
    }

    /// The hypergraph incidence (empty in a build without `op-hypergraph`).
    pub fn hyperedges(&self) -> Hyperedges<'_> {
        #[cfg(feature = "op-hypergraph")]
        return self.hyperedges;
        #[cfg(not(feature = "op-hypergraph"))]
        Hyperedges::EMPTY
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

/// The most bytes of a per-node product `W·x` (`i32`) that a layer
/// computing it for every node before its neighbour sums (`GcnConv`'s `h`,
/// `SageConv`'s `hl`) holds at once in its least arena when the product for
/// all its output channels would be larger: it then computes its output in
/// passes over blocks of channels ([`block_channels`]), which per-channel
/// requantization allows without changing a byte. Above 2,048 nodes a
/// pass is one channel.
pub const H_BLOCK_BYTES: usize = 16 * 1024;

/// Output channels per pass of such a layer in its least arena, for
/// `nodes` nodes: all `out_ch` when the product for all of them fits
/// [`H_BLOCK_BYTES`]; else as many as fit,
/// at least one, a multiple of four from four on (the 32-bit neighbour sum
/// takes four channels at a time).
pub fn block_channels(nodes: usize, out_ch: usize) -> usize {
    let fit = H_BLOCK_BYTES / nodes.saturating_mul(4).max(1);
    if fit >= out_ch {
        out_ch
    } else if fit >= 4 {
        fit & !3
    } else {
        fit.max(1)
    }
}
