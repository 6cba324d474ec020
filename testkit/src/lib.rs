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
use tinygnn::format::{
    Activation, Aggr, ConcatPart, Op, Pool, Section, TensorDesc, TensorKind, TransformerEdge,
};
use tinygnn::ops::softmax::{EXP_ONE, PROB_SCALE, PROB_ZERO_POINT};
use tinygnn::ops::{
    Act, Add, AttentionPool, ChebConv, Concat, EdgeConv, GatConv, GcnConv, GinAggregate, GineConv,
    GlobalPool, HypergraphConv, LayerNorm, Linear, Lut, Mul, Propagate, RandomWalkPe, SageConv,
    Softmax, TransformerConv,
};

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

    /// Channel parameters of `o` channels (bias, multiplier, shift).
    pub fn params(&mut self, o: usize) -> Section {
        let recs: Vec<ChannelRecord> = (0..o)
            .map(|k| ChannelRecord {
                bias: 60 * k as i32 - 90,
                mult: (1 << 30) + (k as i32) * 6007,
                shift: -7,
            })
            .collect();
        self.w.add_channel_params(&recs)
    }

    /// int8 weights `[o, i]` (no parameters).
    pub fn weights(&mut self, i: usize, o: usize) -> Section {
        let ws = self.values(i * o);
        self.w.add_i8(&ws)
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
    ("appnp (K=2, alpha 0.1)", appnp),
    ("sgconv (K=1, 8 -> 4)", sgconv),
    ("gcn2conv (x0 = the first stage's output)", gcn2),
    ("tagconv (K=2, no self-loops)", tag),
    ("lut (int8 table)", lut),
    ("edgeconv (k=0, max, two layers)", edge_conv),
    ("dynamic edgeconv (k=3, mean, one layer)", dyn_edge_conv),
    (
        "transformer (TransformerConv, 2 heads, concat, root weight)",
        transformer,
    ),
];

fn transformer(f: &mut Fixture) {
    transformer_with(f, None, false);
}

/// A TransformerConv (2 heads of 3 channels, concat, root weight), with edge
/// features `(tensor, D)` and/or the `beta` gate.
fn transformer_with(f: &mut Fixture, edge: Option<(u8, usize)>, beta: bool) {
    let (heads, c) = (2usize, 3usize);
    let hc = heads * c;
    let input = f.cur();
    let in_ch = f.channels(input);
    let [wq, wk, wv, ws] = [0, 1, 2, 3].map(|_| {
        let v = f.values(hc * in_ch);
        f.w.add_i8(&v)
    });
    // bq, bk, bv, and with beta lin_skip's bias.
    let n_bias = 3 * hc + if beta { hc } else { 0 };
    let bias: Vec<u8> = (0..n_bias as i32)
        .flat_map(|k| (37 * k - 200).to_le_bytes())
        .collect();
    let lin_bias = f.bytes(&bias);
    let recs: Vec<ChannelRecord> = (0..hc)
        .map(|k| ChannelRecord {
            bias: 30 * k as i32 - 90,
            mult: (1 << 30) + (k as i32) * 7919,
            shift: -7,
        })
        .collect();
    let params = f.w.add_channel_params(&recs);
    // (m, s) pairs: per channel, every shift in -32..=31.
    let pairs = |n: usize, sign: i32, shift: i32| -> Vec<u8> {
        (0..n as i32)
            .flat_map(|k| [sign * ((1 << 30) + k * 5003), shift - k % 3])
            .flat_map(i32::to_le_bytes)
            .collect()
    };
    let edge = edge.map(|(edge_attr, d)| {
        let w = f.values(hc * d);
        let weights = f.w.add_i8(&w);
        let mut rescale = pairs(hc, 1, -4);
        rescale.extend(pairs(hc, 1, -2));
        TransformerEdge {
            edge_attr,
            weights,
            rescale: f.bytes(&rescale),
        }
    });
    let beta = if beta {
        let mut p = pairs(hc, 1, 3);
        p.extend(pairs(hc, -1, 2));
        f.bytes(&p)
    } else {
        Section::default()
    };
    // Zero point 0, as the readout's max pooling keeps its input's quantization.
    let output = f.next_node(hc as u16, 0.1, 0);
    f.w.add_op(Op::TransformerConv(TransformerConv {
        input,
        output,
        heads: heads as u8,
        concat: true,
        global: false,
        w_query: wq,
        w_key: wk,
        w_value: wv,
        w_skip: ws,
        lin_bias,
        q_shift: 2,
        k_shift: 3,
        logit_mult: 1 << 30,
        logit_shift: 4,
        params,
        act: Activation::Relu,
        edge,
        beta,
    }));
}

