//! A small reader of the metadata's postcard encoding, for size-critical
//! builds whose only op families are `op-gcn` and `op-linear` (see
//! `docs/size.md`).
//!
//! The metadata is written by `format::writer` with postcard and serde's
//! derived `Serialize` (the format is that encoding, `docs/format.md`); it is
//! normally read back with postcard and the derived `Deserialize`. That
//! generic decoder carries code for every variant of [`Op`](crate::ops::Op), compiled in or
//! not (about 2.9 KB on Cortex-M4). This module decodes the same bytes by
//! hand for [`MetaHeader`], [`TensorDesc`] and the two ops such a build can
//! run, [`Op::Linear`](crate::ops::Op::Linear) and [`Op::GcnConv`](crate::ops::Op::GcnConv), following postcard's rules
//! exactly: varints of at most 3 (`u16`) or 5 (`u32`) bytes whose last byte
//! carries only the bits left (`≤ 0x03` / `≤ 0x0F`), zigzag `i32`, bools 0 or
//! 1, enum tags as `u32` varints, `f32` as 4 little-endian bytes, a sequence
//! length as a `usize` varint. Any other op tag is
//! [`Take::NotCompiled`] (the model loader turns it into
//! `Error::OpNotCompiled`, as it does for a decoded op whose family is
//! left out).
//!
//! `build.rs` sets `cfg(tinygnn_small_decoder)` when no `op-*` feature other
//! than `op-gcn` and `op-linear` is enabled, and `ops::take_op` and its
//! siblings then use this reader; every other build uses postcard, so new op
//! families (with their own `op-*` features) are decoded by postcard without
//! touching this file. The reader is compiled and tested in every build: the
//! tests below check it against postcard on random values and random bytes.

use super::{Activation, MetaHeader, Section, TensorDesc, TensorKind};

/// The result of decoding one op.
#[derive(Debug, Clone, PartialEq)]
pub enum Take<'a, T> {
    /// The value and the bytes after it.
    Ok(T, &'a [u8]),
    /// A valid op tag whose op this reader does not decode (its family is
    /// not compiled into this build).
    NotCompiled,
    /// Bytes that are not a valid encoding.
    Bad,
}

/// A cursor over the metadata bytes (the ops that the small reader decodes
/// read their fields with it: `ops::take_op_small`).
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }

    /// Reads one `byte` as postcard encodes it.
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A postcard varint of at most `max_bytes` bytes whose last byte is at
    /// most `last_max` (the bits of the type left after `7·(max_bytes − 1)`).
    fn varint(&mut self, max_bytes: u32, last_max: u8) -> Option<u32> {
        let mut out = 0u32;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return (i + 1 < max_bytes || b <= last_max).then_some(out);
            }
        }
        None
    }

    /// Reads one `u32` as postcard encodes it.
    pub fn u32(&mut self) -> Option<u32> {
        self.varint(5, 0x0F)
    }

    /// Reads one `u16` as postcard encodes it.
    pub fn u16(&mut self) -> Option<u16> {
        // At most 16 bits: 7 + 7 + 2.
        self.varint(3, 0x03).map(|v| v as u16)
    }

    /// Reads one `i32` as postcard encodes it.
    pub fn i32(&mut self) -> Option<i32> {
        let v = self.u32()?;
        Some((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    /// Reads one `bool` as postcard encodes it.
    pub fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A sequence length: postcard writes `usize` as a varint of the
    /// platform's width.
    #[cfg(target_pointer_width = "64")]
    fn len(&mut self) -> Option<usize> {
        let mut out = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return (i < 9 || b <= 0x01).then_some(out as usize);
            }
        }
        None
    }

    /// A sequence length: postcard writes `usize` as a varint of the
    /// platform's width.
    #[cfg(target_pointer_width = "32")]
    fn len(&mut self) -> Option<usize> {
        self.u32().map(|v| v as usize)
    }

    /// A sequence length: postcard writes `usize` as a varint of the
    /// platform's width.
    #[cfg(target_pointer_width = "16")]
    fn len(&mut self) -> Option<usize> {
        self.u16().map(usize::from)
    }

    /// Reads one `section` as postcard encodes it.
    pub fn section(&mut self) -> Option<Section> {
        Some(Section {
            offset: self.u32()?,
            len: self.u32()?,
        })
    }

    /// Reads one `activation` as postcard encodes it.
    pub fn activation(&mut self) -> Option<Activation> {
        match self.u32()? {
            0 => Some(Activation::None),
            1 => Some(Activation::Relu),
            2 => Some(Activation::LeakyRelu {
                alpha_q16: self.i32()?,
            }),
            _ => None,
        }
    }

    fn meta_header(&mut self) -> Option<MetaHeader> {
        let (max_nodes, max_edges, max_graphs) = (self.u32()?, self.u32()?, self.u32()?);
        let (num_tensors, num_ops) = (self.u16()?, self.u16()?);
        let input = self.byte()?;
        let mut outputs = heapless::Vec::new();
        // More than the capacity is an error, as for heapless' Deserialize.
        for _ in 0..self.len()? {
            outputs.push(self.byte()?).ok()?;
        }
        Some(MetaHeader {
            max_nodes,
            max_edges,
            max_graphs,
            num_tensors,
            num_ops,
            input,
            outputs,
            uses_edge_weight: self.bool()?,
        })
    }

    fn tensor_desc(&mut self) -> Option<TensorDesc> {
        let kind = *TensorKind::ALL.get(usize::try_from(self.u32()?).ok()?)?;
        let channels = self.u16()?;
        let mut scale = [0u8; 4];
        for b in &mut scale {
            *b = self.byte()?;
        }
        Some(TensorDesc {
            kind,
            channels,
            scale: f32::from_le_bytes(scale),
            zero_point: self.byte()? as i8,
        })
    }
}

