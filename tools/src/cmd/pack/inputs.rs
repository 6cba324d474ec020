//! `tinygnn pack inputs`: GRAPHS.safetensors (interchange format,
//! docs/interchange.md) → an input bundle (`.tgib`, `boards/app/src/bundle.rs`).
//!
//! Reads `x` [N,F] f32, `edge_index` [2,E] i64, optional `edge_weight` [E]
//! f32, `edge_attr` [E,D] f32, `batch` [N] i64, `y` [N] or [G] i64,
//! `edge_label_index` [2,P] and `*_mask` [N] bool/u8. Without `--split` the
//! whole file is one sample (one inference over the batch); with it, one
//! sample per graph of `batch`. Labels of rows outside the mask are written
//! as −1 (not scored). `--quantize` stores int8 features, quantized exactly
//! as the runtime would (`tinygnn::graph::quantize_value` with the model's
//! input scale and zero point): 4× less flash, same outputs. `--sparse`
//! (with `--quantize`) stores those int8 features in CSR form, only the
//! entries that differ from the input zero point (bag-of-words features such
//! as Cora's: ~1 % of 2708×1433), same outputs.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use tinygnn_board_app::bundle::writer::{write, OwnedSample};

use crate::fsio;

/// Arguments of `pack inputs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Graphs in the interchange format (GRAPHS.safetensors).
    pub graphs: PathBuf,
    /// Output bundle (.tgib).
    pub output: PathBuf,
    /// One sample per graph of `batch` (default: the whole file is one sample).
    #[arg(long)]
    pub split: bool,
    /// Labels scored: `NAME` uses the tensor `NAME_mask` (all rows when the file has none); `all`: every row.
    #[arg(long, default_value = "test")]
    pub mask: String,
    /// At most N samples (with --split).
    #[arg(long)]
    pub max: Option<usize>,
    /// Store int8 features quantized with this model's input scale and zero point.
    #[arg(long, value_name = "MODEL.tgnn")]
    pub quantize: Option<PathBuf>,
    /// Store the int8 features sparse (CSR, entries ≠ the input zero point); needs --quantize.
    #[arg(long, requires = "quantize")]
    pub sparse: bool,
}

/// The tensors of a graphs file, in the bundle's terms.
struct GraphFile {
    n: usize,
    f: usize,
    x: Vec<f32>,
    src: Vec<i64>,
    dst: Vec<i64>,
    edge_weight: Option<Vec<f32>>,
    /// Edge feature channels and `[E, D]` values.
    edge_attr: Option<(usize, Vec<f32>)>,
    batch: Vec<i64>,
    /// Number of graphs.
    g: usize,
    y: Option<Vec<i64>>,
    pairs: Option<Vec<i64>>,
    /// `hyperedge_index` (row 0 then row 1) and `hyperedge_weight`.
    hyperedges: Option<(Vec<i64>, Option<Vec<f32>>)>,
    /// Rows whose labels are scored.
    keep: Vec<bool>,
}

fn ints(t: &TensorView<'_>) -> Result<Vec<i64>> {
    let d = t.data();
    match t.dtype() {
        Dtype::I64 => Ok(d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()),
        Dtype::I32 => Ok(d
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect()),
        Dtype::U8 | Dtype::BOOL => Ok(d.iter().map(|&b| i64::from(b)).collect()),
        other => bail!("expected an integer tensor, got {other:?}"),
    }
}

fn floats(t: &TensorView<'_>) -> Result<Vec<f32>> {
    match t.dtype() {
        Dtype::F32 => Ok(t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect()),
        other => bail!("expected an F32 tensor, got {other:?}"),
    }
}

