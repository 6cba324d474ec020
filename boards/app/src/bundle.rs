//! The input bundle: a set of input graphs (and optional labels) stored in
//! flash next to the model, read in place.
//!
//! Everything is little endian and every block starts 4-aligned, so feature
//! and index arrays are cast in place (the bundle itself must be 4-aligned in
//! memory: embed it with [`crate::include_aligned!`]). [`Bundle::parse`]
//! checks the header and the CRC once; [`Bundle::samples`] checks each
//! sample's declared sizes against its length before handing out slices.
//! Nothing here panics, whatever the bytes. Graph *contents* (node indices in
//! range, batch order) are left to the runtime's own input validation.
//!
//! ```text
//! bundle header (16 bytes)
//!   0  4  magic "TGIB"
//!   4  2  version (1)
//!   6  2  number of samples S
//!   8  4  total length in bytes (multiple of 4)
//!  12  4  CRC-32 (ISO-HDLC) of bytes 16..length
//! then S samples, back to back:
//!   0  4  sample length in bytes, header included (multiple of 4)
//!   4  2  nodes N          6  2  graphs G (≥ 1)
//!   8  4  edges E         12  2  feature channels F
//!  14  1  flags: bit0 features are int8 (already quantized with the model's
//!         input scale / zero point; else f32), bit1 edge weights present,
//!         bit2 batch vector present, bit3 labels present, bit4 features
//!         are sparse int8 (CSR; requires bit0), bit5 edge features present, bit6 node pairs present,
//!         bit7 hyperedges present
//!  15  1  labels per: 0 node, 1 graph
//!  16  …  features  N·F × f32 (or i8)       — each array zero-padded to 4 bytes
//!         or, with bit4 (sparse int8, CSR):
//!           nnz      1 × u32                 stored entries
//!           row_ptr  (N+1) × u32             row i = entries row_ptr[i]..row_ptr[i+1]
//!           cols     nnz × u16               column of each entry
//!           values   nnz × i8                quantized value of each entry;
//!                                            every other entry is the input zero point
//!         sources   E × u16
//!         targets   E × u16
//!         edge_weight E × f32               (bit1)
//!         batch     N × u16                 (bit2)
//!         labels    N or G × i16, −1 = not scored (masked out)   (bit3)
//!         edge_dim  1 × u32 (D ≥ 1), then edge_attr E·D × f32, row-major  (bit5)
//!         pairs     1 × u32 P, then P × u16 sources, P × u16 targets:
//!                   node pairs to score (link prediction)        (bit6)
//!         hyperedges 1 × u32 nnz, nnz × u16 nodes, nnz × u16 hyperedge ids,
//!                   1 × u32 W, W × f32 hyperedge weights (W = 0: none)  (bit7)
//! ```

/// Bundle magic.
pub const MAGIC: [u8; 4] = *b"TGIB";
/// Bundle format version.
pub const VERSION: u16 = 1;
/// Bundle header length.
pub const HEADER_LEN: usize = 16;
/// Sample header length.
pub const SAMPLE_HEADER_LEN: usize = 16;

/// Sample flag: features are int8.
pub const FLAG_I8: u8 = 1;
/// Sample flag: edge weights present.
pub const FLAG_EDGE_WEIGHT: u8 = 2;
/// Sample flag: batch vector present.
pub const FLAG_BATCH: u8 = 4;
/// Sample flag: labels present.
pub const FLAG_LABELS: u8 = 8;
/// Sample flag: features are sparse int8 in CSR form (with [`FLAG_I8`]).
pub const FLAG_SPARSE: u8 = 16;
/// Sample flag: edge features present (edgefeat).
pub const FLAG_EDGE_ATTR: u8 = 32;
/// Sample flag: node pairs present (link prediction).
pub const FLAG_PAIRS: u8 = 64;
/// Sample flag: hyperedges present (`hyperedge_index`, `hyperedge_weight`).
pub const FLAG_HYPEREDGES: u8 = 128;

#[cfg(target_endian = "big")]
compile_error!("the input bundle is cast in place and assumes a little-endian target");

