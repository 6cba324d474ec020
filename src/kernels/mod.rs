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
//! * [`requant`]: fused activation and requantization of i32 accumulators.
//! * [`aggregate`]: building the target-sorted CSR and neighbourhood reductions over it.

pub mod aggregate;
pub mod dense;
pub mod pairs;
pub mod requant;
