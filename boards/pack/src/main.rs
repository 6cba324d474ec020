//! `tinygnn-pack`: host companion of the board firmware.
//!
//! ```text
//! tinygnn-pack demo DIR                      demo model.tgnn, inputs.tgib (3 graphs) and graphs.safetensors
//! tinygnn-pack synth DIR [--nodes N] [--edges E] [--features F] [--hidden H] [--classes C]
//!                                            synthetic 2-layer GCN (Kipf & Welling shape) + one random graph
//! tinygnn-pack inputs GRAPHS.safetensors OUT.tgib [--split] [--mask test|val|train|all] [--max N] [--quantize MODEL.tgnn] [--sparse]
//! tinygnn-pack expect MODEL.tgnn INPUTS.tgib  host reference: the firmware's report lines, computed here
//! tinygnn-pack arena MODEL.tgnn INPUTS.tgib   arena bytes the largest sample needs
//! ```
//!
//! `inputs` reads the interchange `GRAPHS.safetensors` (docs/interchange.md):
//! `x` [N,F] f32, `edge_index` [2,E] i64, optional `edge_weight` [E] f32, `edge_attr` [E,D] f32,
//! `batch` [N] i64, `y` [N] or [G] i64 and `*_mask` [N] bool/u8. Without
//! `--split` the whole file is one sample (one inference over the batch);
//! with it, one sample per graph of `batch`. Labels of rows outside the mask
//! are written as −1 (not scored). `--quantize` stores int8 features,
//! quantized exactly as the runtime would (`tinygnn::graph::quantize_value`
//! with the model's input scale and zero point): 4× less flash, same outputs.
//! `--sparse` (needs `--quantize`) stores those int8 features in CSR form,
//! only the entries that differ from the input zero point (bag-of-words
//! features such as Cora's: ~1 % of 2708×1433), same outputs.

use std::process::ExitCode;
use tinygnn::ops::{GcnConv, Linear};

use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Op, TensorDesc, TensorKind};
use tinygnn_board_app::bundle::writer::{write, OwnedSample};
use tinygnn_board_app::{Bundle, NoClock, Report};

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("demo") if args.len() == 2 => demo(&args[1]),
        Some("synth") if args.len() >= 2 => synth(&args[1], &args[2..]),
        Some("inputs") if args.len() >= 3 => inputs(&args[1], &args[2], &args[3..]),
        Some("expect") if args.len() == 3 => expect(&args[1], &args[2]),
        Some("arena") if args.len() == 3 => arena(&args[1], &args[2]),
        _ => Err("usage: tinygnn-pack demo DIR | synth DIR [--nodes N --edges E --features F --hidden H --classes C] | inputs GRAPHS.safetensors OUT.tgib [--split] [--mask M] [--max N] [--quantize MODEL [--sparse]] \
                  | expect MODEL INPUTS | arena MODEL INPUTS"
            .into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tinygnn-pack: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Deterministic pseudo-random numbers (xorshift32), so demo files are reproducible.
struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn i8(&mut self) -> i8 {
        (self.next() >> 24) as i8
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    }
}

/// A node-level demo model: GCNConv(8→16, ReLU) → Linear(16→4), up to 64 nodes, 256 edges, 4 graphs.
fn demo_model(rng: &mut Rng) -> Res<Vec<u8>> {
    let mut w = ModelWriter::new();
    let t = |channels, scale, zero_point| TensorDesc {
        kind: TensorKind::Node,
        channels,
        scale,
        zero_point,
    };
    let x = w.add_tensor(t(8, 1.0 / 64.0, 0));
    let h = w.add_tensor(t(16, 1.0 / 16.0, -128));
    let y = w.add_tensor(t(4, 1.0 / 8.0, 3));
    // (weights section, params section) of a ci→co layer with random int8 weights.
    let mut layer = |w: &mut ModelWriter, ci: usize, co: usize, s_in: f32, s_out: f32| {
        let weights: Vec<i8> = (0..ci * co).map(|_| rng.i8() / 2).collect();
        let s_w = 1.0f32 / 128.0;
        let (mult, shift) = tinygnn::quant::quantize_multiplier(f64::from(s_in * s_w / s_out));
        let params: Vec<ChannelRecord> = (0..co)
            .map(|_| ChannelRecord {
                bias: (rng.next() % 2001) as i32 - 1000,
                mult,
                shift,
            })
            .collect();
        (w.add_i8(&weights), w.add_channel_params(&params))
    };
    let (weights, params) = layer(&mut w, 8, 16, 1.0 / 64.0, 1.0 / 16.0);
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: h,
        weights,
        params,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    let (weights, params) = layer(&mut w, 16, 4, 1.0 / 16.0, 1.0 / 8.0);
    w.add_op(Op::Linear(Linear {
        input: h,
        output: y,
        weights,
        params,
        act: Activation::None,
    }));
    w.finish(x, &[y], 64, 256, 4).map_err(|e| e.to_string())
}

