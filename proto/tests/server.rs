//! The device-side server over an in-memory link, with the bundled
//! karate-gcn model: answers equal `Session::run`, every bad frame gets its
//! error reply, and the link keeps working afterwards.

use std::collections::VecDeque;

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use tinygnn::graph::{Features, GraphInput};
use tinygnn::{Model, Session};
use tinygnn_proto::server::{Buffers, LinkError, NoClock, Outcome, Server};
use tinygnn_proto::{
    decode, encode_vec, ErrorCode, FrameReader, GraphBuffers, Message, OwnedRequest, CRC,
};

/// Bytes in, bytes out; reading past the input is an error (ends `poll`).
struct Link {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl ErrorType for Link {
    type Error = ErrorKind;
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut n = 0;
        while n < buf.len() {
            match self.input.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None if n == 0 => return Err(ErrorKind::Other),
                None => break,
            }
        }
        Ok(n)
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Decoded replies in `out`.
fn replies(out: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 16];
    let mut r = FrameReader::new(&mut buf);
    let mut v = Vec::new();
    for &b in out {
        if let Some(f) = r.push(b) {
            v.push(f.unwrap().to_vec());
        }
    }
    v
}

fn karate() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/karate-gcn/karate-gcn.tgnn"
    ))
    .unwrap()
}

/// A deterministic graph of `n` nodes (34 features each): a ring plus chords.
fn graph(n: usize) -> (Vec<f32>, Vec<u16>, Vec<u16>) {
    let x: Vec<f32> = (0..n * 34)
        .map(|i| ((i * 7919) % 101) as f32 / 100.0)
        .collect();
    let mut s = Vec::new();
    let mut t = Vec::new();
    for i in 0..n {
        for d in [1, 5] {
            let j = (i + d) % n;
            s.extend([i as u16, j as u16]);
            t.extend([j as u16, i as u16]);
        }
    }
    (x, s, t)
}

fn expected(model: &Model<'_>, x: &[f32], s: &[u16], t: &[u16]) -> Vec<u8> {
    let mut arena = vec![0u8; 1 << 16];
    let mut session = Session::new(model, &mut arena);
    let out = session
        .run(&GraphInput::new(x.len() / 34, Features::F32(x), s, t))
        .unwrap();
    out.data.iter().map(|&v| v as u8).collect()
}

