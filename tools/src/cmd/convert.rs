//! `tinygnn convert`: MODEL.safetensors + calibration graphs → MODEL.tgnn.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::calibrate::{self, Method, OutputRange};
use crate::prec::Prec;
use crate::quantize::{self, Capacity, WeightPlan};
use crate::{fsio, spec, st};

mod summary;
use summary::{Act4Budget, Act4Report, AvgBits, Budget, Summary};

/// Arguments of `convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Float model (weights + spec) written by the Python exporter.
    pub model: PathBuf,
    /// Calibration graphs (GRAPHS.safetensors); the whole file is one batch.
    #[arg(long)]
    pub calib: PathBuf,
    /// Output .tgnn file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Largest node count the device must accept [default: nodes in the calibration file].
    #[arg(long)]
    pub max_nodes: Option<u32>,
    /// Largest edge count, and largest hyperedge incidence count (`hyperedge_index`
    /// columns) [default: the larger of the two in the calibration file].
    #[arg(long)]
    pub max_edges: Option<u32>,
    /// Largest number of graphs per batch [default: graphs in the calibration file].
    #[arg(long)]
    pub max_graphs: Option<u32>,
    /// Largest number of node pairs a link-prediction model scores per run
    /// [default: pairs (`edge_label_index`) in the calibration file].
    #[arg(long)]
    pub max_pairs: Option<u32>,
    /// Range calibration per activation tensor: `mse` (the clipping range with
    /// the least int8 quantization mean squared error; chosen by measurement,
    /// docs/quantization.md), `minmax` or `percentile:P` (e.g. percentile:99.99).
    #[arg(long, default_value = "mse")]
    pub calibration: String,
    /// Range of the model outputs: `full` (all values), `argmax` (classification
    /// heads: losing classes below every row's runner-up saturate) or `top2`
    /// (only the runner-up values' range; winners saturate too).
    #[arg(long, default_value = "full")]
    pub output_range: String,
    /// Weight scales: `per-channel` (one per output channel), `per-tensor` (one
    /// per layer; all channels share mult/shift, written as compact params) or
    /// `auto` (per-tensor for the fewest layers, lowest max|W| spread first,
    /// that meet the size goal).
    #[arg(long, default_value = "per-channel")]
    pub weight_scales: String,
    /// Also write the model as a source file next to the .tgnn (`-o` must end
    /// in `.tgnn`): `rust` writes NAME.rs, `c` writes NAME.c and NAME.h, with
    /// the 4-byte aligned bytes, their length and the arena size at capacity.
    #[arg(long, value_enum)]
    pub emit: Option<crate::emit::Lang>,
    /// Weight precision: `int8`, `int4`, `int2` (−2..=1) or `ternary`
    /// (−1..=1, stored as int2) for every layer, and/or per layer
    /// `LAYER=PRECISION` (comma-separated, e.g. `int2,conv2=int8`; layer names
    /// as listed by convert) [default: int8].
    #[arg(long, conflicts_with_all = ["flash_budget", "avg_weight_bits"])]
    pub weights: Option<String>,
    /// Average weight bits to meet (weighted by each layer's weight count):
    /// layers are lowered int8 → int4 → int2, least sensitive first
    /// (measured on the calibration graphs), until the average is at most
    /// this; the chosen plan is printed. An error if even all-int2 misses it.
    #[arg(long, conflicts_with = "flash_budget")]
    pub avg_weight_bits: Option<f64>,
    /// With `--avg-weight-bits`: choose a precision per layer (`layer`), per
    /// group of output channels (`channel`: a layer is split into one op per
    /// precision and a concat, see docs/quantization.md), or both and keep
    /// the one with the higher top-1 agreement on the calibration graphs
    /// (`best`).
    #[arg(long, value_enum, default_value = "best", requires = "avg_weight_bits")]
    pub precision_grain: Grain,
    /// Largest file size in bytes: layers are switched from int8 to int4
    /// weights, least sensitive first (measured on the calibration graphs),
    /// until the model fits; an error if even all-int4 does not fit.
    #[arg(long)]
    pub flash_budget: Option<usize>,
    /// int4 weight scales: `mse` (per channel, the clipping of max|W| that
    /// minimises the squared rounding error), `max` (max|W| / 7) or `output`
    /// (with `--int4-rounding gpfq-seq`: per channel, the clipping whose
    /// rounding leaves the least layer output error on the calibration graphs).
    #[arg(long, default_value = "mse")]
    pub int4_scale: String,
    /// int4 weight rounding: `gpfq` (error-correcting, on the layer's float
    /// input over the calibration graphs), `gpfq-seq` (layer by layer on the
    /// aggregated input the int4 model itself gives each layer: error
    /// feedback; the default, chosen on the calibration graphs, see
    /// docs/accuracy.md) or `nearest` (the default and the only choice for a
    /// recurrent cell, whose layer inputs come from a sequence).
    #[arg(long)]
    pub int4_rounding: Option<Int4Rounding>,
    /// With `--int4-rounding gpfq-seq`: `on` shifts each int4 channel's bias
    /// by the mean output error its rounding left on the calibration graphs.
    #[arg(long, default_value = "off")]
    pub int4_bias_correction: Switch,
    /// With `--int4-rounding gpfq-seq`: `on` re-calibrates each int4 layer's
    /// output range (with `--calibration`'s method) on the output the int4
    /// model computes instead of the float one.
    #[arg(long, default_value = "off")]
    pub int4_recalibrate: Switch,
    /// Activation precision: `int8`, or `int4` (16 levels, two values per
    /// byte in the arena) for every tensor whose producer and readers all
    /// take int4 tensors (`Linear`, `GcnConv`, `SageConv` without
    /// `normalize`, `GinAggregate`, `Add`, `Concat`, `Act`; the model input
    /// included);
    /// model outputs and the tensors of other ops stay int8, listed with the
    /// reason (docs/quantization.md).
    #[arg(long, value_enum, default_value = "int8")]
    pub activations: ActBits,
    /// Largest arena in bytes at the model's capacity: activation tensors
    /// are made int4 per tensor, least sensitive first (measured on the
    /// calibration graphs), until the arena fits; those the arena does not
    /// need stay int8. The candidates are the tensors `--activations int4`
    /// makes int4; an error if even all of them do not fit.
    #[arg(long, conflicts_with = "activations")]
    pub arena_budget: Option<usize>,
    /// Range calibration of the int4 activation tensors: `mse` (the clipping
    /// range with the least int4 quantization squared error on the
    /// calibration graphs; chosen by measurement, docs/quantization.md),
    /// `minmax` or `percentile:P`.
    #[arg(long, default_value = "mse")]
    pub int4_act_calibration: String,
    /// Print a JSON summary (the text output's facts: file, bytes, ops,
    /// weights, precision per layer, warnings, arena bytes, cargo features)
    /// instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// How int4 weights are rounded (`--int4-rounding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int4Rounding {
    /// Round to nearest.
    Nearest,
    /// GPFQ on the layer's float input.
    Gpfq,
    /// GPFQ layer by layer on the input the int4 model gives (error feedback).
    GpfqSeq,
}

