//! # tinygnn C API
//!
//! The tinygnn runtime for C firmware: `libtinygnn.a` (this crate built for the
//! MCU target) and the header `include/tinygnn.h`, generated from this file by
//! cbindgen. Same guarantees as the Rust API: no heap, no panics, the model read
//! in place, every failure a status code. `docs/c-api.md` is the user guide.
//!
//! ```c
//! static tgnn_model model;      // caller-provided storage for the opaque handles
//! static tgnn_session session;
//! static uint8_t arena[ARENA_BYTES] __attribute__((aligned(8)));
//! tgnn_status s = tgnn_model_init(&model, model_bytes, model_len);
//! if (s == TGNN_OK) s = tgnn_session_init(&session, &model, arena, sizeof arena);
//! if (s == TGNN_OK) s = tgnn_session_run(&session, &graph);
//! size_t cls;
//! if (s == TGNN_OK) s = tgnn_session_argmax(&session, 0, node, &cls);
//! ```
//!
//! ## Handles and lifetimes
//! [`tgnn_model`] and [`tgnn_session`] are opaque storage the caller provides
//! (static, on the stack, anywhere), [`TGNN_MODEL_STORAGE_BYTES`] and
//! [`TGNN_SESSION_STORAGE_BYTES`] long and 8-aligned; the `_init` functions
//! write the runtime's `Model` / `Session` into them (checked at compile time
//! to fit). Nothing is copied: the model handle borrows the model bytes, a
//! session borrows its model handle and its arena. The caller keeps each
//! borrowed thing alive, in place and unchanged while a handle using it is in
//! use (there is nothing to free: a handle is dropped by no longer using it).
//! Handles are not thread-safe: one caller at a time per session.
//!
//! ## Where the `unsafe` is
//! Only at the FFI boundary, in this file: turning the caller's pointers into
//! references and slices (after NULL, alignment and size checks), and writing
//! the handles into the caller's storage. Each block says why it is sound.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs)]
// The C names are the Rust names (cbindgen copies them into the header).
#![allow(non_camel_case_types)]

mod status;
#[cfg(test)]
mod tests;

use core::ffi::{c_char, CStr};
use core::mem::{align_of, size_of};

pub use status::*;

/// The `.tgnn` format version this library reads.
pub const TGNN_FORMAT_VERSION: u32 = 1;
/// `uint64_t` words of storage a `tgnn_model` handle takes.
pub const TGNN_MODEL_STORAGE_WORDS: usize = 160;
/// `uint64_t` words of storage a `tgnn_session` handle takes.
pub const TGNN_SESSION_STORAGE_WORDS: usize = 144;
/// Bytes of storage a `tgnn_model` handle takes (`sizeof(tgnn_model)`).
pub const TGNN_MODEL_STORAGE_BYTES: usize = TGNN_MODEL_STORAGE_WORDS * 8;
/// Bytes of storage a `tgnn_session` handle takes (`sizeof(tgnn_session)`).
pub const TGNN_SESSION_STORAGE_BYTES: usize = TGNN_SESSION_STORAGE_WORDS * 8;
/// Alignment of both handles (their storage is made of `uint64_t`).
pub const TGNN_HANDLE_ALIGN: usize = 8;

/// Storage for a loaded model (opaque; write it only with `tgnn_model_init`).
/// Zero-initialised storage (e.g. a C `static`) reads as "not initialised".
#[repr(C)]
pub struct tgnn_model {
    _opaque: [u64; TGNN_MODEL_STORAGE_WORDS],
}

/// Storage for a session: a model, an arena and the result of the last run
/// (opaque; write it only with `tgnn_session_init`).
#[repr(C)]
pub struct tgnn_session {
    _opaque: [u64; TGNN_SESSION_STORAGE_WORDS],
}

/// `features_kind`: `features_f32` holds `num_nodes × F` floats (quantized with
/// the model input's scale and zero point).
pub const TGNN_FEATURES_F32: u32 = 0;
/// `features_kind`: `features_i8` holds `num_nodes × F` already quantized values.
pub const TGNN_FEATURES_I8: u32 = 1;
/// `features_kind`: sparse quantized features in CSR form: row `i` holds the
/// columns `sparse_cols[sparse_row_ptr[i] .. sparse_row_ptr[i+1]]` (strictly
/// increasing, `< F`) with values `features_i8[...]` alike; every other value is
/// the input zero point. `sparse_row_ptr` has `num_nodes + 1` entries.
pub const TGNN_FEATURES_SPARSE_I8: u32 = 2;

