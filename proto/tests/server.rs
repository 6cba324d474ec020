//! The device-side server over an in-memory link, with the bundled
//! karate-gcn model: answers equal `Session::run`, every bad frame gets its
//! error reply, and the link keeps working afterwards. Every test runs
//! through both fronts of the one state machine: the blocking
//! `poll`/`serve` and the async `poll_async`/`serve_async` (feature
//! `async`), the latter on a hand-written executor (a no-op waker polled in
//! a loop) over links whose every read and write first returns `Pending`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use tinygnn::graph::{Features, GraphInput};
use tinygnn::{Model, Session};
use tinygnn_proto::server::{Buffers, Duplex, LinkError, NoClock, Outcome, Server};
use tinygnn_proto::{
    decode, encode_vec, ErrorCode, FrameReader, GraphBuffers, Message, OwnedRequest, CRC,
};

/// A waker that does nothing (`Waker::noop` needs Rust 1.85, above the MSRV).
struct NoopWake;

impl std::task::Wake for NoopWake {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// Runs a future to completion on the current thread: a no-op waker, polled
/// until ready (the links below wake themselves). Returns the value and how
/// many times the future was `Pending`.
fn block_on<F: Future>(f: F) -> (F::Output, usize) {
    let mut f = pin!(f);
    let waker = Waker::from(std::sync::Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut pending = 0;
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return (v, pending),
            Poll::Pending => pending += 1,
        }
    }
}

/// `Pending` once (after waking its waker), then ready: what an async
/// UART does while a byte is on its way.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// An async link over a blocking mock: every read, write and flush first
/// yields once, then does what the mock does.
struct Yielding<'a, L>(&'a mut L);

impl<L: ErrorType> ErrorType for Yielding<'_, L> {
    type Error = L::Error;
}

impl<L: Read> embedded_io_async::Read for Yielding<'_, L> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, L::Error> {
        YieldOnce(false).await;
        self.0.read(buf)
    }
}

impl<L: Write> embedded_io_async::Write for Yielding<'_, L> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, L::Error> {
        YieldOnce(false).await;
        self.0.write(buf)
    }
    async fn flush(&mut self) -> Result<(), L::Error> {
        YieldOnce(false).await;
        self.0.flush()
    }
}

/// Which front of the server a test drives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Front {
    Blocking,
    Async,
}

const FRONTS: [Front; 2] = [Front::Blocking, Front::Async];

type Karate<'m, 'b> = Server<'m, 'b, NoClock>;

fn poll<'m, 'b: 'm, L: Read + Write<Error = ErrorKind>>(
    front: Front,
    server: &mut Karate<'m, 'b>,
    link: &mut L,
) -> Result<Outcome, LinkError<ErrorKind>> {
    match front {
        Front::Blocking => server.poll(link),
        Front::Async => {
            let (r, pending) = block_on(server.poll_async(&mut Yielding(link)));
            assert!(pending > 0, "the async front awaited the link");
            r
        }
    }
}

fn serve<'m, 'b: 'm, L: Read + Write<Error = ErrorKind>>(
    front: Front,
    server: &mut Karate<'m, 'b>,
    link: &mut L,
) -> Result<(), ErrorKind> {
    match front {
        Front::Blocking => server.serve(link),
        Front::Async => block_on(server.serve_async(&mut Yielding(link))).0,
    }
}

/// The server's memory for karate-gcn (34 nodes, 156 edges).
struct Memory {
    rx: Vec<u8>,
    tx: Vec<u8>,
    features: Vec<f32>,
    sources: Vec<u16>,
    targets: Vec<u16>,
    weights: Vec<f32>,
    batch: Vec<u16>,
    arena: Vec<u8>,
}

impl Memory {
    fn new(arena: usize) -> Memory {
        Memory {
            rx: vec![0u8; 8192],
            tx: vec![0u8; 4096],
            features: vec![0f32; 34 * 34],
            sources: vec![0u16; 156],
            targets: vec![0u16; 156],
            weights: vec![0f32; 156],
            batch: vec![0u16; 34],
            arena: vec![0u8; arena],
        }
    }

    fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            rx: &mut self.rx,
            tx: &mut self.tx,
            graph: GraphBuffers {
                features: &mut self.features,
                sources: &mut self.sources,
                targets: &mut self.targets,
                edge_weight: &mut self.weights,
                batch: &mut self.batch,
            },
            arena: &mut self.arena,
        }
    }
}

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
    for front in FRONTS {
        every_bad_frame(front);
    }
}

fn every_bad_frame(front: Front) {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut mem = Memory::new(model.arena_bytes(34, 156, 1) + 8);
    let mut server = Server::new(&model, "karate-gcn.tgnn", mem.buffers(), NoClock);
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
        let got = poll(front, &mut server, &mut link).unwrap();
        assert_eq!(&got, outcome, "{front:?} case {i}");
        let mut r = replies(&link.output);
        assert_eq!(r.len(), 1, "{front:?} case {i}: one reply");
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
    for front in FRONTS {
        int8_and_limits(front);
    }
}

fn int8_and_limits(front: Front) {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    // An arena too small for a full graph: a capacity error, not a crash.
    let mut mem = Memory::new(256);
    let mut server = Server::new(&model, "karate", mem.buffers(), NoClock);
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
        poll(front, &mut server, &mut link).unwrap(),
        Outcome::Error(ErrorCode::Capacity)
    );
    // Two graphs in a batch: the model takes one.
    let batch: Vec<u16> = (0..34).map(|i| (i >= 17) as u16).collect();
    let req = OwnedRequest::i8(2, 34, 34, &q, &[], &[], None, Some(&batch));
    link.input
        .extend(encode_vec(&Message::Request(req.as_request())));
    assert_eq!(
        poll(front, &mut server, &mut link).unwrap(),
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
    for front in FRONTS {
        end_of_stream(front);
    }
}

fn end_of_stream(front: Front) {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut mem = Memory::new(model.arena_bytes(34, 156, 1) + 8);
    let mut server = Server::new(&model, "karate", mem.buffers(), NoClock);
    let hello = encode_vec(&Message::Hello);
    // A whole frame, then half of one, then the end of the stream.
    let mut link = Closing {
        input: hello.iter().chain(&hello[..2]).copied().collect(),
        output: Vec::new(),
        reads_after_end: 0,
    };
    assert_eq!(poll(front, &mut server, &mut link), Ok(Outcome::Info));
    assert_eq!(poll(front, &mut server, &mut link), Err(LinkError::Closed));
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
    assert_eq!(serve(front, &mut server, &mut link), Ok(()));
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
    assert_eq!(poll(front, &mut server, &mut full), Err(LinkError::Closed));
    // A failing link is an Io error, not the end of the stream.
    let mut failing = Link {
        input: VecDeque::new(),
        output: Vec::new(),
    };
    assert_eq!(
        poll(front, &mut server, &mut failing),
        Err(LinkError::Io(ErrorKind::Other))
    );
}

