//! int4 activations (`convert --activations int4`): which tensors of a
//! converted model can be int4, and their 4-bit ranges.
//!
//! A tensor is made int4 when the runtime can read and write it packed
//! everywhere it is used: its producer (an op, or the model input) and every
//! op reading it take int4 tensors (`tinygnn::ops::takes_i4`: `Linear`,
//! `GcnConv`, `SageConv` without `normalize`, `GinAggregate`, `Add`, `Concat`,
//! `Act`; an `Act`'s output only with its input, whose quantization it keeps), it is a node or graph tensor, and it is not a model output
//! (outputs stay int8: an argmax over 16 levels ties easily) nor the carried
//! state. Every other tensor stays int8, and [`select`] says why.
//! The choice is made on the int8 conversion of the same model (same ops,
//! same tensor ids), then the model is converted again with these tensors
//! int4 ([`Act4Plan`], carried by the weight plan).
//!
//! With an arena budget (`convert --arena-budget`), [`choose_budget`] takes
//! those tensors one at a time instead, least harmful first, until the arena
//! fits, and leaves int8 the ones the arena does not need.

use std::collections::{BTreeSet, HashMap};

use anyhow::{anyhow, bail, Result};
use tinygnn::format::{Op, TensorKind};
use tinygnn::Model;

use crate::ops::common::{Range, Values};
use crate::range::Method;

