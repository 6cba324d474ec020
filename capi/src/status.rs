//! Status codes: every [`rt::Error`] variant, plus the C API's own argument
//! errors, as stable integers.
//!
//! The numbers are part of the ABI: they never change meaning, and new codes
//! only ever get new numbers. Groups: 0 success, 1–19 the model file, 20–39
//! the input graph, 40–49 memory and arithmetic, 60–79 the C API itself
//! (pointers, handles, indices). `docs/c-api.md` has the table.

use rt::Error;

/// The result of every fallible function: `TGNN_OK` (0) or one of the `TGNN_ERR_*` codes.
#[allow(non_camel_case_types)]
pub type tgnn_status = i32;

/// Success.
pub const TGNN_OK: tgnn_status = 0;

// ---- model file (tgnn_model_init) -------------------------------------------
/// The model is shorter than its header, or than the length it declares.
pub const TGNN_ERR_TRUNCATED: tgnn_status = 1;
/// The first four bytes are not `TGNN`.
pub const TGNN_ERR_BAD_MAGIC: tgnn_status = 2;
/// The format version is not one this runtime reads (detail `a`: the version found).
pub const TGNN_ERR_UNSUPPORTED_VERSION: tgnn_status = 3;
/// The length in the header differs from the length given (`a`: declared, `b`: given).
pub const TGNN_ERR_LENGTH_MISMATCH: tgnn_status = 4;
/// The CRC-32 of the file does not match the header (corrupted model).
pub const TGNN_ERR_CHECKSUM_MISMATCH: tgnn_status = 5;
/// A header section lies outside the file or overlaps the header.
pub const TGNN_ERR_BAD_SECTION: tgnn_status = 6;
/// Reserved header flags are set.
pub const TGNN_ERR_UNSUPPORTED_FLAGS: tgnn_status = 7;
/// The metadata cannot be decoded.
pub const TGNN_ERR_BAD_METADATA: tgnn_status = 8;
/// More tensors or ops than this runtime supports.
pub const TGNN_ERR_TOO_MANY_ENTRIES: tgnn_status = 9;
/// An op tag this runtime does not know (`a`: op index, `b`: tag).
pub const TGNN_ERR_UNKNOWN_OP: tgnn_status = 10;
/// An invalid tensor descriptor (`a`: tensor index).
pub const TGNN_ERR_INVALID_TENSOR: tgnn_status = 11;
/// An inconsistent op: references, shapes, weight sections, parameters (`a`: op index).
pub const TGNN_ERR_INVALID_OP: tgnn_status = 12;
/// The model has no output, or an output is never produced.
pub const TGNN_ERR_INVALID_OUTPUTS: tgnn_status = 13;
/// The model uses an op whose family was left out of this build by its cargo
/// `op-*` feature (`a`: op index, `b`: op tag).
pub const TGNN_ERR_OP_NOT_COMPILED: tgnn_status = 14;