impl GraphFile {
    fn read(st: &SafeTensors<'_>, mask: &str) -> Result<Self> {
        let get = |name: &str| st.tensor(name).ok();
        let xt = get("x").ok_or_else(|| anyhow!("no tensor `x`"))?;
        let [n, f] = xt.shape()[..] else {
            bail!("`x` must be [N, F]");
        };
        let hyperedges = match get("hyperedge_index") {
            Some(t) => Some((
                ints(&t)?,
                get("hyperedge_weight").map(|t| floats(&t)).transpose()?,
            )),
            None => None,
        };
        // A hypergraph may come without an ordinary edge list.
        let ei = match get("edge_index") {
            Some(t) => ints(&t)?,
            None if hyperedges.is_some() => Vec::new(),
            None => bail!("no tensor `edge_index`"),
        };
        let e = ei.len() / 2;
        let edge_attr = match get("edge_attr") {
            Some(t) => {
                let d = match t.shape() {
                    [en, d] if *en == e && *d > 0 => *d,
                    [en] if *en == e => 1,
                    _ => bail!("`edge_attr` must be [E, D]"),
                };
                Some((d, floats(&t)?))
            }
            None => None,
        };
        let batch = match get("batch") {
            Some(t) => ints(&t)?,
            None => vec![0; n],
        };
        if batch.len() != n || batch.windows(2).any(|w| w[1] < w[0]) || batch.iter().any(|&b| b < 0)
        {
            bail!("`batch` must have N sorted, non-negative entries");
        }
        let keep: Vec<bool> = match get(&format!("{mask}_mask")) {
            Some(t) if mask != "all" => ints(&t)?.into_iter().map(|v| v != 0).collect(),
            _ => vec![true; n],
        };
        if keep.len() != n {
            bail!("`{mask}_mask` must have N = {n} entries");
        }
        let edge_weight = get("edge_weight").map(|t| floats(&t)).transpose()?;
        if edge_weight.as_ref().is_some_and(|w| w.len() != e) {
            bail!("`edge_weight` must have E = {e} entries");
        }
        Ok(GraphFile {
            n,
            f,
            x: floats(&xt)?,
            src: ei[..e].to_vec(),
            dst: ei[e..].to_vec(),
            edge_weight,
            edge_attr,
            g: batch.last().map_or(1, |&b| b as usize + 1),
            batch,
            y: get("y").map(|t| ints(&t)).transpose()?,
            pairs: get("edge_label_index").map(|t| ints(&t)).transpose()?,
            hyperedges,
            keep,
        })
    }

    /// First node of each graph, and the node count at the end.
    fn starts(&self) -> Vec<usize> {
        let mut starts = vec![0usize; self.g + 1];
        for &b in &self.batch {
            starts[b as usize + 1] += 1;
        }
        for i in 0..self.g {
            starts[i + 1] += starts[i];
        }
        starts
    }

    /// The incidences of nodes `n0..n1`, node ids from `n0` and hyperedge ids
    /// from the smallest one among them (hyperedge ids batched per graph, as
    /// `tinygnn.save_graphs` writes them), with those hyperedges' weights.
    fn hyper_sample(
        &self,
        (idx, w): &(Vec<i64>, Option<Vec<f32>>),
        (n0, n1): (usize, usize),
    ) -> Result<tinygnn_board_app::bundle::writer::OwnedHyperedges> {
        let (nodes, edges) = idx.split_at(idx.len() / 2);
        let keep: Vec<usize> = (0..nodes.len())
            .filter(|&k| usize::try_from(nodes[k]).is_ok_and(|v| (n0..n1).contains(&v)))
            .collect();
        let e0 = keep.iter().map(|&k| edges[k]).min().unwrap_or(0).max(0);
        let id = |v: i64| u16::try_from(v).map_err(|_| anyhow!("hyperedge index out of u16 range"));
        let ns = keep
            .iter()
            .map(|&k| id(nodes[k] - n0 as i64))
            .collect::<Result<Vec<_>>>()?;
        let es = keep
            .iter()
            .map(|&k| id(edges[k] - e0))
            .collect::<Result<Vec<_>>>()?;
        let m = es.iter().map(|&e| usize::from(e) + 1).max().unwrap_or(0);
        let w = match w {
            Some(w) if m > 0 => {
                let e0 = e0 as usize;
                let part = w.get(e0..e0 + m).ok_or_else(|| {
                    anyhow!("`hyperedge_weight` has fewer entries than hyperedges")
                })?;
                Some(part.to_vec())
            }
            _ => None,
        };
        Ok((ns, es, w))
    }

