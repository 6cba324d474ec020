//! The input graph of one inference run, and its validation.
//!
//! A [`GraphInput`] is the PyG `Data`/`Batch` of one run, borrowed from the
//! caller: node features (float, quantized here with [`quantize_value`], or
//! already int8), the COO `edge_index` as two `u16` slices, optional edge
//! weights and an optional `batch` vector.
//!
//! Invariants checked by [`crate::Session::run`] before anything is written
//! (each failure is its own [`Error`] variant):
//! * `num_nodes ≤` the model's `max_nodes` (itself `≤ u16::MAX`, so every node
//!   index fits a `u16`);
//! * `features.len() == num_nodes × F` and, for float features, every value finite;
//! * `sources.len() == targets.len() ≤ max_edges`, every index `< num_nodes`;
//! * if the model uses edge weights: weights present, one per edge, each valid
//!   for [`edge_weight_q16`]; otherwise any given weights are ignored;
//! * if the model has an edge-feature input ([`Model::edge_input`], `D`
//!   channels): `edge_attr` present ([`Error::MissingEdgeAttr`]), holding
//!   `edges × D` values ([`Error::EdgeAttrShape`]), float values finite
//!   ([`Error::NonFiniteEdgeAttr`]); otherwise any given `edge_attr` is ignored;
//! * `batch` (if given) has one entry per node, and `num_graphs() ≤ max_graphs`;
//! * if the model has a `HypergraphConv` ([`Model::uses_hyperedges`]):
//!   `hyperedges` present ([`Error::MissingHyperedges`]), node and hyperedge
//!   rows of equal length ([`Error::HyperedgeListMismatch`]), at most
//!   `max_edges` incidences ([`Error::TooManyIncidences`]), every node index
//!   `< num_nodes` ([`Error::HyperedgeNodeOutOfRange`]); the hyperedges are
//!   numbered `0..M` with `M = max id + 1` (0 without incidences, PyG's
//!   default `num_edges`); `weight`, if given, has at least `M` entries
//!   ([`Error::HyperedgeWeightShape`]), each valid for [`edge_weight_q16`]
//!   ([`Error::InvalidHyperedgeWeight`]); otherwise any given hyperedges are
//!   ignored;
//! * if the model has a pair tensor ([`Model::has_pairs`], a link-prediction
//!   head): `pairs` present, `sources.len() == targets.len() ≤ max_pairs`,
//!   every index `< num_nodes`; otherwise any given pairs are ignored.
//!
//! Zero nodes is a valid input: node-level outputs then have zero rows, and a
//! graph-level output has one row per graph (`num_graphs()` is 1 without a
//! batch vector or with an empty one), each the value of an empty graph.

use crate::error::{Error, Result};
pub use crate::ops::Hyperedges;
use crate::Model;