// ---- input graph (tgnn_session_run) -----------------------------------------
/// More nodes than the model's capacity (`a`: nodes, `b`: maximum).
pub const TGNN_ERR_TOO_MANY_NODES: tgnn_status = 20;
/// More edges than the model's capacity (`a`: edges, `b`: maximum).
pub const TGNN_ERR_TOO_MANY_EDGES: tgnn_status = 21;
/// More graphs in the batch than the model's capacity (`a`: graphs, `b`: maximum).
pub const TGNN_ERR_TOO_MANY_GRAPHS: tgnn_status = 22;
/// Source, target or edge-weight lists differ in length.
pub const TGNN_ERR_EDGE_LIST_MISMATCH: tgnn_status = 23;
/// An edge names a node not below the node count (`a`: edge, `b`: node index).
pub const TGNN_ERR_NODE_INDEX_OUT_OF_RANGE: tgnn_status = 24;
/// The features are not `nodes × input channels` values (`a`: expected, `b`: given;
/// for sparse features the row-pointer count).
pub const TGNN_ERR_FEATURE_SHAPE: tgnn_status = 25;
/// Sparse features break their CSR invariants (`a`: first bad node).
pub const TGNN_ERR_INVALID_SPARSE_FEATURES: tgnn_status = 26;
/// A float feature is NaN or infinite (`a`: node, `b`: channel).
pub const TGNN_ERR_NON_FINITE_FEATURE: tgnn_status = 27;
/// An edge weight is NaN, infinite, negative or above 65535 (`a`: edge).
pub const TGNN_ERR_INVALID_EDGE_WEIGHT: tgnn_status = 28;
/// The model needs edge weights and none were given, or the batch vector has the wrong length.
pub const TGNN_ERR_MISSING_INPUT: tgnn_status = 29;
/// A batch entry is not below the number of graphs (`a`: node).
pub const TGNN_ERR_BATCH_OUT_OF_RANGE: tgnn_status = 30;
/// The model reads edge features and none were given (`edge_attr` NULL).
pub const TGNN_ERR_MISSING_EDGE_ATTR: tgnn_status = 35;
/// The edge features are not `edges × D` values (`a`: expected, `b`: given).
pub const TGNN_ERR_EDGE_ATTR_SHAPE: tgnn_status = 36;
/// A float edge feature is NaN or infinite (`a`: edge, `b`: channel).
pub const TGNN_ERR_NON_FINITE_EDGE_ATTR: tgnn_status = 37;
/// The model scores node pairs but the input has none (`pair_sources` and
/// `pair_targets` NULL; see `tgnn_model_pairs`).
pub const TGNN_ERR_MISSING_PAIRS: tgnn_status = 31;
/// The pair source and target lists disagree: one of `pair_sources` and
/// `pair_targets` is NULL and the other not.
pub const TGNN_ERR_PAIR_LIST_MISMATCH: tgnn_status = 32;
/// More node pairs than the model's capacity (`a`: pairs, `b`: maximum).
pub const TGNN_ERR_TOO_MANY_PAIRS: tgnn_status = 33;
/// A pair names a node not below the node count (`a`: pair, `b`: node index).
pub const TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE: tgnn_status = 34;
/// `tgnn_session_run_prepared` without a prepared graph: none was prepared, or
/// the session ran (`tgnn_session_run`) or failed to prepare one since.
pub const TGNN_ERR_NOT_PREPARED: tgnn_status = 38;
/// `tgnn_session_update` without a graph prepared by
/// `tgnn_session_prepare_incremental` whose run was the session's last
/// (none, another run or prepare since, or a failed run).
pub const TGNN_ERR_NOT_INCREMENTAL: tgnn_status = 39;
/// A node of `tgnn_session_update`'s changed list is not in the graph (`a`:
/// position in the list, `b`: node index).
pub const TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE: tgnn_status = 42;

// ---- hyperedges (HypergraphConv; not yet passed by this API) ---------------
/// The model has a hypergraph convolution and the input has no hyperedges.
/// (This C API does not pass hyperedges yet: such a model fails with this code.)
pub const TGNN_ERR_MISSING_HYPEREDGES: tgnn_status = 50;
/// The node and hyperedge rows of `hyperedge_index` differ in length.
pub const TGNN_ERR_HYPEREDGE_LIST_MISMATCH: tgnn_status = 51;
/// More incidences than the model's `max_edges` (`a`: incidences, `b`: maximum).
pub const TGNN_ERR_TOO_MANY_INCIDENCES: tgnn_status = 52;
/// An incidence names a node not below the node count (`a`: incidence, `b`: node index).
pub const TGNN_ERR_HYPEREDGE_NODE_OUT_OF_RANGE: tgnn_status = 53;
/// Fewer hyperedge weights than hyperedges (`a`: expected, `b`: given).
pub const TGNN_ERR_HYPEREDGE_WEIGHT_SHAPE: tgnn_status = 54;
/// A hyperedge weight is negative, not finite or too large (`a`: hyperedge).
pub const TGNN_ERR_INVALID_HYPEREDGE_WEIGHT: tgnn_status = 55;
// ---- carried state (recurrent cells) ----------------------------------------
/// The model's state record is inconsistent (state input and next state).
pub const TGNN_ERR_INVALID_STATE: tgnn_status = 45;
/// The state buffer has the wrong length (`a`: values expected, `b`: given).
pub const TGNN_ERR_STATE_SIZE: tgnn_status = 46;
/// A step with a state on a model that carries none.
pub const TGNN_ERR_NOT_RECURRENT: tgnn_status = 47;
/// A run without a state of a model that carries one (run it step by step).
pub const TGNN_ERR_STATE_REQUIRED: tgnn_status = 48;

