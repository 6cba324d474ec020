//! int4 activations (`convert --activations int4`): which tensors of a
//! converted model can be int4, and their 4-bit ranges.
//!
//! A tensor is made int4 when the runtime can read and write it packed
//! everywhere it is used: its producer (an op, or the model input) and every
//! op reading it take int4 tensors (`tinygnn::ops::takes_i4`: `Linear`,
//! `GcnConv`, `SageConv` without `normalize`, `GinAggregate`), it is a node or graph tensor, and it is not a model output
//! (outputs stay int8: an argmax over 16 levels ties easily) nor the carried
//! state. Every other tensor stays int8, and [`select`] says why.
//! The choice is made on the int8 conversion of the same model (same ops,
//! same tensor ids), then the model is converted again with these tensors
//! int4 ([`Act4Plan`], carried by the weight plan).

use std::collections::{BTreeSet, HashMap};

use anyhow::{anyhow, Result};
use tinygnn::format::TensorKind;
use tinygnn::Model;

use crate::ops::common::{Range, Values};
use crate::range::Method;

/// The int4 tensors of a conversion and their calibrated ranges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Act4Plan {
    /// Tensor ids to write as int4 (ids of the model as converted).
    pub tensors: BTreeSet<u8>,
    /// The int4 range of each of them, by tensor (spec) name.
    pub ranges: HashMap<String, Range>,
}

/// A tensor kept int8 by [`select`], and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// Tensor id.
    pub tensor: u8,
    /// Its spec name.
    pub name: String,
    /// Why it stays int8.
    pub why: String,
}

/// The spec name of every tensor of `model` (the int8 conversion of a spec
/// whose input is `input` and whose fused ops, in file order, are named
/// `op_names`): `None` for tensors no op writes and that are not the input.
pub fn tensor_names(model: &Model<'_>, input: &str, op_names: &[String]) -> Vec<Option<String>> {
    let mut names = vec![None; model.tensors().len()];
    names[model.input() as usize] = Some(input.to_string());
    for (op, name) in model.ops().zip(op_names) {
        names[op.output() as usize] = Some(name.clone());
    }
    names
}

/// Splits the tensors of `model` (an int8 conversion) into those that can be
/// int4 and those that stay int8 (with the reason), by the rules of the
/// module doc.
pub fn select(model: &Model<'_>, names: &[Option<String>]) -> (BTreeSet<u8>, Vec<Kept>) {
    let n = model.tensors().len();
    let mut why: Vec<Option<String>> = vec![None; n];
    let mut note = |t: u8, w: String| {
        let slot = &mut why[t as usize];
        if slot.is_none() {
            *slot = Some(w);
        }
    };
    for &o in model.outputs() {
        note(o, "a model output (outputs stay int8)".into());
    }
    if let Some((s, next)) = model.state() {
        note(s, "the recurrent state".into());
        note(next, "the next recurrent state".into());
    }
    for (t, d) in model.tensors().iter().enumerate() {
        if !matches!(d.kind, TensorKind::Node | TensorKind::Graph) {
            note(t as u8, format!("a {:?} tensor", d.kind).to_lowercase());
        }
    }
    for op in model.ops() {
        if tinygnn::ops::takes_i4(&op) {
            continue;
        }
        note(op.output(), format!("written by {}", op.name()));
        op.for_each_input(|t| note(t, format!("read by {}", op.name())));
    }
    let mut int4 = BTreeSet::new();
    let mut kept = Vec::new();
    for (t, w) in why.into_iter().enumerate() {
        let name = names.get(t).cloned().flatten();
        match (w, name) {
            (None, Some(_)) => {
                int4.insert(t as u8);
            }
            (w, name) => kept.push(Kept {
                tensor: t as u8,
                name: name.unwrap_or_else(|| format!("#{t}")),
                why: w.unwrap_or_else(|| "not written by an op".into()),
            }),
        }
    }
    (int4, kept)
}

/// The int4 range of every tensor of `int4` from the float values of the
/// calibration graphs ([`crate::range::range_of4`] under `method`).
pub fn ranges(
    int4: &BTreeSet<u8>,
    names: &[Option<String>],
    values: &Values,
    method: Method,
) -> Result<HashMap<String, Range>> {
    let mut out = HashMap::new();
    for &t in int4 {
        let name = names[t as usize]
            .as_ref()
            .ok_or_else(|| anyhow!("int4 tensor #{t} has no name"))?;
        let v = values
            .get(name)
            .ok_or_else(|| anyhow!("no calibration values for tensor '{name}'"))?;
        out.insert(name.clone(), crate::range::range_of4(&v.data, method));
    }
    Ok(out)
}