/// One input graph (or a PyG-style batch of graphs), borrowed for the run.
///
/// Every array may be NULL when its length is 0. Lengths: features
/// `features_len`; `sources`, `targets` and `edge_weight` `num_edges`; `batch`
/// `num_nodes`; `sparse_row_ptr` `num_nodes + 1`, `sparse_cols` `features_len`;
/// `edge_attr_f32` / `edge_attr_i8` `edge_attr_len` (`num_edges × D`);
/// `pair_sources` and `pair_targets` `num_pairs`; `hyperedge_nodes` and
/// `hyperedge_ids` `num_incidences`; `hyperedge_weight` `num_hyperedge_weights`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tgnn_graph {
    /// Number of nodes (all graphs of the batch together).
    pub num_nodes: usize,
    /// One of `TGNN_FEATURES_F32`, `TGNN_FEATURES_I8`, `TGNN_FEATURES_SPARSE_I8`.
    pub features_kind: u32,
    /// Float features, row-major `[num_nodes, F]` (kind F32; else ignored).
    pub features_f32: *const f32,
    /// Quantized features `[num_nodes, F]` (kind I8), or the stored values (kind SPARSE_I8).
    pub features_i8: *const i8,
    /// Number of values in `features_f32` / `features_i8`.
    pub features_len: usize,
    /// Kind SPARSE_I8: `num_nodes + 1` row offsets (else ignored).
    pub sparse_row_ptr: *const u32,
    /// Kind SPARSE_I8: the column of each stored value (else ignored).
    pub sparse_cols: *const u16,
    /// `edge_index[0]`: message sources.
    pub sources: *const u16,
    /// `edge_index[1]`: message targets (messages flow source → target).
    pub targets: *const u16,
    /// Number of edges.
    pub num_edges: usize,
    /// One weight per edge, or NULL for none (required if the model uses them).
    pub edge_weight: *const f32,
    /// Graph id of each node, or NULL to put every node in graph 0.
    pub batch: *const u16,
    /// Float edge features, row-major `[num_edges, D]` (PyG's `edge_attr`), or
    /// NULL; required (this or `edge_attr_i8`) if the model reads edge features.
    pub edge_attr_f32: *const f32,
    /// Already quantized edge features `[num_edges, D]`, or NULL (at most one of
    /// `edge_attr_f32` and `edge_attr_i8` may be set).
    pub edge_attr_i8: *const i8,
    /// Number of values in `edge_attr_f32` / `edge_attr_i8`.
    pub edge_attr_len: usize,
    /// Node pairs to score, first node of each (PyG's `edge_label_index[0]`),
    /// or NULL. Required (with `pair_targets`) by a model with a pair head
    /// (link prediction, `tgnn_model_pairs`); ignored by every other model.
    /// Both NULL with `num_pairs` 0: no pairs. One NULL and the other not:
    /// `TGNN_ERR_PAIR_LIST_MISMATCH`. Both non-NULL with `num_pairs` 0: zero pairs.
    pub pair_sources: *const u16,
    /// Second node of each pair (PyG's `edge_label_index[1]`), or NULL.
    pub pair_targets: *const u16,
    /// Number of pairs (entries in `pair_sources` and in `pair_targets`).
    pub num_pairs: usize,
    /// The hypergraph incidence of a model with a `HypergraphConv`, node of
    /// each incidence (PyG's `hyperedge_index[0]`), or NULL; ignored by every
    /// other model. Both incidence lists or neither
    /// (`TGNN_ERR_HYPEREDGE_LIST_MISMATCH` otherwise).
    pub hyperedge_nodes: *const u16,
    /// Hyperedge of each incidence (PyG's `hyperedge_index[1]`), or NULL.
    pub hyperedge_ids: *const u16,
    /// Number of incidences (entries in `hyperedge_nodes` and in `hyperedge_ids`).
    pub num_incidences: usize,
    /// One weight per hyperedge (PyG's `hyperedge_weight`, at least
    /// `max(hyperedge_ids) + 1` values), or NULL for all 1.0.
    pub hyperedge_weight: *const f32,
    /// Number of values in `hyperedge_weight`.
    pub num_hyperedge_weights: usize,
}

/// One output tensor of the last run: int8 values with their quantization
/// (`real = scale · (q − zero_point)`). `data` points into the arena and is
/// valid until the next run or re-initialisation of the session.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tgnn_output {
    /// Values, row-major `[rows, channels]`.
    pub data: *const i8,
    /// Rows (nodes, or graphs for a graph-level output).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Quantization scale.
    pub scale: f32,
    /// Quantization zero point.
    pub zero_point: i8,
}

// ---- the handles' contents ----------------------------------------------------

/// Marks storage written by `tgnn_model_init` ("TGNM").
const MODEL_TAG: u32 = 0x4d4e_4754;
/// Marks storage written by `tgnn_session_init` ("TGNS").
const SESSION_TAG: u32 = 0x534e_4754;

/// What a [`tgnn_model`] holds: the model, or why it failed to load.
struct ModelCell {
    tag: u32,
    state: Result<rt::Model<'static>, rt::Error>,
}

/// What a [`tgnn_session`] holds.
struct SessionCell {
    tag: u32,
    last_error: tgnn_error_info,
    /// Whether the last `tgnn_session_run` succeeded (its outputs are readable).
    has_output: bool,
    session: rt::Session<'static, 'static>,
    /// The graph of the last successful `tgnn_session_prepare` (its arrays
    /// stay alive and unchanged: caller contract).
    prepared: Option<rt::PreparedGraph<'static>>,
}

// The runtime's types must fit the storage the header declares, on every target.
const _: () = {
    assert!(size_of::<ModelCell>() <= size_of::<tgnn_model>());
    assert!(align_of::<ModelCell>() <= align_of::<tgnn_model>());
    assert!(size_of::<SessionCell>() <= size_of::<tgnn_session>());
    assert!(align_of::<SessionCell>() <= align_of::<tgnn_session>());
    assert!(align_of::<tgnn_model>() <= TGNN_HANDLE_ALIGN);
    assert!(size_of::<tgnn_model>() == TGNN_MODEL_STORAGE_BYTES);
    assert!(size_of::<tgnn_session>() == TGNN_SESSION_STORAGE_BYTES);
    assert!(TGNN_FORMAT_VERSION == rt::FORMAT_VERSION as u32);
};

type Res<T> = Result<T, tgnn_status>;

/// Success, without details.
const INFO_OK: tgnn_error_info = tgnn_error_info {
    code: TGNN_OK,
    a: 0,
    b: 0,
};

fn code(r: Res<()>) -> tgnn_status {
    match r {
        Ok(()) => TGNN_OK,
        Err(c) => c,
    }
}

/// A checked `&[T]` from a C array.
///
/// # Safety
/// If `len > 0` and `ptr` is not NULL, `ptr` must point to `len` initialised
/// `T` that stay valid and unchanged for `'a`.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Res<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(TGNN_ERR_NULL_POINTER);
    }
    if !ptr.is_aligned() {
        return Err(TGNN_ERR_MISALIGNED);
    }
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => {}
        _ => return Err(TGNN_ERR_INVALID_ARGUMENT),
    }
    // SAFETY: non-null, aligned, `len · size_of::<T>() ≤ isize::MAX`, and the
    // caller guarantees `len` valid values for `'a`.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A checked `&mut [T]` from a C array.
///
/// # Safety
/// If `len > 0` and `ptr` is not NULL, `ptr` must point to `len` initialised
/// `T`, writable and used by nothing else for `'a`.
unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Res<&'a mut [T]> {
    // SAFETY: forwarded from the caller; `slice` checks NULL, alignment and
    // the byte size.
    let s = unsafe { slice(ptr.cast_const(), len) }?;
    // SAFETY: the same checked array, which the caller guarantees writable
    // and unaliased for `'a`.
    Ok(unsafe { core::slice::from_raw_parts_mut(s.as_ptr().cast_mut(), s.len()) })
}

