//! Integer kernels: the arithmetic inner loops of the ops.
//!
//! Each kernel exists as a plain **reference** version written to read like
//! the formula in [`crate::format::Op`]'s docs, and, where speed matters, an
//! **optimized** portable version that is the default. Both are pure integer
//! code over slices (no allocation, no panics: lengths that do not match are
//! handled by iterating over the shortest), and every optimized kernel is
//! tested bit-exact against its reference with proptest. The feature
//! `reference-kernels` makes the ops call the reference versions instead
//! (the whole test suite passes either way).
//!
//! * [`dense`]: int8 matrix × int8 vector with zero point, i32 results.
//! * [`dense_i4`]: the same with int4 weights unpacked in the kernel, and [`dense_i4::Matrix`] (either precision).
//! * [`requant`]: fused activation and requantization of i32 accumulators.
//! * [`aggregate`]: building the target-sorted CSR and neighbourhood reductions over it.
//! * [`sparse`]: sparse int8 input rows × int8 weights (the input layer with sparse features).

pub mod aggregate;
pub mod dense;
pub mod dense_i4;
pub mod requant;
pub mod sparse;
