//! The `op-*` cargo features: a model whose ops are all compiled in loads and
//! runs; one with an op whose family is left out is rejected by
//! `Model::from_bytes` with `Error::OpNotCompiled` naming the op and its tag.
//!
//! `cargo test` runs this with every op (the default); `scripts/areas/models.sh`
//! also runs it as
//! `cargo test -p tinygnn --no-default-features --features std,op-gcn,op-linear --test op_features`
//! (the GCN-only build of the size check), where the same assertions then
//! expect the SAGE, GIN, pool and element-wise models to be rejected.

mod common;

use common::*;
use tinygnn::format::writer::WriteError;
use tinygnn::format::{Activation, Aggr, Op, Pool};
use tinygnn::ops::{Act, ChebConv, GcnConv, GinAggregate, GlobalPool, Linear, SageConv};
use tinygnn::{Error, Model};

/// One model per op family, each starting with a GCN layer (so that the op
/// under test is op 1), with the tag of the op under test.
/// The writer validates what it writes with `Model::from_bytes`, so a model
/// whose ops are not compiled in comes back as that error.
fn fin(r: Result<Vec<u8>, WriteError>) -> Result<Vec<u8>, Error> {
    r.map_err(|e| match e {
        WriteError::Invalid(e) => e,
        other => panic!("{other}"),
    })
}