/// One byte stream with every kind of frame, garbage between them, and
/// several frames per read: both fronts answer it with the same bytes, and
/// a link made of two halves ([`Duplex`]) works as one.
#[test]
fn both_fronts_answer_a_mixed_stream_identically() {
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let (x, gs, gt) = graph(34);
    let good = OwnedRequest::f32(10, 34, 34, &x, &gs, &gt, None, None);
    let (x35, s35, t35) = graph(35);
    let big = OwnedRequest::f32(11, 35, 34, &x35, &s35, &t35, None, None);
    let hello = encode_vec(&Message::Hello);
    let mut stream = Vec::new();
    stream.extend(&hello);
    stream.extend(&hello);
    stream.extend([0x05, 0x01, 0x00]);
    stream.extend(encode_vec(&Message::Request(good.as_request())));
    stream.extend([0x41u8; 100]); // garbage, ended by the next frame's delimiter...
    stream.push(0);
    stream.extend(&hello);
    stream.extend([0x22u8; 9000]);
    stream.push(0);
    stream.extend(encode_vec(&Message::Request(big.as_request())));
    stream.extend(&hello);
    stream.extend(&hello[..3]); // ...and a partial frame at the end of the stream
    let mut outputs = Vec::new();
    for front in FRONTS {
        let mut mem = Memory::new(model.arena_bytes(34, 156, 1) + 8);
        let mut server = Server::new(&model, "karate-gcn.tgnn", mem.buffers(), NoClock);
        // Reads of up to 32 bytes: Hello frames arrive several per read.
        let mut link = Link {
            input: stream.iter().copied().collect(),
            output: Vec::new(),
        };
        let mut outcomes = Vec::new();
        loop {
            match poll(front, &mut server, &mut link) {
                Ok(o) => outcomes.push(o),
                Err(LinkError::Io(ErrorKind::Other)) => break, // the mock's end
                Err(e) => panic!("{front:?}: {e:?}"),
            }
        }
        assert_eq!(
            outcomes,
            [
                Outcome::Info,
                Outcome::Info,
                Outcome::Error(ErrorCode::Cobs),
                Outcome::Response { id: 10 },
                Outcome::Error(ErrorCode::Cobs),
                Outcome::Info,
                Outcome::Error(ErrorCode::Oversized),
                Outcome::Error(ErrorCode::Capacity),
                Outcome::Info,
            ],
            "{front:?}"
        );
        outputs.push(link.output);
    }
    assert_eq!(replies(&outputs[0]).len(), 9);
    assert_eq!(outputs[0], outputs[1], "the fronts answer alike");

    // The same stream over two halves, each front.
    for front in FRONTS {
        let mut mem = Memory::new(model.arena_bytes(34, 156, 1) + 8);
        let mut server = Server::new(&model, "karate-gcn.tgnn", mem.buffers(), NoClock);
        let rx = Link {
            input: stream.iter().copied().collect(),
            output: Vec::new(),
        };
        let tx = Link {
            input: VecDeque::new(),
            output: Vec::new(),
        };
        let mut duplex = Duplex { rx, tx };
        let mut n = 0;
        while poll(front, &mut server, &mut duplex).is_ok() {
            n += 1;
        }
        assert_eq!(n, 9, "{front:?}");
        assert_eq!(duplex.tx.output, outputs[0], "{front:?}");
        assert!(duplex.rx.output.is_empty());
    }
}

/// The firmware sizes for karate-gcn at capacity hold its largest request
/// and response, and smaller limits shrink them.
#[test]
fn firmware_sizes() {
    use tinygnn_proto::sizing::FirmwareSizes;
    let bytes = karate();
    let model = Model::from_bytes(&bytes).unwrap();
    let z = FirmwareSizes::new(&model, None, None);
    assert_eq!((z.max_nodes, z.max_edges, z.max_graphs), (34, 156, 1));
    assert_eq!((z.channels, z.out_channels), (34, 4));
    assert_eq!(
        z.arena_bytes,
        model.arena_bytes(34, 156, 1).div_ceil(16) * 16 + 16
    );
    // The largest request: f32 features, edge weights and a batch vector.
    let (x, mut s, mut t) = graph(34);
    s.resize(156, 33);
    t.resize(156, 32);
    let w = vec![1.0f32; 156];
    let b = vec![0u16; 34];
    let req = OwnedRequest::f32(u32::MAX, 34, 34, &x, &s, &t, Some(&w), Some(&b));
    let frame = encode_vec(&Message::Request(req.as_request()));
    assert!(
        frame.len() <= z.rx_bytes + 1,
        "{} > {}",
        frame.len(),
        z.rx_bytes
    );
    assert!(z.tx_bytes >= tinygnn_proto::max_frame_len(34 * 4 + 40));
    let small = FirmwareSizes::new(&model, Some(20), Some(1000));
    assert_eq!((small.max_nodes, small.max_edges), (20, 156));
    assert!(small.rx_bytes < z.rx_bytes && small.arena_bytes <= z.arena_bytes);
    let src = z.rust_consts("karate-gcn.tgnn");
    assert!(src.contains("pub const MODEL_NAME: &str = \"karate-gcn.tgnn\";"));
    assert!(src.contains(&format!("pub const RX_BYTES: usize = {};", z.rx_bytes)));
}
