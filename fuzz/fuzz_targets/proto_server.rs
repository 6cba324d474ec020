//! The device-side server (`tinygnn_proto::server::Server`) on an arbitrary
//! byte stream: karate-gcn behind a mock link that delivers the fuzzer's
//! bytes and then reports the end of the stream. `poll` is called until it
//! returns `LinkError::Closed`.
//!
//! Asserts, besides "no panic" and "it ends" (every `poll` consumes at least
//! one byte): every answered frame produced exactly one reply, which
//! decodes with a valid CRC into the message the outcome says (`Info`, a
//! `Response` to that request id with `rows × channels` bytes, or an
//! `Error` with that code); the server never reports a link error.
//!
//! Then the async front (`poll_async`, feature `async`) runs on a fresh
//! server over the same bytes, on a no-op-waker executor, with a link whose
//! every read and write is `Pending` once first and whose reads return as
//! many bytes as fit (so several frames arrive in one read, where the
//! blocking run gets one byte per read): it must give the same outcomes and
//! exactly the same reply bytes as the blocking front.
#![no_main]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use libfuzzer_sys::fuzz_target;
use tinygnn::Model;
use tinygnn_proto::server::{Buffers, LinkError, NoClock, Outcome, Server};
use tinygnn_proto::{decode, FrameReader, GraphBuffers, Message};

static KARATE: OnceLock<Vec<u8>> = OnceLock::new();

/// The fuzzer's bytes, then the end of the stream; replies collected.
/// Reads return one byte, or as many as fit with `chunks`.
struct Link {
    input: VecDeque<u8>,
    output: Vec<u8>,
    chunks: bool,
}

impl ErrorType for Link {
    type Error = ErrorKind;
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let want = if self.chunks { buf.len() } else { 1 };
        let mut n = 0;
        for slot in buf.iter_mut().take(want) {
            let Some(b) = self.input.pop_front() else {
                break;
            };
            *slot = b;
            n += 1;
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

/// `Pending` once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl embedded_io_async::Read for Link {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        YieldOnce(false).await;
        Read::read(self, buf)
    }
}

impl embedded_io_async::Write for Link {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        YieldOnce(false).await;
        Write::write(self, buf)
    }
    async fn flush(&mut self) -> Result<(), ErrorKind> {
        YieldOnce(false).await;
        Ok(())
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn check_reply(outcome: Outcome, out: &[u8]) {
    let mut buf = vec![0u8; 1 << 13];
    let mut reader = FrameReader::new(&mut buf);
    let mut frames = 0;
    for (i, &b) in out.iter().enumerate() {
        let Some(frame) = reader.push(b) else {
            continue;
        };
        frames += 1;
        assert_eq!(i + 1, out.len(), "one reply per frame");
        let msg = decode(frame.expect("the reply is one frame")).expect("the reply decodes");
        match (outcome, msg) {
            (Outcome::Info, Message::Info(_)) => {}
            (Outcome::Response { id }, Message::Response(r)) => {
                assert_eq!(r.id, id);
                assert_eq!(r.data.len(), r.rows as usize * usize::from(r.channels));
            }
            (Outcome::Error(code), Message::Error(e)) => assert_eq!(e.code, code),
            (o, m) => panic!("outcome {o:?} but reply {m:?}"),
        }
    }
    assert_eq!(frames, 1, "one reply for {outcome:?}");
}

/// Serves `data` with one front; returns the outcomes and every reply byte.
fn serve(model: &Model<'_>, data: &[u8], asynchronous: bool) -> (Vec<Outcome>, Vec<u8>) {
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
    let mut server = Server::new(model, "karate-gcn.tgnn", bufs, NoClock);
    let mut link = Link {
        input: data.iter().copied().collect(),
        output: Vec::new(),
        chunks: asynchronous,
    };
    let (mut outcomes, mut all) = (Vec::new(), Vec::new());
    loop {
        let before = link.input.len();
        let r = if asynchronous {
            block_on(server.poll_async(&mut link))
        } else {
            server.poll(&mut link)
        };
        match r {
            Ok(outcome) => {
                // (A chunked read may hold the next frames already.)
                assert!(
                    asynchronous || link.input.len() < before,
                    "poll consumed no byte"
                );
                check_reply(outcome, &link.output);
                outcomes.push(outcome);
                all.append(&mut link.output);
            }
            Err(LinkError::Closed) => break,
            Err(e) => panic!("the mock link never fails: {e:?}"),
        }
    }
    assert!(link.input.is_empty());
    (outcomes, all)
}

fuzz_target!(|data: &[u8]| {
    let bytes =
        KARATE.get_or_init(|| include_bytes!("../../models/karate-gcn/karate-gcn.tgnn").to_vec());
    let model = Model::from_bytes(bytes).expect("karate-gcn is valid");
    let blocking = serve(&model, data, false);
    let asynchronous = serve(&model, data, true);
    assert_eq!(blocking, asynchronous, "the two fronts answer alike");
});
