//! The one place the host tool calls the runtime's execution engine
//! (`tinygnn::Session`): arena sizing and host simulation.

use anyhow::{anyhow, Result};
use tinygnn::graph::{Features, GraphInput};
use tinygnn::{Model, Output, Session};

use crate::st::Graphs;

/// Whether this build can execute models (the runtime has `Session`).
pub const AVAILABLE: bool = true;

/// The int8 output of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// Row-major int8 values.
    pub data: Vec<i8>,
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Output scale.
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i8,
}

impl RunOutput {
    /// Dequantized value.
    pub fn dequantize(&self, r: usize, c: usize) -> f64 {
        self.scale as f64
            * (self.data[r * self.channels + c] as i32 - self.zero_point as i32) as f64
    }

    /// Index of the largest value of row `r` (first on ties).
    pub fn argmax(&self, r: usize) -> usize {
        let row = &self.data[r * self.channels..(r + 1) * self.channels];
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = i;
            }
        }
        best
    }
}

/// Arena bytes needed for `nodes`, `edges`, `graphs` (8-aligned arena).
pub fn arena_bytes(model: &Model<'_>, nodes: usize, edges: usize, graphs: usize) -> Option<usize> {
    Some(model.arena_bytes(nodes, edges, graphs))
}

/// The runtime's view of the graphs.
pub fn graph_input(g: &Graphs) -> GraphInput<'_> {
    GraphInput {
        num_nodes: g.num_nodes,
        features: Features::F32(&g.x),
        sources: &g.sources,
        targets: &g.targets,
        edge_weight: g.edge_weight.as_deref(),
        batch: g.has_batch.then_some(&g.batch[..]),
    }
}

/// Runs the model on the graphs with the runtime and returns the first output.
/// `trace` is called after every op with its index and int8 output.
pub fn run_traced(
    model: &Model<'_>,
    g: &Graphs,
    mut trace: impl FnMut(usize, &RunOutput),
) -> Result<RunOutput> {
    let need = model.arena_bytes(g.num_nodes, g.num_edges(), g.num_graphs);
    // +8: the arena need not start 8-aligned.
    let mut arena = vec![0u8; need.saturating_add(8)];
    let mut session = Session::new(model, &mut arena);
    let to_owned = |o: &Output<'_>| RunOutput {
        data: o.data.to_vec(),
        rows: o.rows,
        channels: o.channels,
        scale: o.scale,
        zero_point: o.zero_point,
    };
    let input = graph_input(g);
    let out = session
        .run_inspect(&input, |i, o| trace(i, &to_owned(&o)))
        .map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(to_owned(&out))
}

/// Runs the model on the graphs with the runtime and returns the first output.
pub fn run(model: &Model<'_>, g: &Graphs) -> Result<RunOutput> {
    run_traced(model, g, |_, _| {})
}
