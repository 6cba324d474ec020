//! The quantization debugger behind `tinygnn verify --per-layer`: for every
//! device op, the error of its dequantized int8 output against the float
//! tensor it stands for (SQNR, max and mean absolute error), optionally split
//! by the in-degree of the nodes, and an SVG bar chart of the SQNR per op.
//!
//! SQNR is `10·log10(Σ f² / Σ (f − q)²)` over all values of the op's output
//! (`f` float, `q` dequantized int8); it is `+∞` when the int8 output is exact
//! and `NaN` when the float output is all zero and the int8 one is not.
//!
//! Two SQNRs per op:
//! * `sqnr_db`, the int8 model's output against the float one: what the device
//!   computes, with the error of every earlier op included (it accumulates, so
//!   it is usually lowest at the end of the model);
//! * `own_sqnr_db`, the float tensor rounded to this op's own int8 grid (its
//!   scale and zero point, saturating): the error this tensor's range alone
//!   costs, independent of earlier ops. The op with the lowest `own_sqnr_db`
//!   is flagged as the worst: it is where a bad range (calibration) hurts.

use std::fmt::Write as _;
use tinygnn::ops;

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tinygnn::Model;

use crate::quantize::{dequantize_value, fuse, quantize_value, FOp};
use crate::reference::{Tensor, Values};
use crate::rt::{self, RunOutput};
use crate::spec::Spec;
use crate::st::Graphs;

/// Error of one set of values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrStats {
    /// Values compared.
    pub count: usize,
    /// Σ f².
    pub signal: f64,
    /// Σ (f − q)².
    pub noise: f64,
    /// Largest |f − q|.
    pub max_abs_err: f64,
    /// Σ |f − q|.
    pub sum_abs_err: f64,
}

impl ErrStats {
    /// Adds one float / dequantized pair.
    pub fn add(&mut self, f: f64, q: f64) {
        let e = f - q;
        self.count += 1;
        self.signal += f * f;
        self.noise += e * e;
        self.max_abs_err = self.max_abs_err.max(e.abs());
        self.sum_abs_err += e.abs();
    }

    /// SQNR in dB (`+∞` for an exact output, `NaN` for no signal but noise).
    pub fn sqnr_db(&self) -> f64 {
        if self.noise == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (self.signal / self.noise).log10()
        }
    }

    /// Root mean square of the float values.
    pub fn signal_rms(&self) -> f64 {
        (self.signal / self.count.max(1) as f64).sqrt()
    }

    /// Mean |f − q|.
    pub fn mean_abs_err(&self) -> f64 {
        self.sum_abs_err / self.count.max(1) as f64
    }
}

/// In-degree buckets: `0`, `1`, `2–3`, `4–7`, …, `64+`.
pub const DEGREE_BUCKETS: usize = 8;

/// The bucket of in-degree `d`.
pub fn degree_bucket(d: usize) -> usize {
    if d == 0 {
        0
    } else {
        ((usize::BITS - d.leading_zeros()) as usize).min(DEGREE_BUCKETS - 1)
    }
}

/// Label of bucket `b` (`"0"`, `"1"`, `"2-3"`, …, `"64+"`).
pub fn degree_label(b: usize) -> String {
    match b {
        0 => "0".into(),
        1 => "1".into(),
        b if b == DEGREE_BUCKETS - 1 => format!("{}+", 1usize << (b - 1)),
        b => format!("{}-{}", 1usize << (b - 1), (1usize << b) - 1),
    }
}

/// In-degree of every node (edges `j → i` counted at `i`, as given, self-loops
/// and duplicates included).
pub fn in_degrees(g: &Graphs) -> Vec<usize> {
    let mut d = vec![0usize; g.num_nodes];
    for &t in &g.targets {
        if let Some(x) = d.get_mut(t as usize) {
            *x += 1;
        }
    }
    d
}

/// The debugger's measurement of one device op.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStat {
    /// Device op index.
    pub index: usize,
    /// Device op name (`linear`, `gcn_conv`, …).
    pub op: String,
    /// Spec ops fused into it, joined by ` + `.
    pub spec: String,
    /// Output rows.
    pub rows: usize,
    /// Error over all values (int8 model vs float).
    pub all: ErrStats,
    /// Error of the float tensor rounded to this op's int8 grid.
    pub own: ErrStats,
    /// Output quantization step (scale).
    pub step: f64,
    /// max − min of the float tensor.
    pub float_range: f64,
    /// Error per in-degree bucket (node-row ops only; empty otherwise).
    pub by_degree: Vec<ErrStats>,
    /// Own-grid error per in-degree bucket (like `by_degree`).
    pub own_by_degree: Vec<ErrStats>,
}

