//! A validated, zero-copy view of a `.tgnn` model.
//!
//! [`Model::from_bytes`] checks everything once, before anything runs: header,
//! checksum, every tensor descriptor, every op (tensor references, kinds,
//! channel counts, section bounds and sizes, op-specific constraints), the
//! single-assignment order of tensors, and the outputs, and that every op's
//! family is compiled into this build (the `op-*` cargo features). After that, the op
//! list is decoded again on the fly while running (postcard decoding is
//! cheap), so no op table is copied into RAM; weights are always read in place.

use crate::error::{Error, Result};
use crate::format::{self, Activation, Header, MetaHeader, Op, Section, TensorDesc, TensorKind};
use crate::{MAX_CHANNELS, MAX_OPS, MAX_TENSORS};

/// A validated model borrowed from its bytes (RAM or flash).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    header: Header,
    meta: MetaHeader,
    data: &'a [u8],
    ops: &'a [u8],
    tensors: heapless::Vec<TensorDesc, MAX_TENSORS>,
    /// The pair capacity ([`format::PairCapacity`]; 0 when absent).
    max_pairs: u32,
}

/// Reads an op's enum tag (postcard varint) without decoding the op.
fn peek_varint_u32(bytes: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

impl<'a> Model<'a> {
    /// Validates `bytes` and returns a view over them. Never panics, whatever the bytes.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(x > 0.0)` also rejects NaN, on purpose
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        let header = Header::parse(bytes)?;
        let meta_bytes = format::section(bytes, header.meta).ok_or(Error::BadSection)?;
        let data = format::section(bytes, header.data).ok_or(Error::BadSection)?;

        let (meta, mut rest): (MetaHeader, &[u8]) =
            format::take_meta_header(meta_bytes).ok_or(Error::BadMetadata)?;
        if meta.num_tensors as usize > MAX_TENSORS || meta.num_ops as usize > MAX_OPS {
            return Err(Error::TooManyEntries);
        }
        if meta.max_nodes == 0
            || meta.max_nodes > u32::from(u16::MAX)
            || meta.max_graphs == 0
            || meta.max_graphs > meta.max_nodes
            || meta.max_edges > crate::MAX_EDGES
        {
            return Err(Error::BadMetadata);
        }
        let mut tensors = heapless::Vec::new();
        for i in 0..meta.num_tensors {
            let (t, r): (TensorDesc, &[u8]) =
                format::take_tensor_desc(rest).ok_or(Error::BadMetadata)?;
            rest = r;
            if t.channels == 0
                || t.channels as usize > MAX_CHANNELS
                || !(t.scale > 0.0)
                || !t.scale.is_finite()
            {
                return Err(Error::InvalidTensor { tensor: i });
            }
            tensors.push(t).map_err(|_| Error::TooManyEntries)?;
        }
        let ops_bytes = rest;
        // At most one edge-feature tensor (the model's edge input).
        let mut edge_tensors = tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == TensorKind::Edge);
        if let Some((second, _)) = edge_tensors.nth(1) {
            return Err(Error::InvalidTensor {
                tensor: u16::try_from(second).unwrap_or(u16::MAX),
            });
        }
        let mut model = Model {
            header,
            meta,
            data,
            ops: ops_bytes,
            tensors,
            max_pairs: 0,
        };
        let trailer = model.validate_ops()?;
        model.max_pairs = Self::pair_capacity(trailer)?;
        // A pair tensor needs room for at least one pair (helper `link`).
        if model.max_pairs == 0 {
            if let Some(i) = model
                .tensors
                .iter()
                .position(|t| t.kind == TensorKind::Pair)
            {
                return Err(Error::InvalidTensor {
                    tensor: u16::try_from(i).unwrap_or(u16::MAX),
                });
            }
        }
        Ok(model)
    }

    /// Decodes the optional pair-capacity trailer ([`format::PairCapacity`]):
    /// empty is 0; else one varint in `1..=MAX_EDGES` and nothing after it.
    fn pair_capacity(trailer: &[u8]) -> Result<u32> {
        if trailer.is_empty() {
            return Ok(0);
        }
        let (p, rest) = format::take_u32(trailer).ok_or(Error::BadMetadata)?;
        if !rest.is_empty() || p == 0 || p > crate::MAX_EDGES {
            return Err(Error::BadMetadata);
        }
        Ok(p)
    }

    /// Validates the ops and returns the metadata bytes after them (the
    /// optional trailer).
    fn validate_ops(&self) -> Result<&'a [u8]> {
        let n = self.tensors.len();
        let input = self.meta.input as usize;
        match self.tensors.get(input) {
            Some(t) if t.kind == TensorKind::Node => {}
            _ => return Err(Error::InvalidOutputs),
        }
        let mut defined = [false; MAX_TENSORS];
        if let Some(d) = defined.get_mut(input) {
            *d = true;
        }
        // The edge-feature input is defined before the first op.
        if let Some(d) = self
            .edge_input()
            .and_then(|e| defined.get_mut(usize::from(e)))
        {
            *d = true;
        }
        let is_defined = |d: &[bool; MAX_TENSORS], t: usize| d.get(t).copied().unwrap_or(false);
        let mut rest = self.ops;
        for index in 0..self.meta.num_ops {
            let tag = peek_varint_u32(rest).ok_or(Error::BadMetadata)?;
            if tag >= format::OP_TAGS {
                return Err(Error::UnknownOp { op: index, tag });
            }
            let (op, r): (Op, &[u8]) = match format::take_op(rest) {
                format::Take::Ok(op, r) => (op, r),
                format::Take::NotCompiled => return Err(Error::OpNotCompiled { op: index, tag }),
                format::Take::Bad => return Err(Error::BadMetadata),
            };
            rest = r;
            // An op family left out, or int4 weights without `weights-i4`.
            if !crate::ops::compiled(&op) || (!cfg!(feature = "weights-i4") && op_has_i4(&op)) {
                return Err(Error::OpNotCompiled { op: index, tag });
            }
            let bad = Error::InvalidOp { op: index };
            let mut inputs_ok = true;
            op_inputs(&op, &mut |t| {
                inputs_ok &= (t as usize) < n && is_defined(&defined, t as usize)
            });
            let out = op.output() as usize;
            let writes_edge = self
                .tensors
                .get(out)
                .is_some_and(|t| t.kind == TensorKind::Edge);
            if !inputs_ok || out >= n || is_defined(&defined, out) || writes_edge {
                return Err(bad);
            }
            self.check_op(&op).map_err(|_| bad)?;
            let slot = defined.get_mut(out).ok_or(bad)?;
            *slot = true;
        }
        if self.meta.outputs.is_empty()
            || self.meta.outputs.iter().any(|&o| {
                (o as usize) >= n
                    || !is_defined(&defined, o as usize)
                    || Some(o) == self.edge_input()
            })
        {
            return Err(Error::InvalidOutputs);
        }
        Ok(rest)
    }

    #[cfg_attr(
        not(any(
            feature = "op-linear",
            feature = "op-gcn",
            feature = "op-sage",
            feature = "op-gat",
            feature = "op-gine",
            feature = "op-lut",
            feature = "op-propagate",
            feature = "op-edgeconv"
        )),
        allow(dead_code)
    )]
    fn section_is(&self, s: Section, len: usize) -> bool {
        s.len as usize == len && format::section(self.data, s).is_some()
    }

    /// A weight section of an `[out_ch, in_ch]` matrix: int8 of exactly
    /// `out_ch·in_ch` bytes, or int4 ([`format::WEIGHTS_I4_FLAG`]) of exactly
    /// `out_ch·ceil(in_ch/2)` bytes whose row padding nibbles (odd `in_ch`) are 0.
    #[cfg_attr(
        not(any(
            feature = "op-linear",
            feature = "op-gcn",
            feature = "op-sage",
            feature = "op-gine",
            feature = "op-propagate",
            feature = "op-edgeconv",
            feature = "op-gat"
        )),
        allow(dead_code)
    )]
    fn weights_ok(&self, s: Section, out_ch: usize, in_ch: usize) -> bool {
        let bits = s.weight_bits();
        if bits == format::WeightBits::I4 && !cfg!(feature = "weights-i4") {
            return false;
        }
        let plain = s.weight_bytes();
        let Some(len) = bits.matrix_bytes(out_ch, in_ch) else {
            return false;
        };
        if !self.section_is(plain, len) {
            return false;
        }
        if bits == format::WeightBits::I4 && in_ch % 2 == 1 {
            let rb = bits.row_bytes(in_ch);
            let bytes = self.data(plain);
            return bytes
                .chunks_exact(rb.max(1))
                .all(|row| row.last().is_some_and(|b| b >> 4 == 0));
        }
        true
    }

    /// A [`format::ChannelParams`] section for `channels` channels, in the
    /// full (`12·C` bytes) or the compact (`4·C + 8` bytes) form.
    #[cfg_attr(
        not(any(
            feature = "op-linear",
            feature = "op-gcn",
            feature = "op-sage",
            feature = "op-gine",
            feature = "op-propagate",
            feature = "op-edgeconv"
        )),
        allow(dead_code)
    )]
    fn params_ok(&self, s: Section, channels: usize) -> bool {
        format::params_form(s.len as usize, channels).is_some()
            && format::section(self.data, s).is_some()
    }

    /// Op-specific shape and parameter checks (tensor ids are already in range).
    fn check_op(&self, op: &Op) -> core::result::Result<(), ()> {
        let t = |id: u8| self.tensors.get(id as usize).copied().ok_or(());
        let ok = |c: bool| if c { Ok(()) } else { Err(()) };
        let act_ok =
            |a: &Activation| !matches!(a, Activation::LeakyRelu { alpha_q16 } if *alpha_q16 < 0);
        // Ops not compiled in were rejected before (`Error::OpNotCompiled`);
        // their checks are left out with them.
        let _ = (&t, &ok, &act_ok);
        #[allow(unreachable_patterns)]
        match op {
            #[cfg(feature = "op-linear")]
            Op::Linear {
                input,
                output,
                weights,
                params,
                act,
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let (ci, co) = (i.channels as usize, o.channels as usize);
                ok(i.kind == o.kind
                    && self.weights_ok(*weights, co, ci)
                    && self.params_ok(*params, co)
                    && act_ok(act))
            }
            #[cfg(feature = "op-gcn")]
            Op::GcnConv {
                input,
                output,
                weights,
                params,
                act,
                ..
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let (ci, co) = (i.channels as usize, o.channels as usize);
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Node
                    && self.weights_ok(*weights, co, ci)
                    && self.params_ok(*params, co)
                    && act_ok(act))
            }
            #[cfg(feature = "op-sage")]
            Op::SageConv {
                input,
                output,
                weights_l,
                weights_r,
                params,
                act,
                normalize,
                ..
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let (ci, co) = (i.channels as usize, o.channels as usize);
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Node
                    && self.weights_ok(*weights_l, co, ci)
                    && (weights_r.len == 0 || self.weights_ok(*weights_r, co, ci))
                    && self.params_ok(*params, co)
                    && act_ok(act)
                    && (!normalize || o.zero_point == 0))
            }
            #[cfg(feature = "op-gin")]
            Op::GinAggregate { input, output, .. } => {
                let (i, o) = (t(*input)?, t(*output)?);
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Node
                    && i.channels == o.channels)
            }
            #[cfg(feature = "op-pool")]
            Op::GlobalPool {
                input,
                output,
                pool,
                ..
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Graph
                    && i.channels == o.channels
                    && (*pool != format::Pool::Max || i.zero_point == o.zero_point))
            }
            #[cfg(feature = "op-elementwise")]
            Op::Add {
                a, b, output, act, ..
            } => {
                let (a, b, o) = (t(*a)?, t(*b)?, t(*output)?);
                ok(a.kind == o.kind
                    && b.kind == o.kind
                    && a.channels == o.channels
                    && b.channels == o.channels
                    && act_ok(act))
            }
            #[cfg(feature = "op-elementwise")]
            Op::Concat { parts, output } => {
                let o = t(*output)?;
                let mut sum = 0usize;
                for p in parts {
                    let pt = t(p.input)?;
                    if pt.kind != o.kind {
                        return Err(());
                    }
                    sum += pt.channels as usize;
                }
                ok(!parts.is_empty() && sum == o.channels as usize)
            }
            #[cfg(feature = "op-elementwise")]
            Op::Act { input, output, act } => {
                let (i, o) = (t(*input)?, t(*output)?);
                ok(i.kind == o.kind
                    && i.channels == o.channels
                    && i.zero_point == o.zero_point
                    && *act != Activation::None
                    && act_ok(act))
            }
            #[cfg(feature = "op-gat")]
            Op::GatConv {
                input,
                output,
                heads,
                concat,
                v2,
                negative_slope_q16,
                weights,
                weights_r,
                lin_bias,
                att,
                logit,
                params,
                act,
                edge,
                ..
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let (ci, co) = (i.channels as usize, o.channels as usize);
                let h = *heads as usize;
                let hc0 = crate::ops::gat::per_head(h, *concat, co).map_or(0, |c| h * c);
                // Edge features: GAT V [H, D] i16 and (m, s) per head; GATv2 int8
                // lin_edge [HC, D] and (m, s) per channel of HC.
                let edge_ok = match edge {
                    None => true,
                    Some(e) => {
                        let et = t(e.edge_attr)?;
                        let d = et.channels as usize;
                        let shifts = self.data(e.logit).chunks_exact(8).all(|pair| match *pair {
                            [_, _, _, _, a, b, c, d] => {
                                (-32..=31).contains(&i32::from_le_bytes([a, b, c, d]))
                            }
                            _ => false,
                        });
                        let (att_len, logit_len) = if *v2 {
                            (hc0 * d, 8 * hc0)
                        } else {
                            (2 * h * d, 8 * h)
                        };
                        et.kind == TensorKind::Edge
                            && self.section_is(e.att, att_len)
                            && self.section_is(e.logit, logit_len)
                            && shifts
                    }
                };
                let c = crate::ops::gat::per_head(h, *concat, co).ok_or(())?;
                let hc = h * c;
                let logit_bytes = self.data(*logit);
                let per_head_words = if *v2 { 2 } else { 4 };
                // Every logit record is (mult, shift) pairs; shifts in −32..=31.
                let shifts_ok = logit_bytes.chunks_exact(8).all(|pair| match *pair {
                    [_, _, _, _, a, b, c, d] => {
                        (-32..=31).contains(&i32::from_le_bytes([a, b, c, d]))
                    }
                    _ => false,
                });
                let (bias_len, att_len) = if *v2 { (8 * hc, 2 * hc) } else { (0, 4 * hc) };
                // lin / lin_l and lin_r: int8 or int4 weight sections of [HC, in_ch].
                let wr_ok = if *v2 {
                    self.weights_ok(*weights_r, hc, ci)
                } else {
                    self.section_is(*weights_r, 0)
                };
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Node
                    && h >= 1
                    && hc <= MAX_CHANNELS
                    && *negative_slope_q16 >= 0
                    && self.weights_ok(*weights, hc, ci)
                    && wr_ok
                    && self.section_is(*lin_bias, bias_len)
                    && self.section_is(*att, att_len)
                    && self.section_is(*logit, 4 * per_head_words * h)
                    && shifts_ok
                    && self.params_ok(*params, co)
                    && act_ok(act)
                    && edge_ok)
            }
            #[cfg(feature = "op-lut")]
            Op::Lut {
                input,
                output,
                table,
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                ok(i.kind == o.kind && i.channels == o.channels && self.section_is(*table, 256))
            }
            #[cfg(feature = "op-gine")]
            Op::GineConv {
                input,
                edge_attr,
                output,
                edge_weights,
                edge_params,
                ..
            } => {
                let (i, e, o) = (t(*input)?, t(*edge_attr)?, t(*output)?);
                let (c, d) = (i.channels as usize, e.channels as usize);
                let lin_ok = if edge_weights.len == 0 {
                    d == c
                } else {
                    self.weights_ok(*edge_weights, c, d)
                };
                ok(i.kind == TensorKind::Node
                    && e.kind == TensorKind::Edge
                    && o.kind == TensorKind::Node
                    && i.channels == o.channels
                    && lin_ok
                    && self.params_ok(*edge_params, c))
            }
            #[cfg(feature = "op-propagate")]
            Op::Propagate {
                input,
                output,
                alpha_q30,
                weights,
                x0,
                weights_0,
                params,
                act,
                hops,
                k,
                ..
            } => {
                let (i, o, i0) = (t(*input)?, t(*output)?, t(*x0)?);
                let (ci, co) = (i.channels as usize, o.channels as usize);
                // TAGConv: K + 1 stacked matrices, no teleport, no x0.
                let rows = if *hops {
                    co.saturating_mul(usize::from(*k) + 1)
                } else {
                    co
                };
                let hops_ok = !*hops || (*alpha_q30 == 0 && weights.len != 0 && weights_0.len == 0);
                let x0_ok = if weights_0.len == 0 {
                    x0 == input
                } else {
                    weights.len != 0
                        && i0.kind == TensorKind::Node
                        && self.weights_ok(*weights_0, co, i0.channels as usize)
                };
                ok(i.kind == TensorKind::Node
                    && o.kind == TensorKind::Node
                    && (0..=format::PROPAGATE_ALPHA_ONE).contains(alpha_q30)
                    && if weights.len == 0 {
                        ci == co
                    } else {
                        self.weights_ok(*weights, rows, ci)
                    }
                    && x0_ok
                    && hops_ok
                    && self.params_ok(*params, co)
                    && act_ok(act))
            }
            #[cfg(feature = "op-edgeconv")]
            Op::EdgeConv {
                input,
                output,
                hidden,
                w_self,
                w_nbr,
                params1,
                act1,
                hidden_zp,
                w2,
                params2,
                act2,
                ..
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let (ci, co, h) = (i.channels as usize, o.channels as usize, *hidden as usize);
                let first = (1..=MAX_CHANNELS).contains(&h)
                    && self.weights_ok(*w_self, h, ci)
                    && self.weights_ok(*w_nbr, h, ci)
                    && w_self.weight_bits() == w_nbr.weight_bits()
                    && self.params_ok(*params1, h)
                    && act_ok(act1);
                let second = if w2.len == 0 {
                    h == co && params2.len == 0 && *act2 == Activation::None && *hidden_zp == 0
                } else {
                    self.weights_ok(*w2, co, h) && self.params_ok(*params2, co) && act_ok(act2)
                };
                ok(i.kind == TensorKind::Node && o.kind == TensorKind::Node && first && second)
            }
            #[cfg(feature = "op-link")]
            Op::InnerProduct { input, output, .. } => {
                let (i, o) = (t(*input)?, t(*output)?);
                ok(i.kind == TensorKind::Node && o.kind == TensorKind::Pair && o.channels == 1)
            }
            #[cfg(feature = "op-link")]
            Op::PairFeatures {
                input,
                output,
                mode,
            } => {
                let (i, o) = (t(*input)?, t(*output)?);
                let shapes = match mode {
                    format::PairMode::Hadamard { .. } => o.channels == i.channels,
                    format::PairMode::Concat => {
                        usize::from(o.channels) == 2 * usize::from(i.channels)
                            && o.zero_point == i.zero_point
                            && o.scale == i.scale
                    }
                };
                ok(i.kind == TensorKind::Node && o.kind == TensorKind::Pair && shapes)
            }
            _ => Err(()),
        }
    }

    /// The ops in execution order. The model was validated, so decoding does
    /// not fail; should it, the iterator simply ends early.
    pub fn ops(&self) -> impl Iterator<Item = Op> + 'a {
        let mut rest = self.ops;
        let mut left = self.meta.num_ops;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let format::Take::Ok(op, r) = format::take_op(rest) else {
                return None;
            };
            rest = r;
            Some(op)
        })
    }

    /// Number of ops.
    pub fn num_ops(&self) -> usize {
        self.meta.num_ops as usize
    }

    /// Tensor descriptors.
    pub fn tensors(&self) -> &[TensorDesc] {
        &self.tensors
    }

    /// The input (feature) tensor id.
    pub fn input(&self) -> u8 {
        self.meta.input
    }

    /// The input tensor descriptor.
    pub fn input_desc(&self) -> TensorDesc {
        // Validated in from_bytes: the input id is in range.
        self.tensors
            .get(self.meta.input as usize)
            .copied()
            .unwrap_or(TensorDesc {
                kind: TensorKind::Node,
                channels: 1,
                scale: 1.0,
                zero_point: 0,
            })
    }

    /// Output tensor ids.
    pub fn outputs(&self) -> &[u8] {
        &self.meta.outputs
    }

    /// Declared capacity: maximum nodes, edges, graphs.
    pub fn capacity(&self) -> (u32, u32, u32) {
        (
            self.meta.max_nodes,
            self.meta.max_edges,
            self.meta.max_graphs,
        )
    }

    /// The edge-feature input tensor ([`TensorKind::Edge`]), if the model has
    /// one: then every input graph must carry `edge_attr` with that many
    /// channels per edge.
    pub fn edge_input(&self) -> Option<u8> {
        self.tensors
            .iter()
            .position(|t| t.kind == TensorKind::Edge)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// The largest number of node pairs an input may carry (0 without a pair head).
    pub fn max_pairs(&self) -> u32 {
        self.max_pairs
    }

    /// Whether the model has a pair tensor (a link-prediction head), so every
    /// input must carry [`crate::GraphInput::pairs`].
    /// Always false in a build without `op-link` (no op there can write a
    /// pair tensor: a model with a pair op is `OpNotCompiled`).
    pub fn has_pairs(&self) -> bool {
        cfg!(feature = "op-link") && self.tensors.iter().any(|t| t.kind == TensorKind::Pair)
    }

    /// Whether any op reads edge weights.
    pub fn uses_edge_weight(&self) -> bool {
        self.meta.uses_edge_weight
    }

    /// The fixed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes of a data section (validated sections always resolve; an
    /// unknown one yields an empty slice).
    pub fn data(&self, s: Section) -> &'a [u8] {
        format::section(self.data, s).unwrap_or(&[])
    }

    /// An int8 weight section (empty for an int4 one: use [`Model::matrix`]).
    pub fn weights(&self, s: Section) -> &'a [i8] {
        bytemuck::cast_slice(self.data(s))
    }

    /// A weight section of either precision ([`format::WeightBits`]), for the
    /// kernels of [`crate::kernels::dense_i4::Matrix`].
    pub fn matrix(&self, s: Section) -> crate::kernels::dense_i4::Matrix<'a> {
        use crate::kernels::dense_i4::Matrix;
        match s.weight_bits() {
            format::WeightBits::I8 => Matrix::I8(self.weights(s)),
            format::WeightBits::I4 => Matrix::I4(self.data(s.weight_bytes())),
        }
    }
}

