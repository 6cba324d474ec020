//! `tinygnn stream` against a device simulated on the host: the
//! `tinygnn-proto` server (the firmware's own loop) over a loopback TCP
//! socket, with the bundled models. The bytes must equal `tinygnn run`'s.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
#[cfg(unix)]
use std::time::Duration;

use tinygnn::Model;
use tinygnn_proto::server::{Buffers, NoClock, Server};
use tinygnn_proto::GraphBuffers;

fn tinygnn(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run tinygnn")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `embedded_io` over a TCP stream.
struct Tcp(TcpStream);

impl embedded_io::ErrorType for Tcp {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.0.read(buf) {
            Ok(0) if !buf.is_empty() => Err(embedded_io::ErrorKind::NotConnected),
            Ok(n) => Ok(n),
            Err(_) => Err(embedded_io::ErrorKind::Other),
        }
    }
}

impl embedded_io::Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|_| embedded_io::ErrorKind::Other)
    }
}

#[cfg(unix)]
/// `embedded_io` over the master side of a pty (`serialport::TTYPort::pair`):
/// a read waits until bytes come (the port's own timeout only makes it poll
/// again); any other error ends the device.
struct Pty(serialport::TTYPort);

#[cfg(unix)]
impl embedded_io::ErrorType for Pty {
    type Error = embedded_io::ErrorKind;
}

#[cfg(unix)]
impl embedded_io::Read for Pty {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.0.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Err(embedded_io::ErrorKind::Other),
            }
        }
    }
}

#[cfg(unix)]
impl embedded_io::Write for Pty {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|_| embedded_io::ErrorKind::Other)
    }
}

#[cfg(unix)]
/// A pty pair: the device's side (master) and the path of the host's side,
/// which `tinygnn stream --port` opens. The test keeps its own handle on
/// that side open (`_slave`): with none, the master's reads fail.
fn pty() -> (serialport::TTYPort, String, serialport::TTYPort) {
    use serialport::SerialPort as _;
    let (mut master, slave) = serialport::TTYPort::pair().expect("a pty pair");
    master.set_timeout(Duration::from_secs(10)).unwrap();
    let path = slave.name().expect("the pty's path");
    (master, path, slave)
}

/// Serves `model` on `link` until it ends (a simulated device accepting at
/// most `max_nodes` nodes per request, buffers as the firmware's build.rs
/// sizes them).
fn serve_model<L>(bytes: &[u8], name: &str, max_nodes: Option<usize>, link: &mut L)
where
    L: embedded_io::Read + embedded_io::Write,
{
    let model = Model::from_bytes(bytes).unwrap();
    let (n, e, g) = model.capacity();
    let n = max_nodes.unwrap_or(n as usize);
    let (e, g) = (e as usize, g as usize);
    let c = usize::from(model.input_desc().channels);
    let body = n * c * 4 + 8 * e + 2 * n + 64;
    let mut rx = vec![0u8; tinygnn_proto::max_frame_len(body)];
    let mut tx = vec![0u8; tinygnn_proto::max_frame_len(n.max(g) * 64 + 64)];
    let (mut f, mut s, mut t, mut w, mut b) = (
        vec![0f32; n * c],
        vec![0u16; e],
        vec![0u16; e],
        vec![0f32; e],
        vec![0u16; n],
    );
    let mut arena = vec![0u8; model.arena_bytes(n, e, g) + 16];
    let bufs = Buffers {
        rx: &mut rx,
        tx: &mut tx,
        graph: GraphBuffers {
            features: &mut f,
            sources: &mut s,
            targets: &mut t,
            edge_weight: &mut w,
            batch: &mut b,
        },
        arena: &mut arena,
    };
    let mut server = Server::new(&model, name, bufs, NoClock);
    // Ends when the host closes the connection.
    let _ = server.serve(link);
}