fn gcn(f: &mut Fixture) {
    let input = f.cur();
    let (weights, params) = f.linear(f.channels(input), 4);
    let output = f.next_node(4, 0.1, -3);
    f.w.add_op(Op::GcnConv(GcnConv {
        input,
        output,
        weights,
        params,
        act: Activation::Relu,
        improved: true,
        add_self_loops: true,
        normalize: true,
        edge_weight: true,
    }));
}

fn sage_max(f: &mut Fixture) {
    let input = f.cur();
    let (weights_l, params) = f.linear(4, 4);
    let (weights_r, _) = f.linear(4, 4);
    let output = f.next_node(4, 1.0 / 127.0, 0);
    f.w.add_op(Op::SageConv(SageConv {
        input,
        output,
        aggr: Aggr::Max,
        weights_l,
        weights_r,
        params,
        act: Activation::None,
        normalize: true,
    }));
}

fn sage_mean(f: &mut Fixture) {
    let input = f.cur();
    let (weights_l, params) = f.linear(4, 4);
    let output = f.next_node(4, 0.08, 1);
    f.w.add_op(Op::SageConv(SageConv {
        input,
        output,
        aggr: Aggr::Mean,
        weights_l,
        weights_r: Section::default(),
        params,
        act: Activation::LeakyRelu { alpha_q16: 6554 },
        normalize: false,
    }));
}

fn gin(f: &mut Fixture) {
    let input = f.cur();
    let output = f.next_node(4, 0.12, -1);
    f.w.add_op(Op::GinAggregate(GinAggregate {
        input,
        output,
        one_plus_eps_q16: 80000,
        mult: 1 << 30,
        shift: -6,
    }));
}

/// The current tensor plus the one before it.
fn add(f: &mut Fixture) {
    let (a, b) = (f.cur(), f.nodes[f.nodes.len() - 2]);
    let output = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::Add(Add {
        a,
        b,
        output,
        mult_a_q16: 78000,
        mult_b_q16: 52000,
        act: Activation::Relu,
    }));
}

/// The current tensor concatenated with the first stage's output.
fn concat_first(f: &mut Fixture) {
    let (p, q) = (f.cur(), f.nodes[1]);
    let ch = f.channels(p) + f.channels(q);
    let output = f.next_node(ch as u16, 0.1, 0);
    f.w.add_op(Op::Concat(Concat {
        parts: parts(p, q),
        output,
    }));
}

fn act(f: &mut Fixture) {
    let input = f.cur();
    let output = f.next_node(f.channels(input) as u16, 0.1, 0);
    f.w.add_op(Op::Act(Act {
        input,
        output,
        act: Activation::LeakyRelu { alpha_q16: 13107 },
    }));
}

/// GATConv (not v2), 2 heads of 4 channels, concatenated (docs/format.md §GatConv).
fn gat(f: &mut Fixture) {
    gat_with(f, None);
}

