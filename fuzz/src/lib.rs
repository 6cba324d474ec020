//! Shared pieces of the fuzz targets: an arbitrary input graph, a guarded
//! runner that checks the runtime's memory promises, and the fixed models the
//! graph-validation target runs.
//!
//! What every target asserts (a violation aborts the fuzzer with a crash):
//! * nothing panics (a panic is a crash);
//! * a run in an arena of at least `arena_bytes` (+ alignment slack) never
//!   reports `ArenaTooSmall`, and a successful run never had a smaller arena;
//! * the bytes around the arena are untouched (64 guard bytes each side);
//! * the result does not depend on the arena's prior contents (two runs, one
//!   in a zero-filled and one in a 0xFF-filled arena, agree exactly).

use arbitrary::{Arbitrary, Unstructured};
use tinygnn::{Error, Features, GraphInput, Model, Session};

/// Largest arena a fuzz run allocates; bigger needs are skipped (not run).
pub const MAX_ARENA: usize = 4 << 20;
/// Largest node count the "fit" graphs use (keeps each execution fast).
pub const MAX_FIT_NODES: usize = 64;
/// Largest feature count (nodes × channels) of a "fit" graph.
pub const MAX_FIT_FEATURES: usize = 1 << 14;

const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xC3;

/// Features as the fuzzer gives them.
#[derive(Debug, Arbitrary)]
pub enum FuzzFeatures {
    /// Float features as given (length rarely right: exercises `FeatureShape`).
    F32(Vec<f32>),
    /// int8 features as given.
    I8(Vec<i8>),
    /// Sparse CSR features as given.
    Sparse {
        /// Row offsets.
        row_ptr: Vec<u32>,
        /// Columns.
        cols: Vec<u16>,
        /// Values.
        values: Vec<i8>,
    },
    /// Float features of exactly the right length, cycling these values.
    FitF32(Vec<f32>),
    /// int8 features of exactly the right length, cycling these values.
    FitI8(Vec<i8>),
}

/// An input graph as the fuzzer gives it. With `fit`, indices are reduced
/// modulo the node count, the batch vector gets one sorted entry per node and
/// the node count is kept small, so that most inputs pass validation and run;
/// without it everything is passed through as is.
#[derive(Debug, Arbitrary)]
pub struct FuzzGraph {
    /// Node count (reduced when `fit`).
    pub num_nodes: u16,
    /// Features.
    pub features: FuzzFeatures,
    /// Edge sources.
    pub sources: Vec<u16>,
    /// Edge targets.
    pub targets: Vec<u16>,
    /// Edge weights.
    pub edge_weight: Option<Vec<f32>>,
    /// Graph of each node.
    pub batch: Option<Vec<u16>>,
    /// Edge features (`edge_attr`; with `fit`, cycled to `edges × D` for a
    /// model with an edge-feature input).
    pub edge_attr: Option<Vec<f32>>,
    /// Hyperedges (`hyperedge_index` rows and `hyperedge_weight`; with `fit`,
    /// nodes reduced modulo the node count, hyperedges modulo 8, both rows
    /// cut to the same length, the weights cycled to the hyperedge count,
    /// finite and positive).
    pub hyperedges: Option<FuzzHyperedges>,
    /// Make the graph fit the model (see above).
    pub fit: bool,
    /// Arena size relative to the need: `Exact`, short or long by some bytes.
    pub arena: ArenaSize,
}

/// Hyperedges: `(nodes, hyperedges, weights)`.
pub type FuzzHyperedges = (Vec<u16>, Vec<u16>, Option<Vec<f32>>);

/// How big the arena is, relative to `arena_bytes`.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ArenaSize {
    /// Exactly `arena_bytes`, 8-aligned.
    Exact,
    /// That many bytes less.
    Short(u16),
    /// That many bytes more, at an offset of `misalign % 8` from 8-alignment.
    Long(u16, u8),
}

