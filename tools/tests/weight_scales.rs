//! `tinygnn convert --weight-scales per-channel|per-tensor|auto`: per-tensor
//! scales give compact channel params and a smaller file, and the runtime
//! reads them to the same output bytes as the same model hand-expanded into
//! full 12-byte records.

mod common;

use std::path::Path;
use tinygnn::ops::{GcnConv, Linear, SageConv};

use common::{node_model, ok, tinygnn, GraphsBuilder};
use serde_json::Value;
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Op, Section};
use tinygnn::Model;

/// Converts with `--weight-scales ws`; returns the convert output and the file.
fn convert(dir: &Path, ws: &str) -> (String, Vec<u8>) {
    let (model, graphs) = (
        dir.join("model.safetensors"),
        dir.join("graphs.safetensors"),
    );
    let out = dir.join(format!("{ws}.tgnn"));
    let text = ok(&tinygnn(&[
        &"convert",
        &model,
        &"--calib",
        &graphs,
        &"-o",
        &out,
        &"--weight-scales",
        &ws,
    ]));
    (text, std::fs::read(&out).unwrap())
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    node_model(5, 3).write(&dir.path().join("model.safetensors"));
    GraphsBuilder::random(1, 40, 3, 5, 3, 1).write(&dir.path().join("graphs.safetensors"));
    dir
}

/// The same model with every channel-params section rewritten in the full
/// form (12-byte records), through the runtime's own writer.
fn expand_to_full(bytes: &[u8]) -> Vec<u8> {
    let m = Model::from_bytes(bytes).unwrap();
    let mut w = ModelWriter::new();
    for t in m.tensors() {
        w.add_tensor(*t);
    }
    let chans = |id: u8| m.tensors()[id as usize].channels as usize;
    let full = |w: &mut ModelWriter, s: Section, c: usize| {
        let p = m.data(s);
        let recs: Vec<ChannelRecord> = (0..c)
            .map(|k| {
                let (bias, mult, shift) = tinygnn::kernels::requant::channel_record_of(p, c, k);
                ChannelRecord { bias, mult, shift }
            })
            .collect();
        let s = w.add_channel_params_full(&recs);
        assert_eq!(s.len as usize, 12 * c);
        s
    };
    let copy = |w: &mut ModelWriter, s: Section| {
        if s.len == 0 {
            Section::default()
        } else {
            w.add_bytes(m.data(s))
        }
    };
    for op in m.ops() {
        let op = match op {
            Op::Linear(Linear {
                input,
                output,
                weights,
                params,
                act,
            }) => Op::Linear(Linear {
                input,
                output,
                weights: copy(&mut w, weights),
                params: full(&mut w, params, chans(output)),
                act,
            }),
            Op::GcnConv(GcnConv {
                input,
                output,
                weights,
                params,
                act,
                improved,
                add_self_loops,
                normalize,
                edge_weight,
            }) => Op::GcnConv(GcnConv {
                input,
                output,
                weights: copy(&mut w, weights),
                params: full(&mut w, params, chans(output)),
                act,
                improved,
                add_self_loops,
                normalize,
                edge_weight,
            }),
            Op::SageConv(SageConv {
                input,
                output,
                aggr,
                weights_l,
                weights_r,
                params,
                act,
                normalize,
            }) => Op::SageConv(SageConv {
                input,
                output,
                aggr,
                weights_l: copy(&mut w, weights_l),
                weights_r: copy(&mut w, weights_r),
                params: full(&mut w, params, chans(output)),
                act,
                normalize,
            }),
            other => other,
        };
        w.add_op(op);
    }
    let (n, e, g) = m.capacity();
    w.finish(m.input(), m.outputs(), n, e, g).unwrap()
}

fn flash(bytes: &[u8], dir: &Path, name: &str) -> Value {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &p, &"--json"]))).unwrap();
    j["flash"].clone()
}

fn run_bytes(bytes: &[u8], dir: &Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = dir.join(format!("{name}.out"));
    ok(&tinygnn(&[
        &"run",
        &p,
        &dir.join("graphs.safetensors"),
        &"--output-bytes",
        &out,
    ]));
    std::fs::read(out).unwrap()
}

#[test]
fn per_tensor_writes_compact_params_and_a_smaller_file() {
    let dir = setup();
    let (_, pc) = convert(dir.path(), "per-channel");
    let (text, pt) = convert(dir.path(), "per-tensor");
    assert!(text.contains("3 of 3 layers per-tensor"), "{text}");
    // gcn 5→8, sage 8→6, linear 6→3: 17 output channels over 3 layers.
    let (fc, ft) = (
        flash(&pc, dir.path(), "a.tgnn"),
        flash(&pt, dir.path(), "b.tgnn"),
    );
    assert_eq!(fc["int32_params"], 12 * 17);
    assert_eq!(ft["int32_params"], 4 * 17 + 3 * 8);
    assert_eq!(fc["int32_bias"], 4 * 17);
    assert_eq!(ft["int32_bias"], 4 * 17);
    assert_eq!(fc["int8_weights"], ft["int8_weights"]);
    assert_eq!(pc.len() - pt.len(), (12 * 17) - (4 * 17 + 3 * 8));
    let text = ok(&tinygnn(&[&"inspect", &dir.path().join("b.tgnn")]));
    assert_eq!(text.matches(", compact").count(), 3, "{text}");
    let text = ok(&tinygnn(&[&"inspect", &dir.path().join("a.tgnn")]));
    assert_eq!(text.matches(", compact").count(), 0, "{text}");
}

#[test]
fn compact_runs_bit_exact_like_hand_expanded_full_form() {
    let dir = setup();
    let (_, pt) = convert(dir.path(), "per-tensor");
    let full = expand_to_full(&pt);
    // 12·17 − (4·17 + 3·8) = 112 more parameter bytes (metadata offsets may
    // change a varint byte or two; the data section is 16-aligned).
    assert!(
        full.len() >= pt.len() + 100,
        "{} vs {}",
        full.len(),
        pt.len()
    );
    let a = run_bytes(&pt, dir.path(), "compact.tgnn");
    let b = run_bytes(&full, dir.path(), "full.tgnn");
    assert_eq!(a.len(), 40 * 3);
    assert_eq!(a, b);
    // Not a constant output.
    assert!(a.iter().any(|&v| v != a[0]));
}

#[test]
fn auto_keeps_per_channel_when_the_goal_is_met() {
    let dir = setup();
    let (_, pc) = convert(dir.path(), "per-channel");
    let (text, auto) = convert(dir.path(), "auto");
    assert!(
        text.contains("size goal") && text.contains(": met"),
        "{text}"
    );
    assert!(text.contains("0 of 3 layers per-tensor"), "{text}");
    assert_eq!(pc, auto);
}

#[test]
fn bad_weight_scales_value_is_rejected() {
    let dir = setup();
    let o = tinygnn(&[
        &"convert",
        &dir.path().join("model.safetensors"),
        &"--calib",
        &dir.path().join("graphs.safetensors"),
        &"-o",
        &dir.path().join("x.tgnn"),
        &"--weight-scales",
        &"per-row",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--weight-scales"));
}
