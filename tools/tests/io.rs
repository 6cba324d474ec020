//! What the CLI writes: every output file is replaced through a temporary
//! file (a failed write leaves the old file), never onto one of the
//! command's inputs, a closed standard output ends the output quietly, and a
//! closed or full standard error changes nothing but the message.

mod common;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{fails, ok, tinygnn};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// karate-gcn's float model and graphs copied into `dir` (so that a broken
/// check can only damage copies).
fn karate(dir: &Path) -> (PathBuf, PathBuf) {
    let (m, g) = (dir.join("m.safetensors"), dir.join("g.safetensors"));
    fs::copy(root().join("models/karate-gcn/model.safetensors"), &m).unwrap();
    fs::copy(root().join("models/karate-gcn/graphs.safetensors"), &g).unwrap();
    (m, g)
}

/// The files of `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn outputs_onto_inputs_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (m, g) = karate(d.path());
    let (m0, g0) = (fs::read(&m).unwrap(), fs::read(&g).unwrap());
    let tgnn = d.path().join("m.tgnn");
    let unchanged = || {
        assert_eq!(fs::read(&m).unwrap(), m0);
        assert_eq!(fs::read(&g).unwrap(), g0);
    };
    // convert onto its model, its calibration graphs, a link to the model.
    let link = d.path().join("link.safetensors");
    std::os::unix::fs::symlink(&m, &link).unwrap();
    let dotted = d.path().join(".").join("m.safetensors");
    for out in [&m, &g, &link, &dotted] {
        let o = tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", out]);
        fails(&o, &["refusing to write", "it is the input"]);
        unchanged();
    }
    // --emit: a derived source file that is an input (a model file named m.rs).
    let rs = d.path().join("m.rs");
    fs::copy(&m, &rs).unwrap();
    let o = tinygnn(&[
        &"convert", &rs, &"--calib", &g, &"-o", &tgnn, &"--emit", &"rust",
    ]);
    fails(&o, &["refusing to write", "m.rs"]);
    assert_eq!(fs::read(&rs).unwrap(), m0);
    assert!(
        !tgnn.exists(),
        "nothing is written when an output is refused"
    );

    ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &tgnn]));
    let t0 = fs::read(&tgnn).unwrap();
    // run --output-bytes, verify --plot, stream --output-bytes onto inputs.
    for out in [&tgnn, &g] {
        let o = tinygnn(&[&"run", &tgnn, &g, &"--output-bytes", out]);
        fails(&o, &["refusing to write"]);
        let o = tinygnn(&[&"verify", &m, &tgnn, &g, &"--plot", out]);
        fails(&o, &["refusing to write"]);
    }
    // Refused before connecting (nothing listens on port 1).
    let o = tinygnn(&[
        &"stream",
        &g,
        &"--tcp",
        &"127.0.0.1:1",
        &"--model",
        &tgnn,
        &"--output-bytes",
        &tgnn,
    ]);
    fails(&o, &["refusing to write", "m.tgnn"]);
    unchanged();
    assert_eq!(fs::read(&tgnn).unwrap(), t0);
}

/// `tinygnn ARGS` under a file size limit of 512 bytes (`ulimit -f 1` in
/// the POSIX shell), with SIGXFSZ ignored so that a write beyond it fails
/// with an error instead of killing the process.
fn tinygnn_limited(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run tinygnn under sh")
}