/// A graph with owned buffers, ready to become a [`GraphInput`].
#[derive(Debug, Clone)]
pub struct Graph {
    /// Nodes.
    pub n: usize,
    /// Features.
    pub features: OwnedFeatures,
    /// Sources.
    pub src: Vec<u16>,
    /// Targets.
    pub dst: Vec<u16>,
    /// Edge weights.
    pub w: Option<Vec<f32>>,
    /// Batch vector.
    pub batch: Option<Vec<u16>>,
    /// Edge features, row-major `[edges, D]`.
    pub edge_attr: Option<Vec<f32>>,
    /// Hyperedges.
    pub hyperedges: Option<FuzzHyperedges>,
}

/// Owned features.
#[derive(Debug, Clone)]
pub enum OwnedFeatures {
    /// Float.
    F32(Vec<f32>),
    /// int8.
    I8(Vec<i8>),
    /// Sparse.
    Sparse(Vec<u32>, Vec<u16>, Vec<i8>),
}

impl Graph {
    /// The borrowed input.
    pub fn input(&self) -> GraphInput<'_> {
        let features = match &self.features {
            OwnedFeatures::F32(v) => Features::F32(v),
            OwnedFeatures::I8(v) => Features::I8(v),
            OwnedFeatures::Sparse(r, c, v) => Features::SparseI8 {
                row_ptr: r,
                cols: c,
                values: v,
            },
        };
        let mut input = GraphInput::new(self.n, features, &self.src, &self.dst);
        input.edge_weight = self.w.as_deref();
        input.batch = self.batch.as_deref();
        input.edge_attr = self.edge_attr.as_deref().map(tinygnn::EdgeAttr::F32);
        input.hyperedges =
            self.hyperedges
                .as_ref()
                .map(|(nodes, edges, weight)| tinygnn::Hyperedges {
                    nodes,
                    edges,
                    weight: weight.as_deref(),
                });
        input
    }
}

fn cycle<T: Copy + Default>(v: &[T], len: usize) -> Vec<T> {
    if v.is_empty() {
        return vec![T::default(); len];
    }
    v.iter().copied().cycle().take(len).collect()
}