/// The CRC-32 of the bundle (a `static`, so its table is built at compile time, once).
pub(crate) static CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What is wrong with a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BundleError {
    /// Shorter than its header or than the length it declares.
    Truncated,
    /// Not "TGIB".
    BadMagic,
    /// Unknown version.
    UnsupportedVersion,
    /// Declared length differs from the slice or is not a multiple of 4.
    BadLength,
    /// CRC mismatch.
    Checksum,
    /// The bundle does not start 4-aligned in memory.
    Misaligned,
    /// Sample `index` has inconsistent sizes or flags.
    BadSample {
        /// Index of the sample.
        index: u16,
    },
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BundleError::Truncated => f.write_str("bundle truncated"),
            BundleError::BadMagic => f.write_str("bundle magic is not TGIB"),
            BundleError::UnsupportedVersion => f.write_str("unsupported bundle version"),
            BundleError::BadLength => f.write_str("bundle length mismatch"),
            BundleError::Checksum => f.write_str("bundle CRC mismatch"),
            BundleError::Misaligned => f.write_str("bundle not 4-aligned in memory"),
            BundleError::BadSample { index } => write!(f, "bundle sample {index} is malformed"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)?.try_into().ok().map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?.try_into().ok().map(u32::from_le_bytes)
}

/// `n` rounded up to a multiple of 4.
pub const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// A checked bundle.
#[derive(Debug, Clone, Copy)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    count: u16,
}

/// Labels of a sample: per node or per graph; −1 = not scored.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// One label per node (node task) or per graph (graph task).
    pub per_graph: bool,
    /// The labels.
    pub values: &'a [i16],
}

/// Node features of a sample, `[nodes, channels]` row-major.
#[derive(Debug, Clone, Copy)]
pub enum Features<'a> {
    /// Float features (quantized by the runtime with the model's input scale).
    F32(&'a [f32]),
    /// Already-quantized features.
    I8(&'a [i8]),
    /// Already-quantized sparse features (CSR, see [`tinygnn::graph::Features::SparseI8`]):
    /// only the array lengths are checked here (`row_ptr` has `nodes + 1`
    /// entries, `cols` and `values` the declared count); the CSR invariants
    /// are checked by the runtime.
    SparseI8 {
        /// Row offsets into `cols`/`values` (`nodes + 1` entries).
        row_ptr: &'a [u32],
        /// Column of each stored entry.
        cols: &'a [u16],
        /// Quantized value of each stored entry.
        values: &'a [i8],
    },
}

/// One input graph (or batch of graphs) of a bundle.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Number of nodes.
    pub nodes: u16,
    /// Feature channels.
    pub channels: u16,
    /// Node features.
    pub features: Features<'a>,
    /// Edge sources (node indices).
    pub sources: &'a [u16],
    /// Edge targets.
    pub targets: &'a [u16],
    /// Edge weights.
    pub edge_weight: Option<&'a [f32]>,
    /// Graph of each node.
    pub batch: Option<&'a [u16]>,
    /// Number of graphs in the batch.
    pub graphs: u16,
    /// Number of edges.
    pub edges: u32,
    /// Labels, when the bundle has them.
    pub labels: Option<Labels<'a>>,
    /// Edge features `[edges, D]` row-major, when present.
    pub edge_attr: Option<&'a [f32]>,
    /// Node pairs `(sources, targets)` to score (link prediction).
    pub pairs: Option<(&'a [u16], &'a [u16])>,
    /// The hypergraph incidence (`hyperedge_index`, `hyperedge_weight`).
    pub hyperedges: Option<tinygnn::Hyperedges<'a>>,
}

impl<'a> Bundle<'a> {
    /// Checks the header, length, alignment and CRC.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        if bytes.len() < HEADER_LEN {
            return Err(BundleError::Truncated);
        }
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(BundleError::BadMagic);
        }
        if u16_at(bytes, 4) != Some(VERSION) {
            return Err(BundleError::UnsupportedVersion);
        }
        let count = u16_at(bytes, 6).ok_or(BundleError::Truncated)?;
        let len = u32_at(bytes, 8).ok_or(BundleError::Truncated)? as usize;
        if len != bytes.len() || len % 4 != 0 {
            return Err(BundleError::BadLength);
        }
        if bytes.as_ptr() as usize % 4 != 0 {
            return Err(BundleError::Misaligned);
        }
        let crc = u32_at(bytes, 12).ok_or(BundleError::Truncated)?;
        if CRC.checksum(bytes.get(HEADER_LEN..).unwrap_or(&[])) != crc {
            return Err(BundleError::Checksum);
        }
        Ok(Bundle { bytes, count })
    }

    /// Number of samples declared.
    pub fn len(&self) -> u16 {
        self.count
    }

    /// Whether the bundle holds no sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The samples in order; each item is checked as it is reached.
    pub fn samples(&self) -> impl Iterator<Item = Result<Sample<'a>, BundleError>> + 'a {
        let mut at = HEADER_LEN;
        let bytes = self.bytes;
        let mut index = 0u16;
        let count = self.count;
        core::iter::from_fn(move || {
            if index >= count {
                return None;
            }
            let i = index;
            index += 1;
            let bad = BundleError::BadSample { index: i };
            let r = parse_sample(bytes, at).ok_or(bad);
            match r {
                Ok((s, len)) => {
                    at += len;
                    Some(Ok(s))
                }
                Err(e) => {
                    index = count; // stop after the first bad sample
                    Some(Err(e))
                }
            }
        })
    }
}

