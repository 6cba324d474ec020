//! Descriptors stored in the model metadata: tensors and ops.
//!
//! These types are postcard-encoded in the metadata section (see
//! `docs/format.md`). They are plain values: weights are never inside them,
//! only [`Section`]s pointing into the data section, which is read in place.
//!
//! # Conventions used by every op
//! * A tensor id is a `u8` index into the model's tensor table.
//! * `x − zp` means an int8 value minus its tensor's zero point, as `i32`.
//! * `requant(acc, c)` is
//!   `quant::multiply_by_quantized_multiplier(acc, mult[c], shift[c])`, with
//!   `mult`/`shift` taken from the op's [`ChannelParams`] section.
//! * The fused activation is applied to the `i32` accumulator *after* bias and
//!   before requantization: ReLU as `max(acc, 0)`, LeakyReLU as
//!   `acc < 0 ? round_shift(acc · alpha_q16, 16) : acc`.
//! * The output is `saturate_i8(requant(acc) + zp_out)`.

use serde::{Deserialize, Serialize};

/// A byte range inside the data section: `offset` from the start of the data
/// section, `len` bytes. Offsets written by the tool are 4-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Section {
    /// Offset from the start of the data section.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// Bit 31 of a **weight** section's `len` field: set when the matrix is int4
/// (two values per byte, see [`WeightBits::I4`]); the byte length is then
/// `len & !WEIGHTS_I4_FLAG`. Channel-parameter, metadata and data sections
/// never carry it. A reader that predates int4 sees an impossible length and
/// rejects the op (`InvalidOp`) instead of misreading it.
pub const WEIGHTS_I4_FLAG: u32 = 1 << 31;

/// Bit 30 of a **weight** section's `len` field: set (with bit 31 clear) when
/// the matrix is int2 (four values per byte, see [`WeightBits::I2`]); the byte
/// length is then `len & !WEIGHTS_I2_FLAG`. A build without the cargo feature
/// `weights-i2` does not decode the flag: it reads the section as an older
/// reader does, below. A reader that predates int2 sees
/// an int8 section of at least 1 GiB and rejects the op (`InvalidOp`). With
/// both bits 31 and 30 set the section reads as int4 whose byte length keeps
/// bit 30, so no shape matches it and the op is rejected too.
pub const WEIGHTS_I2_FLAG: u32 = 1 << 30;

/// Element type of a weight matrix, told by [`WEIGHTS_I4_FLAG`] in its
/// section's `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightBits {
    /// One two's-complement byte per weight, row-major `[out_ch, in_ch]`.
    I8,
    /// Two weights per byte, row-major `[out_ch, in_ch]`, each row padded to
    /// whole bytes (`ceil(in_ch / 2)` bytes per row). Weight `k` of a row is
    /// the **low** nibble (bits 0..4) of the row's byte `k / 2` when `k` is
    /// even and the **high** nibble (bits 4..8) when `k` is odd; a nibble is a
    /// 4-bit two's-complement value (sign-extended from bit 3, −8..=7; the
    /// tool writes −7..=7). For odd `in_ch` the high nibble of each row's last
    /// byte is padding and must be 0.
    I4,
    /// Four weights per byte, row-major `[out_ch, in_ch]`, each row padded to
    /// whole bytes (`ceil(in_ch / 4)` bytes per row). Weight `k` of a row is
    /// bits `2·(k % 4) .. 2·(k % 4) + 2` of the row's byte `k / 4` (weight 0
    /// in the lowest two bits); a field is a 2-bit two's-complement value
    /// (sign-extended from its high bit: `0b00` = 0, `0b01` = 1, `0b10` = −2,
    /// `0b11` = −1). The tool writes −2..=1 (`int2`) or −1..=1 (`ternary`).
    /// Padding fields of a row's last byte (`in_ch % 4 ≠ 0`) must be 0.
    I2,
}

impl WeightBits {
    /// Bytes of one row of `in_ch` weights.
    pub fn row_bytes(self, in_ch: usize) -> usize {
        match self {
            WeightBits::I8 => in_ch,
            WeightBits::I4 => in_ch.div_ceil(2),
            WeightBits::I2 => in_ch.div_ceil(4),
        }
    }

    /// Bytes of an `[out_ch, in_ch]` matrix (`None` on overflow).
    pub fn matrix_bytes(self, out_ch: usize, in_ch: usize) -> Option<usize> {
        out_ch.checked_mul(self.row_bytes(in_ch))
    }

    /// Bits per weight (8, 4 or 2).
    pub fn bits(self) -> u32 {
        match self {
            WeightBits::I8 => 8,
            WeightBits::I4 => 4,
            WeightBits::I2 => 2,
        }
    }
}

impl Section {
    /// The element type of a weight section (see [`WEIGHTS_I4_FLAG`] and
    /// [`WEIGHTS_I2_FLAG`]; bit 31 wins when both are set).
    #[inline]
    pub fn weight_bits(&self) -> WeightBits {
        if self.len & WEIGHTS_I4_FLAG != 0 {
            WeightBits::I4
        } else if cfg!(feature = "weights-i2") && self.len & WEIGHTS_I2_FLAG != 0 {
            WeightBits::I2
        } else {
            WeightBits::I8
        }
    }

    /// A weight section as a plain byte range: the flag that
    /// [`Section::weight_bits`] read cleared (only that one, so a section
    /// with both flags keeps an impossible length).
    #[inline]
    pub fn weight_bytes(&self) -> Section {
        let flag = match self.weight_bits() {
            WeightBits::I8 => 0,
            WeightBits::I4 => WEIGHTS_I4_FLAG,
            WeightBits::I2 => WEIGHTS_I2_FLAG,
        };
        Section {
            offset: self.offset,
            len: self.len & !flag,
        }
    }
}

