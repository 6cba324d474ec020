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
use crate::format::{self, Header, MetaHeader, Section, TensorDesc, TensorKind};
use crate::ops::{self, Op};
use crate::{MAX_CHANNELS, MAX_OPS, MAX_TENSORS};

/// A validated model borrowed from its bytes (RAM or flash).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    header: Header,
    meta: MetaHeader,
    data: &'a [u8],
    ops: &'a [u8],
    tensors: heapless::Vec<TensorDesc, MAX_TENSORS>,
    /// Bit `t` set: tensor `t` is int4 ([`format::ACT_BITS_FLAG`]; always 0
    /// without the cargo feature `act-i4`).
    /// (Two words, not a `u64`: the model keeps a 4-byte alignment.)
    #[cfg(feature = "act-i4")]
    i4: [u32; 2],
    /// The pair capacity ([`format::PairCapacity`]; 0 when absent).
    max_pairs: u32,
    /// The carried states: (state input tensor, next-state output tensor)
    /// pairs, two bytes each, in the file's order (empty: no state).
    #[cfg(feature = "op-recurrent")]
    states: &'a [u8],
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
        #[cfg(feature = "act-i4")]
        let (r, i4) = format::split_bit_table(rest, header.flags, meta.num_tensors)?;
        #[cfg(feature = "act-i4")]
        {
            rest = r;
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
            #[cfg(feature = "act-i4")]
            i4: [i4 as u32, (i4 >> 32) as u32],
            max_pairs: 0,
            #[cfg(feature = "op-recurrent")]
            states: &[],
        };
        #[cfg(feature = "op-recurrent")]
        {
            // The state record sits after the ops: read it first, so that
            // the state input counts as defined before the first op.
            let (p, states) = Self::state_trailer(model.skip_ops()?)?;
            model.states = states;
            model.validate_ops()?;
            model.check_state()?;
            model.max_pairs = p;
        }
        #[cfg(not(feature = "op-recurrent"))]
        {
            let trailer = model.validate_ops()?;
            model.max_pairs = Self::pair_capacity(trailer)?;
        }
        #[cfg(feature = "act-i4")]
        model.check_i4()?;
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

    #[cfg(not(feature = "op-recurrent"))]
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

    /// The metadata bytes after the ops (decoded, not yet validated).
    #[cfg(feature = "op-recurrent")]
    fn skip_ops(&self) -> Result<&'a [u8]> {
        let mut rest = self.ops;
        for index in 0..self.meta.num_ops {
            let tag = peek_varint_u32(rest).ok_or(Error::BadMetadata)?;
            if tag >= format::OP_TAGS {
                return Err(Error::UnknownOp { op: index, tag });
            }
            rest = match ops::take_op(rest) {
                format::Take::Ok(_, r) => r,
                format::Take::NotCompiled => return Err(Error::OpNotCompiled { op: index, tag }),
                format::Take::Bad => return Err(Error::BadMetadata),
            };
        }
        Ok(rest)
    }

    /// Decodes the trailer with a state record (`docs/format.md`, §2): empty;
    /// or the pair capacity alone (`1..=MAX_EDGES`); or the pair capacity
    /// (`0..=MAX_EDGES`) then `1..=MAX_STATES` (state input, next state)
    /// tensor-id pairs (one byte each) and nothing after them.
    #[cfg(feature = "op-recurrent")]
    fn state_trailer(trailer: &'a [u8]) -> Result<(u32, &'a [u8])> {
        if trailer.is_empty() {
            return Ok((0, &[]));
        }
        let (p, rest) = format::take_u32(trailer).ok_or(Error::BadMetadata)?;
        if p > crate::MAX_EDGES {
            return Err(Error::BadMetadata);
        }
        let pairs_ok = rest.len() % 2 == 0 && rest.len() <= 2 * crate::MAX_STATES;
        match rest.len() {
            0 if p > 0 => Ok((p, rest)),
            n if n > 0 && pairs_ok => Ok((p, rest)),
            _ => Err(Error::BadMetadata),
        }
    }

    /// Checks the state record ([`Error::InvalidState`]): each state input
    /// is a node tensor that is neither the model input nor the edge input
    /// (and no op writes it: single assignment, checked with the ops); each
    /// next state is a model output other than it, with the same
    /// descriptor; no two states share their input or their next state.
    #[cfg(feature = "op-recurrent")]
    fn check_state(&self) -> Result<()> {
        for (k, (s_in, s_out)) in self.states().enumerate() {
            let (Some(a), Some(b)) = (
                self.tensors.get(usize::from(s_in)),
                self.tensors.get(usize::from(s_out)),
            ) else {
                return Err(Error::InvalidState);
            };
            let distinct = self
                .states()
                .take(k)
                .all(|(i, o)| i != s_in && o != s_out && i != s_out && o != s_in);
            let ok = a.kind == TensorKind::Node
                && s_in != self.meta.input
                && s_in != s_out
                && distinct
                && self.meta.outputs.contains(&s_out)
                && a.kind == b.kind
                && a.channels == b.channels
                && a.scale.to_bits() == b.scale.to_bits()
                && a.zero_point == b.zero_point;
            if !ok {
                return Err(Error::InvalidState);
            }
        }
        Ok(())
    }

    /// Checks the int4 tensors ([`format::ACT_BITS_FLAG`]): node or graph
    /// tensors with a zero point in −8..=7 that are neither a model output,
    /// the edge input nor the carried state ([`Error::InvalidTensor`]); which ops may read and
    /// write them is checked with the ops.
    #[cfg(feature = "act-i4")]
    fn check_i4(&self) -> Result<()> {
        if !self.has_i4() {
            return Ok(());
        }
        for (t, d) in self.tensors.iter().enumerate() {
            let Ok(id) = u8::try_from(t) else { break };
            if !self.is_i4(id) {
                continue;
            }
            let state = self.states().any(|(a, b)| a == id || b == id);
            let kind_ok = matches!(d.kind, TensorKind::Node | TensorKind::Graph);
            let zp_ok = (-8..=7).contains(&d.zero_point);
            if !kind_ok || !zp_ok || state || self.meta.outputs.contains(&id) {
                return Err(Error::InvalidTensor {
                    tensor: u16::from(id),
                });
            }
        }
        Ok(())
    }

    /// Whether tensor `t` is int4: its rows are packed two values per byte
    /// (`ceil(channels / 2)` bytes per row; channel `2k` in the low nibble of
    /// byte `k`, `2k + 1` in the high nibble; 4-bit two's complement,
    /// zero point in −8..=7). Only intermediate tensors and the model input
    /// can be int4, never an output (`docs/format.md`, the bit-width table).
    /// Always false without the cargo feature `act-i4`.
    pub fn is_i4(&self, t: u8) -> bool {
        #[cfg(feature = "act-i4")]
        return self
            .i4
            .get(usize::from(t / 32))
            .is_some_and(|w| w & (1u32 << (t % 32)) != 0);
        #[cfg(not(feature = "act-i4"))]
        {
            let _ = t;
            false
        }
    }

    /// Whether any tensor is int4.
    #[cfg(feature = "act-i4")]
    fn has_i4(&self) -> bool {
        self.i4 != [0, 0]
    }

    /// Bytes of one row of tensor `t` of `channels` channels: `channels`,
    /// or `ceil(channels / 2)` for an int4 tensor ([`Model::is_i4`]).
    pub fn row_bytes(&self, t: u8, channels: usize) -> usize {
        if self.is_i4(t) {
            channels.div_ceil(2)
        } else {
            channels
        }
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
        // The carried states are defined before the first op.
        #[cfg(feature = "op-recurrent")]
        for (s_in, _) in self.states() {
            match defined.get_mut(usize::from(s_in)) {
                Some(d) if !*d && usize::from(s_in) < n => *d = true,
                _ => return Err(Error::InvalidState),
            }
        }
        let is_defined = |d: &[bool; MAX_TENSORS], t: usize| d.get(t).copied().unwrap_or(false);
        let mut rest = self.ops;
        for index in 0..self.meta.num_ops {
            let tag = peek_varint_u32(rest).ok_or(Error::BadMetadata)?;
            if tag >= format::OP_TAGS {
                return Err(Error::UnknownOp { op: index, tag });
            }
            let (op, r): (Op, &[u8]) = match ops::take_op(rest) {
                format::Take::Ok(op, r) => (op, r),
                format::Take::NotCompiled => return Err(Error::OpNotCompiled { op: index, tag }),
                format::Take::Bad => return Err(Error::BadMetadata),
            };
            rest = r;
            // An op family left out, or int4/int2 weights without their feature.
            if !ops::compiled(&op) || ops::needs_weight_feature(&op) {
                return Err(Error::OpNotCompiled { op: index, tag });
            }
            let bad = Error::InvalidOp { op: index };
            let mut inputs_ok = true;
            ops::inputs(&op, &mut |t| {
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
            let check = ops::Check {
                tensors: &self.tensors,
                data: ops::Weights(self.data),
            };
            ops::check(&op, &check).ok_or(bad)?;
            // int4 tensors only where the op reads and writes them.
            #[cfg(feature = "act-i4")]
            if self.has_i4() && !ops::takes_i4(&op) {
                let mut packed = self.is_i4(op.output());
                ops::inputs(&op, &mut |t| packed |= self.is_i4(t));
                if packed {
                    return Err(bad);
                }
            }
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

    /// The ops in execution order (internals: `format::Op`). The model was
    /// validated, so decoding does not fail; should it, the iterator simply
    /// ends early.
    #[doc(hidden)]
    pub fn ops(&self) -> impl Iterator<Item = Op> + 'a {
        let mut rest = self.ops;
        let mut left = self.meta.num_ops;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let format::Take::Ok(op, r) = ops::take_op(rest) else {
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

    /// Whether the model has a `HypergraphConv`, so every input must carry
    /// [`crate::GraphInput::hyperedges`]. Always false in a build without
    /// `op-hypergraph` (such a model is `OpNotCompiled` there).
    pub fn uses_hyperedges(&self) -> bool {
        #[cfg(feature = "op-hypergraph")]
        return self
            .ops()
            .any(|op| matches!(op, crate::ops::Op::HypergraphConv(_)));
        #[cfg(not(feature = "op-hypergraph"))]
        false
    }

    /// The carried states of a recurrent model (`op-recurrent`), in the
    /// file's order: each a (state input tensor, next-state output tensor)
    /// pair of the same channels, scale and zero point, so the state is
    /// carried as int8 without rescaling. Empty for a model without state.
    /// A GRU-style cell carries one state (`h`), an LSTM cell two (`h`, `c`),
    /// a stack of cells one (or two) per cell.
    pub fn states(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        #[cfg(feature = "op-recurrent")]
        let pairs: &[u8] = self.states;
        #[cfg(not(feature = "op-recurrent"))]
        let pairs: &[u8] = &[];
        pairs.chunks_exact(2).map(|p| (p[0], p[1]))
    }

    /// The first carried state ([`Model::states`]), `None` for a model
    /// without state.
    pub fn state(&self) -> Option<(u8, u8)> {
        self.states().next()
    }

    /// The number of carried states ([`Model::states`]).
    pub fn num_states(&self) -> usize {
        self.states().count()
    }

    /// The descriptor (channels `H`, scale, zero point) of state `k` in
    /// [`Model::states`]' order, if any.
    pub fn state_desc_at(&self, k: usize) -> Option<TensorDesc> {
        let (s, _) = self.states().nth(k)?;
        self.tensors.get(usize::from(s)).copied()
    }

    /// The first state's descriptor, if any ([`Model::state_desc_at`]`(0)`).
    pub fn state_desc(&self) -> Option<TensorDesc> {
        self.state_desc_at(0)
    }

    /// The length in int8 values (= bytes) of the state buffer of a graph of
    /// `nodes` nodes that [`crate::Session::run_step`] reads and writes:
    /// `nodes × (H₀ + H₁ + …)`, the states one after the other in
    /// [`Model::states`]' order, each `[nodes, Hₖ]` row-major; 0 for a model
    /// without state.
    pub fn state_bytes(&self, nodes: usize) -> usize {
        self.states()
            .filter_map(|(s, _)| self.tensors.get(usize::from(s)))
            .fold(0usize, |acc, d| {
                acc.saturating_add(nodes.saturating_mul(usize::from(d.channels)))
            })
    }

    /// Writes the initial (zero) state of a graph of `nodes` nodes into
    /// `state`: each state's block all its zero point, so that the first
    /// [`crate::Session::run_step`] starts from `h = 0` (and `c = 0`).
    ///
    /// # Errors
    /// [`Error::StateSize`] unless `state` is [`Model::state_bytes`]`(nodes)`
    /// long (then nothing is written).
    pub fn init_state(&self, nodes: usize, state: &mut [i8]) -> Result<()> {
        let expected = self.state_bytes(nodes);
        if state.len() != expected {
            return Err(Error::StateSize {
                expected: u32::try_from(expected).unwrap_or(u32::MAX),
                actual: u32::try_from(state.len()).unwrap_or(u32::MAX),
            });
        }
        let mut dst = state.iter_mut();
        for k in 0..self.num_states() {
            let Some(d) = self.state_desc_at(k) else {
                break;
            };
            let len = nodes.saturating_mul(usize::from(d.channels));
            for v in dst.by_ref().take(len) {
                *v = d.zero_point;
            }
        }
        Ok(())
    }

    /// Whether any op reads edge weights.
    pub fn uses_edge_weight(&self) -> bool {
        self.meta.uses_edge_weight
    }

    /// The CRC-32 (ISO-HDLC) stored in the file's header, over everything
    /// after the first 16 bytes: checked by [`Model::from_bytes`], it
    /// identifies the model (e.g. to check that a device runs the model a
    /// host expects).
    pub fn crc(&self) -> u32 {
        self.header.crc
    }

    /// The fixed header (internals).
    #[doc(hidden)]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes of a data section (validated sections always resolve; an
    /// unknown one yields an empty slice).
    #[doc(hidden)]
    pub fn data(&self, s: Section) -> &'a [u8] {
        format::section(self.data, s).unwrap_or(&[])
    }

    /// An int8 weight section (empty for an int4 one: use [`Model::matrix`]).
    #[doc(hidden)]
    pub fn weights(&self, s: Section) -> &'a [i8] {
        bytemuck::cast_slice(self.data(s))
    }

    /// The data section, as the ops read it.
    #[doc(hidden)]
    pub fn weights_data(&self) -> crate::ops::Weights<'a> {
        crate::ops::Weights(self.data)
    }

    /// A weight section of either precision (`format::WeightBits`), for the
    /// kernels of `kernels::dense_i4::Matrix`.
    #[doc(hidden)]
    pub fn matrix(&self, s: Section) -> crate::kernels::dense_i4::Matrix<'a> {
        ops::Weights(self.data).matrix(s)
    }
}
