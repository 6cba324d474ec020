//! Integer kernels: the arithmetic inner loops of the ops.
//!
//! Each kernel exists as a plain **reference** version written to read like
//! the formula in [`crate::format::Op`]'s docs, and, where speed matters,
//! **optimized** versions, one of which is chosen at compile time for the
//! target (see [`dense::matvec`] and `docs/kernels.md`). All are pure integer
//! code over slices (no allocation, no panics: lengths that do not match are
//! handled by iterating over the shortest), and every optimized kernel is
//! tested bit-exact against its reference with proptest; the Cortex-M
//! assembly kernels also on emulated boards (`scripts/kernel-bench.sh`,
//! which checks them on seeded random shapes and counts instructions per
//! MAC). The feature `reference-kernels` makes the ops call the reference
//! versions instead (the whole test suite passes either way).
//!
//! * [`dense`]: int8 matrix × int8 vector with zero point, i32 results
//!   (reference and portable kernels, the per-target dispatch).
//! * [`pairs`]: the same on 16-bit pairs: `SXTB16` + `SMLAD` assembly for
//!   Cortex-M4/M7/M33 (0.985 instructions per MAC on the emulated M4, four
//!   nodes per pass) and a portable emulation of those instructions.
//! * [`dense_i4`]: the same with int4 weights unpacked in the kernel, and
//!   [`dense_i4::Matrix`] (any precision).
//! * [`dense_i2`]: the same with int2 (or ternary) weights, four per byte;
//!   [`pairs_i2`] its DSP kernel (the pair kernel with a table instead of
//!   `SXTB16`).
//! * `packed`: the row loops those two packed-weight kernels share.
//! * [`sparse`]: sparse int8 input rows × int8 weights (the input layer
//!   with sparse features); [`sparse_sub`] the same with int4 or int2 weights.
//! * [`requant`]: fused activation and requantization of i32 accumulators.
//! * [`knn`]: the k-nearest-neighbour graph of int8 points (DynamicEdgeConv).
//! * [`aggregate`]: building the target-sorted CSR and neighbourhood
//!   reductions over it, streaming each node's in-edges once.

#[cfg(feature = "act-i4")]
pub mod act_i4;
pub mod aggregate;
pub mod attention;
pub mod dense;
pub mod dense_i2;
pub mod dense_i4;
pub mod knn;
pub(crate) mod packed;
pub mod pairs;
pub mod pairs_i2;
pub mod requant;
pub mod sparse;
pub mod sparse_sub;