impl FuzzGraph {
    /// The graph for `model` (see [`FuzzGraph`]).
    pub fn build(&self, model: &Model<'_>) -> Graph {
        let f = usize::from(model.input_desc().channels);
        let mut n = usize::from(self.num_nodes);
        if self.fit {
            let (max_n, _, _) = model.capacity();
            let cap = (max_n as usize + 1)
                .min(MAX_FIT_NODES)
                .min(MAX_FIT_FEATURES / f.max(1));
            n %= cap.max(1);
        }
        let fix = |v: &[u16]| -> Vec<u16> {
            if self.fit && n > 0 {
                v.iter().map(|&i| (usize::from(i) % n) as u16).collect()
            } else {
                v.to_vec()
            }
        };
        let (mut src, mut dst) = (fix(&self.sources), fix(&self.targets));
        if self.fit {
            let e = src.len().min(dst.len());
            src.truncate(e);
            dst.truncate(e);
            if n == 0 {
                src.clear();
                dst.clear();
            }
        }
        let w = match (&self.edge_weight, self.fit) {
            (Some(w), true) => Some(
                cycle(w, src.len())
                    .into_iter()
                    .map(|x| if x.is_finite() { x.abs() % 8.0 } else { x })
                    .collect(),
            ),
            (w, _) => w.clone(),
        };
        let batch = match (&self.batch, self.fit) {
            (Some(b), true) => {
                let mut b = cycle(b, n);
                for g in &mut b {
                    *g %= 8;
                }
                b.sort_unstable();
                Some(b)
            }
            (b, _) => b.clone(),
        };
        // Right length for up to 4 × MAX_FIT_NODES nodes (n is not reduced
        // without `fit`); bigger graphs would make executions slow.
        let fit_len = if n <= 4 * MAX_FIT_NODES {
            n.saturating_mul(f).min(4 * MAX_FIT_FEATURES)
        } else {
            0
        };
        let features = match &self.features {
            FuzzFeatures::F32(v) => OwnedFeatures::F32(v.clone()),
            FuzzFeatures::I8(v) => OwnedFeatures::I8(v.clone()),
            FuzzFeatures::Sparse {
                row_ptr,
                cols,
                values,
            } => OwnedFeatures::Sparse(row_ptr.clone(), cols.clone(), values.clone()),
            // Right length, unless absurd (n is not reduced without `fit`).
            FuzzFeatures::FitF32(v) => OwnedFeatures::F32(cycle(v, fit_len)),
            FuzzFeatures::FitI8(v) => OwnedFeatures::I8(cycle(v, fit_len)),
        };
        let edge_dim = model
            .edge_input()
            .and_then(|t| model.tensors().get(usize::from(t)))
            .map(|d| usize::from(d.channels));
        let edge_attr = match (&self.edge_attr, self.fit, edge_dim) {
            (Some(a), true, Some(d)) if src.len() <= MAX_FIT_FEATURES => {
                Some(cycle(a, src.len() * d))
            }
            (a, _, _) => a.clone(),
        };
        let hyperedges = match (&self.hyperedges, self.fit) {
            (Some((nodes, edges, weight)), true) if n > 0 => {
                let len = nodes.len().min(edges.len()).min(MAX_FIT_FEATURES);
                let nodes = nodes[..len]
                    .iter()
                    .map(|&v| (usize::from(v) % n) as u16)
                    .collect();
                let edges: Vec<u16> = edges[..len].iter().map(|&e| e % 8).collect();
                let m = edges.iter().map(|&e| usize::from(e) + 1).max().unwrap_or(0);
                let weight = weight.as_ref().map(|w| {
                    cycle(w, m)
                        .into_iter()
                        .map(|x| {
                            if x.is_finite() {
                                x.abs() % 8.0 + 0.125
                            } else {
                                1.0
                            }
                        })
                        .collect()
                });
                Some((nodes, edges, weight))
            }
            (h, _) => h.clone(),
        };
        Graph {
            n,
            features,
            src,
            dst,
            w,
            batch,
            edge_attr,
            hyperedges,
        }
    }
}

/// The outcome of a run: the error, or the bytes of every output.
pub type Outcome = Result<Vec<Vec<i8>>, Error>;

/// Runs `model` on `g` with an arena sized by `size` relative to
/// `arena_bytes`, surrounded by guard bytes, twice (arena pre-filled with
/// 0x00, then 0xFF), and asserts the promises listed in the crate docs.
/// Returns `None` when the need exceeds [`MAX_ARENA`] (not run).
pub fn guarded_run(model: &Model<'_>, g: &Graph, size: ArenaSize) -> Option<Outcome> {
    let input = g.input();
    // The exact need: sparse features that the model reads in place need no
    // dense input tensor (`arena_bytes_sparse`, never more than `arena_bytes`).
    let (n, e, graphs) = (input.num_nodes, input.sources.len(), input.num_graphs());
    let need = match input.features {
        Features::SparseI8 { .. } => model.arena_bytes_sparse(n, e, graphs),
        _ => model.arena_bytes(n, e, graphs),
    };
    // The graph is validated before the arena is looked at: an input error
    // shows with an empty arena, and needs no allocation.
    match Session::new(model, &mut []).run(&input) {
        Err(Error::ArenaTooSmall { .. }) => {}
        Err(e) => return Some(Err(e)),
        Ok(_) => assert_eq!(need, 0, "ran in an empty arena, arena_bytes says {need}"),
    }
    if need > MAX_ARENA {
        return None;
    }
    let (len, misalign) = match size {
        ArenaSize::Exact => (need, 0),
        ArenaSize::Short(k) => (need.saturating_sub(usize::from(k)), 0),
        ArenaSize::Long(k, m) => (need + usize::from(k), usize::from(m % 8)),
    };
    let first = run_once(model, &input, len, misalign, 0x00);
    let second = run_once(model, &input, len, misalign, 0xFF);
    assert_eq!(
        first, second,
        "the result depends on the arena's prior contents"
    );
    // Needed: arena_bytes plus the slack to align this arena's start.
    let slack = (8 - misalign) % 8;
    match &first {
        Ok(_) => assert!(
            len >= need + slack,
            "ran in {len} bytes, arena_bytes says {need} + {slack}"
        ),
        Err(Error::ArenaTooSmall { needed, .. }) => {
            assert!(
                len < need + slack,
                "ArenaTooSmall with {len} ≥ {need} + {slack} bytes"
            );
            assert_eq!(
                *needed as usize,
                need + slack,
                "ArenaTooSmall reports a wrong need"
            );
        }
        Err(_) => {}
    }
    Some(first)
}

