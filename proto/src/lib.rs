//! The tinygnn streaming protocol: graphs sent to a device over a byte link
//! (a UART), the model's outputs sent back.
//!
//! A **frame** on the wire is `COBS(postcard(Message) ‖ CRC-32(LE)) ‖ 0x00`:
//! the [`Message`] serialized with postcard, followed by the CRC-32
//! (ISO-HDLC, the one of zip/PNG and of the `.tgnn` file) of those bytes,
//! little-endian, the whole COBS-encoded (so it contains no zero byte) and
//! ended by one `0x00` delimiter. `docs/stream.md` describes every byte.
//!
//! Receivers cut the byte stream at every `0x00` ([`FrameReader`]); a frame
//! longer than their buffer is dropped up to the next delimiter and reported
//! as [`FrameError::Oversized`], so a receiver resynchronises on the next
//! frame whatever arrived before. [`decode`] checks COBS, then the CRC, then
//! postcard (with no trailing bytes), and returns a [`Message`] borrowing from
//! the frame buffer: no copy, no heap. [`Request::unpack`] converts a graph's
//! little-endian arrays into caller-provided, aligned slices ready for the
//! runtime, after checking every length against the node and edge counts and
//! against the buffers' capacity.
//!
//! Nothing here panics on any input: lengths are checked before slicing,
//! and COBS is done by this crate's own checked code (`stuffing.rs`), so that
//! a firmware using it links without a panic handler.
//! The device side (feature `server`) is in the module `server`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
// docs.rs (`--cfg docsrs`, nightly): feature-gated items name their feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod server;
#[cfg(all(feature = "std", feature = "server"))]
pub mod sizing;
mod stuffing;

use serde::{Deserialize, Serialize};

/// Protocol version, sent in [`Info::version`].
pub const VERSION: u8 = 1;

/// The frame delimiter.
pub const DELIMITER: u8 = 0;

/// Bytes of the CRC that ends every (decoded) frame.
pub const CRC_BYTES: usize = 4;

/// The frame checksum: CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and
/// final XOR 0xFFFFFFFF), the same as the `.tgnn` file's.
pub static CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Largest frame on the wire (COBS bytes and the delimiter) for a message
/// that postcard serializes into `payload` bytes.
pub const fn max_frame_len(payload: usize) -> usize {
    let n = payload + CRC_BYTES;
    // COBS adds one byte per started run of 254 bytes (at least one).
    n + n / 254 + 1 + 1
}

/// Everything that goes over the link, in either direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// Host → device: asks for [`Info`].
    Hello,
    /// Device → host: what the device runs and what it accepts.
    #[serde(borrow)]
    Info(Info<'a>),
    /// Host → device: one input (one graph or a batch of graphs).
    #[serde(borrow)]
    Request(Request<'a>),
    /// Device → host: the output of a request.
    #[serde(borrow)]
    Response(Response<'a>),
    /// Device → host: a frame or request that was rejected.
    #[serde(borrow)]
    Error(ErrorReply<'a>),
}

/// The device's description of itself (answer to [`Message::Hello`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Info<'a> {
    /// Protocol version ([`VERSION`]).
    pub version: u8,
    /// Name of the embedded model (its file name).
    pub model: &'a str,
    /// CRC-32 of the embedded `.tgnn` file (its header field).
    pub model_crc: u32,
    /// Input feature channels the model expects.
    pub input_channels: u16,
    /// Output channels of the model.
    pub output_channels: u16,
    /// Largest node count accepted per request.
    pub max_nodes: u32,
    /// Largest edge count accepted per request.
    pub max_edges: u32,
    /// Largest graph count (batch) accepted per request.
    pub max_graphs: u32,
    /// Largest frame the device receives, in bytes on the wire (delimiter included).
    pub max_frame: u32,
    /// Unit of [`Response::cost`] (`insn`, `cycles`, `us` or `none`).
    pub cost_unit: &'a str,
}

/// Node features of a [`Request`], little-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum FeatureBytes<'a> {
    /// `nodes × channels` f32 values (4 bytes each), row-major; quantized on the device.
    F32(&'a [u8]),
    /// `nodes × channels` int8 values, already quantized with the model input's scale and zero point.
    I8(&'a [u8]),
}

/// One input: a graph, or a PyG-style batch of graphs (with `batch`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Request<'a> {
    /// Chosen by the host, echoed in the answer.
    pub id: u32,
    /// Nodes.
    pub num_nodes: u32,
    /// Feature channels per node.
    pub channels: u16,
    /// Node features.
    #[serde(borrow)]
    pub features: FeatureBytes<'a>,
    /// Edge sources, `u16` little-endian each.
    pub sources: &'a [u8],
    /// Edge targets, `u16` little-endian each (as many as sources).
    pub targets: &'a [u8],
    /// Optional edge weights, `f32` little-endian, one per edge.
    pub edge_weight: Option<&'a [u8]>,
    /// Optional batch vector (graph of every node), `u16` little-endian, one per node.
    pub batch: Option<&'a [u8]>,
}

/// The model's output for one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Response<'a> {
    /// The request's id.
    pub id: u32,
    /// Output rows (nodes, or graphs for pooled models).
    pub rows: u32,
    /// Output channels.
    pub channels: u16,
    /// Output scale (real = scale · (q − zero_point)).
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i8,
    /// Cost of the inference on the device, in [`Info::cost_unit`]s (0 if not measured).
    pub cost: u64,
    /// `rows × channels` int8 outputs (as bytes), row-major.
    pub data: &'a [u8],
}

/// A rejected frame or request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply<'a> {
    /// The request's id, when the frame could be read that far.
    pub id: Option<u32>,
    /// What went wrong.
    pub code: ErrorCode,
    /// A human-readable detail (may be cut; empty when there is none).
    pub detail: &'a str,
}

