//! The one place the host tool calls the runtime's execution engine
//! (`tinygnn::Session`): arena sizing and host simulation.

use anyhow::{anyhow, bail, Result};
use tinygnn::graph::{EdgeAttr, Features, GraphInput};
use tinygnn::{Model, Output, Session};

use crate::st::Graphs;

/// Whether this build can execute models (the runtime has `Session`).
pub const AVAILABLE: bool = true;

/// The int8 output of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// Row-major int8 values.
    pub data: Vec<i8>,
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Output scale.
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i8,
}

impl RunOutput {
    /// Dequantized value.
    pub fn dequantize(&self, r: usize, c: usize) -> f64 {
        self.scale as f64
            * (self.data[r * self.channels + c] as i32 - self.zero_point as i32) as f64
    }

    /// Index of the largest value of row `r` (first on ties).
    pub fn argmax(&self, r: usize) -> usize {
        let row = &self.data[r * self.channels..(r + 1) * self.channels];
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = i;
            }
        }
        best
    }
}

/// Arena bytes needed for `nodes`, `edges`, `graphs` (8-aligned arena).
pub fn arena_bytes(model: &Model<'_>, nodes: usize, edges: usize, graphs: usize) -> Option<usize> {
    Some(model.arena_bytes(nodes, edges, graphs))
}

/// Arena bytes needed for sparse int8 features ([`Model::arena_bytes_sparse`]).
pub fn arena_bytes_sparse(
    model: &Model<'_>,
    nodes: usize,
    edges: usize,
    graphs: usize,
) -> Option<usize> {
    Some(model.arena_bytes_sparse(nodes, edges, graphs))
}

/// The features of `g` quantized with the model input's scale and zero point
/// (the runtime's own [`tinygnn::graph::quantize_value`]) and stored sparse:
/// CSR `(row_ptr, cols, values)` of the entries that differ from the zero point.
pub fn sparse_features(model: &Model<'_>, g: &Graphs) -> (Vec<u32>, Vec<u16>, Vec<i8>) {
    let d = model.input_desc();
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], Vec::new(), Vec::new());
    for row in g.x.chunks(g.channels.max(1)).take(g.num_nodes) {
        for (c, &x) in row.iter().enumerate() {
            let q = tinygnn::graph::quantize_input(model, x);
            if q != d.zero_point {
                cols.push(c as u16);
                values.push(q);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    (row_ptr, cols, values)
}

/// The runtime's view of the graphs' hyperedges, if any (for [`graph_input`]).
pub fn hyperedges(g: &Graphs) -> Option<tinygnn::Hyperedges<'_>> {
    g.hyperedges.as_ref().map(|h| tinygnn::Hyperedges {
        nodes: &h.nodes,
        edges: &h.edges,
        weight: h.weight.as_deref(),
    })
}

/// The runtime's view of the graphs; `hyper` is [`hyperedges`]`(g)`.
pub fn graph_input<'a>(
    g: &'a Graphs,
    hyper: &'a Option<tinygnn::Hyperedges<'a>>,
) -> GraphInput<'a> {
    let mut input = GraphInput::new(g.num_nodes, Features::F32(&g.x), &g.sources, &g.targets);
    input.edge_weight = g.edge_weight.as_deref();
    input.batch = g.has_batch.then_some(&g.batch[..]);
    input.edge_attr = g.edge_attr.as_deref().map(EdgeAttr::F32);
    input.pairs = g.pairs.as_ref().map(|p| tinygnn::NodePairs {
        sources: &p.sources,
        targets: &p.targets,
    });
    input.hyperedges = hyper.as_ref().copied();
    input
}