/// Reads channel `c`'s `(bias, mult, shift)` record from a [`format::ChannelParams`]
/// section in the **full** form (12-byte records); zeros past the end.
///
/// A section's length alone does not tell the two forms apart without the
/// channel count (`12·C` full equals `4·C′ + 8` compact for `C′ = 3·C − 2`),
/// so for a section that may be compact use [`channel_record_of`].
#[inline]
pub fn channel_record(params: &[u8], c: usize) -> (i32, i32, i32) {
    let rec = |k: usize| read_i32(params, c * 12 + k * 4);
    (rec(0), rec(1), rec(2))
}

/// Reads channel `c`'s `(bias, mult, shift)` from a [`format::ChannelParams`]
/// section of a layer with `channels` output channels, in either form: the
/// full form (`params.len() == 12·channels`, same as [`channel_record`]) or the
/// compact form (`4·channels + 8`: `bias[c]` and the shared `mult`, `shift`).
/// For one channel both forms are the same 12 bytes and both readings agree.
/// Any other length is read as the full form (zeros past the end).
#[inline]
pub fn channel_record_of(params: &[u8], channels: usize, c: usize) -> (i32, i32, i32) {
    match format::params_form(params.len(), channels) {
        Some(format::ParamsForm::Compact) => (
            read_i32(params, c * 4),
            read_i32(params, channels * 4),
            read_i32(params, channels * 4 + 4),
        ),
        _ => channel_record(params, c),
    }
}

