//! Writes the `.tgnn` format (feature `std`). The host tool builds models only
//! through [`ModelWriter`], so the reader and the writer cannot drift apart.

extern crate std;
use std::vec::Vec;

use super::{MetaHeader, Op, Section, TensorDesc, CRC, HEADER_LEN, MAGIC, SECTION_ALIGN, VERSION};

/// One weight section's element layout, for [`ModelWriter::add_channel_params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Bias in the accumulator's scale.
    pub bias: i32,
    /// Q31 multiplier.
    pub mult: i32,
    /// Exponent.
    pub shift: i32,
}

/// Accumulates weight sections, tensors and ops, then serializes the file.
#[derive(Debug, Default)]
pub struct ModelWriter {
    data: Vec<u8>,
    tensors: Vec<TensorDesc>,
    ops: Vec<Op>,
    /// The pair capacity (0 unless set with [`ModelWriter::set_max_pairs`]).
    max_pairs: u32,
    /// The state record ([`ModelWriter::set_states`]).
    states: Vec<(u8, u8)>,
    /// Bit `t`: tensor `t` is int4 ([`ModelWriter::set_i4`]).
    i4: u64,
}

/// Errors the writer can report (the model is inconsistent, not an I/O problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// postcard could not encode the metadata.
    Encode,
    /// Too many tensors or ops for the format.
    TooMany,
    /// The written file does not pass the runtime's own validation.
    Invalid(crate::Error),
    /// An int4 matrix with a value outside −8..=7, or whose length is not a
    /// multiple of its row length.
    Int4Range,
    /// An int2 matrix with a value outside −2..=1, or whose length is not a
    /// multiple of its row length.
    Int2Range,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::Encode => f.write_str("metadata encoding failed"),
            WriteError::TooMany => f.write_str("too many tensors or ops"),
            WriteError::Invalid(e) => write!(f, "written model fails validation: {e}"),
            WriteError::Int4Range => {
                f.write_str("int4 weights outside -8..=7 or not whole rows of in_ch values")
            }
            WriteError::Int2Range => {
                f.write_str("int2 weights outside -2..=1 or not whole rows of in_ch values")
            }
        }
    }
}

impl std::error::Error for WriteError {}

impl ModelWriter {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends raw bytes as a 4-aligned section of the data region.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Section {
        while self.data.len() % SECTION_ALIGN != 0 {
            self.data.push(0);
        }
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        Section {
            offset,
            len: bytes.len() as u32,
        }
    }

    /// Appends an int8 matrix (row-major).
    pub fn add_i8(&mut self, values: &[i8]) -> Section {
        let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
        self.add_bytes(&bytes)
    }

    /// Appends an int4 matrix (row-major `[out_ch, in_ch]`, values in −8..=7)
    /// packed as [`super::WeightBits::I4`] describes; the returned section
    /// carries [`super::WEIGHTS_I4_FLAG`].
    pub fn add_i4(&mut self, values: &[i8], in_ch: usize) -> Result<Section, WriteError> {
        let bytes = pack_i4(values, in_ch)?;
        let s = self.add_bytes(&bytes);
        Ok(Section {
            offset: s.offset,
            len: s.len | super::WEIGHTS_I4_FLAG,
        })
    }

    /// Appends an int2 matrix (row-major `[out_ch, in_ch]`, values in −2..=1)
    /// packed as [`super::WeightBits::I2`] describes; the returned section
    /// carries [`super::WEIGHTS_I2_FLAG`].
    pub fn add_i2(&mut self, values: &[i8], in_ch: usize) -> Result<Section, WriteError> {
        let bytes = pack_i2(values, in_ch)?;
        let s = self.add_bytes(&bytes);
        Ok(Section {
            offset: s.offset,
            len: s.len | super::WEIGHTS_I2_FLAG,
        })
    }

    /// Appends a weight matrix in the given precision ([`Self::add_i8`],
    /// [`Self::add_i4`] or [`Self::add_i2`]).
    pub fn add_weights(
        &mut self,
        bits: super::WeightBits,
        values: &[i8],
        in_ch: usize,
    ) -> Result<Section, WriteError> {
        match bits {
            super::WeightBits::I8 => Ok(self.add_i8(values)),
            super::WeightBits::I4 => self.add_i4(values, in_ch),
            super::WeightBits::I2 => self.add_i2(values, in_ch),
        }
    }

