//! Frame round trips and every kind of corruption, on the host.

use proptest::prelude::*;
use tinygnn_proto::{
    decode, encode, encode_raw_vec, encode_vec, max_frame_len, ErrorCode, ErrorReply, FeatureBytes,
    FeatureSlice, Field, FrameError, FrameReader, GraphBuffers, GraphError, Info, Message,
    OwnedRequest, Request, Response, CRC,
};

/// Frames `bytes` (the postcard body) by hand: body ‖ CRC ‖ COBS ‖ 0x00.
fn frame_of_body(body: &[u8], crc: u32) -> Vec<u8> {
    let mut raw = body.to_vec();
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut out = vec![0u8; max_frame_len(raw.len())];
    let n = cobs::encode(&raw, &mut out);
    out.truncate(n);
    out.push(0);
    out
}

/// Feeds a byte stream to a reader; collects every frame's decode result (owned as Debug text)
/// and the decoded messages' ids.
fn read_all(stream: &[u8], cap: usize) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut buf = vec![0u8; cap];
    let mut r = FrameReader::new(&mut buf);
    let mut out = Vec::new();
    for &b in stream {
        if let Some(f) = r.push(b) {
            out.push(f.map(|f| f.to_vec()));
        }
    }
    out
}

fn request_strategy() -> impl Strategy<Value = OwnedRequest> {
    (0u32..50, 0u16..6, 0usize..40, any::<bool>(), any::<u32>())
        .prop_flat_map(|(n, c, e, f32s, id)| {
            let vals = n as usize * c as usize;
            (
                Just((n, c, f32s, id)),
                prop::collection::vec(-1e6f32..1e6, vals),
                prop::collection::vec(any::<i8>(), vals),
                prop::collection::vec(any::<u16>(), e),
                prop::collection::vec(any::<u16>(), e),
                prop::option::of(prop::collection::vec(0f32..10.0, e)),
                prop::option::of(prop::collection::vec(any::<u16>(), n as usize)),
            )
        })
        .prop_map(|((n, c, f32s, id), xf, xi, s, t, w, b)| {
            if f32s {
                OwnedRequest::f32(id, n, c, &xf, &s, &t, w.as_deref(), b.as_deref())
            } else {
                OwnedRequest::i8(id, n, c, &xi, &s, &t, w.as_deref(), b.as_deref())
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// encode → reader → decode gives the same message, and unpacking gives the same arrays.
    #[test]
    fn request_round_trip(req in request_strategy()) {
        let msg = Message::Request(req.as_request());
        let frame = encode_vec(&msg);
        prop_assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1);
        prop_assert_eq!(*frame.last().unwrap(), 0);
        let mut frames = read_all(&frame, frame.len());
        prop_assert_eq!(frames.len(), 1);
        let mut bytes = frames.remove(0).unwrap();
        let got = decode(&mut bytes).unwrap();
        prop_assert_eq!(got, msg);
        let Message::Request(r) = got else { unreachable!() };
        let (n, e) = (r.num_nodes as usize, r.num_edges());
        let c = r.channels as usize;
        let (mut f, mut s, mut t, mut w, mut b) =
            (vec![0f32; n * c], vec![0u16; e], vec![0u16; e], vec![0f32; e], vec![0u16; n]);
        let mut bufs = GraphBuffers { features: &mut f, sources: &mut s, targets: &mut t, edge_weight: &mut w, batch: &mut b };
        let g = r.unpack(&mut bufs).unwrap();
        prop_assert_eq!(g.num_nodes, n);
        prop_assert_eq!(g.sources.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), req.sources.clone());
        prop_assert_eq!(g.targets.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), req.targets.clone());
        match g.features {
            FeatureSlice::F32(x) => {
                prop_assert!(req.f32_features);
                prop_assert_eq!(x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), req.features.clone());
            }
            FeatureSlice::I8(x) => {
                prop_assert!(!req.f32_features);
                prop_assert_eq!(x.iter().map(|&v| v as u8).collect::<Vec<_>>(), req.features.clone());
            }
        }
        prop_assert_eq!(g.edge_weight.map(|w| w.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()), req.edge_weight.clone());
        prop_assert_eq!(g.batch.map(|w| w.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()), req.batch.clone());
    }

    /// Any single corrupted byte (not turned into a delimiter) is detected: COBS or CRC,
    /// never a wrong message.
    #[test]
    fn single_byte_corruption_is_detected(req in request_strategy(), pos in any::<prop::sample::Index>(), x in 1u8..=255) {
        let msg = Message::Request(req.as_request());
        let mut frame = encode_vec(&msg);
        frame.pop();
        let i = pos.index(frame.len());
        frame[i] ^= x;
        prop_assume!(frame[i] != 0);
        let e = decode(&mut frame).unwrap_err();
        prop_assert!(matches!(e.code(), ErrorCode::Cobs | ErrorCode::Crc), "{:?}", e);
    }

    /// A frame cut anywhere is rejected.
    #[test]
    fn truncation_is_detected(req in request_strategy(), cut in any::<prop::sample::Index>()) {
        let msg = Message::Request(req.as_request());
        let mut frame = encode_vec(&msg);
        frame.pop();
        let n = cut.index(frame.len());
        let mut short = frame[..n].to_vec();
        prop_assert!(decode(&mut short).is_err());
    }

    /// Garbage (any bytes) before a valid frame: the reader resynchronises at the delimiter
    /// that ends the garbage and the valid frame decodes.
    #[test]
    fn resync_after_garbage(garbage in prop::collection::vec(any::<u8>(), 0..300), req in request_strategy()) {
        let msg = Message::Request(req.as_request());
        let frame = encode_vec(&msg);
        let mut stream = garbage.clone();
        stream.push(0);
        stream.extend_from_slice(&frame);
        let frames = read_all(&stream, 128);
        let mut last = frames.last().unwrap().clone().unwrap_or_default();
        if frame.len() - 1 <= 128 {
            prop_assert_eq!(decode(&mut last).unwrap(), msg);
        }
    }

    /// The frame encoder is bit-exact COBS: the `cobs` crate decodes its frames to body ‖ CRC,
    /// including runs of exactly 254 and more non-zero bytes.
    #[test]
    fn stuffing_matches_cobs_crate(body in prop::collection::vec(prop_oneof![Just(0u8), 1u8..=255, 1u8..=255, 1u8..=255], 0..1200)) {
        let frame = encode_raw_vec(&body);
        prop_assert_eq!(*frame.last().unwrap(), 0);
        prop_assert!(!frame[..frame.len() - 1].contains(&0));
        prop_assert!(frame.len() <= max_frame_len(body.len()));
        let mut out = vec![0u8; frame.len()];
        let n = cobs::decode(&frame[..frame.len() - 1], &mut out).unwrap();
        let mut want = body.clone();
        want.extend(CRC.checksum(&body).to_le_bytes());
        prop_assert_eq!(&out[..n], &want[..]);
        // And the decoder undoes the `cobs` crate's encoding: the CRC always matches, so only
        // the message decoding can fail.
        let mut theirs = frame_of_body(&body, CRC.checksum(&body));
        theirs.pop();
        if let Err(e) = decode(&mut theirs) {
            prop_assert!(matches!(e, FrameError::Decode | FrameError::TrailingBytes), "{:?}", e);
        }
    }

    /// Decoding arbitrary bytes never panics.
    #[test]
    fn decode_arbitrary_bytes(mut bytes in prop::collection::vec(1u8..=255, 0..200)) {
        let _ = decode(&mut bytes);
    }
}

