//! Deterministic mutation suite: hostile model files.
//!
//! For every bundled model (`models/*/*.tgnn`) and for one synthetic model
//! that uses every op kind (edge weights, batch, concat, …), at least 10,000
//! mutated files are built from a fixed seed:
//!
//! * `flip`: random byte changes, CRC left as it is (dies at the checksum);
//! * `flip+crc`: random byte changes anywhere after the CRC field, CRC fixed;
//! * `truncate`, `truncate+crc` (length field and CRC patched), `extend`,
//!   `extend+crc` (random bytes appended; length patched, sometimes the data
//!   section grown over them);
//! * `header`: one field of the fixed header changed (offsets, lengths,
//!   version, flags), CRC fixed;
//! * field-aware mutations of the decoded metadata, re-encoded with postcard
//!   and the CRC fixed, so that they reach the deep checks: `meta` (capacities,
//!   counts, input, outputs, edge-weight flag), `tensor` (kind, channels,
//!   scale, zero point), `op-ids` (tensor ids of ops), `op-section` (weight and
//!   parameter offsets and lengths), `op-param` (multipliers, shifts, eps,
//!   alpha, flags, aggregation, pooling), `op-list` (ops swapped, duplicated,
//!   removed, variants changed, concat parts), `data` (weight and parameter
//!   bytes, CRC fixed: these mostly pass and run with extreme parameters).
//!
//! Every mutant must be rejected by `Model::from_bytes` with a typed error or,
//! if accepted, run on a few random graphs inside an arena of exactly
//! `arena_bytes` (8-aligned) placed in a larger buffer with 64 guard bytes on
//! each side. After each run the guards must be intact, the run must succeed
//! or fail with a typed error other than `ArenaTooSmall` (the size is exact),
//! and a second run in an arena pre-filled with a different pattern must give
//! the same result and the same output bytes (nothing reads arena bytes it did
//! not write). The suite prints its counts per model.

mod common;

use std::collections::BTreeMap;
use tinygnn::ops::{
    Act, Add, AttentionPool, ChebConv, Concat, EdgeConv, GatConv, GcnConv, GinAggregate, GineConv,
    GlobalPool, HypergraphConv, InnerProduct, LayerNorm, Linear, Lut, Mul, PairFeatures, Propagate,
    RandomWalkPe, SageConv, Softmax, TransformerConv,
};

use common::{node, records, writer, Rng};
use tinygnn::format::writer::fix_crc;
use tinygnn::format::{
    Activation, Aggr, ConcatPart, MetaHeader, Op, Pool, Section, TensorDesc, TensorKind,
    TransformerEdge, HEADER_LEN, WEIGHTS_I2_FLAG, WEIGHTS_I4_FLAG,
};
use tinygnn::{Error, Features, GraphInput, Model, Session};
use tinygnn_testkit::every_op_model;

/// Mutants per model (at least; a few under Miri, which is ~1000× slower).
const MUTANTS: usize = if cfg!(miri) { 12 } else { 10_000 };
/// Guard bytes on each side of the arena.
const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xC3;

/// A valid model taken apart: metadata values, the data section, and the
/// exact layout the writer uses (metadata at 32, data at the next multiple of 16).
#[derive(Clone)]
struct Decoded {
    meta: MetaHeader,
    tensors: Vec<TensorDesc>,
    ops: Vec<Op>,
    data: Vec<u8>,
    /// Metadata bytes after the ops: the optional pair-capacity trailer,
    /// state record and bit-width table.
    trailer: Vec<u8>,
    /// Header flags (bit 0: the bit-width table of int4 activations).
    flags: u16,
}

fn decode(bytes: &[u8]) -> Decoded {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let (mo, ml, doff, dl) = (u32_at(16), u32_at(20), u32_at(24), u32_at(28));
    let meta_bytes = &bytes[mo..mo + ml];
    let (meta, mut rest): (MetaHeader, &[u8]) = postcard::take_from_bytes(meta_bytes).unwrap();
    let mut tensors = Vec::new();
    for _ in 0..meta.num_tensors {
        let (t, r): (TensorDesc, &[u8]) = postcard::take_from_bytes(rest).unwrap();
        tensors.push(t);
        rest = r;
    }
    let mut ops = Vec::new();
    for _ in 0..meta.num_ops {
        let (o, r): (Op, &[u8]) = postcard::take_from_bytes(rest).unwrap();
        ops.push(o);
        rest = r;
    }
    Decoded {
        meta,
        tensors,
        ops,
        data: bytes[doff..doff + dl].to_vec(),
        trailer: rest.to_vec(),
        flags: u16::from_le_bytes([bytes[6], bytes[7]]),
    }
}

/// Encodes `d` in the writer's layout. Counts in `d.meta` are written as they
/// are (they may disagree with the lists on purpose); the CRC is correct.
fn encode(d: &Decoded) -> Vec<u8> {
    let mut meta = postcard::to_stdvec(&d.meta).unwrap();
    for t in &d.tensors {
        meta.extend(postcard::to_stdvec(t).unwrap());
    }
    for o in &d.ops {
        meta.extend(postcard::to_stdvec(o).unwrap());
    }
    meta.extend_from_slice(&d.trailer);
    let data_off = (HEADER_LEN + meta.len()).div_ceil(16) * 16;
    let len = data_off + d.data.len();
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(b"TGNN");
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&d.flags.to_le_bytes());
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    for v in [HEADER_LEN, meta.len(), data_off, d.data.len()] {
        b.extend_from_slice(&(v as u32).to_le_bytes());
    }
    b.extend_from_slice(&meta);
    b.resize(data_off, 0);
    b.extend_from_slice(&d.data);
    fix_crc(&mut b);
    b
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------- values