fn stats(
    index: usize,
    fop: &FOp,
    f: &Tensor,
    q: &RunOutput,
    deg: Option<&[usize]>,
) -> Result<LayerStat> {
    if f.rows != q.rows || f.channels != q.channels {
        bail!(
            "op {index} ('{}'): the float tensor is {}×{} but the int8 output is {}×{}",
            fop.name,
            f.rows,
            f.channels,
            q.rows,
            q.channels
        );
    }
    let mut all = ErrStats::default();
    let mut own = ErrStats::default();
    let node_rows = deg.filter(|d| d.len() == f.rows);
    let mut by = vec![
        ErrStats::default();
        if node_rows.is_some() {
            DEGREE_BUCKETS
        } else {
            0
        }
    ];
    let mut own_by = by.clone();
    for r in 0..f.rows {
        let row = f.row(r);
        let b = node_rows.map(|d| degree_bucket(d[r]));
        for (c, &v) in row.iter().enumerate() {
            let dq = q.dequantize(r, c);
            all.add(v, dq);
            let g = quantize_value(v, q.scale, q.zero_point);
            let odq = dequantize_value(g, q.scale, q.zero_point);
            own.add(v, odq);
            if let Some(b) = b {
                by[b].add(v, dq);
                own_by[b].add(v, odq);
            }
        }
    }
    let lo = f.data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = f.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok(LayerStat {
        index,
        op: fop.device_name().to_string(),
        spec: fop.merged.join(" + "),
        rows: f.rows,
        all,
        own,
        step: q.scale as f64,
        float_range: if f.data.is_empty() { 0.0 } else { hi - lo },
        by_degree: by,
        own_by_degree: own_by,
    })
}

/// Runs the int8 model on `g` (op by op) and compares every op's output with
/// `vals`, the float reference of `spec` on the same graphs. `by_degree` adds
/// the per-in-degree split for node-row ops. Also returns the int8 output.
pub fn layer_stats(
    spec: &Spec,
    model: &Model<'_>,
    g: &Graphs,
    vals: &Values,
    by_degree: bool,
) -> Result<(Vec<LayerStat>, RunOutput)> {
    let fused = fuse(spec)?;
    if fused.ops.len() != model.num_ops() {
        bail!(
            "--per-layer/--per-op: the model has {} ops but this spec fuses to {}; was it converted from another spec?",
            model.num_ops(),
            fused.ops.len()
        );
    }
    let mut traced = Vec::new();
    let out = rt::run_traced(model, g, |i, o| traced.push((i, o.clone())))?;
    let deg = by_degree.then(|| in_degrees(g));
    let mut v = Vec::new();
    for (i, o) in &traced {
        let fop = &fused.ops[*i];
        let Some(f) = vals.get(&fop.name) else {
            bail!("--per-layer: no float tensor '{}' for op {i}", fop.name);
        };
        v.push(stats(*i, fop, f, o, deg.as_deref())?);
    }
    Ok((v, out))
}

/// A finite number, or JSON `null`.
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The op whose own-grid SQNR (`own_sqnr_db`) is lowest (NaN counts as
/// lowest), if any.
pub fn worst(layers: &[LayerStat]) -> Option<usize> {
    let key = |l: &LayerStat| {
        let s = l.own.sqnr_db();
        if s.is_nan() {
            f64::NEG_INFINITY
        } else {
            s
        }
    };
    (0..layers.len()).min_by(|&a, &b| key(&layers[a]).total_cmp(&key(&layers[b])))
}

/// JSON list of the ops (`sqnr_db` is `null` when the int8 output is exact).
pub fn to_json(layers: &[LayerStat]) -> Value {
    let w = worst(layers);
    Value::Array(
        layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let mut o = json!({
                    "index": l.index, "op": l.op, "spec": l.spec, "rows": l.rows,
                    "sqnr_db": num(l.all.sqnr_db()), "own_sqnr_db": num(l.own.sqnr_db()),
                    "max_abs_err": l.all.max_abs_err,
                    "mean_abs_err": l.all.mean_abs_err(), "step": l.step,
                    "float_range": l.float_range, "err_in_steps": l.all.max_abs_err / l.step,
                    "worst": Some(k) == w,
                });
                if !l.by_degree.is_empty() {
                    o["by_degree"] = l
                        .by_degree
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.count > 0)
                        .map(|(b, s)| {
                            let o = l.own_by_degree[b];
                            json!({
                                "in_degree": degree_label(b), "values": s.count,
                                "sqnr_db": num(s.sqnr_db()), "own_sqnr_db": num(o.sqnr_db()),
                                "max_abs_err": s.max_abs_err, "mean_abs_err": s.mean_abs_err(),
                                "rms_value": s.signal_rms(),
                            })
                        })
                        .collect();
                }
                o
            })
            .collect(),
    )
}

