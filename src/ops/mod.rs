//! The ops: one module per op family. Each holds the op's parameter struct
//! (what the model file stores, with the exact integer semantics as its doc
//! comment and the PyG layer it reproduces at the top of the module), its
//! checks, its scratch size and its `run`, which calls the kernels.
//!
//! The table below (`op_table!`) is the one place that lists the ops: it
//! generates the [`Op`] enum (the wire format's op tags are the positions in
//! the table) and the dispatch of the checks, scratch sizes and runs, with
//! one `cfg` per op, so that a family left out of a build leaves no code.
//! A new op is a module with a parameter struct implementing [`OpDef`]
//! ([`common`] has what every op sees) and one line in the table.

pub mod cheb;
pub mod common;
pub mod edge_conv;
pub mod elementwise;
pub mod gat;
pub mod gcn;
pub mod gin;
pub mod gine;
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

pub use common::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, Take, TensorDesc};

/// The cargo feature that compiles the int4 weight kernels in: a model with
/// an op whose [`Op::has_i4_weights`] needs it besides the op's own
/// [`Op::feature`].
pub const WEIGHTS_I4_FEATURE: &str = "weights-i4";

/// The cargo feature that compiles the int2 weight kernels in (as
/// [`WEIGHTS_I4_FEATURE`] for [`Op::has_i2_weights`]).
pub const WEIGHTS_I2_FEATURE: &str = "weights-i2";
/// The cargo feature a model with int4 activation tensors needs
/// (`crate::Model::is_i4`).
pub const ACT_I4_FEATURE: &str = "act-i4";