    /// Appends a [`super::ChannelParams`] section for `records.len()` channels:
    /// the compact form (`bias` × C, then one `mult, shift`: `4·C + 8` bytes)
    /// when every record has the same `mult` and `shift`, else the full form
    /// (12-byte records). Both read back to the same records.
    pub fn add_channel_params(&mut self, records: &[ChannelRecord]) -> Section {
        match records.first() {
            Some(first)
                if records.len() > 1
                    && records
                        .iter()
                        .all(|r| r.mult == first.mult && r.shift == first.shift) =>
            {
                let mut bytes = Vec::with_capacity(records.len() * 4 + 8);
                for r in records {
                    bytes.extend_from_slice(&r.bias.to_le_bytes());
                }
                bytes.extend_from_slice(&first.mult.to_le_bytes());
                bytes.extend_from_slice(&first.shift.to_le_bytes());
                self.add_bytes(&bytes)
            }
            _ => self.add_channel_params_full(records),
        }
    }

    /// Appends a [`super::ChannelParams`] section always in the full form
    /// (one 12-byte `(bias, mult, shift)` record per channel), as every file
    /// before the compact form had it.
    pub fn add_channel_params_full(&mut self, records: &[ChannelRecord]) -> Section {
        let mut bytes = Vec::with_capacity(records.len() * 12);
        for r in records {
            bytes.extend_from_slice(&r.bias.to_le_bytes());
            bytes.extend_from_slice(&r.mult.to_le_bytes());
            bytes.extend_from_slice(&r.shift.to_le_bytes());
        }
        self.add_bytes(&bytes)
    }

    /// Adds a tensor descriptor and returns its id.
    pub fn add_tensor(&mut self, t: TensorDesc) -> u8 {
        self.tensors.push(t);
        (self.tensors.len() - 1) as u8
    }