impl std::str::FromStr for Int4Rounding {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "nearest" => Ok(Int4Rounding::Nearest),
            "gpfq" => Ok(Int4Rounding::Gpfq),
            "gpfq-seq" => Ok(Int4Rounding::GpfqSeq),
            _ => Err(format!(
                "--int4-rounding must be nearest, gpfq or gpfq-seq, not '{s}'"
            )),
        }
    }
}

/// What `--avg-weight-bits` gives a precision to (`--precision-grain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Grain {
    /// Whole layers.
    Layer,
    /// Groups of output channels.
    Channel,
    /// Both searched; the better on the calibration graphs kept.
    Best,
}

/// Activation precision (`--activations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActBits {
    /// Every tensor int8.
    Int8,
    /// int4 where the ops allow it.
    Int4,
}

/// An option that is `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Loads a model file and parses its spec.
pub fn load_spec(path: &std::path::Path) -> Result<spec::Spec> {
    spec::load(path)
}

/// The capacity declared in the model: the flags, else the calibration graphs'.
fn capacity(a: &Args, g: &st::Graphs) -> Result<Capacity> {
    let cap = Capacity {
        max_nodes: a.max_nodes.unwrap_or(g.num_nodes.max(1) as u32),
        max_edges: a
            .max_edges
            .unwrap_or(g.num_edges().max(g.num_incidences()) as u32),
        max_graphs: a.max_graphs.unwrap_or(g.num_graphs as u32),
        max_pairs: a
            .max_pairs
            .unwrap_or(g.pairs.as_ref().map_or(0, |p| p.sources.len() as u32)),
    };
    if cap.max_pairs > tinygnn::MAX_EDGES {
        bail!(
            "--max-pairs {} exceeds the runtime's limit {}",
            cap.max_pairs,
            tinygnn::MAX_EDGES
        );
    }
    if cap.max_nodes == 0 || cap.max_nodes > u16::MAX as u32 {
        bail!(
            "--max-nodes {} must be in 1..=65535 (node indices are u16)",
            cap.max_nodes
        );
    }
    if cap.max_graphs == 0 || cap.max_graphs > cap.max_nodes {
        bail!(
            "--max-graphs {} must be in 1..=max-nodes ({})",
            cap.max_graphs,
            cap.max_nodes
        );
    }
    if cap.max_edges > tinygnn::MAX_EDGES {
        bail!(
            "--max-edges {} exceeds the runtime's limit {}",
            cap.max_edges,
            tinygnn::MAX_EDGES
        );
    }
    Ok(cap)
}