/// A test model: family name, whether compiled in, tag of the op under test, bytes.
type Case = (&'static str, bool, u32, Result<Vec<u8>, Error>);

fn models() -> Vec<Case> {
    let mut rng = Rng(3);
    let mut out = Vec::new();
    let families: [(&str, bool, u32); 7] = [
        ("gcn", cfg!(feature = "op-gcn"), 1),
        ("linear", cfg!(feature = "op-linear"), 0),
        ("sage", cfg!(feature = "op-sage"), 2),
        ("gin", cfg!(feature = "op-gin"), 3),
        ("pool", cfg!(feature = "op-pool"), 4),
        ("elementwise", cfg!(feature = "op-elementwise"), 7),
        ("cheb", cfg!(feature = "op-cheb"), 22),
    ];
    for (name, compiled, tag) in families {
        let mut w = writer();
        let x = w.add_tensor(node(6, 0.05, -3));
        let h = w.add_tensor(node(4, 0.1, 0));
        let ws = w.add_i8(&rng.weights(24));
        let ps = w.add_channel_params(&records(&mut rng, 4, 200, 0.01));
        w.add_op(Op::GcnConv(GcnConv {
            input: x,
            output: h,
            weights: ws,
            params: ps,
            act: Activation::Relu,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        }));
        let y;
        match name {
            "gcn" => {
                y = w.add_tensor(node(3, 0.1, 0));
                let ws = w.add_i8(&rng.weights(12));
                let ps = w.add_channel_params(&records(&mut rng, 3, 200, 0.01));
                w.add_op(Op::GcnConv(GcnConv {
                    input: h,
                    output: y,
                    weights: ws,
                    params: ps,
                    act: Activation::None,
                    improved: false,
                    add_self_loops: true,
                    normalize: true,
                    edge_weight: false,
                }));
            }
            "linear" => {
                // Linear first, then GCN: the op under test is op 0.
                let mut w2 = writer();
                let x = w2.add_tensor(node(6, 0.05, -3));
                let l = w2.add_tensor(node(4, 0.1, 0));
                let y = w2.add_tensor(node(3, 0.1, 0));
                let ws = w2.add_i8(&rng.weights(24));
                let ps = w2.add_channel_params(&records(&mut rng, 4, 200, 0.01));
                w2.add_op(Op::Linear(Linear {
                    input: x,
                    output: l,
                    weights: ws,
                    params: ps,
                    act: Activation::Relu,
                }));
                let ws = w2.add_i8(&rng.weights(12));
                let ps = w2.add_channel_params(&records(&mut rng, 3, 200, 0.01));
                w2.add_op(Op::GcnConv(GcnConv {
                    input: l,
                    output: y,
                    weights: ws,
                    params: ps,
                    act: Activation::None,
                    improved: false,
                    add_self_loops: true,
                    normalize: true,
                    edge_weight: false,
                }));
                out.push((name, compiled, tag, fin(w2.finish(x, &[y], 64, 256, 1))));
                continue;
            }
            "sage" => {
                y = w.add_tensor(node(3, 0.1, 0));
                let wl = w.add_i8(&rng.weights(12));
                let wr = w.add_i8(&rng.weights(12));
                let ps = w.add_channel_params(&records(&mut rng, 3, 200, 0.01));
                w.add_op(Op::SageConv(SageConv {
                    input: h,
                    output: y,
                    aggr: Aggr::Mean,
                    weights_l: wl,
                    weights_r: wr,
                    params: ps,
                    act: Activation::None,
                    normalize: false,
                }));
            }
            "gin" => {
                y = w.add_tensor(node(4, 0.2, 0));
                w.add_op(Op::GinAggregate(GinAggregate {
                    input: h,
                    output: y,
                    one_plus_eps_q16: 1 << 16,
                    mult: 1 << 30,
                    shift: -1,
                }));
            }
            "pool" => {
                y = w.add_tensor(graph(4, 0.2, 0));
                w.add_op(Op::GlobalPool(GlobalPool {
                    input: h,
                    output: y,
                    pool: Pool::Mean,
                    mult: 1 << 30,
                    shift: 0,
                }));
            }
            "cheb" => {
                y = w.add_tensor(node(3, 0.1, 0));
                let ws = w.add_i8(&rng.weights(2 * 12));
                let ps = w.add_channel_params(&records(&mut rng, 3, 200, 0.01));
                w.add_op(Op::ChebConv(ChebConv {
                    input: h,
                    output: y,
                    k: 2,
                    weights: ws,
                    params: ps,
                    act: Activation::None,
                    edge_weight: false,
                }));
            }
            _ => {
                y = w.add_tensor(node(4, 0.1, 0));
                w.add_op(Op::Act(Act {
                    input: h,
                    output: y,
                    act: Activation::Relu,
                }));
            }
        }
        out.push((name, compiled, tag, fin(w.finish(x, &[y], 64, 256, 1))));
    }
    out
}

#[test]
fn models_load_exactly_when_their_ops_are_compiled_in() {
    let x: Vec<i8> = Rng(9).i8s(10 * 6);
    let (src, dst) = (
        [0u16, 1, 2, 3, 4, 5, 6, 7, 8],
        [1u16, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    let gcn_compiled = cfg!(feature = "op-gcn");
    for (name, compiled, tag, bytes) in models() {
        let got = bytes
            .as_ref()
            .map_err(|e| *e)
            .and_then(|b| Model::from_bytes(b).map(|_| ()));
        // Every model has a GCN op; the linear one has it as op 1.
        let (first_missing, first_tag) = if name == "linear" {
            if !compiled {
                (Some(0u16), 0)
            } else if !gcn_compiled {
                (Some(1), 1)
            } else {
                (None, 0)
            }
        } else if !gcn_compiled {
            (Some(0), 1)
        } else if !compiled {
            (Some(1), tag)
        } else {
            (None, 0)
        };
        match first_missing {
            None => {
                assert_eq!(got, Ok(()), "{name}");
                let outs = run(bytes.as_ref().unwrap(), &input(10, &x, &src, &dst)).unwrap();
                assert!(!outs[0].2.is_empty(), "{name}");
            }
            Some(op) => assert_eq!(
                got,
                Err(Error::OpNotCompiled { op, tag: first_tag }),
                "{name}"
            ),
        }
    }
}

/// The bundled models that the size-check firmware's features (GCN + Linear) cover.
#[test]
fn bundled_models_follow_the_features() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for (name, needs) in [
        ("karate-gcn", ["op-gcn", "op-linear"].as_slice()),
        ("cora-gcn", &["op-gcn"]),
        ("cora-sage", &["op-sage"]),
        ("digits-gin", &["op-gin", "op-linear", "op-pool"]),
    ] {
        let Ok(bytes) = std::fs::read(root.join(name).join(format!("{name}.tgnn"))) else {
            continue;
        };
        #[allow(clippy::match_like_matches_macro)]
        let compiled = |f: &str| match f {
            "op-gcn" => cfg!(feature = "op-gcn"),
            "op-linear" => cfg!(feature = "op-linear"),
            "op-sage" => cfg!(feature = "op-sage"),
            "op-gin" => cfg!(feature = "op-gin"),
            "op-pool" => cfg!(feature = "op-pool"),
            _ => false,
        };
        let all = needs.iter().all(|f| compiled(f));
        match Model::from_bytes(&bytes) {
            Ok(_) => assert!(all, "{name} loaded without {needs:?}"),
            Err(Error::OpNotCompiled { .. }) => assert!(!all, "{name} rejected with {needs:?}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
