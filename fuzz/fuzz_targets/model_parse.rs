//! `Model::from_bytes` on arbitrary bytes, as they are and with the header's
//! length and CRC made consistent (`with_valid_checksum`: otherwise nearly
//! every mutation stops at the checksum): never panics; a model that validates
//! answers every query (`arena_bytes`, `ops`, …) without panicking, and every
//! op it validated decodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygnn::Model;
use tinygnn_fuzz::{touch_model, with_valid_checksum};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data) {
        touch_model(&model);
    }
    let fixed = with_valid_checksum(data);
    if let Ok(model) = Model::from_bytes(&fixed) {
        touch_model(&model);
    }
});