fn run_once(
    model: &Model<'_>,
    input: &GraphInput<'_>,
    len: usize,
    misalign: usize,
    fill: u8,
) -> Outcome {
    let mut buf = vec![GUARD_BYTE; len + 2 * GUARD + 16];
    let start = GUARD + buf[GUARD..].as_ptr().align_offset(8) + misalign;
    buf[start..start + len].fill(fill);
    let res = {
        let mut s = Session::new(model, &mut buf[start..start + len]);
        match s.run(input) {
            Ok(_) => Ok((0..model.outputs().len())
                .map(|i| s.output(i).map(|o| o.data.to_vec()).unwrap_or_default())
                .collect()),
            Err(e) => Err(e),
        }
    };
    let bad = buf[..start]
        .iter()
        .chain(&buf[start + len..])
        .position(|&b| b != GUARD_BYTE);
    assert!(
        bad.is_none(),
        "guard byte {bad:?} next to the arena overwritten"
    );
    res
}

/// Everything the public API offers on a model that validated, exercised once.
pub fn touch_model(model: &Model<'_>) {
    let (n, e, g) = model.capacity();
    for (n, e, g) in [
        (0, 0, 1),
        (1, 1, 1),
        (n as usize, e as usize, g as usize),
        (usize::MAX, usize::MAX, usize::MAX),
    ] {
        let _ = model.arena_bytes(n, e, g);
    }
    assert_eq!(
        model.ops().count(),
        model.num_ops(),
        "a validated op fails to decode"
    );
    let _ = (model.tensors(), model.outputs(), model.input_desc());
}

/// Splits fuzzer data of the `inference` target: a `u32` little-endian
/// model length, the model bytes, then the graph (arbitrary).
pub fn split_model(data: &[u8]) -> Option<(&[u8], Unstructured<'_>)> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let model = data.get(4..4usize.checked_add(len)?)?;
    Some((model, Unstructured::new(data.get(4 + len..)?)))
}

/// `bytes` with the header's length field and CRC made to agree with the
/// bytes, so that a mutation gets past the checksum to the checks behind it
/// (sections, tensors, ops, their parameters). Inputs shorter than a header
/// stay as they are.
pub fn with_valid_checksum(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if let (Some(len), Ok(n)) = (b.get_mut(8..12), u32::try_from(bytes.len())) {
        len.copy_from_slice(&n.to_le_bytes());
    }
    tinygnn::format::writer::fix_crc(&mut b);
    b
}

/// The fixed models the `graph_validate` target chooses from (by its first byte).
pub fn fixed_models() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../models/karate-gcn/karate-gcn.tgnn").to_vec(),
        include_bytes!("../../models/digits-gin/digits-gin.tgnn").to_vec(),
        tinygnn_testkit::every_op_model(),
        tinygnn_testkit::edge_op_model(),
        tinygnn_testkit::hyper_op_model(),
        tinygnn_testkit::cheb_op_model(),
    ]
}