macro_rules! op_table {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$params:ident) = $feature:literal,)*) => {
        $(pub use $module::$params;)*

        /// One operation of the model. Ops run in file order; each writes
        /// exactly one tensor that no earlier op wrote (single assignment)
        /// and reads only tensors written before it (or the model input).
        ///
        /// The doc comment of each parameter struct is the op's exact integer
        /// semantics. Weight matrices are int8 or int4 ([`WeightBits`](crate::format::WeightBits), per
        /// section), row-major `[out_ch, in_ch]` (one row per output
        /// channel), symmetric (zero point 0) with a per-output-channel or
        /// one shared scale; the scales only enter through
        /// [`format::ChannelParams`]. `W[c,k]` is the (sign-extended) weight
        /// value either way.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        // A plain one-byte tag, never a niche in some variant's field: every
        // dispatch `match` below is then a byte load and a jump, whatever
        // fields a new op brings (scripts/size-check.sh measures the code).
        #[repr(u8)]
        pub enum Op {
            $($(#[$doc])* $variant($params),)*
        }

        /// Number of op variants; tags at or above this are
        /// [`crate::Error::UnknownOp`].
        pub const OP_TAGS: u32 = [$(stringify!($variant)),*].len() as u32;

        impl Op {
            /// A short lowercase name, for tools and logs.
            pub fn name(&self) -> &'static str {
                match self { $(Op::$variant(p) => p.name(),)* }
            }
            /// The cargo feature of this crate that compiles the op's family
            /// in (`op-gcn`, …): a firmware running a model needs the
            /// features of all its ops, and [`WEIGHTS_I4_FEATURE`] when
            /// [`Op::has_i4_weights`].
            pub fn feature(&self) -> &'static str {
                match self { $(Op::$variant(_) => $feature,)* }
            }
            /// The tensor this op writes.
            pub fn output(&self) -> u8 {
                match self { $(Op::$variant(p) => p.output(),)* }
            }
            /// Calls `f` for every tensor this op reads.
            pub fn for_each_input(&self, mut f: impl FnMut(u8)) {
                match self { $(Op::$variant(p) => p.for_each_input(&mut f),)* }
            }
            /// Whether the op reads the graph's edge weights.
            pub fn uses_edge_weight(&self) -> bool {
                match self { $(Op::$variant(p) => p.uses_edge_weight(),)* }
            }
            /// Whether any weight matrix of this op is int4: a build without
            /// the cargo feature `weights-i4` rejects such an op
            /// ([`crate::Error::OpNotCompiled`]).
            pub fn has_i4_weights(&self) -> bool {
                match self { $(Op::$variant(p) => p.has_i4_weights(),)* }
            }
            /// Whether any weight matrix of this op is int2 (always false
            /// without the cargo feature `weights-i2`, which then rejects
            /// such an op as [`crate::Error::InvalidOp`]: see
            /// [`crate::format::WEIGHTS_I2_FLAG`]).
            pub fn has_i2_weights(&self) -> bool {
                match self { $(Op::$variant(p) => p.has_i2_weights(),)* }
            }
        }

        /// Whether `op`'s family is compiled into this build (the cargo
        /// features `op-*`, all on by default through `all-ops`).
        /// [`crate::Model::from_bytes`] rejects a model with an op that is
        /// not as [`crate::Error::OpNotCompiled`].
        pub const fn compiled(op: &Op) -> bool {
            match op { $(Op::$variant(_) => cfg!(feature = $feature),)* }
        }

        /// [`Op::for_each_input`] over the compiled families only (the others
        /// never get this far: the model is rejected first).
        pub(crate) fn inputs(op: &Op, f: &mut dyn FnMut(u8)) {
            let _ = &f;
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.for_each_input(f),)*
                _ => {}
            }
        }

        /// Whether `op` (of a compiled family) has int4 weights without the
        /// feature `weights-i4` or int2 weights without `weights-i2`: one
        /// dispatch for both (a minimal build pays for one `match`).
        pub(crate) fn needs_weight_feature(op: &Op) -> bool {
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => {
                    (!cfg!(feature = "weights-i4") && p.has_i4_weights())
                        || (!cfg!(feature = "weights-i2") && p.has_i2_weights())
                })*
                _ => false,
            }
        }

        /// Whether `op` can read the model input as sparse rows ([`Src::Sparse`]).
        pub fn takes_sparse_input(op: &Op) -> bool {
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.takes_sparse_input(),)*
                _ => false,
            }
        }

        /// Whether `op` reads and writes int4 activation tensors
        /// ([`OpDef::takes_i4`]; feature `act-i4`).
        pub fn takes_i4(op: &Op) -> bool {
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.takes_i4(),)*
                _ => false,
            }
        }

        /// How far an output row of `op` reads its node inputs ([`OpDef::hops`]).
        pub fn hops(op: &Op) -> Option<u8> {
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.hops(),)*
                _ => None,
            }
        }

        /// The op's own checks ([`OpDef::check`]); ops not compiled in fail.
        pub(crate) fn check(op: &Op, c: &Check<'_>) -> Option<()> {
            let _ = c;
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.check(c),)*
                _ => None,
            }
        }

        /// Scratch bytes `op` takes for a graph of `nodes` nodes and `edges`
        /// edges in `graphs` graphs (`tensors` is the model's tensor table);
        /// exactly what its `run` takes. Ops not compiled in take nothing.
        pub fn scratch_bytes(op: &Op, tensors: &[TensorDesc], nodes: usize, edges: usize, graphs: usize, wide: bool) -> usize {
            let s = Shapes { tensors, nodes, edges, graphs, wide };
            let _ = &s;
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.scratch_bytes(&s),)*
                _ => 0,
            }
        }

        /// Runs one op (ops not compiled in were rejected by
        /// [`crate::Model::from_bytes`]). Not inlined into the session's op
        /// loop: the ops' frames stay out of the loop's (the static stack
        /// bound of `scripts/panic-check.sh`).
        #[inline(never)]
        pub(crate) fn run<'v, T: Tensors<'v>>(
            op: &Op,
            env: &Env<'_, T>,
            out: Out<'_>,
            scratch: Scratch<'_>,
        ) -> Result<()> {
            let _ = (&out, &scratch);
            #[allow(unreachable_patterns)]
            match op {
                $(#[cfg(feature = $feature)] Op::$variant(p) => p.run(env, out, scratch),)*
                _ => Err(Error::InvalidOp { op: env.ctx.op }),
            }
        }
    };
}

