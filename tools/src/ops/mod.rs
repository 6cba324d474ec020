//! The host tool's op families, one module each, mirroring the runtime's
//! `src/ops/`. A family module holds everything the host tool knows about its
//! ops, behind [`HostOp`]: how the spec names and parses them, their float
//! reference (PyG's eval semantics), how fusion treats them, how they are
//! quantized and lowered to the device op, and how `inspect` describes the
//! device op ([`describe::Describe`]).
//!
//! [`host_ops!`] below is the one table: one line per spec-level op
//! (`Variant(module::Type)`) generates [`OpKind`] and its dispatch; one line
//! per device op generates [`describe`] (for `inspect`). Adding an op is a new
//! family module and one line in each table.

pub mod cheb;
pub mod common;
pub mod describe;
pub mod edge_conv;
pub mod elementwise;
pub mod gat;
pub mod gcn;
pub mod gin;
pub mod gine;
pub mod host_op;
pub mod hypergraph;
pub mod linear;
pub mod link;
pub mod lut;
pub mod norm;
pub mod pe;
pub mod pool;
pub mod propagate;
pub mod recurrent;
pub mod sage;
pub mod softmax;
pub mod transformer;

use anyhow::{bail, Result};
use tinygnn::format::{Op, TensorDesc};

use crate::lower::Lower;
use crate::st::Graphs;
use common::{BatchNorm, Mat, Parse, Rows, Tensor};
pub use host_op::HostOp;

macro_rules! host_ops {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$ty:ident),)*) => {
        /// One spec op with its weights resolved (before and after fusion).
        #[derive(Debug, Clone, PartialEq)]
        pub enum OpKind {
            $($(#[$doc])* $variant($module::$ty),)*
        }

        /// Every spec type name the host tool reads.
        pub fn supported() -> Vec<&'static str> {
            let mut v = Vec::new();
            $(v.extend_from_slice(<$module::$ty as HostOp>::TYPES);)*
            v
        }

        /// The arity of spec type `ty` (`Err` for an unknown type).
        pub fn arity(ty: &str) -> Result<Option<usize>> {
            $(if <$module::$ty as HostOp>::TYPES.contains(&ty) {
                return Ok(<$module::$ty as HostOp>::arity(ty));
            })*
            bail!("unknown op type '{ty}' (supported: {})", supported().join(", "))
        }

        /// Parses one spec op by its type.
        pub fn parse(cx: &Parse<'_>) -> Result<(OpKind, Rows, usize)> {
            $(if <$module::$ty as HostOp>::TYPES.contains(&cx.ty) {
                let (op, rows, channels) = <$module::$ty as HostOp>::parse(cx)?;
                return Ok((OpKind::$variant(op), rows, channels));
            })*
            bail!("{}: unknown op type", cx.who())
        }

        impl OpKind {
            /// See [`HostOp::type_name`].
            pub fn type_name(&self) -> &'static str {
                match self { $(OpKind::$variant(p) => p.type_name(),)* }
            }
            /// See [`HostOp::device_name`].
            pub fn device_name(&self) -> &'static str {
                match self { $(OpKind::$variant(p) => p.device_name(),)* }
            }
            /// See [`HostOp::reference`].
            pub fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
                match self { $(OpKind::$variant(p) => p.reference(ins, g),)* }
            }
            /// See [`HostOp::extra_values`].
            pub fn extra_values(&self, name: &str, ins: &[&Tensor], g: &Graphs) -> Vec<(String, Tensor)> {
                match self { $(OpKind::$variant(p) => p.extra_values(name, ins, g),)* }
            }
            /// See [`HostOp::for_device`].
            pub fn for_device(self) -> OpKind {
                match self { $(OpKind::$variant(p) => OpKind::$variant(p.for_device()),)* }
            }
            /// See [`HostOp::fold_bn`].
            pub fn fold_bn(&mut self, bn: &BatchNorm) -> bool {
                match self { $(OpKind::$variant(p) => p.fold_bn(bn),)* }
            }
            /// See [`HostOp::fuses_act`].
            pub fn fuses_act(&self) -> bool {
                match self { $(OpKind::$variant(p) => p.fuses_act(),)* }
            }
            /// See [`HostOp::has_weights`].
            pub fn has_weights(&self) -> bool {
                match self { $(OpKind::$variant(p) => p.has_weights(),)* }
            }
            /// See [`HostOp::scaled_mats`].
            pub fn scaled_mats(&self) -> Option<Vec<&Mat>> {
                match self { $(OpKind::$variant(p) => p.scaled_mats(),)* }
            }
            /// See [`HostOp::feedback_input`].
            pub fn feedback_input(&self, x: &Tensor, g: &Graphs) -> Option<Tensor> {
                match self { $(OpKind::$variant(p) => p.feedback_input(x, g),)* }
            }
            /// See [`HostOp::output_is_projection`].
            pub fn output_is_projection(&self) -> bool {
                match self { $(OpKind::$variant(p) => p.output_is_projection(),)* }
            }
            /// See [`HostOp::fixed_output`].
            pub fn fixed_output(&self, input: &TensorDesc) -> Option<(f32, i8)> {
                match self { $(OpKind::$variant(p) => p.fixed_output(input),)* }
            }
            /// See [`HostOp::take_channels`].
            pub fn take_channels(&self, keep: &[usize]) -> Option<OpKind> {
                match self { $(OpKind::$variant(p) => p.take_channels(keep).map(OpKind::$variant),)* }
            }
            /// See [`HostOp::permute_input`].
            pub fn permute_input(&self, perm: &[usize]) -> Option<OpKind> {
                match self { $(OpKind::$variant(p) => p.permute_input(perm).map(OpKind::$variant),)* }
            }
            /// See [`HostOp::lower`].
            pub fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
                match self { $(OpKind::$variant(p) => p.lower(cx),)* }
            }
        }
    };
}

