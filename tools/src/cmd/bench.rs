//! `tinygnn bench`: runs a `.tgnn` model K times in one process on the same
//! graphs (one `Session`, one arena, as a device would) and prints
//! per-inference numbers.
//!
//! Every inference goes through [`infer`], a function that is never inlined, so
//! that an instruction counter can isolate it:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='tinygnn_cli::cmd::bench::infer' tinygnn bench M G --iters 10
//! ```
//!
//! counts exactly the instructions of 10 inferences (plus the warm-up ones,
//! see `--warmup`). The graph is prepared once before the loop
//! (`Session::prepare`: validation, CSR, degrees and GCN normalisation), so an
//! inference is `Session::run_prepared` with the features, as on a device
//! whose graph structure is fixed; `--unprepared` runs `Session::run` on the
//! whole input instead (the graph validated and built inside every
//! inference). Both give the same output bytes, which bench checks. Wall-clock times are printed too (median and minimum over
//! the iterations); they are noisy and only meaningful as ratios against
//! something measured in the same run.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use tinygnn::graph::{Features, GraphInput};
use tinygnn::{Model, PreparedGraph, Session};

use crate::st;

/// How the features reach the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureKind {
    /// f32 features, quantized by the runtime inside every inference.
    F32,
    /// int8 features quantized once before the loop (with the runtime's own
    /// `quantize_value` and the model input's scale and zero point).
    I8,
    /// The same int8 features stored sparse before the loop
    /// (`Features::SparseI8`: CSR of the entries that differ from the input
    /// zero point), read in place by a first Linear, GCNConv or sum/mean
    /// SAGEConv; the arena is `Model::arena_bytes_sparse`.
    SparseI8,
}

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .tgnn model.
    pub model: PathBuf,
    /// Input graphs (GRAPHS.safetensors), run as one inference (they must fit
    /// the model's capacity).
    pub graphs: PathBuf,
    /// Timed inferences.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub iters: u32,
    /// Untimed inferences before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: u32,
    /// Feature form given to the runtime.
    #[arg(long, value_enum, default_value_t = FeatureKind::F32)]
    pub features: FeatureKind,
    /// Validate the graph and build its CSR, degrees and normalisation
    /// inside every inference (`Session::run`), instead of once before the
    /// loop (`Session::prepare`, then `Session::run_prepared` per inference).
    #[arg(long)]
    pub unprepared: bool,
    /// Run in the least arena (`Model::arena_bytes`, `_sparse`), where a
    /// large graph's GCN layers compute their output in passes over blocks
    /// of channels, instead of the wide one (`Model::wide_arena_bytes`:
    /// every layer at its full width, the fastest).
    #[arg(long)]
    pub least_arena: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One inference; never inlined so that callgrind's `--toggle-collect` can
/// isolate it. Returns the output's first byte so the work is not optimized
/// away.
/// With a prepared graph, only `input`'s features are given to the runtime.
#[inline(never)]
pub fn infer(
    session: &mut Session<'_, '_>,
    input: &GraphInput<'_>,
    prepared: Option<&PreparedGraph<'_>>,
) -> Result<i8> {
    let out = match prepared {
        Some(p) => session.run_prepared(p, input.features),
        None => session.run(input),
    }
    .map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(out.data.first().copied().unwrap_or(0))
}

