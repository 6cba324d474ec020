//! The device side (feature `server`): reads frames from any
//! [`embedded_io`] link (a UART driver, a TCP stream in tests), runs the model
//! on every [`Request`] and answers every frame, valid or not.
//!
//! All memory comes from the caller: the receive buffer (its length is the
//! largest accepted frame), the transmit buffer, the graph buffers and the
//! arena. No heap, no panic on any input: a corrupt, oversized or
//! undecodable frame, a graph beyond the buffers' or the model's capacity
//! and a graph the runtime rejects each get an [`ErrorReply`] and the server
//! goes on with the next frame.

use core::fmt::Write as _;

use embedded_io::{Read, Write};
use tinygnn::graph::{Features, GraphInput};
use tinygnn::{Error, Model, Session};

use crate::{
    encode, ErrorCode, ErrorReply, FeatureSlice, FrameError, FrameReader, Graph, GraphBuffers,
    Info, Message, Request, Response, VERSION,
};

/// A cost counter around each inference (instructions, cycles or µs).
pub trait Clock {
    /// Unit of the counts, sent in [`Info::cost_unit`].
    const UNIT: &'static str;
    /// Starts a measurement.
    fn start(&mut self);
    /// Counts since the last [`Clock::start`].
    fn elapsed(&mut self) -> u64;
}

/// A clock that measures nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    const UNIT: &'static str = "none";
    fn start(&mut self) {}
    fn elapsed(&mut self) -> u64 {
        0
    }
}

/// Memory the server works in.
#[derive(Debug)]
pub struct Buffers<'b> {
    /// Receive buffer: frames up to `rx.len()` bytes (+ delimiter) are accepted.
    pub rx: &'b mut [u8],
    /// Transmit buffer: must hold the largest response frame
    /// ([`crate::max_frame_len`] of `rows × channels + 64`) and an error reply (~160 bytes).
    pub tx: &'b mut [u8],
    /// Where requests are unpacked; their lengths bound nodes and edges.
    pub graph: GraphBuffers<'b>,
    /// The inference arena.
    pub arena: &'b mut [u8],
}

/// What [`Server::poll`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An [`Info`] (to a `Hello`).
    Info,
    /// A [`Response`] to request `id`.
    Response {
        /// Request id.
        id: u32,
    },
    /// An [`ErrorReply`].
    Error(ErrorCode),
}

/// Why [`Server::poll`] returned without answering a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError<E> {
    /// The link reported the end of the stream (a `read` of 0 bytes, the
    /// [`embedded_io::Read`] contract for EOF; or a `write` of 0 bytes):
    /// the peer is gone. A partial frame received before it is dropped.
    Closed,
    /// The link's `read`, `write` or `flush` failed.
    Io(E),
}

