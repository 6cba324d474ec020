//! `tinygnn pack`: the host side of the board firmware (`boards/`): packs
//! graphs into the input bundle (`.tgib`) the firmware embeds, prints the
//! report the firmware must print (computed here with the same runtime and
//! board code) and the arena a bundle needs, and makes the demo and
//! synthetic models.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use safetensors::{tensor::TensorView, Dtype};
use tinygnn_board_app::bundle::writer::{write, OwnedSample};
use tinygnn_board_app::synth::{self, SynthShape};
use tinygnn_board_app::{Bundle, Lines, NoClock};

use crate::fsio;

mod inputs;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
}

/// `pack` commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pack GRAPHS.safetensors (interchange format) into an input bundle for the board firmware.
    Inputs(inputs::Args),
    /// Print the report lines the firmware prints for MODEL on INPUTS, computed on the host.
    Expect(ModelInputs),
    /// Print the arena bytes the largest sample of INPUTS needs with MODEL (a recurrent model:
    /// plus its state, which the firmware keeps in front of the arena).
    Arena(ModelInputs),
    /// Write a demo (GCNConv(8→16, ReLU) → Linear(16→4), 3 small graphs): DIR/model.tgnn,
    /// DIR/inputs.tgib and DIR/graphs.safetensors.
    Demo {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Write a synthetic 2-layer GCN (Kipf & Welling's shape, random weights) and one random
    /// graph: DIR/model.tgnn and DIR/graphs.safetensors.
    Synth(SynthArgs),
}

/// A model and an input bundle.
#[derive(Debug, clap::Args)]
pub struct ModelInputs {
    /// The .tgnn model.
    pub model: PathBuf,
    /// The input bundle (.tgib, from `tinygnn pack inputs`).
    pub inputs: PathBuf,
}

/// Arguments of `pack synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output directory (created if missing).
    pub dir: PathBuf,
    /// Nodes of the graph (the model's node capacity).
    #[arg(long, default_value_t = 34)]
    pub nodes: usize,
    /// Directed edges (even: random node pairs, both directions).
    #[arg(long, default_value_t = 156)]
    pub edges: usize,
    /// Input feature channels.
    #[arg(long, default_value_t = 34)]
    pub features: usize,
    /// Hidden channels.
    #[arg(long, default_value_t = 16)]
    pub hidden: usize,
    /// Classes (output channels).
    #[arg(long, default_value_t = 4)]
    pub classes: usize,
}

/// Runs `pack`.
pub fn run(a: &Args) -> Result<()> {
    match &a.cmd {
        Command::Inputs(a) => inputs::run(a),
        Command::Expect(a) => expect(&a.model, &a.inputs),
        Command::Arena(a) => {
            let (m, b) = (read_aligned(&a.model)?, read_aligned(&a.inputs)?);
            outln!("{}", arena_for(&m, &b)?);
            Ok(())
        }
        Command::Demo { dir } => demo(dir),
        Command::Synth(a) => synth(a),
    }
}