/// Why a frame or request was rejected. The wire value is the variant index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: the bytes between two delimiters are not valid COBS.
    Cobs,
    /// 1: the CRC does not match (or the frame is shorter than a CRC).
    Crc,
    /// 2: the CRC matches but the bytes are not a valid message.
    Decode,
    /// 3: the frame is longer than the receiver's buffer ([`Info::max_frame`]).
    Oversized,
    /// 4: the graph exceeds the device's capacity (nodes, edges, graphs or arena).
    Capacity,
    /// 5: the graph is malformed (array lengths, indices, non-finite values…).
    InvalidGraph,
    /// 6: inference failed for another reason (e.g. an intermediate overflow).
    Runtime,
    /// 7: a message the receiver does not accept (e.g. a response sent to the device).
    Unexpected,
}

impl ErrorCode {
    /// The wire value.
    pub fn value(self) -> u8 {
        self as u8
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorCode::Cobs => "bad COBS encoding",
            ErrorCode::Crc => "CRC mismatch",
            ErrorCode::Decode => "undecodable message",
            ErrorCode::Oversized => "frame too large",
            ErrorCode::Capacity => "graph beyond capacity",
            ErrorCode::InvalidGraph => "invalid graph",
            ErrorCode::Runtime => "inference failed",
            ErrorCode::Unexpected => "unexpected message",
        })
    }
}

/// Why a frame could not be made or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The output buffer is too small for the encoded frame.
    BufferTooSmall,
    /// The bytes are not valid COBS.
    Cobs,
    /// The decoded frame is shorter than its CRC.
    TooShort,
    /// The CRC does not match.
    Crc {
        /// CRC computed over the received bytes.
        computed: u32,
        /// CRC carried by the frame.
        received: u32,
    },
    /// The bytes are not a valid postcard [`Message`].
    Decode,
    /// The message is followed by extra bytes before the CRC.
    TrailingBytes,
    /// The frame did not fit the receive buffer (`bytes` received up to the delimiter).
    Oversized {
        /// Bytes of the dropped frame.
        bytes: usize,
    },
}

