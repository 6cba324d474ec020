//! safetensors input/output: the model interchange file (weights + spec JSON)
//! and the graphs file (see `docs/interchange.md`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

/// A dense array read from a safetensors file, converted to `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arr {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

fn floats(name: &str, v: &TensorView<'_>) -> Result<Vec<f64>> {
    let d = v.data();
    Ok(match v.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::I64 => ints(name, v)?.into_iter().map(|x| x as f64).collect(),
        Dtype::I32 => ints(name, v)?.into_iter().map(|x| x as f64).collect(),
        other => bail!("tensor '{name}': unsupported dtype {other:?} (expected F32 or F64)"),
    })
}

fn ints(name: &str, v: &TensorView<'_>) -> Result<Vec<i64>> {
    let d = v.data();
    Ok(match v.dtype() {
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
            .collect(),
        Dtype::U8 | Dtype::BOOL => d.iter().map(|&b| b as i64).collect(),
        other => bail!("tensor '{name}': unsupported dtype {other:?} (expected I64)"),
    })
}

/// The contents of a `MODEL.safetensors`: the spec JSON text and the float tensors.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The `tinygnn_spec` metadata value.
    pub spec_json: String,
    /// All tensors, by name.
    pub tensors: HashMap<String, Arr>,
}

/// Reads a `MODEL.safetensors`.
pub fn read_model_file(path: &Path) -> Result<ModelFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_model_bytes(&bytes)
        .with_context(|| format!("{}: not a valid tinygnn model file", path.display()))
}

/// Parses the bytes of a `MODEL.safetensors`.
pub fn parse_model_bytes(bytes: &[u8]) -> Result<ModelFile> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("safetensors: {e:?}"))?;
    let spec_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("tinygnn_spec"))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "metadata key 'tinygnn_spec' is missing (was the file written by tinygnn.export?)"
            )
        })?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("safetensors: {e:?}"))?;
    let mut tensors = HashMap::new();
    for (name, v) in st.tensors() {
        let data = floats(&name, &v)?;
        tensors.insert(
            name,
            Arr {
                shape: v.shape().to_vec(),
                data,
            },
        );
    }
    Ok(ModelFile { spec_json, tensors })
}

/// Largest node index the runtime accepts (indices are `u16`).
pub const MAX_NODE_INDEX: i64 = u16::MAX as i64;

/// A batch of graphs (PyG batch layout), validated for the runtime's `u16` indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Graphs {
    /// Number of nodes (all graphs together).
    pub num_nodes: usize,
    /// Feature channels.
    pub channels: usize,
    /// `[num_nodes × channels]` features.
    pub x: Vec<f32>,
    /// Edge sources.
    pub sources: Vec<u16>,
    /// Edge targets.
    pub targets: Vec<u16>,
    /// Optional edge weights.
    pub edge_weight: Option<Vec<f32>>,
    /// Optional edge features `[num_edges × edge_dim]` (PyG's `edge_attr`).
    pub edge_attr: Option<Vec<f32>>,
    /// Edge feature channels (0 without `edge_attr`).
    pub edge_dim: usize,
    /// Graph of every node (all zero without a batch vector).
    pub batch: Vec<u16>,
    /// Whether the file had a `batch` vector.
    pub has_batch: bool,
    /// Number of graphs (`max(batch) + 1`, at least 1).
    pub num_graphs: usize,
    /// Labels, if present.
    pub y: Option<Vec<i64>>,
    /// Test mask, if present.
    pub test_mask: Option<Vec<bool>>,
    /// Node pairs to score (`edge_label_index`, link prediction), if present.
    pub pairs: Option<Pairs>,
    /// The hypergraph incidence (`hyperedge_index`, `hyperedge_weight`), if present.
    pub hyperedges: Option<Hyperedges>,
}

/// A hypergraph incidence: PyG's `hyperedge_index` `[2, nnz]` (node →
/// hyperedge) and the optional `hyperedge_weight` `[M]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperedges {
    /// Node of each incidence.
    pub nodes: Vec<u16>,
    /// Hyperedge of each incidence.
    pub edges: Vec<u16>,
    /// One weight per hyperedge (at least `max(edges) + 1`), if given.
    pub weight: Option<Vec<f32>>,
}