    /// The sample of graphs `g0..g1`, nodes `n0..n1`, with f32 features.
    fn sample(&self, (g0, g1): (usize, usize), (n0, n1): (usize, usize)) -> Result<OwnedSample> {
        let f = self.f;
        let mut s = OwnedSample {
            nodes: u16::try_from(n1 - n0)
                .map_err(|_| anyhow!("more than 65535 nodes in a sample"))?,
            graphs: u16::try_from(g1 - g0).map_err(|_| anyhow!("too many graphs"))?,
            channels: u16::try_from(f).map_err(|_| anyhow!("too many channels"))?,
            features_f32: self.x[n0 * f..n1 * f].to_vec(),
            ..Default::default()
        };
        let (mut w, mut attr) = (Vec::new(), Vec::new());
        for k in 0..self.src.len() {
            let (a, b) = (self.src[k] as usize, self.dst[k] as usize);
            if (n0..n1).contains(&a) && (n0..n1).contains(&b) {
                s.sources.push((a - n0) as u16);
                s.targets.push((b - n0) as u16);
                if let Some(ew) = &self.edge_weight {
                    w.push(ew[k]);
                }
                if let Some((d, a)) = &self.edge_attr {
                    attr.extend_from_slice(&a[k * d..(k + 1) * d]);
                }
            }
        }
        s.edge_weight = self.edge_weight.as_ref().map(|_| w);
        s.edge_attr = self.edge_attr.as_ref().map(|(d, _)| (*d as u32, attr));
        if g1 - g0 > 1 {
            let b = self.batch[n0..n1].iter().map(|&b| (b as usize - g0) as u16);
            s.batch = Some(b.collect());
        }
        if let Some(y) = &self.y {
            if y.len() == self.n {
                let l = (n0..n1).map(|i| if self.keep[i] { y[i] as i16 } else { -1 });
                s.labels = Some((false, l.collect()));
            } else if y.len() == self.g {
                s.labels = Some((true, (g0..g1).map(|i| y[i] as i16).collect()));
            }
        }
        if let Some(p) = &self.pairs {
            let idx =
                |v: &i64| u16::try_from(*v).map_err(|_| anyhow!("pair index out of u16 range"));
            let (a, b) = p.split_at(p.len() / 2);
            let a = a.iter().map(idx).collect::<Result<Vec<_>>>()?;
            let b = b.iter().map(idx).collect::<Result<Vec<_>>>()?;
            s.pairs = Some((a, b));
        }
        if let Some(h) = &self.hyperedges {
            s.hyperedges = Some(self.hyper_sample(h, (n0, n1))?);
        }
        Ok(s)
    }
}

/// Row-major int8 features `[rows, f]` as CSR (`row_ptr`, `cols`, `values`),
/// keeping only the entries that differ from the zero point `zp`.
fn to_csr(q: &[i8], f: usize, zp: i8) -> Result<(Vec<u32>, Vec<u16>, Vec<i8>)> {
    if f == 0 || f > usize::from(u16::MAX) + 1 {
        bail!("sparse features need 1..=65536 channels");
    }
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
    for row in q.chunks(f) {
        for (c, &v) in row.iter().enumerate() {
            if v != zp {
                cols.push(c as u16);
                values.push(v);
            }
        }
        row_ptr.push(u32::try_from(cols.len()).map_err(|_| anyhow!("too many non-zero features"))?);
    }
    Ok((row_ptr, cols, values))
}

/// Replaces the f32 features by int8 ones (dense or sparse).
fn quantize(s: &mut OwnedSample, (scale, zp, i4): (f32, i8, bool), sparse: bool) -> Result<()> {
    // An int4 input: its values saturated to −8..=7 (`tinygnn::graph::quantize_input`).
    let (lo, hi) = if i4 { (-8, 7) } else { (-128, 127) };
    let q: Vec<i8> = s
        .features_f32
        .iter()
        .map(|&v| tinygnn::graph::quantize_value(v, scale, zp).clamp(lo, hi))
        .collect();
    s.features_f32.clear();
    if sparse {
        s.features_sparse = Some(to_csr(&q, usize::from(s.channels), zp)?);
    } else {
        s.features_i8 = Some(q);
    }
    Ok(())
}

/// Runs `pack inputs`.
pub fn run(a: &Args) -> Result<()> {
    let mut inputs = vec![a.graphs.as_path()];
    inputs.extend(a.quantize.as_deref());
    fsio::check_outputs(&[&a.output], &inputs)?;
    let quant = match &a.quantize {
        Some(path) => {
            let m = super::read_aligned(path)?;
            let model = tinygnn::Model::from_bytes(m.bytes())
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let d = model.input_desc();
            Some((d.scale, d.zero_point, model.is_i4(model.input())))
        }
        None => None,
    };
    let bytes =
        std::fs::read(&a.graphs).with_context(|| format!("cannot read {}", a.graphs.display()))?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| a.graphs.display().to_string())?;
    let file = GraphFile::read(&st, &a.mask).with_context(|| a.graphs.display().to_string())?;
    if file.pairs.is_some() && a.split {
        bail!("`edge_label_index` (node pairs) cannot be split per graph");
    }
    let starts = file.starts();
    let groups: Vec<(usize, usize)> = if a.split {
        (0..file.g).map(|i| (i, i + 1)).collect()
    } else {
        vec![(0, file.g)]
    };
    let mut samples = Vec::new();
    for (g0, g1) in groups.into_iter().take(a.max.unwrap_or(usize::MAX)) {
        let mut s = file.sample((g0, g1), (starts[g0], starts[g1]))?;
        if let Some(q) = quant {
            quantize(&mut s, q, a.sparse)?;
        }
        samples.push(s);
    }
    let bundle = write(&samples).ok_or_else(|| anyhow!("inconsistent sample arrays"))?;
    fsio::write(&a.output, &bundle)?;
    errln!(
        "tinygnn pack: wrote {} ({} B, {} samples)",
        a.output.display(),
        bundle.len(),
        samples.len()
    );
    Ok(())
}
