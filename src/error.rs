//! The one error type of the runtime.
//!
//! Every fallible function in the crate returns [`Error`]. Variants carry the
//! index of the offending op, tensor, edge or node where there is one, so a
//! user can find the culprit without a debugger.

use core::fmt;

/// Everything that can go wrong when loading a model, validating an input
/// graph or running inference. Nothing in this crate panics instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    // ---- model file -------------------------------------------------------
    /// The model is shorter than its header, or than the length it declares.
    Truncated,
    /// The first four bytes are not `TGNN`.
    BadMagic,
    /// The format version is not one this runtime reads.
    UnsupportedVersion {
        /// Version found in the file.
        found: u16,
    },
    /// The file length in the header differs from the slice given.
    LengthMismatch {
        /// Length declared by the header.
        declared: u32,
        /// Length of the slice given to `Model::from_bytes`.
        actual: u32,
    },
    /// The CRC-32 of the file does not match the header.
    ChecksumMismatch,
    /// A header section (metadata, data) lies outside the file or overlaps the header.
    BadSection,
    /// Reserved header flags are set.
    UnsupportedFlags,
    /// The postcard-encoded metadata could not be decoded.
    BadMetadata,
    /// The metadata declares more tensors or ops than this runtime supports.
    TooManyEntries,
    /// An op's tag is not one this runtime knows.
    UnknownOp {
        /// Index of the op in the model.
        op: u16,
        /// The op tag found.
        tag: u32,
    },
    /// A tensor descriptor is invalid (zero or too many channels, bad scale).
    InvalidTensor {
        /// Index of the tensor.
        tensor: u16,
    },
    /// An op is inconsistent: bad tensor reference, wrong shape or kind,
    /// weight section out of bounds or of the wrong size, bad parameter.
    InvalidOp {
        /// Index of the op.
        op: u16,
    },
    /// The model uses an op whose family is not compiled into this build
    /// (cargo features `op-linear`, `op-gcn`, `op-sage`, `op-gin`, `op-pool`,
    /// `op-elementwise`, `op-gat`; all on by default), or an op with int4
    /// weights in a build without the feature `weights-i4`.
    OpNotCompiled {
        /// Index of the op in the model.
        op: u16,
        /// The op tag: the op's position in the op table (`docs/format.md`).
        tag: u32,
    },
    /// The model has no output, or an output tensor is never produced.
    InvalidOutputs,

    // ---- input graph ------------------------------------------------------
    /// More nodes than the model's declared capacity (or than `u16` indices allow).
    TooManyNodes {
        /// Nodes in the input.
        nodes: u32,
        /// Declared maximum.
        max: u32,
    },
    /// More edges than the model's declared capacity.
    TooManyEdges {
        /// Edges in the input.
        edges: u32,
        /// Declared maximum.
        max: u32,
    },
    /// More graphs in the batch than the model's declared capacity.
    TooManyGraphs {
        /// Graphs in the input.
        graphs: u32,
        /// Declared maximum.
        max: u32,
    },
    /// The source and target lists (or edge weights) differ in length.
    EdgeListMismatch,
    /// An edge refers to a node index not below the node count.
    NodeIndexOutOfRange {
        /// Index of the edge.
        edge: u32,
        /// The offending node index.
        index: u32,
    },
    /// The feature slice is not `nodes × input channels` long.
    FeatureShape {
        /// Expected number of values.
        expected: u32,
        /// Number of values given.
        actual: u32,
    },
    /// Sparse features break their CSR invariants (row offsets not starting at 0,
    /// decreasing or not ending at the entry count; columns not increasing or
    /// not below the channel count).
    InvalidSparseFeatures {
        /// First node whose row is invalid.
        node: u32,
    },
    /// A feature is NaN or infinite.
    NonFiniteFeature {
        /// Node of the bad value.
        node: u32,
        /// Channel of the bad value.
        channel: u32,
    },
    /// An edge weight is NaN, infinite, negative or too large (see [`crate::graph`]).
    InvalidEdgeWeight {
        /// Index of the edge.
        edge: u32,
    },
    /// The model uses edge weights but none were given, or the batch vector has the wrong length.
    MissingInput,
    /// A batch vector entry is not below the number of graphs.
    BatchOutOfRange {
        /// Node with the bad entry.
        node: u32,
    },

    // ---- memory -----------------------------------------------------------
    /// The arena is smaller than the run needs.
    ArenaTooSmall {
        /// Bytes needed (including alignment slack for this arena's address).
        needed: u32,
        /// Bytes given.
        actual: u32,
    },
    /// An intermediate value does not fit its integer type (only on inputs far
    /// outside the calibrated range, e.g. absurd edge weights).
    Overflow {
        /// Index of the op.
        op: u16,
    },
    // ---- edgefeat ----
    /// The model reads edge features and the input has no `edge_attr`.
    MissingEdgeAttr,
    /// `edge_attr` does not hold `edges × D` values.
    EdgeAttrShape {
        /// Values expected (`edges × D`).
        expected: u32,
        /// Values given.
        actual: u32,
    },
    /// A float edge feature is NaN or infinite.
    NonFiniteEdgeAttr {
        /// Edge index (input order).
        edge: u32,
        /// Channel.
        channel: u32,
    },

    /// [`crate::Session::run_prepared`] was given a graph the session does not
    /// hold prepared (it ran or prepared another graph since, or the graph
    /// was prepared by another session).
    NotPrepared,
    /// [`crate::Session::update`] without a previous successful run of the
    /// graph, prepared by [`crate::Session::prepare_incremental`], as the
    /// session's last run.
    NotIncremental,
    /// A node in the `changed` list of [`crate::Session::update`] is not in
    /// the graph.
    ChangedNodeOutOfRange {
        /// Position in the list.
        position: u32,
        /// The node index given.
        index: u32,
    },

    // ---- carried state (recurrent cells; feature `op-recurrent`) ----------
    /// The model's state record is inconsistent: the state input is not a
    /// node tensor defined before the first op (or is the model input), or
    /// the next state is not an output with the state's channels, scale and
    /// zero point.
    InvalidState,
    /// The state buffer given to [`crate::Session::run_step`] is not
    /// [`crate::Model::state_bytes`]`(nodes)` values long.
    StateSize {
        /// Expected number of int8 values (`nodes × state channels`).
        expected: u32,
        /// Number given.
        actual: u32,
    },
    /// [`crate::Session::run_step`] on a model without a state.
    NotRecurrent,
    /// A run without a state ([`crate::Session::run`], `run_prepared`) of a
    /// model that carries one: use [`crate::Session::run_step`].
    StateRequired,

    // ---- node pairs (link prediction; helper `link`) ----------------------
    /// The model has a pair head (a pair tensor) but the input has no `pairs`.
    MissingPairs,
    /// The pair source and target lists differ in length.
    PairListMismatch,
    /// More pairs than the model's `max_pairs`.
    TooManyPairs {
        /// Pairs given.
        pairs: u32,
        /// The model's maximum.
        max: u32,
    },
    /// A pair names a node not below the node count.
    PairIndexOutOfRange {
        /// Index of the pair.
        pair: u32,
        /// The offending node index.
        index: u32,
    },

    // ---- hyperedges (HypergraphConv) ---------------------------------------
    /// The model has a `HypergraphConv` and the input has no `hyperedges`.
    MissingHyperedges,
    /// The node and hyperedge rows of `hyperedge_index` differ in length.
    HyperedgeListMismatch,
    /// More incidences (`hyperedge_index` columns) than the model's `max_edges`.
    TooManyIncidences {
        /// Incidences given.
        incidences: u32,
        /// The model's maximum (`max_edges`).
        max: u32,
    },
    /// An incidence names a node not below the node count.
    HyperedgeNodeOutOfRange {
        /// Index of the incidence (column of `hyperedge_index`).
        incidence: u32,
        /// The offending node index.
        index: u32,
    },
    /// `hyperedge_weight` has fewer entries than hyperedges (`max id + 1`).
    HyperedgeWeightShape {
        /// Entries needed (the number of hyperedges).
        expected: u32,
        /// Entries given.
        actual: u32,
    },
    /// A hyperedge weight is negative, NaN, infinite or too large for Q16
    /// (as edge weights, [`crate::graph::edge_weight_q16`]).
    InvalidHyperedgeWeight {
        /// The hyperedge.
        hyperedge: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated => f.write_str("model file is truncated"),
            Error::BadMagic => f.write_str("not a tinygnn model (bad magic)"),
            Error::UnsupportedVersion { found } => {
                write!(f, "unsupported model format version {found}")
            }
            Error::LengthMismatch { declared, actual } => write!(
                f,
                "model header declares {declared} bytes but {actual} were given"
            ),
            Error::ChecksumMismatch => f.write_str("model checksum mismatch (corrupted file)"),
            Error::BadSection => f.write_str("model section out of bounds"),
            Error::UnsupportedFlags => f.write_str("model uses unsupported header flags"),
            Error::BadMetadata => f.write_str("model metadata cannot be decoded"),
            Error::TooManyEntries => f.write_str("model has more tensors or ops than supported"),
            Error::UnknownOp { op, tag } => write!(f, "op {op}: unknown op tag {tag}"),
            Error::InvalidTensor { tensor } => write!(f, "tensor {tensor}: invalid descriptor"),
            Error::InvalidOp { op } => write!(f, "op {op}: invalid parameters or shapes"),
            Error::OpNotCompiled { op, tag } => write!(
                f,
                "op {op}: op tag {tag} is not compiled into this build (enable its op-* feature, and weights-i4 for int4 weights)"
            ),
            Error::InvalidOutputs => f.write_str("model outputs are missing or never produced"),
            Error::TooManyNodes { nodes, max } => {
                write!(f, "graph has {nodes} nodes, the model allows {max}")
            }
            Error::TooManyEdges { edges, max } => {
                write!(f, "graph has {edges} edges, the model allows {max}")
            }
            Error::TooManyGraphs { graphs, max } => {
                write!(f, "batch has {graphs} graphs, the model allows {max}")
            }
            Error::EdgeListMismatch => f.write_str("edge source/target/weight lengths differ"),
            Error::NodeIndexOutOfRange { edge, index } => {
                write!(f, "edge {edge}: node index {index} out of range")
            }
            Error::FeatureShape { expected, actual } => {
                write!(f, "expected {expected} feature values, got {actual}")
            }
            Error::NonFiniteFeature { node, channel } => {
                write!(
                    f,
                    "feature of node {node}, channel {channel} is NaN or infinite"
                )
            }
            Error::InvalidSparseFeatures { node } => {
                write!(f, "sparse features of node {node} are invalid")
            }
            Error::InvalidEdgeWeight { edge } => write!(f, "edge {edge}: invalid edge weight"),
            Error::MissingInput => f.write_str(
                "a required input (edge weights or batch) is missing or has the wrong length",
            ),
            Error::BatchOutOfRange { node } => write!(f, "node {node}: batch index out of range"),
            Error::ArenaTooSmall { needed, actual } => {
                write!(f, "arena too small: need {needed} bytes, got {actual}")
            }
            Error::Overflow { op } => write!(f, "op {op}: intermediate value overflow"),
            Error::MissingEdgeAttr => {
                f.write_str("the model reads edge features but the graph has no edge_attr")
            }
            Error::EdgeAttrShape { expected, actual } => {
                write!(f, "expected {expected} edge feature values, got {actual}")
            }
            Error::NonFiniteEdgeAttr { edge, channel } => write!(
                f,
                "edge feature of edge {edge}, channel {channel} is NaN or infinite"
            ),
            Error::NotPrepared => {
                f.write_str("the session does not hold this graph prepared (prepare it again)")
            }
            Error::NotIncremental => f.write_str(
                "update needs the graph prepared by prepare_incremental, run last and successfully",
            ),
            Error::ChangedNodeOutOfRange { position, index } => write!(
                f,
                "changed node {index} (position {position}) is not in the graph"
            ),
            Error::InvalidState => f.write_str("model state record is inconsistent"),
            Error::StateSize { expected, actual } => {
                write!(f, "expected {expected} state values, got {actual}")
            }
            Error::NotRecurrent => f.write_str("the model carries no state (use run)"),
            Error::StateRequired => {
                f.write_str("the model carries a state: run it step by step (run_step)")
            }
            Error::MissingPairs => {
                f.write_str("the model scores node pairs but the input has none")
            }
            Error::PairListMismatch => f.write_str("pair source/target lengths differ"),
            Error::TooManyPairs { pairs, max } => {
                write!(f, "input has {pairs} node pairs, the model allows {max}")
            }
            Error::PairIndexOutOfRange { pair, index } => {
                write!(f, "pair {pair}: node index {index} out of range")
            }
            Error::MissingHyperedges => f.write_str(
                "the model has a hypergraph convolution but the input has no hyperedge_index",
            ),
            Error::HyperedgeListMismatch => {
                f.write_str("hyperedge_index node/hyperedge rows differ in length")
            }
            Error::TooManyIncidences { incidences, max } => write!(
                f,
                "hyperedge_index has {incidences} incidences, the model allows {max}"
            ),
            Error::HyperedgeNodeOutOfRange { incidence, index } => write!(
                f,
                "hyperedge_index column {incidence}: node index {index} out of range"
            ),
            Error::HyperedgeWeightShape { expected, actual } => write!(
                f,
                "expected at least {expected} hyperedge weights (one per hyperedge), got {actual}"
            ),
            Error::InvalidHyperedgeWeight { hyperedge } => write!(
                f,
                "hyperedge {hyperedge} weight is negative, not finite or too large"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;
