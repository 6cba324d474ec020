//! The one place that touches the runtime's execution API: bundle samples
//! become [`GraphInput`]s, arena sizes come from [`Model::arena_bytes`]
//! (or [`Model::arena_bytes_sparse`] for sparse features).

use crate::bundle::{Features as BundleFeatures, Sample};
use tinygnn::graph::{EdgeAttr, Features, GraphInput};
use tinygnn::Model;

/// Which engine this build uses.
pub const ENGINE: &str = "session";

/// The runtime input of a bundle sample.
pub fn graph_input<'a>(s: &'a Sample<'a>) -> GraphInput<'a> {
    let features = match s.features {
        BundleFeatures::F32(f) => Features::F32(f),
        BundleFeatures::I8(f) => Features::I8(f),
        BundleFeatures::SparseI8 {
            row_ptr,
            cols,
            values,
        } => Features::SparseI8 {
            row_ptr,
            cols,
            values,
        },
    };
    let mut input = GraphInput::new(usize::from(s.nodes), features, s.sources, s.targets);
    input.edge_weight = s.edge_weight;
    input.batch = s.batch;
    input.edge_attr = s.edge_attr.map(EdgeAttr::F32);
    input.pairs = s
        .pairs
        .map(|(sources, targets)| tinygnn::NodePairs { sources, targets });
    input.hyperedges = s.hyperedges;
    input
}

/// Arena bytes sample `s` needs (the arena must start 8-aligned):
/// [`Model::arena_bytes_sparse`] for sparse features (the runtime reads them
/// in place when the model allows it, so the dense input takes no arena),
/// [`Model::arena_bytes`] otherwise.
pub fn required_arena(model: &Model<'_>, s: &Sample<'_>) -> usize {
    let (n, e, g) = (
        usize::from(s.nodes),
        s.edges as usize,
        usize::from(s.graphs),
    );
    match s.features {
        BundleFeatures::SparseI8 { .. } => model.arena_bytes_sparse(n, e, g),
        _ => model.arena_bytes(n, e, g),
    }
}

/// The arena at which every op runs sample `s` at its full width
/// ([`Model::wide_arena_bytes`]; the fastest, never less than
/// [`required_arena`]).
pub fn wide_arena(model: &Model<'_>, s: &Sample<'_>) -> usize {
    let (n, e, g) = (
        usize::from(s.nodes),
        s.edges as usize,
        usize::from(s.graphs),
    );
    let sparse = matches!(s.features, BundleFeatures::SparseI8 { .. });
    model.wide_arena_bytes(n, e, g, sparse)
}

/// Bytes the firmware keeps for a recurrent model's state in front of the
/// arena (see [`crate::run`]): [`Model::state_bytes`] of a `nodes`-node
/// graph rounded up to 16, so the session's arena after it stays aligned;
/// 0 for a model without state.
pub fn state_region(model: &Model<'_>, nodes: usize) -> usize {
    model.state_bytes(nodes).div_ceil(16) * 16
}
