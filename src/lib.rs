//! # tinygnn
//!
//! A `no_std`, heap-free, panic-free runtime for int8-quantized graph neural
//! networks on microcontrollers. A model trained in PyTorch Geometric is
//! exported by the Python package and converted by the `tinygnn` host tool
//! (`tinygnn convert`, the `tinygnn-cli` crate of the repository) into a
//! `.tgnn` file; this crate reads that file in place, from flash or RAM
//! ([`Model::from_bytes`]), and runs it on input graphs inside an arena the
//! caller provides ([`Session`]), with integer-only arithmetic that gives the
//! same output bytes on every target.
//!
//! # Example
//!
//! ```
//! # #[cfg(all(feature = "std", feature = "unstable-internals"))] {
//! # // A two-class GCN over two features (what `tinygnn convert` would write).
//! # use tinygnn::format::writer::{ChannelRecord, ModelWriter};
//! # use tinygnn::format::{Activation, Op};
//! # use tinygnn::ops::GcnConv;
//! # use tinygnn::{TensorDesc, TensorKind};
//! # let mut w = ModelWriter::new();
//! # let t = |channels| TensorDesc { kind: TensorKind::Node, channels, scale: 0.1, zero_point: 0 };
//! # let (x, y) = (w.add_tensor(t(2)), w.add_tensor(t(2)));
//! # let weights = w.add_i8(&[2, -1, -1, 2]);
//! # let record = ChannelRecord { bias: 0, mult: 1 << 30, shift: 1 };
//! # let params = w.add_channel_params(&[record, record]);
//! # w.add_op(Op::GcnConv(GcnConv {
//! #     input: x, output: y, weights, params, act: Activation::None,
//! #     improved: false, add_self_loops: true, normalize: true, edge_weight: false,
//! # }));
//! # let model_bytes: &[u8] = &w.finish(x, &[y], 16, 32, 1).unwrap();
//! use tinygnn::{Features, GraphInput, Model, Session};
//!
//! // In a firmware: `static MODEL: &[u8] = tinygnn::include_model!("model.tgnn");`
//! let model = Model::from_bytes(model_bytes)?; // validates everything, once
//!
//! // An arena for any graph up to the capacity the model was converted with
//! // (+7: a stack array is not known to start 8-aligned).
//! let (nodes, edges, graphs) = model.capacity();
//! let need = model.arena_bytes(nodes as usize, edges as usize, graphs as usize);
//! let mut arena = [0u8; 1024];
//! assert!(need + 7 <= arena.len());
//! let mut session = Session::new(&model, &mut arena);
//!
//! // A path 0 → 1 → 2, two float features per node (quantized by the run).
//! let x = [0.9, 0.1, 0.8, 0.2, 0.1, 0.9];
//! let input = GraphInput::new(3, Features::F32(&x), &[0, 1], &[1, 2]);
//! let out = session.run(&input)?;
//! let classes: Vec<usize> = (0..out.rows).filter_map(|node| out.argmax(node)).collect();
//! assert_eq!(classes, [0, 0, 1]);
//! # }
//! # Ok::<(), tinygnn::Error>(())
//! ```
//!
//! # What is here
//!
//! * [`Model`]: the validated, zero-copy view of a `.tgnn` file: its
//!   capacity, its arena need ([`Model::arena_bytes`]), its tensors
//!   ([`TensorDesc`]: the input's quantization, for features you quantize
//!   yourself).
//! * [`GraphInput`] with [`Features`], [`EdgeAttr`], [`NodePairs`]: one input
//!   graph or batch, borrowed; [`graph`] lists the checks every run makes.
//! * [`Session`] and [`Output`]: running a model in a caller-provided arena;
//!   [`session`] describes the arena layout and the memory plan.
//! * [`Error`]: the one error type; nothing in this crate panics instead.
//! * [`include_model!`]: a `.tgnn` file compiled in, aligned to [`MODEL_ALIGN`].
//!
//! The model format is described byte by byte in `docs/format.md` of the
//! repository, the guarantees (no panic, no heap, bounded stack, validation
//! of hostile input) in `docs/guarantees.md`.
//!
//! # Cargo features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `all-ops` | on | every op family below and `weights-i4` |
//! | `op-linear`, `op-gcn`, `op-sage`, `op-gin`, `op-gine`, `op-gat`, `op-lut`, `op-propagate`, `op-edgeconv`, `op-link`, `op-pool`, `op-elementwise`, `op-softmax`, `op-norm`, `op-transformer`, `op-pe`, `op-hypergraph`, `op-recurrent`, `op-cheb` | through `all-ops` | one op family each; a model using a family left out is rejected by [`Model::from_bytes`] with [`Error::OpNotCompiled`] |
//! | `weights-i4` | through `all-ops` | int4 weight matrices and their kernels |
//! | `kernels-small` | off | the smallest kernels: same output bytes, less flash, slower |
//! | `reference-kernels` | off | the plain reference kernels (debugging; same output bytes) |
//! | `defmt` | off | `defmt::Format` for the error and descriptor types |
//! | `std` | off | `std` for the dependencies; with `unstable-internals`, the model writer |
//! | `unstable-internals` | off | the internals below |
//!
//! A firmware that runs only some model families builds with
//! `default-features = false, features = ["op-gcn", "op-linear"]` (what
//! `tinygnn convert` and `tinygnn inspect` list for a model) to leave the
//! other families' code out.
//!
//! # Internals
//!
//! The format reader and writer (`format`), the ops' parameter structs and
//! integer semantics (`ops`), the kernels (`kernels`) and the fixed-point
//! helpers (`quant`) are private unless the feature `unstable-internals` is
//! on. They exist for the repository's host tool (which writes models), its
//! tests, fuzz targets and benchmarks, are hidden from these docs, and are
//! **not covered by semver**: any release may change them. Their own docs:
//! `cargo doc -p tinygnn --no-deps --document-private-items`.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.84 (`rust-version`), checked in CI with the locked dependencies.
//! postcard 1.2 needs Rust 1.88: on Rust 1.84 to 1.87, resolve with the
//! Rust-version-aware resolver (`resolver = "3"`) or
//! `cargo update -p postcard --precise 1.1.3`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
// docs.rs (`--cfg docsrs`, nightly): feature-gated items name their feature,
// except `unstable-internals`, which only makes private modules public (the
// root re-exports from them are there without it).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(feature = "unstable-internals"))))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod graph;
#[cfg_attr(not(feature = "incremental"), allow(dead_code))]
mod incremental;
mod model;
pub mod session;

