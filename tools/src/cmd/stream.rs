//! `tinygnn stream`: sends graphs to a device running the streaming firmware
//! (over TCP, e.g. QEMU's UART on a loopback port, or a serial port through
//! the `serialport` crate: a board's UART, a USB CDC device, a pty) and
//! prints its outputs like `tinygnn run`. With `--fault-test`, checks that
//! the device rejects corrupt, oversized and out-of-capacity frames with the
//! right error and keeps answering afterwards. `--list-ports` lists the
//! serial ports. Protocol: `tinygnn-proto`, docs/stream.md.

use std::collections::VecDeque;
use std::io::{IsTerminal as _, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use tinygnn_proto::{
    encode_body_vec, encode_raw_vec, encode_vec, max_frame_len, ErrorCode, FrameReader, Message,
    OwnedRequest, DELIMITER,
};

use super::object;
use crate::reply::{self, Answer, Asked, DeviceInfo, Expect, ReplyError};
use crate::rt::RunOutput;
use crate::st::{self, Graphs};

/// Arguments of `stream`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input graphs (GRAPHS.safetensors), as for `tinygnn run`.
    #[arg(required_unless_present = "list_ports")]
    pub graphs: Option<PathBuf>,
    /// The device's address, HOST:PORT (e.g. QEMU's `-serial tcp:127.0.0.1:PORT,server=on,wait=off`).
    #[arg(long, required_unless_present_any = ["port", "list_ports"], conflicts_with = "port")]
    pub tcp: Option<String>,
    /// A serial port (/dev/ttyACM0, /dev/ttyUSB0, a pty, COM3 on Windows): opened raw, 8N1, no
    /// flow control, at --baud.
    #[arg(long, visible_alias = "serial")]
    pub port: Option<String>,
    /// Baud rate of --port (the firmware's; a USB CDC device and a pty ignore it).
    #[arg(long, default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(1..))]
    pub baud: u32,
    /// List the serial ports this machine has (name, USB ids, maker, product) and exit.
    #[arg(long, conflicts_with_all = ["tcp", "port", "fault_test"])]
    pub list_ports: bool,
    /// The .tgnn model the device must run: its CRC-32 is compared with the device's.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, default_value_t = 30.0, conflicts_with = "timeout_ms")]
    pub timeout: f64,
    /// The same wait in milliseconds (instead of --timeout).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// One graph per request (default: as many whole graphs as the device accepts).
    #[arg(long)]
    pub per_graph: bool,
    /// Send only the first N graphs of the file (their outputs are the first rows of `tinygnn run`'s).
    #[arg(long)]
    pub max_graphs: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the raw int8 output (row-major, all requests concatenated) to this file.
    #[arg(long)]
    pub output_bytes: Option<PathBuf>,
    /// Report progress (requests answered, bytes sent) on stderr even when it is not a terminal
    /// (on a terminal it is shown anyway for streams of more than one request).
    #[arg(long)]
    pub progress: bool,
    /// Link self-test instead of inference: send corrupt, truncated, undecodable, oversized and
    /// out-of-capacity frames, check each gets its error reply, and that a valid request still
    /// gets the same answer afterwards. Exit status 1 on any mismatch.
    #[arg(long)]
    pub fault_test: bool,
}

impl Args {
    fn wait(&self) -> Duration {
        match self.timeout_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_secs_f64(self.timeout.clamp(0.001, 1e9)),
        }
    }
}

/// A byte link to the device: a TCP stream or a serial port.
trait Transport {
    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Reads what arrives within `wait` (at least 1 ms): `Ok(0)` at the end of the stream,
    /// an error of kind `TimedOut` or `WouldBlock` when nothing came.
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> std::io::Result<usize>;
}

impl Transport for TcpStream {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes).and_then(|()| self.flush())
    }
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> std::io::Result<usize> {
        self.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        self.read(buf)
    }
}

/// A serial port (`serialport`): reads and writes wait at most the port's timeout.
struct Serial {
    port: Box<dyn serialport::SerialPort>,
    wait: Duration,
}

impl Transport for Serial {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.port
            .set_timeout(self.wait)
            .map_err(std::io::Error::from)?;
        self.port.write_all(bytes).and_then(|()| self.port.flush())
    }
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> std::io::Result<usize> {
        self.port
            .set_timeout(wait.max(Duration::from_millis(1)))
            .map_err(std::io::Error::from)?;
        self.port.read(buf)
    }
}

