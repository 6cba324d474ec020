//! Prepared graphs (`Session::prepare` + `Session::run_prepared`): bit-exact
//! with `Session::run` on random GCN stacks (layers sharing the session's
//! `dinv` table and layers with other flags) over random graphs and many
//! feature sets per graph, in the exact arena; the token's rules; features
//! of the wrong shape rejected. (`tests/common`'s runner also checks a
//! prepared run against every run of the other suites.)

mod common;
use common::{aligned, node, records, writer, Rng};
use proptest::prelude::*;
use tinygnn::format::{Activation, Op};
use tinygnn::ops::GcnConv;
use tinygnn::{Error, Features, GraphInput, Model, Session};

/// Three GcnConv layers: the first two with the same normalising flags
/// (`flags`), the third with random ones.
fn gcn_stack(seed: u64, flags: (bool, bool, bool)) -> (Vec<u8>, usize) {
    let mut rng = Rng(seed | 1);
    let mut w = writer();
    let f = rng.range(1, 9) as usize;
    let mut t = w.add_tensor(node(f as u16, 0.05, rng.i8() / 8));
    let x = t;
    let mut ic = f;
    for layer in 0..3 {
        let oc = rng.range(1, 9) as usize;
        let o = w.add_tensor(node(
            oc as u16,
            0.1 + (rng.next() % 50) as f32 / 100.0,
            rng.i8() / 8,
        ));
        let weights = w.add_i8(&rng.weights(ic * oc));
        let r = records(&mut rng, oc, 1000, 0.002);
        let params = w.add_channel_params(&r);
        let (improved, add_self_loops, edge_weight) = if layer < 2 {
            flags
        } else {
            (
                rng.next() % 2 == 0,
                rng.next() % 2 == 0,
                rng.next() % 2 == 0,
            )
        };
        w.add_op(Op::GcnConv(GcnConv {
            input: t,
            output: o,
            weights,
            params,
            act: if layer < 2 {
                Activation::Relu
            } else {
                Activation::None
            },
            improved,
            add_self_loops,
            normalize: layer < 2 || rng.next() % 2 == 0,
            edge_weight,
        }));
        t = o;
        ic = oc;
    }
    (w.finish(x, &[t], 64, 256, 1).unwrap(), f)
}