// The internals: public (and hidden from the docs) only with the feature
// `unstable-internals`, for the host tool, the tests and the benchmarks.
// Without it, what only those call (the reference kernels, the writer's
// helpers, the host-side constants) is unused here: as before these modules
// were private, such items are not reported as dead code.
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod format;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod format;
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod kernels;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod kernels;
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod ops;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod ops;
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod quant;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod quant;

pub use error::{Error, Result};
pub use format::{TensorDesc, TensorKind};
pub use graph::{EdgeAttr, Features, GraphInput, Hyperedges, NodePairs};
pub use model::Model;
pub use session::{Output, PreparedGraph, Session};

/// The `.tgnn` format version this runtime reads (and the host tool writes).
pub const FORMAT_VERSION: u16 = format::VERSION;

/// The alignment for model bytes in memory: at this alignment every weight
/// section of the file is word-aligned (the writer aligns sections to it).
/// [`Model::from_bytes`] accepts any alignment and reads the same values
/// either way; [`include_model!`] and `tinygnn convert --emit` align to this.
pub const MODEL_ALIGN: usize = format::SECTION_ALIGN;

/// Includes a `.tgnn` file as a `&'static [u8]` aligned to [`MODEL_ALIGN`]:
/// `include_bytes!` with the alignment the format's weight sections are laid
/// out for. The path is relative to the file that invokes the macro, as for
/// `include_bytes!`.
///
/// ```ignore
/// static MODEL: &[u8] = tinygnn::include_model!("../models/karate-gcn.tgnn");
///
/// let model = tinygnn::Model::from_bytes(MODEL)?;
/// ```
#[macro_export]
macro_rules! include_model {
    ($path:expr $(,)?) => {{
        #[repr(C, align(4))]
        struct Aligned<T: ?Sized>(T);
        const _: () = ::core::assert!(
            ::core::mem::align_of::<Aligned<[u8; 0]>>() == $crate::MODEL_ALIGN,
            "include_model!'s alignment is not tinygnn::MODEL_ALIGN"
        );
        static ALIGNED: &Aligned<[u8]> = &Aligned(*::core::include_bytes!($path));
        &ALIGNED.0
    }};
}

/// Maximum tensors in a model.
pub const MAX_TENSORS: usize = 64;
/// Maximum ops in a model.
pub const MAX_OPS: usize = 64;
/// Most states a recurrent model carries ([`Model::states`]): each next
/// state is a model output, and a model has at most four outputs.
pub const MAX_STATES: usize = 4;
/// Maximum channels of one tensor.
pub const MAX_CHANNELS: usize = 4096;
/// Maximum edges a model may declare (edge offsets are `u32`).
pub const MAX_EDGES: u32 = 1 << 24;