/// The weight precision plan of the `--weights` and `--int4-*` flags.
fn weight_plan(a: &Args, method: Method, recurrent: bool) -> Result<quantize::WeightPlan> {
    let mut plan: quantize::WeightPlan = match &a.weights {
        Some(s) => s.parse()?,
        None => quantize::WeightPlan::default(),
    };
    (plan.int4_max_scale, plan.int4_output_scale) = match a.int4_scale.as_str() {
        "mse" => (false, false),
        "max" => (true, false),
        "output" => (false, true),
        s => bail!("--int4-scale must be mse, max or output, not '{s}'"),
    };
    let rounding = match (a.int4_rounding, recurrent) {
        (None, false) => Int4Rounding::GpfqSeq,
        (None, true) | (Some(Int4Rounding::Nearest), true) => Int4Rounding::Nearest,
        (Some(r), false) => r,
        (Some(_), true) => bail!(
            "a recurrent cell's sub-byte weights are rounded to nearest: GPFQ rounds on one graph's layer inputs, a cell's come from a sequence"
        ),
    };
    (plan.int4_gpfq, plan.int4_feedback) = match rounding {
        Int4Rounding::Nearest => (false, false),
        Int4Rounding::Gpfq => (true, false),
        Int4Rounding::GpfqSeq => (true, true),
    };
    plan.int4_bias_correction = match a.int4_bias_correction {
        Switch::Off => false,
        Switch::On if plan.int4_feedback => true,
        Switch::On => bail!("--int4-bias-correction on needs --int4-rounding gpfq-seq"),
    };
    plan.int4_recalibrate = match a.int4_recalibrate {
        Switch::Off => None,
        Switch::On if plan.int4_feedback => Some(method),
        Switch::On => bail!("--int4-recalibrate on needs --int4-rounding gpfq-seq"),
    };
    if plan.int4_output_scale && !plan.int4_feedback {
        bail!("--int4-scale output needs --int4-rounding gpfq-seq");
    }
    Ok(plan)
}

/// Quantizes the model by the plan (GPFQ rounding on the float activations
/// of the calibration graphs `g` when the plan asks for it).
fn convert_fixed(
    spec: &spec::Spec,
    g: &st::Graphs,
    ranges: &std::collections::HashMap<String, calibrate::Range>,
    cap: Capacity,
    weight_scales: quantize::WeightScales,
    plan: &quantize::WeightPlan,
) -> Result<quantize::Converted> {
    if plan.int4_gpfq && plan.any_int4() {
        let acts = crate::reference::run(spec, g, |_| {})?;
        quantize::convert_plan_graphs(spec, ranges, cap, weight_scales, plan, Some(&acts), Some(g))
    } else {
        quantize::convert_plan(spec, ranges, cap, weight_scales, plan)
    }
}

