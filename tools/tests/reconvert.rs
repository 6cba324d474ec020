//! The `.tgnn` bytes `tinygnn convert` writes for every conformance golden,
//! under several option sets, must stay exactly those recorded in
//! `tests/conformance/tgnn-digests.txt` (file length and CRC-64 of the whole
//! file). A refactoring of the converter or of the format writer that changes
//! a single byte fails here; the bundled models are held to their committed
//! `.tgnn` files by `scripts/models.py check`.
//!
//! The digests change only with an intended change of the format or of the
//! quantization. Then rewrite the file with
//! `TINYGNN_BLESS=1 cargo test --release -p tinygnn-cli --test reconvert`
//! and say in the commit why the bytes changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Option sets, each named by the tag used in the digest file.
const CONFIGS: &[(&str, &[&str])] = &[
    ("default", &[]),
    ("int4", &["--weights", "int4"]),
    (
        "minmax-per-tensor",
        &["--calibration", "minmax", "--weight-scales", "per-tensor"],
    ),
    (
        "pct-top2-auto",
        &[
            "--calibration",
            "percentile:99.9",
            "--output-range",
            "top2",
            "--weight-scales",
            "auto",
        ],
    ),
    (
        "int4-nearest-max",
        &[
            "--weights",
            "int4",
            "--int4-rounding",
            "nearest",
            "--int4-scale",
            "max",
        ],
    ),
];

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_ECMA_182);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn goldens() -> Vec<(String, PathBuf)> {
    let dir = root().join("tests/conformance");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.safetensors").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

/// `name config` → `len crc64` (hex), or the converter's error.
fn digest(dir: &Path, args: &[&str], tmp: &Path) -> String {
    let tgnn = tmp.join("m.tgnn");
    let _ = std::fs::remove_file(&tgnn);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .arg("convert")
        .arg(dir.join("model.safetensors"))
        .arg("--calib")
        .arg(dir.join("graphs.safetensors"))
        .arg("-o")
        .arg(&tgnn)
        .args(args)
        .output()
        .unwrap();
    if !out.status.success() {
        // A refused option set is recorded too: it must stay refused.
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        return format!("error {}", first.replace(' ', "_"));
    }
    let bytes = std::fs::read(&tgnn).unwrap();
    format!("{} {:016x}", bytes.len(), CRC64.checksum(&bytes))
}

#[test]
fn conformance_goldens_reconvert_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut got = BTreeMap::new();
    for (name, dir) in goldens() {
        for (tag, args) in CONFIGS {
            got.insert(format!("{name} {tag}"), digest(&dir, args, tmp.path()));
        }
    }
    assert!(got.len() >= 5 * 50, "only {} conversions", got.len());
    let file = root().join("tests/conformance/tgnn-digests.txt");
    let text: String = got.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::env::var_os("TINYGNN_BLESS").is_some() {
        std::fs::write(&file, &text).unwrap();
        return;
    }
    let want: BTreeMap<String, String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            let (n, t, rest) = (w.next()?, w.next()?, w.next()?);
            Some((format!("{n} {t}"), rest.to_string()))
        })
        .collect();
    let mut bad = Vec::new();
    for (k, v) in &got {
        match want.get(k) {
            Some(w) if w == v => {}
            Some(w) => bad.push(format!("{k}: recorded {w}, now {v}")),
            None => bad.push(format!("{k}: not recorded (now {v})")),
        }
    }
    for k in want.keys().filter(|k| !got.contains_key(*k)) {
        bad.push(format!("{k}: recorded, no longer converted"));
    }
    assert!(
        bad.is_empty(),
        "{} of {} conversions differ from tests/conformance/tgnn-digests.txt:\n{}",
        bad.len(),
        got.len(),
        bad.join("\n")
    );
}

/// The host's op names (each family's `HostOp::device_name`, which `convert`
/// prints) are the runtime's (`Op::name`, which `inspect` prints), op by op,
/// for every golden: the two tables cannot drift apart.
#[test]
fn host_and_runtime_name_every_device_op_alike() {
    use tinygnn_cli::{calibrate, quantize, spec, st};
    for (name, dir) in goldens() {
        let s = spec::load(&dir.join("model.safetensors")).unwrap();
        let g = st::read_graphs(&dir.join("graphs.safetensors")).unwrap();
        let cal = calibrate::calibrate_outputs(
            &s,
            &g,
            calibrate::Method::MinMax,
            calibrate::OutputRange::Full,
            |_| {},
        )
        .unwrap();
        let cap = quantize::Capacity {
            max_nodes: g.num_nodes as u32,
            max_edges: g.num_edges() as u32,
            max_graphs: g.num_graphs as u32,
            max_pairs: g.pairs.as_ref().map_or(0, |p| p.sources.len() as u32),
        };
        let conv = quantize::convert(&s, &cal.ranges, cap).unwrap();
        let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
        let host: Vec<&str> = conv.ops.iter().map(|f| f.device_name()).collect();
        let device: Vec<&str> = model.ops().map(|o| o.name()).collect();
        assert_eq!(host, device, "{name}");
    }
}