#[test]
fn every_message_kind_round_trips() {
    let data = [1u8, 0, 255, 7];
    let msgs = [
        Message::Hello,
        Message::Info(Info {
            version: 1,
            model: "karate-gcn.tgnn",
            model_crc: 0x36ac99a3,
            input_channels: 34,
            output_channels: 4,
            max_nodes: 34,
            max_edges: 156,
            max_graphs: 1,
            max_frame: 8192,
            cost_unit: "insn",
        }),
        Message::Response(Response {
            id: 7,
            rows: 2,
            channels: 2,
            scale: 0.125,
            zero_point: -3,
            cost: 123_456_789_012,
            data: &data,
        }),
        Message::Error(ErrorReply {
            id: Some(3),
            code: ErrorCode::Capacity,
            detail: "35 nodes",
        }),
        Message::Error(ErrorReply {
            id: None,
            code: ErrorCode::Unexpected,
            detail: "",
        }),
    ];
    for m in msgs {
        let mut buf = [0u8; 256];
        let f = encode(&m, &mut buf).unwrap();
        let n = f.len();
        assert_eq!(f[n - 1], 0);
        let mut body = f[..n - 1].to_vec();
        assert_eq!(decode(&mut body).unwrap(), m);
    }
}

#[test]
fn hello_is_byte_exact() {
    // postcard: variant 0 → [0x00]; CRC-32 of [0x00] = 0xD202EF8D → LE 8d ef 02 d2;
    // COBS of 00 8d ef 02 d2 = 01 05 8d ef 02 d2; then the delimiter.
    assert_eq!(CRC.checksum(&[0]), 0xD202_EF8D);
    assert_eq!(
        encode_vec(&Message::Hello),
        vec![0x01, 0x05, 0x8d, 0xef, 0x02, 0xd2, 0x00]
    );
}