impl FrameError {
    /// The error code a receiver answers with.
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::Cobs => ErrorCode::Cobs,
            FrameError::TooShort | FrameError::Crc { .. } => ErrorCode::Crc,
            FrameError::Decode | FrameError::TrailingBytes => ErrorCode::Decode,
            FrameError::Oversized { .. } => ErrorCode::Oversized,
            FrameError::BufferTooSmall => ErrorCode::Runtime,
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::BufferTooSmall => f.write_str("frame buffer too small"),
            FrameError::Cobs => f.write_str("bad COBS encoding"),
            FrameError::TooShort => f.write_str("frame shorter than its CRC"),
            FrameError::Crc { computed, received } => write!(
                f,
                "CRC mismatch (computed {computed:08x}, frame says {received:08x})"
            ),
            FrameError::Decode => f.write_str("not a valid message"),
            FrameError::TrailingBytes => f.write_str("trailing bytes after the message"),
            FrameError::Oversized { bytes } => {
                write!(f, "frame of {bytes} bytes exceeds the receive buffer")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Encodes `msg` as one frame (COBS bytes and the `0x00` delimiter) into
/// `buf`; returns the used part.
pub fn encode<'b>(msg: &Message<'_>, buf: &'b mut [u8]) -> Result<&'b mut [u8], FrameError> {
    let writer = stuffing::FrameWriter::new(&mut buf[..])?;
    let n = postcard::serialize_with_flavor(msg, writer).map_err(|_| FrameError::BufferTooSmall)?;
    buf.get_mut(..n).ok_or(FrameError::BufferTooSmall)
}

/// Encodes `msg` as one frame into a new vector (host side).
#[cfg(feature = "std")]
pub fn encode_vec(msg: &Message<'_>) -> Vec<u8> {
    let n = postcard::experimental::serialized_size(msg).unwrap_or(0);
    let mut buf = vec![0u8; max_frame_len(n)];
    let len = encode(msg, &mut buf).map(|f| f.len()).unwrap_or(0);
    buf.truncate(len);
    buf
}

/// The postcard body of `msg` (no CRC, no COBS): what a frame carries.
#[cfg(feature = "std")]
pub fn encode_body_vec(msg: &Message<'_>) -> Vec<u8> {
    postcard::to_stdvec(msg).unwrap_or_default()
}

/// Frames arbitrary bytes as a message body would be (body ‖ CRC-32, COBS,
/// delimiter): for link tests that need a frame with a valid CRC around an
/// invalid message.
#[cfg(feature = "std")]
pub fn encode_raw_vec(body: &[u8]) -> Vec<u8> {
    use postcard::ser_flavors::Flavor;
    let mut out = vec![0u8; max_frame_len(body.len())];
    let n = stuffing::FrameWriter::new(&mut out)
        .and_then(|mut w| {
            w.try_extend(body)
                .and_then(|()| w.finalize())
                .map_err(|_| FrameError::BufferTooSmall)
        })
        .unwrap_or(0);
    out.truncate(n);
    out
}

/// Decodes one frame: the bytes between two delimiters (no `0x00` in
/// them). COBS is undone in place; the message borrows from `frame`.
pub fn decode(frame: &mut [u8]) -> Result<Message<'_>, FrameError> {
    if frame.is_empty() {
        return Err(FrameError::TooShort);
    }
    let n = stuffing::unstuff(frame)?;
    let raw: &[u8] = frame.get(..n).ok_or(FrameError::Cobs)?;
    if n < CRC_BYTES {
        return Err(FrameError::TooShort);
    }
    let (body, crc) = raw.split_at(n - CRC_BYTES);
    let mut le = [0u8; CRC_BYTES];
    le.copy_from_slice(crc);
    let received = u32::from_le_bytes(le);
    let computed = CRC.checksum(body);
    if computed != received {
        return Err(FrameError::Crc { computed, received });
    }
    let (msg, rest) =
        postcard::take_from_bytes::<Message<'_>>(body).map_err(|_| FrameError::Decode)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes);
    }
    Ok(msg)
}

/// Cuts a byte stream into frames at every `0x00`, into a caller-provided
/// buffer (no heap). A frame longer than the buffer is dropped up to the
/// next delimiter and reported as [`FrameError::Oversized`]; empty frames
/// (two delimiters in a row) are skipped, so a sender may start with a
/// `0x00` to end whatever partial frame the receiver holds.
#[derive(Debug)]
pub struct FrameReader<'b> {
    buf: &'b mut [u8],
    len: usize,
    dropped: usize,
}

impl<'b> FrameReader<'b> {
    /// A reader receiving frames of up to `buf.len()` bytes (without the delimiter).
    pub fn new(buf: &'b mut [u8]) -> Self {
        FrameReader {
            buf,
            len: 0,
            dropped: 0,
        }
    }

    /// Largest frame accepted, in bytes on the wire including the delimiter.
    pub fn max_frame(&self) -> usize {
        self.buf.len() + 1
    }

    /// Feeds one byte. Returns the frame's (still COBS-encoded) bytes when a
    /// delimiter ends a non-empty frame, an error when it ends an oversized one.
    pub fn push(&mut self, byte: u8) -> Option<Result<&mut [u8], FrameError>> {
        if byte == DELIMITER {
            let (len, dropped) = (self.len, self.dropped);
            self.len = 0;
            self.dropped = 0;
            if dropped > 0 {
                return Some(Err(FrameError::Oversized {
                    bytes: len.saturating_add(dropped),
                }));
            }
            if len == 0 {
                return None;
            }
            return self.buf.get_mut(..len).map(Ok);
        }
        match self.buf.get_mut(self.len) {
            Some(slot) if self.dropped == 0 => {
                *slot = byte;
                self.len += 1;
            }
            _ => self.dropped = self.dropped.saturating_add(1),
        }
        None
    }
}