op_table! {
    /// `nn.Linear` on node, graph or pair rows ([`linear::Linear`]).
    Linear(linear::Linear) = "op-linear",
    /// GCNConv ([`gcn::GcnConv`]).
    GcnConv(gcn::GcnConv) = "op-gcn",
    /// SAGEConv ([`sage::SageConv`]).
    SageConv(sage::SageConv) = "op-sage",
    /// The aggregation of GINConv ([`gin::GinAggregate`]).
    GinAggregate(gin::GinAggregate) = "op-gin",
    /// Global pooling ([`pool::GlobalPool`]).
    GlobalPool(pool::GlobalPool) = "op-pool",
    /// Element-wise sum ([`elementwise::Add`]).
    Add(elementwise::Add) = "op-elementwise",
    /// Channel concatenation ([`elementwise::Concat`]).
    Concat(elementwise::Concat) = "op-elementwise",
    /// Standalone activation ([`elementwise::Act`]).
    Act(elementwise::Act) = "op-elementwise",
    /// GATConv / GATv2Conv ([`gat::GatConv`]).
    GatConv(gat::GatConv) = "op-gat",
    /// GINEConv ([`gine::GineConv`]).
    GineConv(gine::GineConv) = "op-gine",
    /// int8 lookup table ([`lut::Lut`]).
    Lut(lut::Lut) = "op-lut",
    /// APPNP, SGConv, GCN2Conv, TAGConv ([`propagate::Propagate`]).
    Propagate(propagate::Propagate) = "op-propagate",
    /// EdgeConv / DynamicEdgeConv ([`edge_conv::EdgeConv`]).
    EdgeConv(edge_conv::EdgeConv) = "op-edgeconv",
    /// Inner-product pair decoder ([`link::InnerProduct`]).
    InnerProduct(link::InnerProduct) = "op-link",
    /// Pair features for an MLP pair decoder ([`link::PairFeatures`]).
    PairFeatures(link::PairFeatures) = "op-link",
    /// Softmax / log-softmax over channels ([`softmax::Softmax`]).
    Softmax(softmax::Softmax) = "op-softmax",
    /// Layer normalization over channels ([`norm::LayerNorm`]).
    LayerNorm(norm::LayerNorm) = "op-norm",
    /// TransformerConv ([`transformer::TransformerConv`]).
    TransformerConv(transformer::TransformerConv) = "op-transformer",
    /// Attention pooling ([`pool::AttentionPool`]).
    AttentionPool(pool::AttentionPool) = "op-pool",
    /// Random-walk positional encoding ([`pe::RandomWalkPe`]).
    RandomWalkPe(pe::RandomWalkPe) = "op-pe",
    /// HypergraphConv ([`hypergraph::HypergraphConv`]).
    HypergraphConv(hypergraph::HypergraphConv) = "op-hypergraph",
    /// Element-wise product, for recurrent cells' gates ([`recurrent::Mul`]).
    Mul(recurrent::Mul) = "op-recurrent",
    /// ChebConv ([`cheb::ChebConv`]).
    ChebConv(cheb::ChebConv) = "op-cheb",
}

/// Decodes an [`Op`] from the start of `bytes`: postcard, or in builds with
/// `cfg(tinygnn_small_decoder)` (only `op-gcn`/`op-linear`) the hand-written
/// reader of [`format::small`] (same bytes, same results), for which an op of
/// any other family is [`Take::NotCompiled`].
pub fn take_op(bytes: &[u8]) -> Take<'_, Op> {
    #[cfg(tinygnn_small_decoder)]
    return take_op_small(bytes);
    #[cfg(not(tinygnn_small_decoder))]
    return match postcard::take_from_bytes(bytes) {
        Ok((op, rest)) => Take::Ok(op, rest),
        Err(_) => Take::Bad,
    };
}

/// [`take_op`] with [`format::small::Reader`]: `Linear` (tag 0) or `GcnConv`
/// (tag 1); any other valid tag is [`Take::NotCompiled`].
#[cfg_attr(not(tinygnn_small_decoder), allow(dead_code))]
pub(crate) fn take_op_small(bytes: &[u8]) -> Take<'_, Op> {
    let mut r = format::small::Reader::new(bytes);
    let Some(tag) = r.u32() else {
        return Take::Bad;
    };
    let op = match tag {
        0 => linear::Linear::read_small(&mut r).map(Op::Linear),
        1 => gcn::GcnConv::read_small(&mut r).map(Op::GcnConv),
        t if t < OP_TAGS => return Take::NotCompiled,
        _ => return Take::Bad,
    };
    match op {
        Some(op) => Take::Ok(op, r.rest()),
        None => Take::Bad,
    }
}

// The every-op fixture needs every family (a build with fewer rejects it).
#[cfg(all(test, feature = "std", feature = "all-ops"))]
mod tests {
    use super::*;

    /// The variants' postcard tags are the wire format (`docs/format.md`):
    /// the table's order must never change, and a new op is appended.
    #[test]
    fn table_order_is_the_wire_tags() {
        let bytes = tinygnn_testkit::every_op_model();
        let model = crate::Model::from_bytes(&bytes).unwrap();
        let want = |name: &str| match name {
            "linear" => 0,
            "gcn_conv" => 1,
            "sage_conv" => 2,
            "gin_aggregate" => 3,
            "global_pool" => 4,
            "add" => 5,
            "concat" => 6,
            "act" => 7,
            "gat_conv" | "gatv2_conv" => 8,
            "gine_conv" => 9,
            "lut" => 10,
            "appnp" | "sg_conv" | "gcn2_conv" | "tag_conv" => 11,
            "edge_conv" | "dynamic_edge_conv" => 12,
            "inner_product" => 13,
            "pair_hadamard" | "pair_concat" => 14,
            "softmax" | "log_softmax" => 15,
            "layer_norm" => 16,
            "transformer_conv" => 17,
            "attention_pool" => 18,
            "random_walk_pe" => 19,
            "hypergraph_conv" => 20,
            "mul" => 21,
            "cheb_conv" => 22,
            other => panic!("op {other} has no recorded tag"),
        };
        let mut seen = std::collections::BTreeSet::new();
        for op in model.ops() {
            let tag = postcard::to_allocvec(&op).unwrap()[0];
            assert_eq!(u32::from(tag), want(op.name()), "{op:?}");
            seen.insert(tag);
        }
        assert!(seen.len() >= 12, "the every-op model covers {seen:?}");
        assert_eq!(OP_TAGS, 23);
    }