host_ops! {
    /// `x Wᵀ + b`.
    Linear(linear::Linear),
    /// Eval-mode BatchNorm (folded into the op before it).
    BatchNorm(elementwise::Norm),
    /// ReLU / LeakyReLU.
    Act(elementwise::Activation),
    /// Dropout (eval) or identity (dropped by fusion).
    Identity(elementwise::Identity),
    /// Element-wise sum of two inputs.
    Add(elementwise::Add),
    /// Channel concatenation.
    Concat(elementwise::Concat),
    /// GCNConv.
    Gcn(gcn::Gcn),
    /// SAGEConv.
    Sage(sage::Sage),
    /// GIN aggregation.
    Gin(gin::Gin),
    /// GINEConv aggregation.
    Gine(gine::Gine),
    /// GATConv / GATv2Conv.
    Gat(gat::Gat),
    /// APPNP, SGConv, GCN2Conv, TAGConv.
    Propagate(propagate::Propagate),
    /// EdgeConv / DynamicEdgeConv.
    EdgeConv(edge_conv::EdgeConv),
    /// ELU, sigmoid, tanh (a lookup table on the device).
    Lut(lut::Lut),
    /// Global pooling.
    Pool(pool::Pool),
    /// Pair decoders and pair features (link prediction).
    Pair(link::Pair),
    /// Softmax / log-softmax over the channels.
    Softmax(softmax::Softmax),
    /// Layer normalization over the channels.
    LayerNorm(norm::LayerNorm),
    /// TransformerConv, global attention.
    Transformer(transformer::Transformer),
    /// Attention pooling.
    AttentionPool(pool::AttentionPool),
    /// Random-walk positional encoding.
    RandomWalkPe(pe::RandomWalkPe),
    /// HypergraphConv.
    Hypergraph(hypergraph::Hypergraph),
    /// Element-wise product (recurrent cells' gates).
    Mul(recurrent::Mul),
    /// ChebConv (`normalization='sym'`, λmax = 2).
    Cheb(cheb::Cheb),
}

macro_rules! device_ops {
    ($($variant:ident,)*) => {
        /// Describes device op `op` (output `out`), counting its bytes in `cx`.
        pub fn describe(op: &Op, cx: &mut describe::Inspect<'_, '_>) -> describe::Described {
            use describe::Describe;
            cx.out = op.output();
            match op {
                $(Op::$variant(p) => p.describe(cx),)*
            }
        }
    };
}

device_ops! {
    Linear,
    GcnConv,
    SageConv,
    GinAggregate,
    GlobalPool,
    Add,
    Concat,
    Act,
    GatConv,
    Propagate,
    Lut,
    Softmax,
    GineConv,
    EdgeConv,
    InnerProduct,
    PairFeatures,
    LayerNorm,
    TransformerConv,
    AttentionPool,
    RandomWalkPe,
    HypergraphConv,
    Mul,
    ChebConv,
}
