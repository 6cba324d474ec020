//! Random models and graphs for trying the boards without an exported
//! model (feature `std`, host only): the demo of `tinygnn pack demo` and
//! the synthetic GCNs of `tinygnn pack synth`. Seeded: the same call gives
//! the same bytes on every machine.
extern crate std;

use std::string::{String, ToString};
use std::vec::Vec;

use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Op, Section, TensorDesc, TensorKind};
use tinygnn::ops::{GcnConv, Linear};

use crate::bundle::writer::OwnedSample;

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

fn node_tensor(channels: u16, scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Node,
        channels,
        scale,
        zero_point,
    }
}

/// Random int8 weights (halved) and channel records (bias in ±1000, one
/// requantization for all channels) of a `ci → co` layer with weight scale `s_w`.
fn random_layer(
    w: &mut ModelWriter,
    rng: &mut Rng,
    (ci, co): (usize, usize),
    (s_in, s_w, s_out): (f32, f32, f32),
) -> (Section, Section) {
    let weights: Vec<i8> = (0..ci * co).map(|_| rng.i8() / 2).collect();
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

fn gcn(input: u8, output: u8, (weights, params): (Section, Section), act: Activation) -> Op {
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
}

/// The demo: a node-level model, GCNConv(8→16, ReLU) → Linear(16→4), up to
/// 64 nodes, 256 edges, 4 graphs, and 3 graphs of 5, 12 and 32 nodes (a
/// ring plus a chord per node, f32 features in [−1, 1), labels `node % 4`).
/// Returns the `.tgnn` bytes and the samples.
pub fn demo() -> Result<(Vec<u8>, Vec<OwnedSample>), String> {
    let mut rng = Rng(0x1234_5678);
    let mut w = ModelWriter::new();
    let x = w.add_tensor(node_tensor(8, 1.0 / 64.0, 0));
    let h = w.add_tensor(node_tensor(16, 1.0 / 16.0, -128));
    let y = w.add_tensor(node_tensor(4, 1.0 / 8.0, 3));
    let layer = random_layer(
        &mut w,
        &mut rng,
        (8, 16),
        (1.0 / 64.0, 1.0 / 128.0, 1.0 / 16.0),
    );
    w.add_op(gcn(x, h, layer, Activation::Relu));
    let (weights, params) = random_layer(
        &mut w,
        &mut rng,
        (16, 4),
        (1.0 / 16.0, 1.0 / 128.0, 1.0 / 8.0),
    );
    w.add_op(Op::Linear(Linear {
        input: h,
        output: y,
        weights,
        params,
        act: Activation::None,
    }));
    let model = w.finish(x, &[y], 64, 256, 4).map_err(|e| e.to_string())?;
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
    Ok((model, samples))
}

/// Shape of a [`synth`] model and its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthShape {
    /// Nodes of the graph (1..=65535).
    pub nodes: usize,
    /// Directed edges (even: random pairs, both directions).
    pub edges: usize,
    /// Input feature channels.
    pub features: usize,
    /// Hidden channels.
    pub hidden: usize,
    /// Classes (output channels).
    pub classes: usize,
}

impl Default for SynthShape {
    /// Karate-club sized: 34 nodes, 156 edges, 34 features, 16 hidden, 4 classes.
    fn default() -> Self {
        SynthShape {
            nodes: 34,
            edges: 156,
            features: 34,
            hidden: 16,
            classes: 4,
        }
    }
}

/// A synthetic node classifier with the shape of the GCN of Kipf & Welling
/// (GCNConv(F→H), ReLU, GCNConv(H→C)) on one random graph of `nodes` nodes
/// and `edges` directed edges (random pairs, both directions), for trying
/// model sizes no bundled model has. Returns the `.tgnn` bytes and the graph.
pub fn synth(shape: SynthShape) -> Result<(Vec<u8>, OwnedSample), String> {
    let SynthShape {
        nodes: n,
        edges: e,
        features: f,
        hidden: h,
        classes: c,
    } = shape;
    let channels = |v: usize| u16::try_from(v).map_err(|_| "more than 65535 channels");
    if n == 0 || n > usize::from(u16::MAX) || f == 0 || h == 0 || c == 0 || e % 2 != 0 {
        return Err("need 1..=65535 nodes, an even edge count, non-zero sizes".into());
    }
    let (cf, ch, cc) = (channels(f)?, channels(h)?, channels(c)?);
    let mut rng = Rng(0x0bad_cafe);
    let mut w = ModelWriter::new();
    let x = w.add_tensor(node_tensor(cf, 1.0 / 64.0, 0));
    let hid = w.add_tensor(node_tensor(ch, 1.0 / 16.0, -128));
    let y = w.add_tensor(node_tensor(cc, 1.0 / 8.0, 0));
    // Weight scales such that a dot product of `ci` terms lands in a sensible int8 range.
    let s_w = |ci: usize| 4.0 / (128.0 * (ci as f32).sqrt());
    let layer = random_layer(&mut w, &mut rng, (f, h), (1.0 / 64.0, s_w(f), 1.0 / 16.0));
    w.add_op(gcn(x, hid, layer, Activation::Relu));
    let layer = random_layer(&mut w, &mut rng, (h, c), (1.0 / 16.0, s_w(h), 1.0 / 8.0));
    w.add_op(gcn(hid, y, layer, Activation::None));
    let edges = u32::try_from(e).map_err(|_| "too many edges")?;
    let model = w
        .finish(x, &[y], n as u32, edges, 1)
        .map_err(|e| e.to_string())?;
    let nodes = n as u16;
    let mut s = OwnedSample {
        nodes,
        graphs: 1,
        channels: cf,
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
    Ok((model, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bundle::writer::write, required_arena, Bundle};

    #[test]
    fn demo_is_deterministic_and_runs() {
        let (m1, s1) = demo().unwrap();
        let (m2, _) = demo().unwrap();
        assert_eq!(m1, m2);
        let model = tinygnn::Model::from_bytes(&m1).unwrap();
        let bytes = write(&s1).unwrap();
        let mut words = std::vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
        let b = Bundle::parse(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).unwrap();
        assert_eq!(b.samples().count(), 3);
        for s in b.samples() {
            assert!(required_arena(&model, &s.unwrap()) > 0);
        }
    }

    #[test]
    fn synth_checks_its_shape() {
        let (m, s) = synth(SynthShape::default()).unwrap();
        let model = tinygnn::Model::from_bytes(&m).unwrap();
        assert_eq!(model.capacity(), (34, 156, 1));
        assert_eq!((s.nodes, s.sources.len()), (34, 156));
        let odd = SynthShape {
            edges: 3,
            ..SynthShape::default()
        };
        assert!(synth(odd).is_err());
        let none = SynthShape {
            nodes: 0,
            ..SynthShape::default()
        };
        assert!(synth(none).is_err());
    }
}