#[test]
fn a_failed_write_keeps_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let (m, g) = karate(d.path());
    let out = d.path().join("out.tgnn");
    // A small old file, a new one (720 bytes) beyond the limit.
    fs::write(&out, b"old model").unwrap();
    let o = tinygnn_limited(&[&"convert", &m, &"--calib", &g, &"-o", &out]);
    fails(&o, &["cannot write", "out.tgnn", "is unchanged"]);
    assert_eq!(fs::read(&out).unwrap(), b"old model");
    assert_eq!(
        names(d.path()),
        ["g.safetensors", "m.safetensors", "out.tgnn"]
    );

    // run --output-bytes: digits-gin's 359 × 10 bytes.
    let bin = d.path().join("out.bin");
    fs::write(&bin, b"old bytes").unwrap();
    let o = tinygnn_limited(&[
        &"run",
        &root().join("models/digits-gin/digits-gin.tgnn"),
        &root().join("models/digits-gin/graphs.safetensors"),
        &"--output-bytes",
        &bin,
    ]);
    fails(&o, &["cannot write", "out.bin"]);
    assert_eq!(fs::read(&bin).unwrap(), b"old bytes");

    // Without the limit the files are replaced, keeping their permissions.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&out, fs::Permissions::from_mode(0o600)).unwrap();
    ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &out]));
    assert_eq!(&fs::read(&out).unwrap()[..4], b"TGNN");
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        names(d.path()),
        ["g.safetensors", "m.safetensors", "out.bin", "out.tgnn"]
    );
    // A destination that is a directory: an error, nothing left behind.
    let sub = d.path().join("sub.bin");
    fs::create_dir(&sub).unwrap();
    let o = tinygnn(&[&"run", &out, &g, &"--output-bytes", &sub]);
    fails(&o, &["cannot write", "sub.bin"]);
    assert!(sub.is_dir());
    assert_eq!(names(d.path()).len(), 5);
}

/// Runs `tinygnn ARGS` with stdout a pipe whose reader reads `keep` bytes
/// and then closes it; returns the exit status and stderr.
fn with_closed_stdout(args: &[&dyn AsRef<std::ffi::OsStr>], keep: usize) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args.iter().map(|a| a.as_ref()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; keep];
    stdout.read_exact(&mut got).unwrap();
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let (m, g) = karate(d.path());
    let tgnn = d.path().join("m.tgnn");
    ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &tgnn]));
    // `run --json | head -c 10`, and a reader that reads nothing.
    for keep in [10, 0] {
        let (code, err) = with_closed_stdout(&[&"run", &tgnn, &g, &"--json"], keep);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.is_empty(), "no message: {err}");
        let (code, err) = with_closed_stdout(&[&"inspect", &tgnn], keep);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.is_empty(), "no message: {err}");
    }
    // The work is still done: convert writes its file, run its bytes.
    let again = d.path().join("again.tgnn");
    let (code, err) = with_closed_stdout(&[&"convert", &m, &"--calib", &g, &"-o", &again], 0);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&again).unwrap(), fs::read(&tgnn).unwrap());
    let bin = d.path().join("out.bin");
    let (code, err) = with_closed_stdout(&[&"run", &tgnn, &g, &"--output-bytes", &bin], 0);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&bin).unwrap().len(), 34 * 4);
    // Another failure to write stdout (a full device) is an error.
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(
            [&"inspect" as &dyn AsRef<std::ffi::OsStr>, &tgnn]
                .iter()
                .map(|a| a.as_ref()),
        )
        .stdout(full)
        .output()
        .unwrap();
    fails(&o, &["cannot write to standard output"]);
}

/// The exit status of `tinygnn ARGS` with stderr `err`, and its stderr when piped.
fn status_with_stderr(args: &[&dyn AsRef<std::ffi::OsStr>], err: Stdio) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args.iter().map(|a| a.as_ref()))
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .unwrap()
        .code()
}

#[test]
fn a_closed_or_full_stderr_changes_only_the_message() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.tgnn");
    // The reference: the error message on stderr, exit status 1.
    let o = tinygnn(&[&"inspect", &missing]);
    fails(&o, &["error:", "missing.tgnn"]);
    // stderr on a full device: writing the message fails; still status 1
    // (`eprintln!` would panic: status 101).
    let full = || {
        Stdio::from(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    assert_eq!(status_with_stderr(&[&"inspect", &missing], full()), Some(1));
    // stderr closed (`2>&-`).
    let o = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" inspect \"$1\" 2>&-")
        .arg(env!("CARGO_BIN_EXE_tinygnn"))
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // Success is success whatever stderr is, and a usage error stays 2.
    let (m, g) = karate(d.path());
    let tgnn = d.path().join("m.tgnn");
    assert_eq!(
        status_with_stderr(&[&"convert", &m, &"--calib", &g, &"-o", &tgnn], full()),
        Some(0)
    );
    assert!(tgnn.is_file());
    assert_eq!(
        status_with_stderr(&[&"inspect", &"--no-such-flag"], full()),
        Some(2)
    );
}