/// Node features, row-major `[num_nodes, F]`.
#[derive(Debug, Clone, Copy)]
pub enum Features<'a> {
    /// Float features, quantized with the model input's scale and zero point.
    F32(&'a [f32]),
    /// Already quantized features (the model input's scale and zero point).
    I8(&'a [i8]),
    /// Sparse, already quantized features in CSR form (for bag-of-words inputs
    /// such as Cora's, ~1 % non-zero): row `i`'s stored entries are
    /// `cols[row_ptr[i]..row_ptr[i+1]]` (strictly increasing, `< F`) with
    /// `values` alike; every other entry is real 0, i.e. the input's zero point.
    /// `row_ptr` has `num_nodes + 1` entries, starts at 0, never decreases and
    /// ends at `cols.len() == values.len()`. Read in place by the first
    /// layer when the model allows it ([`Model::reads_sparse_input`]; arena
    /// size [`Model::arena_bytes_sparse`]), else expanded into the input tensor.
    SparseI8 {
        /// Row offsets into `cols`/`values`.
        row_ptr: &'a [u32],
        /// Column of each stored entry.
        cols: &'a [u16],
        /// Quantized value of each stored entry.
        values: &'a [i8],
    },
}

impl Features<'_> {
    /// Number of values given (for sparse features: the stored entries).
    pub fn len(&self) -> usize {
        match self {
            Features::F32(v) => v.len(),
            Features::I8(v) => v.len(),
            Features::SparseI8 { values, .. } => values.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `x` quantized as the session quantizes `f32` features into `model`'s
/// input tensor ([`quantize_value`] with its scale and zero point),
/// saturated to −8..=7 when the input is int4 ([`Model::is_i4`]): the
/// values to give as int8 or sparse int8 features.
pub fn quantize_input(model: &Model<'_>, x: f32) -> i8 {
    let d = model.input_desc();
    let q = quantize_value(x, d.scale, d.zero_point);
    if model.is_i4(model.input()) {
        q.clamp(-8, 7)
    } else {
        q
    }
}

/// Checks the CSR invariants of [`Features::SparseI8`].
fn check_sparse(n: usize, f: usize, row_ptr: &[u32], cols: &[u16], values: &[i8]) -> Result<()> {
    if row_ptr.len() != n.saturating_add(1) || cols.len() != values.len() {
        return Err(Error::FeatureShape {
            expected: to_u32(n.saturating_add(1)),
            actual: to_u32(row_ptr.len()),
        });
    }
    if row_ptr.first().copied().unwrap_or(0) != 0
        || row_ptr.last().map(|&e| e as usize) != Some(cols.len())
    {
        return Err(Error::InvalidSparseFeatures { node: 0 });
    }
    for (node, w) in row_ptr.windows(2).enumerate() {
        let (a, b) = match *w {
            [a, b] => (a as usize, b as usize),
            _ => (0, 0),
        };
        let row = cols
            .get(a..b)
            .ok_or(Error::InvalidSparseFeatures { node: to_u32(node) })?;
        let mut prev: Option<u16> = None;
        for &c in row {
            if usize::from(c) >= f || prev.is_some_and(|p| p >= c) {
                return Err(Error::InvalidSparseFeatures { node: to_u32(node) });
            }
            prev = Some(c);
        }
    }
    Ok(())
}

/// One input graph (or a PyG-style batch of graphs).
///
/// Build it with [`GraphInput::new`] (nodes, features, edges) and add what
/// the model needs with the `with_*` methods; the fields stay public, to read
/// them or to set an optional one from an `Option` you already have
/// (`input.batch = maybe_batch;`). The struct is `#[non_exhaustive]`: a later
/// version may add optional inputs (as `edge_attr` and `pairs` were added),
/// which [`GraphInput::new`] will leave unset, so code written against this
/// version keeps compiling.
///
/// ```
/// use tinygnn::{EdgeAttr, Features, GraphInput, NodePairs};
///
/// let x = [0.5f32; 3 * 2]; // 3 nodes, 2 features each
/// let (sources, targets) = ([0u16, 1, 2], [1u16, 2, 0]);
/// let input = GraphInput::new(3, Features::F32(&x), &sources, &targets)
///     .with_edge_weight(&[1.0, 0.5, 2.0]);
/// assert_eq!((input.num_edges(), input.num_graphs()), (3, 1));
///
/// // Two graphs in one batch, with edge features and node pairs to score.
/// let batch = [0u16, 0, 1];
/// let attr = [0i8; 3 * 4];
/// let input = input
///     .with_batch(&batch)
///     .with_edge_attr(EdgeAttr::I8(&attr))
///     .with_pairs(NodePairs { sources: &[0], targets: &[1] });
/// assert_eq!(input.num_graphs(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GraphInput<'a> {
    /// Number of nodes (all graphs of the batch together).
    pub num_nodes: usize,
    /// Node features, `[num_nodes, F]`.
    pub features: Features<'a>,
    /// `edge_index[0]`: message sources.
    pub sources: &'a [u16],
    /// `edge_index[1]`: message targets (messages flow source → target).
    pub targets: &'a [u16],
    /// Optional edge weights, one per edge (required if the model uses them).
    pub edge_weight: Option<&'a [f32]>,
    /// Graph id of each node; `None` puts every node in graph 0.
    pub batch: Option<&'a [u16]>,
    /// Edge features, row-major `[num_edges, D]` (PyG's `edge_attr`), read by
    /// the ops that take edge features; models without such an op ignore them.
    pub edge_attr: Option<EdgeAttr<'a>>,
    /// Node pairs to score (a link-prediction head's queries, PyG's
    /// `edge_label_index`); models without a pair head ignore them.
    pub pairs: Option<NodePairs<'a>>,
    /// The hypergraph incidence (PyG's `hyperedge_index`, with
    /// `hyperedge_weight`), read by `HypergraphConv`; other models ignore it.
    pub hyperedges: Option<Hyperedges<'a>>,
}

/// Edge features, row-major `[num_edges, D]`.
#[derive(Debug, Clone, Copy)]
pub enum EdgeAttr<'a> {
    /// Float values, quantized with the model's edge-feature scale and zero point.
    F32(&'a [f32]),
    /// Already quantized values (the model's edge-feature scale and zero point).
    I8(&'a [i8]),
}

/// Node pairs `(sources[k], targets[k])`, each index `< num_nodes`.
#[derive(Debug, Clone, Copy)]
pub struct NodePairs<'a> {
    /// First node of each pair.
    pub sources: &'a [u16],
    /// Second node of each pair.
    pub targets: &'a [u16],
}

impl<'a> GraphInput<'a> {
    /// A graph of `num_nodes` nodes with node `features` (`[num_nodes, F]`)
    /// and the edges `sources[k] → targets[k]` (PyG's `edge_index`), without
    /// edge weights, batch vector, edge features or node pairs.
    ///
    /// Nothing is checked here: [`crate::Session::run`] validates the input
    /// against its model (the rules are listed in [`crate::graph`]).
    pub const fn new(
        num_nodes: usize,
        features: Features<'a>,
        sources: &'a [u16],
        targets: &'a [u16],
    ) -> Self {
        GraphInput {
            num_nodes,
            features,
            sources,
            targets,
            edge_weight: None,
            batch: None,
            edge_attr: None,
            pairs: None,
            hyperedges: None,
        }
    }

    /// With edge weights, one per edge (read only by models that use them).
    #[must_use]
    pub const fn with_edge_weight(mut self, edge_weight: &'a [f32]) -> Self {
        self.edge_weight = Some(edge_weight);
        self
    }

    /// With a batch vector: the graph id of each node (PyG's `batch`).
    #[must_use]
    pub const fn with_batch(mut self, batch: &'a [u16]) -> Self {
        self.batch = Some(batch);
        self
    }

    /// With edge features, `[num_edges, D]` in the order of the edges (read
    /// only by models with an edge-feature input).
    #[must_use]
    pub const fn with_edge_attr(mut self, edge_attr: EdgeAttr<'a>) -> Self {
        self.edge_attr = Some(edge_attr);
        self
    }

    /// With node pairs to score (read only by models with a pair head).
    #[must_use]
    pub const fn with_pairs(mut self, pairs: NodePairs<'a>) -> Self {
        self.pairs = Some(pairs);
        self
    }

    /// With a hypergraph incidence (read only by models with a `HypergraphConv`).
    #[must_use]
    pub const fn with_hyperedges(mut self, hyperedges: &Hyperedges<'a>) -> Self {
        self.hyperedges = Some(*hyperedges);
        self
    }

    /// Number of graphs: `max(batch) + 1`, or 1 without a batch vector (or an empty one).
    pub fn num_graphs(&self) -> usize {
        match self.batch {
            Some(b) => b.iter().copied().max().map_or(1, |m| usize::from(m) + 1),
            None => 1,
        }
    }

    /// Number of edges (the length of `sources`).
    pub fn num_edges(&self) -> usize {
        self.sources.len()
    }
}

/// Quantizes one real value: `saturate_i8(round_half_away(x / scale) + zero_point)`.
/// NaN maps to `zero_point`. The host tool quantizes features with this same function.
pub fn quantize_value(x: f32, scale: f32, zero_point: i8) -> i8 {
    // `as i32` saturates (and maps NaN to 0), so this never panics.
    let q = libm::roundf(x / scale) as i32;
    crate::quant::saturate_i8(q.saturating_add(i32::from(zero_point)))
}

/// The float just below `0.5`. Adding it with `y`'s sign and truncating
/// rounds `y` half away from zero, as `roundf` does, for every float: the
/// sum reaches the next integer exactly when `|y|`'s fraction is at least
/// one half (at a tie it is one half-step of the sum's spacing short, and
/// round-to-nearest-even takes it up).
const HALF_DOWN: f32 = 0.499_999_97;

/// `2^30`: [`quantize_slice`] clamps the quotient to `±2^30`, which
/// saturates to the same int8 for every zero point and keeps the rounded
/// value inside `i32`.
const Y_MAX: f32 = 1_073_741_824.0;

/// One value of [`quantize_slice`], before its zero point and saturation.
#[inline(always)]
fn quantize_fast(x: f32, scale: f32) -> i32 {
    let y = x / scale;
    // NaN → 0 (as `roundf(NaN) as i32` gives), then clamped to ±2^30
    // (plain comparisons: one min and one max instruction, no NaN rules).
    #[allow(clippy::eq_op)]
    let y = if y == y { y } else { 0.0 };
    let y = if y < -Y_MAX { -Y_MAX } else { y };
    let y = if y > Y_MAX { Y_MAX } else { y };
    // Rounded half away from zero, truncated: within ±(2^30 + 1).
    let z = y + HALF_DOWN.copysign(y);
    // SAFETY: `z` is finite (NaN replaced, `y` clamped) and its truncation
    // within ±(2^30 + 1), which `i32` holds: the conversion is defined.
    // (A plain `as` adds the saturation and NaN checks per value, which
    // the compiler does not vectorise.)
    #[allow(unsafe_code)]
    unsafe {
        z.to_int_unchecked()
    }
}

/// `r` plus the zero point (no overflow: `|r| ≤ 2^30 + 1`), saturated to int8.
#[inline(always)]
fn saturate_zp(r: i32, zp: i32) -> i8 {
    (r + zp).clamp(-128, 127) as i8
}

/// Quantizes `src` into `dst` (the shorter length), each value exactly as
/// [`quantize_value`] does, for every `f32` bit pattern (NaN, infinities,
/// subnormals, huge values; tested against it), without its per-value call to
/// `roundf`: the quotient clamped to ±2^30, rounded half away from zero by
/// adding the float below one half with its sign and truncating, then
/// saturated, in straight-line code the compiler vectorises.
/// The runtime quantizes float node features with it.
pub fn quantize_slice(dst: &mut [i8], src: &[f32], scale: f32, zero_point: i8) {
    let zp = i32::from(zero_point);
    // Sixteen values per step, rounded into `i32`s, then saturated together:
    // the vector form packs them in three instructions and one store.
    let mut d16 = dst.chunks_exact_mut(16);
    let mut s16 = src.chunks_exact(16);
    for (o, x) in (&mut d16).zip(&mut s16) {
        let mut r = [0i32; 16];
        for (r, &x) in r.iter_mut().zip(x) {
            *r = quantize_fast(x, scale);
        }
        for (o, &r) in o.iter_mut().zip(&r) {
            *o = saturate_zp(r, zp);
        }
    }
    for (o, &x) in d16.into_remainder().iter_mut().zip(s16.remainder()) {
        *o = saturate_zp(quantize_fast(x, scale), zp);
    }
}

pub use crate::quant::edge_weight_q16;

/// Sizes of a validated input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub nodes: usize,
    pub edges: usize,
    pub graphs: usize,
    /// Node pairs scored (0 for a model without a pair tensor).
    pub pairs: usize,
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Checks `input` against `model` (see the module docs for the rules).
pub(crate) fn validate(model: &Model<'_>, input: &GraphInput<'_>) -> Result<Dims> {
    let (max_nodes, max_edges, max_graphs) = model.capacity();
    let n = input.num_nodes;
    let max_n = max_nodes.min(u32::from(u16::MAX));
    if n > max_n as usize {
        return Err(Error::TooManyNodes {
            nodes: to_u32(n),
            max: max_n,
        });
    }
    validate_features(model, n, input.features)?;
    if input.sources.len() != input.targets.len() {
        return Err(Error::EdgeListMismatch);
    }
    let e = input.sources.len();
    if e > max_edges as usize {
        return Err(Error::TooManyEdges {
            edges: to_u32(e),
            max: max_edges,
        });
    }
    for (k, (&s, &t)) in input.sources.iter().zip(input.targets).enumerate() {
        let bad = if usize::from(s) >= n {
            Some(s)
        } else if usize::from(t) >= n {
            Some(t)
        } else {
            None
        };
        if let Some(index) = bad {
            return Err(Error::NodeIndexOutOfRange {
                edge: to_u32(k),
                index: u32::from(index),
            });
        }
    }
    if model.uses_edge_weight() {
        let w = input.edge_weight.ok_or(Error::MissingInput)?;
        if w.len() != e {
            return Err(Error::EdgeListMismatch);
        }
        if let Some(bad) = w.iter().position(|&x| edge_weight_q16(x).is_none()) {
            return Err(Error::InvalidEdgeWeight { edge: to_u32(bad) });
        }
    }
    if let Some(et) = model.edge_input() {
        let d = model
            .tensors()
            .get(usize::from(et))
            .map_or(0, |t| usize::from(t.channels));
        let attr = input.edge_attr.ok_or(Error::MissingEdgeAttr)?;
        let expected = e.saturating_mul(d);
        let actual = match attr {
            EdgeAttr::F32(v) => v.len(),
            EdgeAttr::I8(v) => v.len(),
        };
        if actual != expected {
            return Err(Error::EdgeAttrShape {
                expected: to_u32(expected),
                actual: to_u32(actual),
            });
        }
        if let EdgeAttr::F32(v) = attr {
            if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteEdgeAttr {
                    edge: to_u32(bad / d.max(1)),
                    channel: to_u32(bad % d.max(1)),
                });
            }
        }
    }
    if let Some(b) = input.batch {
        if b.len() != n {
            return Err(Error::MissingInput);
        }
    }
    let g = input.num_graphs();
    if g > max_graphs as usize {
        return Err(Error::TooManyGraphs {
            graphs: to_u32(g),
            max: max_graphs,
        });
    }
    let p = validate_pairs(model, input, n)?;
    #[cfg(feature = "op-hypergraph")]
    validate_hyperedges(model, input, n)?;
    Ok(Dims {
        nodes: n,
        edges: e,
        graphs: g,
        pairs: p,
    })
}