/// Opens a serial port raw (8N1, no flow control) and drops whatever it had received.
fn open_port(path: &str, baud: u32, wait: Duration) -> Result<Serial> {
    let port = serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(wait)
        .open()
        .with_context(|| format!("cannot open serial port {path} at {baud} baud"))?;
    // Bytes left over from an earlier session are not answers to this one.
    port.clear(serialport::ClearBuffer::Input).ok();
    Ok(Serial { port, wait })
}

/// A link to the device: every wait has a timeout.
struct Link {
    io: Box<dyn Transport>,
    pending: VecDeque<u8>,
    buf: Vec<u8>,
    timeout: Duration,
    what: String,
}

impl Link {
    fn open(a: &Args) -> Result<Link> {
        let timeout = a.wait();
        let (io, what): (Box<dyn Transport>, String) = match (&a.tcp, &a.port) {
            (Some(addr), _) => {
                let s = connect(addr, timeout)?;
                s.set_nodelay(true).ok();
                (Box::new(s), format!("tcp {addr}"))
            }
            (None, Some(p)) => (
                Box::new(open_port(p, a.baud, timeout)?),
                format!("serial {p}"),
            ),
            (None, None) => bail!("give --tcp HOST:PORT or --port DEVICE"),
        };
        Ok(Link {
            io,
            pending: VecDeque::new(),
            // Grown to each reply's limit (reply::frame_limit) as needed.
            buf: Vec::new(),
            timeout,
            what,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.io
            .send(bytes)
            .with_context(|| format!("{}: write failed", self.what))
    }

    /// Waits for the next frame and checks it against what the host waits
    /// for ([`reply::parse`]); a frame longer than [`reply::frame_limit`]
    /// is refused before it is stored.
    fn recv(&mut self, expect: &Expect) -> Result<Answer> {
        let deadline = Instant::now() + self.timeout;
        let len = reply::frame_limit(expect) - 1;
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let mut reader = FrameReader::new(&mut self.buf[..len]);
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(b) = self.pending.pop_front() {
                if let Some(frame) = reader.push(b) {
                    return frame
                        .map_err(ReplyError::Frame)
                        .and_then(|f| reply::parse(f, expect))
                        .map_err(|e| anyhow!("{}: {e}", self.what));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{}: no answer from the device within {} s (--timeout)",
                    self.what,
                    seconds(self.timeout)
                );
            }
            match self.io.recv(&mut chunk, left) {
                Ok(0) => bail!("{}: connection lost (end of stream)", self.what),
                Ok(n) => self.pending.extend(&chunk[..n.min(chunk.len())]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => bail!("{}: connection lost: {e}", self.what),
            }
        }
    }

    /// Sends a frame and waits for its answer.
    fn exchange(&mut self, frame: &[u8], expect: &Expect) -> Result<Answer> {
        self.send(frame)?;
        self.recv(expect)
    }
}

/// `d` in seconds, with as many decimals as it needs (at least one, at most three).
fn seconds(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    let t = s.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_string()
    }
}

/// Connects, retrying until `timeout` (QEMU may not listen yet).
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .with_context(|| format!("bad address '{addr}' (expected HOST:PORT)"))?
        .collect();
    loop {
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, Duration::from_millis(500)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "cannot connect to {addr}: {}",
                last.map(|e| e.to_string())
                    .unwrap_or_else(|| "no address".into())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--list-ports`: the serial ports `serialport` finds (on Linux: /sys/class/tty; ptys are not
/// listed, open them by name).
fn list_ports(json: bool) -> Result<()> {
    #[cfg(target_os = "linux")]
    if !std::path::Path::new("/sys/class/tty").is_dir() {
        bail!("cannot list serial ports: /sys/class/tty does not exist (is /sys mounted?)");
    }
    let ports = serialport::available_ports().context("cannot list serial ports")?;
    let rows: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| match &p.port_type {
            serialport::SerialPortType::UsbPort(u) => json!({
                "port": p.port_name, "type": "usb",
                "vid": format!("{:04x}", u.vid), "pid": format!("{:04x}", u.pid),
                "manufacturer": u.manufacturer, "product": u.product,
                "serial_number": u.serial_number,
            }),
            serialport::SerialPortType::PciPort => json!({"port": p.port_name, "type": "pci"}),
            serialport::SerialPortType::BluetoothPort => {
                json!({"port": p.port_name, "type": "bluetooth"})
            }
            serialport::SerialPortType::Unknown => json!({"port": p.port_name, "type": "unknown"}),
        })
        .collect();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "ports": rows }))?
        );
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no serial ports found (a pty is not listed: give its path to --port)");
    }
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let mut line = format!("{:<16} {}", s("port"), s("type"));
        if s("type") == "usb" {
            line += &format!(" {}:{}", s("vid"), s("pid"));
            for k in ["manufacturer", "product", "serial_number"] {
                if !s(k).is_empty() {
                    line += &format!(" {}", s(k));
                }
            }
        }
        outln!("{line}");
    }
    Ok(())
}

/// Progress of a stream on stderr: on a terminal, one line rewritten in place (for more than one
/// request) and erased at the end; with `--progress` and no terminal, one line per second and a
/// last one. Quiet otherwise.
struct Progress {
    tty: bool,
    on: bool,
    total: usize,
    t0: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(forced: bool, total: usize) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            tty,
            on: forced || (tty && total > 1),
            total,
            t0: Instant::now(),
            last: None,
        }
    }

    fn update(&mut self, done: usize, sent: usize) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let every = if self.tty { 100 } else { 1000 };
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(every));
        if !(due || done == self.total) {
            return;
        }
        self.last = Some(now);
        let secs = now.duration_since(self.t0).as_secs_f64();
        let line = format!(
            "stream: {done}/{} requests answered, {sent} bytes sent, {secs:.1} s",
            self.total
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

impl Drop for Progress {
    /// Erases the terminal line, also when the stream stops on an error (whose message follows).
    fn drop(&mut self) {
        if self.on && self.tty && self.last.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

/// Asks for the device's info (after a delimiter that ends any partial frame).
fn hello(link: &mut Link) -> Result<DeviceInfo> {
    link.send(&[DELIMITER])?;
    match link.exchange(&encode_vec(&Message::Hello), &Expect::Info)? {
        Answer::Info(i) => Ok(i),
        Answer::Error { code, detail, .. } => {
            bail!("the device answered Hello with an error: {code}: {detail}")
        }
        a => bail!("the device answered Hello with {a:?}"),
    }
}

/// Node range and edge list of every graph of a batch (batch sorted, no edge
/// between graphs).
fn graph_parts(g: &Graphs) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let ng = g.num_graphs;
    if g.batch.windows(2).any(|w| w[0] > w[1]) {
        bail!("the batch vector is not sorted, so the graphs cannot be sent separately");
    }
    let mut first = vec![usize::MAX; ng + 1];
    for (i, &b) in g.batch.iter().enumerate().rev() {
        first[b as usize] = i;
    }
    first[ng] = g.num_nodes;
    for k in (0..ng).rev() {
        if first[k] == usize::MAX {
            first[k] = first[k + 1];
        }
    }
    let mut edges = vec![Vec::new(); ng];
    for e in 0..g.num_edges() {
        let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
        if g.batch[s] != g.batch[t] {
            bail!(
                "edge {e} joins graphs {} and {}, so the graphs cannot be sent separately",
                g.batch[s],
                g.batch[t]
            );
        }
        edges[g.batch[s] as usize].push(e);
    }
    Ok((first, edges))
}

/// The first `n` graphs of a batch (labels and mask cut alike).
fn first_graphs(g: &Graphs, n: usize) -> Result<Graphs> {
    if n == 0 {
        bail!("--max-graphs must be at least 1");
    }
    if n >= g.num_graphs {
        return Ok(g.clone());
    }
    let (first, edges) = graph_parts(g)?;
    let nodes = first[n];
    let es: Vec<usize> = edges[..n].iter().flatten().copied().collect();
    let cut = |len: usize| if len == g.num_graphs { n } else { nodes };
    Ok(Graphs {
        num_nodes: nodes,
        channels: g.channels,
        x: g.x[..nodes * g.channels].to_vec(),
        sources: es.iter().map(|&e| g.sources[e]).collect(),
        targets: es.iter().map(|&e| g.targets[e]).collect(),
        edge_weight: g
            .edge_weight
            .as_ref()
            .map(|w| es.iter().map(|&e| w[e]).collect()),
        edge_attr: g.edge_attr.as_ref().map(|a| {
            let d = g.edge_dim;
            es.iter()
                .flat_map(|&e| a[e * d..(e + 1) * d].iter().copied())
                .collect()
        }),
        edge_dim: g.edge_dim,
        batch: g.batch[..nodes].to_vec(),
        has_batch: g.has_batch,
        num_graphs: n,
        y: g.y
            .as_ref()
            .map(|y| y[..cut(y.len()).min(y.len())].to_vec()),
        test_mask: g
            .test_mask
            .as_ref()
            .map(|m| m[..cut(m.len()).min(m.len())].to_vec()),
        pairs: None,
        hyperedges: None,
    })
}

/// Frame bytes a request of this size needs (upper bound).
fn frame_bytes(nodes: usize, edges: usize, channels: usize, weights: bool, batch: bool) -> usize {
    let body = 48
        + nodes * channels * 4
        + edges * 4
        + if weights { edges * 4 } else { 0 }
        + if batch { nodes * 2 } else { 0 };
    max_frame_len(body)
}

/// Graphs `start..end` of `g` as one request.
fn sub_request(
    id: u32,
    g: &Graphs,
    first: &[usize],
    edges: &[Vec<usize>],
    start: usize,
    end: usize,
) -> OwnedRequest {
    let (n0, n1) = (first[start], first[end]);
    let es: Vec<usize> = edges[start..end].iter().flatten().copied().collect();
    let src: Vec<u16> = es.iter().map(|&e| g.sources[e] - n0 as u16).collect();
    let dst: Vec<u16> = es.iter().map(|&e| g.targets[e] - n0 as u16).collect();
    let w: Option<Vec<f32>> = g
        .edge_weight
        .as_ref()
        .map(|w| es.iter().map(|&e| w[e]).collect());
    let batch: Option<Vec<u16>> = g
        .has_batch
        .then(|| g.batch[n0..n1].iter().map(|&b| b - start as u16).collect());
    OwnedRequest::f32(
        id,
        (n1 - n0) as u32,
        g.channels as u16,
        &g.x[n0 * g.channels..n1 * g.channels],
        &src,
        &dst,
        w.as_deref(),
        batch.as_deref(),
    )
}

/// Splits the graphs into requests the device accepts: the whole file when it
/// fits, else runs of whole graphs (one per request with `per_graph`).
fn plan(g: &Graphs, dev: &DeviceInfo, per_graph: bool) -> Result<Vec<OwnedRequest>> {
    let w = g.edge_weight.is_some();
    let fits = |n: usize, e: usize, k: usize| {
        n <= dev.max_nodes
            && e <= dev.max_edges
            && k <= dev.max_graphs
            && frame_bytes(n, e, g.channels, w, g.has_batch) <= dev.max_frame
    };
    if !(per_graph && g.num_graphs > 1) && fits(g.num_nodes, g.num_edges(), g.num_graphs) {
        let batch = g.has_batch.then_some(&g.batch[..]);
        return Ok(vec![OwnedRequest::f32(
            0,
            g.num_nodes as u32,
            g.channels as u16,
            &g.x,
            &g.sources,
            &g.targets,
            g.edge_weight.as_deref(),
            batch,
        )]);
    }
    let over = format!(
        "the graphs ({} nodes, {} edges, {} graphs) exceed what the device accepts per request ({} nodes, {} edges, {} graphs, {}-byte frames)",
        g.num_nodes,
        g.num_edges(),
        g.num_graphs,
        dev.max_nodes,
        dev.max_edges,
        dev.max_graphs,
        dev.max_frame
    );
    if !g.has_batch || g.num_graphs < 2 {
        bail!("{over}");
    }
    let (first, edges) = graph_parts(g).with_context(|| over.clone())?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < g.num_graphs {
        let (mut n, mut m, mut end) = (0usize, 0usize, start);
        while end < g.num_graphs {
            let (dn, de) = (first[end + 1] - first[end], edges[end].len());
            if end > start && (per_graph || !fits(n + dn, m + de, end - start + 1)) {
                break;
            }
            if !fits(dn, de, 1) {
                bail!("graph {end} alone ({dn} nodes, {de} edges) exceeds what the device accepts: {over}");
            }
            n += dn;
            m += de;
            end += 1;
        }
        out.push(sub_request(out.len() as u32, g, &first, &edges, start, end));
        start = end;
    }
    Ok(out)
}

/// Checks the device's model against `--model` and the graphs.
fn check_device(a: &Args, dev: &DeviceInfo, g: &Graphs) -> Result<()> {
    if let Some(p) = &a.model {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        let m = tinygnn::Model::from_bytes(&bytes)
            .map_err(|e| anyhow!("{}: invalid model: {e}", p.display()))?;
        let crc = m.crc();
        if crc != dev.model_crc {
            bail!(
                "the device runs {} (crc {:08x}), not {} (crc {crc:08x})",
                dev.model,
                dev.model_crc,
                p.display()
            );
        }
    }
    if g.channels != dev.input_channels {
        bail!(
            "the graphs have {} feature channels, the device's model {} takes {}",
            g.channels,
            dev.model,
            dev.input_channels
        );
    }
    Ok(())
}

/// Runs `stream`.
pub fn run(a: &Args) -> Result<()> {
    if a.list_ports {
        return list_ports(a.json);
    }
    let graphs = a
        .graphs
        .as_deref()
        .ok_or_else(|| anyhow!("give the graphs file"))?;
    let outputs: Vec<&std::path::Path> = a.output_bytes.iter().map(|p| p.as_path()).collect();
    let mut inputs = vec![graphs];
    inputs.extend(a.model.as_deref());
    inputs.extend(a.port.as_deref().map(std::path::Path::new));
    crate::fsio::check_outputs(&outputs, &inputs)?;
    let mut g = st::read_graphs(graphs)?;
    if let Some(n) = a.max_graphs {
        g = first_graphs(&g, n)?;
    }
    let mut link = Link::open(a)?;
    let dev = hello(&mut link)?;
    check_device(a, &dev, &g)?;
    let reqs = plan(&g, &dev, a.per_graph)?;
    if a.fault_test {
        return fault_test(&mut link, &dev, &reqs);
    }
    let mut out: Option<RunOutput> = None;
    let mut costs = Vec::with_capacity(reqs.len());
    let mut sent = 0usize;
    // Node or graph rows: the first answer tells, the others must agree.
    let mut level = None;
    let mut progress = Progress::new(a.progress, reqs.len());
    let t0 = Instant::now();
    for (done, r) in reqs.iter().enumerate() {
        let frame = encode_vec(&Message::Request(r.as_request()));
        sent += frame.len();
        let asked = Asked {
            level,
            ..Asked::of(r, dev.output_channels)
        };
        let o = match link.exchange(&frame, &Expect::Output(asked))? {
            Answer::Output(o) => o,
            Answer::Error { code, detail, .. } => bail!(
                "the device rejected request {} ({} nodes, {} edges): {code}: {detail}",
                r.id,
                r.num_nodes,
                r.sources.len() / 2
            ),
            Answer::Info(_) => bail!("the device answered request {} with its info", r.id),
        };
        level = Some(asked.level_of(o.rows));
        costs.push(o.cost);
        let data: Vec<i8> = o.data.iter().map(|&b| b as i8).collect();
        match &mut out {
            None => {
                out = Some(RunOutput {
                    data,
                    rows: o.rows,
                    channels: o.channels,
                    scale: o.scale,
                    zero_point: o.zero_point,
                })
            }
            Some(acc) => {
                if acc.channels != o.channels
                    || acc.scale != o.scale
                    || acc.zero_point != o.zero_point
                {
                    bail!(
                        "request {}: output shape or quantization differs from the first",
                        r.id
                    );
                }
                acc.data.extend(data);
                acc.rows += o.rows;
            }
        }
        progress.update(done + 1, sent);
    }
    drop(progress);
    let wall = t0.elapsed().as_secs_f64();
    let out = out.ok_or_else(|| anyhow!("no graphs to send"))?;
    report(a, &g, &dev, &out, &costs, (sent, wall))
}

fn report(
    a: &Args,
    g: &Graphs,
    dev: &DeviceInfo,
    out: &RunOutput,
    costs: &[u64],
    (sent, wall): (usize, f64),
) -> Result<()> {
    let report = super::Report::new(out, g, a.output_bytes.as_deref())?;
    let total: u64 = costs.iter().sum();
    let (cmin, cmax) = (
        costs.iter().copied().min().unwrap_or(0),
        costs.iter().copied().max().unwrap_or(0),
    );
    if a.json {
        let extra = json!({
            "device": { "model": dev.model, "model_crc": format!("{:08x}", dev.model_crc),
                        "max_nodes": dev.max_nodes, "max_edges": dev.max_edges,
                        "max_graphs": dev.max_graphs, "max_frame": dev.max_frame },
            "cost": costs, "cost_unit": dev.cost_unit, "bytes_sent": sent,
            "outputs": [super::output_json(None, out)],
        });
        return report.print_json(("requests", costs.len()), object(extra));
    }
    outln!(
        "device: {} (crc {:08x}), up to {} nodes, {} edges, {} graphs, {}-byte frames per request",
        dev.model,
        dev.model_crc,
        dev.max_nodes,
        dev.max_edges,
        dev.max_graphs,
        dev.max_frame
    );
    report.print_shape();
    outln!(
        "{} request(s), {sent} bytes sent, in {wall:.2} s; device cost per request: min {cmin}, max {cmax}, total {total} {}",
        costs.len(),
        dev.cost_unit
    );
    report.print_rows();
    Ok(())
}

/// The link self-test (`--fault-test`).
fn fault_test(link: &mut Link, dev: &DeviceInfo, reqs: &[OwnedRequest]) -> Result<()> {
    let first = reqs.first().ok_or_else(|| anyhow!("no graphs to send"))?;
    let valid = encode_vec(&Message::Request(first.as_request()));
    let expect = Expect::Output(Asked::of(first, dev.output_channels));
    let reference = match link.exchange(&valid, &expect)? {
        a @ Answer::Output(_) => a,
        a => bail!("the device did not answer a valid request: {a:?}"),
    };
    outln!("valid request {}: answered", first.id);
    let mut bad_crc = valid.clone();
    let mid = bad_crc.len() / 2;
    bad_crc[mid] = if bad_crc[mid] == 0xff {
        0x01
    } else {
        bad_crc[mid] ^ 0xff
    };
    if bad_crc[mid] == 0 {
        bad_crc[mid] = 0x01;
    }
    let mut truncated = valid[..valid.len() / 2].to_vec();
    truncated.push(DELIMITER);
    // Beyond capacity: one node more than the device accepts (int8 features: a small frame).
    let n = dev.max_nodes + 1;
    let big = OwnedRequest::i8(
        7,
        n as u32,
        dev.input_channels as u16,
        &vec![0i8; n * dev.input_channels],
        &[0, 1],
        &[1, 0],
        None,
        None,
    );
    let big_frame = encode_vec(&Message::Request(big.as_request()));
    let mut oversized = vec![0x22u8; dev.max_frame + 16];
    oversized.push(DELIMITER);
    let cases: Vec<(&str, Vec<u8>, &[ErrorCode])> = vec![
        (
            "bad COBS (a code byte overrunning the frame)",
            vec![0x05, 0x01, DELIMITER],
            &[ErrorCode::Cobs],
        ),
        (
            "one byte of a valid request flipped",
            bad_crc,
            &[ErrorCode::Crc, ErrorCode::Cobs],
        ),
        (
            "a valid request cut in half",
            truncated,
            &[ErrorCode::Crc, ErrorCode::Cobs],
        ),
        (
            "valid CRC around an unknown message (variant 9)",
            encode_raw_vec(&[0x09]),
            &[ErrorCode::Decode],
        ),
        (
            "valid CRC around a request cut short",
            {
                let body = encode_body_vec(&Message::Request(first.as_request()));
                encode_raw_vec(&body[..body.len() / 2])
            },
            &[ErrorCode::Decode],
        ),
        (
            "oversized frame (max_frame + 16 bytes)",
            oversized,
            &[ErrorCode::Oversized],
        ),
        (
            "graph beyond capacity (max_nodes + 1 nodes)",
            big_frame,
            &[ErrorCode::Capacity],
        ),
        (
            "a response sent to the device",
            encode_vec(&Message::Response(tinygnn_proto::Response {
                id: 0,
                rows: 0,
                channels: 0,
                scale: 1.0,
                zero_point: 0,
                cost: 0,
                data: &[],
            })),
            &[ErrorCode::Unexpected],
        ),
    ];
    let mut failures = 0;
    for (what, frame, want) in &cases {
        let got = link.exchange(frame, &expect)?;
        match &got {
            Answer::Error { code, detail, .. } if want.contains(code) => {
                outln!("ok   {what}: error {} ({code}): {detail}", code.value());
            }
            other => {
                failures += 1;
                outln!("FAIL {what}: expected error {want:?}, got {other:?}");
            }
        }
    }
    let again = link.exchange(&valid, &expect)?;
    if again == reference {
        outln!("ok   valid request after the faults: same answer as before");
    } else {
        failures += 1;
        outln!("FAIL valid request after the faults: different answer {again:?}");
    }
    if failures > 0 {
        bail!("{failures} of {} fault checks failed", cases.len() + 1);
    }
    outln!("fault test passed: {} checks", cases.len() + 1);
    Ok(())
}