/// Quantizes the model: by the plan, or to the flash budget (then also
/// what the budget search measured).
fn quantize_model(
    a: &Args,
    spec: &spec::Spec,
    g: &st::Graphs,
    ranges: &std::collections::HashMap<String, calibrate::Range>,
    cap: Capacity,
    weight_scales: quantize::WeightScales,
    plan: &quantize::WeightPlan,
) -> Result<(quantize::Converted, Option<Budget>)> {
    Ok(match a.flash_budget {
        None => (
            convert_fixed(spec, g, ranges, cap, weight_scales, plan)?,
            None,
        ),
        Some(budget) => {
            let c = crate::precision::choose(spec, ranges, cap, weight_scales, g, budget, plan)?;
            let b = Budget {
                budget,
                all_int8: c.all_int8_bytes,
                all_int4: c.all_int4_bytes,
                sensitivity: c.sensitivity,
            };
            (c.converted, Some(b))
        }
    })
}

/// `--avg-weight-bits`: the per-layer search, then (by `--precision-grain`)
/// the per-channel one, keeping the per-channel model when asked or when it
/// measures better. `plan` becomes the kept model's plan.
#[allow(clippy::too_many_arguments)]
fn avg_bits_model(
    a: &Args,
    spec: &spec::Spec,
    g: &st::Graphs,
    ranges: &std::collections::HashMap<String, calibrate::Range>,
    cap: Capacity,
    weight_scales: quantize::WeightScales,
    plan: &mut WeightPlan,
    target: f64,
    act4: bool,
) -> Result<(quantize::Converted, AvgBits)> {
    let base = plan.clone();
    let c = crate::precision::choose_avg(spec, ranges, cap, weight_scales, g, target, &base)?;
    *plan = c.plan.clone();
    let mut conv = c.converted;
    // Every layer int2: no bits left to share out among channels; every
    // layer int8: the target needs nothing lowered.
    let uniform = |b: u32| conv.layer_bits.iter().all(|(_, p)| p.bits() == b);
    let nothing_to_share = uniform(2) || uniform(8);
    let channels = match a.precision_grain {
        Grain::Layer => None,
        _ if act4 || nothing_to_share => None,
        grain => {
            let ch = crate::channel_search::choose_avg_channels(
                spec,
                ranges,
                cap,
                weight_scales,
                g,
                target,
                &base,
                &conv,
            )?;
            if grain == Grain::Channel || ch.is_better() {
                conv = ch.converted.clone();
                *plan = WeightPlan {
                    default: Some(Prec::I8),
                    layers: conv.layer_bits.clone(),
                    ..base
                };
            }
            Some(ch)
        }
    };
    let avg = AvgBits {
        target,
        got: conv.avg_weight_bits(),
        plan: conv.layer_bits.clone(),
        weights: conv.layer_weights.clone(),
        steps: c.steps,
        channels,
        grain: a.precision_grain,
    };
    Ok((conv, avg))
}