impl Hyperedges {
    /// `M = max(edges) + 1` (0 without incidences).
    pub fn num_hyperedges(&self) -> usize {
        self.edges
            .iter()
            .map(|&e| e as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The weight of hyperedge `e` (1.0 without weights).
    pub fn weight_of(&self, e: usize) -> f64 {
        self.weight
            .as_ref()
            .map_or(1.0, |w| w.get(e).copied().unwrap_or(0.0) as f64)
    }
}

/// Node pairs of a link-prediction input: PyG's `edge_label_index` `[2, P]`
/// and, for metrics, `edge_label` `[P]` (1 = edge, 0 = non-edge).
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    /// First node of each pair.
    pub sources: Vec<u16>,
    /// Second node of each pair.
    pub targets: Vec<u16>,
    /// Labels, if present.
    pub label: Option<Vec<f32>>,
}

impl Graphs {
    /// Number of edges.
    pub fn num_edges(&self) -> usize {
        self.sources.len()
    }

    /// Number of hyperedge incidences (`hyperedge_index` columns; 0 without).
    pub fn num_incidences(&self) -> usize {
        self.hyperedges.as_ref().map_or(0, |h| h.nodes.len())
    }

    /// The file read as a **sequence** (`--sequence`, recurrent cells): its
    /// graphs, in `batch` order, are the steps `t = 0, 1, …` of one graph
    /// whose node features change over time. Every step must have the same
    /// node count and the same edges (sources, targets and edge weights, in
    /// the same order); a file without a batch vector is one step. Each
    /// step is returned as a graph of its own (node indices from 0).
    pub fn sequence_steps(&self) -> Result<Vec<Graphs>> {
        if self.pairs.is_some() || self.edge_attr.is_some() || self.hyperedges.is_some() {
            bail!("a sequence cannot carry node pairs, edge features or hyperedges (not supported for recurrent models)");
        }
        if !self.has_batch || self.num_graphs < 2 {
            let mut one = self.clone();
            one.has_batch = false;
            one.batch = vec![0; self.num_nodes];
            one.num_graphs = 1;
            return Ok(vec![one]);
        }
        let t = self.num_graphs;
        if self.batch.windows(2).any(|w| w[0] > w[1]) {
            bail!("sequence: the batch vector is not sorted, so the steps are not in order");
        }
        let mut first = vec![usize::MAX; t + 1];
        for (i, &b) in self.batch.iter().enumerate().rev() {
            first[b as usize] = i;
        }
        first[t] = self.num_nodes;
        let n = first[1].wrapping_sub(first[0]);
        for k in 0..t {
            if first[k] == usize::MAX || first[k + 1].wrapping_sub(first[k]) != n {
                bail!("sequence: step {k} does not have the {n} nodes of step 0 (every step is the same graph)");
            }
        }
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); t];
        for e in 0..self.num_edges() {
            let (s, d) = (self.sources[e] as usize, self.targets[e] as usize);
            if self.batch[s] != self.batch[d] {
                bail!(
                    "sequence: edge {e} joins steps {} and {}",
                    self.batch[s],
                    self.batch[d]
                );
            }
            edges[self.batch[s] as usize].push(e);
        }
        let mut out = Vec::with_capacity(t);
        for k in 0..t {
            let n0 = first[k];
            let es = &edges[k];
            let step = Graphs {
                num_nodes: n,
                channels: self.channels,
                x: self.x[n0 * self.channels..(n0 + n) * self.channels].to_vec(),
                sources: es.iter().map(|&e| self.sources[e] - n0 as u16).collect(),
                targets: es.iter().map(|&e| self.targets[e] - n0 as u16).collect(),
                edge_weight: self
                    .edge_weight
                    .as_ref()
                    .map(|w| es.iter().map(|&e| w[e]).collect()),
                edge_attr: None,
                edge_dim: 0,
                batch: vec![0; n],
                has_batch: false,
                num_graphs: 1,
                y: self
                    .y
                    .as_ref()
                    .and_then(|y| (y.len() == self.num_nodes).then(|| y[n0..n0 + n].to_vec())),
                test_mask: self
                    .test_mask
                    .as_ref()
                    .and_then(|m| (m.len() == self.num_nodes).then(|| m[n0..n0 + n].to_vec())),
                pairs: None,
                hyperedges: None,
            };
            if let Some(s0) = out.first() {
                let s0: &Graphs = s0;
                if s0.sources != step.sources
                    || s0.targets != step.targets
                    || s0.edge_weight != step.edge_weight
                {
                    bail!("sequence: step {k} has other edges than step 0 (the steps must share edge_index and edge_weight)");
                }
            }
            out.push(step);
        }
        Ok(out)
    }
}

