//! `tinygnn::include_model!`: the bytes are the file's (the path relative to
//! this file, as for `include_bytes!`), aligned to `MODEL_ALIGN`, and load.

/// Files of odd lengths too: without the alignment, some of these would
/// land at addresses that are not multiples of 4.
static MODELS: [(&[u8], &str); 4] = [
    (
        tinygnn::include_model!("../models/karate-gcn/karate-gcn.tgnn"),
        "models/karate-gcn/karate-gcn.tgnn",
    ),
    (tinygnn::include_model!("../build.rs"), "build.rs"),
    (tinygnn::include_model!("../Cargo.toml"), "Cargo.toml"),
    (tinygnn::include_model!("../src/lib.rs"), "src/lib.rs"),
];

#[test]
fn included_bytes_are_the_file_aligned() {
    assert_eq!(tinygnn::MODEL_ALIGN, 4);
    for (bytes, path) in MODELS {
        let file =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        assert_eq!(bytes, &file[..], "{path}");
        assert_eq!(
            bytes.as_ptr() as usize % tinygnn::MODEL_ALIGN,
            0,
            "{path} is not aligned"
        );
    }
    let model = tinygnn::Model::from_bytes(MODELS[0].0).unwrap();
    assert_eq!(model.capacity().0, 34);
}

#[test]
fn include_model_in_a_function() {
    let local: &'static [u8] = tinygnn::include_model!("../models/karate-gcn/karate-gcn.tgnn");
    assert_eq!(local, MODELS[0].0);
    assert_eq!(local.as_ptr() as usize % tinygnn::MODEL_ALIGN, 0);
}
