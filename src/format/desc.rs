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
}

impl WeightBits {
    /// Bytes of one row of `in_ch` weights.
    pub fn row_bytes(self, in_ch: usize) -> usize {
        match self {
            WeightBits::I8 => in_ch,
            WeightBits::I4 => in_ch.div_ceil(2),
        }
    }

    /// Bytes of an `[out_ch, in_ch]` matrix (`None` on overflow).
    pub fn matrix_bytes(self, out_ch: usize, in_ch: usize) -> Option<usize> {
        out_ch.checked_mul(self.row_bytes(in_ch))
    }

    /// Bits per weight (8 or 4).
    pub fn bits(self) -> u32 {
        match self {
            WeightBits::I8 => 8,
            WeightBits::I4 => 4,
        }
    }
}

impl Section {
    /// The element type of a weight section (see [`WEIGHTS_I4_FLAG`]).
    #[inline]
    pub fn weight_bits(&self) -> WeightBits {
        if self.len & WEIGHTS_I4_FLAG != 0 {
            WeightBits::I4
        } else {
            WeightBits::I8
        }
    }

    /// A weight section as a plain byte range (the int4 flag cleared).
    #[inline]
    pub fn weight_bytes(&self) -> Section {
        Section {
            offset: self.offset,
            len: self.len & !WEIGHTS_I4_FLAG,
        }
    }
}

/// What a tensor's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TensorKind {
    /// One row per node: `[nodes, channels]`.
    Node,
    /// One row per graph of the batch: `[graphs, channels]` (after pooling).
    Graph,
    /// One row per edge: `[edges, channels]` (the edge features, PyG's
    /// `edge_attr`; `edgefeat`). Only the model's edge-feature input has this
    /// kind: at most one tensor, written by no op, never an output. The
    /// session stores its rows in the target-sorted CSR order (row `p` is the
    /// features of the `p`-th edge of [`crate::kernels::aggregate::Csr`]).
    Edge,
    /// One row per node pair of [`crate::GraphInput::pairs`]: `[pairs, channels]`
    /// (link prediction; written by [`Op::InnerProduct`] and
    /// [`Op::PairFeatures`], then read by `Linear`, `Add`, `Concat`, `Act` like
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

/// Activation fused into the op that produces a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `x < 0 ? alpha·x : x` with `alpha = alpha_q16 / 65536`.
    LeakyRelu {
        /// Negative slope in Q16.
        alpha_q16: i32,
    },
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
/// output tensor. See [`params_form`] and [`crate::channel_record_of`].
pub type ChannelParams = Section;

/// The layout of a [`ChannelParams`] section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsForm {
    /// `12·C` bytes: `(bias, mult, shift)` per channel.
    Full,
    /// `4·C + 8` bytes: `bias` per channel, then one shared `(mult, shift)`.
    Compact,
}

/// Which form a [`ChannelParams`] section of `len` bytes has for `channels`
/// output channels; `None` if the length fits neither. For one channel the
/// two forms coincide and this says [`ParamsForm::Full`].
#[inline]
pub fn params_form(len: usize, channels: usize) -> Option<ParamsForm> {
    if channels == 0 {
        None
    } else if channels.checked_mul(12) == Some(len) {
        Some(ParamsForm::Full)
    } else if channels.checked_mul(4).and_then(|n| n.checked_add(8)) == Some(len) {
        Some(ParamsForm::Compact)
    } else {
        None
    }
}

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

/// One input of a [`Op::Concat`].
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

/// Number of fractional bits of the GCN edge coefficients (see [`Op::GcnConv`]).
pub const GCN_COEF_BITS: u32 = 24;
/// Fractional bits kept in GIN and mean-pool accumulators before requantization.
pub const AGG_FRAC_BITS: u32 = 8;
/// Fractional bits added to an int8 input by [`Op::Propagate`] without weights
/// (its propagated values are kept in i32 with this extra resolution).
pub const PROPAGATE_FRAC_BITS: u32 = 16;
/// `α = 1.0` of [`Op::Propagate`] (Q30).
pub const PROPAGATE_ALPHA_ONE: i32 = 1 << 30;