/// [`gat`], with the edge-feature part (`edge_dim`) when `edge` is the
/// model's edge tensor and its channel count.
fn gat_with(f: &mut Fixture, edge: Option<(u8, usize)>) {
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
    let edge = edge.map(|(edge_attr, d)| {
        // V[H, D] (i16) and (m, s) per head.
        let att: Vec<u8> = f
            .values(heads * d)
            .iter()
            .flat_map(|&v| (v as i16 * 32).to_le_bytes())
            .collect();
        let logit: Vec<u8> = (0..heads)
            .flat_map(|k| [(1 << 30) + k as i32 * 3001, -9])
            .flat_map(i32::to_le_bytes)
            .collect();
        tinygnn::format::GatEdge {
            edge_attr,
            att: f.bytes(&att),
            logit: f.bytes(&logit),
        }
    });
    f.w.add_op(Op::GatConv(GatConv {
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
        edge,
    }));
}

/// The fields in which the APPNP / SGConv / GCN2Conv / TAGConv stages differ;
/// every one normalises like GCN and none is `improved`.
struct Prop {
    k: u8,
    alpha_q30: i32,
    weights: Section,
    /// The initial-residual input; `None`: the op's own input.
    x0: Option<u8>,
    weights_0: Section,
    act: Activation,
    add_self_loops: bool,
    edge_weight: bool,
    hops: bool,
}

impl Default for Prop {
    fn default() -> Self {
        Prop {
            k: 1,
            alpha_q30: 0,
            weights: Section::default(),
            x0: None,
            weights_0: Section::default(),
            act: Activation::None,
            add_self_loops: true,
            edge_weight: false,
            hops: false,
        }
    }
}

/// Adds `Op::Propagate` from `input` to `output` with `params` and `p`.
fn propagate(f: &mut Fixture, input: u8, output: u8, params: Section, p: Prop) {
    f.w.add_op(Op::Propagate(Propagate {
        input,
        output,
        k: p.k,
        alpha_q30: p.alpha_q30,
        weights: p.weights,
        x0: p.x0.unwrap_or(input),
        weights_0: p.weights_0,
        params,
        act: p.act,
        improved: false,
        add_self_loops: p.add_self_loops,
        normalize: true,
        edge_weight: p.edge_weight,
        hops: p.hops,
    }));
}

/// APPNP: `K = 2` steps, `alpha = 0.1`, no weights (same channels in and out).
fn appnp(f: &mut Fixture) {
    let input = f.cur();
    let ch = f.channels(input);
    let params = f.params(ch);
    let output = f.next_node(ch as u16, 0.1, 0);
    let p = Prop {
        k: 2,
        alpha_q30: (1 << 30) / 10,
        act: Activation::Relu,
        ..Prop::default()
    };
    propagate(f, input, output, params, p);
}

/// SGConv: one step of `Â` after the weights, with edge weights.
fn sgconv(f: &mut Fixture) {
    let input = f.cur();
    let (weights, params) = f.linear(f.channels(input), 4);
    let output = f.next_node(4, 0.1, -2);
    let p = Prop {
        weights,
        edge_weight: true,
        ..Prop::default()
    };
    propagate(f, input, output, params, p);
}

/// GCN2Conv: the initial residual reads the first stage's output (`x0`).
fn gcn2(f: &mut Fixture) {
    let (input, x0) = (f.cur(), f.nodes[1]);
    let weights = f.weights(f.channels(input), 4);
    let weights_0 = f.weights(f.channels(x0), 4);
    let params = f.params(4);
    let output = f.next_node(4, 0.1, 1);
    let p = Prop {
        alpha_q30: (1 << 30) / 5,
        weights,
        x0: Some(x0),
        weights_0,
        act: Activation::Relu,
        ..Prop::default()
    };
    propagate(f, input, output, params, p);
}

/// TAGConv: `K = 2`, three stacked matrices, normalised without self-loops.
fn tag(f: &mut Fixture) {
    let input = f.cur();
    let weights = f.weights(f.channels(input), 3 * 4);
    let params = f.params(4);
    let output = f.next_node(4, 0.1, 0);
    let p = Prop {
        k: 2,
        weights,
        add_self_loops: false,
        hops: true,
        ..Prop::default()
    };
    propagate(f, input, output, params, p);
}