/// Runs `convert`.
pub fn run(a: &Args) -> Result<()> {
    let method: Method = a.calibration.parse()?;
    let output_range: OutputRange = a.output_range.parse()?;
    let weight_scales: quantize::WeightScales = a.weight_scales.parse()?;
    let mut outputs = vec![a.output.clone()];
    if let Some(lang) = a.emit {
        outputs.extend(crate::emit::paths(lang, &a.output)?);
    }
    let outs: Vec<&std::path::Path> = outputs.iter().map(|p| p.as_path()).collect();
    fsio::check_outputs(&outs, &[&a.model, &a.calib])?;
    let spec = load_spec(&a.model)?;
    let g = st::read_graphs(&a.calib)?;
    if g.num_nodes == 0 {
        bail!(
            "{}: the calibration graphs have no nodes (x has shape [0, {}]); calibration needs at least one node, ideally typical inputs, to choose the int8 ranges",
            a.calib.display(),
            g.channels
        );
    }
    // A recurrent cell: the calibration file is one sequence (its graphs are
    // the steps), calibrated on the unrolled float run from the zero state.
    let steps = match spec.states.is_empty() {
        false => Some(g.sequence_steps()?),
        true => None,
    };
    let cap = capacity(a, steps.as_ref().map_or(&g, |s| &s[0]))?;
    if let Some(steps) = &steps {
        return convert_recurrent(a, &spec, steps, cap, method, output_range, weight_scales);
    }
    let pb = ProgressBar::new(spec.ops.len() as u64).with_style(
        ProgressStyle::with_template("calibrating {bar:30} {pos}/{len} ops {msg}")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    pb.set_message(format!(
        "({} nodes, {} edges, {} graphs)",
        g.num_nodes,
        g.num_edges(),
        g.num_graphs
    ));
    let cal = calibrate::calibrate_outputs(&spec, &g, method, output_range, |_| pb.inc(1))?;
    pb.finish_and_clear();
    for w in &cal.warnings {
        errln!("warning: {w}");
    }
    let ranges = cal.ranges;
    let mut plan = weight_plan(a, method, false)?;
    let act4 = match (a.activations, a.arena_budget) {
        (ActBits::Int8, None) => None,
        _ => {
            let m4: Method = a.int4_act_calibration.parse()?;
            Some(plan_act4(
                a,
                &spec,
                &g,
                &ranges,
                cap,
                weight_scales,
                &mut plan,
                m4,
            )?)
        }
    };
    let (conv, budget, avg) = match a.avg_weight_bits {
        Some(target) => {
            let (c, avg) = avg_bits_model(
                a,
                &spec,
                &g,
                &ranges,
                cap,
                weight_scales,
                &mut plan,
                target,
                act4.is_some(),
            )?;
            (c, None, Some(avg))
        }
        None => {
            let (c, b) = quantize_model(a, &spec, &g, &ranges, cap, weight_scales, &plan)?;
            (c, b, None)
        }
    };
    if let (Some(b), false) = (&budget, a.json) {
        b.print();
    }
    if let (Some(v), false) = (&avg, a.json) {
        v.print();
    }
    for w in &conv.warnings {
        errln!("warning: {w}");
    }
    fsio::write(&a.output, &conv.bytes)?;
    let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let emitted = match a.emit {
        Some(lang) => {
            crate::emit::write(lang, &a.output, &conv.bytes, crate::emit::Facts::of(&model))?
        }
        None => Vec::new(),
    };
    let s = Summary {
        a,
        spec_ops: spec.ops.len(),
        conv: &conv,
        plan: &plan,
        cap,
        output_range,
        notes: &cal.notes,
        warnings: cal.warnings.iter().chain(&conv.warnings).cloned().collect(),
        budget,
        avg,
        model: &model,
        emitted,
        act4,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&s.json())?);
    } else {
        s.print();
    }
    Ok(())
}