/// Like [`slice`], with NULL meaning "not given".
///
/// # Safety
/// As for [`slice`].
unsafe fn opt_slice<'a, T>(ptr: *const T, len: usize) -> Res<Option<&'a [T]>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { slice(ptr, len) }.map(Some)
}

/// Checks a handle or out-pointer: not NULL, aligned.
fn check_ptr<T>(p: *const T) -> Res<()> {
    if p.is_null() {
        Err(TGNN_ERR_NULL_POINTER)
    } else if !p.is_aligned() {
        Err(TGNN_ERR_MISALIGNED)
    } else {
        Ok(())
    }
}

/// Writes `v` through an out-pointer.
///
/// # Safety
/// `p` is NULL or valid for writing a `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Res<()> {
    check_ptr(p)?;
    // SAFETY: checked non-null and aligned; the caller guarantees it is writable.
    unsafe { p.write(v) };
    Ok(())
}

/// Writes `v` through an optional out-pointer (NULL: not wanted).
///
/// # Safety
/// `p` is NULL or valid for writing a `T`.
unsafe fn put_opt<T>(p: *mut T, v: T) -> Res<()> {
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded from the caller.
    unsafe { put(p, v) }
}

/// The model cell of an initialised handle (loaded or failed).
///
/// # Safety
/// `m` is NULL or points to a `tgnn_model` (any contents), and the returned
/// reference is not used after the handle is re-initialised.
unsafe fn model_cell<'a>(m: *const tgnn_model) -> Res<&'a ModelCell> {
    check_ptr(m)?;
    let cell = m.cast::<ModelCell>();
    // SAFETY: `m` is non-null, aligned for `ModelCell` (compile-time check above)
    // and points to storage large enough for it. The tag is a plain `u32`, for
    // which any bytes are valid.
    let tag = unsafe { core::ptr::addr_of!((*cell).tag).read() };
    if tag != MODEL_TAG {
        return Err(TGNN_ERR_UNINITIALIZED);
    }
    // SAFETY: the tag says `tgnn_model_init` wrote a whole `ModelCell` here (the
    // documented contract: the storage is only written by it).
    Ok(unsafe { &*cell })
}

/// The model of a successfully loaded handle.
///
/// # Safety
/// As for [`model_cell`].
unsafe fn model_ref<'a>(m: *const tgnn_model) -> Res<&'a rt::Model<'static>> {
    // SAFETY: forwarded from the caller.
    match unsafe { model_cell(m) }?.state {
        Ok(ref model) => Ok(model),
        Err(_) => Err(TGNN_ERR_UNINITIALIZED),
    }
}

/// The session cell of an initialised handle.
///
/// # Safety
/// `s` is NULL or points to a `tgnn_session` (any contents) not otherwise
/// borrowed while the returned reference is used, and the model and arena the
/// session was initialised with are still alive and in place.
unsafe fn session_cell<'a>(s: *mut tgnn_session) -> Res<&'a mut SessionCell> {
    check_ptr(s)?;
    let cell = s.cast::<SessionCell>();
    // SAFETY: non-null, aligned and large enough for a `SessionCell`
    // (compile-time check); any bytes are a valid `u32` tag.
    let tag = unsafe { core::ptr::addr_of!((*cell).tag).read() };
    if tag != SESSION_TAG {
        return Err(TGNN_ERR_UNINITIALIZED);
    }
    // SAFETY: the tag says `tgnn_session_init` wrote a whole `SessionCell`;
    // the caller guarantees exclusive access and that what it borrows is alive.
    Ok(unsafe { &mut *cell })
}

// ---- model ----------------------------------------------------------------------

/// Validates a `.tgnn` model (header, CRC, every tensor and op) and writes the
/// loaded model into `model`. The bytes are read in place, never copied, and
/// may have any alignment.
///
/// Returns `TGNN_OK`, a model-file error (`TGNN_ERR_TRUNCATED` …
/// `TGNN_ERR_INVALID_OUTPUTS`; `tgnn_model_last_error` gives its details) or
/// `TGNN_ERR_NULL_POINTER` / `TGNN_ERR_MISALIGNED`. After a failure the handle
/// is initialised but unusable: other functions return `TGNN_ERR_UNINITIALIZED`.
///
/// # Safety
/// `model` is NULL or points to writable `tgnn_model` storage no session is
/// using; `bytes` is NULL or points to `len` bytes that stay alive and
/// unchanged as long as the handle (or a session on it) is used.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_init(
    model: *mut tgnn_model,
    bytes: *const u8,
    len: usize,
) -> tgnn_status {
    if let Err(c) = check_ptr(model) {
        return c;
    }
    // SAFETY: the caller guarantees `len` bytes alive and unchanged while the
    // handle is used, which is what the `'static` borrow stands for here.
    let bytes: &'static [u8] = match unsafe { slice(bytes, len) } {
        Ok(b) => b,
        Err(c) => return c,
    };
    let state = rt::Model::from_bytes(bytes);
    let status = match &state {
        Ok(_) => TGNN_OK,
        Err(e) => error_info(*e).code,
    };
    // SAFETY: `model` is non-null, aligned and large enough for a `ModelCell`
    // (checked above and at compile time) and writable; no session uses it
    // (caller contract), so overwriting without dropping is fine (and a
    // `ModelCell` has no drop glue anyway).
    unsafe {
        model.cast::<ModelCell>().write(ModelCell {
            tag: MODEL_TAG,
            state,
        })
    };
    status
}

/// The error that made `tgnn_model_init` fail on this handle, with its details
/// (`info->code == TGNN_OK` if the model loaded).
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_last_error(
    model: *const tgnn_model,
    info: *mut tgnn_error_info,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_cell(model) }.and_then(|cell| {
        let i = match cell.state {
            Ok(_) => INFO_OK,
            Err(e) => error_info(e),
        };
        // SAFETY: `info` is NULL or writable (caller contract).
        unsafe { put(info, i) }
    });
    code(r)
}