/// Random int8 weights and channel records for a `ci → co` layer.
fn random_layer(
    w: &mut ModelWriter,
    rng: &mut Rng,
    ci: usize,
    co: usize,
    s_in: f32,
    s_out: f32,
) -> (tinygnn::format::Section, tinygnn::format::Section) {
    let weights: Vec<i8> = (0..ci * co).map(|_| rng.i8() / 2).collect();
    // Scale so that a dot product of `ci` terms lands in a sensible int8 range.
    let s_w = 4.0 / (128.0 * (ci as f32).sqrt());
    let (mult, shift) = tinygnn::quant::quantize_multiplier(f64::from(s_in * s_w / s_out));
    let params: Vec<ChannelRecord> = (0..co)
        .map(|_| ChannelRecord {
            bias: (rng.next() % 2001) as i32 - 1000,
            mult,
            shift,
        })
        .collect();
    (w.add_i8(&weights), w.add_channel_params(&params))
}

/// A synthetic node classifier with the shape of the GCN of Kipf & Welling
/// (GCNConv(F→H), ReLU, GCNConv(H→C)) on one random graph of `nodes` nodes
/// and `edges` directed edges (random pairs, both directions), for
/// benchmarking model sizes before real exported models exist.
fn synth(dir: &str, opts: &[String]) -> Res<()> {
    let (mut n, mut e, mut f, mut h, mut c) = (34usize, 156usize, 34usize, 16usize, 4usize);
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        let v: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{o} needs a number"))?;
        match o.as_str() {
            "--nodes" => n = v,
            "--edges" => e = v,
            "--features" => f = v,
            "--hidden" => h = v,
            "--classes" => c = v,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if n == 0 || n > usize::from(u16::MAX) || f == 0 || h == 0 || c == 0 || e % 2 != 0 {
        return Err("need 1..=65535 nodes, an even edge count, non-zero sizes".into());
    }
    let mut rng = Rng(0x0bad_cafe);
    let mut w = ModelWriter::new();
    let t = |channels: usize, scale, zero_point| TensorDesc {
        kind: TensorKind::Node,
        channels: channels as u16,
        scale,
        zero_point,
    };
    let x = w.add_tensor(t(f, 1.0 / 64.0, 0));
    let hid = w.add_tensor(t(h, 1.0 / 16.0, -128));
    let y = w.add_tensor(t(c, 1.0 / 8.0, 0));
    let gcn = |input, output, weights, params, act| {
        Op::GcnConv(GcnConv {
            input,
            output,
            weights,
            params,
            act,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        })
    };
    let (wt, pr) = random_layer(&mut w, &mut rng, f, h, 1.0 / 64.0, 1.0 / 16.0);
    w.add_op(gcn(x, hid, wt, pr, Activation::Relu));
    let (wt, pr) = random_layer(&mut w, &mut rng, h, c, 1.0 / 16.0, 1.0 / 8.0);
    w.add_op(gcn(hid, y, wt, pr, Activation::None));
    let model = w
        .finish(x, &[y], n as u32, e as u32, 1)
        .map_err(|e| e.to_string())?;

    let nodes = n as u16;
    let mut s = OwnedSample {
        nodes,
        graphs: 1,
        channels: f as u16,
        features_f32: (0..n * f).map(|_| rng.unit()).collect(),
        ..Default::default()
    };
    for _ in 0..e / 2 {
        let a = (rng.next() % u32::from(nodes)) as u16;
        let b = (rng.next() % u32::from(nodes)) as u16;
        s.sources.extend([a, b]);
        s.targets.extend([b, a]);
    }
    s.labels = Some((
        false,
        (0..n).map(|_| (rng.next() % c as u32) as i16).collect(),
    ));
    let p = std::path::Path::new(dir);
    std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
    std::fs::write(p.join("model.tgnn"), &model).map_err(|e| e.to_string())?;
    std::fs::write(
        p.join("graphs.safetensors"),
        demo_safetensors(std::slice::from_ref(&s))?,
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "tinygnn-pack: wrote {dir}/model.tgnn ({} B; GCN {f}→{h}→{c}, {} MACs in the dense parts) and graphs.safetensors ({n} nodes, {e} edges)",
        model.len(),
        n * (f * h + h * c)
    );
    Ok(())
}

fn demo(dir: &str) -> Res<()> {
    let mut rng = Rng(0x1234_5678);
    let model = demo_model(&mut rng)?;
    let mut samples = Vec::new();
    for (i, nodes) in [5u16, 12, 32].into_iter().enumerate() {
        let mut s = OwnedSample {
            nodes,
            graphs: 1,
            channels: 8,
            ..Default::default()
        };
        s.features_f32 = (0..usize::from(nodes) * 8).map(|_| rng.unit()).collect();
        for n in 0..nodes {
            // A ring plus a chord per node: 2 edges per node.
            for m in [(n + 1) % nodes, (n + 3 + i as u16) % nodes] {
                s.sources.push(n);
                s.targets.push(m);
            }
        }
        s.labels = Some((false, (0..nodes).map(|n| (n % 4) as i16).collect()));
        samples.push(s);
    }
    let bundle = write(&samples).ok_or("inconsistent demo samples")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let p = std::path::Path::new(dir);
    std::fs::write(p.join("graphs.safetensors"), demo_safetensors(&samples)?)
        .map_err(|e| e.to_string())?;
    std::fs::write(p.join("model.tgnn"), &model).map_err(|e| e.to_string())?;
    std::fs::write(p.join("inputs.tgib"), &bundle).map_err(|e| e.to_string())?;
    eprintln!(
        "tinygnn-pack: wrote {}/model.tgnn ({} B) and inputs.tgib ({} B, {} samples)",
        dir,
        model.len(),
        bundle.len(),
        samples.len()
    );
    Ok(())
}

/// The demo samples as one PyG-style batch in the interchange format.
fn demo_safetensors(samples: &[OwnedSample]) -> Res<Vec<u8>> {
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
    let n = batch.len();
    let e = src.len();
    let f = usize::from(samples.first().map_or(1, |s| s.channels));
    src.extend(dst);
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let eb: Vec<u8> = src.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bb: Vec<u8> = batch.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    let err = |e: safetensors::SafeTensorError| e.to_string();
    let tensors = vec![
        (
            "x",
            TensorView::new(Dtype::F32, vec![n, f], &xb).map_err(err)?,
        ),
        (
            "edge_index",
            TensorView::new(Dtype::I64, vec![2, e], &eb).map_err(err)?,
        ),
        (
            "batch",
            TensorView::new(Dtype::I64, vec![n], &bb).map_err(err)?,
        ),
        ("y", TensorView::new(Dtype::I64, vec![n], &yb).map_err(err)?),
    ];
    safetensors::serialize(tensors, &None).map_err(err)
}

fn ints(t: &TensorView<'_>) -> Res<Vec<i64>> {
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
        other => Err(format!("expected an integer tensor, got {other:?}")),
    }
}