/// One operation of the model. Ops run in file order; each writes exactly one
/// tensor that no earlier op wrote (single assignment) and reads only tensors
/// written before it (or the model input).
///
/// The doc comment of each variant is its exact integer semantics. Weight
/// matrices are int8 or int4 ([`WeightBits`], per section), row-major
/// `[out_ch, in_ch]` (one row per output channel), symmetric (zero point 0)
/// with a per-output-channel or one shared scale; the scales only enter
/// through [`ChannelParams`]. `W[c,k]` below is the (sign-extended) weight
/// value either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// Fully connected layer (BatchNorm folded in) on node or graph rows:
    /// `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then activation and
    /// requantization. Input and output have the same [`TensorKind`].
    Linear {
        /// Input tensor.
        input: u8,
        /// Output tensor (`out_ch` channels).
        output: u8,
        /// int8 weights `[out_ch, in_ch]`.
        weights: Section,
        /// [`ChannelParams`] for `out_ch` channels.
        params: ChannelParams,
        /// Fused activation.
        act: Activation,
    },
    /// GCNConv (PyG `gcn_norm` semantics), node tensors only.
    ///
    /// 1. `h_j[c] = Σ_k W[c,k]·(x_jk − zp_x)` (i32) for every node.
    /// 2. Edge weights `w` are Q16 (`1.0 = 65536`; all 1.0 unless
    ///    `edge_weight` and the graph has weights). Self-loops as
    ///    `add_remaining_self_loops` when `add_self_loops`: input loops `i→i`
    ///    are dropped from the neighbour sum, node `i` gets one loop with the
    ///    weight of its last input loop, or `fill` (1.0, or 2.0 if `improved`).
    /// 3. If `normalize`: `deg_i = Σ_{j→i} w_ji` (u64, Q16, loop included),
    ///    `dinv_i = deg_i = 0 ? 0 : isqrt(2^64 / deg_i)` (Q24), and
    ///    `coef_ji = (dinv_j · w_ji · dinv_i) >> 40` (u128 product, Q24).
    ///    Otherwise `coef_ji = w_ji << 8` (Q24).
    /// 4. `acc_i[c] = round_shift_i64_to_i32(Σ_{j→i} coef_ji · h_j[c], 24) + bias[c]`;
    ///    activation; requantization. A coefficient above `i32::MAX` is an
    ///    [`crate::Error::Overflow`].
    GcnConv {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// int8 weights `[out_ch, in_ch]` of `lin`.
        weights: Section,
        /// [`ChannelParams`] (bias is PyG's conv bias).
        params: ChannelParams,
        /// Fused activation.
        act: Activation,
        /// Self-loop fill weight 2 instead of 1.
        improved: bool,
        /// Add remaining self-loops.
        add_self_loops: bool,
        /// Symmetric degree normalisation.
        normalize: bool,
        /// Use the graph's edge weights.
        edge_weight: bool,
    },
    /// SAGEConv, node tensors only. Weights of `lin_l` and `lin_r` share one
    /// scale per output channel so their i32 results add directly.
    ///
    /// * `Sum`/`Mean`: `hl_j[c] = Σ_k Wl[c,k]·(x_jk − zp_x)`; `agg_i[c] = Σ_{j→i} hl_j[c]`
    ///   (i64), for `Mean` then `round_div_i64(agg, count)` (0 without neighbours).
    /// * `Max`: `m_ik = max_{j→i} x_jk` (int8; `zp_x` without neighbours), then
    ///   `agg_i[c] = Σ_k Wl[c,k]·(m_ik − zp_x)`.
    /// * `acc_i[c] = sat_i32(agg_i[c]) + Σ_k Wr[c,k]·(x_ik − zp_x) (if root) + bias[c]`.
    /// * `normalize`: all channels share one scale; `n = isqrt(Σ_c acc²)` (after
    ///   the activation); `out_c = n = 0 ? 0 : round_div(127·acc_c, n)` and the output
    ///   tensor must have scale 1/127 and zero point 0 (mult/shift unused).
    ///   Otherwise activation and requantization as usual.
    ///
    /// Edges are the graph's edges as given (no self-loops added, duplicates counted).
    SageConv {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// Aggregation.
        aggr: Aggr,
        /// int8 weights of `lin_l`, `[out_ch, in_ch]`.
        weights_l: Section,
        /// int8 weights of `lin_r`, `[out_ch, in_ch]`, or an empty section if no root weight.
        weights_r: Section,
        /// [`ChannelParams`] (bias is `lin_l.bias`).
        params: ChannelParams,
        /// Fused activation.
        act: Activation,
        /// L2-normalise each output row.
        normalize: bool,
    },
    /// The aggregation half of GINConv (the `nn` follows as separate ops):
    /// `acc_i[c] = Σ_{j→i} (x_jc − zp)·2^16 + one_plus_eps_q16·(x_ic − zp)` (i64),
    /// `out = saturate_i8(requant(round_shift_i64_to_i32(acc, 8), mult, shift) + zp_out)`.
    /// Same channel count in and out; edges as given.
    GinAggregate {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// `round((1 + eps) · 2^16)`.
        one_plus_eps_q16: i32,
        /// Q31 rescale `s_x / (s_out · 2^8)`.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// Global pooling of node rows into graph rows, by the batch vector.
    /// * `Add`: `acc = sat_i32(Σ (x − zp))`, requant with `s_x / s_out`.
    /// * `Mean`: `acc = sat_i32(round_div_i64(Σ (x − zp) · 2^8, count))` (0 if empty),
    ///   requant with `s_x / (s_out·2^8)`.
    /// * `Max`: `max x` (`zp` if the graph has no node); the output must have the
    ///   input's scale and zero point (mult/shift unused).
    GlobalPool {
        /// Input node tensor.
        input: u8,
        /// Output graph tensor (same channels).
        output: u8,
        /// Reduction.
        pool: Pool,
        /// Q31 rescale.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// Element-wise sum of two tensors of the same kind and shape:
    /// `out = saturate_i8(zp_out + act(round_shift_i64_to_i32((a − zp_a)·ma + (b − zp_b)·mb, 16)))`,
    /// with `ma = round(s_a/s_out · 2^16)`, `mb` likewise (ReLU clamps at 0 before adding `zp_out`).
    Add {
        /// First input.
        a: u8,
        /// Second input.
        b: u8,
        /// Output.
        output: u8,
        /// Q16 rescale of `a`.
        mult_a_q16: i32,
        /// Q16 rescale of `b`.
        mult_b_q16: i32,
        /// Fused activation.
        act: Activation,
    },
    /// Channel concatenation (jumping knowledge `cat`) of tensors of one kind:
    /// each part `p` is written as `saturate_i8(zp_out + round_shift((x − zp_p)·mult_q16, 16))`.
    Concat {
        /// Inputs, in channel order.
        parts: heapless::Vec<ConcatPart, MAX_CONCAT>,
        /// Output (sum of the parts' channels).
        output: u8,
    },
    /// Standalone activation; output has the input's quantization:
    /// ReLU `max(x, zp)`, LeakyReLU `x < zp ? zp + round_shift((x − zp)·alpha_q16, 16) : x`.
    Act {
        /// Input.
        input: u8,
        /// Output.
        output: u8,
        /// Activation (not `None`).
        act: Activation,
    },
    /// GATConv / GATv2Conv (PyG semantics, eval mode; edge features: `edge`, see [`GatEdge`]), node
    /// tensors only. `H = heads`, `C` channels per head (`out_ch / H` with
    /// `concat`, `out_ch` without), `HC = H·C`. See [`crate::ops::gat`].
    ///
    /// 1. Projections (i32, exact): GAT `h_j = W·(x_j − zp_x)` (`weights`,
    ///    `[HC, in_ch]`). GATv2 `xl_j = Wl·(x_j − zp_x) + bl`,
    ///    `xr_j = Wr·(x_j − zp_x) + br` (`weights`, `weights_r`; `bl`, `br` the
    ///    i32 biases in `lin_bias`); `Wl` and `Wr` share one scale per channel so
    ///    `xl + xr` adds directly; the messages are `h = xl`.
    /// 2. Logits of an edge `j→i` for head `k`, in Q16 (`1.0 = 65536`), with
    ///    `lrelu(v) = v < 0 ? floor((v·negative_slope_q16 + 2^15) / 2^16) : v` (i64) and
    ///    `rq(v, m, s) = clamp_i32(floor((v·m + 2^(r−1)) / 2^r))`, `r = 31 − s` (i128):
    ///    * GAT: `ls_j = rq(Σ_c att_src[k,c]·h_j[k,c], m_src[k], s_src[k])`,
    ///      `ld_i = rq(Σ_c att_dst[k,c]·h_i[k,c], m_dst[k], s_dst[k])`,
    ///      `e_ji = lrelu(ls_j + ld_i)`.
    ///    * GATv2: `e_ji = rq(Σ_c att[k,c]·lrelu(xl_j[k,c] + xr_i[k,c]), m[k], s[k])`.
    /// 3. Edges: the in-edges of `i` as given; with `add_self_loops`, input
    ///    loops `i→i` are skipped and one loop `i→i` is added (PyG's
    ///    `remove_self_loops` + `add_self_loops`). Duplicates each count.
    /// 4. Softmax per node and head: `M = max_j e_ji`, `w_ji = exp_q30(e_ji − M)`
    ///    ([`crate::ops::gat::exp_q30`], `2^30 = 1.0`), `S = Σ_j w_ji` (u64),
    ///    `R = floor((2^61 + S/2) / S)`, `α_ji = floor((w_ji·R + 2^30) / 2^31)` (Q30).
    /// 5. `agg_i[k,c] = Σ_j α_ji · h_j[k,c]` (i64); a node without edges gets 0.
    ///    Concat: `acc_i[k·C + c] = round_shift_i64_to_i32(agg_i[k,c], 30)`;
    ///    mean: `acc_i[c] = round_shift_i64_to_i32(Σ_k agg_i[k,c], 30)` (the
    ///    converter folds `1/H` into `mult` and scales `bias` by `H`).
    /// 6. `+ bias`, activation and requantization with `params` (`out_ch` channels).
    ///
    /// Sections: `att` is i16 little endian, GAT `att_src[HC]` then `att_dst[HC]`
    /// (`4·HC` bytes), GATv2 `att[HC]` (`2·HC` bytes); `logit` is i32 little
    /// endian per head, GAT `(m_src, s_src, m_dst, s_dst)` (16 bytes per head),
    /// GATv2 `(m, s)` (8 bytes per head), every `s` in `−32..=31`; `lin_bias`
    /// (GATv2 only, else empty) is i32 little endian `bl[HC]` then `br[HC]`.
    GatConv {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// Number of heads `H` (≥ 1).
        heads: u8,
        /// Concatenate the heads (else average them).
        concat: bool,
        /// GATv2Conv (else GATConv).
        v2: bool,
        /// Add self-loops (after removing the graph's own).
        add_self_loops: bool,
        /// LeakyReLU negative slope of the attention, Q16 (≥ 0).
        negative_slope_q16: i32,
        /// int8 weights `[HC, in_ch]` of `lin` (GAT) or `lin_l` (GATv2).
        weights: Section,
        /// int8 weights `[HC, in_ch]` of `lin_r` (GATv2), else empty.
        weights_r: Section,
        /// i32 biases of `lin_l` and `lin_r` (GATv2), else empty.
        lin_bias: Section,
        /// Attention vectors (i16).
        att: Section,
        /// Per-head logit rescales.
        logit: Section,
        /// [`ChannelParams`] for `out_ch` channels (bias is PyG's conv bias).
        params: ChannelParams,
        /// Fused activation.
        act: Activation,
        /// Edge features (PyG `edge_dim`; GATConv and GATv2Conv), see [`GatEdge`].
        edge: Option<GatEdge>,
    },
    // ---- edgefeat ----
    /// GINEConv (PyG `GINEConv(nn, eps, edge_dim)`, eval mode): the aggregation
    /// `(1 + eps)·x_i + Σ_{j→i} ReLU(x_j + lin(e_ji))` (the `nn` follows as
    /// separate ops, as for [`Op::GinAggregate`]). Node tensors `input` and
    /// `output` have the same channel count `C`; `edge_attr` is the model's
    /// edge-feature tensor ([`TensorKind::Edge`], `D` channels). Edges as given
    /// (no self-loops added, duplicates counted). Per edge `j→i` (CSR row `p`):
    ///
    /// 1. `a[c] = Σ_k We[c,k]·(e_pk − zp_e) + bias[c]` with `edge_weights`
    ///    (`[C, D]`, PyG's `lin`), or without `lin` (empty `edge_weights`,
    ///    then `D = C`) `a[c] = (e_pc − zp_e) + bias[c]` (i32, saturating add);
    /// 2. `m[c] = max(0, (x_jc − zp_x)·2^8 + requant(a[c], c))`, with
    ///    `requant` the plain Q31 rescale of channel `c` of `edge_params`
    ///    (`s_e·s_w[c]·2^8 / s_x`, i.e. into units of `s_x / 2^8`), i64;
    /// 3. `acc_i[c] = (Σ_p m[c])·2^8 + one_plus_eps_q16·(x_ic − zp_x)` (i64, saturating),
    ///    `out = saturate_i8(requant(round_shift_i64_to_i32(acc, 8), mult, shift) + zp_out)`,
    ///    as [`Op::GinAggregate`].
    GineConv {
        /// Input node tensor (`C` channels).
        input: u8,
        /// The edge-feature tensor (`D` channels).
        edge_attr: u8,
        /// Output node tensor (`C` channels).
        output: u8,
        /// `round((1 + eps) · 2^16)`.
        one_plus_eps_q16: i32,
        /// int8/int4 weights `[C, D]` of `lin`, or empty (no `lin`: `D = C`).
        edge_weights: Section,
        /// [`ChannelParams`] for `C` channels: `lin.bias` in the accumulator
        /// scale `s_e·s_w[c]` (0 without `lin`) and the Q31 rescale
        /// `s_e·s_w[c]·2^8 / s_x` (`s_w = 1` without `lin`).
        edge_params: ChannelParams,
        /// Q31 rescale `s_x / (s_out · 2^8)`.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// Element-wise int8 → int8 lookup table (edgefeat; used for ELU, the
    /// activation of GAT models, and any other monotone or not function of
    /// one value): `out = table[x + 128]`, read as i8. Input and output have the
    /// same kind and channel count and each its own quantization; the host
    /// computes the table as `quantize_out(f(dequantize_in(q)))` for every
    /// `q` in `−128..=127`.
    Lut {
        /// Input tensor.
        input: u8,
        /// Output tensor.
        output: u8,
        /// 256 bytes: the output for inputs `−128, −127, …, 127`.
        table: Section,
    },
    // ---- helper `propagate` (issue 4): decoupled propagation ----
    /// Decoupled propagation over the GCN-normalised adjacency `Â` (PyG
    /// `gcn_norm`), node tensors only: PyG `APPNP(K, alpha)` (no weights),
    /// `SGConv(K)` (weights, `alpha_q30 = 0`), `GCN2Conv` (`K = 1`,
    /// weights and `weights_0`, initial representation `x0`) and `TAGConv(K)`
    /// (`hops`). See [`crate::ops::propagate`] and `docs/propagation.md`.
    ///
    /// 1. `p_i[c]` (i32), the values propagated: without weights (`weights`
    ///    empty, `in_ch = out_ch`) `(x_ic − zp_x) · 2^PROPAGATE_FRAC_BITS`;
    ///    with weights `Σ_k W[c,k]·(x_ik − zp_x)`. The teleport term `h⁰`:
    ///    `p` itself when `weights_0` is empty (then `x0 = input`), else
    ///    `h⁰_i[c] = Σ_k W0[c,k]·(x0_ik − zp_x0)` (then `weights` is not empty;
    ///    the converter gives `W` and `W0` per-channel scales with
    ///    `s_x·s_w[c] = s_x0·s_w0[c]`, so the two add directly). Start `h = p`.
    /// 2. `Â` is [`Op::GcnConv`]'s: the same self-loop rules (`improved`,
    ///    `add_self_loops`), Q16 edge weights (`edge_weight`), Q24 `dinv` and
    ///    Q24 coefficients `coef_ji` (or `w << 8` without `normalize`). A
    ///    coefficient above `i32::MAX` is [`crate::Error::Overflow`].
    /// 3. `k` times, for every node `i` (all from the previous step's `h`):
    ///    `t_i[c] = round_shift_i64_to_i32(Σ_{j→i} coef_ji · h_j[c], 24)` (the
    ///    sum saturating in i64, in CSR order: the in-edges of `i` as given,
    ///    then the self-loop), then
    ///    `h_i[c] = round_shift_i64_to_i32(t_i[c]·(2^30 − alpha_q30) + h⁰_i[c]·alpha_q30, 30)`
    ///    (i64 arithmetic, exact). With `hops` (TAGConv; then `alpha_q30 = 0`,
    ///    `weights_0` empty, `weights` holds `K + 1` matrices `W_0 … W_K` of
    ///    `[out_ch, in_ch]` stacked as `[(K+1)·out_ch, in_ch]`, one scale per
    ///    output channel for all): `p = W_K·(x − zp_x)` in step 1, and step
    ///    `s = 1 … K` computes `h_i[c] = sat_i32(t_i[c] + Σ_k W_{K−s}[c,k]·(x_ik − zp_x))`
    ///    instead (Horner: `h = Σ_k Â^k W_k x`).
    /// 4. `acc_i[c] = h_i[c] + bias[c]` (saturating); activation; requantization
    ///    with `params` (the accumulator scale is `s_x / 2^PROPAGATE_FRAC_BITS`
    ///    without weights, `s_x · s_w[c]` with).
    Propagate {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// Number of propagation steps `K` (0 allowed: no propagation).
        k: u8,
        /// Teleport (restart) probability `α` in Q30, `0..=2^30`.
        alpha_q30: i32,
        /// int8/int4 weights `[out_ch, in_ch]` (SGConv's `lin`; GCN2Conv's
        /// `((1 − β)·I + β·W1)ᵀ`), or an empty section for none (APPNP; then
        /// `in_ch = out_ch`).
        weights: Section,
        /// The initial-representation node tensor of `h⁰` (GCN2Conv's `x_0`;
        /// `input` itself when `weights_0` is empty).
        x0: u8,
        /// int8/int4 weights `[out_ch, x0_ch]` applied to `x0` (GCN2Conv's
        /// `((1 − β)·I + β·W2)ᵀ`, `W2 = W1` with shared weights), or empty.
        weights_0: Section,
        /// [`ChannelParams`] for `out_ch` channels.
        params: ChannelParams,
        /// Fused activation.
        act: Activation,
        /// Self-loop fill weight 2 instead of 1.
        improved: bool,
        /// Add remaining self-loops.
        add_self_loops: bool,
        /// Symmetric degree normalisation.
        normalize: bool,
        /// Use the graph's edge weights.
        edge_weight: bool,
        /// TAGConv: `weights` holds `K + 1` stacked matrices (step 3′).
        hops: bool,
    },
    // ---- helper `dgcnn` (issue 4): EdgeConv / DynamicEdgeConv -------------
    /// EdgeConv / DynamicEdgeConv (PyG `EdgeConv(nn, aggr)`,
    /// `DynamicEdgeConv(nn, k, aggr)`), node tensors only, with
    /// `nn = Linear → act1 [→ Linear → act2]` (BatchNorm folded). `H = hidden`.
    /// See [`crate::ops::edge_conv`] and `docs/point-clouds.md`.
    ///
    /// 1. Edges: with `k = 0` the graph's edges as given (`j→i`, duplicates
    ///    count, no self-loops added); with `k ≥ 1` the kNN graph of the
    ///    input ([`crate::kernels::knn`]): node `i` receives one edge from each
    ///    of its `min(k, n_g)` nearest points of its own graph (itself
    ///    included; squared distance on the int8 values, ties to the smaller
    ///    index).
    /// 2. First layer, split: PyG's `W·[x_i, x_j − x_i] = (W_a − W_b)·x_i + W_b·x_j`.
    ///    Per node, `p_i[c] = Σ_k Ws[c,k]·(x_ik − zp_x)` (`w_self`, the
    ///    host-quantized `W_a − W_b`) and `q_j[c] = Σ_k Wn[c,k]·(x_jk − zp_x)`
    ///    (`w_nbr`, `W_b`); both share one scale per channel (in `params1`), so
    ///    per edge `a[c] = act1(sat_i32(sat_i32(p_i[c] + q_j[c]) + bias1[c]))`.
    /// 3. With a second layer (`w2` not empty): `h[c] = saturate_i8(requant(a[c],
    ///    mult1[c], shift1[c]) + hidden_zp)` and
    ///    `m[c] = act2(sat_i32(Σ_k W2[c,k]·(h_k − hidden_zp) + bias2[c]))`;
    ///    otherwise `m = a` (and `H = out_ch`).
    /// 4. Aggregation of the `m` over the in-edges of `i`: `Max` element-wise
    ///    max, `Sum` `sat_i32(Σ m)` (i64), `Mean` `sat_i32(round_div_i64(Σ m, count))`;
    ///    a node without in-edges gets 0 (PyG's empty aggregation).
    /// 5. `out = saturate_i8(requant(agg, mult, shift) + zp_out)` with the
    ///    `(mult, shift)` of the last layer (`params2`, else `params1`; its bias
    ///    was added per edge).
    EdgeConv {
        /// Input node tensor.
        input: u8,
        /// Output node tensor.
        output: u8,
        /// Aggregation.
        aggr: Aggr,
        /// 0: the graph's edges (EdgeConv); `k ≥ 1`: kNN graph (DynamicEdgeConv).
        k: u16,
        /// Channels `H` of the first layer (1..=`MAX_CHANNELS`).
        hidden: u16,
        /// Weights `[H, in_ch]` of `W_a − W_b` (int8 or int4).
        w_self: Section,
        /// Weights `[H, in_ch]` of `W_b` (same precision and scales as `w_self`).
        w_nbr: Section,
        /// [`ChannelParams`] of the first layer (`H` channels).
        params1: ChannelParams,
        /// Activation after the first layer.
        act1: Activation,
        /// Zero point of the int8 hidden vector (two layers only, else 0).
        hidden_zp: i8,
        /// Weights `[out_ch, H]` of the second layer, or empty (one layer).
        w2: Section,
        /// [`ChannelParams`] of the second layer (`out_ch`), or empty.
        params2: ChannelParams,
        /// Activation after the second layer (`None` with one layer).
        act2: Activation,
    },
    // ---- link (helper `link`): pair decoders, feature `op-link` ----------
    /// Inner-product pair decoder (VGAE/GAE `InnerProductDecoder` without the
    /// sigmoid), node tensor `z` in, pair tensor with **one** channel out. For
    /// pair `k = (s, t)` of [`crate::GraphInput::pairs`]:
    /// `acc_k = Σ_c (z_sc − zp_z)·(z_tc − zp_z)` (i32: at most
    /// `4096 · 255² < 2^31` in magnitude, so it never overflows),
    /// `out_k = saturate_i8(requant(acc_k, mult, shift) + zp_out)` with the Q31
    /// rescale `s_z² / s_out`. The output is the logit `z_s · z_t`; the sigmoid
    /// (a probability) is left to the host: it is monotone, so ranking metrics
    /// such as AUC and any threshold test work on the logit directly.
    InnerProduct {
        /// Input node tensor (the node embeddings `z`).
        input: u8,
        /// Output pair tensor (1 channel).
        output: u8,
        /// Q31 rescale `s_z² / s_out`.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// Pair representation for an MLP pair decoder, node tensor `z` (`C`
    /// channels) in, pair tensor out; the MLP follows as `Linear`/`Act` ops on
    /// pair rows. For pair `k = (s, t)`:
    /// * [`PairMode::Hadamard`]: `C` channels,
    ///   `out_kc = saturate_i8(requant((z_sc − zp_z)·(z_tc − zp_z), mult, shift) + zp_out)`
    ///   with the Q31 rescale `s_z² / s_out`;
    /// * [`PairMode::Concat`]: `2C` channels, `out_k = [z_s, z_t]` copied
    ///   byte for byte (the output must have the input's scale and zero point).
    PairFeatures {
        /// Input node tensor.
        input: u8,
        /// Output pair tensor.
        output: u8,
        /// How a pair's two rows are combined.
        mode: PairMode,
    },
}

/// How [`Op::PairFeatures`] combines the rows of a pair (helper `link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PairMode {
    /// `z_s ⊙ z_t`, requantized.
    Hadamard {
        /// Q31 rescale `s_z² / s_out`.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// `[z_s, z_t]`.
    Concat,
}

impl Op {
    /// The tensor this op writes.
    pub fn output(&self) -> u8 {
        match *self {
            Op::Linear { output, .. }
            | Op::GcnConv { output, .. }
            | Op::SageConv { output, .. }
            | Op::GinAggregate { output, .. }
            | Op::GlobalPool { output, .. }
            | Op::Add { output, .. }
            | Op::Concat { output, .. }
            | Op::Act { output, .. }
            | Op::GatConv { output, .. }
            | Op::GineConv { output, .. }
            | Op::Lut { output, .. }
            | Op::EdgeConv { output, .. }
            | Op::Propagate { output, .. }
            | Op::InnerProduct { output, .. }
            | Op::PairFeatures { output, .. } => output,
        }
    }

    /// Calls `f` for every tensor this op reads.
    pub fn for_each_input(&self, mut f: impl FnMut(u8)) {
        match self {
            Op::Linear { input, .. }
            | Op::GcnConv { input, .. }
            | Op::SageConv { input, .. }
            | Op::GinAggregate { input, .. }
            | Op::GlobalPool { input, .. }
            | Op::Act { input, .. }
            | Op::Lut { input, .. }
            | Op::EdgeConv { input, .. }
            | Op::InnerProduct { input, .. }
            | Op::PairFeatures { input, .. } => f(*input),
            Op::GatConv { input, edge, .. } => {
                f(*input);
                if let Some(e) = edge {
                    f(e.edge_attr);
                }
            }
            Op::Propagate { input, x0, .. } => {
                f(*input);
                if x0 != input {
                    f(*x0);
                }
            }
            Op::Add { a, b, .. } => {
                f(*a);
                f(*b);
            }
            Op::Concat { parts, .. } => parts.iter().for_each(|p| f(p.input)),
            Op::GineConv {
                input, edge_attr, ..
            } => {
                f(*input);
                f(*edge_attr);
            }
        }
    }

    /// A short lowercase name, for tools and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Linear { .. } => "linear",
            Op::GcnConv { .. } => "gcn_conv",
            Op::SageConv { .. } => "sage_conv",
            Op::GinAggregate { .. } => "gin_aggregate",
            Op::GlobalPool { .. } => "global_pool",
            Op::Add { .. } => "add",
            Op::Concat { .. } => "concat",
            Op::Act { .. } => "act",
            Op::GatConv { v2: false, .. } => "gat_conv",
            Op::GatConv { v2: true, .. } => "gatv2_conv",
            Op::Propagate { hops: true, .. } => "tag_conv",
            Op::Propagate { weights_0, .. } if weights_0.len != 0 => "gcn2_conv",
            Op::Propagate { weights, .. } if weights.len != 0 => "sg_conv",
            Op::Propagate { .. } => "appnp",
            Op::GineConv { .. } => "gine_conv",
            Op::Lut { .. } => "lut",
            Op::EdgeConv { k: 0, .. } => "edge_conv",
            Op::EdgeConv { .. } => "dynamic_edge_conv",
            Op::InnerProduct { .. } => "inner_product",
            Op::PairFeatures {
                mode: PairMode::Hadamard { .. },
                ..
            } => "pair_hadamard",
            Op::PairFeatures {
                mode: PairMode::Concat,
                ..
            } => "pair_concat",
        }
    }

    /// Whether any weight matrix of this op is int4 ([`WEIGHTS_I4_FLAG`]):
    /// a build without the cargo feature `weights-i4` rejects such an op
    /// ([`crate::Error::OpNotCompiled`]). Ops without weight matrices: false.
    pub fn has_i4_weights(&self) -> bool {
        let i4 = |s: &Section| s.weight_bits() == WeightBits::I4;
        match self {
            Op::Linear { weights, .. } | Op::GcnConv { weights, .. } => i4(weights),
            Op::SageConv {
                weights_l,
                weights_r,
                ..
            } => i4(weights_l) || i4(weights_r),
            Op::GatConv {
                weights, weights_r, ..
            } => i4(weights) || i4(weights_r),
            Op::GineConv { edge_weights, .. } => i4(edge_weights),
            Op::EdgeConv {
                w_self, w_nbr, w2, ..
            } => i4(w_self) || i4(w_nbr) || i4(w2),
            _ => false,
        }
    }
}

/// The edge-feature part of a GATConv / GATv2Conv with `edge_dim`. With
/// `e_p` the edge's row of the edge tensor (CSR position `p`):
///
/// **GATConv** (`v2` false). PyG adds `att_edge · lin_edge(e_ji)` to the logit
/// of edge `j→i` before the LeakyReLU; both are linear in `e`, so the converter
/// folds them into one `[H, D]` matrix `V` (`V[k] = lin_edgeₖᵀ·att_edgeₖ`):
///
/// * `a_pk = Σ_d V[k,d]·(e_pd − zp_e)` (i64), `k` a head;
/// * for the self-loop added to node `i` (`add_self_loops`; PyG's
///   `fill_value='mean'` gives it the mean attribute of the node's in-edges
///   other than loops), `a_k = round_div(Σ_p a_pk, count)` over those edges
///   (half away from zero), 0 without any;
/// * the logit of step 2 of [`Op::GatConv`] becomes
///   `e_ji = lrelu(ls_j + ld_i + rq(a_k, m_edge[k], s_edge[k]))`.
///
/// **GATv2Conv** (`v2` true). PyG adds `lin_edge(e_ji)` (`[HC]`, no bias) to
/// `xl_j + xr_i` per channel, before the LeakyReLU. `att` holds the int8
/// weights `We[HC, D]` of `lin_edge` (one scale per channel) and `logit` one
/// `(m, s)` per channel `q` of `HC`, mapping the edge accumulator into the
/// accumulator units of `xl`/`xr` (scale `s_x·s_w[q]`), so that it adds exactly:
///
/// * `a_pq = Σ_d We[q,d]·(e_pd − zp_e)` (i64); the added self-loop gets
///   `a_q = round_div(Σ_p a_pq, count)` as above;
/// * `e_ji = rq(Σ_c att[k,c]·lrelu(xl_j[k,c] + xr_i[k,c] + rq(a_{kC+c}, m[kC+c], s[kC+c])), m[k], s[k])`
///   (the inner sum in i64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GatEdge {
    /// The edge-feature tensor ([`TensorKind::Edge`], `D` channels).
    pub edge_attr: u8,
    /// GAT: `V`, i16 little endian `[H, D]` (`2·H·D` bytes). GATv2: `We`,
    /// int8 `[HC, D]` (`HC·D` bytes).
    pub att: Section,
    /// i32 little endian `(m_edge, s_edge)` per head (GAT, `8·H` bytes) or per
    /// channel of `HC` (GATv2, `8·HC` bytes), `s` in `−32..=31`.
    pub logit: Section,
}

/// Number of op variants; tags at or above this are [`crate::Error::UnknownOp`].
pub const OP_TAGS: u32 = 15; // … Propagate, EdgeConv (dgcnn), InnerProduct, PairFeatures (link)

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