fn outputs(s: &Session<'_, '_>) -> Vec<i8> {
    s.output(0).unwrap().data.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 200 }))]

    #[test]
    fn prepared_runs_are_bit_exact(
        seed in any::<u64>(),
        flags in any::<(bool, bool, bool)>(),
        n in 0usize..40,
        edges in proptest::collection::vec((any::<u16>(), any::<u16>(), 0.0f32..4.0), 0..120),
        feature_seed in any::<u64>(),
    ) {
        let (bytes, f) = gcn_stack(seed, flags);
        let model = Model::from_bytes(&bytes).unwrap();
        let (src, dst): (Vec<u16>, Vec<u16>) = if n == 0 {
            (vec![], vec![])
        } else {
            edges.iter().map(|e| (e.0 % n as u16, e.1 % n as u16)).unzip()
        };
        let ew: Vec<f32> = edges.iter().take(src.len()).map(|e| e.2).collect();
        let mut rng = Rng(feature_seed | 1);
        let sets: Vec<Vec<f32>> = (0..4)
            .map(|_| (0..n * f).map(|_| rng.i8() as f32 * 0.013).collect())
            .collect();
        let need = model.arena_bytes(n, src.len(), 1);
        prop_assert!(model.prepared_bytes(n, src.len(), 1) <= need);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let graph = GraphInput::new(n, Features::F32(&sets[0]), &src, &dst).with_edge_weight(&ew);
        let mut prepared_session = Session::new(&model, aligned(&mut a, need));
        let p = match prepared_session.prepare(&graph) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("prepare: {e:?}"))),
        };
        let mut plain = Session::new(&model, aligned(&mut b, need));
        for x in &sets {
            let want = plain
                .run(&GraphInput::new(n, Features::F32(x), &src, &dst).with_edge_weight(&ew))
                .map(|o| o.data.to_vec());
            let got = prepared_session
                .run_prepared(&p, Features::F32(x))
                .map(|o| o.data.to_vec());
            prop_assert_eq!(&got, &want);
            if got.is_ok() {
                prop_assert_eq!(outputs(&prepared_session), got.unwrap());
            }
            // int8 features on the same prepared graph.
            let q: Vec<i8> = x.iter().map(|&v| (v * 20.0) as i8).collect();
            let want = plain
                .run(&GraphInput::new(n, Features::I8(&q), &src, &dst).with_edge_weight(&ew))
                .map(|o| o.data.to_vec());
            let got = prepared_session
                .run_prepared(&p, Features::I8(&q))
                .map(|o| o.data.to_vec());
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn token_rules_and_feature_shape() {
    let (bytes, f) = gcn_stack(7, (false, true, false));
    let model = Model::from_bytes(&bytes).unwrap();
    let (src, dst) = ([0u16, 1, 2], [1u16, 2, 0]);
    let x = vec![0.5f32; 3 * f];
    let graph = GraphInput::new(3, Features::F32(&x), &src, &dst).with_edge_weight(&[1.0; 3]);
    let need = model.arena_bytes(3, 3, 1);
    let mut buf = Vec::new();
    let mut s = Session::new(&model, aligned(&mut buf, need));
    let p = s.prepare(&graph).unwrap();
    let first = s.run_prepared(&p, Features::F32(&x)).unwrap().data.to_vec();
    // Wrong shapes and non-finite values: typed errors, the graph stays prepared.
    let short = vec![0.5f32; 3 * f - 1];
    assert!(matches!(
        s.run_prepared(&p, Features::F32(&short)),
        Err(Error::FeatureShape { .. })
    ));
    assert!(s.output(0).is_none());
    let mut nan = x.clone();
    nan[1] = f32::NAN;
    assert!(matches!(
        s.run_prepared(&p, Features::F32(&nan)),
        Err(Error::NonFiniteFeature { .. })
    ));
    assert!(matches!(
        s.run_prepared(&p, Features::I8(&[0; 2])),
        Err(Error::FeatureShape { .. })
    ));
    assert_eq!(
        s.run_prepared(&p, Features::F32(&x)).unwrap().data,
        &first[..]
    );
    // A plain run rebuilds the graph region: the token is stale.
    s.run(&graph).unwrap();
    assert_eq!(
        s.run_prepared(&p, Features::F32(&x)).unwrap_err(),
        Error::NotPrepared
    );
    // Preparing again makes a new token; the old one stays refused.
    let p2 = s.prepare(&graph).unwrap();
    assert_eq!(
        s.run_prepared(&p, Features::F32(&x)).unwrap_err(),
        Error::NotPrepared
    );
    assert_eq!(
        s.run_prepared(&p2, Features::F32(&x)).unwrap().data,
        &first[..]
    );
    // Another session's token is refused.
    let mut buf2 = Vec::new();
    let mut other = Session::new(&model, aligned(&mut buf2, need));
    assert_eq!(
        other.run_prepared(&p2, Features::F32(&x)).unwrap_err(),
        Error::NotPrepared
    );
    // A failed prepare (one byte short) leaves nothing prepared.
    let mut buf3 = Vec::new();
    let mut small = Session::new(&model, aligned(&mut buf3, need - 1));
    assert!(matches!(
        small.prepare(&graph),
        Err(Error::ArenaTooSmall { .. })
    ));
    // An invalid graph is refused by prepare.
    let bad = GraphInput::new(3, Features::F32(&x), &[0, 5], &[1, 2]).with_edge_weight(&[1.0; 2]);
    assert!(matches!(
        s.prepare(&bad),
        Err(Error::NodeIndexOutOfRange { .. })
    ));
    assert_eq!(
        s.run_prepared(&p2, Features::F32(&x)).unwrap_err(),
        Error::NotPrepared
    );
}