/// Decodes a [`MetaHeader`] from the start of `bytes`; `None` if invalid.
pub fn take_meta_header(bytes: &[u8]) -> Option<(MetaHeader, &[u8])> {
    let mut r = Reader(bytes);
    let v = r.meta_header()?;
    Some((v, r.0))
}

/// Decodes a `u32` varint from the start of `bytes`; `None` if invalid.
pub fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut r = Reader(bytes);
    let v = r.u32()?;
    Some((v, r.0))
}

/// Decodes a [`TensorDesc`] from the start of `bytes`; `None` if invalid.
pub fn take_tensor_desc(bytes: &[u8]) -> Option<(TensorDesc, &[u8])> {
    let mut r = Reader(bytes);
    let v = r.tensor_desc()?;
    Some((v, r.0))
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::ops::take_op_small as take_op;
    use crate::ops::{Act, GcnConv, GlobalPool, Linear, Op, SageConv};
    use proptest::prelude::*;

    fn section() -> impl Strategy<Value = Section> {
        (any::<u32>(), any::<u32>()).prop_map(|(offset, len)| Section { offset, len })
    }

    fn activation() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            any::<i32>().prop_map(|alpha_q16| Activation::LeakyRelu { alpha_q16 }),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let common = || (any::<u8>(), any::<u8>(), section(), section(), activation());
        prop_oneof![
            common().prop_map(|(input, output, weights, params, act)| Op::Linear(Linear {
                input,
                output,
                weights,
                params,
                act
            })),
            (common(), any::<[bool; 4]>()).prop_map(
                |((input, output, weights, params, act), f)| {
                    Op::GcnConv(GcnConv {
                        input,
                        output,
                        weights,
                        params,
                        act,
                        improved: f[0],
                        add_self_loops: f[1],
                        normalize: f[2],
                        edge_weight: f[3],
                    })
                }
            ),
        ]
    }

    /// What postcard and the derived `Deserialize` give for the same bytes,
    /// in this module's terms (tags this reader does not decode: NotCompiled).
    fn postcard_op(bytes: &[u8]) -> Take<'_, Op> {
        match postcard::take_from_bytes::<Op>(bytes) {
            Ok((op @ (Op::Linear(Linear { .. }) | Op::GcnConv(GcnConv { .. })), rest)) => {
                Take::Ok(op, rest)
            }
            Ok(_) => Take::NotCompiled,
            // A known tag whose op does not decode is still NotCompiled here
            // (this reader does not look past the tag of such an op).
            Err(_) => match Reader(bytes).u32() {
                Some(t) if (2..crate::format::OP_TAGS).contains(&t) => Take::NotCompiled,
                _ => Take::Bad,
            },
        }
    }

    proptest! {
        /// `take_u32` agrees with postcard on any bytes (value and rest).
        #[test]
        fn u32_agrees_with_postcard(bytes in proptest::collection::vec(any::<u8>(), 0..7), v in any::<u32>()) {
            let pc = postcard::take_from_bytes::<u32>(&bytes).ok();
            prop_assert_eq!(take_u32(&bytes), pc);
            let enc = postcard::to_stdvec(&v).unwrap();
            prop_assert_eq!(take_u32(&enc), Some((v, &[][..])));
        }
    }

    /// `TensorKind::ALL` is in postcard's tag order and complete: the tag
    /// after the last one does not decode.
    #[test]
    fn tensor_kind_table_is_postcard_order() {
        for (tag, kind) in TensorKind::ALL.iter().enumerate() {
            assert_eq!(postcard::to_stdvec(kind).unwrap(), [tag as u8]);
        }
        assert!(postcard::from_bytes::<TensorKind>(&[TensorKind::ALL.len() as u8]).is_err());
    }

    fn some_ops() -> Vec<Vec<u8>> {
        use crate::format::{Aggr, Pool};
        let s = Section { offset: 4, len: 8 };
        [
            Op::SageConv(SageConv {
                input: 0,
                output: 1,
                aggr: Aggr::Max,
                weights_l: s,
                weights_r: s,
                params: s,
                act: Activation::Relu,
                normalize: true,
            }),
            Op::GlobalPool(GlobalPool {
                input: 1,
                output: 2,
                pool: Pool::Mean,
                mult: -5,
                shift: 3,
            }),
            Op::Act(Act {
                input: 1,
                output: 2,
                act: Activation::LeakyRelu { alpha_q16: 77 },
            }),
        ]
        .iter()
        .map(|op| postcard::to_stdvec(op).unwrap())
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 2048 }))]

        #[test]
        fn ops_round_trip(op in op(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = postcard::to_stdvec(&op).unwrap();
            bytes.extend(&tail);
            prop_assert_eq!(take_op(&bytes), Take::Ok(op, &tail[..]));
        }

        #[test]
        fn headers_and_tensors_round_trip(
            n in any::<[u32; 3]>(), counts in any::<[u16; 2]>(), input in any::<u8>(),
            outputs in proptest::collection::vec(any::<u8>(), 0..=4), flag in any::<bool>(),
            kind in 0..TensorKind::ALL.len(), channels in any::<u16>(), scale in any::<u32>(), zp in any::<i8>(),
        ) {
            let h = MetaHeader {
                max_nodes: n[0], max_edges: n[1], max_graphs: n[2],
                num_tensors: counts[0], num_ops: counts[1], input,
                outputs: heapless::Vec::from_slice(&outputs).unwrap(),
                uses_edge_weight: flag,
            };
            let bytes = postcard::to_stdvec(&h).unwrap();
            prop_assert_eq!(take_meta_header(&bytes), Some((h, &[][..])));
            let t = TensorDesc {
                kind: TensorKind::ALL[kind],
                channels, scale: f32::from_bits(scale), zero_point: zp,
            };
            let bytes = postcard::to_stdvec(&t).unwrap();
            let (got, rest) = take_tensor_desc(&bytes).unwrap();
            prop_assert!(rest.is_empty());
            // Bit patterns, so that NaN scales compare too.
            prop_assert_eq!((got.kind, got.channels, got.scale.to_bits(), got.zero_point), (t.kind, t.channels, scale, zp));
        }

        /// Arbitrary bytes (and valid encodings with bytes flipped): the same
        /// verdict and value as postcard.
        #[test]
        fn any_bytes_agree_with_postcard(
            op in op(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>(),
            noise in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let mut valid = postcard::to_stdvec(&op).unwrap();
            let k = pos % valid.len();
            valid[k] = byte;
            let cut = cut % (valid.len() + 1);
            for bytes in [&valid[..], &valid[..cut], &noise[..]] {
                prop_assert_eq!(take_op(bytes), postcard_op(bytes), "{:?}", bytes);
                let h = postcard::take_from_bytes::<MetaHeader>(bytes).ok();
                prop_assert_eq!(take_meta_header(bytes), h, "{:?}", bytes);
                let t = postcard::take_from_bytes::<TensorDesc>(bytes).ok();
                let bits = |v: Option<(TensorDesc, &[u8])>| v.map(|(t, r)| (t.kind, t.channels, t.scale.to_bits(), t.zero_point, r.len()));
                prop_assert_eq!(bits(take_tensor_desc(bytes)), bits(t), "{:?}", bytes);
            }
        }
    }

    #[test]
    fn other_ops_are_not_compiled_and_bad_tags_bad() {
        for bytes in some_ops() {
            assert_eq!(take_op(&bytes), Take::NotCompiled);
            assert_eq!(postcard_op(&bytes), Take::NotCompiled);
        }
        let unknown = [crate::format::OP_TAGS as u8, 0, 0];
        assert_eq!(take_op(&unknown), Take::Bad);
        assert!(postcard::take_from_bytes::<Op>(&unknown).is_err());
    }

    #[test]
    fn varint_edges_match_postcard() {
        // Overlong but in range, the last byte's limit, one byte too many.
        let cases: [&[u8]; 8] = [
            &[0x80, 0x00],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x10],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0xFF, 0xFF, 0x03],
            &[0xFF, 0xFF, 0x04],
            &[0x81],
            &[],
        ];
        for c in cases {
            assert_eq!(
                Reader(c).u32(),
                postcard::from_bytes::<u32>(c).ok(),
                "u32 {c:?}"
            );
            assert_eq!(
                Reader(c).u16(),
                postcard::from_bytes::<u16>(c).ok(),
                "u16 {c:?}"
            );
            assert_eq!(
                Reader(c).len(),
                postcard::from_bytes::<usize>(c).ok(),
                "usize {c:?}"
            );
        }
    }
}