/// The capacity the model was converted for: largest node, edge and graph
/// counts of an input. Any out-pointer may be NULL.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_capacity(
    model: *const tgnn_model,
    max_nodes: *mut u32,
    max_edges: *mut u32,
    max_graphs: *mut u32,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        let (n, e, g) = m.capacity();
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(max_nodes, n)?;
            put_opt(max_edges, e)?;
            put_opt(max_graphs, g)
        }
    });
    code(r)
}

/// The exact arena bytes `tgnn_session_run` needs for a graph of `nodes` nodes,
/// `edges` edges and `graphs` graphs when the arena is 8-aligned (add 7 for an
/// arena of unknown alignment). Non-decreasing in each argument: the value at
/// the model's capacity fits every input it accepts. Saturates at `SIZE_MAX`.
/// A model with a pair head is sized for its full pair capacity; the exact
/// need for fewer pairs is `tgnn_model_arena_bytes_with_pairs`.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_arena_bytes(
    model: *const tgnn_model,
    nodes: usize,
    edges: usize,
    graphs: usize,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe { put(bytes, m.arena_bytes(nodes, edges, graphs)) }
    });
    code(r)
}

/// The exact arena bytes `tgnn_session_run` needs for a graph of `nodes`
/// nodes, `edges` edges and `graphs` graphs with `pairs` node pairs to score
/// (8-aligned arena; add 7 otherwise). `tgnn_model_arena_bytes` is this at the
/// model's pair capacity (`tgnn_model_pairs`): exact for that many pairs, an
/// upper bound for fewer. A model without a pair head ignores `pairs`.
/// Non-decreasing in each argument; saturates at `SIZE_MAX`.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_arena_bytes_with_pairs(
    model: *const tgnn_model,
    nodes: usize,
    edges: usize,
    graphs: usize,
    pairs: usize,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe { put(bytes, m.arena_bytes_with_pairs(nodes, edges, graphs, pairs)) }
    });
    code(r)
}

/// The arena bytes at which every op of `tgnn_session_run` runs at its full
/// width, the fastest, for a graph of `nodes` nodes, `edges` edges and
/// `graphs` graphs (`sparse`: sparse int8 features; 8-aligned arena, add 7
/// otherwise). `tgnn_model_arena_bytes` is the least a run needs: there a
/// GCN or sum/mean SAGE layer whose `W·x` would take more than 16 KiB
/// computes its output in passes over blocks of channels. Any arena from the least up works and
/// gives the same output bytes; the ops use what it has beyond the need for
/// wider passes. Non-decreasing in each argument; saturates at `SIZE_MAX`.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_wide_arena_bytes(
    model: *const tgnn_model,
    nodes: usize,
    edges: usize,
    graphs: usize,
    sparse: bool,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe { put(bytes, m.wide_arena_bytes(nodes, edges, graphs, sparse)) }
    });
    code(r)
}

/// Whether the model scores node pairs (a link-prediction head: the graph
/// needs `pair_sources` / `pair_targets`), and its pair capacity: the largest
/// `num_pairs` it accepts (0 for a model without a pair head). Either
/// out-pointer may be NULL.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_pairs(
    model: *const tgnn_model,
    scores_pairs: *mut bool,
    max_pairs: *mut u32,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(scores_pairs, m.has_pairs())?;
            put_opt(max_pairs, m.max_pairs())
        }
    });
    code(r)
}

/// Input feature channels `F` (features are `num_nodes × F` values), and
/// whether the model needs edge weights. Either out-pointer may be NULL.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_input(
    model: *const tgnn_model,
    channels: *mut usize,
    uses_edge_weight: *mut bool,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(channels, usize::from(m.input_desc().channels))?;
            put_opt(uses_edge_weight, m.uses_edge_weight())
        }
    });
    code(r)
}

/// The quantization of the model input, `real = scale · (q − zero_point)`:
/// what `TGNN_FEATURES_I8` and `TGNN_FEATURES_SPARSE_I8` values are in. The
/// runtime quantizes float features as
/// `q = clamp(roundf(x / scale) + zero_point, −128, 127)` (`roundf`: halves
/// away from zero), so a caller doing the same in single precision gets the
/// same bytes. Either out-pointer may be NULL.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_input_quantization(
    model: *const tgnn_model,
    scale: *mut f32,
    zero_point: *mut i8,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        let d = m.input_desc();
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(scale, d.scale)?;
            put_opt(zero_point, d.zero_point)
        }
    });
    code(r)
}

/// Number of model outputs (output 0 is what `tgnn_session_run` computes first;
/// all are read with `tgnn_session_output`).
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_num_outputs(
    model: *const tgnn_model,
    count: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `count` is NULL or writable (caller contract).
        unsafe { put(count, m.outputs().len()) }
    });
    code(r)
}

/// The (first) state of a recurrent model (a cell carried between steps by
/// `tgnn_session_run_step`): its channels `H`, so the state of a graph of
/// `N` nodes is `N × H` int8 values, and its quantization,
/// `real = scale · (q − zero_point)`. A model may carry several states (an
/// LSTM cell's `h` and `c`): see `tgnn_model_num_states` and
/// `tgnn_model_state_at`; `tgnn_model_state_init` writes the initial (zero)
/// state of all of them. Any out-pointer may be NULL.
/// `TGNN_ERR_NOT_RECURRENT` for a model without state.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_state(
    model: *const tgnn_model,
    channels: *mut usize,
    scale: *mut f32,
    zero_point: *mut i8,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        let d = m.state_desc().ok_or(TGNN_ERR_NOT_RECURRENT)?;
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(channels, usize::from(d.channels))?;
            put_opt(scale, d.scale)?;
            put_opt(zero_point, d.zero_point)
        }
    });
    code(r)
}

/// The number of states a recurrent model carries (0 for a model without
/// state; an LSTM cell carries 2, `h` then `c`).
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_num_states(
    model: *const tgnn_model,
    count: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `count` is NULL or writable (caller contract).
        unsafe { put(count, m.num_states()) }
    });
    code(r)
}