fn db(x: f64) -> String {
    if x.is_infinite() {
        "exact".into()
    } else {
        format!("{x:.2}")
    }
}

/// The table printed by `verify --per-layer` (and the by-degree table when
/// the stats have it).
pub fn table(layers: &[LayerStat]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  #  op             {:<32} {:>8} {:>8} {:>10} {:>10} {:>10} {:>7} {:>10}",
        "spec ops", "SQNR dB", "own dB", "max err", "mean err", "step", "steps", "range"
    );
    let w = worst(layers);
    for (k, l) in layers.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>2} {:<14} {:<32} {:>8} {:>8} {:>10.6} {:>10.6} {:>10.6} {:>7.2} {:>10.4}{}",
            l.index,
            l.op,
            l.spec,
            db(l.all.sqnr_db()),
            db(l.own.sqnr_db()),
            l.all.max_abs_err,
            l.all.mean_abs_err(),
            l.step,
            l.all.max_abs_err / l.step,
            l.float_range,
            if Some(k) == w {
                "  ← lowest own SQNR"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "SQNR: int8 model vs float (accumulates over earlier ops); own: float rounded to this op's int8 grid (its range alone)"
    );
    if layers.iter().any(|l| !l.by_degree.is_empty()) {
        let used: Vec<usize> = (0..DEGREE_BUCKETS)
            .filter(|&b| {
                layers
                    .iter()
                    .any(|l| l.by_degree.get(b).is_some_and(|s| s.count > 0))
            })
            .collect();
        let _ = writeln!(
            s,
            "SQNR dB by in-degree, int8 model / own grid (node-row ops; in-degree:nodes in the header):"
        );
        let _ = write!(s, "  #  op            ");
        let nodes = layers.iter().find(|l| !l.by_degree.is_empty());
        for &b in &used {
            let n = nodes.map_or(0, |l| {
                l.by_degree[b].count / (l.all.count / l.rows.max(1)).max(1)
            });
            let _ = write!(s, " {:>13}", format!("{}:{n}", degree_label(b)));
        }
        let _ = writeln!(s);
        for l in layers.iter().filter(|l| !l.by_degree.is_empty()) {
            let _ = write!(s, "  {:>2} {:<14}", l.index, l.op);
            for &b in &used {
                let (st, o) = (l.by_degree[b], l.own_by_degree[b]);
                let _ = write!(
                    s,
                    " {:>13}",
                    if st.count == 0 {
                        "-".into()
                    } else {
                        format!("{}/{}", db1(st.sqnr_db()), db1(o.sqnr_db()))
                    }
                );
            }
            let _ = writeln!(s);
        }
    }
    s
}

