//! The context one fused op is lowered in ([`Lower`]): where its
//! inputs and output live and how they are quantized, the model writer, the
//! weight step, and the byte counts and warnings of the conversion. Every op
//! family's `lower` (see [`crate::ops::HostOp::lower`]) writes its sections
//! through it, so the size report counts every byte the same way.

use anyhow::{anyhow, bail, Result};
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Section, TensorDesc};

use crate::prec::Prec;
use tinygnn::quant::quantize_multiplier;

use crate::ops::common::{Mat, Range};
use crate::weights::{scale_floor, Hook, Layer, LayerWeights, WeightStep};

/// Bytes a conversion wrote, by kind (the size report).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes {
    /// Weight bytes (int8 or packed int4).
    pub weight: usize,
    /// Channel parameters and tables as written.
    pub param: usize,
    /// Of those, the biases alone (4 per output channel).
    pub bias: usize,
}

/// One fused op being lowered.
pub struct Lower<'a, 'b> {
    /// `op 'NAME' (a → b)`: the prefix of every error and warning.
    pub who: String,
    /// The layer (names, first input) as the weight step knows it.
    pub layer: Layer<'a>,
    /// Output channels.
    pub channels: usize,
    /// Tensor ids of the inputs.
    pub in_ids: Vec<u8>,
    /// Their descriptors.
    pub in_desc: Vec<TensorDesc>,
    /// Tensor id of the output.
    pub output: u8,
    /// Its descriptor.
    pub out_desc: TensorDesc,
    /// Scale of the first input.
    pub s_in: f64,
    /// Scale of the output.
    pub s_out: f64,
    /// The fused activation.
    pub act: Activation,
    /// The edge-feature input's tensor id, if the model has one.
    pub edge_attr: Option<u8>,
    /// The calibrated range of a named tensor.
    pub range: &'a dyn Fn(&str) -> Result<Range>,
    /// Sequential int4 rounding.
    pub hook: &'a Hook<'a>,
    pub(crate) w: &'a mut ModelWriter,
    pub(crate) step: &'a mut WeightStep<'b>,
    pub(crate) bytes: &'a mut Bytes,
    pub(crate) warnings: &'a mut Vec<String>,
}

impl Lower<'_, '_> {
    /// The first input's tensor id.
    pub fn input(&self) -> u8 {
        self.in_ids[0]
    }

    /// Records a warning (precision lost, not an error).
    pub fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// `x` in Q16, or an error naming the op.
    pub fn q16(&self, x: f64) -> Result<i32> {
        let v = (x * 65536.0).round();
        if v.is_nan() || v.abs() > i32::MAX as f64 {
            bail!("{}: Q16 multiplier {x} out of range", self.who);
        }
        Ok(v as i32)
    }

    /// The edge input's tensor id and scale.
    pub fn edge_input(&self) -> Result<(u8, f64)> {
        let id = self
            .edge_attr
            .ok_or_else(|| anyhow!("{}: the spec has no edge input", self.who))?;
        Ok((id, self.w.tensors()[id as usize].scale as f64))
    }

    /// The layer's weights: precision and scales by the plan (one per tensor
    /// if `per_tensor`), `mats` rounded to nearest over the bias `floors`.
    pub fn quantize(&mut self, mats: &[&Mat], floors: &[f64], per_tensor: bool) -> LayerWeights {
        self.step.quantize(&self.layer, mats, floors, per_tensor)
    }

    /// int4 rounding beyond nearest (GPFQ, or the sequential hook when
    /// `sequential`; the hook may correct the bias `b`).
    pub fn round_int4(
        &self,
        mats: &[&Mat],
        floors: &[f64],
        lw: &mut LayerWeights,
        sequential: bool,
        b: &mut Vec<f64>,
    ) {
        let hook = sequential.then_some(self.hook);
        self.step.round_int4(&self.layer, mats, floors, lw, hook, b);
    }

    /// Records the layer's precision when it is decided outside [`Self::quantize`].
    pub fn record_bits(&mut self, bits: Prec, weights: usize) {
        self.step
            .layer_bits
            .push((self.layer.report_name().to_string(), bits));
        self.step
            .layer_weights
            .push((self.layer.report_name().to_string(), weights));
    }

    /// Warns about channels whose bias saturates i32 or whose rescale
    /// `s_in·s_w/s_out` underflows to 0 (not checked with `normalize`).
    pub fn check_records_at(
        &mut self,
        scales: &[f64],
        b: &[f64],
        (s_in, s_out): (f64, f64),
        normalize: bool,
    ) {
        for (c, (&sw, &bias)) in scales.iter().zip(b).enumerate() {
            let q = bias / (s_in * sw);
            if q.abs() > i32::MAX as f64 {
                self.warnings.push(format!(
                    "{}: channel {c}: bias {bias} saturates the i32 accumulator",
                    self.who
                ));
            }
            if !normalize && quantize_multiplier(s_in * sw / s_out).0 == 0 {
                self.warnings.push(format!(
                    "{}: channel {c}: rescale {:e} underflows; the channel outputs its zero point",
                    self.who,
                    s_in * sw / s_out
                ));
            }
        }
    }