/// An "interesting" u32 near `v`: boundaries, off-by-ones, random.
fn nasty_u32(rng: &mut Rng, v: u32) -> u32 {
    match rng.next() % 12 {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => v.wrapping_add(1),
        4 => v.wrapping_sub(1),
        5 => v.wrapping_add(4),
        6 => v.wrapping_sub(4),
        7 => v.wrapping_mul(2),
        8 => v / 2,
        9 => 1 << (rng.next() % 32),
        10 => (rng.next() % 70_000) as u32,
        _ => rng.next() as u32,
    }
}

fn nasty_i32(rng: &mut Rng, v: i32) -> i32 {
    match rng.next() % 10 {
        0 => 0,
        1 => i32::MIN,
        2 => i32::MAX,
        3 => -1,
        4 => v.wrapping_neg(),
        5 => v.wrapping_add(1),
        6 => rng.range(-70, 70) as i32,
        7 => 1 << (rng.next() % 31),
        _ => rng.next() as i32,
    }
}

fn nasty_u16(rng: &mut Rng, v: u16) -> u16 {
    match rng.next() % 9 {
        0 => 0,
        1 => 1,
        2 => u16::MAX,
        3 => 4096,
        4 => 4097,
        5 => v.wrapping_add(1),
        6 => v.wrapping_sub(1),
        7 => v.wrapping_mul(2),
        _ => rng.next() as u16,
    }
}

fn nasty_u8(rng: &mut Rng, v: u8, n: usize) -> u8 {
    match rng.next() % 6 {
        0 => v.wrapping_add(1),
        1 => v.wrapping_sub(1),
        2 => u8::MAX,
        3 => n as u8,
        _ => (rng.next() % (n as u64 + 2)) as u8,
    }
}

fn nasty_f32(rng: &mut Rng, v: f32) -> f32 {
    match rng.next() % 9 {
        0 => 0.0,
        1 => -v,
        2 => f32::NAN,
        3 => f32::INFINITY,
        4 => f32::MIN_POSITIVE,
        5 => 1e-45,
        6 => f32::MAX,
        7 => v * 1e30,
        _ => f32::from_bits(rng.next() as u32),
    }
}

fn nasty_act(rng: &mut Rng) -> Activation {
    match rng.next() % 4 {
        0 => Activation::None,
        1 => Activation::Relu,
        _ => Activation::LeakyRelu {
            alpha_q16: nasty_i32(rng, 65536),
        },
    }
}

fn nasty_section(rng: &mut Rng, s: Section, data_len: usize) -> Section {
    let mut s = s;
    match rng.next() % 7 {
        0 => s.offset = nasty_u32(rng, s.offset),
        1 => s.len = nasty_u32(rng, s.len),
        2 => {
            s.offset = nasty_u32(rng, s.offset);
            s.len = nasty_u32(rng, s.len);
        }
        3 => s.offset = data_len as u32 - s.len.min(data_len as u32), // moved to the end
        4 => s.offset = s.offset.wrapping_add(1 + (rng.next() % 3) as u32), // misaligned
        // Precision flags toggled: int8 ↔ int4 ↔ int2, or both flags.
        5 => {
            let flags = [
                WEIGHTS_I4_FLAG,
                WEIGHTS_I2_FLAG,
                WEIGHTS_I4_FLAG | WEIGHTS_I2_FLAG,
            ];
            s.len ^= flags[(rng.next() % 3) as usize];
        }
        _ => s.len = 0,
    }
    s
}

// ---------------------------------------------------------------- op edits

/// Every tensor id field of an op, mutably.
fn op_ids(op: &mut Op) -> Vec<&mut u8> {
    match op {
        Op::Linear(Linear { input, output, .. })
        | Op::GcnConv(GcnConv { input, output, .. })
        | Op::SageConv(SageConv { input, output, .. })
        | Op::GinAggregate(GinAggregate { input, output, .. })
        | Op::GlobalPool(GlobalPool { input, output, .. })
        | Op::Act(Act { input, output, .. })
        | Op::GatConv(GatConv { input, output, .. })
        | Op::EdgeConv(EdgeConv { input, output, .. })
        | Op::InnerProduct(InnerProduct { input, output, .. })
        | Op::PairFeatures(PairFeatures { input, output, .. })
        | Op::HypergraphConv(HypergraphConv { input, output, .. })
        | Op::ChebConv(ChebConv { input, output, .. }) => vec![input, output],
        Op::Propagate(Propagate {
            input, output, x0, ..
        }) => vec![input, output, x0],
        Op::Add(Add { a, b, output, .. }) | Op::Mul(Mul { a, b, output, .. }) => {
            vec![a, b, output]
        }
        Op::AttentionPool(AttentionPool {
            gate,
            input,
            output,
            ..
        }) => vec![gate, input, output],
        Op::GineConv(GineConv {
            input,
            edge_attr,
            output,
            ..
        })
        | Op::TransformerConv(TransformerConv {
            input,
            output,
            edge: Some(TransformerEdge { edge_attr, .. }),
            ..
        }) => vec![input, edge_attr, output],
        Op::Lut(Lut { input, output, .. })
        | Op::Softmax(Softmax { input, output, .. })
        | Op::LayerNorm(LayerNorm { input, output, .. })
        | Op::TransformerConv(TransformerConv {
            input,
            output,
            edge: None,
            ..
        })
        | Op::RandomWalkPe(RandomWalkPe { input, output, .. }) => vec![input, output],
        Op::Concat(Concat { parts, output }) => {
            let mut v: Vec<&mut u8> = parts.iter_mut().map(|p| &mut p.input).collect();
            v.push(output);
            v
        }
    }
}

