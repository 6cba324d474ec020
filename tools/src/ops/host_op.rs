//! [`HostOp`]: what the host tool knows about one kind of spec op.

use anyhow::Result;
use tinygnn::format::{Op, TensorDesc};

use super::common::{BatchNorm, Mat, Parse, Rows, Tensor};
use crate::lower::Lower;
use crate::st::Graphs;

/// What the host tool knows about one kind of spec op. Only [`HostOp::parse`],
/// the names, [`HostOp::reference`] and [`HostOp::lower`] are required; the
/// rest describe how fusion and the weight step treat the op and default to
/// "not at all".
pub trait HostOp: Sized {
    /// The spec type names this kind reads (`gcn_conv`, …).
    const TYPES: &'static [&'static str];

    /// How many inputs a spec op of type `ty` takes (`None`: one or more).
    fn arity(_ty: &str) -> Option<usize> {
        Some(1)
    }

    /// Parses one spec op whose type is in [`HostOp::TYPES`]: the op, the row
    /// kind and the channels of its output.
    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)>;

    /// The spec type name.
    fn type_name(&self) -> &'static str;

    /// The device op it becomes (the runtime's `Op::name`).
    fn device_name(&self) -> &'static str;

    /// The float reference on the op's inputs (PyG's eval semantics).
    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor;

    /// Further named tensors calibration needs (a per-edge hidden vector).
    fn extra_values(&self, _name: &str, _ins: &[&Tensor], _g: &Graphs) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// The op with its flags as the device reads them (fusion calls this).
    fn for_device(self) -> Self {
        self
    }

    /// Folds an eval BatchNorm that follows the op into its weights; false
    /// (and nothing changed) if it cannot.
    fn fold_bn(&mut self, _bn: &BatchNorm) -> bool {
        false
    }

    /// Whether an activation that follows the op fuses into it.
    fn fuses_act(&self) -> bool {
        false
    }

    /// Whether the op has weights a `--weights` plan can name.
    fn has_weights(&self) -> bool {
        false
    }

    /// The weight matrices that may share one scale (`--weight-scales`).
    fn scaled_mats(&self) -> Option<Vec<&Mat>> {
        None
    }

    /// For sequential int4 rounding, the input the op's weights multiply,
    /// computed from its input `x`; `None` if that rounding does not apply.
    fn feedback_input(&self, _x: &Tensor, _g: &Graphs) -> Option<Tensor> {
        None
    }

    /// Whether the output is the weights' plain projection (its range can be
    /// re-measured after sequential rounding).
    fn output_is_projection(&self) -> bool {
        true
    }

    /// The output's (scale, zero point) when the op fixes it; `None`: from
    /// the calibrated range.
    fn fixed_output(&self, _input: &TensorDesc) -> Option<(f32, i8)> {
        None
    }

    /// The op computing only output channels `keep` (in that order), for
    /// per-channel weight precision (`crate::split`); `None` when its output
    /// channels do not depend on disjoint weights (or it has no such form).
    fn take_channels(&self, _keep: &[usize]) -> Option<Self> {
        None
    }

    /// The op reading its (single) input with the channels reordered: new
    /// input channel `j` is old channel `perm[j]`. `None` when the op cannot.
    fn permute_input(&self, _perm: &[usize]) -> Option<Self> {
        None
    }

    /// Quantizes the op and writes its device op.
    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op>;
}
