//! `Lut` — an element-wise int8 → int8 lookup table (edgefeat): ELU and other
//! one-value functions the host tabulates at conversion (see
//! [`crate::format::Op::Lut`]): `out = table[x + 128]`.

use serde::{Deserialize, Serialize};

use super::{Check, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::Result;
use crate::format::Section;

/// Runs the table on every value. A table shorter than 256 bytes gives the
/// output zero point past its end (validated models always have 256).
pub fn run(x: In<'_>, table: &[u8], out: Out<'_>) -> Result<()> {
    for (o, &v) in out.data.iter_mut().zip(x.data) {
        let at = usize::from((v as u8) ^ 0x80);
        *o = table.get(at).map_or(out.zp, |&t| t as i8);
    }
    Ok(())
}

/// Element-wise int8 → int8 lookup table (edgefeat; used for ELU, the
/// activation of GAT models, and any other monotone or not function of
/// one value): `out = table[x + 128]`, read as i8. Input and output have the
/// same kind and channel count and each its own quantization; the host
/// computes the table as `quantize_out(f(dequantize_in(q)))` for every
/// `q` in `−128..=127`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lut {
    /// Input tensor.
    pub input: u8,
    /// Output tensor.
    pub output: u8,
    /// 256 bytes: the output for inputs `−128, −127, …, 127`.
    pub table: Section,
}

impl OpDef for Lut {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "lut"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        Check::ok(i.kind == o.kind && i.channels == o.channels && c.section_is(self.table, 256))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        run(env.view(self.input)?, env.data.bytes(self.table), out)
    }
}