/// Reads and validates a `GRAPHS.safetensors`.
pub fn read_graphs(path: &Path) -> Result<Graphs> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_graphs_bytes(&bytes).with_context(|| format!("{}: invalid graphs file", path.display()))
}

fn to_u16_index(what: &str, pos: String, v: i64, bound: usize) -> Result<u16> {
    if v < 0 {
        bail!("{what}{pos}: negative node index {v}");
    }
    if v > MAX_NODE_INDEX {
        bail!("{what}{pos}: node index {v} ≥ 65536; tinygnn node indices are u16 (graphs of at most 65535 nodes)");
    }
    if v as usize >= bound {
        bail!("{what}{pos}: index {v} is not below the {bound} nodes of x");
    }
    Ok(v as u16)
}

/// `edge_index` `[2, E]` as sources and targets (indices below `n`).
fn edge_index(st: &SafeTensors<'_>, n: usize) -> Result<(Vec<u16>, Vec<u16>)> {
    let ei = st
        .tensor("edge_index")
        .map_err(|_| anyhow!("tensor 'edge_index' is missing"))?;
    if ei.shape().len() != 2 || ei.shape()[0] != 2 {
        bail!(
            "tensor 'edge_index' has shape {:?}, expected [2, E]",
            ei.shape()
        );
    }
    let e = ei.shape()[1];
    let idx = ints("edge_index", &ei)?;
    let mut sources = Vec::with_capacity(e);
    let mut targets = Vec::with_capacity(e);
    for k in 0..e {
        sources.push(to_u16_index("edge_index", format!("[0, {k}]"), idx[k], n)?);
        targets.push(to_u16_index(
            "edge_index",
            format!("[1, {k}]"),
            idx[e + k],
            n,
        )?);
    }
    Ok((sources, targets))
}

/// `edge_weight` `[E]`, if present.
fn edge_weight(st: &SafeTensors<'_>, e: usize) -> Result<Option<Vec<f32>>> {
    Ok(match st.tensor("edge_weight") {
        Ok(v) => {
            let w: Vec<f32> = floats("edge_weight", &v)?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            if w.len() != e {
                bail!("edge_weight has {} values for {e} edges", w.len());
            }
            if let Some(i) = w.iter().position(|v| !v.is_finite()) {
                bail!("edge_weight[{i}] is {} (must be finite)", w[i]);
            }
            Some(w)
        }
        Err(_) => None,
    })
}

/// `edge_attr` `[E, D]` (or `[E]`, one channel) and `D`; `(None, 0)` if absent.
fn edge_attr(st: &SafeTensors<'_>, e: usize) -> Result<(Option<Vec<f32>>, usize)> {
    Ok(match st.tensor("edge_attr") {
        Ok(v) => {
            let d = match v.shape() {
                [en, d] if *en == e => *d,
                [en] if *en == e => 1,
                s => bail!("tensor 'edge_attr' has shape {s:?}, expected [E, D] with E = {e}"),
            };
            if d == 0 {
                bail!("tensor 'edge_attr' has 0 channels");
            }
            let a: Vec<f32> = floats("edge_attr", &v)?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            if let Some(i) = a.iter().position(|v| !v.is_finite()) {
                bail!(
                    "edge_attr[{}, {}] is {} (edge features must be finite)",
                    i / d,
                    i % d,
                    a[i]
                );
            }
            (Some(a), d)
        }
        Err(_) => (None, 0),
    })
}