/// State `index` (in the order of the state buffer) of a recurrent model:
/// its channels and quantization, as `tgnn_model_state`. Any out-pointer
/// may be NULL. `TGNN_ERR_NOT_RECURRENT` for a model without state,
/// `TGNN_ERR_INVALID_ARGUMENT` for `index ≥ tgnn_model_num_states`.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; each out-pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_state_at(
    model: *const tgnn_model,
    index: usize,
    channels: *mut usize,
    scale: *mut f32,
    zero_point: *mut i8,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        if m.num_states() == 0 {
            return Err(TGNN_ERR_NOT_RECURRENT);
        }
        let d = m.state_desc_at(index).ok_or(TGNN_ERR_INVALID_ARGUMENT)?;
        // SAFETY: each pointer is NULL or writable (caller contract).
        unsafe {
            put_opt(channels, usize::from(d.channels))?;
            put_opt(scale, d.scale)?;
            put_opt(zero_point, d.zero_point)
        }
    });
    code(r)
}

/// Writes the initial (zero) state of a graph of `nodes` nodes into
/// `state` (`state_len` int8 values, `tgnn_model_state_bytes`): every
/// state's block at its zero point. `TGNN_ERR_STATE_SIZE` for another
/// length (nothing written).
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `state` is NULL or points
/// to `state_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_state_init(
    model: *const tgnn_model,
    nodes: usize,
    state: *mut i8,
    state_len: usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `state` points to `state_len` writable bytes (caller contract).
        let buf = unsafe { slice_mut(state, state_len) }?;
        m.init_state(nodes, buf)
            .map_err(|e| status::error_info(e).code)
    });
    code(r)
}

/// The length in bytes (int8 values) of the state buffer that
/// `tgnn_session_run_step` reads and writes for a graph of `nodes` nodes:
/// `nodes × (H₀ + H₁ + …)`, the states one after the other
/// (`tgnn_model_state_at`); 0 for a model without state.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_state_bytes(
    model: *const tgnn_model,
    nodes: usize,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe { put(bytes, m.state_bytes(nodes)) }
    });
    code(r)
}

// ---- session ----------------------------------------------------------------------

impl SessionCell {
    /// Output `index` of the last run, if it succeeded.
    fn output(&self, index: usize) -> Res<rt::Output<'_>> {
        if !self.has_output {
            return Err(TGNN_ERR_NO_OUTPUT);
        }
        self.session.output(index).ok_or(TGNN_ERR_NO_OUTPUT)
    }
}

/// Writes a session running `model` in `arena` into `session`. The arena (any
/// alignment) is checked on each run against the exact need
/// (`TGNN_ERR_ARENA_TOO_SMALL` says how much).
///
/// # Safety
/// `session` is NULL or points to writable `tgnn_session` storage; `model` is
/// NULL or points to a `tgnn_model`; `arena` is NULL or points to `arena_len`
/// writable bytes. The model handle and the arena must stay alive, in place
/// and otherwise untouched while the session is used (reading outputs through
/// `tgnn_output.data` is fine).
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_init(
    session: *mut tgnn_session,
    model: *const tgnn_model,
    arena: *mut u8,
    arena_len: usize,
) -> tgnn_status {
    let r = (|| {
        check_ptr(session)?;
        // SAFETY: `model` is NULL or a `tgnn_model`, alive while the session is
        // used (caller contract), which the `'static` borrow stands for.
        let model: &'static rt::Model<'static> = unsafe { model_ref(model) }?;
        let arena: &'static mut [u8] = if arena_len == 0 {
            &mut []
        } else {
            if arena.is_null() {
                return Err(TGNN_ERR_NULL_POINTER);
            }
            if arena_len > isize::MAX as usize {
                return Err(TGNN_ERR_INVALID_ARGUMENT);
            }
            // SAFETY: non-null, `arena_len ≤ isize::MAX` bytes that the caller
            // guarantees writable, alive and used by nothing else while the
            // session is used (hence `'static`); `u8` needs no alignment.
            unsafe { core::slice::from_raw_parts_mut(arena, arena_len) }
        };
        let cell = SessionCell {
            tag: SESSION_TAG,
            last_error: INFO_OK,
            has_output: false,
            session: rt::Session::new(model, arena),
            prepared: None,
        };
        // SAFETY: `session` is non-null, aligned and large enough for a
        // `SessionCell` (checked above and at compile time) and writable; a
        // previous session there is simply forgotten (no drop glue).
        unsafe { session.cast::<SessionCell>().write(cell) };
        Ok(())
    })();
    code(r)
}

/// The runtime's view of a C graph.
///
/// # Safety
/// Every non-NULL array of `g` holds the number of values `tgnn_graph` documents,
/// alive and unchanged for `'a`.
unsafe fn graph_input<'a>(g: &tgnn_graph) -> Res<rt::GraphInput<'a>> {
    // SAFETY: forwarded from the caller.
    let features = unsafe { graph_features(g) }?;
    // SAFETY: the caller guarantees the documented lengths.
    unsafe {
        let mut input = rt::GraphInput::new(
            g.num_nodes,
            features,
            slice(g.sources, g.num_edges)?,
            slice(g.targets, g.num_edges)?,
        );
        input.edge_weight = opt_slice(g.edge_weight, g.num_edges)?;
        input.batch = opt_slice(g.batch, g.num_nodes)?;
        input.edge_attr = match (
            opt_slice(g.edge_attr_f32, g.edge_attr_len)?,
            opt_slice(g.edge_attr_i8, g.edge_attr_len)?,
        ) {
            (Some(_), Some(_)) => return Err(TGNN_ERR_INVALID_ARGUMENT),
            (Some(f), None) => Some(rt::EdgeAttr::F32(f)),
            (None, Some(q)) => Some(rt::EdgeAttr::I8(q)),
            (None, None) => None,
        };
        input.pairs = pairs(g)?;
        input.hyperedges = hyperedges(g)?;
        Ok(input)
    }
}

