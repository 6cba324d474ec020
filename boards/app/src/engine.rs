//! The one place that calls the runtime's execution API.
//!
//! Until the runtime's `Session` lands, the "inference" re-validates the model
//! (decodes every op) and produces no output rows, so the board
//! infrastructure (embedding, reporting, cost counting, sizes) can be
//! exercised end to end. `ENGINE` says which one a firmware was built with.

use crate::bundle::Sample;
use tinygnn::Model;

/// Which engine this build uses (`validate-only` until the session API lands).
pub const ENGINE: &str = "validate-only";

/// The output of one inference: int8 rows, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// `rows × channels` bytes.
    pub data: &'a [i8],
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels per row.
    pub channels: usize,
    /// Output scale.
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i8,
}

/// Arena bytes sample `s` needs.
pub fn required_arena(_model: &Model<'_>, _s: &Sample<'_>) -> usize {
    0
}

/// Runs one sample.
pub fn infer<'a>(
    model: &Model<'_>,
    _s: &Sample<'_>,
    _arena: &'a mut [u8],
) -> Result<Outcome<'a>, tinygnn::Error> {
    // Decode every op again: real work proportional to the model, no output.
    let ops = model.ops().count();
    if ops != model.num_ops() {
        return Err(tinygnn::Error::BadMetadata);
    }
    let d = model.input_desc();
    Ok(Outcome {
        data: &[],
        rows: 0,
        channels: usize::from(d.channels),
        scale: d.scale,
        zero_point: d.zero_point,
    })
}