/// `--activations int4`: converts the model with int8 activations, chooses
/// the tensors that can be int4 on it ([`crate::act4::select`]), calibrates
/// their 4-bit ranges (`method`) on the float run of the calibration graphs and puts
/// them into `plan`; returns what it chose. With `--arena-budget`, only
/// those [`crate::act4::choose_budget`] needs for the arena.
#[allow(clippy::too_many_arguments)]
fn plan_act4(
    a: &Args,
    spec: &spec::Spec,
    g: &st::Graphs,
    ranges: &std::collections::HashMap<String, calibrate::Range>,
    cap: Capacity,
    weight_scales: quantize::WeightScales,
    plan: &mut quantize::WeightPlan,
    method: Method,
) -> Result<Act4Report> {
    // The tensors are chosen with the weights as given (int8 under
    // --flash-budget and --avg-weight-bits, which then choose the weights
    // with these activations).
    let fixed =
        |plan: &quantize::WeightPlan| convert_fixed(spec, g, ranges, cap, weight_scales, plan);
    let conv8 = fixed(plan)?;
    let model8 = tinygnn::Model::from_bytes(&conv8.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let op_names: Vec<String> = conv8.ops.iter().map(|f| f.name.clone()).collect();
    let names = crate::act4::tensor_names(&model8, &spec.input, &op_names);
    let (int4, kept) = crate::act4::select(&model8, &names);
    let values = crate::reference::run(spec, g, |_| {})?;
    let ranges4 = crate::act4::ranges(&int4, &names, &values, method)?;
    let (n, e, gr) = (
        cap.max_nodes as usize,
        cap.max_edges as usize,
        cap.max_graphs as usize,
    );
    let arena8 = crate::rt::arena_bytes(&model8, n, e, gr);
    // The plan making exactly `set` int4.
    let plan_of = |plan: &quantize::WeightPlan, set: &BTreeSet<u8>| {
        let mut p = plan.clone();
        p.act4 = crate::act4::Act4Plan {
            ranges: set
                .iter()
                .filter_map(|&t| names[t as usize].clone())
                .filter_map(|n| Some((n.clone(), *ranges4.get(&n)?)))
                .collect(),
            tensors: set.clone(),
        };
        p
    };
    let (chosen, budget) = match a.arena_budget {
        None => (int4.clone(), None),
        Some(budget) => {
            let out = spec
                .outputs
                .first()
                .ok_or_else(|| anyhow::anyhow!("the model has no output"))?;
            let f = values
                .get(out)
                .ok_or_else(|| anyhow::anyhow!("the float reference did not produce '{out}'"))?;
            let mut measure = |set: &BTreeSet<u8>, score: bool| {
                let c = fixed(&plan_of(plan, set))?;
                let m = tinygnn::Model::from_bytes(&c.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
                let arena = crate::rt::arena_bytes(&m, n, e, gr)
                    .ok_or_else(|| anyhow::anyhow!("the arena at capacity overflows"))?;
                let s = if score {
                    Some(crate::precision::score(&c, f, g)?)
                } else {
                    None
                };
                Ok((arena, s))
            };
            let arena8 =
                arena8.ok_or_else(|| anyhow::anyhow!("the arena at capacity overflows"))?;
            let c = crate::act4::choose_budget(&int4, budget, arena8, &mut measure)?;
            let tensors = c.tensors.clone();
            (tensors, Some((budget, c)))
        }
    };
    *plan = plan_of(plan, &chosen);
    let name = |t: u8| names[t as usize].clone().unwrap_or_else(|| format!("#{t}"));
    let mut kept = kept;
    for &t in int4.difference(&chosen) {
        kept.push(crate::act4::Kept {
            tensor: t,
            name: name(t),
            why: "not needed for the arena budget".into(),
        });
    }
    kept.sort_by_key(|k| k.tensor);
    Ok(Act4Report {
        int4: chosen.iter().map(|&t| name(t)).collect(),
        kept,
        arena_int8: arena8,
        budget: budget.map(|(budget, c)| Act4Budget {
            budget,
            arena: c.arena,
            harms: c
                .harms
                .iter()
                .map(|h| (name(h.tensor), h.top1_agreement, h.arena))
                .collect(),
        }),
    })
}

/// `convert` of a recurrent cell ([`spec::Spec::state`]): calibration over
/// the sequence `steps` ([`calibrate::calibrate_sequence`]), state and next
/// state quantized alike; int8 weights.
fn convert_recurrent(
    a: &Args,
    spec: &spec::Spec,
    steps: &[st::Graphs],
    cap: Capacity,
    method: Method,
    output_range: OutputRange,
    weight_scales: quantize::WeightScales,
) -> Result<()> {
    if output_range != OutputRange::Full {
        bail!("--output-range {} is not supported for a recurrent cell (its outputs are read back as the state); use full", a.output_range);
    }
    let plan = weight_plan(a, method, true)?;
    if a.activations != ActBits::Int8 || a.arena_budget.is_some() {
        bail!("--activations int4 and --arena-budget are not supported for a recurrent cell (its state is carried as int8)");
    }
    if a.flash_budget.is_some() || a.avg_weight_bits.is_some() {
        bail!("--flash-budget and --avg-weight-bits are not supported for a recurrent cell (they measure layers on one graph); give the precision per layer with --weights");
    }
    let cal = calibrate::calibrate_sequence(spec, steps, method)?;
    for w in &cal.warnings {
        errln!("warning: {w}");
    }
    let conv = quantize::convert_plan(spec, &cal.ranges, cap, weight_scales, &plan)?;
    for w in &conv.warnings {
        errln!("warning: {w}");
    }
    fsio::write(&a.output, &conv.bytes)?;
    let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let emitted = match a.emit {
        Some(lang) => {
            crate::emit::write(lang, &a.output, &conv.bytes, crate::emit::Facts::of(&model))?
        }
        None => Vec::new(),
    };
    let s = Summary {
        a,
        spec_ops: spec.ops.len(),
        conv: &conv,
        plan: &plan,
        cap,
        output_range,
        notes: &cal.notes,
        warnings: cal.warnings.iter().chain(&conv.warnings).cloned().collect(),
        budget: None,
        avg: None,
        model: &model,
        emitted,
        act4: None,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&s.json())?);
    } else {
        s.print();
        outln!(
            "recurrent: calibrated on {} steps; state {} channels, {} bytes per step at capacity",
            steps.len(),
            model.state_desc().map_or(0, |d| d.channels),
            model.state_bytes(cap.max_nodes as usize)
        );
    }
    Ok(())
}