/// An element-wise int8 table (as the converter writes for ELU).
fn lut(f: &mut Fixture) {
    let input = f.cur();
    let table: Vec<u8> = f.values(256).iter().map(|&v| v as u8).collect();
    let table = f.bytes(&table);
    let output = f.next_node(f.channels(input) as u16, 0.07, -5);
    f.w.add_op(Op::Lut(Lut {
        input,
        output,
        table,
    }));
}

/// EdgeConv over the graph's edges, max, `nn` of two layers (hidden 6).
fn edge_conv(f: &mut Fixture) {
    let input = f.cur();
    let ci = f.channels(input);
    let (w_self, params1) = f.linear(ci, 6);
    let w_nbr = f.weights(ci, 6);
    let (w2, params2) = f.linear(6, 4);
    let output = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::EdgeConv(EdgeConv {
        input,
        output,
        aggr: Aggr::Max,
        k: 0,
        hidden: 6,
        w_self,
        w_nbr,
        params1,
        act1: Activation::Relu,
        hidden_zp: -2,
        w2,
        params2,
        act2: Activation::None,
    }));
}

/// DynamicEdgeConv: the 3 nearest points of each graph, mean, one layer.
fn dyn_edge_conv(f: &mut Fixture) {
    let input = f.cur();
    let ci = f.channels(input);
    let (w_self, params1) = f.linear(ci, 4);
    let w_nbr = f.weights(ci, 4);
    let output = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::EdgeConv(EdgeConv {
        input,
        output,
        aggr: Aggr::Mean,
        k: 3,
        hidden: 4,
        w_self,
        w_nbr,
        params1,
        act1: Activation::Relu,
        hidden_zp: 0,
        w2: Section::default(),
        params2: Section::default(),
        act2: Activation::None,
    }));
}

/// Channels of the edge features of [`edge_op_model`].
pub const EDGE_FEATURES: usize = 2;

/// A small model with the ops that read edge features (`edge_attr`,
/// [`EDGE_FEATURES`] channels): Linear 3 → 2, GINEConv without `lin`
/// (edge features added as they are), GINEConv with `lin`, GATConv with
/// `edge_dim`, TransformerConv with `edge_dim` and `beta`. Output: the last
/// node tensor. Capacity [`EVERY_OP_CAPACITY`].
pub fn edge_op_model() -> Vec<u8> {
    let mut f = Fixture::new(3, 0.05, 2);
    let ea = f.tensor(TensorKind::Edge, EDGE_FEATURES as u16, 0.04, -3);
    let x = f.cur();
    let (weights, params) = f.linear(3, EDGE_FEATURES);
    let a = f.next_node(EDGE_FEATURES as u16, 0.1, 0);
    f.w.add_op(Op::Linear(Linear {
        input: x,
        output: a,
        weights,
        params,
        act: Activation::Relu,
    }));
    for lin in [false, true] {
        let input = f.cur();
        let (edge_weights, edge_params) = if lin {
            f.linear(EDGE_FEATURES, EDGE_FEATURES)
        } else {
            (Section::default(), f.params(EDGE_FEATURES))
        };
        let output = f.next_node(EDGE_FEATURES as u16, 0.1, -1);
        f.w.add_op(Op::GineConv(GineConv {
            input,
            edge_attr: ea,
            output,
            one_plus_eps_q16: if lin { 75000 } else { 60000 },
            edge_weights,
            edge_params,
            mult: 1 << 30,
            shift: -6,
        }));
    }
    gat_with(&mut f, Some((ea, EDGE_FEATURES)));
    transformer_with(&mut f, Some((ea, EDGE_FEATURES)), true);
    let out = f.cur();
    let (n, e, g) = EVERY_OP_CAPACITY;
    f.w.finish(f.nodes[0], &[out], n, e, g)
        .expect("the edge-op model is valid")
}

