//! `Lut` — an element-wise int8 → int8 lookup table (edgefeat): ELU and other
//! one-value functions the host tabulates at conversion (see
//! [`crate::format::Op::Lut`]): `out = table[x + 128]`.

use super::{In, Out};
use crate::error::Result;

/// Runs the table on every value. A table shorter than 256 bytes gives the
/// output zero point past its end (validated models always have 256).
pub fn run(x: In<'_>, table: &[u8], out: Out<'_>) -> Result<()> {
    for (o, &v) in out.data.iter_mut().zip(x.data) {
        let at = usize::from((v as u8) ^ 0x80);
        *o = table.get(at).map_or(out.zp, |&t| t as i8);
    }
    Ok(())
}