    /// [`Self::check_records_at`] from the op's input to its output.
    pub fn check_records(&mut self, scales: &[f64], b: &[f64], normalize: bool) {
        let io = (self.s_in, self.s_out);
        self.check_records_at(scales, b, io, normalize);
    }

    /// The records of channels accumulating in `s_in·scales[c]` and
    /// rescaling to the output.
    pub fn records(&self, scales: &[f64], b: &[f64]) -> Vec<ChannelRecord> {
        channel_records(scales, b, self.s_in, self.s_out)
    }

    /// Writes one or two weight matrices (`cols` columns each) at the
    /// layer's precision; the second section is empty for one matrix.
    pub fn add_weights(&mut self, lw: &LayerWeights, cols: usize) -> Result<(Section, Section)> {
        let mut secs = [Section::default(); 2];
        if lw.q.len() > secs.len() {
            bail!("{}: {} weight matrices, at most 2", self.who, lw.q.len());
        }
        for (sec, q) in secs.iter_mut().zip(&lw.q) {
            *sec = self
                .w
                .add_weights(lw.bits.format(), q, cols)
                .map_err(|e| anyhow!("{}: {e}", self.who))?;
            self.bytes.weight += sec.weight_bytes().len as usize;
        }
        Ok((secs[0], secs[1]))
    }

    /// The path of a layer with weights `mats` (one or two, on the same
    /// input) and bias `b`: scales by the plan over the bias floors, int4
    /// rounding (sequential where the hook decides the layer), the records
    /// checked and written. With `normalize` (SAGE's L2 normalisation) the
    /// scale is one per tensor and the records carry no rescale. Returns the
    /// weight sections and the params.
    pub fn weighted(
        &mut self,
        mats: &[&Mat],
        b: &[f64],
        normalize: bool,
    ) -> Result<(Section, Section, Section)> {
        let s_out = (!normalize).then_some(self.s_out);
        let floors: Vec<f64> = b
            .iter()
            .map(|&x| scale_floor(x, self.s_in, s_out))
            .collect();
        let mut lw = self.quantize(mats, &floors, normalize);
        let mut b = b.to_vec();
        self.round_int4(mats, &floors, &mut lw, true, &mut b);
        self.check_records(&lw.scales, &b, normalize);
        let (w0, w1) = self.add_weights(&lw, mats[0].cols)?;
        let mut recs = self.records(&lw.scales, &b);
        if normalize {
            for r in &mut recs {
                r.mult = 0;
                r.shift = 0;
            }
        }
        let params = self.add_params(&recs);
        Ok((w0, w1, params))
    }

    /// Writes int8 weights.
    pub fn add_i8(&mut self, q: &[i8]) -> Section {
        self.bytes.weight += q.len();
        self.w.add_i8(q)
    }

    /// Writes channel records.
    pub fn add_params(&mut self, recs: &[ChannelRecord]) -> Section {
        let params = self.w.add_channel_params(recs);
        self.bytes.param += params.len as usize;
        self.bytes.bias += 4 * recs.len();
        params
    }

    /// Writes a table or other parameter bytes.
    pub fn add_table(&mut self, bytes: &[u8]) -> Section {
        let sec = self.w.add_bytes(bytes);
        self.bytes.param += sec.len as usize;
        sec
    }
}

/// One output channel's record: `bias` in the accumulator scale `acc`
/// (saturating i32) and the fixed-point multiplier of `rescale`.
pub fn channel_record(bias: f64, acc: f64, rescale: f64) -> ChannelRecord {
    let (mult, shift) = quantize_multiplier(rescale);
    ChannelRecord {
        bias: (bias / acc).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        mult,
        shift,
    }
}

/// The records of a layer whose channel `c` accumulates in the scale
/// `s_in·scales[c]` and rescales to `s_out`.
pub fn channel_records(scales: &[f64], b: &[f64], s_in: f64, s_out: f64) -> Vec<ChannelRecord> {
    scales
        .iter()
        .zip(b)
        .map(|(&sw, &bias)| {
            let acc = s_in * sw;
            channel_record(bias, acc, acc / s_out)
        })
        .collect()
}

/// The little-endian bytes of a table of i16 or i32 (`to_le_bytes`).
pub fn le_bytes<T: Copy, const N: usize>(v: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| to_le(x)).collect()
}
