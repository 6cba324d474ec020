//! `Model::from_bytes` on arbitrary bytes: never panics; a model that
//! validates answers every query (`arena_bytes`, `ops`, …) without panicking,
//! and every op it validated decodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygnn::Model;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data) {
        tinygnn_fuzz::touch_model(&model);
    }
});