#[test]
fn serves_requests_and_survives_every_bad_frame() {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let (mut rx, mut tx) = (vec![0u8; 8192], vec![0u8; 4096]);
    let (mut f, mut s, mut t, mut w, mut b) = (
        vec![0f32; 34 * 34],
        vec![0u16; 156],
        vec![0u16; 156],
        vec![0f32; 156],
        vec![0u16; 34],
    );
    let mut arena = vec![0u8; model.arena_bytes(34, 156, 1) + 8];
    let bufs = Buffers {
        rx: &mut rx,
        tx: &mut tx,
        graph: GraphBuffers {
            features: &mut f,
            sources: &mut s,
            targets: &mut t,
            edge_weight: &mut w,
            batch: &mut b,
        },
        arena: &mut arena,
    };
    let mut server = Server::new(&model, "karate-gcn.tgnn", bufs, NoClock);
    let info = server.info();
    assert_eq!(
        (info.max_nodes, info.max_edges, info.max_graphs),
        (34, 156, 1)
    );
    assert_eq!(info.max_frame, 8193);
    assert_eq!(info.input_channels, 34);
    assert_eq!(info.output_channels, 4);

    let (x, gs, gt) = graph(34);
    let good = OwnedRequest::f32(10, 34, 34, &x, &gs, &gt, None, None);
    let want = expected(&model, &x, &gs, &gt);
    let (x35, s35, t35) = graph(35);
    let big = OwnedRequest::f32(11, 35, 34, &x35, &s35, &t35, None, None);
    // Node index 40 in a 34-node graph.
    let mut bad_s = gs.clone();
    bad_s[3] = 40;
    let bad_index = OwnedRequest::f32(12, 34, 34, &x, &bad_s, &gt, None, None);
    let mut nan = x.clone();
    nan[5] = f32::NAN;
    let nan = OwnedRequest::f32(13, 34, 34, &nan, &gs, &gt, None, None);

    let good_frame = encode_vec(&Message::Request(good.as_request()));
    let mut bad_crc = encode_vec(&Message::Request(good.as_request()));
    bad_crc[40] ^= 0x5a;
    if bad_crc[40] == 0 {
        bad_crc[40] = 1;
    }
    let body = [0x09u8];
    let mut undecodable = Vec::new();
    {
        let mut raw = body.to_vec();
        raw.extend(CRC.checksum(&body).to_le_bytes());
        let mut enc = vec![0u8; 16];
        let n = cobs::encode(&raw, &mut enc);
        undecodable.extend(&enc[..n]);
        undecodable.push(0);
    }
    let cases: Vec<(Vec<u8>, Outcome)> = vec![
        (encode_vec(&Message::Hello), Outcome::Info),
        (good_frame.clone(), Outcome::Response { id: 10 }),
        (vec![0x05, 0x01, 0x00], Outcome::Error(ErrorCode::Cobs)),
        (bad_crc, Outcome::Error(ErrorCode::Crc)),
        (undecodable, Outcome::Error(ErrorCode::Decode)),
        (
            [vec![0x22u8; 9000], vec![0]].concat(),
            Outcome::Error(ErrorCode::Oversized),
        ),
        (
            encode_vec(&Message::Request(big.as_request())),
            Outcome::Error(ErrorCode::Capacity),
        ),
        (
            encode_vec(&Message::Request(bad_index.as_request())),
            Outcome::Error(ErrorCode::InvalidGraph),
        ),
        (
            encode_vec(&Message::Request(nan.as_request())),
            Outcome::Error(ErrorCode::InvalidGraph),
        ),
        (
            encode_vec(&Message::Info(info)),
            Outcome::Error(ErrorCode::Unexpected),
        ),
        (good_frame, Outcome::Response { id: 10 }),
    ];
    let mut link = Link {
        input: VecDeque::new(),
        output: Vec::new(),
    };
    for (i, (frame, outcome)) in cases.iter().enumerate() {
        link.input.extend(frame);
        link.output.clear();
        let got = server.poll(&mut link).unwrap();
        assert_eq!(&got, outcome, "case {i}");
        let mut r = replies(&link.output);
        assert_eq!(r.len(), 1, "case {i}: one reply");
        let msg = decode(&mut r[0]).unwrap();
        match (outcome, msg) {
            (Outcome::Info, Message::Info(i)) => assert_eq!(i, info),
            (Outcome::Response { id }, Message::Response(resp)) => {
                assert_eq!(resp.id, *id);
                assert_eq!((resp.rows, resp.channels), (34, 4));
                assert_eq!(resp.data, &want[..], "case {i}: same bytes as Session::run");
            }
            (Outcome::Error(code), Message::Error(e)) => {
                assert_eq!(e.code, *code, "case {i}: {}", e.detail);
                assert!(!e.detail.is_empty());
                let request_ids = [11, 12, 13];
                if let Some(id) = e.id {
                    assert!(request_ids.contains(&id), "case {i}");
                }
            }
            (o, m) => panic!("case {i}: {o:?} answered with {m:?}"),
        }
    }
    assert!(link.input.is_empty());
}

#[test]
fn int8_features_and_batch_graph_limits() {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let (mut rx, mut tx) = (vec![0u8; 8192], vec![0u8; 4096]);
    let (mut f, mut s, mut t, mut w, mut b) = (
        vec![0f32; 34 * 34],
        vec![0u16; 156],
        vec![0u16; 156],
        vec![0f32; 156],
        vec![0u16; 34],
    );
    // An arena too small for a full graph: a capacity error, not a crash.
    let mut arena = vec![0u8; 256];
    let bufs = Buffers {
        rx: &mut rx,
        tx: &mut tx,
        graph: GraphBuffers {
            features: &mut f,
            sources: &mut s,
            targets: &mut t,
            edge_weight: &mut w,
            batch: &mut b,
        },
        arena: &mut arena,
    };
    let mut server = Server::new(&model, "karate", bufs, NoClock);
    let (x, gs, gt) = graph(34);
    let q: Vec<i8> = x.iter().map(|&v| (v * 100.0) as i8).collect();
    let mut link = Link {
        input: VecDeque::new(),
        output: Vec::new(),
    };
    let req = OwnedRequest::i8(1, 34, 34, &q, &gs, &gt, None, None);
    link.input
        .extend(encode_vec(&Message::Request(req.as_request())));
    assert_eq!(
        server.poll(&mut link).unwrap(),
        Outcome::Error(ErrorCode::Capacity)
    );
    // Two graphs in a batch: the model takes one.
    let batch: Vec<u16> = (0..34).map(|i| (i >= 17) as u16).collect();
    let req = OwnedRequest::i8(2, 34, 34, &q, &[], &[], None, Some(&batch));
    link.input
        .extend(encode_vec(&Message::Request(req.as_request())));
    assert_eq!(
        server.poll(&mut link).unwrap(),
        Outcome::Error(ErrorCode::Capacity)
    );
}

