//! A streaming device's replies, checked before the host sizes anything
//! from them (`tinygnn stream`, docs/stream.md).
//!
//! The device is not trusted: a reply is a frame of bytes that may claim any
//! row or channel count. [`parse`] turns one frame into an owned [`Answer`]
//! only after every field agrees with what the host asked: the request id,
//! the channel count the device announced, a row count that is the
//! request's node count or its graph count, exactly `rows × channels` data
//! bytes and a positive finite scale. [`frame_limit`] bounds the bytes the
//! host accepts for a reply by what it asked for, so a reply never makes
//! the host allocate more than the request's output. Nothing here panics on
//! any input (the `stream_reply` fuzz target drives [`parse_stream`]).

use std::fmt;

use tinygnn_proto::{decode, max_frame_len, FrameError, FrameReader, Message, OwnedRequest};

/// Largest reply frame the host accepts at all (bytes on the wire).
pub const MAX_REPLY_FRAME: usize = 64 << 20;

/// Largest request frame a device may announce ([`DeviceInfo::max_frame`]);
/// the `--fault-test` builds a frame of that size.
pub const MAX_DEVICE_FRAME: usize = 64 << 20;

/// Frame bytes an `Info` or `Error` reply may take (names and details are short).
const SMALL_REPLY: usize = 4096;

/// What the device says about itself, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// The model's name (its file name).
    pub model: String,
    /// The CRC-32 of the model file's header.
    pub model_crc: u32,
    /// Input feature channels (≥ 1).
    pub input_channels: usize,
    /// Output channels of the model's output (≥ 1).
    pub output_channels: usize,
    /// Nodes per request (1..=65535: node indices are u16).
    pub max_nodes: usize,
    /// Edges per request (at most the runtime's `MAX_EDGES`).
    pub max_edges: usize,
    /// Graphs per request (1..=max_nodes).
    pub max_graphs: usize,
    /// Largest request frame, delimiter included (at most [`MAX_DEVICE_FRAME`]).
    pub max_frame: usize,
    /// Unit of the cost counts.
    pub cost_unit: String,
}

/// The model's output for one request, checked against the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The request's id.
    pub id: u32,
    /// Rows: the request's nodes, or its graphs for pooled models.
    pub rows: usize,
    /// Channels: the device's announced output channels.
    pub channels: usize,
    /// Output scale (positive, finite).
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i8,
    /// Cost of the inference in the device's unit.
    pub cost: u64,
    /// Exactly `rows × channels` int8 values (as bytes), row-major.
    pub data: Vec<u8>,
}

/// One reply, owned and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The device's info (to `Hello`).
    Info(DeviceInfo),
    /// The output of a request.
    Output(Output),
    /// The device rejected a frame or request.
    Error {
        /// The request's id, when the device could read it.
        id: Option<u32>,
        /// The device's error code.
        code: tinygnn_proto::ErrorCode,
        /// The device's detail text.
        detail: String,
    },
}

/// Whether the rows of a model's output are nodes or graphs; fixed by the
/// first answer of a run, since one model always gives the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One row per node.
    Node,
    /// One row per graph (pooled models).
    Graph,
}

/// A request as the host asked it, for checking its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// The request's id.
    pub id: u32,
    /// Nodes sent.
    pub nodes: usize,
    /// Graphs sent (`max(batch) + 1`, 1 without a batch vector).
    pub graphs: usize,
    /// Output channels the device announced.
    pub channels: usize,
    /// Rows per node or per graph, when an earlier answer told.
    pub level: Option<Level>,
}

impl Asked {
    /// What `req` asks of a device whose model has `channels` output channels.
    pub fn of(req: &OwnedRequest, channels: usize) -> Asked {
        let graphs = req.batch.as_ref().map_or(1, |b| {
            b.chunks_exact(2)
                .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) + 1)
                .max()
                .unwrap_or(1)
        });
        Asked {
            id: req.id,
            nodes: req.num_nodes as usize,
            graphs,
            channels,
            level: None,
        }
    }

    /// The largest row count an answer may have.
    pub fn max_rows(&self) -> usize {
        match self.level {
            Some(Level::Node) => self.nodes,
            Some(Level::Graph) => self.graphs,
            None => self.nodes.max(self.graphs),
        }
    }

    /// The level an answer of `rows` rows shows (nodes first when both agree).
    pub fn level_of(&self, rows: usize) -> Level {
        match self.level {
            Some(l) => l,
            None if rows == self.nodes => Level::Node,
            None => Level::Graph,
        }
    }

    fn rows_ok(&self, rows: usize) -> bool {
        match self.level {
            Some(Level::Node) => rows == self.nodes,
            Some(Level::Graph) => rows == self.graphs,
            None => rows == self.nodes || rows == self.graphs,
        }
    }
}