/// The runtime's view of a C graph's node features.
///
/// # Safety
/// The feature arrays of `g` hold the number of values `tgnn_graph`
/// documents, alive and unchanged for `'a`.
unsafe fn graph_features<'a>(g: &tgnn_graph) -> Res<rt::Features<'a>> {
    Ok(match g.features_kind {
        TGNN_FEATURES_F32 => {
            // SAFETY: the caller guarantees `features_len` values.
            rt::Features::F32(unsafe { slice(g.features_f32, g.features_len) }?)
        }
        TGNN_FEATURES_I8 => {
            // SAFETY: the caller guarantees `features_len` values.
            rt::Features::I8(unsafe { slice(g.features_i8, g.features_len) }?)
        }
        TGNN_FEATURES_SPARSE_I8 => {
            let rows = g
                .num_nodes
                .checked_add(1)
                .ok_or(TGNN_ERR_INVALID_ARGUMENT)?;
            // SAFETY: the caller guarantees the documented lengths.
            unsafe {
                rt::Features::SparseI8 {
                    row_ptr: slice(g.sparse_row_ptr, rows)?,
                    cols: slice(g.sparse_cols, g.features_len)?,
                    values: slice(g.features_i8, g.features_len)?,
                }
            }
        }
        _ => return Err(TGNN_ERR_INVALID_ARGUMENT),
    })
}

/// The node pairs of a C graph: both lists or neither.
///
/// # Safety
/// Each non-NULL pair array of `g` holds `num_pairs` values, alive and
/// unchanged for `'a`.
unsafe fn pairs<'a>(g: &tgnn_graph) -> Res<Option<rt::NodePairs<'a>>> {
    match (g.pair_sources.is_null(), g.pair_targets.is_null()) {
        (true, true) if g.num_pairs == 0 => Ok(None),
        (true, true) => Err(TGNN_ERR_NULL_POINTER),
        (false, false) => {
            // SAFETY: the caller guarantees `num_pairs` values in each list;
            // `slice` checks alignment and the byte size before building them.
            let (sources, targets) = unsafe {
                (
                    slice(g.pair_sources, g.num_pairs)?,
                    slice(g.pair_targets, g.num_pairs)?,
                )
            };
            Ok(Some(rt::NodePairs { sources, targets }))
        }
        _ => Err(TGNN_ERR_PAIR_LIST_MISMATCH),
    }
}

/// The hypergraph incidence of a C graph: both lists or neither.
///
/// # Safety
/// Each non-NULL incidence array of `g` holds `num_incidences` values and
/// `hyperedge_weight` (if not NULL) `num_hyperedge_weights`, alive and
/// unchanged for `'a`.
unsafe fn hyperedges<'a>(g: &tgnn_graph) -> Res<Option<rt::Hyperedges<'a>>> {
    match (g.hyperedge_nodes.is_null(), g.hyperedge_ids.is_null()) {
        (true, true) if g.num_incidences == 0 => Ok(None),
        (true, true) => Err(TGNN_ERR_NULL_POINTER),
        (false, false) => {
            // SAFETY: the caller guarantees the documented lengths; `slice`
            // checks alignment and the byte size before building them.
            let (nodes, edges, weight) = unsafe {
                (
                    slice(g.hyperedge_nodes, g.num_incidences)?,
                    slice(g.hyperedge_ids, g.num_incidences)?,
                    opt_slice(g.hyperedge_weight, g.num_hyperedge_weights)?,
                )
            };
            Ok(Some(rt::Hyperedges {
                nodes,
                edges,
                weight,
            }))
        }
        _ => Err(TGNN_ERR_HYPEREDGE_LIST_MISMATCH),
    }
}

/// The exact bytes at the front of the arena that a graph prepared by
/// `tgnn_session_prepare` keeps between runs (CSR, edge weights, per-graph
/// node counts, GCN degrees and normalisation), for a graph of `nodes` nodes,
/// `edges` edges and `graphs` graphs. Part of `tgnn_model_arena_bytes`, which
/// stays the exact need of a prepared run: preparing costs no extra arena.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_prepared_bytes(
    model: *const tgnn_model,
    nodes: usize,
    edges: usize,
    graphs: usize,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe { put(bytes, m.prepared_bytes(nodes, edges, graphs)) }
    });
    code(r)
}

/// Validates `graph` and builds, once, everything of a run that depends on the
/// graph alone (CSR, edge weights, per-graph node counts, GCN degrees and
/// normalisation) in the front of the session's arena, for many
/// `tgnn_session_run_prepared` calls with new node features (a sensor network:
/// fixed structure, new readings each period). The features of `graph` are
/// validated too and the arena checked for a run with features of their kind;
/// the model is not run (outputs: `TGNN_ERR_NO_OUTPUT` until a run).
/// Errors as for `tgnn_session_run`; after one, no graph is prepared.
///
/// # Safety
/// As for `tgnn_session_run`; moreover every array of `graph` but the feature
/// arrays stays alive and unchanged while the graph is prepared (the batch
/// vector and node pairs are read in place by every run).
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_prepare(
    session: *mut tgnn_session,
    graph: *const tgnn_graph,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    unsafe { prepare_with(session, graph, false) }
}

/// The node features of `features` (its feature fields only) for the
/// prepared graph's node count.
///
/// # Safety
/// `features` is NULL or points to a `tgnn_graph` whose feature arrays hold
/// the documented lengths.
unsafe fn prepared_features(
    prepared: &rt::PreparedGraph<'static>,
    features: *const tgnn_graph,
) -> Result<rt::Features<'static>, tgnn_error_info> {
    check_ptr(features).map_err(tgnn_error_info::api)?;
    // SAFETY: non-null and aligned; the caller guarantees a valid `tgnn_graph`.
    let g = unsafe { &*features };
    let g = tgnn_graph {
        num_nodes: prepared.num_nodes(),
        ..*g
    };
    // SAFETY: the caller guarantees the documented feature array lengths.
    unsafe { graph_features(&g) }.map_err(tgnn_error_info::api)
}