impl<E> From<E> for LinkError<E> {
    fn from(e: E) -> Self {
        LinkError::Io(e)
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for LinkError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LinkError::Closed => f.write_str("the link reported the end of the stream"),
            LinkError::Io(e) => write!(f, "link error: {e:?}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for LinkError<E> {}

/// The model and capacities a server answers with.
pub struct Server<'m, 'b, C> {
    model: &'m Model<'m>,
    name: &'m str,
    reader: FrameReader<'b>,
    tx: &'b mut [u8],
    graph: GraphBuffers<'b>,
    arena_len: usize,
    session: Session<'m, 'm>,
    clock: C,
    caps: (usize, usize, usize),
}

type Detail = heapless::String<120>;

impl<'m, 'b: 'm, C: Clock> Server<'m, 'b, C> {
    /// A server for `model` (named `name` in [`Info`]).
    pub fn new(model: &'m Model<'m>, name: &'m str, buffers: Buffers<'b>, clock: C) -> Self {
        let Buffers {
            rx,
            tx,
            graph,
            arena,
        } = buffers;
        let (n, e, g) = model.capacity();
        let caps = (
            (n as usize).min(graph.batch.len()),
            (e as usize)
                .min(graph.sources.len())
                .min(graph.targets.len()),
            g as usize,
        );
        let arena_len = arena.len();
        Server {
            model,
            name,
            reader: FrameReader::new(rx),
            tx,
            graph,
            arena_len,
            session: Session::new(model, arena),
            clock,
            caps,
        }
    }

    /// What the server tells a host that says `Hello`.
    pub fn info(&self) -> Info<'m> {
        let input = self.model.input_desc();
        let out_channels = self
            .model
            .outputs()
            .first()
            .and_then(|&t| self.model.tensors().get(usize::from(t)))
            .map(|t| t.channels)
            .unwrap_or(0);
        Info {
            version: VERSION,
            model: self.name,
            model_crc: self.model.crc(),
            input_channels: input.channels,
            output_channels: out_channels,
            max_nodes: self.caps.0 as u32,
            max_edges: self.caps.1 as u32,
            max_graphs: self.caps.2 as u32,
            max_frame: self.reader.max_frame() as u32,
            cost_unit: C::UNIT,
        }
    }

    /// Serves until the link closes (`Ok(())`: the link reported the end
    /// of the stream) or fails (`Err`).
    pub fn serve<L: Read + Write>(&mut self, link: &mut L) -> Result<(), L::Error> {
        loop {
            match self.poll(link) {
                Ok(_) => {}
                Err(LinkError::Closed) => return Ok(()),
                Err(LinkError::Io(e)) => return Err(e),
            }
        }
    }

    /// Reads bytes until one frame (or one oversized run of bytes) is
    /// complete, answers it, and returns what it answered.
    ///
    /// # Errors
    ///
    /// [`LinkError::Closed`] when the link reports the end of the stream
    /// (`read` returns 0) before a frame is complete, or takes no more
    /// bytes of the answer (`write` returns 0); [`LinkError::Io`] when the
    /// link fails.
    pub fn poll<L: Read + Write>(&mut self, link: &mut L) -> Result<Outcome, LinkError<L::Error>> {
        let mut byte = [0u8; 1];
        let info = self.info();
        loop {
            if link.read(&mut byte)? == 0 {
                return Err(LinkError::Closed);
            }
            let Some(frame) = self.reader.push(byte[0]) else {
                continue;
            };
            let reply = handle(
                frame,
                info,
                &mut self.graph,
                &mut self.session,
                self.model,
                self.arena_len,
                self.caps,
                &mut self.clock,
                self.tx,
            );
            write_all(link, reply.0)?;
            link.flush()?;
            return Ok(reply.1);
        }
    }
}

/// `embedded_io`'s `write_all`, except that a `write` of 0 bytes (a link
/// that takes nothing more) is [`LinkError::Closed`] rather than a panic.
fn write_all<L: Write>(link: &mut L, mut bytes: &[u8]) -> Result<(), LinkError<L::Error>> {
    while !bytes.is_empty() {
        let n = link.write(bytes)?;
        bytes = match bytes.get(n..) {
            Some(rest) if n > 0 => rest,
            _ => return Err(LinkError::Closed),
        };
    }
    Ok(())
}

fn error_frame<'t>(tx: &'t mut [u8], id: Option<u32>, code: ErrorCode, detail: &str) -> &'t [u8] {
    let msg = Message::Error(ErrorReply { id, code, detail });
    match encode(&msg, tx) {
        Ok(f) => f,
        // The transmit buffer cannot even hold an error reply: send nothing
        // but a delimiter (the host times out and reports it).
        Err(_) => &[],
    }
}

#[allow(clippy::too_many_arguments)]
fn handle<'t, C: Clock>(
    frame: Result<&mut [u8], FrameError>,
    info: Info<'_>,
    bufs: &mut GraphBuffers<'_>,
    session: &mut Session<'_, '_>,
    model: &Model<'_>,
    arena_len: usize,
    caps: (usize, usize, usize),
    clock: &mut C,
    tx: &'t mut [u8],
) -> (&'t [u8], Outcome) {
    let mut detail = Detail::new();
    let msg = match frame.and_then(crate::decode) {
        Ok(m) => m,
        Err(e) => {
            let _ = write!(detail, "{e}");
            return (
                error_frame(tx, None, e.code(), &detail),
                Outcome::Error(e.code()),
            );
        }
    };
    match msg {
        Message::Hello => match encode(&Message::Info(info), tx) {
            Ok(f) => (&*f, Outcome::Info),
            Err(_) => (&[], Outcome::Info),
        },
        Message::Request(req) => run(&req, bufs, session, model, arena_len, caps, clock, tx),
        _ => {
            let code = ErrorCode::Unexpected;
            let _ = write!(detail, "the device accepts Hello and Request only");
            (error_frame(tx, None, code, &detail), Outcome::Error(code))
        }
    }
}