/// The values of an int4 tensor given as packed rows (`rows ×
/// ceil(channels / 2)` bytes), one int8 value each.
pub fn unpack(o: &Output<'_>) -> Vec<i8> {
    let rb = o.channels.div_ceil(2).max(1);
    let bytes: &[u8] = bytemuck::cast_slice(o.data);
    let mut out = vec![0i8; o.rows * o.channels];
    for (row, dst) in bytes
        .chunks_exact(rb)
        .zip(out.chunks_exact_mut(o.channels.max(1)))
    {
        tinygnn::kernels::act_i4::unpack_row(row, dst);
    }
    out
}

/// One run of the whole `g` (it must fit the model's capacity).
fn run_once(
    model: &Model<'_>,
    g: &Graphs,
    sparse: bool,
    arena_max: &mut usize,
    mut trace: impl FnMut(usize, RunOutput),
) -> Result<RunOutput> {
    let need = if model.has_pairs() {
        // Exact for this run's pairs (the runtime checks them; sparse input
        // is never smaller than the dense bound used here).
        let p = g.pairs.as_ref().map_or(0, |p| p.sources.len());
        model.arena_bytes_with_pairs(g.num_nodes, g.num_edges(), g.num_graphs, p)
    } else if sparse {
        model.arena_bytes_sparse(g.num_nodes, g.num_edges(), g.num_graphs)
    } else {
        model.arena_bytes(g.num_nodes, g.num_edges(), g.num_graphs)
    };
    *arena_max = (*arena_max).max(need);
    // +8: the arena need not start 8-aligned.
    let mut arena = vec![0u8; need.saturating_add(8)];
    let mut session = Session::new(model, &mut arena);
    let to_owned = |o: &Output<'_>| RunOutput {
        data: o.data.to_vec(),
        rows: o.rows,
        channels: o.channels,
        scale: o.scale,
        zero_point: o.zero_point,
    };
    let sparse_x = sparse.then(|| sparse_features(model, g));
    let hyper = hyperedges(g);
    let mut input = graph_input(g, &hyper);
    if let Some((row_ptr, cols, values)) = &sparse_x {
        input.features = Features::SparseI8 {
            row_ptr,
            cols,
            values,
        };
    }
    // int4 tensors are traced unpacked (their slots hold packed rows).
    let packed: Vec<bool> = model.ops().map(|op| model.is_i4(op.output())).collect();
    let out = session
        .run_inspect(&input, |i, o| {
            let mut r = to_owned(&o);
            if packed.get(i).copied().unwrap_or(false) {
                r.data = unpack(&o);
            }
            trace(i, r)
        })
        .map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(to_owned(&out))
}