/// `tgnn_session_prepare` (`incremental` false: no output until a run) and
/// `tgnn_session_prepare_incremental` (which runs the model once).
///
/// # Safety
/// As for `tgnn_session_prepare`.
unsafe fn prepare_with(
    session: *mut tgnn_session,
    graph: *const tgnn_graph,
    incremental: bool,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let cell = match unsafe { session_cell(session) } {
        Ok(c) => c,
        Err(c) => return c,
    };
    cell.prepared = None;
    let info = (|| {
        check_ptr(graph).map_err(tgnn_error_info::api)?;
        // SAFETY: non-null and aligned; the caller guarantees a valid `tgnn_graph`.
        let g = unsafe { &*graph };
        // SAFETY: the caller guarantees the documented array lengths, alive
        // while the graph is prepared (hence `'static`).
        let input: rt::GraphInput<'static> =
            unsafe { graph_input(g) }.map_err(tgnn_error_info::api)?;
        if incremental {
            cell.session.prepare_incremental(&input).map_err(error_info)
        } else {
            cell.session.prepare(&input).map_err(error_info)
        }
    })();
    let info = match info {
        Ok(p) => {
            cell.prepared = Some(p);
            INFO_OK
        }
        Err(e) => e,
    };
    cell.last_error = info;
    cell.has_output = incremental && info.code == TGNN_OK;
    info.code
}

/// Runs the model on the graph prepared by `tgnn_session_prepare` with new
/// node features, read from `features`' feature fields only (`features_kind`,
/// `features_f32` / `features_i8`, `features_len`, `sparse_row_ptr`,
/// `sparse_cols`; the sparse row offsets hold the prepared node count + 1
/// values); every other field is ignored. Only the features are validated.
/// Same output bytes as `tgnn_session_run` on the whole graph with these
/// features; outputs and errors as there, plus `TGNN_ERR_NOT_PREPARED`.
/// A failed run leaves the graph prepared.
///
/// # Safety
/// As for `tgnn_session_run` (`features` is NULL or points to a `tgnn_graph`
/// whose feature arrays hold the documented lengths).
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_run_prepared(
    session: *mut tgnn_session,
    features: *const tgnn_graph,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let cell = match unsafe { session_cell(session) } {
        Ok(c) => c,
        Err(c) => return c,
    };
    let info = (|| {
        let prepared = cell.prepared.ok_or(error_info(rt::Error::NotPrepared))?;
        // SAFETY: the caller guarantees a valid `tgnn_graph` with the
        // documented feature array lengths (or NULL, refused).
        let f = unsafe { prepared_features(&prepared, features) }?;
        cell.session
            .run_prepared(&prepared, f)
            .map(|_| ())
            .map_err(error_info)
    })()
    .err()
    .unwrap_or(INFO_OK);
    cell.last_error = info;
    cell.has_output = info.code == TGNN_OK;
    info.code
}

/// The exact arena bytes of incremental runs (`tgnn_session_prepare_incremental`,
/// `tgnn_session_update`) for a graph of `nodes` nodes, `edges` edges and
/// `graphs` graphs: every tensor keeps its own slot between runs, plus two
/// bytes per node and 64 of marks. `sparse`: for sparse int8 features (read in place when
/// the model can). More than `tgnn_model_arena_bytes`.
///
/// # Safety
/// `model` is NULL or points to a `tgnn_model`; `bytes` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_model_incremental_arena_bytes(
    model: *const tgnn_model,
    nodes: usize,
    edges: usize,
    graphs: usize,
    sparse: bool,
    bytes: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { model_ref(model) }.and_then(|m| {
        // SAFETY: `bytes` is NULL or writable (caller contract).
        unsafe {
            put(
                bytes,
                m.incremental_arena_bytes(nodes, edges, graphs, sparse),
            )
        }
    });
    code(r)
}

/// Prepares `graph` as `tgnn_session_prepare` does, for incremental runs
/// (`tgnn_session_update`): every tensor keeps its own arena slot
/// (`tgnn_model_incremental_arena_bytes`), and the model runs once on
/// `graph`'s features (outputs as after `tgnn_session_run`).
/// `tgnn_session_run` and `tgnn_session_prepare` switch back to plain runs.
/// Errors as for `tgnn_session_prepare` and `tgnn_session_run_prepared`
/// (`TGNN_ERR_STATE_REQUIRED` for a recurrent model).
///
/// # Safety
/// As for `tgnn_session_prepare`.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_prepare_incremental(
    session: *mut tgnn_session,
    graph: *const tgnn_graph,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    unsafe { prepare_with(session, graph, true) }
}

/// An incremental run on the graph prepared by
/// `tgnn_session_prepare_incremental`: `features` holds all the nodes'
/// features (its feature fields only, as for `tgnn_session_run_prepared`)
/// and `changed` the `changed_len` nodes whose feature rows differ from the
/// previous run's. Only the rows that can depend on them are recomputed;
/// the output bytes are those of `tgnn_session_run_prepared` with the same
/// features, provided every changed node is listed. Errors as for
/// `tgnn_session_run_prepared`, plus `TGNN_ERR_NOT_INCREMENTAL` (the last
/// run of the session was not a successful one of that graph) and
/// `TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE`.
///
/// # Safety
/// As for `tgnn_session_run_prepared`; `changed` is NULL (with
/// `changed_len` 0) or points to `changed_len` node indices.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_update(
    session: *mut tgnn_session,
    features: *const tgnn_graph,
    changed: *const u16,
    changed_len: usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let cell = match unsafe { session_cell(session) } {
        Ok(c) => c,
        Err(c) => return c,
    };
    let info = (|| {
        let prepared = cell.prepared.ok_or(error_info(rt::Error::NotIncremental))?;
        // SAFETY: the caller guarantees a valid `tgnn_graph` with the
        // documented feature array lengths (or NULL, refused).
        let f = unsafe { prepared_features(&prepared, features) }?;
        // SAFETY: the caller guarantees `changed_len` readable indices.
        let nodes = unsafe { slice(changed, changed_len) }.map_err(tgnn_error_info::api)?;
        cell.session
            .update(&prepared, f, nodes)
            .map(|_| ())
            .map_err(error_info)
    })()
    .err()
    .unwrap_or(INFO_OK);
    cell.last_error = info;
    cell.has_output = info.code == TGNN_OK;
    info.code
}