fn op_sections(op: &mut Op) -> Vec<&mut Section> {
    match op {
        Op::Linear(Linear {
            weights, params, ..
        })
        | Op::GcnConv(GcnConv {
            weights, params, ..
        })
        | Op::HypergraphConv(HypergraphConv {
            weights, params, ..
        })
        | Op::ChebConv(ChebConv {
            weights, params, ..
        }) => vec![weights, params],
        Op::Propagate(Propagate {
            weights,
            weights_0,
            params,
            ..
        }) => vec![weights, weights_0, params],
        Op::SageConv(SageConv {
            weights_l,
            weights_r,
            params,
            ..
        }) => vec![weights_l, weights_r, params],
        Op::GatConv(GatConv {
            weights,
            weights_r,
            lin_bias,
            att,
            logit,
            params,
            ..
        }) => vec![weights, weights_r, lin_bias, att, logit, params],
        Op::GineConv(GineConv {
            edge_weights,
            edge_params,
            ..
        }) => vec![edge_weights, edge_params],
        Op::Lut(Lut { table, .. }) | Op::Softmax(Softmax { table, .. }) => vec![table],
        Op::LayerNorm(LayerNorm { affine, .. }) => vec![affine],
        Op::TransformerConv(TransformerConv {
            w_query,
            w_key,
            w_value,
            w_skip,
            lin_bias,
            params,
            beta,
            edge,
            ..
        }) => {
            let mut v = vec![w_query, w_key, w_value, w_skip, lin_bias, params, beta];
            if let Some(TransformerEdge {
                weights, rescale, ..
            }) = edge
            {
                v.extend([weights, rescale]);
            }
            v
        }
        Op::EdgeConv(EdgeConv {
            w_self,
            w_nbr,
            params1,
            w2,
            params2,
            ..
        }) => vec![w_self, w_nbr, params1, w2, params2],
        _ => vec![],
    }
}