#[test]
fn bad_cobs() {
    // The code byte 0x05 announces 4 data bytes, only 1 follows.
    assert_eq!(decode(&mut [0x05, 0x01]), Err(FrameError::Cobs));
}

#[test]
fn bad_crc() {
    let mut f = frame_of_body(&[0x00], 0xD202_EF8D ^ 1);
    f.pop();
    assert_eq!(decode(&mut f.clone()).unwrap_err().code(), ErrorCode::Crc);
    assert!(matches!(decode(&mut f), Err(FrameError::Crc { .. })));
}

#[test]
fn too_short() {
    let mut f = [0x03, 0x01, 0x02]; // decodes to 2 bytes: shorter than a CRC
    assert_eq!(decode(&mut f), Err(FrameError::TooShort));
}

#[test]
fn bad_postcard_with_good_crc() {
    // Variant 9 does not exist.
    let mut f = frame_of_body(&[0x09], CRC.checksum(&[0x09]));
    f.pop();
    assert_eq!(decode(&mut f), Err(FrameError::Decode));
    // A request cut short (valid CRC over the short body).
    let req = OwnedRequest::f32(1, 2, 1, &[1.0, 2.0], &[0], &[1], None, None);
    let full = postcard::to_stdvec(&Message::Request(req.as_request())).unwrap();
    let body = &full[..full.len() - 3];
    let mut f = frame_of_body(body, CRC.checksum(body));
    f.pop();
    assert_eq!(decode(&mut f), Err(FrameError::Decode));
}

#[test]
fn trailing_bytes_with_good_crc() {
    let body = [0x00, 0x42];
    let mut f = frame_of_body(&body, CRC.checksum(&body));
    f.pop();
    assert_eq!(decode(&mut f), Err(FrameError::TrailingBytes));
    assert_eq!(FrameError::TrailingBytes.code(), ErrorCode::Decode);
}

#[test]
fn oversized_frame_then_valid_frame() {
    let hello = encode_vec(&Message::Hello);
    let mut stream = vec![0x11u8; 100];
    stream.push(0);
    stream.extend_from_slice(&hello);
    let frames = read_all(&stream, 16);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], Err(FrameError::Oversized { bytes: 100 }));
    let mut f = frames[1].clone().unwrap();
    assert_eq!(decode(&mut f).unwrap(), Message::Hello);
    // Exactly the buffer size is accepted; one more byte is not.
    assert!(read_all(&[[1u8; 16].as_slice(), &[0]].concat(), 16)[0].is_ok());
    assert_eq!(
        read_all(&[[1u8; 17].as_slice(), &[0]].concat(), 16)[0],
        Err(FrameError::Oversized { bytes: 17 })
    );
    // Empty frames are skipped.
    assert!(read_all(&[0, 0, 0], 16).is_empty());
}