/// A field of a [`Request`], for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `features`.
    Features,
    /// `sources`.
    Sources,
    /// `targets`.
    Targets,
    /// `edge_weight`.
    EdgeWeight,
    /// `batch`.
    Batch,
}

impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Field::Features => "features",
            Field::Sources => "sources",
            Field::Targets => "targets",
            Field::EdgeWeight => "edge_weight",
            Field::Batch => "batch",
        })
    }
}

/// Why a request's arrays cannot be unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphError {
    /// An array's byte length does not match the node/edge counts.
    Length {
        /// The array.
        field: Field,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// An array does not fit the receiver's buffer.
    Capacity {
        /// The array.
        field: Field,
        /// Values needed.
        needed: usize,
        /// Values the buffer holds.
        available: usize,
    },
}

impl GraphError {
    /// The error code a receiver answers with.
    pub fn code(self) -> ErrorCode {
        match self {
            GraphError::Length { .. } => ErrorCode::InvalidGraph,
            GraphError::Capacity { .. } => ErrorCode::Capacity,
        }
    }
}

impl core::fmt::Display for GraphError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GraphError::Length {
                field,
                expected,
                actual,
            } => write!(f, "{field}: {actual} bytes, expected {expected}"),
            GraphError::Capacity {
                field,
                needed,
                available,
            } => write!(f, "{field}: {needed} values, buffer holds {available}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GraphError {}

/// Aligned buffers a receiver unpacks requests into.
#[derive(Debug)]
pub struct GraphBuffers<'b> {
    /// Features: `nodes × channels` f32 (int8 features use its bytes).
    pub features: &'b mut [f32],
    /// Edge sources.
    pub sources: &'b mut [u16],
    /// Edge targets.
    pub targets: &'b mut [u16],
    /// Edge weights.
    pub edge_weight: &'b mut [f32],
    /// Batch vector.
    pub batch: &'b mut [u16],
}

/// Unpacked node features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureSlice<'b> {
    /// Float features.
    F32(&'b [f32]),
    /// Quantized features.
    I8(&'b [i8]),
}

/// A request's graph in aligned, native slices (what the runtime takes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Graph<'b> {
    /// Nodes.
    pub num_nodes: usize,
    /// Feature channels.
    pub channels: usize,
    /// Features.
    pub features: FeatureSlice<'b>,
    /// Edge sources.
    pub sources: &'b [u16],
    /// Edge targets.
    pub targets: &'b [u16],
    /// Edge weights.
    pub edge_weight: Option<&'b [f32]>,
    /// Batch vector.
    pub batch: Option<&'b [u16]>,
}

impl Graph<'_> {
    /// Edges.
    pub fn num_edges(&self) -> usize {
        self.sources.len()
    }

    /// Graphs in the batch (`max(batch) + 1`, 1 without a batch vector).
    pub fn num_graphs(&self) -> usize {
        match self.batch {
            Some(b) => b.iter().map(|&g| usize::from(g) + 1).max().unwrap_or(1),
            None => 1,
        }
    }
}

fn expect_len(field: Field, actual: usize, expected: Option<usize>) -> Result<(), GraphError> {
    match expected {
        Some(e) if e == actual => Ok(()),
        e => Err(GraphError::Length {
            field,
            expected: e.unwrap_or(usize::MAX),
            actual,
        }),
    }
}

fn take<T>(field: Field, buf: &mut [T], n: usize) -> Result<&mut [T], GraphError> {
    let available = buf.len();
    buf.get_mut(..n).ok_or(GraphError::Capacity {
        field,
        needed: n,
        available,
    })
}

fn fill_u16(dst: &mut [u16], src: &[u8]) {
    for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = u16::from_le_bytes([c[0], c[1]]);
    }
}