/// What a tensor's rows are. `#[non_exhaustive]`: a later format version may
/// add kinds (as `Edge` and `Pair` were added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TensorKind {
    /// One row per node: `[nodes, channels]`.
    Node,
    /// One row per graph of the batch: `[graphs, channels]` (after pooling).
    Graph,
    /// One row per edge: `[edges, channels]` (the edge features, PyG's
    /// `edge_attr`; `edgefeat`). Only the model's edge-feature input has this
    /// kind: at most one tensor, written by no op, never an output. The
    /// session stores its rows in the target-sorted CSR order (row `p` is the
    /// features of the `p`-th edge of the target-sorted CSR).
    Edge,
    /// One row per node pair of [`crate::GraphInput::pairs`]: `[pairs, channels]`
    /// (link prediction; written by the ops `InnerProduct` and
    /// `PairFeatures`, then read by `Linear`, `Add`, `Concat`, `Act` like
    /// any other kind). Added by the `link` helper.
    Pair,
}

impl TensorKind {
    /// Every kind, in variant (postcard tag) order: `ALL[t]` is the kind
    /// whose tag is `t` (tested against postcard). Hand-written readers
    /// (`format::small`) decode kinds through this table.
    pub const ALL: [TensorKind; 4] = [
        TensorKind::Node,
        TensorKind::Graph,
        TensorKind::Edge,
        TensorKind::Pair,
    ];
}

/// A quantized activation tensor: shape `[rows, channels]`, int8, per-tensor
/// asymmetric quantization `real = scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorDesc {
    /// Node- or graph-level.
    pub kind: TensorKind,
    /// Number of channels (columns), 1..=[`crate::MAX_CHANNELS`].
    pub channels: u16,
    /// Quantization scale (positive, finite). Used only to quantize the input
    /// and to dequantize outputs, never inside kernels.
    pub scale: f32,
    /// Quantization zero point.
    pub zero_point: i8,
}

/// Per-output-channel parameters of a layer with `C` output channels, little
/// endian, in one of two forms told apart by the section length:
///
/// * **full**, `12·C` bytes: one record per channel,
///   `bias: i32, mult: i32, shift: i32`;
/// * **compact**, `4·C + 8` bytes: `bias: i32` × `C`, then one
///   `mult: i32, shift: i32` shared by every channel (written when all
///   channels share one rescale, e.g. per-tensor weight scales).
///
/// For `C = 1` both forms are the same 12 bytes and read the same. `bias` is
/// in the accumulator's scale; `mult`/`shift` are the Q31 rescale to the
/// output tensor. See [`params_form`] and [`crate::kernels::requant::channel_record_of`].
pub type ChannelParams = Section;

// The activation and the channel-record layout are the requantization
// kernels' vocabulary: defined there, part of the format here.
pub use crate::kernels::requant::{params_form, Activation, ParamsForm};

/// Neighbourhood aggregation of SAGEConv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Aggr {
    /// Sum over in-neighbours.
    Sum,
    /// Mean over in-neighbours (0 for none).
    Mean,
    /// Element-wise max over in-neighbours (0 for none).
    Max,
}

/// Global pooling reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pool {
    /// `global_add_pool`.
    Add,
    /// `global_mean_pool`.
    Mean,
    /// `global_max_pool`.
    Max,
}

/// One input of a [`Op::Concat`](crate::ops::Op::Concat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConcatPart {
    /// Input tensor id.
    pub input: u8,
    /// Rescale from the input's scale to the output's, Q16: `round(s_in / s_out · 2^16)`.
    pub mult_q16: i32,
}

/// Maximum number of inputs of one concatenation.
pub const MAX_CONCAT: usize = 8;

/// Number of fractional bits of the GCN edge coefficients (see [`Op::GcnConv`](crate::ops::Op::GcnConv)).
pub const GCN_COEF_BITS: u32 = 24;
/// Fractional bits kept in GIN and mean-pool accumulators before requantization.
pub const AGG_FRAC_BITS: u32 = 8;
/// Fractional bits added to an int8 input by [`Op::Propagate`](crate::ops::Op::Propagate) without weights
/// (its propagated values are kept in i32 with this extra resolution).
pub const PROPAGATE_FRAC_BITS: u32 = 16;
/// `α = 1.0` of [`Op::Propagate`](crate::ops::Op::Propagate) (Q30).
pub const PROPAGATE_ALPHA_ONE: i32 = 1 << 30;

/// Fixed part of the metadata, encoded first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MetaHeader {
    /// Largest node count an input graph (all graphs of a batch together) may have.
    pub max_nodes: u32,
    /// Largest edge count.
    pub max_edges: u32,
    /// Largest number of graphs in a batch.
    pub max_graphs: u32,
    /// Number of tensor descriptors that follow.
    pub num_tensors: u16,
    /// Number of ops that follow the tensors.
    pub num_ops: u16,
    /// The input node tensor (features).
    pub input: u8,
    /// Output tensors.
    pub outputs: heapless::Vec<u8, 4>,
    /// Whether any op uses edge weights (the graph must then carry them).
    pub uses_edge_weight: bool,
}

/// The optional trailer of the metadata, after the ops (helper `link`): the
/// pair capacity `max_pairs` as one postcard varint `u32`, the largest
/// number of node pairs ([`crate::GraphInput::pairs`]) an input may carry,
/// `1..=`[`crate::MAX_EDGES`]. Absent means 0 (no pair capacity), and only
/// then: a present trailer of 0 is rejected, so every model has one encoding,
/// and models without a pair head keep the bytes they had before pairs existed.
pub type PairCapacity = u32;