    /// Every op's feature is a cargo feature of this crate, compiled in
    /// this build (all-ops), and part of `all-ops`.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "string checks of Cargo.toml, no unsafe code: run natively"
    )]
    fn op_features_are_cargo_features() {
        let manifest = include_str!("../../Cargo.toml");
        let all_ops = manifest
            .lines()
            .find(|l| l.starts_with("all-ops = ["))
            .expect("all-ops in Cargo.toml");
        let bytes = tinygnn_testkit::every_op_model();
        let model = crate::Model::from_bytes(&bytes).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for op in model.ops() {
            let f = op.feature();
            assert!(f.starts_with("op-"), "{f}");
            assert!(
                manifest.contains(&format!("\n{f} = [")),
                "{f} is not a feature"
            );
            assert!(all_ops.contains(&format!("\"{f}\"")), "{f} not in all-ops");
            seen.insert(f);
        }
        assert!(
            seen.contains("op-gcn") && seen.contains("op-linear"),
            "{seen:?}"
        );
        assert!(all_ops.contains(&format!("\"{WEIGHTS_I4_FEATURE}\"")));
        assert!(all_ops.contains(&format!("\"{WEIGHTS_I2_FEATURE}\"")));
    }

    /// The compiled-only dispatch ([`inputs`], [`needs_weight_feature`]) agrees
    /// with the [`Op`] methods for every compiled op.
    #[test]
    fn compiled_dispatch_matches_op_methods() {
        let bytes = tinygnn_testkit::every_op_model();
        let model = crate::Model::from_bytes(&bytes).unwrap();
        for op in model.ops() {
            let (mut want, mut got) = (Vec::new(), Vec::new());
            op.for_each_input(|t| want.push(t));
            inputs(&op, &mut |t| got.push(t));
            assert_eq!(got, want, "{op:?}");
            assert!(!want.is_empty());
            let missing = (!cfg!(feature = "weights-i4") && op.has_i4_weights())
                || (!cfg!(feature = "weights-i2") && op.has_i2_weights());
            assert_eq!(needs_weight_feature(&op), missing, "{op:?}");
        }
    }
}

/// The key ([`gcn::GcnFlags::key`]) of an op whose graph normalisation the
/// session computes once per graph and shares ([`Ctx::dinv`]): a
/// normalising `GcnConv`. `None` for every other op.
///
/// With `kernels-small` (size over speed) no op shares it: each normalising
/// `GcnConv` computes its own table, as before sharing, in less code.
#[cfg(all(feature = "op-gcn", not(feature = "kernels-small")))]
pub(crate) fn shared_norm_key(op: &Op) -> Option<u8> {
    match op {
        Op::GcnConv(c) if c.normalize => Some(c.flags().key()),
        _ => None,
    }
}

#[cfg(any(not(feature = "op-gcn"), feature = "kernels-small"))]
pub(crate) fn shared_norm_key(_: &Op) -> Option<u8> {
    None
}

/// Bytes of the shared `dinv` table for `nodes` nodes.
#[cfg(feature = "op-gcn")]
pub(crate) fn shared_norm_bytes(nodes: usize) -> usize {
    gcn::dinv_scratch_bytes(nodes)
}

#[cfg(not(feature = "op-gcn"))]
pub(crate) fn shared_norm_bytes(_: usize) -> usize {
    0
}

/// Fills the shared `dinv` table for the key `key` ([`shared_norm_key`]).
#[cfg(feature = "op-gcn")]
pub(crate) fn fill_shared_norm(key: u8, ctx: &Ctx<'_>, dinv: &mut [u32]) {
    gcn::fill_dinv(ctx, gcn::GcnFlags::from_key(key), dinv);
}

#[cfg(not(feature = "op-gcn"))]
pub(crate) fn fill_shared_norm(_: u8, _: &Ctx<'_>, _: &mut [u32]) {}
