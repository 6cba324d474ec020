//! # tinygnn
//!
//! A `no_std`, heap-free runtime for int8-quantized graph neural networks on
//! microcontrollers. A model exported from PyTorch Geometric and converted by
//! the `tinygnn` host tool is read in place from flash ([`Model::from_bytes`]),
//! and run on an input graph inside a caller-provided arena ([`Session`]),
//! with integer-only arithmetic that gives the same bytes on every target.
//!
//! Module map:
//! * [`format`](mod@format): the binary format (reader; writer with feature `std`).
//! * [`Model`]: the validated zero-copy model view.
//! * [`graph`]: the input graph and its validation.
//! * [`session`]: arena planning and execution of the op list.
//! * [`ops`]: one module per op family, with its PyG semantics.
//! * [`kernels`]: integer kernels (reference and optimized), tested bit-exact.
//! * [`quant`]: fixed-point arithmetic shared by everything.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod format;
pub mod graph;
pub mod kernels;
mod model;
pub mod ops;
pub mod quant;
pub mod session;

pub use error::{Error, Result};
pub use graph::{EdgeAttr, Features, GraphInput, NodePairs};
pub use kernels::requant::{channel_record, channel_record_of};
pub use model::Model;
pub use session::{Output, Session};

/// Maximum tensors in a model.
pub const MAX_TENSORS: usize = 64;
/// Maximum ops in a model.
pub const MAX_OPS: usize = 64;
/// Maximum channels of one tensor.
pub const MAX_CHANNELS: usize = 4096;
/// Maximum edges a model may declare (edge offsets are `u32`).
pub const MAX_EDGES: u32 = 1 << 24;