#[test]
fn encode_into_small_buffer_fails() {
    let mut buf = [0u8; 5];
    assert_eq!(
        encode(&Message::Hello, &mut buf).unwrap_err(),
        FrameError::BufferTooSmall
    );
    let mut buf = [0u8; 7];
    assert!(encode(&Message::Hello, &mut buf).is_ok());
}

#[test]
fn unpack_checks_lengths_and_capacity() {
    let (mut f, mut s, mut t, mut w, mut b) = (
        vec![0f32; 4],
        vec![0u16; 2],
        vec![0u16; 2],
        vec![0f32; 2],
        vec![0u16; 2],
    );
    let mut bufs = GraphBuffers {
        features: &mut f,
        sources: &mut s,
        targets: &mut t,
        edge_weight: &mut w,
        batch: &mut b,
    };
    let ok = OwnedRequest::f32(
        1,
        2,
        2,
        &[1.0; 4],
        &[0, 1],
        &[1, 0],
        Some(&[1.0, 2.0]),
        Some(&[0, 0]),
    );
    assert!(ok.as_request().unpack(&mut bufs).is_ok());
    let i8s = OwnedRequest::i8(1, 2, 2, &[1, -2, 3, -4], &[0], &[1], None, None);
    let g = i8s.as_request().unpack(&mut bufs).unwrap();
    assert_eq!(g.features, FeatureSlice::I8(&[1, -2, 3, -4]));

    let mut r = ok.as_request();
    r.num_nodes = 3;
    assert!(matches!(
        r.unpack(&mut bufs),
        Err(GraphError::Length {
            field: Field::Batch,
            ..
        })
    ));
    let mut r = ok.as_request();
    r.targets = &[0, 0];
    assert!(matches!(
        r.unpack(&mut bufs),
        Err(GraphError::Length {
            field: Field::Targets,
            ..
        })
    ));
    let mut r = ok.as_request();
    r.sources = &[0, 0, 1];
    assert!(matches!(
        r.unpack(&mut bufs),
        Err(GraphError::Length {
            field: Field::Sources,
            ..
        })
    ));
    let mut r = ok.as_request();
    r.edge_weight = Some(&[0; 4]);
    assert!(matches!(
        r.unpack(&mut bufs),
        Err(GraphError::Length {
            field: Field::EdgeWeight,
            ..
        })
    ));
    let mut r = ok.as_request();
    r.features = FeatureBytes::F32(&[0; 12]);
    assert!(matches!(
        r.unpack(&mut bufs),
        Err(GraphError::Length {
            field: Field::Features,
            ..
        })
    ));
    // Three nodes × 2 channels do not fit 4 feature values.
    let big = OwnedRequest::f32(1, 3, 2, &[0.0; 6], &[], &[], None, None);
    let e = big.as_request().unpack(&mut bufs).unwrap_err();
    assert_eq!(
        e,
        GraphError::Capacity {
            field: Field::Features,
            needed: 6,
            available: 4
        }
    );
    assert_eq!(e.code(), ErrorCode::Capacity);
    let many_edges = OwnedRequest::f32(1, 1, 1, &[0.0], &[0; 3], &[0; 3], None, None);
    assert!(matches!(
        many_edges.as_request().unpack(&mut bufs),
        Err(GraphError::Capacity {
            field: Field::Sources,
            needed: 3,
            available: 2
        })
    ));
    // A request whose node count overflows usize arithmetic is a length error, not a panic.
    let r = Request {
        id: 0,
        num_nodes: u32::MAX,
        channels: u16::MAX,
        features: FeatureBytes::F32(&[]),
        sources: &[],
        targets: &[],
        edge_weight: None,
        batch: None,
    };
    assert!(r.unpack(&mut bufs).is_err());
}
