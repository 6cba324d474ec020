//! Shared test fixtures of tinygnn, used by the runtime's integration tests
//! (`tests/mutation.rs`) and by the fuzz targets (`fuzz/`, graph_validate).
//!
//! [`every_op_model`] builds one small model that uses every op kind. It is a
//! chain of *stages* ([`STAGES`]), each appending one op (or a few) that reads
//! the current node tensor and makes a new one, followed by a fixed graph-level
//! readout. **A new op family adds its stage to [`STAGES`]** (one function and
//! one line); nothing else needs to change, and both the mutation suite and
//! the fuzz corpus pick it up.

use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Aggr, ConcatPart, Op, Pool, Section, TensorDesc, TensorKind};

/// Capacity of the every-op model: nodes, edges, graphs.
pub const EVERY_OP_CAPACITY: (u32, u32, u32) = (24, 64, 4);

/// A model under construction: the writer, a deterministic weight generator
/// and the node tensors made so far (the last one is the current tensor).
pub struct Fixture {
    /// The model writer.
    pub w: ModelWriter,
    seed: u32,
    /// Node tensors in the order the stages made them; `nodes[0]` is the input.
    pub nodes: Vec<u8>,
}

impl Fixture {
    /// A fixture whose input is a node tensor of `channels` channels.
    pub fn new(channels: u16, scale: f32, zero_point: i8) -> Self {
        let mut f = Fixture {
            w: ModelWriter::new(),
            seed: 0x2545_f491,
            nodes: Vec::new(),
        };
        let x = f.tensor(TensorKind::Node, channels, scale, zero_point);
        f.nodes.push(x);
        f
    }

    /// Adds a tensor (not recorded as a stage output).
    pub fn tensor(&mut self, kind: TensorKind, channels: u16, scale: f32, zero_point: i8) -> u8 {
        self.w.add_tensor(TensorDesc {
            kind,
            channels,
            scale,
            zero_point,
        })
    }

    /// Adds a node tensor and makes it the current one.
    pub fn next_node(&mut self, channels: u16, scale: f32, zero_point: i8) -> u8 {
        let t = self.tensor(TensorKind::Node, channels, scale, zero_point);
        self.nodes.push(t);
        t
    }

    /// The current node tensor.
    pub fn cur(&self) -> u8 {
        self.nodes.last().copied().unwrap_or(0)
    }

    /// Channels of node tensor `t`.
    pub fn channels(&self, t: u8) -> usize {
        self.w
            .tensors()
            .get(t as usize)
            .map_or(0, |d| d.channels as usize)
    }

    /// Deterministic values (LCG), uniform in `-127..=127`.
    pub fn values(&mut self, n: usize) -> Vec<i8> {
        (0..n)
            .map(|_| {
                self.seed = self
                    .seed
                    .wrapping_mul(1_664_525)
                    .wrapping_add(1_013_904_223);
                (((self.seed >> 24) % 255) as i32 - 127) as i8
            })
            .collect()
    }

    /// int8 weights `[o, i]` and the channel parameters of `o` channels.
    pub fn linear(&mut self, i: usize, o: usize) -> (Section, Section) {
        let ws = self.values(i * o);
        let recs: Vec<ChannelRecord> = (0..o)
            .map(|k| ChannelRecord {
                bias: 100 * k as i32 - 150,
                mult: (1 << 30) + (k as i32) * 7919,
                shift: -8,
            })
            .collect();
        (self.w.add_i8(&ws), self.w.add_channel_params(&recs))
    }

    /// Little-endian bytes as a section (empty input: the empty section).
    pub fn bytes(&mut self, b: &[u8]) -> Section {
        if b.is_empty() {
            Section::default()
        } else {
            self.w.add_bytes(b)
        }
    }
}

/// Two concat parts at unit scale.
pub fn parts(p: u8, q: u8) -> heapless::Vec<ConcatPart, 8> {
    heapless::Vec::from_slice(&[
        ConcatPart {
            input: p,
            mult_q16: 65536,
        },
        ConcatPart {
            input: q,
            mult_q16: 65536,
        },
    ])
    .unwrap_or_default()
}

/// A stage: appends ops that read the current node tensor and end in a new one.
pub type Stage = fn(&mut Fixture);

