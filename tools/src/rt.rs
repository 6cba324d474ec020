//! The one place the host tool calls the runtime's execution engine
//! (`tinygnn::Session`): arena sizing and host simulation.

use anyhow::{bail, Result};
use tinygnn::Model;

use crate::st::Graphs;

/// Whether this build can execute models (the runtime has `Session`).
pub const AVAILABLE: bool = false;

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

/// Arena bytes needed for `nodes`, `edges`, `graphs`, if the runtime can tell.
pub fn arena_bytes(
    _model: &Model<'_>,
    _nodes: usize,
    _edges: usize,
    _graphs: usize,
) -> Option<usize> {
    None
}

/// Runs the model on the graphs with the runtime and returns the first output.
pub fn run(_model: &Model<'_>, _g: &Graphs) -> Result<RunOutput> {
    bail!("this build has no runtime execution engine yet (tinygnn::Session)")
}