/// Changes one numeric parameter or flag of an op.
fn mutate_param(rng: &mut Rng, op: &mut Op) {
    match op {
        Op::Linear(Linear { act, .. }) => *act = nasty_act(rng),
        Op::GcnConv(GcnConv {
            act,
            improved,
            add_self_loops,
            normalize,
            edge_weight,
            ..
        }) => match rng.next() % 5 {
            0 => *act = nasty_act(rng),
            1 => *improved ^= true,
            2 => *add_self_loops ^= true,
            3 => *normalize ^= true,
            _ => *edge_weight ^= true,
        },
        Op::SageConv(SageConv {
            aggr,
            act,
            normalize,
            ..
        }) => match rng.next() % 3 {
            0 => {
                *aggr = match rng.next() % 3 {
                    0 => Aggr::Sum,
                    1 => Aggr::Mean,
                    _ => Aggr::Max,
                }
            }
            1 => *act = nasty_act(rng),
            _ => *normalize ^= true,
        },
        Op::GinAggregate(GinAggregate {
            one_plus_eps_q16,
            mult,
            shift,
            ..
        }) => match rng.next() % 3 {
            0 => *one_plus_eps_q16 = nasty_i32(rng, *one_plus_eps_q16),
            1 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::GlobalPool(GlobalPool {
            pool, mult, shift, ..
        }) => match rng.next() % 3 {
            0 => {
                *pool = match rng.next() % 3 {
                    0 => Pool::Add,
                    1 => Pool::Mean,
                    _ => Pool::Max,
                }
            }
            1 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::Add(Add {
            mult_a_q16,
            mult_b_q16,
            act,
            ..
        }) => match rng.next() % 3 {
            0 => *mult_a_q16 = nasty_i32(rng, *mult_a_q16),
            1 => *mult_b_q16 = nasty_i32(rng, *mult_b_q16),
            _ => *act = nasty_act(rng),
        },
        Op::Mul(Mul { mult, shift, .. }) => match rng.next() % 2 {
            0 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::Concat(Concat { parts, .. }) => {
            if let Some(p) = parts.first_mut() {
                p.mult_q16 = nasty_i32(rng, p.mult_q16);
            }
        }
        Op::Act(Act { act, .. }) => *act = nasty_act(rng),
        Op::Softmax(Softmax {
            log,
            ln2_q16,
            mult,
            shift,
            ..
        }) => match rng.next() % 4 {
            0 => *log ^= true,
            1 => *ln2_q16 = nasty_i32(rng, *ln2_q16),
            2 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::GatConv(GatConv {
            heads,
            concat,
            v2,
            add_self_loops,
            negative_slope_q16,
            act,
            ..
        }) => match rng.next() % 6 {
            0 => *heads = nasty_u8(rng, *heads, 16),
            1 => *concat ^= true,
            2 => *v2 ^= true,
            3 => *add_self_loops ^= true,
            4 => *negative_slope_q16 = nasty_i32(rng, *negative_slope_q16),
            _ => *act = nasty_act(rng),
        },
        Op::Propagate(Propagate {
            k,
            alpha_q30,
            act,
            improved,
            add_self_loops,
            normalize,
            edge_weight,
            hops,
            ..
        }) => match rng.next() % 8 {
            0 => *k = nasty_u8(rng, *k, 32),
            1 => *alpha_q30 = nasty_i32(rng, *alpha_q30),
            2 => *act = nasty_act(rng),
            3 => *improved ^= true,
            4 => *add_self_loops ^= true,
            5 => *normalize ^= true,
            6 => *hops ^= true,
            _ => *edge_weight ^= true,
        },
        Op::GineConv(GineConv {
            one_plus_eps_q16,
            mult,
            shift,
            ..
        }) => match rng.next() % 3 {
            0 => *one_plus_eps_q16 = nasty_i32(rng, *one_plus_eps_q16),
            1 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::Lut(Lut { table, .. }) => table.len = (rng.next() % 300) as u32,
        Op::EdgeConv(EdgeConv {
            k,
            hidden,
            hidden_zp,
            act1,
            act2,
            ..
        }) => match rng.next() % 5 {
            0 => *k = (nasty_i32(rng, i32::from(*k)) & 0xffff) as u16,
            1 => *hidden = (nasty_i32(rng, i32::from(*hidden)) & 0xffff) as u16,
            2 => *hidden_zp = rng.next() as i8,
            3 => *act1 = nasty_act(rng),
            _ => *act2 = nasty_act(rng),
        },
        // link (pair decoders): not in the shared fixtures yet (see the
        // `dedupe` helper); their parameters are mutated like GinAggregate's.
        Op::InnerProduct(InnerProduct { mult, shift, .. })
        | Op::PairFeatures(PairFeatures {
            mode: tinygnn::format::PairMode::Hadamard { mult, shift },
            ..
        }) => match rng.next() % 2 {
            0 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::PairFeatures(PairFeatures { .. }) => {}
        Op::HypergraphConv(HypergraphConv { act, weighted, .. }) => match rng.next() % 2 {
            0 => *act = nasty_act(rng),
            _ => *weighted ^= true,
        },
        Op::ChebConv(ChebConv {
            k,
            act,
            edge_weight,
            ..
        }) => match rng.next() % 3 {
            0 => *k = nasty_u8(rng, *k, 20),
            1 => *act = nasty_act(rng),
            _ => *edge_weight ^= true,
        },
        Op::RandomWalkPe(RandomWalkPe {
            steps, mult, shift, ..
        }) => match rng.next() % 3 {
            0 => *steps = nasty_u8(rng, *steps, 40),
            1 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::AttentionPool(AttentionPool {
            gate_q16,
            mult,
            shift,
            ..
        }) => match rng.next() % 3 {
            0 => *gate_q16 = nasty_i32(rng, *gate_q16),
            1 => *mult = nasty_i32(rng, *mult),
            _ => *shift = nasty_i32(rng, *shift),
        },
        Op::LayerNorm(LayerNorm { eps_q, frac, .. }) => match rng.next() % 2 {
            0 => *eps_q = nasty_i32(rng, *eps_q as i32) as u64,
            _ => *frac = nasty_u8(rng, *frac, 80),
        },
        Op::TransformerConv(TransformerConv {
            heads,
            concat,
            global,
            q_shift,
            k_shift,
            logit_mult,
            logit_shift,
            act,
            edge,
            beta,
            ..
        }) => match rng.next() % 10 {
            8 => *edge = None,
            9 => *beta = Section::default(),
            0 => *heads = nasty_u8(rng, *heads, 16),
            1 => *concat ^= true,
            7 => *global ^= true,
            2 => *q_shift = nasty_u8(rng, *q_shift, 40),
            3 => *k_shift = nasty_u8(rng, *k_shift, 40),
            4 => *logit_mult = nasty_i32(rng, *logit_mult),
            5 => *logit_shift = nasty_i32(rng, *logit_shift),
            _ => *act = nasty_act(rng),
        },
    }
}

/// Another op built from the fields of `op` (same tensors, another variant).
fn change_variant(rng: &mut Rng, op: &Op, data_len: usize) -> Op {
    let (input, output) = (op_ids(&mut op.clone())[0].to_owned(), op.output());
    let w = Section {
        offset: 0,
        len: (rng.next() % data_len.max(1) as u64) as u32,
    };
    match rng.next() % 8 {
        0 => Op::Linear(Linear {
            input,
            output,
            weights: w,
            params: w,
            act: Activation::None,
        }),
        1 => Op::GcnConv(GcnConv {
            input,
            output,
            weights: w,
            params: w,
            act: Activation::Relu,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: rng.next() % 2 == 0,
        }),
        2 => Op::SageConv(SageConv {
            input,
            output,
            aggr: Aggr::Max,
            weights_l: w,
            weights_r: Section::default(),
            params: w,
            act: Activation::None,
            normalize: false,
        }),
        3 => Op::GinAggregate(GinAggregate {
            input,
            output,
            one_plus_eps_q16: 1 << 16,
            mult: 1 << 30,
            shift: 0,
        }),
        4 => Op::GlobalPool(GlobalPool {
            input,
            output,
            pool: Pool::Mean,
            mult: 1 << 30,
            shift: 0,
        }),
        5 => Op::Add(Add {
            a: input,
            b: input,
            output,
            mult_a_q16: 1 << 16,
            mult_b_q16: 1 << 16,
            act: Activation::None,
        }),
        6 => Op::Concat(Concat {
            parts: heapless::Vec::from_slice(&[
                ConcatPart {
                    input,
                    mult_q16: 1 << 16,
                },
                ConcatPart {
                    input,
                    mult_q16: 1 << 15,
                },
            ])
            .unwrap(),
            output,
        }),
        _ => Op::Act(Act {
            input,
            output,
            act: Activation::Relu,
        }),
    }
}

// ---------------------------------------------------------------- mutants

const KINDS: [&str; 16] = [
    "flip",
    "flip+crc",
    "truncate",
    "truncate+crc",
    "extend",
    "extend+crc",
    "header",
    "meta",
    "tensor",
    "op-ids",
    "op-section",
    "op-param",
    "op-list",
    "counts",
    "data",
    "multi",
];

/// Share of each kind in the mix (sums to 100).
const WEIGHTS: [u64; 16] = [6, 8, 4, 4, 3, 4, 6, 7, 8, 9, 9, 10, 7, 4, 6, 5];

/// Applies one field-aware mutation of kind `k` (7..=14) to `d`.
fn mutate_fields(rng: &mut Rng, d: &mut Decoded, k: usize) {
    let nt = d.tensors.len();
    let data_len = d.data.len();
    match KINDS[k] {
        "meta" => match rng.next() % 8 {
            0 => d.meta.max_nodes = nasty_u32(rng, d.meta.max_nodes),
            1 => d.meta.max_edges = nasty_u32(rng, d.meta.max_edges),
            2 => d.meta.max_graphs = nasty_u32(rng, d.meta.max_graphs),
            3 => d.meta.input = nasty_u8(rng, d.meta.input, nt),
            4 => {
                let o = nasty_u8(rng, 0, nt);
                if d.meta.outputs.push(o).is_err() {
                    d.meta.outputs.clear();
                }
            }
            5 => {
                if let Some(o) = d.meta.outputs.first_mut() {
                    *o = nasty_u8(rng, *o, nt);
                }
            }
            6 => d.meta.outputs.clear(),
            _ => d.meta.uses_edge_weight ^= true,
        },
        "tensor" => {
            let t = &mut d.tensors[(rng.next() % nt as u64) as usize];
            match rng.next() % 5 {
                0 => {
                    t.kind = match t.kind {
                        TensorKind::Node => TensorKind::Graph,
                        _ => TensorKind::Node,
                    }
                }
                1 | 2 => t.channels = nasty_u16(rng, t.channels),
                3 => t.scale = nasty_f32(rng, t.scale),
                _ => t.zero_point = rng.i8(),
            }
        }
        "op-ids" => {
            let i = (rng.next() % d.ops.len() as u64) as usize;
            let mut ids = op_ids(&mut d.ops[i]);
            let j = (rng.next() % ids.len() as u64) as usize;
            *ids[j] = nasty_u8(rng, *ids[j], nt);
        }
        "op-section" => {
            let with: Vec<usize> = (0..d.ops.len())
                .filter(|&i| !op_sections(&mut d.ops[i]).is_empty())
                .collect();
            if with.is_empty() {
                return mutate_fields(rng, d, 11);
            }
            let i = with[(rng.next() % with.len() as u64) as usize];
            let other: Vec<Section> = d
                .ops
                .iter_mut()
                .flat_map(|o| op_sections(o).into_iter().map(|s| *s))
                .collect();
            let mut secs = op_sections(&mut d.ops[i]);
            let j = (rng.next() % secs.len() as u64) as usize;
            if rng.next() % 5 == 0 {
                // Points at another op's section (right bounds, maybe wrong size).
                *secs[j] = other[(rng.next() % other.len() as u64) as usize];
            } else {
                *secs[j] = nasty_section(rng, *secs[j], data_len);
            }
        }
        "op-param" => {
            let i = (rng.next() % d.ops.len() as u64) as usize;
            mutate_param(rng, &mut d.ops[i]);
        }
        "op-list" => {
            let n = d.ops.len();
            let i = (rng.next() % n as u64) as usize;
            let j = (rng.next() % n as u64) as usize;
            match rng.next() % 6 {
                0 => d.ops.swap(i, j),
                1 => {
                    let o = d.ops[i].clone();
                    d.ops.insert(j, o);
                    d.meta.num_ops = d.ops.len() as u16;
                }
                2 if n > 1 => {
                    d.ops.remove(i);
                    d.meta.num_ops = d.ops.len() as u16;
                }
                3 => {
                    let o = change_variant(rng, &d.ops[i], data_len);
                    d.ops[i] = o;
                }
                4 => {
                    // Concat parts: add a copy of a part, or drop one.
                    if let Op::Concat(Concat { parts, .. }) = &mut d.ops[i] {
                        if rng.next() % 2 == 0 && parts.len() > 1 {
                            parts.pop();
                        } else if let Some(&p) = parts.first() {
                            let _ = parts.push(p);
                        }
                    } else {
                        let o = change_variant(rng, &d.ops[i], data_len);
                        d.ops.insert(i, o);
                        d.meta.num_ops = d.ops.len() as u16;
                    }
                }
                _ => {
                    // A tensor added (or removed) with the count kept in step.
                    if rng.next() % 2 == 0 || nt < 2 {
                        let t = d.tensors[(rng.next() % nt as u64) as usize];
                        d.tensors.push(t);
                    } else {
                        d.tensors.pop();
                    }
                    d.meta.num_tensors = d.tensors.len() as u16;
                }
            }
        }
        "counts" => match rng.next() % 4 {
            0 => d.meta.num_tensors = nasty_u16(rng, d.meta.num_tensors),
            1 => d.meta.num_ops = nasty_u16(rng, d.meta.num_ops),
            2 => d.meta.num_tensors = d.meta.num_tensors.wrapping_add(1),
            _ => d.meta.num_ops = d.meta.num_ops.wrapping_sub(1),
        },
        "data" => {
            if data_len == 0 {
                return;
            }
            let edits = 1 + rng.next() % 16;
            for _ in 0..edits {
                let at = (rng.next() % data_len as u64) as usize;
                d.data[at] = rng.next() as u8;
            }
        }
        other => unreachable!("{other}"),
    }
}

/// Builds mutant number `i` of `base` (valid bytes `orig`), returns (kind, bytes).
fn mutant(rng: &mut Rng, base: &Decoded, orig: &[u8]) -> (usize, Vec<u8>) {
    let total: u64 = WEIGHTS.iter().sum();
    let mut pick = rng.next() % total;
    let mut k = 0;
    while pick >= WEIGHTS[k] {
        pick -= WEIGHTS[k];
        k += 1;
    }
    let len = orig.len();
    let bytes = match KINDS[k] {
        "flip" | "flip+crc" => {
            let mut b = orig.to_vec();
            let edits = 1 + rng.next() % 4;
            let lo = if k == 1 { 16 } else { 0 };
            for _ in 0..edits {
                let at = lo + (rng.next() % (len - lo) as u64) as usize;
                if rng.next() % 2 == 0 {
                    b[at] ^= 1 << (rng.next() % 8);
                } else {
                    b[at] = rng.next() as u8;
                }
            }
            if k == 1 {
                fix_crc(&mut b);
            }
            b
        }
        "truncate" | "truncate+crc" => {
            let cut = (rng.next() % len as u64) as usize;
            let mut b = orig[..cut].to_vec();
            if k == 3 && b.len() >= HEADER_LEN {
                set_u32(&mut b, 8, cut as u32);
                if rng.next() % 2 == 0 {
                    // Shrink the data section to fit, so the cut reaches the ops.
                    let doff = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
                    set_u32(&mut b, 28, cut.saturating_sub(doff) as u32);
                }
                fix_crc(&mut b);
            }
            b
        }
        "extend" | "extend+crc" => {
            let mut b = orig.to_vec();
            let extra = 1 + (rng.next() % 64) as usize;
            for _ in 0..extra {
                b.push(rng.next() as u8);
            }
            if k == 5 {
                let new_len = b.len() as u32;
                set_u32(&mut b, 8, new_len);
                if rng.next() % 2 == 0 {
                    let dl = u32::from_le_bytes(b[28..32].try_into().unwrap());
                    set_u32(&mut b, 28, dl + extra as u32);
                }
                fix_crc(&mut b);
            }
            b
        }
        "header" => {
            let mut b = orig.to_vec();
            match rng.next() % 7 {
                0 => b[4..6].copy_from_slice(&(rng.next() as u16).to_le_bytes()),
                1 => b[6..8].copy_from_slice(&(1u16 << (rng.next() % 16)).to_le_bytes()),
                f => {
                    let at = [8, 16, 20, 24, 28][(f - 2) as usize];
                    let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                    set_u32(&mut b, at, nasty_u32(rng, v));
                }
            }
            fix_crc(&mut b);
            b
        }
        "multi" => {
            let mut d = base.clone();
            for _ in 0..2 + rng.next() % 3 {
                let f = 7 + (rng.next() % 8) as usize;
                mutate_fields(rng, &mut d, f);
            }
            encode(&d)
        }
        _ => {
            let mut d = base.clone();
            mutate_fields(rng, &mut d, k);
            encode(&d)
        }
    };
    (k, bytes)
}

// ---------------------------------------------------------------- running

/// The variant name of an error (without its fields).
fn variant(e: &Error) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_string()
}

/// A random graph that fits `model`'s input, small enough to run fast.
struct Graph {
    n: usize,
    x: Vec<f32>,
    src: Vec<u16>,
    dst: Vec<u16>,
    w: Vec<f32>,
    batch: Option<Vec<u16>>,
    /// Node pairs (link prediction; only for models with a pair capacity).
    pairs: (Vec<u16>, Vec<u16>),
    /// Edge features `[edges, D]` for a model with an edge-feature input.
    edge_attr: Option<Vec<f32>>,
    /// Hyperedges (incidence nodes, hyperedge ids, weights) for a model with
    /// a HypergraphConv.
    hyper: Option<(Vec<u16>, Vec<u16>, Vec<f32>)>,
}

fn random_graph(rng: &mut Rng, model: &Model<'_>) -> Graph {
    let (max_n, max_e, max_g) = model.capacity();
    let f = usize::from(model.input_desc().channels);
    // Small graphs (and fewer under Miri, which is ~1000× slower).
    let cap_n = (max_n as usize).min(if cfg!(miri) { 5 } else { 24 });
    let n = match rng.next() % 6 {
        0 => 0,
        1 => cap_n.min(1),
        _ => (rng.next() % (cap_n as u64 + 1)) as usize,
    };
    let e = if n == 0 {
        0
    } else {
        (rng.next() % ((max_e as u64).min(if cfg!(miri) { 8 } else { 60 }) + 1)) as usize
    };
    let src: Vec<u16> = (0..e).map(|_| (rng.next() % n as u64) as u16).collect();
    let dst: Vec<u16> = (0..e).map(|_| (rng.next() % n as u64) as u16).collect();
    let w: Vec<f32> = (0..e)
        .map(|_| (rng.next() % 4000) as f32 / 1000.0)
        .collect();
    let x: Vec<f32> = (0..n * f)
        .map(|_| (rng.next() % 2001) as f32 / 500.0 - 2.0)
        .collect();
    let batch = if rng.next() % 2 == 0 && n > 0 {
        let g = (max_g as u64).min(4);
        let mut b: Vec<u16> = (0..n).map(|_| (rng.next() % g) as u16).collect();
        b.sort();
        Some(b)
    } else {
        None
    };
    let p = if n == 0 {
        0
    } else {
        (rng.next() % (u64::from(model.max_pairs()).min(30) + 1)) as usize
    };
    let pairs = (0..p)
        .map(|_| {
            (
                (rng.next() % n as u64) as u16,
                (rng.next() % n as u64) as u16,
            )
        })
        .unzip();
    let edge_attr = model
        .edge_input()
        .and_then(|t| model.tensors().get(usize::from(t)))
        .map(|d| {
            (0..e * usize::from(d.channels))
                .map(|_| (rng.next() % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        });
    let hyper = (model.uses_hyperedges() && n > 0).then(|| {
        let nnz = (rng.next() % ((max_e as u64).min(40) + 1)) as usize;
        let m = 1 + rng.next() % 8;
        let nodes = (0..nnz).map(|_| (rng.next() % n as u64) as u16).collect();
        let edges = (0..nnz).map(|_| (rng.next() % m) as u16).collect();
        let w = (0..m)
            .map(|_| (rng.next() % 4000) as f32 / 1000.0)
            .collect();
        (nodes, edges, w)
    });
    Graph {
        n,
        x,
        src,
        dst,
        w,
        batch,
        pairs,
        edge_attr,
        hyper,
    }
}

/// Outcome of one run: the error, or every output's bytes.
type Outcome = Result<Vec<Vec<i8>>, Error>;

/// Runs `model` on `g` in an arena of exactly `arena_bytes` filled with `fill`,
/// inside guard bytes; panics (fails the test) if a guard byte changed.
fn guarded_run(model: &Model<'_>, g: &Graph, fill: u8) -> Outcome {
    let mut input = GraphInput::new(g.n, Features::F32(&g.x), &g.src, &g.dst)
        .with_edge_weight(&g.w)
        .with_pairs(tinygnn::NodePairs {
            sources: &g.pairs.0,
            targets: &g.pairs.1,
        });
    input.batch = g.batch.as_deref();
    input.edge_attr = g.edge_attr.as_deref().map(tinygnn::EdgeAttr::F32);
    let hyper = g
        .hyper
        .as_ref()
        .map(|(nodes, edges, weight)| tinygnn::Hyperedges {
            nodes,
            edges,
            weight: Some(weight),
        });
    input.hyperedges = hyper;
    let graphs = input.num_graphs();
    let need = model.arena_bytes_with_pairs(g.n, g.src.len(), graphs, g.pairs.0.len());
    assert!(need < 1 << 26, "arena_bytes {need} for a tiny graph");
    let mut buf = vec![GUARD_BYTE; need + 2 * GUARD + 8];
    let start = GUARD + buf[GUARD..].as_ptr().align_offset(8);
    buf[start..start + need].fill(fill);
    let res = {
        let arena = &mut buf[start..start + need];
        let mut s = Session::new(model, arena);
        // A recurrent model runs one step from the zero state; its next
        // state is part of the outcome.
        let ran = match model.state_desc() {
            Some(d) => {
                let mut state = vec![d.zero_point; model.state_bytes(g.n)];
                s.run_step(&input, &mut state).map(|_| Some(state))
            }
            None => s.run(&input).map(|_| None),
        };
        match ran {
            Ok(state) => Ok((0..model.outputs().len())
                .map(|i| s.output(i).map(|o| o.data.to_vec()).unwrap_or_default())
                .chain(state)
                .collect()),
            Err(e) => Err(e),
        }
    };
    let bad = changed_guard(&buf, start, need);
    assert!(bad.is_none(), "guard byte {bad:?} overwritten");
    res
}

/// The first guard byte (outside `start..start + need`) that is not [`GUARD_BYTE`].
fn changed_guard(buf: &[u8], start: usize, need: usize) -> Option<usize> {
    buf[..start]
        .iter()
        .chain(&buf[start + need..])
        .position(|&b| b != GUARD_BYTE)
}

#[derive(Default)]
struct Counts {
    per_kind: BTreeMap<&'static str, usize>,
    rejected: BTreeMap<String, usize>,
    accepted: usize,
    runs_ok: usize,
    run_errors: BTreeMap<String, usize>,
}

/// Mutates `orig` `MUTANTS` times; checks every mutant; prints and returns the counts.
fn suite(name: &str, orig: &[u8], seed: u64) -> Counts {
    let base = decode(orig);
    assert_eq!(
        encode(&base),
        orig,
        "{name}: decode/encode is not the identity"
    );
    Model::from_bytes(orig).expect("the original model is valid");
    let mut rng = Rng(seed);
    let mut c = Counts::default();
    for i in 0..MUTANTS {
        let (k, bytes) = mutant(&mut rng, &base, orig);
        *c.per_kind.entry(KINDS[k]).or_default() += 1;
        let model = match Model::from_bytes(&bytes) {
            Err(e) => {
                *c.rejected.entry(variant(&e)).or_default() += 1;
                continue;
            }
            Ok(m) => m,
        };
        c.accepted += 1;
        for _ in 0..if cfg!(miri) { 1 } else { 3 } {
            let g = random_graph(&mut rng, &model);
            let graphs = g
                .batch
                .as_ref()
                .and_then(|b| b.last())
                .map_or(1, |&m| m as usize + 1);
            if cfg!(miri) && model.arena_bytes(g.n, g.src.len(), graphs) > 1 << 16 {
                continue; // big arenas take too long to fill and check under Miri
            }
            let a = guarded_run(&model, &g, 0x00);
            let b = guarded_run(&model, &g, 0xFF);
            assert_eq!(
                a, b,
                "{name} mutant {i} ({}): result depends on the arena's prior contents",
                KINDS[k]
            );
            match a {
                Ok(_) => c.runs_ok += 1,
                Err(e) => {
                    assert!(
                        !matches!(e, Error::ArenaTooSmall { .. }),
                        "{name} mutant {i} ({}): ArenaTooSmall with exactly arena_bytes",
                        KINDS[k]
                    );
                    *c.run_errors.entry(variant(&e)).or_default() += 1;
                }
            }
        }
    }
    println!("== mutation suite: {name} ({} bytes)", orig.len());
    println!("  mutants per kind: {:?}", c.per_kind);
    println!(
        "  rejected: {} by variant: {:?}",
        c.rejected.values().sum::<usize>(),
        c.rejected
    );
    println!(
        "  accepted: {}; runs: {} ok, errors by variant: {:?}",
        c.accepted, c.runs_ok, c.run_errors
    );
    c
}

/// The suite's own sanity limits: every kind was generated, the deep checks
/// were reached (some mutants rejected at each depth) and some mutants ran.
fn check_coverage(name: &str, c: &Counts, want_rejections: &[&str]) {
    assert_eq!(c.per_kind.values().sum::<usize>(), MUTANTS);
    if cfg!(miri) {
        return; // too few mutants for the coverage limits
    }
    for k in KINDS {
        assert!(
            c.per_kind.get(k).copied().unwrap_or(0) > 0,
            "{name}: no {k}"
        );
    }
    for v in want_rejections {
        assert!(
            c.rejected.contains_key(*v),
            "{name}: no mutant was rejected with {v}: {:?}",
            c.rejected
        );
    }
    assert!(c.accepted > 100, "{name}: only {} accepted", c.accepted);
    assert!(c.runs_ok > 100, "{name}: only {} runs ok", c.runs_ok);
}

const DEEP: [&str; 9] = [
    "Truncated",
    "ChecksumMismatch",
    "LengthMismatch",
    "BadSection",
    "BadMetadata",
    "TooManyEntries",
    "InvalidTensor",
    "InvalidOp",
    "InvalidOutputs",
];

fn bundled(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
        .join(format!("{name}.tgnn"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every bundled model has a test below (a new one must be added to the table).
#[test]
fn every_bundled_model_is_covered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.path()
                .join(format!("{}.tgnn", e.file_name().to_string_lossy()))
                .exists()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cora-appnp",
            "cora-gat",
            "cora-gcn",
            "cora-link",
            "cora-sage",
            "digits-gin",
            "digits-gps",
            "karate-gcn",
            "sensor-tgcn",
            "shapes-dgcnn"
        ],
        "add a mutation test for each bundled model"
    );
}

/// Mutates a model with a fixed seed and checks the suite's coverage.
fn mutation_test(name: &str, label: &str, bytes: &[u8], seed: u64) {
    let c = suite(label, bytes, seed);
    check_coverage(name, &c, &DEEP);
}

/// One `#[test]` per row, so that a failure names the model: `large` rows
/// are skipped under Miri; a row is `test: "bundled-model", seed;` or
/// `test: "name" (bytes), seed;` for a synthetic model.
macro_rules! mutation_tests {
    () => {};
    (large $test:ident: $($rest:tt)*) => {
        mutation_tests!(@row [#[cfg_attr(miri, ignore = "large model: too slow under Miri")]] $test: $($rest)*);
    };
    ($test:ident: $($rest:tt)*) => {
        mutation_tests!(@row [] $test: $($rest)*);
    };
    (@row [$($attr:tt)*] $test:ident: $name:literal, $seed:literal; $($rest:tt)*) => {
        #[test]
        $($attr)*
        fn $test() {
            mutation_test($name, $name, &bundled($name), $seed);
        }
        mutation_tests!($($rest)*);
    };
    (@row [$($attr:tt)*] $test:ident: $name:literal ($bytes:expr), $seed:literal; $($rest:tt)*) => {
        #[test]
        $($attr)*
        fn $test() {
            mutation_test($name, concat!($name, " (synthetic)"), &$bytes, $seed);
        }
        mutation_tests!($($rest)*);
    };
}

mutation_tests! {
    mutate_karate_gcn: "karate-gcn", 0x6b61_7261_7465;
    large mutate_digits_gin: "digits-gin", 0x6469_6769_7473;
    large mutate_digits_gps: "digits-gps", 0x6469_6769_7470;
    large mutate_cora_gcn: "cora-gcn", 0x636f_7261_6763;
    large mutate_cora_gat: "cora-gat", 0x636f_7261_6761;
    large mutate_cora_sage: "cora-sage", 0x636f_7261_7367;
    large mutate_cora_link: "cora-link", 0x636f_7261_6c6b;
    large mutate_shapes_dgcnn: "shapes-dgcnn", 0x7368_6170_6573;
    large mutate_cora_appnp: "cora-appnp", 0x636f_7261_6170;
    large mutate_sensor_tgcn: "sensor-tgcn", 0x7365_6e73_6f72;
    mutate_edge_op_model: "edge-op" (tinygnn_testkit::edge_op_model()), 0x4544_4745;
    mutate_hyper_op_model: "hyper-op" (tinygnn_testkit::hyper_op_model()), 0x4859_5045;
    mutate_cheb_op_model: "cheb-op" (tinygnn_testkit::cheb_op_model()), 0x4348_4542;
    mutate_every_op_model: "every-op" (every_op_model()), 0x5a4f4f;
    mutate_act4_model: "act4" (act4_model()), 0x4134;
}

/// int4 activations (header flag bit 0 and the bit-width table): an int4
/// input and two int4 hidden tensors between Linear and GcnConv layers.
fn act4_model() -> Vec<u8> {
    let mut w = writer();
    let mut rng = Rng(0x4134);
    let x = w.add_tensor(node(7, 0.1, -3));
    let h1 = w.add_tensor(node(6, 0.2, -8));
    let h2 = w.add_tensor(node(5, 0.3, 2));
    let y = w.add_tensor(node(3, 0.4, 1));
    let lin = |w: &mut tinygnn::format::writer::ModelWriter, rng: &mut Rng, i, o, ic, oc| {
        let weights = w.add_i8(&rng.weights(ic * oc));
        let params = w.add_channel_params(&records(rng, oc, 100, 0.004));
        Op::Linear(Linear {
            input: i,
            output: o,
            weights,
            params,
            act: Activation::Relu,
        })
    };
    let op = lin(&mut w, &mut rng, x, h1, 7, 6);
    w.add_op(op);
    let weights = w.add_i8(&rng.weights(6 * 5));
    let params = w.add_channel_params(&records(&mut rng, 5, 100, 0.004));
    w.add_op(Op::GcnConv(GcnConv {
        input: h1,
        output: h2,
        weights,
        params,
        act: Activation::None,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    let op = lin(&mut w, &mut rng, h2, y, 5, 3);
    w.add_op(op);
    for t in [x, h1, h2] {
        w.set_i4(t);
    }
    w.finish(x, &[y], 40, 120, 4).unwrap()
}

/// The checks of this suite can fail: an arena one byte short of
/// `arena_bytes` is reported (not silently used), and the guard check sees a
/// write outside the arena.
#[test]
fn harness_detects_what_it_claims() {
    let bytes = every_op_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut rng = Rng(7);
    let mut g = random_graph(&mut rng, &model);
    while g.n < 3 {
        g = random_graph(&mut rng, &model);
    }
    let a = guarded_run(&model, &g, 0);
    let b = guarded_run(&model, &g, 0xFF);
    assert!(a.is_ok(), "{a:?}");
    assert_eq!(a, b);
    // The guard check sees a byte changed just before or just after the arena.
    let need = 40;
    let mut buf = vec![GUARD_BYTE; need + 2 * GUARD];
    buf[GUARD..GUARD + need].fill(0);
    assert_eq!(changed_guard(&buf, GUARD, need), None);
    buf[GUARD - 1] = 0;
    assert_eq!(changed_guard(&buf, GUARD, need), Some(GUARD - 1));
    buf[GUARD - 1] = GUARD_BYTE;
    buf[GUARD + need] = 1;
    assert!(changed_guard(&buf, GUARD, need).is_some());
    // An arena one byte short of arena_bytes is an error, not an overrun.
    let mut input =
        GraphInput::new(g.n, Features::F32(&g.x), &g.src, &g.dst).with_edge_weight(&g.w);
    input.batch = g.batch.as_deref();
    let need = model.arena_bytes(g.n, g.src.len(), input.num_graphs());
    let mut short = vec![0u8; need + 8];
    let off = short.as_ptr().align_offset(8);
    let mut s = Session::new(&model, &mut short[off..off + need - 1]);
    assert!(matches!(s.run(&input), Err(Error::ArenaTooSmall { .. })));
}