/// The stages of [`every_op_model`], in order: `(name, stage)`.
/// **New op families add their stage here** (at the end, before the readout).
pub const STAGES: &[(&str, Stage)] = &[
    ("gcn (improved, edge weights)", gcn),
    ("sage max (normalised, root weight)", sage_max),
    ("sage mean (no root weight)", sage_mean),
    ("gin aggregate", gin),
    ("add (residual)", add),
    ("concat (with the first stage's output)", concat_first),
    ("act (leaky relu)", act),
    ("gat (GATConv, 2 heads, concat)", gat),
];

fn gcn(f: &mut Fixture) {
    let input = f.cur();
    let (weights, params) = f.linear(f.channels(input), 4);
    let output = f.next_node(4, 0.1, -3);
    f.w.add_op(Op::GcnConv {
        input,
        output,
        weights,
        params,
        act: Activation::Relu,
        improved: true,
        add_self_loops: true,
        normalize: true,
        edge_weight: true,
    });
}

fn sage_max(f: &mut Fixture) {
    let input = f.cur();
    let (weights_l, params) = f.linear(4, 4);
    let (weights_r, _) = f.linear(4, 4);
    let output = f.next_node(4, 1.0 / 127.0, 0);
    f.w.add_op(Op::SageConv {
        input,
        output,
        aggr: Aggr::Max,
        weights_l,
        weights_r,
        params,
        act: Activation::None,
        normalize: true,
    });
}

fn sage_mean(f: &mut Fixture) {
    let input = f.cur();
    let (weights_l, params) = f.linear(4, 4);
    let output = f.next_node(4, 0.08, 1);
    f.w.add_op(Op::SageConv {
        input,
        output,
        aggr: Aggr::Mean,
        weights_l,
        weights_r: Section::default(),
        params,
        act: Activation::LeakyRelu { alpha_q16: 6554 },
        normalize: false,
    });
}

fn gin(f: &mut Fixture) {
    let input = f.cur();
    let output = f.next_node(4, 0.12, -1);
    f.w.add_op(Op::GinAggregate {
        input,
        output,
        one_plus_eps_q16: 80000,
        mult: 1 << 30,
        shift: -6,
    });
}

/// The current tensor plus the one before it.
fn add(f: &mut Fixture) {
    let (a, b) = (f.cur(), f.nodes[f.nodes.len() - 2]);
    let output = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::Add {
        a,
        b,
        output,
        mult_a_q16: 78000,
        mult_b_q16: 52000,
        act: Activation::Relu,
    });
}

/// The current tensor concatenated with the first stage's output.
fn concat_first(f: &mut Fixture) {
    let (p, q) = (f.cur(), f.nodes[1]);
    let ch = f.channels(p) + f.channels(q);
    let output = f.next_node(ch as u16, 0.1, 0);
    f.w.add_op(Op::Concat {
        parts: parts(p, q),
        output,
    });
}

fn act(f: &mut Fixture) {
    let input = f.cur();
    let output = f.next_node(f.channels(input) as u16, 0.1, 0);
    f.w.add_op(Op::Act {
        input,
        output,
        act: Activation::LeakyRelu { alpha_q16: 13107 },
    });
}

/// GATConv (not v2), 2 heads of 4 channels, concatenated (docs/format.md §GatConv).
fn gat(f: &mut Fixture) {
    let (heads, c) = (2usize, 4usize);
    let hc = heads * c;
    let input = f.cur();
    let in_ch = f.channels(input);
    let ws = f.values(hc * in_ch);
    let weights = f.w.add_i8(&ws);
    // att_src[HC] then att_dst[HC], i16.
    let att: Vec<u8> = f
        .values(2 * hc)
        .iter()
        .flat_map(|&v| (v as i16 * 64).to_le_bytes())
        .collect();
    let att = f.bytes(&att);
    // Per head: m_src, s_src, m_dst, s_dst (every shift in -32..=31).
    let logit: Vec<u8> = (0..heads)
        .flat_map(|k| [(1 << 30) + k as i32 * 4099, -10, 1 << 30, -11])
        .flat_map(i32::to_le_bytes)
        .collect();
    let logit = f.bytes(&logit);
    let recs: Vec<ChannelRecord> = (0..hc)
        .map(|k| ChannelRecord {
            bias: 40 * k as i32 - 120,
            mult: (1 << 30) + (k as i32) * 7919,
            shift: -8,
        })
        .collect();
    let params = f.w.add_channel_params(&recs);
    let output = f.next_node(hc as u16, 0.1, 0);
    f.w.add_op(Op::GatConv {
        input,
        output,
        heads: heads as u8,
        concat: true,
        v2: false,
        add_self_loops: true,
        negative_slope_q16: 13107,
        weights,
        weights_r: Section::default(),
        lin_bias: Section::default(),
        att,
        logit,
        params,
        act: Activation::None,
        edge: None,
    });
}