#[cfg(unix)]
/// Starts a simulated device for `model` on a pty; returns the path the
/// host opens and the test's handle that keeps the pty alive.
fn pty_device(model: &Path) -> (String, serialport::TTYPort) {
    let bytes = std::fs::read(model).unwrap();
    let name = model.file_name().unwrap().to_string_lossy().into_owned();
    let (master, path, slave) = pty();
    std::thread::spawn(move || serve_model(&bytes, &name, None, &mut Pty(master)));
    (path, slave)
}

/// Starts a simulated device for `model` that accepts at most `max_nodes`
/// nodes per request (buffers as the firmware's build.rs sizes them), serving
/// one connection after another. Returns its address.
fn device(model: &Path, max_nodes: Option<usize>) -> String {
    let bytes = std::fs::read(model).unwrap();
    let name = model.file_name().unwrap().to_string_lossy().into_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            serve_model(&bytes, &name, max_nodes, &mut Tcp(conn));
        }
    });
    addr
}

fn run_bytes(model: &Path, graphs: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("run.bin");
    let o = tinygnn(&[&"run", &model, &graphs, &"--output-bytes", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

#[test]
fn karate_stream_equals_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("models/karate-gcn/karate-gcn.tgnn");
    let graphs = root().join("models/karate-gcn/graphs.safetensors");
    let addr = device(&model, None);
    let out = dir.path().join("stream.bin");
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--tcp",
        &addr,
        &"--model",
        &model,
        &"--output-bytes",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("device: karate-gcn.tgnn (crc 36ac99a3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accuracy: 73.33% over 30 test_mask rows"),
        "{stdout}"
    );
    let want = run_bytes(&model, &graphs, dir.path());
    assert_eq!(want.len(), 34 * 4);
    assert_eq!(std::fs::read(&out).unwrap(), want);

    // The link self-test passes against a correct device.
    let o = tinygnn(&[&"stream", &graphs, &"--tcp", &addr, &"--fault-test"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("fault test passed: 9 checks"), "{stdout}");
    assert_eq!(stdout.matches("\nok   ").count(), 9, "{stdout}");
}

#[test]
fn digits_split_into_requests_equals_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("models/digits-gin/digits-gin.tgnn");
    let graphs = root().join("models/digits-gin/graphs.safetensors");
    // A device that takes at most 200 nodes (3 of the 64-node graphs) per request.
    let addr = device(&model, Some(200));
    let out = dir.path().join("stream.bin");
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--tcp",
        &addr,
        &"--json",
        &"--progress",
        &"--output-bytes",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --progress with stderr not a terminal: plain lines, at most one a second, and the last.
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("stream: 120/120 requests answered, ") && last.ends_with(" s"),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with("stream: ")), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"], 359);
    assert_eq!(v["requests"], 120); // ceil(359 / 3)
    assert_eq!(v["device"]["max_nodes"], 200);
    let want = run_bytes(&model, &graphs, dir.path());
    assert_eq!(std::fs::read(&out).unwrap(), want);
    // --json carries the output values too, as `run --json` does.
    let o = &v["outputs"][0];
    assert_eq!(
        (o["rows"].as_u64(), o["channels"].as_u64()),
        (Some(359), Some(10))
    );
    let int8: Vec<u8> = o["int8"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap() as i8 as u8)
        })
        .collect();
    assert_eq!(int8, want);
    // The first 10 graphs, one per request: the first 10 rows of `run`.
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--tcp",
        &addr,
        &"--max-graphs",
        &"10",
        &"--per-graph",
        &"--output-bytes",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("10 request(s)"));
    assert_eq!(std::fs::read(&out).unwrap(), want[..100]);
}