// ---- memory and arithmetic --------------------------------------------------
/// The arena is too small (`a`: bytes needed including alignment slack, `b`: bytes given).
pub const TGNN_ERR_ARENA_TOO_SMALL: tgnn_status = 40;
/// An intermediate value does not fit its integer type (`a`: op index).
pub const TGNN_ERR_OVERFLOW: tgnn_status = 41;

// ---- C API ------------------------------------------------------------------
/// A required pointer is NULL (a NULL data pointer is allowed only with length 0).
pub const TGNN_ERR_NULL_POINTER: tgnn_status = 60;
/// A pointer is not aligned for its type (handles: 8 bytes; arrays: their element).
pub const TGNN_ERR_MISALIGNED: tgnn_status = 61;
/// An argument is invalid: an unknown enum value or a length whose byte size overflows.
pub const TGNN_ERR_INVALID_ARGUMENT: tgnn_status = 62;
/// A handle was not initialised by its `_init` function (or its model failed to load:
/// `tgnn_model_last_error` has the reason).
pub const TGNN_ERR_UNINITIALIZED: tgnn_status = 63;
/// No output: the last `tgnn_session_run` failed or there was none since
/// `tgnn_session_init`, or the output index is not below the model's number of outputs.
pub const TGNN_ERR_NO_OUTPUT: tgnn_status = 64;
/// A row or channel index is out of range, or the row is empty.
pub const TGNN_ERR_OUT_OF_RANGE: tgnn_status = 65;
/// A runtime error this version of the C API has no code for (never returned by a
/// library whose tests pass: they check that every runtime error has its own code).
pub const TGNN_ERR_UNKNOWN: tgnn_status = 99;

/// A status code with up to two numbers saying where the error is (see each
/// code for what `a` and `b` hold; 0 when unused).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct tgnn_error_info {
    /// The status code.
    pub code: tgnn_status,
    /// First detail (op, tensor, edge or node index, or a count).
    pub a: u32,
    /// Second detail (a node index, a maximum, a tag).
    pub b: u32,
}

impl tgnn_error_info {
    /// A C API error without details.
    pub const fn api(code: tgnn_status) -> tgnn_error_info {
        tgnn_error_info { code, a: 0, b: 0 }
    }
}