fn fill_f32(dst: &mut [f32], src: &[u8]) {
    for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

impl Request<'_> {
    /// Edges (sources are 2 bytes each).
    pub fn num_edges(&self) -> usize {
        self.sources.len() / 2
    }

    /// Checks every array length against the node and edge counts and the
    /// buffers' capacity, then converts the little-endian arrays into
    /// `bufs`. Values (indices, finiteness) are the runtime's to check.
    pub fn unpack<'b>(&self, bufs: &'b mut GraphBuffers<'_>) -> Result<Graph<'b>, GraphError> {
        let n = self.num_nodes as usize;
        let c = usize::from(self.channels);
        let values = n.checked_mul(c);
        let e = self.sources.len() / 2;
        expect_len(Field::Sources, self.sources.len(), Some(e * 2))?;
        expect_len(Field::Targets, self.targets.len(), Some(e * 2))?;
        if let Some(w) = self.edge_weight {
            expect_len(Field::EdgeWeight, w.len(), e.checked_mul(4))?;
        }
        if let Some(b) = self.batch {
            expect_len(Field::Batch, b.len(), n.checked_mul(2))?;
        }
        let GraphBuffers {
            features,
            sources,
            targets,
            edge_weight,
            batch,
        } = bufs;
        let features = match self.features {
            FeatureBytes::F32(x) => {
                expect_len(
                    Field::Features,
                    x.len(),
                    values.and_then(|v| v.checked_mul(4)),
                )?;
                let dst = take(Field::Features, features, values.unwrap_or(usize::MAX))?;
                fill_f32(dst, x);
                FeatureSlice::F32(dst)
            }
            FeatureBytes::I8(x) => {
                expect_len(Field::Features, x.len(), values)?;
                let all: &mut [i8] = bytemuck::cast_slice_mut(&mut features[..]);
                let dst = take(Field::Features, all, x.len())?;
                for (d, &s) in dst.iter_mut().zip(x) {
                    *d = s as i8;
                }
                FeatureSlice::I8(dst)
            }
        };
        let src = take(Field::Sources, sources, e)?;
        fill_u16(src, self.sources);
        let dst = take(Field::Targets, targets, e)?;
        fill_u16(dst, self.targets);
        let edge_weight = match self.edge_weight {
            Some(w) => {
                let d = take(Field::EdgeWeight, edge_weight, e)?;
                fill_f32(d, w);
                Some(&*d)
            }
            None => None,
        };
        let batch = match self.batch {
            Some(b) => {
                let d = take(Field::Batch, batch, n)?;
                fill_u16(d, b);
                Some(&*d)
            }
            None => None,
        };
        Ok(Graph {
            num_nodes: n,
            channels: c,
            features,
            sources: src,
            targets: dst,
            edge_weight,
            batch,
        })
    }
}

/// A request's arrays as owned little-endian bytes (host side): build one
/// with [`OwnedRequest::f32`] or [`OwnedRequest::i8`], send
/// `Message::Request(r.as_request())`.
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRequest {
    /// Request id.
    pub id: u32,
    /// Nodes.
    pub num_nodes: u32,
    /// Channels.
    pub channels: u16,
    /// Whether `features` holds f32 (else int8).
    pub f32_features: bool,
    /// Feature bytes.
    pub features: Vec<u8>,
    /// Source bytes.
    pub sources: Vec<u8>,
    /// Target bytes.
    pub targets: Vec<u8>,
    /// Edge weight bytes.
    pub edge_weight: Option<Vec<u8>>,
    /// Batch bytes.
    pub batch: Option<Vec<u8>>,
}

#[cfg(feature = "std")]
fn le_u16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(feature = "std")]
fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(feature = "std")]
impl OwnedRequest {
    /// A request with float features `x` (`num_nodes × channels`).
    #[allow(clippy::too_many_arguments)]
    pub fn f32(
        id: u32,
        num_nodes: u32,
        channels: u16,
        x: &[f32],
        sources: &[u16],
        targets: &[u16],
        edge_weight: Option<&[f32]>,
        batch: Option<&[u16]>,
    ) -> Self {
        OwnedRequest {
            id,
            num_nodes,
            channels,
            f32_features: true,
            features: le_f32(x),
            sources: le_u16(sources),
            targets: le_u16(targets),
            edge_weight: edge_weight.map(le_f32),
            batch: batch.map(le_u16),
        }
    }

    /// A request with quantized features `x` (`num_nodes × channels`).
    #[allow(clippy::too_many_arguments)]
    pub fn i8(
        id: u32,
        num_nodes: u32,
        channels: u16,
        x: &[i8],
        sources: &[u16],
        targets: &[u16],
        edge_weight: Option<&[f32]>,
        batch: Option<&[u16]>,
    ) -> Self {
        OwnedRequest {
            f32_features: false,
            features: x.iter().map(|&v| v as u8).collect(),
            ..Self::f32(
                id,
                num_nodes,
                channels,
                &[],
                sources,
                targets,
                edge_weight,
                batch,
            )
        }
    }

    /// The borrowed message body.
    pub fn as_request(&self) -> Request<'_> {
        Request {
            id: self.id,
            num_nodes: self.num_nodes,
            channels: self.channels,
            features: if self.f32_features {
                FeatureBytes::F32(&self.features)
            } else {
                FeatureBytes::I8(&self.features)
            },
            sources: &self.sources,
            targets: &self.targets,
            edge_weight: self.edge_weight.as_deref(),
            batch: self.batch.as_deref(),
        }
    }
}
