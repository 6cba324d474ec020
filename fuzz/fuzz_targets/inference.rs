//! Full inference with arbitrary model bytes and an arbitrary graph. Input:
//! a `u32` little-endian model length, the model bytes, then an arbitrary
//! `FuzzGraph`. The model's header length and CRC are made consistent first
//! (`with_valid_checksum`; `model_parse` checks the checksum itself), so that
//! mutated models reach the runtime. A model that validates is queried
//! (`touch_model`) and run on the graph with the checks of the crate docs
//! (arena bounds, guard bytes, determinism).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tinygnn::Model;
use tinygnn_fuzz::{guarded_run, split_model, touch_model, with_valid_checksum, FuzzGraph};

fuzz_target!(|data: &[u8]| {
    let Some((bytes, mut u)) = split_model(data) else {
        return;
    };
    let bytes = with_valid_checksum(bytes);
    let Ok(model) = Model::from_bytes(&bytes) else {
        return;
    };
    touch_model(&model);
    if let Ok(g) = FuzzGraph::arbitrary(&mut u) {
        let graph = g.build(&model);
        let _ = guarded_run(&model, &graph, g.arena);
    }
});