/// Runs the model on `graph`. The input is validated completely before
/// anything is written (input-graph errors, `TGNN_ERR_ARENA_TOO_SMALL`); on
/// success the outputs are read with `tgnn_session_output`, `_argmax` and
/// `_dequantize` until the next run; after any failure they return
/// `TGNN_ERR_NO_OUTPUT`. `tgnn_session_last_error` gives the details of a failure.
///
/// # Safety
/// `session` is NULL or points to a `tgnn_session` used by nobody else during
/// the call, whose model and arena are still alive and in place; `graph` is
/// NULL or points to a `tgnn_graph` whose arrays hold the documented lengths.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_run(
    session: *mut tgnn_session,
    graph: *const tgnn_graph,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let cell = match unsafe { session_cell(session) } {
        Ok(c) => c,
        Err(c) => return c,
    };
    let info = (|| {
        check_ptr(graph).map_err(tgnn_error_info::api)?;
        // SAFETY: non-null and aligned; the caller guarantees a valid `tgnn_graph`.
        let g = unsafe { &*graph };
        // SAFETY: the caller guarantees the documented array lengths.
        let input = unsafe { graph_input(g) }.map_err(tgnn_error_info::api)?;
        cell.session.run(&input).map(|_| ()).map_err(error_info)
    })()
    .err()
    .unwrap_or(INFO_OK);
    cell.last_error = info;
    cell.has_output = info.code == TGNN_OK;
    info.code
}

/// One step of a recurrent model: runs it on `graph` with the state in
/// `state` (`state_len` int8 values, `tgnn_model_state_bytes` for the
/// graph's node count; all `zero_point` for the first step, see
/// `tgnn_model_state`) and writes the next state back into `state`. Outputs
/// and errors as for `tgnn_session_run`, plus `TGNN_ERR_NOT_RECURRENT` (a
/// model without state) and `TGNN_ERR_STATE_SIZE` (a buffer of the wrong
/// length; the details give the expected and given lengths). After any
/// error `state` is unchanged. `tgnn_session_run` refuses a recurrent model
/// (`TGNN_ERR_STATE_REQUIRED`): its state must come from the caller.
///
/// # Safety
/// As for `tgnn_session_run`; `state` is NULL or points to `state_len`
/// writable bytes that are not part of the session's arena or of `graph`.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_run_step(
    session: *mut tgnn_session,
    graph: *const tgnn_graph,
    state: *mut i8,
    state_len: usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let cell = match unsafe { session_cell(session) } {
        Ok(c) => c,
        Err(c) => return c,
    };
    let info = (|| {
        check_ptr(graph).map_err(tgnn_error_info::api)?;
        // SAFETY: non-null and aligned; the caller guarantees a valid `tgnn_graph`.
        let g = unsafe { &*graph };
        // SAFETY: the caller guarantees the documented array lengths.
        let input = unsafe { graph_input(g) }.map_err(tgnn_error_info::api)?;
        // SAFETY: the caller guarantees `state_len` writable bytes, aliasing
        // neither the arena nor the graph.
        let state = unsafe { slice_mut(state, state_len) }.map_err(tgnn_error_info::api)?;
        cell.session
            .run_step(&input, state)
            .map(|_| ())
            .map_err(error_info)
    })()
    .err()
    .unwrap_or(INFO_OK);
    cell.last_error = info;
    cell.has_output = info.code == TGNN_OK;
    info.code
}

/// The status of the last `tgnn_session_run` on this session, with its details
/// (`TGNN_OK` before the first run).
///
/// # Safety
/// As for `tgnn_session_run`; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_last_error(
    session: *mut tgnn_session,
    info: *mut tgnn_error_info,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { session_cell(session) }.and_then(|cell| {
        // SAFETY: `info` is NULL or writable (caller contract).
        unsafe { put(info, cell.last_error) }
    });
    code(r)
}

/// Output `index` of the last successful run. `out->data` points into the
/// arena and stays valid until the next run or re-initialisation.
///
/// # Safety
/// As for `tgnn_session_run`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_output(
    session: *mut tgnn_session,
    index: usize,
    out: *mut tgnn_output,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { session_cell(session) }.and_then(|cell| {
        let o = cell.output(index)?;
        let v = tgnn_output {
            data: o.data.as_ptr(),
            rows: o.rows,
            channels: o.channels,
            scale: o.scale,
            zero_point: o.zero_point,
        };
        // SAFETY: `out` is NULL or writable (caller contract).
        unsafe { put(out, v) }
    });
    code(r)
}

/// The channel of the largest value of row `row` of output `index` (the first
/// one on ties): the predicted class of a classifier.
///
/// # Safety
/// As for `tgnn_session_run`; `channel` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_argmax(
    session: *mut tgnn_session,
    index: usize,
    row: usize,
    channel: *mut usize,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { session_cell(session) }.and_then(|cell| {
        let o = cell.output(index)?;
        let c = o.argmax(row).ok_or(TGNN_ERR_OUT_OF_RANGE)?;
        // SAFETY: `channel` is NULL or writable (caller contract).
        unsafe { put(channel, c) }
    });
    code(r)
}

/// The real value `scale · (q − zero_point)` at `row`, `channel` of output `index`.
///
/// # Safety
/// As for `tgnn_session_run`; `value` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tgnn_session_dequantize(
    session: *mut tgnn_session,
    index: usize,
    row: usize,
    channel: usize,
    value: *mut f32,
) -> tgnn_status {
    // SAFETY: forwarded from the caller.
    let r = unsafe { session_cell(session) }.and_then(|cell| {
        let o = cell.output(index)?;
        let v = o.dequantize(row, channel).ok_or(TGNN_ERR_OUT_OF_RANGE)?;
        // SAFETY: `value` is NULL or writable (caller contract).
        unsafe { put(value, v) }
    });
    code(r)
}

// ---- status codes -------------------------------------------------------------------

/// The name of a status code (`"TGNN_ERR_ARENA_TOO_SMALL"`), a static
/// NUL-terminated string; `"TGNN_ERR_UNKNOWN"` for a code this library does not define.
#[no_mangle]
pub extern "C" fn tgnn_status_name(status: tgnn_status) -> *const c_char {
    let name: &'static CStr = status_name(status).unwrap_or(c"TGNN_ERR_UNKNOWN");
    name.as_ptr()
}

// ---- bare-metal builds ------------------------------------------------------------

/// The staticlib on a bare-metal target has no std to provide a panic handler.
/// The inference path has no reachable panic (the runtime's link-time check,
/// `scripts/panic-check.sh`, proves it for the Rust API), so this never runs;
/// should it, the core stops here rather than returning garbage.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