/// A link whose peer goes away: its bytes, then `read` returns 0 (the
/// `embedded_io` end of stream). Counts the reads after the end so that a
/// server that keeps reading fails the test instead of spinning forever.
struct Closing {
    input: VecDeque<u8>,
    output: Vec<u8>,
    reads_after_end: usize,
}

impl ErrorType for Closing {
    type Error = ErrorKind;
}

impl Read for Closing {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match (self.input.pop_front(), buf.first_mut()) {
            (Some(b), Some(slot)) => {
                *slot = b;
                Ok(1)
            }
            _ => {
                self.reads_after_end += 1;
                assert!(
                    self.reads_after_end < 100,
                    "the server keeps reading a link that reported the end of the stream"
                );
                Ok(0)
            }
        }
    }
}

impl Write for Closing {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

#[test]
fn end_of_stream_ends_poll_and_serve() {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let (mut rx, mut tx) = (vec![0u8; 8192], vec![0u8; 4096]);
    let (mut f, mut s, mut t, mut w, mut b) = (
        vec![0f32; 34 * 34],
        vec![0u16; 156],
        vec![0u16; 156],
        vec![0f32; 156],
        vec![0u16; 34],
    );
    let mut arena = vec![0u8; model.arena_bytes(34, 156, 1) + 8];
    let bufs = Buffers {
        rx: &mut rx,
        tx: &mut tx,
        graph: GraphBuffers {
            features: &mut f,
            sources: &mut s,
            targets: &mut t,
            edge_weight: &mut w,
            batch: &mut b,
        },
        arena: &mut arena,
    };
    let mut server = Server::new(&model, "karate", bufs, NoClock);
    let hello = encode_vec(&Message::Hello);
    // A whole frame, then half of one, then the end of the stream.
    let mut link = Closing {
        input: hello.iter().chain(&hello[..2]).copied().collect(),
        output: Vec::new(),
        reads_after_end: 0,
    };
    assert_eq!(server.poll(&mut link), Ok(Outcome::Info));
    assert_eq!(server.poll(&mut link), Err(LinkError::Closed));
    assert_eq!(
        link.reads_after_end, 1,
        "poll returns at the first read of 0"
    );
    assert_eq!(
        replies(&link.output).len(),
        1,
        "the partial frame is not answered"
    );
    assert_eq!(
        LinkError::<ErrorKind>::Closed.to_string(),
        "the link reported the end of the stream"
    );
    // `serve` answers every whole frame, then returns Ok at the end (a
    // delimiter first, as the host sends, ends the partial frame).
    link.input.push_back(0);
    link.input.extend(hello.iter().chain(&hello));
    link.output.clear();
    assert_eq!(server.serve(&mut link), Ok(()));
    let mut r = replies(&link.output);
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(matches!(decode(&mut r[0]), Ok(Message::Error(_))));
    assert!(matches!(decode(&mut r[1]), Ok(Message::Info(_))));
    assert!(matches!(decode(&mut r[2]), Ok(Message::Info(_))));
    // A link that takes no more bytes (`write` returns 0): Closed, no panic
    // (embedded_io's write_all panics on it).
    struct Full(VecDeque<u8>);
    impl ErrorType for Full {
        type Error = ErrorKind;
    }
    impl Read for Full {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            match (self.0.pop_front(), buf.first_mut()) {
                (Some(b), Some(slot)) => {
                    *slot = b;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> Result<usize, ErrorKind> {
            Ok(0)
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }
    let mut full = Full(hello.iter().copied().collect());
    assert_eq!(server.poll(&mut full), Err(LinkError::Closed));
    // A failing link is an Io error, not the end of the stream.
    let mut failing = Link {
        input: VecDeque::new(),
        output: Vec::new(),
    };
    assert_eq!(
        server.poll(&mut failing),
        Err(LinkError::Io(ErrorKind::Other))
    );
}