fn demo(dir: &Path) -> Result<()> {
    let (model, samples) = synth::demo().map_err(|e| anyhow!(e))?;
    let bundle = write(&samples).ok_or_else(|| anyhow!("inconsistent demo samples"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fsio::write(
        &dir.join("graphs.safetensors"),
        &batch_safetensors(&samples)?,
    )?;
    fsio::write(&dir.join("model.tgnn"), &model)?;
    fsio::write(&dir.join("inputs.tgib"), &bundle)?;
    errln!(
        "tinygnn pack: wrote {}/model.tgnn ({} B) and inputs.tgib ({} B, {} samples)",
        dir.display(),
        model.len(),
        bundle.len(),
        samples.len()
    );
    Ok(())
}

fn synth(a: &SynthArgs) -> Result<()> {
    let shape = SynthShape {
        nodes: a.nodes,
        edges: a.edges,
        features: a.features,
        hidden: a.hidden,
        classes: a.classes,
    };
    let (model, sample) = synth::synth(shape).map_err(|e| anyhow!(e))?;
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    fsio::write(&a.dir.join("model.tgnn"), &model)?;
    fsio::write(
        &a.dir.join("graphs.safetensors"),
        &batch_safetensors(std::slice::from_ref(&sample))?,
    )?;
    let (n, e, f, h, c) = (a.nodes, a.edges, a.features, a.hidden, a.classes);
    errln!(
        "tinygnn pack: wrote {}/model.tgnn ({} B; GCN {f}→{h}→{c}, {} MACs in the dense parts) and graphs.safetensors ({n} nodes, {e} edges)",
        a.dir.display(),
        model.len(),
        n * (f * h + h * c)
    );
    Ok(())
}

/// f32 samples with node labels as one PyG-style batch in the interchange
/// format (`x`, `edge_index`, `batch`, `y`).
fn batch_safetensors(samples: &[OwnedSample]) -> Result<Vec<u8>> {
    let (mut x, mut src, mut dst, mut batch, mut y) = (vec![], vec![], vec![], vec![], vec![]);
    let mut offset = 0i64;
    for (g, s) in samples.iter().enumerate() {
        x.extend_from_slice(&s.features_f32);
        src.extend(s.sources.iter().map(|&v| i64::from(v) + offset));
        dst.extend(s.targets.iter().map(|&v| i64::from(v) + offset));
        batch.extend(std::iter::repeat_n(g as i64, usize::from(s.nodes)));
        if let Some((_, l)) = &s.labels {
            y.extend(l.iter().map(|&v| i64::from(v)));
        }
        offset += i64::from(s.nodes);
    }
    let (n, e) = (batch.len(), src.len());
    let f = usize::from(samples.first().map_or(1, |s| s.channels));
    src.extend(dst);
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let eb: Vec<u8> = src.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bb: Vec<u8> = batch.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = vec![
        ("x", TensorView::new(Dtype::F32, vec![n, f], &xb)?),
        ("edge_index", TensorView::new(Dtype::I64, vec![2, e], &eb)?),
        ("batch", TensorView::new(Dtype::I64, vec![n], &bb)?),
        ("y", TensorView::new(Dtype::I64, vec![n], &yb)?),
    ];
    Ok(safetensors::serialize(tensors, &None)?)
}

/// A file's bytes in 16-aligned memory (the model and the bundle are read in place).
struct AlignedFile {
    words: Vec<u128>,
    len: usize,
}

impl AlignedFile {
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}

fn read_aligned(path: &Path) -> Result<AlignedFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    Ok(AlignedFile {
        words,
        len: bytes.len(),
    })
}

/// The arena the largest sample of the bundle needs (for a recurrent model,
/// plus the state the firmware keeps in front of it).
fn arena_for(model: &AlignedFile, inputs: &AlignedFile) -> Result<usize> {
    let m = tinygnn::Model::from_bytes(model.bytes()).map_err(|e| anyhow!("model: {e}"))?;
    let b = Bundle::parse(inputs.bytes()).map_err(|e| anyhow!("inputs: {e}"))?;
    let mut need = 0;
    let mut nodes = None;
    for s in b.samples() {
        let s = s.map_err(|e| anyhow!("inputs: {e}"))?;
        nodes.get_or_insert(usize::from(s.nodes));
        need = need.max(tinygnn_board_app::required_arena(&m, &s));
    }
    // A recurrent model runs the bundle as a sequence with its state in front of the arena.
    Ok(tinygnn_board_app::state_region(&m, nodes.unwrap_or(0)) + need)
}

/// Report lines to standard output.
struct Stdout;

impl Lines for Stdout {
    fn line(&mut self, line: &str) {
        outln!("{line}");
    }
}

fn expect(model: &Path, inputs: &Path) -> Result<()> {
    let (m, b) = (read_aligned(model)?, read_aligned(inputs)?);
    let need = arena_for(&m, &b)?;
    let mut words = vec![0u64; need.max(16).div_ceil(8)];
    let mut board = tinygnn_board_app::Board {
        name: "host",
        model: m.bytes(),
        inputs: b.bytes(),
        arena: bytemuck::cast_slice_mut(&mut words),
        report: Stdout,
        clock: NoClock,
        stack: None,
    };
    // The report already ends with the `error …` line.
    tinygnn_board_app::run(&mut board)
        .map(|_| ())
        .map_err(|e| anyhow!("{e}"))
}
