//! The device side (feature `server`): reads frames from any
//! [`embedded_io`] link (a UART driver, a TCP stream in tests), runs the model
//! on every [`Request`] and answers every frame, valid or not. With the
//! feature `async`, [`Server::poll_async`] and [`Server::serve_async`] do the
//! same over an [`embedded_io_async`] link (an embassy UART, for example).
//!
//! All memory comes from the caller: the receive buffer (its length is the
//! largest accepted frame), the transmit buffer, the graph buffers and the
//! arena. No heap, no panic on any input: a corrupt, oversized or
//! undecodable frame, a graph beyond the buffers' or the model's capacity
//! and a graph the runtime rejects each get an [`ErrorReply`] and the server
//! goes on with the next frame.
//!
//! The protocol is one state machine, [`Server`]'s own: received bytes go
//! into a small chunk buffer, are fed to the [`FrameReader`] one by one, and
//! a completed frame is decoded, run and answered into the transmit buffer.
//! The blocking and the async fronts only move bytes: they read a chunk when
//! the machine wants more and write the reply it made, so both answer every
//! byte stream identically (the `proto_server` fuzz target checks that).

use core::fmt::Write as _;

use embedded_io::{ErrorType, Read, Write};
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

/// Bytes a front reads from the link at a time (at most).
const RX_CHUNK: usize = 32;

/// Received bytes not yet fed to the frame reader: a read may return more
/// than one frame's bytes, and the rest waits here for the next poll.
#[derive(Debug)]
struct Pending {
    buf: [u8; RX_CHUNK],
    pos: usize,
    len: usize,
}

/// The model and capacities a server answers with.
pub struct Server<'m, 'b, C> {
    model: &'m Model<'m>,
    name: &'m str,
    reader: FrameReader<'b>,
    pending: Pending,
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
            pending: Pending {
                buf: [0; RX_CHUNK],
                pos: 0,
                len: 0,
            },
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

    /// Feeds the received bytes not yet seen to the frame reader until one
    /// completes a frame (or an oversized run of bytes), and answers it into
    /// the transmit buffer: the reply's bytes and what they say. `None` when
    /// every received byte was consumed without completing a frame: the
    /// front then reads more ([`Self::rx_space`], [`Self::received`]).
    fn step(&mut self) -> Option<(&[u8], Outcome)> {
        let info = self.info();
        let end = self.pending.len.min(RX_CHUNK);
        while self.pending.pos < end {
            let byte = self.pending.buf.get(self.pending.pos).copied().unwrap_or(0);
            self.pending.pos += 1;
            if let Some(frame) = self.reader.push(byte) {
                return Some(handle(
                    frame,
                    info,
                    &mut self.graph,
                    &mut self.session,
                    self.model,
                    self.arena_len,
                    self.caps,
                    &mut self.clock,
                    self.tx,
                ));
            }
        }
        None
    }

    /// Where a front reads the next bytes to (after [`Self::step`] returned
    /// `None`: every pending byte was consumed).
    fn rx_space(&mut self) -> &mut [u8] {
        self.pending.pos = 0;
        self.pending.len = 0;
        &mut self.pending.buf
    }

    /// Records that a read put `n` bytes into [`Self::rx_space`].
    fn received(&mut self, n: usize) {
        self.pending.pos = 0;
        self.pending.len = n.min(RX_CHUNK);
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
    /// complete, answers it, and returns what it answered. Bytes read past
    /// the end of that frame are kept for the next call.
    ///
    /// # Errors
    ///
    /// [`LinkError::Closed`] when the link reports the end of the stream
    /// (`read` returns 0) before a frame is complete, or takes no more
    /// bytes of the answer (`write` returns 0); [`LinkError::Io`] when the
    /// link fails.
    pub fn poll<L: Read + Write>(&mut self, link: &mut L) -> Result<Outcome, LinkError<L::Error>> {
        loop {
            if let Some((reply, outcome)) = self.step() {
                write_all(link, reply)?;
                link.flush()?;
                return Ok(outcome);
            }
            let n = link.read(self.rx_space())?;
            if n == 0 {
                return Err(LinkError::Closed);
            }
            self.received(n);
        }
    }

    /// [`Self::serve`] over an async link: serves until the link reports
    /// the end of the stream (`Ok(())`) or fails (`Err`).
    #[cfg(feature = "async")]
    pub async fn serve_async<L>(&mut self, link: &mut L) -> Result<(), L::Error>
    where
        L: embedded_io_async::Read + embedded_io_async::Write,
    {
        loop {
            match self.poll_async(link).await {
                Ok(_) => {}
                Err(LinkError::Closed) => return Ok(()),
                Err(LinkError::Io(e)) => return Err(e),
            }
        }
    }

    /// [`Self::poll`] over an async link: the same state machine, the same
    /// answers and the same errors; it awaits the link's `read`, `write`
    /// and `flush` instead of blocking in them.
    ///
    /// Dropping the future (a timeout `select`, say) while it awaits a
    /// `read` keeps the server consistent: the bytes received so far stay
    /// in the frame reader, and the next call goes on from there, provided
    /// the link's own `read` loses nothing when cancelled. Dropping it while
    /// it writes a reply loses the rest of that reply.
    ///
    /// # Errors
    ///
    /// As [`Self::poll`].
    #[cfg(feature = "async")]
    pub async fn poll_async<L>(&mut self, link: &mut L) -> Result<Outcome, LinkError<L::Error>>
    where
        L: embedded_io_async::Read + embedded_io_async::Write,
    {
        loop {
            if let Some((reply, outcome)) = self.step() {
                write_all_async(link, reply).await?;
                link.flush().await?;
                return Ok(outcome);
            }
            let n = link.read(self.rx_space()).await?;
            if n == 0 {
                return Err(LinkError::Closed);
            }
            self.received(n);
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

/// [`write_all`] for an async link.
#[cfg(feature = "async")]
async fn write_all_async<L: embedded_io_async::Write>(
    link: &mut L,
    mut bytes: &[u8],
) -> Result<(), LinkError<L::Error>> {
    while !bytes.is_empty() {
        let n = link.write(bytes).await?;
        bytes = match bytes.get(n..) {
            Some(rest) if n > 0 => rest,
            _ => return Err(LinkError::Closed),
        };
    }
    Ok(())
}

/// A link made of two halves with the same error type: a receiver and a
/// transmitter, e.g. `nrf52840-hal`'s `UarteRx` and `UarteTx` from
/// `Uarte::split`, or the halves of an embassy buffered UART. Implements the
/// blocking traits when the halves do, and with the feature `async` the
/// async ones when the halves do.
#[derive(Debug)]
pub struct Duplex<R, W> {
    /// The receiving half.
    pub rx: R,
    /// The transmitting half.
    pub tx: W,
}

impl<R: ErrorType, W: ErrorType<Error = R::Error>> ErrorType for Duplex<R, W> {
    type Error = R::Error;
}

impl<R: Read, W: ErrorType<Error = R::Error>> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.rx.read(buf)
    }
}

impl<R: ErrorType, W: Write<Error = R::Error>> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.tx.flush()
    }
}

#[cfg(feature = "async")]
impl<R: embedded_io_async::Read, W: ErrorType<Error = R::Error>> embedded_io_async::Read
    for Duplex<R, W>
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.rx.read(buf).await
    }
}

#[cfg(feature = "async")]
impl<R: ErrorType, W: embedded_io_async::Write<Error = R::Error>> embedded_io_async::Write
    for Duplex<R, W>
{
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.tx.write(buf).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.tx.flush().await
    }
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