/// Splits a PyG batch into consecutive runs of whole graphs that each fit the
/// model's capacity (what a device does when it gets one graph at a time).
/// Returns `[g]` unchanged when it fits. Needs a sorted `batch` vector and no
/// edge between graphs.
pub fn split_batches(model: &Model<'_>, g: &Graphs) -> Result<Vec<Graphs>> {
    let (max_n, max_e, max_g) = model.capacity();
    let (max_n, max_e, max_g) = (max_n as usize, max_e as usize, max_g as usize);
    if g.num_nodes <= max_n
        && g.num_edges() <= max_e
        && g.num_incidences() <= max_e
        && g.num_graphs <= max_g
    {
        return Ok(vec![g.clone()]);
    }
    if g.hyperedges.is_some() {
        bail!(
            "the graphs ({} nodes, {} edges) exceed the model's capacity ({max_n} nodes, {max_e} edges), and inputs with hyperedges are not split; reconvert with larger --max-nodes/--max-edges",
            g.num_nodes,
            g.num_edges()
        );
    }
    if g.pairs.is_some() {
        bail!(
            "the graphs ({} nodes, {} edges) exceed the model's capacity ({max_n} nodes, {max_e} edges), and inputs with node pairs are not split; reconvert with larger --max-nodes/--max-edges",
            g.num_nodes,
            g.num_edges()
        );
    }
    let over = format!(
        "the graphs ({} nodes, {} edges, {} graphs) exceed the model's capacity ({max_n} nodes, {max_e} edges, {max_g} graphs)",
        g.num_nodes,
        g.num_edges(),
        g.num_graphs
    );
    if !g.has_batch || g.num_graphs < 2 {
        bail!("{over}; reconvert with larger --max-nodes/--max-edges/--max-graphs");
    }
    if g.batch.windows(2).any(|w| w[0] > w[1]) {
        bail!("{over}, and the batch vector is not sorted, so it cannot be split into runs of whole graphs");
    }
    // Node range and edges of every graph.
    let ng = g.num_graphs;
    let mut first = vec![usize::MAX; ng + 1];
    for (i, &b) in g.batch.iter().enumerate().rev() {
        first[b as usize] = i;
    }
    first[ng] = g.num_nodes;
    for k in (0..ng).rev() {
        if first[k] == usize::MAX {
            first[k] = first[k + 1];
        }
    }
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); ng];
    for e in 0..g.num_edges() {
        let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
        if g.batch[s] != g.batch[t] {
            bail!(
                "{over}, and edge {e} joins graphs {} and {}, so it cannot be split",
                g.batch[s],
                g.batch[t]
            );
        }
        edges[g.batch[s] as usize].push(e);
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < ng {
        let mut end = start;
        let (mut n, mut m) = (0usize, 0usize);
        while end < ng {
            let (dn, de) = (first[end + 1] - first[end], edges[end].len());
            if end > start && (n + dn > max_n || m + de > max_e || end - start + 1 > max_g) {
                break;
            }
            if dn > max_n || de > max_e {
                bail!("graph {end} alone ({dn} nodes, {de} edges) exceeds the model's capacity ({max_n} nodes, {max_e} edges)");
            }
            n += dn;
            m += de;
            end += 1;
        }
        let (n0, n1) = (first[start], first[end]);
        let es: Vec<usize> = edges[start..end].iter().flatten().copied().collect();
        out.push(Graphs {
            num_nodes: n1 - n0,
            channels: g.channels,
            x: g.x[n0 * g.channels..n1 * g.channels].to_vec(),
            sources: es.iter().map(|&e| g.sources[e] - n0 as u16).collect(),
            targets: es.iter().map(|&e| g.targets[e] - n0 as u16).collect(),
            edge_weight: g
                .edge_weight
                .as_ref()
                .map(|w| es.iter().map(|&e| w[e]).collect()),
            edge_attr: g.edge_attr.as_ref().map(|a| {
                let d = g.edge_dim;
                es.iter()
                    .flat_map(|&e| a[e * d..(e + 1) * d].iter().copied())
                    .collect()
            }),
            edge_dim: g.edge_dim,
            batch: g.batch[n0..n1].iter().map(|&b| b - start as u16).collect(),
            has_batch: true,
            num_graphs: end - start,
            y: None,
            test_mask: None,
            pairs: None,
            hyperedges: None,
        });
        start = end;
    }
    Ok(out)
}

fn append(acc: &mut Option<RunOutput>, o: RunOutput) {
    match acc {
        None => *acc = Some(o),
        Some(a) => {
            a.data.extend(o.data);
            a.rows += o.rows;
        }
    }
}

/// Runs the model on the graphs with the runtime (in several runs of whole
/// graphs if the batch exceeds the model's capacity, see [`split_batches`]) and
/// returns the first output and the number of runs. `trace` is then called for
/// every op with its index and (concatenated) int8 output.
pub fn run_batched_traced(
    model: &Model<'_>,
    g: &Graphs,
    trace: impl FnMut(usize, &RunOutput),
) -> Result<(RunOutput, usize)> {
    let (out, runs, _) = run_batched_opts(model, g, false, trace)?;
    Ok((out, runs))
}