#[test]
fn clear_errors() {
    let model = root().join("models/karate-gcn/karate-gcn.tgnn");
    let graphs = root().join("models/karate-gcn/graphs.safetensors");
    let digits = root().join("models/digits-gin/digits-gin.tgnn");
    let addr = device(&model, None);
    // The device runs another model than --model says.
    let o = tinygnn(&[&"stream", &graphs, &"--tcp", &addr, &"--model", &digits]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the device runs karate-gcn.tgnn (crc 36ac99a3)"),
        "{err}"
    );
    // Graphs with the wrong number of channels for the device's model.
    let dg = root().join("models/digits-gin/graphs.safetensors");
    let o = tinygnn(&[&"stream", &dg, &"--tcp", &addr]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the graphs have 3 feature channels"), "{err}");
    // A device with fewer nodes than the graph: no request is sent, the error says why.
    let small = device(&model, Some(20));
    let o = tinygnn(&[&"stream", &graphs, &"--tcp", &small]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exceed what the device accepts per request (20 nodes"),
        "{err}"
    );
    // Nothing listening: a connection error within the timeout.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--tcp",
        &format!("127.0.0.1:{port}"),
        &"--timeout",
        &"0.3",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1:"), "{err}");
    // A peer that never answers: a timeout, not a hang.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = mute.local_addr().unwrap().to_string();
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--tcp",
        &mute_addr,
        &"--timeout",
        &"0.5",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no answer from the device within 0.5 s"),
        "{err}"
    );
    drop(mute);
}

/// A crafted answer to request `id`.
type Respond = fn(u32) -> Vec<u8>;

/// A device that answers `Hello` as karate-gcn's server does (34 nodes, 4
/// output channels) and every request with `respond(request id)`: crafted
/// frames, to check what the host accepts. One connection.
fn hostile_device(respond: Respond) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            hostile_loop(&mut conn, respond);
        }
    });
    addr
}

#[cfg(unix)]
/// The same fake device on a pty: returns the path the host opens and the
/// handle that keeps the pty alive.
fn hostile_pty_device(respond: Respond) -> (String, serialport::TTYPort) {
    let (mut master, path, slave) = pty();
    std::thread::spawn(move || hostile_loop(&mut master, respond));
    (path, slave)
}

fn hostile_loop<S: std::io::Read + std::io::Write>(conn: &mut S, respond: Respond) {
    use tinygnn_proto::{decode, FrameReader, Info, Message};
    let mut buf = vec![0u8; 1 << 16];
    let mut reader = FrameReader::new(&mut buf);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        };
        for &b in &chunk[..n] {
            let Some(Ok(frame)) = reader.push(b) else {
                continue;
            };
            let answer = match decode(frame) {
                Ok(Message::Hello) => tinygnn_proto::encode_vec(&Message::Info(Info {
                    version: tinygnn_proto::VERSION,
                    model: "karate-gcn.tgnn",
                    model_crc: 0x36ac99a3,
                    input_channels: 34,
                    output_channels: 4,
                    max_nodes: 34,
                    max_edges: 156,
                    max_graphs: 1,
                    max_frame: 8193,
                    cost_unit: "none",
                })),
                Ok(Message::Request(r)) => respond(r.id),
                _ => return,
            };
            if conn.write_all(&answer).and_then(|()| conn.flush()).is_err() {
                return;
            }
        }
    }
}

fn response(id: u32, rows: u32, channels: u16, data: &[u8]) -> Vec<u8> {
    tinygnn_proto::encode_vec(&tinygnn_proto::Message::Response(tinygnn_proto::Response {
        id,
        rows,
        channels,
        scale: 0.1,
        zero_point: 0,
        cost: 0,
        data,
    }))
}