/// The output bytes of an unprepared run, to check the prepared ones against.
fn unprepared_output(session: &mut Session<'_, '_>, input: &GraphInput<'_>) -> Result<Vec<i8>> {
    let out = session.run(input).map_err(|e| anyhow!("runtime: {e}"))?;
    Ok(out.data.to_vec())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `bench`.
pub fn run(a: &Args) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: invalid model: {e}", a.model.display()))?;
    let g = st::read_graphs(&a.graphs)?;
    let (max_n, max_e, max_g) = model.capacity();
    if g.num_nodes > max_n as usize
        || g.num_edges() > max_e as usize
        || g.num_graphs > max_g as usize
    {
        bail!(
            "the graphs ({} nodes, {} edges, {} graphs) exceed the model's capacity ({max_n} nodes, {max_e} edges, {max_g} graphs); bench runs them as one inference",
            g.num_nodes,
            g.num_edges(),
            g.num_graphs
        );
    }
    let x_i8: Vec<i8> = match a.features {
        FeatureKind::F32 | FeatureKind::SparseI8 => Vec::new(),
        FeatureKind::I8 => {
            g.x.iter()
                .map(|&v| tinygnn::graph::quantize_input(&model, v))
                .collect()
        }
    };
    let sparse_x =
        (a.features == FeatureKind::SparseI8).then(|| crate::rt::sparse_features(&model, &g));
    let features = match (a.features, &sparse_x) {
        (FeatureKind::SparseI8, Some((row_ptr, cols, values))) => Features::SparseI8 {
            row_ptr,
            cols,
            values,
        },
        (FeatureKind::F32, _) | (FeatureKind::SparseI8, None) => Features::F32(&g.x),
        (FeatureKind::I8, _) => Features::I8(&x_i8),
    };
    let mut input = GraphInput::new(g.num_nodes, features, &g.sources, &g.targets);
    input.edge_weight = g.edge_weight.as_deref();
    input.batch = g.has_batch.then_some(&g.batch[..]);
    let sparse = a.features == FeatureKind::SparseI8;
    let (n, e, ng) = (g.num_nodes, g.num_edges(), g.num_graphs);
    let arena_bytes = match (a.least_arena, sparse) {
        (false, _) => model.wide_arena_bytes(n, e, ng, sparse),
        (true, true) => model.arena_bytes_sparse(n, e, ng),
        (true, false) => model.arena_bytes(n, e, ng),
    };
    let arena_kind = if a.least_arena { "least" } else { "wide" };
    let prepared_bytes = model.prepared_bytes(g.num_nodes, g.num_edges(), g.num_graphs);
    // +8: the arena need not start 8-aligned.
    let mut arena = vec![0u8; arena_bytes.saturating_add(8)];
    let mut session = Session::new(&model, &mut arena);
    let reference = unprepared_output(&mut session, &input)?;
    let prepared = if a.unprepared {
        None
    } else {
        Some(
            session
                .prepare(&input)
                .map_err(|e| anyhow!("runtime: {e}"))?,
        )
    };

    for _ in 0..a.warmup {
        black_box(infer(&mut session, black_box(&input), prepared.as_ref())?);
    }
    let mut times = Vec::with_capacity(a.iters as usize);
    for _ in 0..a.iters {
        let t0 = Instant::now();
        black_box(infer(&mut session, black_box(&input), prepared.as_ref())?);
        times.push(t0.elapsed().as_nanos() as f64);
    }
    // The output of the last inference: its argmax (node or graph rows) and accuracy.
    let out = match &prepared {
        Some(p) => session.run_prepared(p, input.features),
        None => session.run(&input),
    }
    .map_err(|e| anyhow!("runtime: {e}"))?;
    if out.data != &reference[..] {
        bail!("the prepared graph's output differs from an unprepared run's (a runtime bug)");
    }
    let pred: Vec<usize> = (0..out.rows).map(|r| out.argmax(r).unwrap_or(0)).collect();
    let raw: Vec<u8> = out.data.iter().map(|&v| v as u8).collect();
    let crc = crc32(&raw);
    let (rows, channels) = (out.rows, out.channels);
    drop(session);
    let acc = super::accuracy(&pred, &g);
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(&mut times);
    let feat = match a.features {
        FeatureKind::F32 => "f32",
        FeatureKind::I8 => "i8",
        FeatureKind::SparseI8 => "sparse-i8",
    };
    let nnz = sparse_x.as_ref().map(|(_, cols, _)| cols.len());
    if a.json {
        let v = json!({
            "model": a.model.display().to_string(), "graphs": a.graphs.display().to_string(),
            "nodes": g.num_nodes, "edges": g.num_edges(), "num_graphs": g.num_graphs,
            "features": feat, "sparse_entries": nnz, "arena_bytes": arena_bytes, "arena": arena_kind, "model_bytes": bytes.len(),
            "prepared": !a.unprepared, "prepared_bytes": prepared_bytes,
            "iters": a.iters, "warmup": a.warmup,
            "median_ns": med, "min_ns": min,
            "rows": rows, "channels": channels, "output_crc32": format!("{crc:08x}"),
            "argmax": pred, "accuracy": acc.map(|a| a.0), "accuracy_rows": acc.map(|a| a.1),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!(
        "model {} ({} B), graphs {}: {} nodes, {} edges, {} graphs, {feat} features",
        a.model.display(),
        bytes.len(),
        a.graphs.display(),
        g.num_nodes,
        g.num_edges(),
        g.num_graphs
    );
    if let Some(nnz) = nnz {
        outln!(
            "sparse features: {nnz} stored entries of {} ({:.2} % dense)",
            g.num_nodes * g.channels,
            100.0 * nnz as f64 / (g.num_nodes * g.channels).max(1) as f64
        );
    }
    outln!("arena_bytes {arena_bytes} ({arena_kind})");
    if a.unprepared {
        outln!("graph validated and built inside every inference (--unprepared)");
    } else {
        outln!("prepared graph: {prepared_bytes} B of the arena, built once before the loop (CSR, degrees, normalisation)");
    }
    outln!(
        "inferences {} (+{} warm-up): median {:.1} us, min {:.1} us per inference (wall clock)",
        a.iters,
        a.warmup,
        med / 1e3,
        min / 1e3
    );
    outln!("output {rows} rows × {channels} channels, crc32 {crc:08x}");
    if let Some((acc, n)) = acc {
        outln!(
            "accuracy {:.2}% over {n} {}",
            acc * 100.0,
            super::accuracy_scope(&g, rows)
        );
    }
    Ok(())
}

/// CRC-32 (IEEE, the checksum the boards print for their output bytes).
fn crc32(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(bytes)
}