/// [`run_batched_traced`] with the features given to the runtime as sparse
/// int8 ([`sparse_features`]) when `sparse`; also returns the largest arena a
/// run needed ([`Model::arena_bytes`] or [`Model::arena_bytes_sparse`]).
pub fn run_batched_opts(
    model: &Model<'_>,
    g: &Graphs,
    sparse: bool,
    mut trace: impl FnMut(usize, &RunOutput),
) -> Result<(RunOutput, usize, usize)> {
    let mut arena_max = 0usize;
    let parts = split_batches(model, g)?;
    let mut per_op: Vec<Option<RunOutput>> = vec![None; model.num_ops()];
    let mut out = None;
    for p in &parts {
        let o = run_once(model, p, sparse, &mut arena_max, |i, t| {
            if let Some(slot) = per_op.get_mut(i) {
                append(slot, t);
            }
        })?;
        append(&mut out, o);
    }
    for (i, t) in per_op.iter().enumerate() {
        if let Some(t) = t {
            trace(i, t);
        }
    }
    let out = out.ok_or_else(|| anyhow!("no graphs to run"))?;
    Ok((out, parts.len(), arena_max))
}

/// [`run_batched_traced`] without the run count.
pub fn run_traced(
    model: &Model<'_>,
    g: &Graphs,
    trace: impl FnMut(usize, &RunOutput),
) -> Result<RunOutput> {
    Ok(run_batched_traced(model, g, trace)?.0)
}

/// Runs the model on the graphs with the runtime and returns the first output.
pub fn run(model: &Model<'_>, g: &Graphs) -> Result<RunOutput> {
    run_traced(model, g, |_, _| {})
}

/// The outputs of one step of a sequence ([`run_sequence`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutputs {
    /// Every model output of the step, in the model's output order.
    pub outputs: Vec<RunOutput>,
    /// The state after the step (int8, `[nodes, H]`).
    pub state: Vec<i8>,
}

/// Runs a recurrent model ([`Model::state`]) over `steps` in order with
/// [`Session::run_step`], from the zero state (every value the state's zero
/// point, i.e. real 0), carrying the int8 state between steps as a device
/// does. `trace(step, op, tensor)` is called for every op of every step.
/// Returns every step's outputs and the largest arena a step needed.
pub fn run_sequence(
    model: &Model<'_>,
    steps: &[Graphs],
    mut trace: impl FnMut(usize, usize, &RunOutput),
) -> Result<(Vec<StepOutputs>, usize)> {
    if model.num_states() == 0 {
        bail!("the model carries no state: it is not a recurrent cell (run it without --sequence)");
    }
    let n = steps.first().map_or(0, |g| g.num_nodes);
    let mut state = vec![0i8; model.state_bytes(n)];
    model
        .init_state(n, &mut state)
        .map_err(|e| anyhow!("runtime: {e}"))?;
    let mut arena_max = 0usize;
    let mut out = Vec::with_capacity(steps.len());
    for (t, g) in steps.iter().enumerate() {
        let need = model.arena_bytes(g.num_nodes, g.num_edges(), g.num_graphs);
        arena_max = arena_max.max(need);
        let mut arena = vec![0u8; need.saturating_add(8)];
        let mut session = Session::new(model, &mut arena);
        let to_owned = |o: &Output<'_>| RunOutput {
            data: o.data.to_vec(),
            rows: o.rows,
            channels: o.channels,
            scale: o.scale,
            zero_point: o.zero_point,
        };
        session
            .run_step_inspect(&graph_input(g, &None), &mut state, |i, o| {
                trace(t, i, &to_owned(&o))
            })
            .map_err(|e| anyhow!("runtime, step {t}: {e}"))?;
        let outputs = (0..model.outputs().len())
            .map(|i| {
                session
                    .output(i)
                    .map(|o| to_owned(&o))
                    .ok_or_else(|| anyhow!("runtime, step {t}: output {i} missing"))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(StepOutputs {
            outputs,
            state: state.clone(),
        });
    }
    Ok((out, arena_max))
}