/// The feature rules of [`validate`] for a graph of `n` nodes (also all that
/// [`crate::Session::run_prepared`] checks).
pub(crate) fn validate_features(model: &Model<'_>, n: usize, features: Features<'_>) -> Result<()> {
    let f = usize::from(model.input_desc().channels);
    let expected = n.saturating_mul(f);
    if let Features::SparseI8 {
        row_ptr,
        cols,
        values,
    } = features
    {
        check_sparse(n, f, row_ptr, cols, values)?;
        // An int4 input reads stored values as they are (in place, or
        // expanded): they must be int4 values.
        if model.is_i4(model.input()) {
            if let Some(bad) = values.iter().position(|v| !(-8..=7).contains(v)) {
                let node = row_ptr.iter().filter(|&&e| e as usize <= bad).count();
                return Err(Error::InvalidSparseFeatures {
                    node: to_u32(node.saturating_sub(1)),
                });
            }
        }
    } else if features.len() != expected {
        return Err(Error::FeatureShape {
            expected: to_u32(expected),
            actual: to_u32(features.len()),
        });
    }
    if let Features::F32(values) = features {
        // 64 values at a time without an early exit, by their exponent
        // bits (all ones: infinite or NaN), which the compiler vectorises to
        // four instructions per four values; the first bad one is searched
        // only if any.
        const EXP: u32 = 0x7f80_0000;
        let finite = values.chunks(64).all(|c| {
            c.iter()
                .fold(0u32, |bad, v| bad | u32::from(v.to_bits() & EXP == EXP))
                == 0
        });
        if finite {
            return Ok(());
        }
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteFeature {
                node: to_u32(bad / f.max(1)),
                channel: to_u32(bad % f.max(1)),
            });
        }
    }
    Ok(())
}