fn runtime_code(e: &Error) -> ErrorCode {
    match e {
        Error::TooManyNodes { .. }
        | Error::TooManyEdges { .. }
        | Error::TooManyGraphs { .. }
        | Error::ArenaTooSmall { .. } => ErrorCode::Capacity,
        Error::EdgeListMismatch
        | Error::NodeIndexOutOfRange { .. }
        | Error::FeatureShape { .. }
        | Error::InvalidSparseFeatures { .. }
        | Error::NonFiniteFeature { .. }
        | Error::InvalidEdgeWeight { .. }
        | Error::MissingInput
        | Error::BatchOutOfRange { .. } => ErrorCode::InvalidGraph,
        _ => ErrorCode::Runtime,
    }
}

fn graph_input<'g>(g: &Graph<'g>) -> GraphInput<'g> {
    let features = match g.features {
        FeatureSlice::F32(x) => Features::F32(x),
        FeatureSlice::I8(x) => Features::I8(x),
    };
    let mut input = GraphInput::new(g.num_nodes, features, g.sources, g.targets);
    input.edge_weight = g.edge_weight;
    input.batch = g.batch;
    input
}

#[allow(clippy::too_many_arguments)]
fn run<'t, C: Clock>(
    req: &Request<'_>,
    bufs: &mut GraphBuffers<'_>,
    session: &mut Session<'_, '_>,
    model: &Model<'_>,
    arena_len: usize,
    caps: (usize, usize, usize),
    clock: &mut C,
    tx: &'t mut [u8],
) -> (&'t [u8], Outcome) {
    let id = Some(req.id);
    let mut detail = Detail::new();
    let (n, e) = (req.num_nodes as usize, req.num_edges());
    if n > caps.0 || e > caps.1 {
        let code = ErrorCode::Capacity;
        let _ = write!(
            detail,
            "{n} nodes, {e} edges: the device accepts at most {} nodes, {} edges",
            caps.0, caps.1
        );
        return (error_frame(tx, id, code, &detail), Outcome::Error(code));
    }
    let g = match req.unpack(bufs) {
        Ok(g) => g,
        Err(err) => {
            let _ = write!(detail, "{err}");
            return (
                error_frame(tx, id, err.code(), &detail),
                Outcome::Error(err.code()),
            );
        }
    };
    let graphs = g.num_graphs();
    if graphs > caps.2 {
        let code = ErrorCode::Capacity;
        let _ = write!(
            detail,
            "{graphs} graphs: the model accepts at most {}",
            caps.2
        );
        return (error_frame(tx, id, code, &detail), Outcome::Error(code));
    }
    let need = model.arena_bytes(n, e, graphs);
    if need > arena_len {
        let code = ErrorCode::Capacity;
        let _ = write!(
            detail,
            "arena needs {need} bytes, the device has {arena_len}"
        );
        return (error_frame(tx, id, code, &detail), Outcome::Error(code));
    }
    let input = graph_input(&g);
    clock.start();
    let out = session.run(&input);
    let cost = clock.elapsed();
    match out {
        Ok(o) => {
            let msg = Message::Response(Response {
                id: req.id,
                rows: o.rows as u32,
                channels: o.channels as u16,
                scale: o.scale,
                zero_point: o.zero_point,
                cost,
                data: bytemuck::cast_slice(o.data),
            });
            let size = postcard::experimental::serialized_size(&msg).unwrap_or(usize::MAX);
            if crate::max_frame_len(size) > tx.len() {
                let code = ErrorCode::Runtime;
                let _ = write!(
                    detail,
                    "the response ({size} bytes) does not fit the transmit buffer"
                );
                return (error_frame(tx, id, code, &detail), Outcome::Error(code));
            }
            match encode(&msg, tx) {
                Ok(f) => (&*f, Outcome::Response { id: req.id }),
                Err(_) => (&[], Outcome::Error(ErrorCode::Runtime)),
            }
        }
        Err(err) => {
            let code = runtime_code(&err);
            let _ = write!(detail, "{err}");
            (error_frame(tx, id, code, &detail), Outcome::Error(code))
        }
    }
}