fn db1(x: f64) -> String {
    if x.is_infinite() {
        "exact".into()
    } else {
        format!("{x:.1}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG bar chart of every op's SQNR: one `<rect class="bar">` per op for
/// the int8 model vs float, and one `<path class="own">` marker per op for
/// its own-grid SQNR. The op flagged by [`worst`] has class `bar worst` and
/// is drawn in red. Exact outputs (`+∞` dB) are drawn to the top of the axis
/// and labelled `exact`.
pub fn svg(layers: &[LayerStat], title: &str) -> String {
    let n = layers.len().max(1);
    let (bar_w, gap) = (34.0, 14.0);
    let (left, right, top, bottom) = (130.0, 24.0, 100.0, 150.0);
    let plot_h = 260.0;
    let width = (left + right + n as f64 * (bar_w + gap)).max(560.0);
    let height = top + plot_h + bottom;
    let finite: Vec<f64> = layers
        .iter()
        .flat_map(|l| [l.all.sqnr_db(), l.own.sqnr_db()])
        .filter(|x| x.is_finite())
        .collect();
    let ymax = (finite.iter().copied().fold(10.0, f64::max) / 10.0).ceil() * 10.0;
    let ymin = (finite.iter().copied().fold(0.0, f64::min) / 10.0).floor() * 10.0;
    let y = |v: f64| top + plot_h * (ymax - v.clamp(ymin, ymax)) / (ymax - ymin);
    let w = worst(layers);
    let (blue, red) = ("#4a78b5", "#c62828");
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="32" width="12" height="12" fill="{blue}"/><text x="{:.0}" y="42">int8 model vs float (errors accumulate)</text><path d="M{:.0} 53 l6 5 l-6 5 l-6 -5 z" fill="black"/><text x="{:.0}" y="62">own: float rounded to the op's own int8 grid (its range alone)</text>"##,
        left + 18.0,
        left + 6.0,
        left + 18.0
    );
    if let Some(k) = w {
        let l = &layers[k];
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="82" fill="{red}" font-weight="bold">worst own SQNR (red): op {} ({}), {} dB</text>"##,
            l.index,
            esc(&short(&l.spec)),
            db(l.own.sqnr_db())
        );
    }
    // Axis and grid.
    let step = if ymax - ymin > 100.0 { 20.0 } else { 10.0 };
    let mut t = ymin;
    while t <= ymax + 1e-9 {
        let yy = y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{t:.0}</text>"##,
            width - right,
            left - 6.0,
            yy + 4.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate({:.1} {:.1}) rotate(-90)" text-anchor="middle">SQNR (dB), higher is better</text>"#,
        left - 40.0,
        top + plot_h / 2.0
    );
    let base = y(0.0);
    let ypos = |v: f64| {
        if v.is_infinite() && v > 0.0 {
            y(ymax)
        } else if v.is_finite() {
            y(v)
        } else {
            y(0.0)
        }
    };
    for (k, l) in layers.iter().enumerate() {
        let v = l.all.sqnr_db();
        let x = left + gap / 2.0 + k as f64 * (bar_w + gap);
        let top_y = ypos(v);
        let (y0, h) = if top_y <= base {
            (top_y, base - top_y)
        } else {
            (base, top_y - base)
        };
        let worst = Some(k) == w;
        let colour = if worst { red } else { blue };
        let _ = writeln!(
            s,
            r#"<rect class="{}" data-op="{}" x="{x:.1}" y="{y0:.1}" width="{bar_w}" height="{h:.1}" fill="{colour}"><title>op {} {} ({}): {} dB, own {} dB</title></rect>"#,
            if worst { "bar worst" } else { "bar" },
            l.index,
            l.index,
            esc(&l.op),
            esc(&l.spec),
            db(v),
            db(l.own.sqnr_db())
        );
        let oy = ypos(l.own.sqnr_db());
        let cx = x + bar_w / 2.0;
        let _ = writeln!(
            s,
            r#"<path class="own" data-op="{}" d="M{cx:.1} {:.1} l7 6 l-7 6 l-7 -6 z" fill="black" stroke="white"/>"#,
            l.index,
            oy - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
            y0.min(oy - 6.0) - 4.0,
            if v.is_nan() {
                "n/a".into()
            } else if v.is_infinite() {
                "exact".into()
            } else {
                format!("{v:.1}")
            }
        );
        let ly = top + plot_h + 14.0;
        let _ = writeln!(
            s,
            r#"<text transform="translate({cx:.1} {ly:.1}) rotate(-40)" text-anchor="end" font-size="11"{}>{} {}</text>"#,
            if worst {
                r##" fill="#c62828" font-weight="bold""##
            } else {
                ""
            },
            l.index,
            esc(&short(&l.spec))
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#333"/>"##,
        width - right
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// Shortens a fused spec-op list for an axis label.
fn short(spec: &str) -> String {
    if spec.chars().count() <= 22 {
        spec.to_string()
    } else {
        let mut t: String = spec.chars().take(21).collect();
        t.push('…');
        t
    }
}

/// The weight precision of every device op with weights, as `(op index, bits)`
/// in op order (GAT counts its projection weights; ops without weights are left out).
pub fn weight_bits(model: &Model<'_>) -> Vec<(usize, tinygnn::format::WeightBits)> {
    use tinygnn::format::Op;
    model
        .ops()
        .enumerate()
        .filter_map(|(i, op)| match &op {
            Op::Linear(ops::Linear { weights, .. }) | Op::GcnConv(ops::GcnConv { weights, .. }) => {
                Some((i, weights.weight_bits()))
            }
            Op::SageConv(ops::SageConv { weights_l, .. }) => Some((i, weights_l.weight_bits())),
            Op::GatConv(ops::GatConv { weights, .. }) => Some((i, weights.weight_bits())),
            _ => None,
        })
        .collect()
}

/// The model's weight precision from [`weight_bits`]: `int8` or `int4` when
/// every layer has it, `int8/int4` when mixed (`int8` without weights).
pub fn precision_label(bits: &[(usize, tinygnn::format::WeightBits)]) -> &'static str {
    use tinygnn::format::WeightBits;
    let has = |b: WeightBits| bits.iter().any(|(_, x)| *x == b);
    match (
        has(WeightBits::I8),
        has(WeightBits::I4),
        has(WeightBits::I2),
    ) {
        (true, true, false) => "int8/int4",
        (false, true, false) => "int4",
        (false, false, true) => "int2",
        (_, _, true) => "mixed",
        _ => "int8",
    }
}