/// The int4 tensors of a conversion and their calibrated ranges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Act4Plan {
    /// Tensor ids to write as int4 (ids of the model as converted).
    pub tensors: BTreeSet<u8>,
    /// The int4 range of each of them (of these tensors only), by tensor
    /// (spec) name.
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
    for (s, next) in model.states() {
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
    // `Act` keeps its input's quantization: its output is int4 only when its
    // input is (chains of them, so until nothing changes).
    loop {
        let mut changed = false;
        for op in model.ops() {
            if let Op::Act(a) = &op {
                if why[a.input as usize].is_some() && why[a.output as usize].is_none() {
                    why[a.output as usize] =
                        Some("an act keeps the quantization of its int8 input".into());
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
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

/// What one candidate int4 tensor does alone: the harm on the calibration
/// graphs (as `crate::precision::score` measures it) and the arena.
#[derive(Debug, Clone, PartialEq)]
pub struct Harm {
    /// Tensor id.
    pub tensor: u8,
    /// Top-1 agreement with float with only this tensor int4.
    pub top1_agreement: f64,
    /// Relative mean error of the output with only this tensor int4.
    pub rel_mean_err: f64,
    /// Arena bytes at capacity with only this tensor int4.
    pub arena: usize,
}

/// The outcome of [`choose_budget`].
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetChoice {
    /// The tensors made int4.
    pub tensors: BTreeSet<u8>,
    /// Arena bytes at capacity with them.
    pub arena: usize,
    /// Every candidate alone, least harmful first (empty when the int8
    /// arena fits).
    pub harms: Vec<Harm>,
}

/// Arena bytes of the model converted with a set of int4 tensors, and when
/// asked (`score`) its score `(top1_agreement, rel_mean_err)` on the
/// calibration graphs (a run of the model: only the candidates alone need it).
pub type Measure<'a> = dyn FnMut(&BTreeSet<u8>, bool) -> Result<(usize, Option<(f64, f64)>)> + 'a;

/// Chooses the int4 tensors among `candidates` for an arena of at most
/// `budget` bytes: nothing when the all-int8 arena (`arena8`, of the
/// conversion the caller has already made) fits; else each candidate
/// is measured alone, and they are added least harmful first (ties: the
/// smaller arena) until the arena fits; then every chosen tensor whose
/// removal still fits (the arena is a peak over the op sequence, so not
/// every int4 tensor lowers it) is left int8 again, most harmful first.
/// An error when even all candidates int4 miss the budget.
pub fn choose_budget(
    candidates: &BTreeSet<u8>,
    budget: usize,
    arena8: usize,
    measure: &mut Measure<'_>,
) -> Result<BudgetChoice> {
    if arena8 <= budget {
        return Ok(BudgetChoice {
            tensors: BTreeSet::new(),
            arena: arena8,
            harms: Vec::new(),
        });
    }
    let (arena_all, _) = measure(candidates, false)?;
    if arena_all > budget {
        bail!(
            "--arena-budget {budget}: even with every eligible tensor int4 ({}) the arena is {arena_all} bytes ({} over; all-int8: {arena8} bytes)",
            candidates.len(),
            arena_all - budget
        );
    }
    let mut harms = Vec::new();
    for &t in candidates {
        let (arena, score) = measure(&BTreeSet::from([t]), true)?;
        let (top1_agreement, rel_mean_err) = score.unwrap_or((0.0, f64::INFINITY));
        harms.push(Harm {
            tensor: t,
            top1_agreement,
            rel_mean_err,
            arena,
        });
    }
    harms.sort_by(|a, b| {
        b.top1_agreement
            .total_cmp(&a.top1_agreement)
            .then(a.rel_mean_err.total_cmp(&b.rel_mean_err))
            .then(a.arena.cmp(&b.arena))
    });
    let mut chosen = BTreeSet::new();
    let mut arena = arena8;
    for h in &harms {
        chosen.insert(h.tensor);
        arena = measure(&chosen, false)?.0;
        if arena <= budget {
            break;
        }
    }
    for h in harms.iter().rev() {
        if !chosen.contains(&h.tensor) || chosen.len() == 1 {
            continue;
        }
        let mut fewer = chosen.clone();
        fewer.remove(&h.tensor);
        let a = measure(&fewer, false)?.0;
        if a <= budget {
            chosen = fewer;
            arena = a;
        }
    }
    Ok(BudgetChoice {
        tensors: chosen,
        arena,
        harms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of four tensors whose arena is the largest of the sums over
    /// two overlapping live pairs, (0, 1) and (1, 2), tensor 3 outside.
    fn measure(set: &BTreeSet<u8>, score: bool) -> Result<(usize, Option<(f64, f64)>)> {
        let size = |t: u8| if set.contains(&t) { 50 } else { 100 };
        let arena = (size(0) + size(1)).max(size(1) + size(2));
        // Tensor 2 is the most harmful, then 1, then 0; 3 harmless.
        let harm: f64 = set
            .iter()
            .map(|&t| [0.01, 0.02, 0.05, 0.0][t as usize])
            .sum();
        Ok((arena, score.then_some((1.0 - harm, harm))))
    }

    #[test]
    fn least_harmful_first_until_the_arena_fits() {
        let all = BTreeSet::from([0, 1, 2, 3]);
        // 200 fits int8.
        let c = choose_budget(&all, 200, 200, &mut measure).unwrap();
        assert!(c.tensors.is_empty() && c.harms.is_empty());
        assert_eq!(c.arena, 200);
        // 150: tensor 3 (harmless) does not lower the peak; 0 then 1 do.
        // 3 and 0 are then dropped again (1 alone gives 150).
        let c = choose_budget(&all, 150, 200, &mut measure).unwrap();
        assert_eq!(c.tensors, BTreeSet::from([1]));
        assert_eq!(c.arena, 150);
        assert_eq!(
            c.harms.iter().map(|h| h.tensor).collect::<Vec<_>>(),
            [3, 0, 1, 2]
        );
        // 100: tensors 0, 1 and 2 needed.
        let c = choose_budget(&all, 100, 200, &mut measure).unwrap();
        assert_eq!(c.tensors, BTreeSet::from([0, 1, 2]));
        assert_eq!(c.arena, 100);
    }

    #[test]
    fn an_unreachable_budget_is_an_error() {
        let all = BTreeSet::from([0, 1, 3]);
        let e = choose_budget(&all, 120, 200, &mut measure)
            .unwrap_err()
            .to_string();
        assert!(e.contains("even with every eligible tensor int4"), "{e}");
        assert!(e.contains("150 bytes"), "{e}");
    }
}