/// The code and details of a runtime error.
pub fn error_info(e: Error) -> tgnn_error_info {
    let (code, a, b) = match e {
        Error::Truncated => (TGNN_ERR_TRUNCATED, 0, 0),
        Error::BadMagic => (TGNN_ERR_BAD_MAGIC, 0, 0),
        Error::UnsupportedVersion { found } => (TGNN_ERR_UNSUPPORTED_VERSION, u32::from(found), 0),
        Error::LengthMismatch { declared, actual } => (TGNN_ERR_LENGTH_MISMATCH, declared, actual),
        Error::ChecksumMismatch => (TGNN_ERR_CHECKSUM_MISMATCH, 0, 0),
        Error::BadSection => (TGNN_ERR_BAD_SECTION, 0, 0),
        Error::UnsupportedFlags => (TGNN_ERR_UNSUPPORTED_FLAGS, 0, 0),
        Error::BadMetadata => (TGNN_ERR_BAD_METADATA, 0, 0),
        Error::TooManyEntries => (TGNN_ERR_TOO_MANY_ENTRIES, 0, 0),
        Error::UnknownOp { op, tag } => (TGNN_ERR_UNKNOWN_OP, u32::from(op), tag),
        Error::InvalidTensor { tensor } => (TGNN_ERR_INVALID_TENSOR, u32::from(tensor), 0),
        Error::InvalidOp { op } => (TGNN_ERR_INVALID_OP, u32::from(op), 0),
        Error::InvalidOutputs => (TGNN_ERR_INVALID_OUTPUTS, 0, 0),
        Error::OpNotCompiled { op, tag } => (TGNN_ERR_OP_NOT_COMPILED, u32::from(op), tag),
        Error::TooManyNodes { nodes, max } => (TGNN_ERR_TOO_MANY_NODES, nodes, max),
        Error::TooManyEdges { edges, max } => (TGNN_ERR_TOO_MANY_EDGES, edges, max),
        Error::TooManyGraphs { graphs, max } => (TGNN_ERR_TOO_MANY_GRAPHS, graphs, max),
        Error::EdgeListMismatch => (TGNN_ERR_EDGE_LIST_MISMATCH, 0, 0),
        Error::NodeIndexOutOfRange { edge, index } => {
            (TGNN_ERR_NODE_INDEX_OUT_OF_RANGE, edge, index)
        }
        Error::FeatureShape { expected, actual } => (TGNN_ERR_FEATURE_SHAPE, expected, actual),
        Error::InvalidSparseFeatures { node } => (TGNN_ERR_INVALID_SPARSE_FEATURES, node, 0),
        Error::NonFiniteFeature { node, channel } => (TGNN_ERR_NON_FINITE_FEATURE, node, channel),
        Error::InvalidEdgeWeight { edge } => (TGNN_ERR_INVALID_EDGE_WEIGHT, edge, 0),
        Error::MissingInput => (TGNN_ERR_MISSING_INPUT, 0, 0),
        Error::BatchOutOfRange { node } => (TGNN_ERR_BATCH_OUT_OF_RANGE, node, 0),
        Error::ArenaTooSmall { needed, actual } => (TGNN_ERR_ARENA_TOO_SMALL, needed, actual),
        Error::Overflow { op } => (TGNN_ERR_OVERFLOW, u32::from(op), 0),
        Error::MissingEdgeAttr => (TGNN_ERR_MISSING_EDGE_ATTR, 0, 0),
        Error::EdgeAttrShape { expected, actual } => (TGNN_ERR_EDGE_ATTR_SHAPE, expected, actual),
        Error::NonFiniteEdgeAttr { edge, channel } => {
            (TGNN_ERR_NON_FINITE_EDGE_ATTR, edge, channel)
        }
        Error::MissingPairs => (TGNN_ERR_MISSING_PAIRS, 0, 0),
        Error::PairListMismatch => (TGNN_ERR_PAIR_LIST_MISMATCH, 0, 0),
        Error::TooManyPairs { pairs, max } => (TGNN_ERR_TOO_MANY_PAIRS, pairs, max),
        Error::PairIndexOutOfRange { pair, index } => {
            (TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE, pair, index)
        }
        Error::NotPrepared => (TGNN_ERR_NOT_PREPARED, 0, 0),
        Error::NotIncremental => (TGNN_ERR_NOT_INCREMENTAL, 0, 0),
        Error::ChangedNodeOutOfRange { position, index } => {
            (TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE, position, index)
        }
        Error::MissingHyperedges => (TGNN_ERR_MISSING_HYPEREDGES, 0, 0),
        Error::HyperedgeListMismatch => (TGNN_ERR_HYPEREDGE_LIST_MISMATCH, 0, 0),
        Error::TooManyIncidences { incidences, max } => {
            (TGNN_ERR_TOO_MANY_INCIDENCES, incidences, max)
        }
        Error::HyperedgeNodeOutOfRange { incidence, index } => {
            (TGNN_ERR_HYPEREDGE_NODE_OUT_OF_RANGE, incidence, index)
        }
        Error::HyperedgeWeightShape { expected, actual } => {
            (TGNN_ERR_HYPEREDGE_WEIGHT_SHAPE, expected, actual)
        }
        Error::InvalidHyperedgeWeight { hyperedge } => {
            (TGNN_ERR_INVALID_HYPEREDGE_WEIGHT, hyperedge, 0)
        }
        Error::InvalidState => (TGNN_ERR_INVALID_STATE, 0, 0),
        Error::StateSize { expected, actual } => (TGNN_ERR_STATE_SIZE, expected, actual),
        Error::NotRecurrent => (TGNN_ERR_NOT_RECURRENT, 0, 0),
        Error::StateRequired => (TGNN_ERR_STATE_REQUIRED, 0, 0),
        // `rt::Error` is #[non_exhaustive]; the tests check that no variant lands here.
        _ => (TGNN_ERR_UNKNOWN, 0, 0),
    };
    tgnn_error_info { code, a, b }
}