fn floats(t: &TensorView<'_>) -> Res<Vec<f32>> {
    match t.dtype() {
        Dtype::F32 => Ok(t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect()),
        other => Err(format!("expected an F32 tensor, got {other:?}")),
    }
}

fn inputs(graphs: &str, out: &str, opts: &[String]) -> Res<()> {
    let (mut split, mut mask, mut max) = (false, String::from("test"), usize::MAX);
    let mut quantize: Option<(f32, i8)> = None;
    let mut sparse = false;
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "--split" => split = true,
            "--mask" => mask = it.next().ok_or("--mask needs a value")?.clone(),
            "--max" => {
                max = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max needs a number")?
            }
            "--sparse" => sparse = true,
            "--quantize" => {
                let path = it.next().ok_or("--quantize needs MODEL.tgnn")?;
                let (words, len) = read_aligned(path)?;
                let m = tinygnn::Model::from_bytes(&as_bytes(&words)[..len])
                    .map_err(|e| format!("{path}: {e}"))?;
                let d = m.input_desc();
                quantize = Some((d.scale, d.zero_point));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if sparse && quantize.is_none() {
        return Err("--sparse needs --quantize MODEL.tgnn (int8 features)".into());
    }
    let bytes = std::fs::read(graphs).map_err(|e| format!("{graphs}: {e}"))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("{graphs}: {e}"))?;
    let get = |name: &str| st.tensor(name).ok();
    let xt = get("x").ok_or("no tensor `x`")?;
    let shape = xt.shape().to_vec();
    let [n, f] = shape[..] else {
        return Err("`x` must be [N, F]".into());
    };
    let x = floats(&xt)?;
    let ei = ints(&get("edge_index").ok_or("no tensor `edge_index`")?)?;
    let e = ei.len() / 2;
    let (src, dst) = ei.split_at(e);
    let ew = get("edge_weight").map(|t| floats(&t)).transpose()?;
    // Edge features [E, D] (edgefeat).
    let ea = match get("edge_attr") {
        Some(t) => {
            let d = match t.shape() {
                [en, d] if *en == e && *d > 0 => *d,
                [en] if *en == e => 1,
                _ => return Err("`edge_attr` must be [E, D]".into()),
            };
            Some((d, floats(&t)?))
        }
        None => None,
    };
    let batch = match get("batch") {
        Some(t) => ints(&t)?,
        None => vec![0; n],
    };
    if batch.len() != n || batch.windows(2).any(|w| w[1] < w[0]) || batch.iter().any(|&b| b < 0) {
        return Err("`batch` must have N sorted, non-negative entries".into());
    }
    let g = batch.last().map_or(1, |&b| b as usize + 1);
    let y = get("y").map(|t| ints(&t)).transpose()?;
    // Node pairs to score (link prediction): whole-file samples only.
    let pairs = get("edge_label_index").map(|t| ints(&t)).transpose()?;
    if pairs.is_some() && split {
        return Err("`edge_label_index` (node pairs) cannot be split per graph".into());
    }
    let keep: Vec<bool> = if mask == "all" {
        vec![true; n]
    } else {
        match get(&format!("{mask}_mask")) {
            Some(t) => ints(&t)?.into_iter().map(|v| v != 0).collect(),
            None => vec![true; n],
        }
    };
    // Node ranges per graph.
    let mut starts = vec![0usize; g + 1];
    for &b in &batch {
        starts[b as usize + 1] += 1;
    }
    for i in 0..g {
        starts[i + 1] += starts[i];
    }
    let groups: Vec<(usize, usize)> = if split {
        (0..g).map(|i| (i, i + 1)).collect()
    } else {
        vec![(0, g)]
    };
    let mut samples = Vec::new();
    for (g0, g1) in groups.into_iter().take(max) {
        let (n0, n1) = (starts[g0], starts[g1]);
        let nodes = u16::try_from(n1 - n0).map_err(|_| "more than 65535 nodes in a sample")?;
        let mut s = OwnedSample {
            nodes,
            graphs: u16::try_from(g1 - g0).map_err(|_| "too many graphs")?,
            channels: u16::try_from(f).map_err(|_| "too many channels")?,
            features_f32: x[n0 * f..n1 * f].to_vec(),
            ..Default::default()
        };
        let mut w = Vec::new();
        let mut attr = Vec::new();
        for k in 0..e {
            let (a, b) = (src[k] as usize, dst[k] as usize);
            if (n0..n1).contains(&a) && (n0..n1).contains(&b) {
                s.sources.push((a - n0) as u16);
                s.targets.push((b - n0) as u16);
                if let Some(ew) = &ew {
                    w.push(ew[k]);
                }
                if let Some((d, a)) = &ea {
                    attr.extend_from_slice(&a[k * d..(k + 1) * d]);
                }
            }
        }
        s.edge_weight = ew.as_ref().map(|_| w);
        s.edge_attr = ea.as_ref().map(|(d, _)| (*d as u32, attr));
        if g1 - g0 > 1 {
            s.batch = Some(
                batch[n0..n1]
                    .iter()
                    .map(|&b| (b as usize - g0) as u16)
                    .collect(),
            );
        }
        if let Some(y) = &y {
            if y.len() == n {
                let l = (n0..n1)
                    .map(|i| if keep[i] { y[i] as i16 } else { -1 })
                    .collect();
                s.labels = Some((false, l));
            } else if y.len() == g {
                s.labels = Some((true, (g0..g1).map(|i| y[i] as i16).collect()));
            }
        }
        if let Some(p) = &pairs {
            let k = p.len() / 2;
            let idx = |v: i64| u16::try_from(v).map_err(|_| "pair index out of u16 range");
            let a = p[..k]
                .iter()
                .map(|&v| idx(v))
                .collect::<Result<Vec<_>, _>>()?;
            let b = p[k..]
                .iter()
                .map(|&v| idx(v))
                .collect::<Result<Vec<_>, _>>()?;
            s.pairs = Some((a, b));
        }
        if let Some((scale, zp)) = quantize {
            let q: Vec<i8> = s
                .features_f32
                .iter()
                .map(|&v| tinygnn::graph::quantize_value(v, scale, zp))
                .collect();
            s.features_f32.clear();
            if sparse {
                s.features_sparse = Some(to_csr(&q, f, zp)?);
            } else {
                s.features_i8 = Some(q);
            }
        }
        samples.push(s);
    }
    let bundle = write(&samples).ok_or("inconsistent sample arrays")?;
    std::fs::write(out, &bundle).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "tinygnn-pack: wrote {out} ({} B, {} samples)",
        bundle.len(),
        samples.len()
    );
    Ok(())
}