/// The little-endian `i32` at byte `at` (0 if out of range).
#[inline]
fn read_i32(bytes: &[u8], at: usize) -> i32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .unwrap_or(0)
}

/// [`Op::for_each_input`] through one `dyn` instance: the model checks, the
/// memory plan and the sparse-input check share its code instead of
/// inlining a copy of the match over every op variant each (docs/size.md).
///
/// With the small metadata reader (`cfg(tinygnn_small_decoder)`) the only ops
/// that exist are `Linear` and `GcnConv` (it reads no other tag, see
/// [`format::small`]), each reading one tensor: just those two arms.
pub(crate) fn op_inputs(op: &Op, f: &mut dyn FnMut(u8)) {
    #[cfg(tinygnn_small_decoder)]
    if let Op::Linear { input, .. } | Op::GcnConv { input, .. } = op {
        f(*input);
    }
    #[cfg(not(tinygnn_small_decoder))]
    op.for_each_input(f);
}

/// [`Op::has_i4_weights`]; with the small metadata reader just the two ops
/// it reads (as [`op_inputs`]).
fn op_has_i4(op: &Op) -> bool {
    #[cfg(tinygnn_small_decoder)]
    return match op {
        Op::Linear { weights, .. } | Op::GcnConv { weights, .. } => {
            weights.weight_bits() == format::WeightBits::I4
        }
        _ => false,
    };
    #[cfg(not(tinygnn_small_decoder))]
    op.has_i4_weights()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Section;

    /// The helpers give what the `Op` methods give for the two ops the small
    /// metadata reader decodes (in every build; in a build with that reader
    /// they are specialised to those two).
    #[test]
    fn op_helpers_match_op_methods() {
        let acts = [Activation::None, Activation::Relu];
        for (k, len) in [0u32, 12, 0x8000_0010, u32::MAX].into_iter().enumerate() {
            let weights = Section { offset: 3, len };
            let params = Section { offset: 9, len: 24 };
            let ops = [
                Op::Linear {
                    input: k as u8,
                    output: 7,
                    weights,
                    params,
                    act: acts[k % 2],
                },
                Op::GcnConv {
                    input: 5 + k as u8,
                    output: 2,
                    weights,
                    params,
                    act: acts[k % 2],
                    improved: k % 2 == 0,
                    add_self_loops: true,
                    normalize: k < 2,
                    edge_weight: false,
                },
            ];
            for op in ops {
                let (mut want, mut got) = (Vec::new(), Vec::new());
                op.for_each_input(|t| want.push(t));
                op_inputs(&op, &mut |t| got.push(t));
                assert_eq!(got, want, "{op:?}");
                assert!(!want.is_empty());
                assert_eq!(op_has_i4(&op), op.has_i4_weights(), "{op:?}");
            }
        }
    }
}
