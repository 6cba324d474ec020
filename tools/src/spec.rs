//! The model spec (the op graph in `MODEL.safetensors`, `docs/interchange.md`),
//! parsed and checked against its weights.
//!
//! Every error names the op (by its spec name and type) and, where there is
//! one, the parameter role and safetensors key at fault.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ops::common::Parse;
pub use crate::ops::common::{Aggr, Mat, Rows};
pub use crate::ops::OpKind;
use crate::st::ModelFile;

/// Node- or graph-level task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One output row per node.
    Node,
    /// One output row per graph.
    Graph,
    /// One output row per node pair (link prediction; helper `link`).
    Link,
}

/// One op of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecOp {
    /// Name of the op and of the tensor it produces.
    pub name: String,
    /// Input tensor names.
    pub inputs: Vec<String>,
    /// The op.
    pub kind: OpKind,
    /// Output channels.
    pub channels: usize,
    /// Node or graph rows.
    pub rows: Rows,
}

/// A parsed and checked spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Task.
    pub task: Task,
    /// Name of the node-feature input.
    pub input: String,
    /// Input channels.
    pub in_channels: usize,
    /// The edge-feature input (name, channels `D`), if an op reads edge features.
    pub edge_input: Option<(String, usize)>,
    /// Ops in execution order.
    pub ops: Vec<SpecOp>,
    /// Output names.
    pub outputs: Vec<String>,
    /// The carried states of a recurrent cell, in the order of the state
    /// buffer (empty: not recurrent; an LSTM cell carries `h` and `c`).
    pub states: Vec<State>,
}

/// The carried state of a recurrent cell (`forward(x, edge_index, …, h)`
/// returning `h_next` or `(y, h_next)`): a node-level input read at every
/// step and the output that becomes the next step's value of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Name by which ops read the state (`h`).
    pub name: String,
    /// Its channels `H`.
    pub channels: usize,
    /// The output holding the next state (one of the spec's outputs).
    pub next: String,
}

impl Spec {
    /// Channels and row kind of a named tensor (input or op output).
    pub fn shape_of(&self, name: &str) -> Option<(Rows, usize)> {
        if name == self.input {
            return Some((Rows::Node, self.in_channels));
        }
        if let Some(st) = self.states.iter().find(|s| s.name == name) {
            return Some((Rows::Node, st.channels));
        }
        self.ops
            .iter()
            .find(|o| o.name == name)
            .map(|o| (o.rows, o.channels))
    }
}

#[derive(Deserialize)]
struct RawSpec {
    tinygnn_spec: u32,
    #[serde(default)]
    task: Option<String>,
    input: RawInput,
    #[serde(default)]
    edge_input: Option<RawInput>,
    ops: Vec<RawOp>,
    outputs: Vec<String>,
    #[serde(default)]
    state: Option<RawStates>,
}

/// `"state"`: one object, or a list of them for several carried states.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawStates {
    One(RawState),
    Many(Vec<RawState>),
}

#[derive(Deserialize)]
struct RawState {
    name: String,
    channels: usize,
    next: String,
}

#[derive(Deserialize)]
struct RawInput {
    name: String,
    channels: usize,
}

#[derive(Deserialize)]
struct RawOp {
    name: String,
    op: String,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    attrs: Map<String, Value>,
    #[serde(default)]
    params: HashMap<String, String>,
}

/// Reads a model file (MODEL.safetensors) and parses its spec.
pub fn load(path: &std::path::Path) -> Result<Spec> {
    let file = crate::st::read_model_file(path)?;
    parse(&file).with_context(|| format!("{}: invalid model spec", path.display()))
}