/// Takes `n` elements of `T` (4-aligned block, padded) from `b[*at..]`.
fn take<'a, T: bytemuck::AnyBitPattern>(b: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [T]> {
    let len = n.checked_mul(core::mem::size_of::<T>())?;
    let end = at.checked_add(len)?;
    let s = bytemuck::try_cast_slice(b.get(*at..end)?).ok()?;
    *at = at.checked_add(pad4(len))?;
    Some(s)
}

fn parse_sample(b: &[u8], start: usize) -> Option<(Sample<'_>, usize)> {
    let len = u32_at(b, start)? as usize;
    let end = start.checked_add(len)?;
    if len < SAMPLE_HEADER_LEN || len % 4 != 0 || end > b.len() {
        return None;
    }
    let b = b.get(..end)?;
    let nodes = u16_at(b, start + 4)?;
    let graphs = u16_at(b, start + 6)?;
    let edges = u32_at(b, start + 8)?;
    let channels = u16_at(b, start + 12)?;
    let flags = *b.get(start + 14)?;
    let per_graph = match *b.get(start + 15)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    // (Every flag bit is defined: no unknown flag to refuse.)
    if graphs == 0 || channels == 0 {
        return None;
    }
    if flags & FLAG_SPARSE != 0 && flags & FLAG_I8 == 0 {
        return None;
    }
    let (n, e) = (usize::from(nodes), edges as usize);
    let nf = n.checked_mul(usize::from(channels))?;
    let mut at = start + SAMPLE_HEADER_LEN;
    let features = if flags & FLAG_SPARSE != 0 {
        let nnz = u32_at(b, at)? as usize;
        at += 4;
        Features::SparseI8 {
            row_ptr: take::<u32>(b, &mut at, n.checked_add(1)?)?,
            cols: take::<u16>(b, &mut at, nnz)?,
            values: take::<i8>(b, &mut at, nnz)?,
        }
    } else if flags & FLAG_I8 != 0 {
        Features::I8(take::<i8>(b, &mut at, nf)?)
    } else {
        Features::F32(take::<f32>(b, &mut at, nf)?)
    };
    let sources = take::<u16>(b, &mut at, e)?;
    let targets = take::<u16>(b, &mut at, e)?;
    let edge_weight = if flags & FLAG_EDGE_WEIGHT != 0 {
        Some(take::<f32>(b, &mut at, e)?)
    } else {
        None
    };
    let batch = if flags & FLAG_BATCH != 0 {
        Some(take::<u16>(b, &mut at, n)?)
    } else {
        None
    };
    let labels = if flags & FLAG_LABELS != 0 {
        let count = if per_graph { usize::from(graphs) } else { n };
        Some(Labels {
            per_graph,
            values: take::<i16>(b, &mut at, count)?,
        })
    } else {
        None
    };
    let edge_attr = if flags & FLAG_EDGE_ATTR != 0 {
        let d = u32_at(b, at)? as usize;
        at += 4;
        if d == 0 {
            return None;
        }
        Some(take::<f32>(b, &mut at, e.checked_mul(d)?)?)
    } else {
        None
    };
    let pairs = if flags & FLAG_PAIRS != 0 {
        let p = u32_at(b, at)? as usize;
        at += 4;
        Some((take::<u16>(b, &mut at, p)?, take::<u16>(b, &mut at, p)?))
    } else {
        None
    };
    let hyperedges = if flags & FLAG_HYPEREDGES != 0 {
        let nnz = u32_at(b, at)? as usize;
        at += 4;
        let nodes = take::<u16>(b, &mut at, nnz)?;
        let edges = take::<u16>(b, &mut at, nnz)?;
        let w = u32_at(b, at)? as usize;
        at += 4;
        let weight = if w == 0 {
            None
        } else {
            Some(take::<f32>(b, &mut at, w)?)
        };
        Some(tinygnn::Hyperedges {
            nodes,
            edges,
            weight,
        })
    } else {
        None
    };
    if at != end {
        return None;
    }
    Some((
        Sample {
            nodes,
            channels,
            features,
            sources,
            targets,
            edge_weight,
            batch,
            graphs,
            edges,
            labels,
            edge_attr,
            pairs,
            hyperedges,
        },
        len,
    ))
}