/// The name of a status code (`"TGNN_ERR_TRUNCATED"`), or `None` for an unknown code.
pub fn status_name(code: tgnn_status) -> Option<&'static core::ffi::CStr> {
    Some(match code {
        TGNN_OK => c"TGNN_OK",
        TGNN_ERR_TRUNCATED => c"TGNN_ERR_TRUNCATED",
        TGNN_ERR_BAD_MAGIC => c"TGNN_ERR_BAD_MAGIC",
        TGNN_ERR_UNSUPPORTED_VERSION => c"TGNN_ERR_UNSUPPORTED_VERSION",
        TGNN_ERR_LENGTH_MISMATCH => c"TGNN_ERR_LENGTH_MISMATCH",
        TGNN_ERR_CHECKSUM_MISMATCH => c"TGNN_ERR_CHECKSUM_MISMATCH",
        TGNN_ERR_BAD_SECTION => c"TGNN_ERR_BAD_SECTION",
        TGNN_ERR_UNSUPPORTED_FLAGS => c"TGNN_ERR_UNSUPPORTED_FLAGS",
        TGNN_ERR_BAD_METADATA => c"TGNN_ERR_BAD_METADATA",
        TGNN_ERR_TOO_MANY_ENTRIES => c"TGNN_ERR_TOO_MANY_ENTRIES",
        TGNN_ERR_UNKNOWN_OP => c"TGNN_ERR_UNKNOWN_OP",
        TGNN_ERR_INVALID_TENSOR => c"TGNN_ERR_INVALID_TENSOR",
        TGNN_ERR_INVALID_OP => c"TGNN_ERR_INVALID_OP",
        TGNN_ERR_INVALID_OUTPUTS => c"TGNN_ERR_INVALID_OUTPUTS",
        TGNN_ERR_OP_NOT_COMPILED => c"TGNN_ERR_OP_NOT_COMPILED",
        TGNN_ERR_TOO_MANY_NODES => c"TGNN_ERR_TOO_MANY_NODES",
        TGNN_ERR_TOO_MANY_EDGES => c"TGNN_ERR_TOO_MANY_EDGES",
        TGNN_ERR_TOO_MANY_GRAPHS => c"TGNN_ERR_TOO_MANY_GRAPHS",
        TGNN_ERR_EDGE_LIST_MISMATCH => c"TGNN_ERR_EDGE_LIST_MISMATCH",
        TGNN_ERR_NODE_INDEX_OUT_OF_RANGE => c"TGNN_ERR_NODE_INDEX_OUT_OF_RANGE",
        TGNN_ERR_FEATURE_SHAPE => c"TGNN_ERR_FEATURE_SHAPE",
        TGNN_ERR_INVALID_SPARSE_FEATURES => c"TGNN_ERR_INVALID_SPARSE_FEATURES",
        TGNN_ERR_NON_FINITE_FEATURE => c"TGNN_ERR_NON_FINITE_FEATURE",
        TGNN_ERR_INVALID_EDGE_WEIGHT => c"TGNN_ERR_INVALID_EDGE_WEIGHT",
        TGNN_ERR_MISSING_INPUT => c"TGNN_ERR_MISSING_INPUT",
        TGNN_ERR_BATCH_OUT_OF_RANGE => c"TGNN_ERR_BATCH_OUT_OF_RANGE",
        TGNN_ERR_MISSING_EDGE_ATTR => c"TGNN_ERR_MISSING_EDGE_ATTR",
        TGNN_ERR_EDGE_ATTR_SHAPE => c"TGNN_ERR_EDGE_ATTR_SHAPE",
        TGNN_ERR_NON_FINITE_EDGE_ATTR => c"TGNN_ERR_NON_FINITE_EDGE_ATTR",
        TGNN_ERR_ARENA_TOO_SMALL => c"TGNN_ERR_ARENA_TOO_SMALL",
        TGNN_ERR_OVERFLOW => c"TGNN_ERR_OVERFLOW",
        TGNN_ERR_MISSING_PAIRS => c"TGNN_ERR_MISSING_PAIRS",
        TGNN_ERR_PAIR_LIST_MISMATCH => c"TGNN_ERR_PAIR_LIST_MISMATCH",
        TGNN_ERR_TOO_MANY_PAIRS => c"TGNN_ERR_TOO_MANY_PAIRS",
        TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE => c"TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE",
        TGNN_ERR_NOT_PREPARED => c"TGNN_ERR_NOT_PREPARED",
        TGNN_ERR_NOT_INCREMENTAL => c"TGNN_ERR_NOT_INCREMENTAL",
        TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE => c"TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE",
        TGNN_ERR_MISSING_HYPEREDGES => c"TGNN_ERR_MISSING_HYPEREDGES",
        TGNN_ERR_HYPEREDGE_LIST_MISMATCH => c"TGNN_ERR_HYPEREDGE_LIST_MISMATCH",
        TGNN_ERR_TOO_MANY_INCIDENCES => c"TGNN_ERR_TOO_MANY_INCIDENCES",
        TGNN_ERR_HYPEREDGE_NODE_OUT_OF_RANGE => c"TGNN_ERR_HYPEREDGE_NODE_OUT_OF_RANGE",
        TGNN_ERR_HYPEREDGE_WEIGHT_SHAPE => c"TGNN_ERR_HYPEREDGE_WEIGHT_SHAPE",
        TGNN_ERR_INVALID_HYPEREDGE_WEIGHT => c"TGNN_ERR_INVALID_HYPEREDGE_WEIGHT",
        TGNN_ERR_INVALID_STATE => c"TGNN_ERR_INVALID_STATE",
        TGNN_ERR_STATE_SIZE => c"TGNN_ERR_STATE_SIZE",
        TGNN_ERR_NOT_RECURRENT => c"TGNN_ERR_NOT_RECURRENT",
        TGNN_ERR_STATE_REQUIRED => c"TGNN_ERR_STATE_REQUIRED",
        TGNN_ERR_NULL_POINTER => c"TGNN_ERR_NULL_POINTER",
        TGNN_ERR_MISALIGNED => c"TGNN_ERR_MISALIGNED",
        TGNN_ERR_INVALID_ARGUMENT => c"TGNN_ERR_INVALID_ARGUMENT",
        TGNN_ERR_UNINITIALIZED => c"TGNN_ERR_UNINITIALIZED",
        TGNN_ERR_NO_OUTPUT => c"TGNN_ERR_NO_OUTPUT",
        TGNN_ERR_OUT_OF_RANGE => c"TGNN_ERR_OUT_OF_RANGE",
        TGNN_ERR_UNKNOWN => c"TGNN_ERR_UNKNOWN",
        _ => return None,
    })
}
