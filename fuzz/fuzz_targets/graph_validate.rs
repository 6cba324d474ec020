//! Graph validation and execution on arbitrary graphs (`GraphInput` →
//! `Session::run`) for fixed valid models: karate-gcn, digits-gin, a
//! synthetic model with every op kind (edge weights, batch), and the
//! testkit's edge-feature, hypergraph and ChebConv models. The first byte
//! picks the model; the rest is an arbitrary `FuzzGraph`. See the crate docs
//! for what each run asserts (arena bounds, guard bytes, determinism).
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tinygnn::Model;
use tinygnn_fuzz::{fixed_models, guarded_run, FuzzGraph};

static MODELS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let models = MODELS.get_or_init(fixed_models);
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let bytes = &models[usize::from(which) % models.len()];
    let model = Model::from_bytes(bytes).expect("fixed models are valid");
    let mut u = Unstructured::new(rest);
    if let Ok(g) = FuzzGraph::arbitrary(&mut u) {
        let graph = g.build(&model);
        let _ = guarded_run(&model, &graph, g.arena);
    }
});