/// Writes bundles (host side, feature `std`).
#[cfg(feature = "std")]
pub mod writer {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Owned hyperedges: incidence nodes, hyperedge ids, optional weights.
    pub type OwnedHyperedges = (Vec<u16>, Vec<u16>, Option<Vec<f32>>);

    /// Owned sample data, the input of [`write`].
    #[derive(Debug, Clone, Default)]
    pub struct OwnedSample {
        /// Number of nodes.
        pub nodes: u16,
        /// Number of graphs (≥ 1).
        pub graphs: u16,
        /// Feature channels.
        pub channels: u16,
        /// f32 features `[nodes, channels]` (empty when `features_i8` is used).
        pub features_f32: Vec<f32>,
        /// int8 features, when already quantized.
        pub features_i8: Option<Vec<i8>>,
        /// Sparse int8 features (CSR `row_ptr`, `cols`, `values`), when
        /// already quantized and stored sparse (takes precedence over the others).
        pub features_sparse: Option<(Vec<u32>, Vec<u16>, Vec<i8>)>,
        /// Edge sources.
        pub sources: Vec<u16>,
        /// Edge targets.
        pub targets: Vec<u16>,
        /// Edge weights.
        pub edge_weight: Option<Vec<f32>>,
        /// Graph of each node.
        pub batch: Option<Vec<u16>>,
        /// Labels (−1 = not scored) and whether they are per graph.
        pub labels: Option<(bool, Vec<i16>)>,
        /// Edge features: channels `D` and `[edges, D]` values.
        pub edge_attr: Option<(u32, Vec<f32>)>,
        /// Node pairs `(sources, targets)` to score.
        pub pairs: Option<(Vec<u16>, Vec<u16>)>,
        /// Hyperedges: incidence nodes, hyperedge ids, optional weights.
        pub hyperedges: Option<OwnedHyperedges>,
    }

    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    /// Serializes samples into a bundle. Returns `None` when a count does not
    /// fit its field or arrays have inconsistent lengths.
    pub fn write(samples: &[OwnedSample]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&u16::try_from(samples.len()).ok()?.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        for s in samples {
            let n = usize::from(s.nodes);
            let e = s.sources.len();
            let nf = n * usize::from(s.channels);
            let ok = s.targets.len() == e
                && s.edge_weight.as_ref().is_none_or(|w| w.len() == e)
                && s.batch.as_ref().is_none_or(|b| b.len() == n)
                && match (&s.features_sparse, &s.features_i8) {
                    (Some((r, c, v)), _) => r.len() == n + 1 && c.len() == v.len(),
                    (None, Some(f)) => f.len() == nf,
                    (None, None) => s.features_f32.len() == nf,
                }
                && s.labels
                    .as_ref()
                    .is_none_or(|(g, l)| l.len() == if *g { usize::from(s.graphs) } else { n })
                && s.edge_attr
                    .as_ref()
                    .is_none_or(|(d, a)| *d >= 1 && a.len() == e.saturating_mul(*d as usize))
                && s.pairs.as_ref().is_none_or(|(a, b)| a.len() == b.len())
                && s.hyperedges.as_ref().is_none_or(|(a, b, w)| {
                    a.len() == b.len() && w.as_ref().is_none_or(|w| !w.is_empty())
                })
                && s.graphs >= 1
                && s.channels >= 1;
            if !ok {
                return None;
            }
            let start = out.len();
            let mut flags = 0u8;
            if s.features_sparse.is_some() {
                flags |= FLAG_I8 | FLAG_SPARSE;
            } else if s.features_i8.is_some() {
                flags |= FLAG_I8;
            }
            if s.edge_weight.is_some() {
                flags |= FLAG_EDGE_WEIGHT;
            }
            if s.batch.is_some() {
                flags |= FLAG_BATCH;
            }
            if s.labels.is_some() {
                flags |= FLAG_LABELS;
            }
            if s.edge_attr.is_some() {
                flags |= FLAG_EDGE_ATTR;
            }
            if s.pairs.is_some() {
                flags |= FLAG_PAIRS;
            }
            if s.hyperedges.is_some() {
                flags |= FLAG_HYPEREDGES;
            }
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&s.nodes.to_le_bytes());
            out.extend_from_slice(&s.graphs.to_le_bytes());
            out.extend_from_slice(&u32::try_from(e).ok()?.to_le_bytes());
            out.extend_from_slice(&s.channels.to_le_bytes());
            out.push(flags);
            out.push(u8::from(s.labels.as_ref().is_some_and(|(g, _)| *g)));
            match (&s.features_sparse, &s.features_i8) {
                (Some((r, c, v)), _) => {
                    put(&mut out, &u32::try_from(v.len()).ok()?.to_le_bytes());
                    put(&mut out, bytemuck::cast_slice(r));
                    put(&mut out, bytemuck::cast_slice(c));
                    put(&mut out, bytemuck::cast_slice(v));
                }
                (None, Some(f)) => put(&mut out, bytemuck::cast_slice(f)),
                (None, None) => put(&mut out, bytemuck::cast_slice(&s.features_f32)),
            }
            put(&mut out, bytemuck::cast_slice(&s.sources));
            put(&mut out, bytemuck::cast_slice(&s.targets));
            if let Some(w) = &s.edge_weight {
                put(&mut out, bytemuck::cast_slice(w));
            }
            if let Some(b) = &s.batch {
                put(&mut out, bytemuck::cast_slice(b));
            }
            if let Some((_, l)) = &s.labels {
                put(&mut out, bytemuck::cast_slice(l));
            }
            if let Some((d, a)) = &s.edge_attr {
                put(&mut out, &d.to_le_bytes());
                put(&mut out, bytemuck::cast_slice(a));
            }
            if let Some((a, b)) = &s.pairs {
                put(&mut out, &u32::try_from(a.len()).ok()?.to_le_bytes());
                put(&mut out, bytemuck::cast_slice(a));
                put(&mut out, bytemuck::cast_slice(b));
            }
            if let Some((a, b, w)) = &s.hyperedges {
                put(&mut out, &u32::try_from(a.len()).ok()?.to_le_bytes());
                put(&mut out, bytemuck::cast_slice(a));
                put(&mut out, bytemuck::cast_slice(b));
                let w = w.as_deref().unwrap_or(&[]);
                put(&mut out, &u32::try_from(w.len()).ok()?.to_le_bytes());
                put(&mut out, bytemuck::cast_slice(w));
            }
            let len = u32::try_from(out.len() - start).ok()?;
            out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        let total = u32::try_from(out.len()).ok()?;
        out[8..12].copy_from_slice(&total.to_le_bytes());
        let crc = CRC.checksum(&out[HEADER_LEN..]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        Some(out)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    extern crate std;
    use super::writer::{write, OwnedSample};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn sample(nodes: u16, i8: bool) -> OwnedSample {
        let n = usize::from(nodes);
        let mut s = OwnedSample {
            nodes,
            graphs: 2,
            channels: 3,
            sources: (0..nodes).collect(),
            targets: (0..nodes).map(|v| (v + 1) % nodes).collect(),
            edge_weight: Some(vec![0.5; n]),
            batch: Some((0..nodes).map(|v| u16::from(v >= nodes / 2)).collect()),
            labels: Some((true, vec![1, -1])),
            ..Default::default()
        };
        if i8 {
            s.features_i8 = Some((0..n * 3).map(|v| v as i8).collect());
        } else {
            s.features_f32 = (0..n * 3).map(|v| v as f32).collect();
        }
        s
    }

    /// A sample with sparse int8 features: row `i` stores `i % 3` entries.
    fn sparse_sample(nodes: u16) -> OwnedSample {
        let mut s = sample(nodes, false);
        s.features_f32.clear();
        let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
        for i in 0..nodes {
            for c in 0..i % 3 {
                cols.push(c);
                values.push(i as i8 - 7);
            }
            row_ptr.push(cols.len() as u32);
        }
        s.features_sparse = Some((row_ptr, cols, values));
        s
    }

    /// Copies into 4-aligned memory, as `include_aligned` does on the device.
    fn aligned(bytes: &[u8]) -> Vec<u32> {
        let mut w = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..bytes.len()].copy_from_slice(bytes);
        w
    }

    #[test]
    fn round_trip() {
        let bytes = write(&[sample(5, false), sample(3, true)]).unwrap();
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        assert_eq!(b.len(), 2);
        let s: Vec<Sample<'_>> = b.samples().map(|s| s.unwrap()).collect();
        assert_eq!(
            (s[0].nodes, s[0].graphs, s[0].edges, s[0].channels),
            (5, 2, 5, 3)
        );
        assert!(matches!(s[0].features, Features::F32(f) if f.len() == 15 && f[14] == 14.0));
        assert!(matches!(s[1].features, Features::I8(f) if f == [0, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(s[1].targets, &[1, 2, 0]);
        assert_eq!(s[0].batch.unwrap(), &[0, 0, 1, 1, 1]);
        let l = s[0].labels.unwrap();
        assert!(l.per_graph);
        assert_eq!(l.values, &[1, -1]);
        assert_eq!(s[0].edge_weight.unwrap(), &[0.5; 5]);
    }

    #[test]
    fn round_trip_edge_attr() {
        // Edge features (flag bit 5): D = 2, after the labels.
        let mut s = sample(4, false);
        s.edge_attr = Some((2, (0..8).map(|v| v as f32 * 0.25).collect()));
        let bytes = write(&[s.clone(), sample(3, true)]).unwrap();
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        let got: Vec<Sample<'_>> = b.samples().map(|s| s.unwrap()).collect();
        assert_eq!(
            got[0].edge_attr.unwrap(),
            &s.edge_attr.as_ref().unwrap().1[..]
        );
        assert!(got[1].edge_attr.is_none());
        let g = crate::graph_input(&got[0]);
        assert!(matches!(g.edge_attr, Some(tinygnn::EdgeAttr::F32(a)) if a.len() == 8));
        // Inconsistent lengths are refused by the writer.
        s.edge_attr = Some((2, vec![0.0; 7]));
        assert!(write(&[s.clone()]).is_none());
        s.edge_attr = Some((0, vec![]));
        assert!(write(&[s]).is_none());
    }

    #[test]
    fn round_trip_pairs() {
        // Node pairs (link prediction) after the labels; an odd count pads to 4 bytes.
        let mut s0 = sample(5, false);
        s0.pairs = Some((vec![0, 4, 2], vec![1, 1, 2]));
        let s1 = sample(3, true);
        let bytes = write(&[s0.clone(), s1]).unwrap();
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        let s: Vec<Sample<'_>> = b.samples().map(|s| s.unwrap()).collect();
        assert_eq!(s[0].pairs, Some((&[0u16, 4, 2][..], &[1u16, 1, 2][..])));
        assert_eq!(s[1].pairs, None);
        assert_eq!(s[0].labels.unwrap().values, &[1, -1]);
        // Mismatched pair lists are refused by the writer.
        s0.pairs = Some((vec![0, 1], vec![1]));
        assert!(write(&[s0]).is_none());
    }

    #[test]
    fn round_trip_hyperedges() {
        // Hyperedges after the pairs: odd counts pad to 4 bytes; weights optional.
        let mut s0 = sample(5, false);
        s0.hyperedges = Some((vec![0, 4, 2], vec![0, 0, 2], Some(vec![0.5, 1.0, 2.0])));
        let mut s1 = sample(3, true);
        s1.hyperedges = Some((vec![1], vec![0], None));
        let bytes = write(&[s0.clone(), s1, sample(2, false)]).unwrap();
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        let s: Vec<Sample<'_>> = b.samples().map(|s| s.unwrap()).collect();
        let h0 = s[0].hyperedges.unwrap();
        assert_eq!((h0.nodes, h0.edges), (&[0u16, 4, 2][..], &[0u16, 0, 2][..]));
        assert_eq!(h0.weight, Some(&[0.5f32, 1.0, 2.0][..]));
        let h1 = s[1].hyperedges.unwrap();
        assert_eq!(
            (h1.nodes, h1.edges, h1.weight),
            (&[1u16][..], &[0u16][..], None)
        );
        assert!(s[2].hyperedges.is_none());
        let g = crate::graph_input(&s[0]);
        assert_eq!(g.hyperedges.map(|h| h.nodes), Some(&[0u16, 4, 2][..]));
        // Mismatched incidence rows are refused by the writer.
        s0.hyperedges = Some((vec![0, 1], vec![1], None));
        assert!(write(&[s0]).is_none());
    }

    #[test]
    fn round_trip_sparse() {
        let samples = [sample(3, true), sparse_sample(6), sparse_sample(1)];
        let bytes = write(&samples).unwrap();
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        let s: Vec<Sample<'_>> = b.samples().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 3);
        assert!(matches!(s[0].features, Features::I8(f) if f.len() == 9));
        for (got, want) in s[1..].iter().zip(&samples[1..]) {
            let (r, c, v) = want.features_sparse.as_ref().unwrap();
            match got.features {
                Features::SparseI8 {
                    row_ptr,
                    cols,
                    values,
                } => {
                    assert_eq!(row_ptr, &r[..]);
                    assert_eq!(cols, &c[..]);
                    assert_eq!(values, &v[..]);
                }
                other => panic!("expected sparse features, got {other:?}"),
            }
            assert_eq!(got.targets, &want.targets[..]);
            assert_eq!(got.labels.unwrap().values, &[1, -1]);
        }
        // 6 nodes: 0+1+2+0+1+2 = 6 entries.
        assert!(matches!(s[1].features, Features::SparseI8 { values, .. } if values.len() == 6));
        // It reaches the runtime as its own sparse features.
        let g = crate::graph_input(&s[1]);
        assert!(matches!(
            g.features,
            tinygnn::graph::Features::SparseI8 { .. }
        ));
    }

    #[test]
    fn sparse_lengths_are_checked() {
        // row_ptr must have nodes + 1 entries, cols and values the same length.
        let mut s = sparse_sample(4);
        s.features_sparse.as_mut().unwrap().0.pop();
        assert!(write(&[s]).is_none());
        let mut s = sparse_sample(4);
        s.features_sparse.as_mut().unwrap().2.pop();
        assert!(write(&[s]).is_none());
        // The sparse flag without the int8 flag is malformed.
        let mut bytes = write(&[sparse_sample(4)]).unwrap();
        bytes[HEADER_LEN + 14] &= !FLAG_I8;
        let crc = CRC.checksum(&bytes[HEADER_LEN..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        assert_eq!(
            b.samples().next().unwrap().unwrap_err(),
            BundleError::BadSample { index: 0 }
        );
        // A declared nnz larger than the sample is malformed, not a panic.
        let mut bytes = write(&[sparse_sample(4)]).unwrap();
        let at = HEADER_LEN + SAMPLE_HEADER_LEN;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = CRC.checksum(&bytes[HEADER_LEN..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        let w = aligned(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice(&w)[..bytes.len()]).unwrap();
        assert!(b.samples().next().unwrap().is_err());
    }

    #[test]
    fn rejects_inconsistent_samples() {
        let mut s = sample(4, false);
        s.targets.pop();
        assert!(write(&[s]).is_none());
    }

    /// Every truncation and every single-byte corruption is an error or a
    /// valid bundle, never a panic; past the CRC, sample checks still hold.
    #[test]
    fn never_panics() {
        let bytes = write(&[sample(6, false), sample(2, true), sparse_sample(5)]).unwrap();
        for len in 0..bytes.len() {
            let w = aligned(&bytes[..len]);
            assert!(Bundle::parse(&bytemuck::cast_slice(&w)[..len]).is_err());
        }
        for at in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut c = bytes.clone();
                c[at] = v;
                // Fix the CRC so that the sample checks are reached too.
                let crc = CRC.checksum(&c[HEADER_LEN..]);
                if at >= HEADER_LEN || !(12..16).contains(&at) {
                    c[12..16].copy_from_slice(&crc.to_le_bytes());
                }
                let w = aligned(&c);
                if let Ok(b) = Bundle::parse(&bytemuck::cast_slice(&w)[..c.len()]) {
                    for s in b.samples() {
                        let _ = s;
                    }
                }
            }
        }
    }

    #[test]
    fn misaligned_is_an_error() {
        let bytes = write(&[sample(2, true)]).unwrap();
        let mut w = vec![0u32; bytes.len() / 4 + 1];
        let view: &mut [u8] = bytemuck::cast_slice_mut(&mut w);
        view[1..=bytes.len()].copy_from_slice(&bytes);
        assert_eq!(
            Bundle::parse(&view[1..=bytes.len()]).unwrap_err(),
            BundleError::Misaligned
        );
    }
}