/// The pair rules of [`validate`]: the number of pairs scored.
fn validate_pairs(model: &Model<'_>, input: &GraphInput<'_>, n: usize) -> Result<usize> {
    if !model.has_pairs() {
        return Ok(0);
    }
    let pairs = input.pairs.ok_or(Error::MissingPairs)?;
    if pairs.sources.len() != pairs.targets.len() {
        return Err(Error::PairListMismatch);
    }
    let p = pairs.sources.len();
    let max = model.max_pairs();
    if p > max as usize {
        return Err(Error::TooManyPairs {
            pairs: to_u32(p),
            max,
        });
    }
    for (k, (&s, &t)) in pairs.sources.iter().zip(pairs.targets).enumerate() {
        let bad = if usize::from(s) >= n {
            Some(s)
        } else if usize::from(t) >= n {
            Some(t)
        } else {
            None
        };
        if let Some(index) = bad {
            return Err(Error::PairIndexOutOfRange {
                pair: to_u32(k),
                index: u32::from(index),
            });
        }
    }
    Ok(p)
}

/// The hyperedge rules of [`validate`].
#[cfg(feature = "op-hypergraph")]
fn validate_hyperedges(model: &Model<'_>, input: &GraphInput<'_>, n: usize) -> Result<()> {
    if !model.uses_hyperedges() {
        return Ok(());
    }
    let h = input.hyperedges.ok_or(Error::MissingHyperedges)?;
    if h.nodes.len() != h.edges.len() {
        return Err(Error::HyperedgeListMismatch);
    }
    let (_, max_edges, _) = model.capacity();
    if h.nodes.len() > max_edges as usize {
        return Err(Error::TooManyIncidences {
            incidences: to_u32(h.nodes.len()),
            max: max_edges,
        });
    }
    if let Some(k) = h.nodes.iter().position(|&v| usize::from(v) >= n) {
        return Err(Error::HyperedgeNodeOutOfRange {
            incidence: to_u32(k),
            index: h.nodes.get(k).map_or(0, |&v| u32::from(v)),
        });
    }
    if let Some(w) = h.weight {
        let m = h.num_hyperedges();
        if w.len() < m {
            return Err(Error::HyperedgeWeightShape {
                expected: to_u32(m),
                actual: to_u32(w.len()),
            });
        }
        if let Some(bad) = w.iter().position(|&x| edge_weight_q16(x).is_none()) {
            return Err(Error::InvalidHyperedgeWeight {
                hyperedge: to_u32(bad),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_away_and_saturates() {
        assert_eq!(quantize_value(0.5, 1.0, 0), 1);
        assert_eq!(quantize_value(-0.5, 1.0, 0), -1);
        assert_eq!(quantize_value(1.49, 1.0, 3), 4);
        assert_eq!(quantize_value(1000.0, 1.0, 0), 127);
        assert_eq!(quantize_value(-1000.0, 1.0, 0), -128);
        assert_eq!(quantize_value(f32::NAN, 1.0, 5), 5);
        assert_eq!(quantize_value(f32::INFINITY, 0.1, 0), 127);
        assert_eq!(quantize_value(1.0, 0.25, -10), -6);
    }

    /// Reference and fast path on one value.
    fn same(x: f32, scale: f32, zp: i8) {
        let mut out = [0i8; 1];
        quantize_slice(&mut out, &[x], scale, zp);
        assert_eq!(
            out[0],
            quantize_value(x, scale, zp),
            "x {x:e} ({:#x}) scale {scale:e} zp {zp}",
            x.to_bits()
        );
    }

    #[test]
    fn quantize_slice_on_special_values_and_ties() {
        let specials = [
            0.0f32,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::from_bits(0x8000_0001),
            f32::MAX,
            f32::MIN,
            0.49999997,
            -0.49999997,
            4_194_304.5,
            8_388_609.0,
            16_777_217.0,
        ];
        let scales = [
            1.0f32,
            0.5,
            0.1,
            3.0e-39,
            1.0e-30,
            7.0,
            f32::MAX,
            f32::from_bits(1),
        ];
        for &s in &scales {
            for &x in &specials {
                for zp in [-128i8, -5, 0, 3, 127] {
                    same(x, s, zp);
                }
            }
        }
        // Every float within 40 ulps of each half-integer and integer up
        // to ±300 (the rounding and saturation edges), scale 1 and 0.5.
        // Under Miri (CI's hostile area) every 37th centre and 4 ulps: the
        // full sweep is about a million comparisons.
        let (step, ulps) = if cfg!(miri) { (37, 4) } else { (1, 40) };
        for k in (-600i32..=600).step_by(step) {
            let c = k as f32 * 0.5;
            for dir in [1.0f32, -1.0] {
                let mut x = c;
                for _ in 0..ulps {
                    for zp in [-128i8, -1, 0, 1, 127] {
                        same(x, 1.0, zp);
                        same(x * 0.5, 0.5, zp);
                    }
                    x = libm::nextafterf(x, dir * f32::INFINITY);
                }
            }
        }
    }

    /// Every `f32` bit pattern, at scales 1 and 0.1 and zero points −128,
    /// −3 and 127 (under a minute in release, so not in the default run):
    /// `cargo test --release -p tinygnn --lib -- --ignored every_f32`.
    #[test]
    #[ignore]
    fn quantize_slice_matches_quantize_value_on_every_f32() {
        let mut xs = vec![0f32; 1 << 16];
        let mut out = vec![0i8; 1 << 16];
        for scale in [1.0f32, 0.1] {
            for zp in [-128i8, -3, 127] {
                for hi in 0u32..1 << 16 {
                    for (lo, x) in xs.iter_mut().enumerate() {
                        *x = f32::from_bits(hi << 16 | lo as u32);
                    }
                    quantize_slice(&mut out, &xs, scale, zp);
                    for (&x, &o) in xs.iter().zip(&out) {
                        assert_eq!(
                            o,
                            quantize_value(x, scale, zp),
                            "x {:#x} scale {scale} zp {zp}",
                            x.to_bits()
                        );
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn quantize_slice_matches_quantize_value(
            bits in proptest::collection::vec(proptest::prelude::any::<u32>(), 1..40),
            scale_bits in proptest::prelude::any::<u32>(),
            small in proptest::prelude::any::<bool>(),
            zp in proptest::prelude::any::<i8>(),
        ) {
            // Arbitrary bit patterns, or values near the int8 range.
            let xs: Vec<f32> = bits
                .iter()
                .map(|&b| if small { (b as i32 as f32) * 1.0e-7 } else { f32::from_bits(b) })
                .collect();
            // Any positive scale (the format's), and any bit pattern.
            let s = f32::from_bits(scale_bits & 0x7fff_ffff);
            let scales = [if s.is_finite() && s > 0.0 { s } else { 0.01 }, f32::from_bits(scale_bits)];
            for &sc in &scales {
                let mut out = vec![0i8; xs.len()];
                quantize_slice(&mut out, &xs, sc, zp);
                for (&x, &o) in xs.iter().zip(&out) {
                    proptest::prop_assert_eq!(o, quantize_value(x, sc, zp), "x {:#x} scale {:#x}", x.to_bits(), sc.to_bits());
                }
            }
        }
    }

    #[test]
    fn edge_weights_q16() {
        assert_eq!(edge_weight_q16(1.0), Some(65536));
        assert_eq!(edge_weight_q16(0.0), Some(0));
        assert_eq!(edge_weight_q16(0.5), Some(32768));
        assert_eq!(edge_weight_q16(65535.0), Some(0xFFFF_0000));
        assert_eq!(edge_weight_q16(65535.5), None);
        assert_eq!(edge_weight_q16(-0.1), None);
        assert_eq!(edge_weight_q16(f32::NAN), None);
        assert_eq!(edge_weight_q16(f32::INFINITY), None);
        // 1.5 / 65536 rounds half away from zero.
        assert_eq!(edge_weight_q16(1.5 / 65536.0), Some(2));
    }

    #[test]
    fn num_graphs() {
        let g = GraphInput::new(3, Features::I8(&[0, 0, 0]), &[], &[]);
        assert_eq!(g.num_graphs(), 1);
        assert_eq!(g.with_batch(&[0, 2, 2]).num_graphs(), 3);
        assert_eq!(g.with_batch(&[]).num_graphs(), 1);
    }
}