/// Parses the spec of a model file and checks it against its tensors.
pub fn parse(file: &ModelFile) -> Result<Spec> {
    let mut raw: RawSpec = serde_json::from_str(&file.spec_json)
        .map_err(|e| anyhow!("spec JSON is malformed: {e}"))?;
    if raw.tinygnn_spec != 1 {
        bail!(
            "spec version {} is not supported (this tool reads version 1)",
            raw.tinygnn_spec
        );
    }
    let task = match raw.task.as_deref() {
        None | Some("node") => Task::Node,
        Some("graph") => Task::Graph,
        Some("link") => Task::Link,
        Some(t) => bail!("spec task '{t}' is not 'node', 'graph' or 'link'"),
    };
    if raw.input.channels == 0 {
        bail!("spec input '{}' has 0 channels", raw.input.name);
    }
    let mut shapes: HashMap<String, (Rows, usize)> = HashMap::new();
    shapes.insert(raw.input.name.clone(), (Rows::Node, raw.input.channels));
    let states = parse_states(raw.state.take(), task, &mut shapes)?;
    let mut ops = Vec::new();
    let edge_input = raw
        .edge_input
        .as_ref()
        .map(|e| (e.name.as_str(), e.channels));
    for op in &raw.ops {
        let who = format!("op '{}' ({})", op.name, op.op);
        if shapes.contains_key(&op.name) {
            bail!(
                "{who}: the name '{}' is already used by the input or an earlier op",
                op.name
            );
        }
        let arity = crate::ops::arity(&op.op).map_err(|e| anyhow!("op '{}': {e}", op.name))?;
        let mut ins = Vec::new();
        for i in &op.inputs {
            let s = shapes.get(i).ok_or_else(|| {
                anyhow!(
                    "{who}: input '{i}' is neither the model input nor the output of an earlier op"
                )
            })?;
            ins.push(*s);
        }
        match arity {
            Some(k) if ins.len() != k => bail!("{who}: takes {k} input(s), got {}", ins.len()),
            None if ins.is_empty() => bail!("{who}: needs at least one input"),
            _ => {}
        }
        let cx = Parse {
            name: &op.name,
            ty: &op.op,
            inputs: &op.inputs,
            ins: &ins,
            edge_input,
            attrs: &op.attrs,
            params: &op.params,
            tensors: &file.tensors,
        };
        let (kind, rows, channels) = crate::ops::parse(&cx)?;
        if channels == 0 {
            bail!("{who}: has 0 output channels");
        }
        shapes.insert(op.name.clone(), (rows, channels));
        ops.push(SpecOp {
            name: op.name.clone(),
            inputs: op.inputs.clone(),
            kind,
            channels,
            rows,
        });
    }
    if raw.outputs.is_empty() {
        bail!("spec has no outputs");
    }
    for o in &raw.outputs {
        let (rows, _) = shapes
            .get(o)
            .ok_or_else(|| anyhow!("spec output '{o}' is not the input or an op"))?;
        let want = match task {
            Task::Node => Rows::Node,
            Task::Graph => Rows::Graph,
            Task::Link => Rows::Pair,
        };
        if *rows != want {
            bail!("spec output '{o}' is {rows:?}-level but the task is {task:?}");
        }
    }
    if let Some(ei) = &raw.edge_input {
        if ei.channels == 0 || shapes.contains_key(&ei.name) {
            bail!(
                "spec edge input '{}' has 0 channels or reuses a tensor name",
                ei.name
            );
        }
    }
    check_next_states(&states, &raw.outputs, &shapes)?;
    Ok(Spec {
        task,
        input: raw.input.name,
        in_channels: raw.input.channels,
        edge_input: raw.edge_input.map(|e| (e.name, e.channels)),
        ops,
        outputs: raw.outputs,
        states: states
            .into_iter()
            .map(|s| State {
                name: s.name,
                channels: s.channels,
                next: s.next,
            })
            .collect(),
    })
}

/// The spec's `state` (one object or a list) as a list, each state's name
/// checked and added to `shapes` (node-level, like the input).
fn parse_states(
    raw: Option<RawStates>,
    task: Task,
    shapes: &mut HashMap<String, (Rows, usize)>,
) -> Result<Vec<RawState>> {
    let states = match raw {
        None => Vec::new(),
        Some(RawStates::One(s)) => vec![s],
        Some(RawStates::Many(v)) if !v.is_empty() && v.len() <= tinygnn::MAX_STATES => v,
        Some(RawStates::Many(v)) => bail!(
            "spec state: {} states; a recurrent cell carries 1 to {}",
            v.len(),
            tinygnn::MAX_STATES
        ),
    };
    for st in &states {
        if st.channels == 0 || shapes.contains_key(&st.name) {
            bail!(
                "spec state '{}' has 0 channels or reuses the input's or another state's name",
                st.name
            );
        }
        if task != Task::Node {
            bail!(
                "spec state '{}': a recurrent cell must be a node-level task",
                st.name
            );
        }
        shapes.insert(st.name.clone(), (Rows::Node, st.channels));
    }
    Ok(states)
}

/// Each state's next value: one of the outputs, a node-level tensor of the
/// state's channels computed by an op, and not another state's.
fn check_next_states(
    states: &[RawState],
    outputs: &[String],
    shapes: &HashMap<String, (Rows, usize)>,
) -> Result<()> {
    for (k, st) in states.iter().enumerate() {
        if states[..k].iter().any(|o| o.next == st.next) {
            bail!(
                "spec state '{}': its next value '{}' is another state's next value",
                st.name,
                st.next
            );
        }
        if !outputs.contains(&st.next) {
            bail!(
                "spec state '{}': its next value '{}' is not one of the outputs",
                st.name,
                st.next
            );
        }
        if shapes.get(&st.next) != Some(&(Rows::Node, st.channels)) || st.next == st.name {
            bail!(
                "spec state '{}': its next value '{}' is not a node-level tensor of {} channels computed by an op",
                st.name,
                st.next,
                st.channels
            );
        }
    }
    Ok(())
}