/// The `batch` vector (all zero if absent) and whether it was present.
fn batch(st: &SafeTensors<'_>, n: usize) -> Result<(Vec<u16>, bool)> {
    Ok(match st.tensor("batch") {
        Ok(v) => {
            let b = ints("batch", &v)?;
            if b.len() != n {
                bail!("batch has {} entries for {n} nodes", b.len());
            }
            let mut out = Vec::with_capacity(n);
            for (i, &g) in b.iter().enumerate() {
                if !(0..=MAX_NODE_INDEX).contains(&g) {
                    bail!("batch[{i}] = {g} is outside 0..65536 (graph ids are u16)");
                }
                out.push(g as u16);
            }
            (out, true)
        }
        Err(_) => (vec![0; n], false),
    })
}

/// `edge_label_index` `[2, P]` with its optional `edge_label` `[P]`.
fn pairs(st: &SafeTensors<'_>, n: usize) -> Result<Option<Pairs>> {
    Ok(match st.tensor("edge_label_index") {
        Ok(v) => {
            if v.shape().len() != 2 || v.shape()[0] != 2 {
                bail!(
                    "tensor 'edge_label_index' has shape {:?}, expected [2, P]",
                    v.shape()
                );
            }
            let p = v.shape()[1];
            let idx = ints("edge_label_index", &v)?;
            let mut ps = Vec::with_capacity(p);
            let mut pt = Vec::with_capacity(p);
            for k in 0..p {
                ps.push(to_u16_index(
                    "edge_label_index",
                    format!("[0, {k}]"),
                    idx[k],
                    n,
                )?);
                pt.push(to_u16_index(
                    "edge_label_index",
                    format!("[1, {k}]"),
                    idx[p + k],
                    n,
                )?);
            }
            let label = match st.tensor("edge_label") {
                Ok(l) => {
                    let l: Vec<f32> = floats("edge_label", &l)?
                        .into_iter()
                        .map(|v| v as f32)
                        .collect();
                    if l.len() != p {
                        bail!("edge_label has {} values for {p} pairs", l.len());
                    }
                    if let Some(i) = l.iter().position(|v| !v.is_finite()) {
                        bail!("edge_label[{i}] is {} (must be finite)", l[i]);
                    }
                    Some(l)
                }
                Err(_) => None,
            };
            Some(Pairs {
                sources: ps,
                targets: pt,
                label,
            })
        }
        Err(_) => {
            if st.tensor("edge_label").is_ok() {
                bail!("edge_label is given without edge_label_index");
            }
            None
        }
    })
}

/// `hyperedge_index` `[2, nnz]` with its optional `hyperedge_weight` `[M]`
/// (at least `M = max hyperedge id + 1` entries, each finite and ≥ 0).
fn hyperedges(st: &SafeTensors<'_>, n: usize) -> Result<Option<Hyperedges>> {
    let hi = match st.tensor("hyperedge_index") {
        Ok(v) => v,
        Err(_) => {
            if st.tensor("hyperedge_weight").is_ok() {
                bail!("hyperedge_weight is given without hyperedge_index");
            }
            return Ok(None);
        }
    };
    if hi.shape().len() != 2 || hi.shape()[0] != 2 {
        bail!(
            "tensor 'hyperedge_index' has shape {:?}, expected [2, nnz]",
            hi.shape()
        );
    }
    let nnz = hi.shape()[1];
    let idx = ints("hyperedge_index", &hi)?;
    let mut nodes = Vec::with_capacity(nnz);
    let mut edges = Vec::with_capacity(nnz);
    for k in 0..nnz {
        nodes.push(to_u16_index(
            "hyperedge_index",
            format!("[0, {k}]"),
            idx[k],
            n,
        )?);
        let e = idx[nnz + k];
        if !(0..=MAX_NODE_INDEX).contains(&e) {
            bail!("hyperedge_index[1, {k}]: hyperedge id {e} is not in 0..=65535 (ids are u16)");
        }
        edges.push(e as u16);
    }
    let h = Hyperedges {
        nodes,
        edges,
        weight: None,
    };
    let m = h.num_hyperedges();
    let weight = match st.tensor("hyperedge_weight") {
        Ok(v) => {
            let w: Vec<f32> = floats("hyperedge_weight", &v)?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            if v.shape().len() != 1 || w.len() < m {
                bail!(
                    "tensor 'hyperedge_weight' has shape {:?}, expected [M] with M ≥ {m} (one weight per hyperedge)",
                    v.shape()
                );
            }
            if let Some(i) = w
                .iter()
                .position(|v| tinygnn::graph::edge_weight_q16(*v).is_none())
            {
                bail!(
                    "hyperedge_weight[{i}] is {} (hyperedge weights must be finite, ≥ 0 and < 65535.5)",
                    w[i]
                );
            }
            Some(w)
        }
        Err(_) => None,
    };
    Ok(Some(Hyperedges { weight, ..h }))
}