/// What the host waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The device's info (after `Hello`).
    Info,
    /// The output of a request (or an error reply).
    Output(Asked),
}

/// Why a reply is refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReplyError {
    /// Not a valid frame: bad COBS, CRC, body, or longer than [`frame_limit`].
    Frame(FrameError),
    /// A message only a host sends (`Hello`, `Request`).
    HostMessage(&'static str),
    /// Info where an output was awaited, or an output where info was.
    Unexpected {
        /// What came.
        got: &'static str,
        /// What was awaited.
        want: &'static str,
    },
    /// A protocol version this host does not speak.
    Version(u8),
    /// An info field out of range.
    Info {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The range it must be in.
        range: String,
    },
    /// An answer to another request.
    WrongId {
        /// The answer's id.
        got: u32,
        /// The request's id.
        want: u32,
    },
    /// A channel count other than the device announced (0 included).
    Channels {
        /// Request id.
        id: u32,
        /// The answer's channels.
        got: usize,
        /// The device's announced output channels.
        want: usize,
    },
    /// A row count that is neither the request's nodes nor its graphs.
    Rows {
        /// Request id.
        id: u32,
        /// The answer's rows.
        got: usize,
        /// What was asked.
        asked: Asked,
    },
    /// Data bytes other than `rows × channels`.
    DataLength {
        /// Request id.
        id: u32,
        /// Bytes received.
        got: usize,
        /// Rows.
        rows: usize,
        /// Channels.
        channels: usize,
    },
    /// A scale that is not positive and finite.
    Scale {
        /// Request id.
        id: u32,
        /// The scale.
        scale: f32,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Frame(e) => write!(f, "bad frame from the device: {e}"),
            ReplyError::HostMessage(m) => write!(f, "the device sent a host message ({m})"),
            ReplyError::Unexpected { got, want } => {
                write!(
                    f,
                    "the device answered with {got} where {want} was expected"
                )
            }
            ReplyError::Version(v) => write!(
                f,
                "the device speaks protocol version {v}, this tool version {}",
                tinygnn_proto::VERSION
            ),
            ReplyError::Info {
                field,
                value,
                range,
            } => write!(
                f,
                "the device's info is invalid: {field} = {value}, expected {range}"
            ),
            ReplyError::WrongId { got, want } => {
                write!(
                    f,
                    "answer to request {got} while waiting for request {want}"
                )
            }
            ReplyError::Channels { id, got, want } => write!(
                f,
                "request {id}: the device answered with {got} output channels, its model has {want}"
            ),
            ReplyError::Rows { id, got, asked } => {
                let want = match asked.level {
                    Some(Level::Node) => format!("{} (one per node, as before)", asked.nodes),
                    Some(Level::Graph) => format!("{} (one per graph, as before)", asked.graphs),
                    None => format!(
                        "{} (one per node) or {} (one per graph)",
                        asked.nodes, asked.graphs
                    ),
                };
                write!(
                    f,
                    "request {id}: the device answered with {got} rows for {} nodes in {} graphs; expected {want}",
                    asked.nodes, asked.graphs
                )
            }
            ReplyError::DataLength {
                id,
                got,
                rows,
                channels,
            } => write!(
                f,
                "request {id}: {got} output bytes for {rows} rows × {channels} channels"
            ),
            ReplyError::Scale { id, scale } => write!(
                f,
                "request {id}: output scale {scale} is not a positive finite number"
            ),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Largest reply frame (bytes on the wire) the host accepts while waiting
/// for `expect`: an info or error reply is small, an output is at most the
/// request's rows × the announced channels plus its header.
pub fn frame_limit(expect: &Expect) -> usize {
    match expect {
        Expect::Info => SMALL_REPLY,
        Expect::Output(a) => {
            let data = a.max_rows().saturating_mul(a.channels).min(MAX_REPLY_FRAME);
            max_frame_len(data + 64).clamp(SMALL_REPLY, MAX_REPLY_FRAME)
        }
    }
}

fn in_range(field: &'static str, value: u64, lo: u64, hi: u64) -> Result<usize, ReplyError> {
    if (lo..=hi).contains(&value) {
        Ok(value as usize)
    } else {
        Err(ReplyError::Info {
            field,
            value,
            range: format!("{lo}..={hi}"),
        })
    }
}

fn info(i: &tinygnn_proto::Info<'_>) -> Result<DeviceInfo, ReplyError> {
    if i.version != tinygnn_proto::VERSION {
        return Err(ReplyError::Version(i.version));
    }
    let max_nodes = in_range("max_nodes", i.max_nodes.into(), 1, u16::MAX.into())?;
    Ok(DeviceInfo {
        model: i.model.to_string(),
        model_crc: i.model_crc,
        input_channels: in_range(
            "input_channels",
            i.input_channels.into(),
            1,
            u16::MAX.into(),
        )?,
        output_channels: in_range(
            "output_channels",
            i.output_channels.into(),
            1,
            u16::MAX.into(),
        )?,
        max_nodes,
        max_edges: in_range(
            "max_edges",
            i.max_edges.into(),
            0,
            tinygnn::MAX_EDGES.into(),
        )?,
        max_graphs: in_range("max_graphs", i.max_graphs.into(), 1, max_nodes as u64)?,
        max_frame: in_range("max_frame", i.max_frame.into(), 1, MAX_DEVICE_FRAME as u64)?,
        cost_unit: i.cost_unit.to_string(),
    })
}

fn output(r: &tinygnn_proto::Response<'_>, a: &Asked) -> Result<Output, ReplyError> {
    let id = r.id;
    if id != a.id {
        return Err(ReplyError::WrongId {
            got: id,
            want: a.id,
        });
    }
    let channels = usize::from(r.channels);
    if channels != a.channels || channels == 0 {
        return Err(ReplyError::Channels {
            id,
            got: channels,
            want: a.channels,
        });
    }
    let rows = r.rows as usize;
    if !a.rows_ok(rows) {
        return Err(ReplyError::Rows {
            id,
            got: rows,
            asked: *a,
        });
    }
    if rows.checked_mul(channels) != Some(r.data.len()) {
        return Err(ReplyError::DataLength {
            id,
            got: r.data.len(),
            rows,
            channels,
        });
    }
    if !(r.scale.is_finite() && r.scale > 0.0) {
        return Err(ReplyError::Scale { id, scale: r.scale });
    }
    Ok(Output {
        id,
        rows,
        channels,
        scale: r.scale,
        zero_point: r.zero_point,
        cost: r.cost,
        data: r.data.to_vec(),
    })
}

/// Decodes and checks one reply frame (the COBS bytes between two
/// delimiters, as [`FrameReader`] gives them; decoded in place) against
/// what the host waits for. An error reply is an [`Answer::Error`] whatever
/// the host waits for.
pub fn parse(frame: &mut [u8], expect: &Expect) -> Result<Answer, ReplyError> {
    let msg = decode(frame).map_err(ReplyError::Frame)?;
    match (msg, expect) {
        (Message::Error(e), _) => Ok(Answer::Error {
            id: e.id,
            code: e.code,
            detail: e.detail.to_string(),
        }),
        (Message::Info(i), Expect::Info) => Ok(Answer::Info(info(&i)?)),
        (Message::Response(r), Expect::Output(a)) => Ok(Answer::Output(output(&r, a)?)),
        (Message::Info(_), Expect::Output(_)) => Err(ReplyError::Unexpected {
            got: "its info",
            want: "an output",
        }),
        (Message::Response(_), Expect::Info) => Err(ReplyError::Unexpected {
            got: "an output",
            want: "its info",
        }),
        (Message::Hello, _) => Err(ReplyError::HostMessage("Hello")),
        (Message::Request(_), _) => Err(ReplyError::HostMessage("Request")),
    }
}

/// The first reply in `bytes` as the host receives it: frames cut at the
/// delimiters with a buffer of [`frame_limit`] bytes, then [`parse`].
/// `None` when `bytes` hold no whole frame.
///
/// The buffer is `min(frame_limit − 1, bytes.len())` long: no frame in
/// `bytes` is longer than `bytes`, so a frame is oversized for it exactly
/// when it is for a buffer of the limit, without zeroing up to 64 MiB.
pub fn parse_stream(bytes: &[u8], expect: &Expect) -> Option<Result<Answer, ReplyError>> {
    let mut buf = vec![0u8; (frame_limit(expect) - 1).min(bytes.len())];
    let mut reader = FrameReader::new(&mut buf);
    for &b in bytes {
        if let Some(frame) = reader.push(b) {
            return Some(match frame {
                Ok(f) => parse(f, expect),
                Err(e) => Err(ReplyError::Frame(e)),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinygnn_proto::{encode_vec, ErrorCode, ErrorReply, Info, Response};

    fn asked() -> Asked {
        Asked {
            id: 3,
            nodes: 34,
            graphs: 1,
            channels: 4,
            level: None,
        }
    }

    fn response(rows: u32, channels: u16, data: &[u8]) -> Vec<u8> {
        encode_vec(&Message::Response(Response {
            id: 3,
            rows,
            channels,
            scale: 0.5,
            zero_point: 1,
            cost: 9,
            data,
        }))
    }

    fn reply(frame: &[u8], expect: &Expect) -> Result<Answer, ReplyError> {
        parse_stream(frame, expect).expect("a whole frame")
    }

    #[test]
    fn a_correct_output_is_accepted() {
        let data = vec![7u8; 34 * 4];
        let a = reply(&response(34, 4, &data), &Expect::Output(asked())).unwrap();
        let Answer::Output(o) = a else {
            panic!("{a:?}")
        };
        assert_eq!((o.rows, o.channels, &o.data), (34, 4, &data));
        assert_eq!(asked().level_of(34), Level::Node);
        // One row per graph is right too, then only that.
        let a = reply(&response(1, 4, &[1, 2, 3, 4]), &Expect::Output(asked()));
        assert!(matches!(a, Ok(Answer::Output(_))), "{a:?}");
        assert_eq!(asked().level_of(1), Level::Graph);
        let pinned = Asked {
            level: Some(Level::Graph),
            ..asked()
        };
        let e = reply(&response(34, 4, &data), &Expect::Output(pinned)).unwrap_err();
        assert!(matches!(e, ReplyError::Rows { got: 34, .. }), "{e}");
        assert!(e
            .to_string()
            .contains("expected 1 (one per graph, as before)"));
    }

    #[test]
    fn hostile_outputs_are_refused() {
        let x = Expect::Output(asked());
        // No channels (was: an index out of bounds in the report).
        let e = reply(&response(34, 0, &[]), &x).unwrap_err();
        assert_eq!(
            e,
            ReplyError::Channels {
                id: 3,
                got: 0,
                want: 4
            }
        );
        // 2^32 - 1 rows with no data (was: a 32 GiB allocation).
        let e = reply(&response(u32::MAX, 0, &[]), &x).unwrap_err();
        assert!(matches!(e, ReplyError::Channels { got: 0, .. }), "{e}");
        let e = reply(&response(u32::MAX, 4, &[]), &x).unwrap_err();
        assert!(
            matches!(e, ReplyError::Rows { got, .. } if got == u32::MAX as usize),
            "{e}"
        );
        // Fewer rows than asked (was: accepted).
        let e = reply(&response(33, 4, &[0; 33 * 4]), &x).unwrap_err();
        assert!(
            e.to_string().contains(
                "request 3: the device answered with 33 rows for 34 nodes in 1 graphs; expected 34 (one per node) or 1 (one per graph)"
            ),
            "{e}"
        );
        // Data that does not match rows × channels.
        let e = reply(&response(34, 4, &[0; 10]), &x).unwrap_err();
        assert_eq!(
            e.to_string(),
            "request 3: 10 output bytes for 34 rows × 4 channels"
        );
        // Another request's id, a NaN scale.
        let other = encode_vec(&Message::Response(Response {
            id: 4,
            rows: 34,
            channels: 4,
            scale: 1.0,
            zero_point: 0,
            cost: 0,
            data: &[0; 136],
        }));
        assert_eq!(
            reply(&other, &x).unwrap_err(),
            ReplyError::WrongId { got: 4, want: 3 }
        );
        let nan = encode_vec(&Message::Response(Response {
            id: 3,
            rows: 34,
            channels: 4,
            scale: f32::NAN,
            zero_point: 0,
            cost: 0,
            data: &[0; 136],
        }));
        assert!(matches!(reply(&nan, &x), Err(ReplyError::Scale { .. })));
    }

    #[test]
    fn the_stream_buffer_is_as_long_as_needed_only() {
        // A frame of exactly the limit (minus the delimiter) passes, one byte more is
        // oversized, whether the stream holds more bytes after it or not.
        let limit = frame_limit(&Expect::Info) - 1;
        for tail in [0usize, 10] {
            let mut fits = vec![0x01u8; limit];
            fits.push(0);
            fits.extend(vec![0x01u8; tail]);
            let e = parse_stream(&fits, &Expect::Info).unwrap().unwrap_err();
            assert!(
                !matches!(e, ReplyError::Frame(FrameError::Oversized { .. })),
                "{e}"
            );
            let mut over = vec![0x01u8; limit + 1];
            over.push(0);
            over.extend(vec![0x01u8; tail]);
            let e = parse_stream(&over, &Expect::Info).unwrap().unwrap_err();
            assert!(
                matches!(e, ReplyError::Frame(FrameError::Oversized { bytes }) if bytes == limit + 1),
                "{e}"
            );
        }
    }

    #[test]
    fn replies_larger_than_asked_are_cut_off() {
        // 1 MiB of data for a 34 × 4 request: refused as oversized before it is stored.
        let big = response(34, 4, &vec![1u8; 1 << 20]);
        let e = reply(&big, &Expect::Output(asked())).unwrap_err();
        assert!(
            matches!(e, ReplyError::Frame(FrameError::Oversized { .. })),
            "{e}"
        );
        assert_eq!(frame_limit(&Expect::Info), SMALL_REPLY);
        let huge = Asked {
            nodes: 65535,
            channels: 65535,
            ..asked()
        };
        assert_eq!(frame_limit(&Expect::Output(huge)), MAX_REPLY_FRAME);
    }

    fn info_frame(edit: impl FnOnce(&mut Info<'static>)) -> Vec<u8> {
        let mut i = Info {
            version: tinygnn_proto::VERSION,
            model: "m.tgnn",
            model_crc: 1,
            input_channels: 34,
            output_channels: 4,
            max_nodes: 34,
            max_edges: 156,
            max_graphs: 1,
            max_frame: 8193,
            cost_unit: "none",
        };
        edit(&mut i);
        encode_vec(&Message::Info(i))
    }

    #[test]
    fn device_info_is_checked() {
        let ok = reply(&info_frame(|_| {}), &Expect::Info).unwrap();
        assert!(matches!(ok, Answer::Info(DeviceInfo { max_nodes: 34, .. })));
        let bad = |edit: fn(&mut Info<'static>), needle: &str| {
            let e = reply(&info_frame(edit), &Expect::Info).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        };
        bad(
            |i| i.output_channels = 0,
            "output_channels = 0, expected 1..=65535",
        );
        bad(|i| i.input_channels = 0, "input_channels = 0");
        bad(|i| i.max_nodes = 70000, "max_nodes = 70000");
        bad(|i| i.max_graphs = 35, "max_graphs = 35, expected 1..=34");
        bad(|i| i.max_frame = u32::MAX, "max_frame = 4294967295");
        bad(|i| i.max_edges = u32::MAX, "max_edges");
        bad(|i| i.version = 9, "protocol version 9");
    }

    #[test]
    fn wrong_kinds_of_message() {
        let x = Expect::Output(asked());
        let e = reply(&info_frame(|_| {}), &x).unwrap_err();
        assert!(matches!(e, ReplyError::Unexpected { .. }), "{e}");
        let e = reply(&response(34, 4, &[0; 136]), &Expect::Info).unwrap_err();
        assert!(matches!(e, ReplyError::Unexpected { .. }), "{e}");
        let e = reply(&encode_vec(&Message::Hello), &x).unwrap_err();
        assert_eq!(e, ReplyError::HostMessage("Hello"));
        // An error reply is an answer whatever was awaited.
        let err = encode_vec(&Message::Error(ErrorReply {
            id: Some(3),
            code: ErrorCode::Capacity,
            detail: "too big",
        }));
        assert!(matches!(reply(&err, &x), Ok(Answer::Error { .. })));
        assert!(matches!(
            reply(&err, &Expect::Info),
            Ok(Answer::Error { .. })
        ));
        // Garbage: a frame error, never a panic.
        let e = reply(&[0x05, 0x01, 0x00], &x).unwrap_err();
        assert!(matches!(e, ReplyError::Frame(_)), "{e}");
        assert!(parse_stream(&[1, 2, 3], &x).is_none());
    }

    #[test]
    fn asked_counts_graphs_of_the_batch() {
        let req = OwnedRequest::f32(5, 4, 1, &[0.0; 4], &[], &[], None, Some(&[0, 0, 1, 2]));
        let a = Asked::of(&req, 2);
        assert_eq!((a.id, a.nodes, a.graphs, a.channels), (5, 4, 3, 2));
        let req = OwnedRequest::f32(6, 4, 1, &[0.0; 4], &[], &[], None, None);
        assert_eq!(Asked::of(&req, 2).graphs, 1);
    }
}