/// A small model with every op kind: the [`STAGES`] (GCN with edge weights,
/// SAGE max with normalisation and mean without root weight, GIN, residual
/// add, concat, standalone activation, GAT with 2 heads, …), then a
/// graph-level readout: mean and max pooling, their concat and a linear head.
/// Outputs: the graph-level head and the last node tensor. Capacity
/// [`EVERY_OP_CAPACITY`].
pub fn every_op_model() -> Vec<u8> {
    let mut f = Fixture::new(3, 0.05, 2);
    for (_, stage) in STAGES {
        stage(&mut f);
    }
    let h = f.cur();
    let ch = f.channels(h) as u16;
    let pm = f.tensor(TensorKind::Graph, ch, 0.1, 0);
    let px = f.tensor(TensorKind::Graph, ch, 0.1, 0);
    let cat = f.tensor(TensorKind::Graph, 2 * ch, 0.1, 0);
    let out = f.tensor(TensorKind::Graph, 3, 0.2, 5);
    f.w.add_op(Op::GlobalPool {
        input: h,
        output: pm,
        pool: Pool::Mean,
        mult: 1 << 30,
        shift: -7,
    });
    f.w.add_op(Op::GlobalPool {
        input: h,
        output: px,
        pool: Pool::Max,
        mult: 0,
        shift: 0,
    });
    f.w.add_op(Op::Concat {
        parts: parts(pm, px),
        output: cat,
    });
    let (weights, params) = f.linear(2 * ch as usize, 3);
    f.w.add_op(Op::Linear {
        input: cat,
        output: out,
        weights,
        params,
        act: Activation::None,
    });
    let (n, e, g) = EVERY_OP_CAPACITY;
    f.w.finish(f.nodes[0], &[out, h], n, e, g)
        .expect("the every-op model is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinygnn::{Features, GraphInput, Model, Session};

    /// The fixture parses, names every op kind it claims, and runs.
    #[test]
    fn every_op_model_has_every_op_and_runs() {
        let bytes = every_op_model();
        let model = Model::from_bytes(&bytes).expect("valid");
        let mut names: Vec<&str> = model.ops().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names,
            [
                "act",
                "add",
                "concat",
                "gat_conv",
                "gcn_conv",
                "gin_aggregate",
                "global_pool",
                "linear",
                "sage_conv"
            ]
        );
        // Two graphs: a 4-cycle and a triangle.
        let x: Vec<f32> = (0..7 * 3).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
        let src = [0u16, 1, 2, 3, 4, 5, 6];
        let dst = [1u16, 2, 3, 0, 5, 6, 4];
        let w = [1.0f32, 0.5, 2.0, 1.0, 1.0, 0.25, 1.0];
        let batch = [0u16, 0, 0, 0, 1, 1, 1];
        let input = GraphInput {
            num_nodes: 7,
            features: Features::F32(&x),
            sources: &src,
            targets: &dst,
            edge_weight: Some(&w),
            batch: Some(&batch),
            edge_attr: None,
            pairs: None,
        };
        let need = model.arena_bytes(7, 7, 2);
        let mut buf = vec![0u8; need + 8];
        let off = buf.as_ptr().align_offset(8);
        let mut s = Session::new(&model, &mut buf[off..off + need]);
        let head = s.run(&input).expect("runs");
        assert_eq!((head.rows, head.channels), (2, 3));
        let last = s.output(1).expect("second output");
        assert_eq!((last.rows, last.channels), (7, 8));
        // Not saturated to one value: the stages carry signal to the end.
        assert!(
            last.data.iter().any(|&v| v != last.data[0]),
            "{:?}",
            last.data
        );
    }
}