/// `y` (one label per node, or per graph) and `test_mask` (one entry per
/// node), if present.
fn labels(st: &SafeTensors<'_>, n: usize, graphs: usize) -> Result<LabelsAndMask> {
    let y = match st.tensor("y") {
        Ok(v) => {
            let y = ints("y", &v)?;
            if y.len() != n && y.len() != graphs {
                bail!(
                    "y has {} labels for {n} nodes in {graphs} graphs (expected one label per node or one per graph)",
                    y.len()
                );
            }
            Some(y)
        }
        Err(_) => None,
    };
    let test_mask = match st.tensor("test_mask") {
        Ok(v) => {
            let m: Vec<bool> = ints("test_mask", &v)?.into_iter().map(|b| b != 0).collect();
            if m.len() != n {
                bail!(
                    "test_mask has {} entries for {n} nodes (expected one per node)",
                    m.len()
                );
            }
            Some(m)
        }
        Err(_) => None,
    };
    Ok((y, test_mask))
}

/// Labels and test mask of a graphs file.
type LabelsAndMask = (Option<Vec<i64>>, Option<Vec<bool>>);

/// Parses the bytes of a `GRAPHS.safetensors`.
pub fn parse_graphs_bytes(bytes: &[u8]) -> Result<Graphs> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("safetensors: {e:?}"))?;
    let xv = st
        .tensor("x")
        .map_err(|_| anyhow!("tensor 'x' (node features) is missing"))?;
    if xv.shape().len() != 2 {
        bail!("tensor 'x' has shape {:?}, expected [N, F]", xv.shape());
    }
    let (n, f) = (xv.shape()[0], xv.shape()[1]);
    if n > MAX_NODE_INDEX as usize {
        bail!("x has {n} nodes; tinygnn node indices are u16 (at most 65535 nodes per input)");
    }
    let x: Vec<f32> = floats("x", &xv)?.into_iter().map(|v| v as f32).collect();
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        bail!(
            "x[{}, {}] is {} (features must be finite)",
            i / f.max(1),
            i % f.max(1),
            x[i]
        );
    }
    let hyperedges = hyperedges(&st, n)?;
    // A hypergraph may come without an ordinary edge list.
    let (sources, targets) = if hyperedges.is_some() && st.tensor("edge_index").is_err() {
        (Vec::new(), Vec::new())
    } else {
        edge_index(&st, n)?
    };
    let e = sources.len();
    let edge_weight = edge_weight(&st, e)?;
    let (edge_attr, edge_dim) = edge_attr(&st, e)?;
    let (batch, has_batch) = batch(&st, n)?;
    let num_graphs = batch.iter().map(|&b| b as usize + 1).max().unwrap_or(1);
    let (y, test_mask) = labels(&st, n, num_graphs)?;
    let pairs = pairs(&st, n)?;
    Ok(Graphs {
        num_nodes: n,
        channels: f,
        x,
        sources,
        targets,
        edge_weight,
        edge_attr,
        edge_dim,
        batch,
        has_batch,
        num_graphs,
        y,
        test_mask,
        pairs,
        hyperedges,
    })
}

/// Serializes f32 tensors (name, shape, values) and i64 tensors into safetensors
/// bytes with optional metadata. Used by tests and by tools that build inputs.
pub fn write_safetensors(
    f32s: &[(&str, Vec<usize>, Vec<f32>)],
    i64s: &[(&str, Vec<usize>, Vec<i64>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, v) in f32s {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((name.to_string(), Dtype::F32, shape.clone(), bytes));
    }
    for (name, shape, v) in i64s {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((name.to_string(), Dtype::I64, shape.clone(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = bufs
        .iter()
        .map(|(n, d, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(*d, s.clone(), b).map_err(|e| anyhow!("{e:?}"))?,
            ))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, &metadata).map_err(|e| anyhow!("safetensors: {e:?}"))
}