    /// Appends an op (ops run in the order added).
    pub fn add_op(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Sets the model's pair capacity ([`super::PairCapacity`]), required
    /// `≥ 1` when the model has a pair tensor; 0 by default.
    pub fn set_max_pairs(&mut self, max_pairs: u32) {
        self.max_pairs = max_pairs;
    }

    /// Makes tensor `t` an int4 activation tensor (packed two values per
    /// byte in the arena; its zero point must be in −8..=7): the file then
    /// has header flag [`super::ACT_BITS_FLAG`] and the bit-width table
    /// (`docs/format.md`). Ignored for `t ≥ 64`.
    pub fn set_i4(&mut self, t: u8) {
        if t < 64 {
            self.i4 |= 1u64 << t;
        }
    }

    /// Marks the model recurrent (`op-recurrent`): tensor `state_in` (a node
    /// tensor no op writes) is read from the caller's state buffer before the
    /// first op, and output `state_out` (same descriptor) is written back to
    /// it after the last (`docs/format.md`, the state record).
    pub fn set_state(&mut self, state_in: u8, state_out: u8) {
        self.set_states(&[(state_in, state_out)]);
    }

    /// Marks the model recurrent with several carried states (an LSTM's
    /// `h` and `c`, a stack of cells): (`state_in`, `state_out`) pairs as in
    /// [`ModelWriter::set_state`], in the order of the caller's state buffer.
    pub fn set_states(&mut self, states: &[(u8, u8)]) {
        self.states = states.to_vec();
    }

    /// Tensors added so far.
    pub fn tensors(&self) -> &[TensorDesc] {
        &self.tensors
    }

    /// Serializes the model and checks it with [`crate::Model::from_bytes`].
    pub fn finish(
        &self,
        input: u8,
        outputs: &[u8],
        max_nodes: u32,
        max_edges: u32,
        max_graphs: u32,
    ) -> Result<Vec<u8>, WriteError> {
        if self.tensors.len() > crate::MAX_TENSORS || self.ops.len() > crate::MAX_OPS {
            return Err(WriteError::TooMany);
        }
        let uses_edge_weight = self.ops.iter().any(Op::uses_edge_weight);
        let header = MetaHeader {
            max_nodes,
            max_edges,
            max_graphs,
            num_tensors: self.tensors.len() as u16,
            num_ops: self.ops.len() as u16,
            input,
            outputs: heapless::Vec::from_slice(outputs).map_err(|_| WriteError::TooMany)?,
            uses_edge_weight,
        };
        let mut meta = postcard::to_stdvec(&header).map_err(|_| WriteError::Encode)?;
        for t in &self.tensors {
            meta.extend(postcard::to_stdvec(t).map_err(|_| WriteError::Encode)?);
        }
        for op in &self.ops {
            meta.extend(postcard::to_stdvec(op).map_err(|_| WriteError::Encode)?);
        }
        if self.max_pairs > 0 || !self.states.is_empty() {
            // The optional pair-capacity trailer (`super::PairCapacity`),
            // present (maybe 0) before a state record.
            meta.extend(postcard::to_stdvec(&self.max_pairs).map_err(|_| WriteError::Encode)?);
        }
        for &(s_in, s_out) in &self.states {
            meta.extend([s_in, s_out]);
        }
        // The bit-width table (`super::split_bit_table`), only with int4 tensors.
        let flags = if self.i4 != 0 {
            for t in 0..self.tensors.len() {
                meta.push(if t < 64 && self.i4 & (1u64 << t) != 0 {
                    4
                } else {
                    8
                });
            }
            super::ACT_BITS_FLAG
        } else {
            0
        };

        let meta_off = HEADER_LEN;
        let mut data_off = meta_off + meta.len();
        data_off = data_off.div_ceil(16) * 16;
        let file_len = data_off + self.data.len();

        let mut out = Vec::with_capacity(file_len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(file_len as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // CRC, patched below
        out.extend_from_slice(&(meta_off as u32).to_le_bytes());
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data_off as u32).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        out.resize(data_off, 0);
        out.extend_from_slice(&self.data);
        let crc = CRC.checksum(&out[16..]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());

        crate::Model::from_bytes(&out).map_err(WriteError::Invalid)?;
        Ok(out)
    }
}

/// Packs a row-major `[out_ch, in_ch]` matrix of values in −8..=7 into the
/// int4 layout of [`super::WeightBits::I4`]: two per byte, even `k` in the low
/// nibble, rows padded to whole bytes with a zero nibble.
pub fn pack_i4(values: &[i8], in_ch: usize) -> Result<Vec<u8>, WriteError> {
    if in_ch == 0 || values.len() % in_ch != 0 || values.iter().any(|v| !(-8..=7).contains(v)) {
        return Err(WriteError::Int4Range);
    }
    let mut out = Vec::with_capacity(values.len() / in_ch * in_ch.div_ceil(2));
    for row in values.chunks_exact(in_ch) {
        for pair in row.chunks(2) {
            let lo = (pair[0] as u8) & 0x0F;
            let hi = pair.get(1).map_or(0, |&h| (h as u8) & 0x0F);
            out.push(lo | (hi << 4));
        }
    }
    Ok(out)
}

/// Packs a row-major `[out_ch, in_ch]` matrix of values in −2..=1 into the
/// int2 layout of [`super::WeightBits::I2`]: four per byte, weight `k` in bits
/// `2·(k % 4)..`, rows padded to whole bytes with zero fields.
pub fn pack_i2(values: &[i8], in_ch: usize) -> Result<Vec<u8>, WriteError> {
    if in_ch == 0 || values.len() % in_ch != 0 || values.iter().any(|v| !(-2..=1).contains(v)) {
        return Err(WriteError::Int2Range);
    }
    let mut out = Vec::with_capacity(values.len() / in_ch * in_ch.div_ceil(4));
    for row in values.chunks_exact(in_ch) {
        for quad in row.chunks(4) {
            let b = quad
                .iter()
                .enumerate()
                .fold(0u8, |b, (j, &v)| b | (((v as u8) & 0b11) << (2 * j)));
            out.push(b);
        }
    }
    Ok(out)
}

/// Recomputes and stores the CRC of a model image (for tests that patch bytes
/// deliberately and want to get past the checksum to a deeper check).
pub fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= HEADER_LEN {
        let crc = CRC.checksum(&bytes[16..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}