/// A small hypergraph model (it needs `GraphInput::hyperedges`): Linear
/// 3 → 4, HypergraphConv 4 → 5 reading the hyperedge weights (ReLU),
/// HypergraphConv 5 → 3 without them. Output: the last node tensor.
/// Capacity [`EVERY_OP_CAPACITY`] (`max_edges` bounds the incidences).
pub fn hyper_op_model() -> Vec<u8> {
    let mut f = Fixture::new(3, 0.05, 2);
    let x = f.cur();
    let (weights, params) = f.linear(3, 4);
    let a = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::Linear(Linear {
        input: x,
        output: a,
        weights,
        params,
        act: Activation::Relu,
    }));
    for (ch, weighted) in [(5u16, true), (3, false)] {
        let input = f.cur();
        let (weights, params) = f.linear(f.channels(input), usize::from(ch));
        let output = f.next_node(ch, 0.1, if weighted { -3 } else { 4 });
        f.w.add_op(Op::HypergraphConv(HypergraphConv {
            input,
            output,
            weights,
            params,
            act: if weighted {
                Activation::Relu
            } else {
                Activation::None
            },
            weighted,
        }));
    }
    let out = f.cur();
    let (n, e, g) = EVERY_OP_CAPACITY;
    f.w.finish(f.nodes[0], &[out], n, e, g)
        .expect("the hyper-op model is valid")
}

/// A minimal recurrent cell: `x [N, 2]` and the state `h [N, 2]`;
/// `p = x ⊙ h` (the `Mul` op, requantized with `mult`, `shift`), `h' = x + p`;
/// outputs `[p, h']`, `h'` the next state. Scales `x` 0.5, `h` and `h'` 0.25
/// (zero point 3), `p` 0.125 (zero point −1), so the integer results are easy
/// to write down (`tests/recurrent.rs` does). Capacity 8 nodes, 8 edges.
pub fn recurrent_cell(mult: i32, shift: i32) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let [x, h, p, hn] = gru_like_core(&mut w, mult, shift);
    w.set_state(h, hn);
    w.finish(x, &[p, hn], 8, 8, 1)
        .expect("the recurrent cell is valid")
}

/// The node tensor of the cells' 2 channels.
fn cell_tensor(scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Node,
        channels: 2,
        scale,
        zero_point,
    }
}

/// The tensors `[x, h, p, h']` (ids 0 to 3) and ops of [`recurrent_cell`].
fn gru_like_core(w: &mut ModelWriter, mult: i32, shift: i32) -> [u8; 4] {
    let x = w.add_tensor(cell_tensor(0.5, 0));
    let h = w.add_tensor(cell_tensor(0.25, 3));
    let p = w.add_tensor(cell_tensor(0.125, -1));
    let hn = w.add_tensor(cell_tensor(0.25, 3));
    w.add_op(Op::Mul(Mul {
        a: x,
        b: h,
        output: p,
        mult,
        shift,
    }));
    w.add_op(Op::Add(Add {
        a: x,
        b: p,
        output: hn,
        mult_a_q16: 1 << 17,
        mult_b_q16: 1 << 15,
        act: Activation::None,
    }));
    [x, h, p, hn]
}

/// A cell with two states, as an LSTM's `h` and `c`, each with its own
/// quantization: [`recurrent_cell`] (x [N,2] tensor 0, h tensor 1, p = x ⊙ h
/// tensor 2, h' = x + p tensor 3) and c' = c + x/2 (c: tensor 4, scale
/// 0.5, zero point −2; c': tensor 5). Outputs [p, h', c'] (tensors 2, 3, 5);
/// the state record is `states` ([(1, 3), (4, 5)] for the valid cell), so
/// that tests can also write inconsistent ones.
pub fn two_state_cell(
    mult: i32,
    shift: i32,
    states: &[(u8, u8)],
) -> Result<Vec<u8>, tinygnn::format::writer::WriteError> {
    let mut w = ModelWriter::new();
    let [x, _, p, hn] = gru_like_core(&mut w, mult, shift);
    let c = w.add_tensor(cell_tensor(0.5, -2));
    let cn = w.add_tensor(cell_tensor(0.5, -2));
    w.add_op(Op::Add(Add {
        a: c,
        b: x,
        output: cn,
        mult_a_q16: 1 << 16,
        mult_b_q16: 1 << 15,
        act: Activation::None,
    }));
    w.set_states(states);
    w.finish(x, &[p, hn, cn], 8, 8, 1)
}