/// Replies that claim sizes the request does not have are refused with a
/// clear error and exit status 1, before anything is sized from them: no
/// panic, no huge allocation, no silent success.
#[test]
fn hostile_replies_are_refused() {
    let graphs = root().join("models/karate-gcn/graphs.safetensors");
    let cases: [(Respond, &str); 6] = [
        // Was: an index out of bounds in the report (a panic).
        (
            |id| response(id, 34, 0, &[]),
            "request 0: the device answered with 0 output channels, its model has 4",
        ),
        // Was: a 32 GiB allocation and an abort.
        (
            |id| response(id, u32::MAX, 0, &[]),
            "the device answered with 0 output channels",
        ),
        (
            |id| response(id, u32::MAX, 4, &[]),
            "the device answered with 4294967295 rows for 34 nodes in 1 graphs",
        ),
        // Was: accepted, exit status 0.
        (
            |id| response(id, 30, 4, &[0; 120]),
            "the device answered with 30 rows for 34 nodes in 1 graphs; expected 34 (one per node) or 1 (one per graph)",
        ),
        (
            |id| response(id, 34, 4, &[0; 100]),
            "request 0: 100 output bytes for 34 rows × 4 channels",
        ),
        // Far more bytes than 34 rows × 4 channels can take.
        (
            |id| response(id, 34, 4, &vec![1; 1 << 20]),
            "bad frame from the device",
        ),
    ];
    for (respond, needle) in cases {
        let addr = hostile_device(respond);
        let o = tinygnn(&[&"stream", &graphs, &"--tcp", &addr, &"--timeout", &"10"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{needle}: {err}");
        assert!(err.contains(needle), "want {needle:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A correct reply from the same fake device is accepted.
    let addr = hostile_device(|id| response(id, 34, 4, &[5; 136]));
    let o = tinygnn(&[&"stream", &graphs, &"--tcp", &addr]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[cfg(unix)]
/// The serial path (`--port`, the `serialport` crate) on a pty, which is a
/// serial port as far as the host can tell: the same bytes as `tinygnn run`,
/// the fault test, the reply checks and the timeouts.
#[test]
fn a_pty_is_a_serial_port() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("models/karate-gcn/karate-gcn.tgnn");
    let graphs = root().join("models/karate-gcn/graphs.safetensors");
    let (port, _keep) = pty_device(&model);
    let out = dir.path().join("stream.bin");
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--port",
        &port,
        &"--baud",
        &"115200",
        &"--timeout-ms",
        &"20000",
        &"--model",
        &model,
        &"--output-bytes",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("device: karate-gcn.tgnn (crc 36ac99a3)"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        run_bytes(&model, &graphs, dir.path())
    );
    // One request, stderr not a terminal, no --progress: nothing on stderr.
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same device again (the old name of the option): the link self-test,
    // whose oversized frame is larger than a pty's buffer.
    let o = tinygnn(&[&"stream", &graphs, &"--serial", &port, &"--fault-test"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("fault test passed: 9 checks"), "{stdout}");

    // A device that never answers: the timeout, in milliseconds.
    let (_master, mute, _keep2) = pty();
    let o = tinygnn(&[
        &"stream",
        &graphs,
        &"--port",
        &mute,
        &"--timeout-ms",
        &"300",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "serial {mute}: no answer from the device within 0.3 s"
        )),
        "{err}"
    );
    // No such port: a clear error.
    let o = tinygnn(&[&"stream", &graphs, &"--port", &"/dev/tinygnn-no-such-port"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot open serial port /dev/tinygnn-no-such-port at 115200 baud"),
        "{err}"
    );

    // Hostile replies over the serial path are checked as over TCP.
    let cases: [(Respond, &str); 3] = [
        (
            |id| response(id, 34, 0, &[]),
            "request 0: the device answered with 0 output channels, its model has 4",
        ),
        (
            |id| response(id, u32::MAX, 4, &[]),
            "the device answered with 4294967295 rows for 34 nodes in 1 graphs",
        ),
        (
            |id| response(id, 34, 4, &vec![1; 1 << 20]),
            "bad frame from the device",
        ),
    ];
    for (respond, needle) in cases {
        let (port, _keep) = hostile_pty_device(respond);
        let o = tinygnn(&[&"stream", &graphs, &"--port", &port, &"--timeout", &"10"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{needle}: {err}");
        assert!(err.contains(needle), "want {needle:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--list-ports` lists what `serialport` finds (maybe nothing) and exits 0.
#[test]
fn list_ports() {
    let o = tinygnn(&[&"stream", &"--list-ports", &"--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for p in v["ports"].as_array().expect("a list of ports") {
        assert!(p["port"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
        assert!(p["type"].is_string(), "{p}");
    }
    let o = tinygnn(&[&"stream", &"--list-ports"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!o.stdout.is_empty());
    // Graphs or a device are not needed for it, and --list-ports takes no device.
    let o = tinygnn(&[&"stream", &"--list-ports", &"--tcp", &"127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
}
