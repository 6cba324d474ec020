//! The `.tgnn` model binary: bytes ⇄ validated views.
//!
//! Layout (all integers little endian; described byte by byte in `docs/format.md`):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "TGNN"
//!      4     2  format version (1)
//!      6     2  flags (0, or ACT_BITS_FLAG: a bit-width table ends the metadata)
//!      8     4  file length in bytes
//!     12     4  CRC-32 (ISO-HDLC) of bytes 16..file length
//!     16     4  metadata offset      20  4  metadata length
//!     24     4  data offset          28  4  data length
//!     32     …  metadata: postcard MetaHeader, then num_tensors × TensorDesc,
//!               then num_ops × Op
//!      …     …  zero padding to a multiple of 16
//!   data     …  weight sections (int8 or packed int4 matrices, channel params: 12-byte records or compact), each 4-aligned
//! ```
//!
//! Nothing else in the crate reads raw model bytes. [`Header::parse`] checks the
//! fixed header and the checksum; [`crate::Model::from_bytes`] decodes and
//! validates the metadata. With feature `std`, `writer` writes the format.

mod desc;
pub mod small;
#[cfg(feature = "std")]
pub mod writer;

pub use desc::*;
pub use small::Take;
// The ops' descriptors, named here too: the model format is the tensors plus
// these (each op's parameters and semantics live in its module of `ops`).
pub use crate::ops::gat::GatEdge;
pub use crate::ops::link::PairMode;
pub use crate::ops::transformer::TransformerEdge;
pub use crate::ops::{take_op, Op, OP_TAGS};

use crate::error::{Error, Result};

/// The four magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"TGNN";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Alignment of the data section and of every weight section in it.
pub const SECTION_ALIGN: usize = 4;

/// Header flag bit 0: the metadata ends with the **bit-width table**, one
/// byte per tensor (`8` or `4`) after everything else (`docs/format.md`,
/// §2), so that some activation tensors are int4 (two values per byte in
/// the arena). Files without int4 activations leave it clear and keep their
/// bytes. Read only with the cargo feature `act-i4`; a build without it (or
/// a reader that predates it) rejects the file with `UnsupportedFlags`.
pub const ACT_BITS_FLAG: u16 = 1;

/// The flags this build reads.
const KNOWN_FLAGS: u16 = if cfg!(feature = "act-i4") {
    ACT_BITS_FLAG
} else {
    0
};

/// CRC used for the whole-file checksum.
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The fixed 32-byte header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Flags: 0, or [`ACT_BITS_FLAG`] (feature `act-i4`).
    pub flags: u16,
    /// Total file length.
    pub file_len: u32,
    /// Stored CRC-32.
    pub crc: u32,
    /// Metadata section.
    pub meta: Section,
    /// Data section.
    pub data: Section,
}

fn le_u16(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(Error::Truncated)
}

fn le_u32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(Error::Truncated)
}

impl Header {
    /// Parses and checks the header of `bytes`: magic, version, flags, length,
    /// CRC and that both sections lie inside the file after the header.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if bytes.get(0..4) != Some(&MAGIC[..]) {
            return Err(Error::BadMagic);
        }
        let version = le_u16(bytes, 4)?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let flags = le_u16(bytes, 6)?;
        let file_len = le_u32(bytes, 8)?;
        let actual = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if (file_len as usize) > bytes.len() {
            return Err(Error::Truncated);
        }
        if file_len != actual {
            return Err(Error::LengthMismatch {
                declared: file_len,
                actual,
            });
        }
        let crc = le_u32(bytes, 12)?;
        let body = bytes.get(16..).ok_or(Error::Truncated)?;
        if CRC.checksum(body) != crc {
            return Err(Error::ChecksumMismatch);
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::UnsupportedFlags);
        }
        let meta = Section {
            offset: le_u32(bytes, 16)?,
            len: le_u32(bytes, 20)?,
        };
        let data = Section {
            offset: le_u32(bytes, 24)?,
            len: le_u32(bytes, 28)?,
        };
        for s in [meta, data] {
            let end = s.offset.checked_add(s.len).ok_or(Error::BadSection)?;
            if (s.offset as usize) < HEADER_LEN || end > file_len {
                return Err(Error::BadSection);
            }
        }
        if (data.offset as usize) % SECTION_ALIGN != 0 {
            return Err(Error::BadSection);
        }
        Ok(Header {
            version,
            flags,
            file_len,
            crc,
            meta,
            data,
        })
    }
}

/// Returns `bytes[s.offset .. s.offset + s.len]`, or `None` when out of range.
pub fn section(bytes: &[u8], s: Section) -> Option<&[u8]> {
    let start = s.offset as usize;
    let end = start.checked_add(s.len as usize)?;
    bytes.get(start..end)
}

/// Decodes the [`MetaHeader`] at the start of the metadata; `None` if the
/// bytes are not a valid encoding. With postcard, or in builds with
/// `cfg(tinygnn_small_decoder)` (only `op-gcn`/`op-linear`) with the
/// hand-written reader of [`small`] (same bytes, same results).
pub fn take_meta_header(bytes: &[u8]) -> Option<(MetaHeader, &[u8])> {
    #[cfg(tinygnn_small_decoder)]
    return small::take_meta_header(bytes);
    #[cfg(not(tinygnn_small_decoder))]
    return postcard::take_from_bytes(bytes).ok();
}

/// Decodes a [`TensorDesc`] (see [`take_meta_header`]).
pub fn take_tensor_desc(bytes: &[u8]) -> Option<(TensorDesc, &[u8])> {
    #[cfg(tinygnn_small_decoder)]
    return small::take_tensor_desc(bytes);
    #[cfg(not(tinygnn_small_decoder))]
    return postcard::take_from_bytes(bytes).ok();
}

/// Splits the bit-width table (one byte per tensor, [`ACT_BITS_FLAG`]) off
/// the end of the metadata `meta` of a model of `num_tensors` tensors:
/// returns the metadata before it and a mask with bit `t` set for every int4
/// tensor `t`. Without the flag the metadata is returned whole with an empty
/// mask. A table longer than the metadata is [`Error::BadMetadata`]; an
/// entry other than 8 or 4 is [`Error::InvalidTensor`]; a table without any
/// 4 is `BadMetadata` too (the flag would be redundant: one encoding per
/// model).
pub fn split_bit_table(meta: &[u8], flags: u16, num_tensors: u16) -> Result<(&[u8], u64)> {
    if flags & ACT_BITS_FLAG == 0 || !cfg!(feature = "act-i4") {
        return Ok((meta, 0));
    }
    let n = usize::from(num_tensors);
    let at = meta.len().checked_sub(n).ok_or(Error::BadMetadata)?;
    let (head, table) = meta.split_at_checked(at).ok_or(Error::BadMetadata)?;
    let mut mask = 0u64;
    for (t, &b) in table.iter().enumerate() {
        match b {
            8 => {}
            4 if t < 64 => mask |= 1 << t,
            _ => {
                return Err(Error::InvalidTensor {
                    tensor: u16::try_from(t).unwrap_or(u16::MAX),
                })
            }
        }
    }
    if mask == 0 {
        return Err(Error::BadMetadata);
    }
    Ok((head, mask))
}

/// Decodes a `u32` varint (see [`take_meta_header`]), e.g. the pair-capacity
/// trailer.
pub fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    #[cfg(tinygnn_small_decoder)]
    return small::take_u32(bytes);
    #[cfg(not(tinygnn_small_decoder))]
    return postcard::take_from_bytes(bytes).ok();
}