/// Row-major int8 features `[rows, f]` as CSR (`row_ptr`, `cols`, `values`),
/// keeping only the entries that differ from the zero point `zp`.
fn to_csr(q: &[i8], f: usize, zp: i8) -> Res<(Vec<u32>, Vec<u16>, Vec<i8>)> {
    if f == 0 || f > usize::from(u16::MAX) + 1 {
        return Err("sparse features need 1..=65536 channels".into());
    }
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
    for row in q.chunks(f) {
        for (c, &v) in row.iter().enumerate() {
            if v != zp {
                cols.push(c as u16);
                values.push(v);
            }
        }
        row_ptr.push(u32::try_from(cols.len()).map_err(|_| "too many non-zero features")?);
    }
    Ok((row_ptr, cols, values))
}

/// Reads a file into 16-aligned memory (the bundle and the model are read in place).
fn read_aligned(path: &str) -> Res<(Vec<u128>, usize)> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    let view: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    view[..bytes.len()].copy_from_slice(&bytes);
    Ok((words, bytes.len()))
}

struct Stdout;
impl Report for Stdout {
    fn line(&mut self, line: &str) {
        use std::io::Write;
        // A closed pipe (e.g. `| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

fn expect(model: &str, inputs: &str) -> Res<()> {
    let (m, ml) = read_aligned(model)?;
    let (b, bl) = read_aligned(inputs)?;
    let mb = &as_bytes(&m)[..ml];
    let bb = &as_bytes(&b)[..bl];
    let need = arena_for(mb, bb)?;
    let mut words = vec![0u64; need.max(16).div_ceil(8)];
    let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    let mut board = tinygnn_board_app::Board {
        name: "host",
        model: mb,
        inputs: bb,
        arena,
        report: Stdout,
        clock: NoClock,
        stack: None,
    };
    tinygnn_board_app::run(&mut board)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn as_bytes(words: &[u128]) -> &[u8] {
    bytemuck::cast_slice(words)
}

fn arena_for(model: &[u8], inputs: &[u8]) -> Res<usize> {
    let m = tinygnn::Model::from_bytes(model).map_err(|e| e.to_string())?;
    let b = Bundle::parse(inputs).map_err(|e| e.to_string())?;
    let mut need = 0;
    for s in b.samples() {
        need = need.max(tinygnn_board_app::required_arena(
            &m,
            &s.map_err(|e| e.to_string())?,
        ));
    }
    Ok(need)
}

fn arena(model: &str, inputs: &str) -> Res<()> {
    let (m, ml) = read_aligned(model)?;
    let (b, bl) = read_aligned(inputs)?;
    println!("{}", arena_for(&as_bytes(&m)[..ml], &as_bytes(&b)[..bl])?);
    Ok(())
}