/// A small ChebConv model: Linear 3 → 4, ChebConv `K = 3` 4 → 5 reading
/// the edge weights (ReLU), ChebConv `K = 1` 5 → 3, ChebConv `K = 2` 3 → 4.
/// Output: the last node tensor. Capacity [`EVERY_OP_CAPACITY`].
pub fn cheb_op_model() -> Vec<u8> {
    let mut f = Fixture::new(3, 0.05, 2);
    let x = f.cur();
    let (weights, params) = f.linear(3, 4);
    let a = f.next_node(4, 0.1, 0);
    f.w.add_op(Op::Linear(Linear {
        input: x,
        output: a,
        weights,
        params,
        act: Activation::Relu,
    }));
    for (k, ch, edge_weight) in [(3u8, 5u16, true), (1, 3, false), (2, 4, false)] {
        let input = f.cur();
        let weights = f.weights(f.channels(input), usize::from(k) * usize::from(ch));
        let params = f.params(usize::from(ch));
        let output = f.next_node(ch, 0.1, if edge_weight { -3 } else { 2 });
        f.w.add_op(Op::ChebConv(ChebConv {
            input,
            output,
            k,
            weights,
            params,
            act: if edge_weight {
                Activation::Relu
            } else {
                Activation::None
            },
            edge_weight,
        }));
    }
    let out = f.cur();
    let (n, e, g) = EVERY_OP_CAPACITY;
    f.w.finish(f.nodes[0], &[out], n, e, g)
        .expect("the cheb-op model is valid")
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
    f.w.add_op(Op::GlobalPool(GlobalPool {
        input: h,
        output: pm,
        pool: Pool::Mean,
        mult: 1 << 30,
        shift: -7,
    }));
    f.w.add_op(Op::GlobalPool(GlobalPool {
        input: h,
        output: px,
        pool: Pool::Max,
        mult: 0,
        shift: 0,
    }));
    f.w.add_op(Op::Concat(Concat {
        parts: parts(pm, px),
        output: cat,
    }));
    let (weights, params) = f.linear(2 * ch as usize, 3);
    f.w.add_op(Op::Linear(Linear {
        input: cat,
        output: out,
        weights,
        params,
        act: Activation::None,
    }));
    // The random-walk positional encoding (4 steps) of the node graph.
    let pe = f.tensor(TensorKind::Node, 4, 1.0 / 127.0, -128);
    f.w.add_op(Op::RandomWalkPe(RandomWalkPe {
        input: f.nodes[0],
        output: pe,
        steps: 4,
        mult: 1 << 30,
        shift: -22,
    }));
    // Attention pooling of the last node tensor with a one-channel gate.
    let (gw, gp) = f.linear(ch as usize, 1);
    let gate = f.tensor(TensorKind::Node, 1, 0.05, -10);
    f.w.add_op(Op::Linear(Linear {
        input: h,
        output: gate,
        weights: gw,
        params: gp,
        act: Activation::None,
    }));
    let ap = f.tensor(TensorKind::Graph, ch, 0.1, 0);
    f.w.add_op(Op::AttentionPool(AttentionPool {
        gate,
        input: h,
        output: ap,
        gate_q16: 3277,
        mult: 1 << 30,
        shift: 1,
    }));
    // Softmax and log-softmax heads on the graph rows (extra outputs).
    let sm = f.tensor(TensorKind::Graph, 3, PROB_SCALE, PROB_ZERO_POINT);
    let lsm = f.tensor(TensorKind::Graph, 3, 0.05, 100);
    let table: Vec<u8> = (0..256u32)
        .flat_map(|d| {
            ((f64::from(EXP_ONE) * (-0.2 * f64::from(d)).exp()).round() as u16).to_le_bytes()
        })
        .collect();
    let table = f.w.add_bytes(&table);
    f.w.add_op(Op::Softmax(Softmax {
        input: out,
        output: sm,
        log: false,
        table,
        ln2_q16: 0,
        mult: 0,
        shift: 0,
    }));
    // Layer norm on the graph rows, feeding the log-softmax:
    // a_c = 2^14 + 512·c, b_c = c·2^20 (F = 24).
    let ln = f.tensor(TensorKind::Graph, 3, 0.2, 0);
    let affine: Vec<u8> = (0..3i64)
        .flat_map(|c| {
            let a = (1i32 << 14) + 512 * c as i32;
            a.to_le_bytes().into_iter().chain((c << 20).to_le_bytes())
        })
        .collect();
    let affine = f.w.add_bytes(&affine);
    f.w.add_op(Op::LayerNorm(LayerNorm {
        input: out,
        output: ln,
        eps_q: 40,
        affine,
        frac: 24,
    }));
    f.w.add_op(Op::Softmax(Softmax {
        input: ln,
        output: lsm,
        log: true,
        table,
        ln2_q16: (std::f64::consts::LN_2 / 0.2 * 65536.0).round() as i32,
        // s_x / (2^16 · s_out) = 0.2 / (65536 · 0.05) = 2^-14: 2^30 · 2^-(14+1)·2.
        mult: 1 << 30,
        shift: -13,
    }));
    let (n, e, g) = EVERY_OP_CAPACITY;
    f.w.finish(f.nodes[0], &[out, h, sm, lsm], n, e, g)
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
                "appnp",
                "attention_pool",
                "concat",
                "dynamic_edge_conv",
                "edge_conv",
                "gat_conv",
                "gcn2_conv",
                "gcn_conv",
                "gin_aggregate",
                "global_pool",
                "layer_norm",
                "linear",
                "log_softmax",
                "lut",
                "random_walk_pe",
                "sage_conv",
                "sg_conv",
                "softmax",
                "tag_conv",
                "transformer_conv"
            ]
        );
        // Two graphs: a 4-cycle and a triangle.
        let x: Vec<f32> = (0..7 * 3).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
        let src = [0u16, 1, 2, 3, 4, 5, 6];
        let dst = [1u16, 2, 3, 0, 5, 6, 4];
        let w = [1.0f32, 0.5, 2.0, 1.0, 1.0, 0.25, 1.0];
        let batch = [0u16, 0, 0, 0, 1, 1, 1];
        let input = GraphInput::new(7, Features::F32(&x), &src, &dst)
            .with_edge_weight(&w)
            .with_batch(&batch);
        let need = model.arena_bytes(7, 7, 2);
        let mut buf = vec![0u8; need + 8];
        let off = buf.as_ptr().align_offset(8);
        let mut s = Session::new(&model, &mut buf[off..off + need]);
        let head = s.run(&input).expect("runs");
        assert_eq!((head.rows, head.channels), (2, 3));
        let last = s.output(1).expect("second output");
        assert_eq!((last.rows, last.channels), (7, 6));
        // Not saturated to one value: the stages carry signal to the end.
        assert!(
            last.data.iter().any(|&v| v != last.data[0]),
            "{:?}",
            last.data
        );
    }

    /// The cheb-op fixture names its ops, reads edge weights, and runs on a
    /// directed graph with a self-loop.
    #[test]
    fn cheb_op_model_runs() {
        let bytes = cheb_op_model();
        let model = Model::from_bytes(&bytes).expect("valid");
        let names: Vec<&str> = model.ops().map(|o| o.name()).collect();
        assert_eq!(names, ["linear", "cheb_conv", "cheb_conv", "cheb_conv"]);
        assert!(model.uses_edge_weight());
        let x: Vec<f32> = (0..6 * 3).map(|i| (i % 7) as f32 * 1.2 - 3.6).collect();
        let src = [0u16, 1, 2, 3, 4, 2, 5];
        let dst = [1u16, 2, 3, 4, 0, 2, 0];
        let w = [1.0f32, 0.5, 2.0, 1.0, 1.0, 3.0, 0.25];
        let input = GraphInput::new(6, Features::F32(&x), &src, &dst).with_edge_weight(&w);
        let need = model.arena_bytes(6, 7, 1);
        let mut buf = vec![0u8; need + 8];
        let off = buf.as_ptr().align_offset(8);
        let mut s = Session::new(&model, &mut buf[off..off + need]);
        let out = s.run(&input).expect("runs");
        assert_eq!((out.rows, out.channels), (6, 4));
        assert!(out.data.iter().any(|&v| v != out.data[0]), "{:?}", out.data);
    }

    /// The hyper-op fixture names its ops, needs hyperedges, and runs with them.
    #[test]
    fn hyper_op_model_runs_with_hyperedges() {
        let bytes = hyper_op_model();
        let model = Model::from_bytes(&bytes).expect("valid");
        let names: Vec<&str> = model.ops().map(|o| o.name()).collect();
        assert_eq!(names, ["linear", "hypergraph_conv", "hypergraph_conv"]);
        assert!(model.uses_hyperedges());
        // Features across the input's range (scale 0.05): the fixture's small
        // multipliers leave too little of a narrow input to tell nodes apart.
        let x: Vec<f32> = (0..6 * 3).map(|i| (i % 7) as f32 * 1.2 - 3.6).collect();
        let h = tinygnn::Hyperedges {
            nodes: &[0, 1, 2, 2, 3, 4, 0],
            edges: &[0, 0, 0, 1, 1, 1, 2],
            weight: Some(&[1.0, 0.5, 2.0]),
        };
        let mut input = GraphInput::new(6, Features::F32(&x), &[], &[]);
        let need = model.arena_bytes(6, 0, 1);
        let mut buf = vec![0u8; need + 8];
        let off = buf.as_ptr().align_offset(8);
        let mut s = Session::new(&model, &mut buf[off..off + need]);
        assert_eq!(
            s.run(&input).map(|_| ()),
            Err(tinygnn::Error::MissingHyperedges)
        );
        input.hyperedges = Some(h);
        let out = s.run(&input).expect("runs");
        assert_eq!((out.rows, out.channels), (6, 3));
        assert!(out.data.iter().any(|&v| v != out.data[0]), "{:?}", out.data);
    }

    /// The edge-op fixture names its ops, needs `edge_attr`, and runs with it.
    #[test]
    fn edge_op_model_runs_with_edge_features() {
        let bytes = edge_op_model();
        let model = Model::from_bytes(&bytes).expect("valid");
        let names: Vec<&str> = model.ops().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "linear",
                "gine_conv",
                "gine_conv",
                "gat_conv",
                "transformer_conv"
            ]
        );
        assert!(model.edge_input().is_some());
        let x: Vec<f32> = (0..5 * 3).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let src = [0u16, 1, 2, 3, 4, 0];
        let dst = [1u16, 2, 3, 4, 0, 2];
        let ea: Vec<f32> = (0..6 * EDGE_FEATURES)
            .map(|i| (i % 5) as f32 * 0.05 - 0.1)
            .collect();
        let mut input = GraphInput::new(5, Features::F32(&x), &src, &dst);
        let need = model.arena_bytes(5, 6, 1);
        let mut buf = vec![0u8; need + 8];
        let off = buf.as_ptr().align_offset(8);
        let mut s = Session::new(&model, &mut buf[off..off + need]);
        assert_eq!(
            s.run(&input).map(|_| ()),
            Err(tinygnn::Error::MissingEdgeAttr)
        );
        input.edge_attr = Some(tinygnn::EdgeAttr::F32(&ea));
        let out = s.run(&input).expect("runs");
        assert_eq!((out.rows, out.channels), (5, 6));
        assert!(out.data.iter().any(|&v| v != out.data[0]), "{:?}", out.data);
    }
}
