//! Fused activation and requantization of `i32` accumulators, as defined in
//! [`crate::format`]'s conventions:
//! `out = saturate_i8(requant(act(acc + bias), mult, shift) + zp_out)`.

use serde::{Deserialize, Serialize};

use crate::quant::{
    multiply_by_quantized_multiplier, round_shift_i64_to_i32, saturate_i8, Rescale,
};

/// Activation fused into the op that produces a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `x < 0 ? alpha·x : x` with `alpha = alpha_q16 / 65536`.
    LeakyRelu {
        /// Negative slope in Q16.
        alpha_q16: i32,
    },
}

/// The layout of a [`crate::format::ChannelParams`] section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsForm {
    /// `12·C` bytes: `(bias, mult, shift)` per channel.
    Full,
    /// `4·C + 8` bytes: `bias` per channel, then one shared `(mult, shift)`.
    Compact,
}

/// Which form a [`crate::format::ChannelParams`] section of `len` bytes has for `channels`
/// output channels; `None` if the length fits neither. For one channel the
/// two forms coincide and this says [`ParamsForm::Full`].
#[inline]
pub fn params_form(len: usize, channels: usize) -> Option<ParamsForm> {
    if channels == 0 {
        None
    } else if channels.checked_mul(12) == Some(len) {
        Some(ParamsForm::Full)
    } else if channels.checked_mul(4).and_then(|n| n.checked_add(8)) == Some(len) {
        Some(ParamsForm::Compact)
    } else {
        None
    }
}

/// Reads channel `c`'s `(bias, mult, shift)` record from a [`crate::format::ChannelParams`]
/// section in the **full** form (12-byte records); zeros past the end.
///
/// A section's length alone does not tell the two forms apart without the
/// channel count (`12·C` full equals `4·C′ + 8` compact for `C′ = 3·C − 2`),
/// so for a section that may be compact use [`channel_record_of`].
#[inline]
pub fn channel_record(params: &[u8], c: usize) -> (i32, i32, i32) {
    let rec = |k: usize| read_i32(params, c * 12 + k * 4);
    (rec(0), rec(1), rec(2))
}

/// Reads channel `c`'s `(bias, mult, shift)` from a [`crate::format::ChannelParams`]
/// section of a layer with `channels` output channels, in either form: the
/// full form (`params.len() == 12·channels`, same as [`channel_record`]) or the
/// compact form (`4·channels + 8`: `bias[c]` and the shared `mult`, `shift`).
/// For one channel both forms are the same 12 bytes and both readings agree.
/// Any other length is read as the full form (zeros past the end).
#[inline]
pub fn channel_record_of(params: &[u8], channels: usize, c: usize) -> (i32, i32, i32) {
    match params_form(params.len(), channels) {
        Some(ParamsForm::Compact) => (
            read_i32(params, c * 4),
            read_i32(params, channels * 4),
            read_i32(params, channels * 4 + 4),
        ),
        _ => channel_record(params, c),
    }
}

/// The little-endian `i32` at byte `at` (0 if out of range).
#[inline]
fn read_i32(bytes: &[u8], at: usize) -> i32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .unwrap_or(0)
}

/// The activation on an accumulator: ReLU `max(acc, 0)`, LeakyReLU
/// `acc < 0 ? round_shift(acc · alpha_q16, 16) : acc`.
#[inline]
pub fn activate(acc: i32, act: Activation) -> i32 {
    match act {
        Activation::None => acc,
        Activation::Relu => acc.max(0),
        Activation::LeakyRelu { alpha_q16 } => {
            if acc < 0 {
                round_shift_i64_to_i32(i64::from(acc) * i64::from(alpha_q16), 16)
            } else {
                acc
            }
        }
    }
}

/// `saturate_i8(multiply_by_quantized_multiplier(acc, mult, shift) + zp_out)`.
#[inline]
pub fn requantize(acc: i32, mult: i32, shift: i32, zp_out: i8) -> i8 {
    saturate_i8(
        multiply_by_quantized_multiplier(acc, mult, shift).saturating_add(i32::from(zp_out)),
    )
}

/// Finishes one output row: for every channel `c`,
/// `out[c] = requantize(activate(acc[c] + bias[c]), mult[c], shift[c])`, with
/// `(bias, mult, shift)` read from the [`crate::format::ChannelParams`]
/// section of `out.len()` channels: 12-byte records (full form), or `bias`
/// per channel then one shared `(mult, shift)` (compact form, `4·C + 8`
/// bytes). The bias is added with `i32` saturation. Channels without a record
/// (a short `params`) are left untouched.
pub fn requantize_row(acc: &[i32], params: &[u8], act: Activation, zp_out: i8, out: &mut [i8]) {
    // The same results as `requantize_row_ref` (proptested below), with the
    // activation chosen once per row and the rescale prepared once per row
    // (compact form) or per record ([`Rescale`]: no division, no per-value
    // shift clamping).
    match act {
        Activation::None => requantize_row_with(acc, params, zp_out, out, |a| a),
        Activation::Relu => requantize_row_with(acc, params, zp_out, out, |a| a.max(0)),
        Activation::LeakyRelu { .. } => {
            requantize_row_with(acc, params, zp_out, out, |a| activate(a, act))
        }
    }
}

/// [`requantize_row`] with the activation `act`.
#[inline(always)]
fn requantize_row_with(
    acc: &[i32],
    params: &[u8],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    match params_form(params.len(), out.len()) {
        Some(ParamsForm::Compact) => {
            let split = params.len().saturating_sub(8);
            let biases = params.get(..split).unwrap_or(&[]);
            let (mult, shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
            let r = Rescale::new(mult, shift);
            for ((o, &a), b) in out.iter_mut().zip(acc).zip(biases.chunks_exact(4)) {
                let bias = match b {
                    [b0, b1, b2, b3] => i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                    _ => 0,
                };
                *o = saturate_i8(r.apply(act(a.saturating_add(bias))).saturating_add(zp));
            }
        }
        _ => {
            for ((o, &a), rec) in out.iter_mut().zip(acc).zip(params.chunks_exact(12)) {
                let (bias, mult, shift) = record(rec);
                let r = Rescale::new(mult, shift);
                *o = saturate_i8(r.apply(act(a.saturating_add(bias))).saturating_add(zp));
            }
        }
    }
}

/// One channel's `(bias, mult, shift)` prepared once per op for
/// [`requantize_row_prepared`]: `[bias, mult, left | right << 8, 2^right / 2, 0]`
/// (the fourth word, the rounding nudge, is 0 with `kernels-small`, which
/// derives it per value),
/// where `left`/`right` are the shift's parts as [`Rescale::new`] splits them;
/// or, on DSP targets, the single-multiply form of `to_single`.
pub type Prepared = [i32; 5];

/// An op's channel records prepared once by [`prepare`], with the
/// activation and output zero point: [`RowRequant::row`] finishes a row.
#[derive(Debug, Clone, Copy)]
pub struct RowRequant<'a> {
    prep: &'a [Prepared],
    /// Output channels (a row's length; records for the first
    /// `prep.len()` of them).
    channels: usize,
    act: Activation,
    zp: i8,
    /// The records' form (`cfg(tinygnn_single)` only: elsewhere always
    /// general).
    #[cfg(tinygnn_single)]
    form: Form,
}

/// The form of an op's prepared records.
#[cfg_attr(not(tinygnn_single), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// As [`prepare_records`] leaves them, for [`requantize_row_prepared`].
    General,
    /// The single-multiply form ([`to_single`]) with the output zero point
    /// folded into each record's constant (every right shift ≤ 23).
    SingleZp,
    /// The single-multiply form with the zero point added after the shift.
    Single,
}

/// Prepares an op's channel records for its rows: [`prepare_records`],
/// then, on DSP and 64-bit targets (`cfg(tinygnn_single)`, without
/// `kernels-small`), the single-multiply form (`to_single`) when every record and the
/// activation allow it (`single_form`).
pub fn prepare<'p>(
    params: &[u8],
    channels: usize,
    act: Activation,
    zp_out: i8,
    prep: &'p mut [Prepared],
) -> RowRequant<'p> {
    let n = prepare_records(params, channels, prep);
    let (prep, _) = prep.split_at_mut(n.min(prep.len()));
    #[cfg(tinygnn_single)]
    let form = if n == channels && n > 0 {
        single_form(prep, act)
    } else {
        Form::General
    };
    #[cfg(tinygnn_single)]
    if form != Form::General {
        let zp = if form == Form::SingleZp { zp_out } else { 0 };
        for p in prep.iter_mut() {
            *p = to_single(*p, zp);
        }
    }
    RowRequant {
        prep,
        channels,
        act,
        zp: zp_out,
        #[cfg(tinygnn_single)]
        form,
    }
}

impl RowRequant<'_> {
    /// `out[c] = requantize(activate(acc[c] + bias[c]))` for the channels
    /// with a record (the rest of `out` untouched), as [`requantize_row`].
    #[inline]
    pub fn row(&self, acc: &[i32], out: &mut [i8]) {
        if !self.single() {
            return self.general_row(acc, out);
        }
        self.rows(acc, out);
    }

    /// The records of channels `c0..c0 + len` alone (fewer where there are
    /// fewer): [`RowRequant::row`] and [`RowRequant::rows`] of the part
    /// finish rows of those channels with the values the whole would give.
    #[inline]
    pub fn part(&self, c0: usize, len: usize) -> Self {
        let a = c0.min(self.prep.len());
        let b = c0.saturating_add(len).min(self.prep.len());
        RowRequant {
            prep: self.prep.get(a..b).unwrap_or_default(),
            channels: b - a,
            ..*self
        }
    }

    /// One row in the general form (no call back into [`RowRequant::rows`]:
    /// the inference path's call graph stays free of cycles).
    #[inline]
    fn general_row(&self, acc: &[i32], out: &mut [i8]) {
        requantize_row_prepared(acc, self.prep, self.act, self.zp, out);
    }

    /// Whether the records are in the single-multiply form (never without
    /// `cfg(tinygnn_single)`, where that path is not compiled).
    #[inline(always)]
    fn single(&self) -> bool {
        #[cfg(tinygnn_single)]
        return self.form != Form::General;
        #[cfg(not(tinygnn_single))]
        false
    }

    /// One int4 output row (cargo feature `act-i4`): [`RowRequant::row`]
    /// on [`super::act_i4::CHUNK`] channels at a time into a stack buffer,
    /// each value then saturated to −8..=7 and packed two per byte
    /// ([`super::act_i4::pack_row`]) into `out` (`ceil(channels / 2)`
    /// bytes). The same values as `clamp(requantize_row_ref(..), −8, 7)`:
    /// saturating to int8 first does not change the int4 saturation. Not
    /// inlined: its buffer stays out of the op's frame.
    #[cfg(feature = "act-i4")]
    #[inline(never)]
    pub fn row_i4(&self, acc: &[i32], out: &mut [u8]) {
        const K: usize = super::act_i4::CHUNK;
        let mut buf = [0i8; K];
        let n = self.channels.min(acc.len()).min(self.prep.len());
        let mut c0 = 0usize;
        while c0 < n {
            let len = (n - c0).min(K);
            let (Some(a), Some(p), Some(o)) = (
                acc.get(c0..c0 + len),
                self.prep.get(c0..c0 + len),
                out.get_mut(c0 / 2..),
            ) else {
                break;
            };
            let part = RowRequant {
                prep: p,
                channels: len,
                ..*self
            };
            let (b, _) = buf.split_at_mut(len);
            part.row(a, b);
            super::act_i4::pack_row(b, o);
            c0 += len;
        }
    }

    /// [`RowRequant::row`] for every whole row of `channels` values of
    /// `acc` and `out` (`[rows, channels]`, row-major; up to the shorter).
    #[inline]
    pub fn rows(&self, acc: &[i32], out: &mut [i8]) {
        let oc = self.channels.max(1);
        #[cfg(tinygnn_single)]
        if self.single() {
            let rows = (acc.len() / oc).min(out.len() / oc);
            let relu = matches!(self.act, Activation::Relu);
            let zp = if self.form == Form::Single {
                self.zp
            } else {
                0
            };
            #[cfg(tinygnn_dsp)]
            return single_rows_dsp(acc, self.prep, rows, relu, zp, out);
            #[cfg(not(tinygnn_dsp))]
            return if relu {
                single_rows::<true>(acc, self.prep, rows, zp, out)
            } else {
                single_rows::<false>(acc, self.prep, rows, zp, out)
            };
        }
        let rows = (acc.len() / oc).min(out.len() / oc);
        let (mut a, mut o) = (acc.chunks_exact(oc), out.chunks_exact_mut(oc));
        for _ in 0..rows {
            let (Some(a), Some(o)) = (a.next(), o.next()) else {
                break;
            };
            self.general_row(a, o);
        }
    }
}

/// The form the records (as [`prepare_records`] leaves them) and the
/// activation allow: single-multiply with no left shift, right shifts of
/// 1..=31, non-negative multipliers and no activation or ReLU (the zero
/// point in the constant when every right shift is at most 23); otherwise
/// general.
#[cfg_attr(not(tinygnn_single), allow(dead_code))]
fn single_form(prep: &[Prepared], act: Activation) -> Form {
    let shifts = |p: &Prepared| (p[2] & 0x1F, (p[2] >> 8) & 0x1F);
    let fits = prep.iter().all(|p| {
        let (left, right) = shifts(p);
        left == 0 && right >= 1 && p[1] >= 0
    });
    if !fits || !matches!(act, Activation::None | Activation::Relu) {
        Form::General
    } else if prep.iter().all(|p| shifts(p).1 <= 23) {
        Form::SingleZp
    } else {
        Form::Single
    }
}

/// A record in the single-multiply form, `[bias, mult, C_lo, C_hi, r − 1]`:
/// `C = 2^30 + (2^(r−1) + zp·2^r)·2^31` as two words, `r` the right shift
/// (`zp` is 0 when the zero point is added after the shift).
#[cfg_attr(not(tinygnn_single), allow(dead_code))]
fn to_single([bias, mult, lr, ..]: Prepared, zp: i8) -> Prepared {
    let right = (lr >> 8) & 0x1F;
    let k = (1i64 << (right - 1).clamp(0, 30)) + (i64::from(zp) << right);
    let c = (1i64 << 30).wrapping_add(k.wrapping_shl(31));
    [bias, mult, c as i32, (c >> 32) as i32, (right - 1).max(0)]
}

/// One value in the single-multiply form (the arithmetic of the DSP
/// assembly, [`single_rows_dsp`]), `zp` the zero point added after the shift
/// (0 when it is in the record's constant):
///
/// 1. `x = sat(acc + bias)`, ReLU'd;
/// 2. `A = x·mult + C − (x < 0 ? 2^31 : 0)` in 64 bits (`SMLAL`);
/// 3. `out = sat8((A >> 32 >> (r − 1)) + zp)`.
///
/// Equal to [`requantize`] for records that [`single_form`] admits
/// (proptested). TFLite's value is `⌊(hm + n)/2^r⌋ + zp` with the doubling
/// high multiply `hm = ⌊(x·mult + 2^30)/2^31⌋` and the nudge
/// `n = 2^(r−1)`, less 1 when `hm < 0`; since `⌊(⌊y⌋ + n)/2^r⌋ =
/// ⌊(y + n)/2^r⌋` for integers `n`, the two roundings are one:
/// `⌊(x·mult + 2^30 + (n + zp·2^r)·2^31) / 2^(31+r)⌋`. With `mult ≥ 0`,
/// `hm < 0` only when `x < 0`, and when `x < 0` but `hm = 0` both nudges
/// give 0, so the sign of `x` picks the nudge. Nothing overflows:
/// `|x·mult| < 2^62`, `|C| < 2^61 + 2^54` (`r ≤ 23` with the zero point
/// in it, else `< 2^62`... at most `2^61 + 2^31`), and the shifted value
/// is below 2^31 in magnitude.
#[cfg(any(test, all(tinygnn_single, not(tinygnn_dsp))))]
#[inline(always)]
fn single_value(acc: i32, p: &Prepared, relu: bool, zp: i8) -> i8 {
    let [bias, mult, c_lo, c_hi, rm1] = *p;
    let mut x = acc.saturating_add(bias);
    if relu {
        x &= !(x >> 31);
    }
    let c = (i64::from(c_hi) << 32) | i64::from(c_lo as u32);
    let a = i64::from(x)
        .wrapping_mul(i64::from(mult))
        .wrapping_add(c)
        .wrapping_sub(i64::from(x < 0) << 31);
    let v = ((a >> 32) as i32) >> (rm1 & 31);
    saturate_i8(v.wrapping_add(i32::from(zp)))
}

/// [`single_value`] over `rows` rows of `prep.len()` values: the
/// single-multiply form on 64-bit targets, one 64-bit multiply-add and
/// one shift per value (what [`single_rows_dsp`] does in assembly).
#[cfg(all(tinygnn_single, not(tinygnn_dsp)))]
fn single_rows<const RELU: bool>(
    acc: &[i32],
    prep: &[Prepared],
    rows: usize,
    zp: i8,
    out: &mut [i8],
) {
    let oc = prep.len().max(1);
    for (a, o) in acc
        .chunks_exact(oc)
        .zip(out.chunks_exact_mut(oc))
        .take(rows)
    {
        for ((o, &x), p) in o.iter_mut().zip(a).zip(prep) {
            *o = single_value(x, p, RELU, zp);
        }
    }
}

/// [`single_value`] over a row (the portable form of [`single_rows_dsp`]).
#[cfg(test)]
fn single_row(acc: &[i32], prep: &[Prepared], relu: bool, zp: i8, out: &mut [i8]) {
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        *o = single_value(a, p, relu, zp);
    }
}

/// The assembly of one value of [`single_rows_dsp`]: the accumulator in
/// `$x`, the record loaded into r5–r9, the result stored through r2.
/// `relu` takes `max(x, 0)`; otherwise `x < 0` subtracts 2^31 from the
/// 64-bit sum (`SMLAL` of the sign bit with r10 = −2^31). `zp` adds r11
/// after the shift.
#[cfg(all(tinygnn_single, tinygnn_dsp))]
macro_rules! single_value_asm {
    ($x:literal, relu, $zp:tt) => {
        concat!(
            "ldm r1!, {{r5-r9}}\n",
            "qadd ", $x, ", ", $x, ", r5\n",
            "bic ", $x, ", ", $x, ", ", $x, ", asr #31\n",
            "smlal r7, r8, ", $x, ", r6\n",
            single_value_asm!(@tail $zp)
        )
    };
    ($x:literal, none, $zp:tt) => {
        concat!(
            "ldm r1!, {{r5-r9}}\n",
            "qadd ", $x, ", ", $x, ", r5\n",
            "lsr r5, ", $x, ", #31\n",
            "smlal r7, r8, ", $x, ", r6\n",
            "smlal r7, r8, r5, r10\n",
            single_value_asm!(@tail $zp)
        )
    };
    (@tail zp) => {
        "asr r8, r8, r9\nadd r8, r8, r11\nssat r8, #8, r8\nstrb r8, [r2], #1\n"
    };
    (@tail nozp) => {
        "asr r8, r8, r9\nssat r8, #8, r8\nstrb r8, [r2], #1\n"
    };
}

/// The loop of [`single_rows_dsp`] over `args = [prep, pairs, odd, rows]`
/// (r1): per row, pairs of values (one `LDRD` for their accumulators)
/// while the pair count in r3 lasts, then one more value when `odd`; rows
/// until lr reaches 0.
#[cfg(all(tinygnn_single, tinygnn_dsp))]
macro_rules! single_rows_asm {
    ($act:tt, $zp:tt, $a:expr, $args:expr, $o:expr, $zpv:expr) => {
        core::arch::asm!(
            "push {{r6, r7}}",
            "push {{r1}}",
            "ldr lr, [r1, #12]",
            "1:",
            "ldr r5, [sp]",
            "ldrd r1, r3, [r5]",
            "cbz r3, 3f",
            "2:",
            "ldrd r4, r12, [r0], #8",
            single_value_asm!("r4", $act, $zp),
            single_value_asm!("r12", $act, $zp),
            "subs r3, r3, #1",
            "bne 2b",
            "3:",
            "ldr r5, [sp]",
            "ldr r5, [r5, #8]",
            "cbz r5, 4f",
            "ldr r4, [r0], #4",
            single_value_asm!("r4", $act, $zp),
            "4:",
            "subs lr, lr, #1",
            "bne 1b",
            "add sp, #4",
            "pop {{r6, r7}}",
            inout("r0") $a => _,
            inout("r1") $args => _,
            inout("r2") $o => _,
            in("r10") i32::MIN,
            in("r11") $zpv,
            out("r3") _, out("r4") _, out("r5") _, out("r8") _, out("r9") _,
            out("r12") _, out("lr") _,
        )
    };
}

/// [`single_row`] over `rows` rows of `prep.len()` values in Cortex-M4/M7/M33
/// assembly: two values per pass, each `LDM` (its record), `QADD` (bias),
/// `BIC` (ReLU) or the sign's `LSR` + `SMLAL`, `SMLAL`, `ASR`, (`ADD` of
/// the zero point,) `SSAT`, `STRB`, with one `LDRD` for the two
/// accumulators; an odd last value after a row's pairs.
#[cfg(all(tinygnn_single, tinygnn_dsp))]
#[allow(unsafe_code)]
fn single_rows_dsp(
    acc: &[i32],
    prep: &[Prepared],
    rows: usize,
    relu: bool,
    zp: i8,
    out: &mut [i8],
) {
    let oc = prep.len();
    let Some(total) = rows.checked_mul(oc) else {
        return;
    };
    if rows == 0 || oc == 0 || total > acc.len() || total > out.len() || rows > u32::MAX as usize {
        return;
    }
    let a = acc.as_ptr();
    let o = out.as_mut_ptr();
    let args: [u32; 4] = [
        prep.as_ptr() as u32,
        (oc / 2) as u32,
        (oc % 2) as u32,
        rows as u32,
    ];
    let args = args.as_ptr();
    let zpv = i32::from(zp);
    // SAFETY: `rows ≥ 1` rows of `oc ≥ 1` values: the loop reads
    // `rows·oc ≤ acc.len()` words from `a` (`LDRD`/`LDR`: word-aligned, as
    // `i32`) and writes `rows·oc ≤ out.len()` bytes from `o`, reading the
    // `oc` five-word records of `prep` once per row from its start and the
    // four words of `args` (a live local); it stops after `rows` rows. Every
    // register it touches is an operand or a clobber; r6 and r7 (which LLVM
    // reserves) and r1 are saved on the stack and restored, and the stack
    // pointer is back where it was at the end.
    unsafe {
        match (relu, zp != 0) {
            (true, true) => single_rows_asm!(relu, zp, a, args, o, zpv),
            (true, false) => single_rows_asm!(relu, nozp, a, args, o, zpv),
            (false, true) => single_rows_asm!(none, zp, a, args, o, zpv),
            (false, false) => single_rows_asm!(none, nozp, a, args, o, zpv),
        }
    }
}

/// Prepares the channel records of `params` (as [`requantize_row`] reads them
/// for `channels` output channels) into `prep`; returns how many channels
/// have a record (the rest are left untouched by [`requantize_row_prepared`],
/// as by [`requantize_row`]).
pub fn prepare_records(params: &[u8], channels: usize, prep: &mut [Prepared]) -> usize {
    // One loop for both forms (indexed records, no `ChunksExact` and no
    // closure instantiated per form: the smallest code at opt-level "z",
    // docs/size.md).
    let compact = matches!(
        params_form(params.len(), channels),
        Some(ParamsForm::Compact)
    );
    let split = params.len().saturating_sub(8);
    let (shared_mult, shared_shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
    let (size, records) = if compact {
        (4, params.get(..split).unwrap_or(&[]))
    } else {
        (12, params)
    };
    let mut n = 0usize;
    for (c, p) in prep.iter_mut().take(channels).enumerate() {
        let start = c.saturating_mul(size);
        let Some(rec) = records.get(start..start.saturating_add(size)) else {
            break;
        };
        let (bias, mult, shift) = match rec {
            [b0, b1, b2, b3] => (
                i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                shared_mult,
                shared_shift,
            ),
            _ => record(rec),
        };
        let shift = shift.clamp(-31, 30);
        let (left, right) = if shift > 0 { (shift, 0) } else { (0, -shift) };
        *p = [
            bias,
            mult,
            left | (right << 8),
            // (`kernels-small` derives its mask per value, see `prepared_small`.)
            if cfg!(feature = "kernels-small") {
                0
            } else if I64_STEPS {
                ((1u32 << right as u32) >> 1) as i32
            } else {
                (1u32 << right as u32).wrapping_sub(1) as i32
            },
            0,
        ];
        n += 1;
    }
    n
}

/// [`requantize_row`] with the records prepared by [`prepare`] (the same
/// results, proptested): `out[c]` for the channels of `prep`. Each record
/// carries the rounding nudge `2^right / 2` of its shift (`prepare` fills the
/// fourth word), so a value costs one 64-bit product and a few branch-free
/// 64-bit operations (every saturation a clamp, see `prepared_with`).
pub fn requantize_row_prepared(
    acc: &[i32],
    prep: &[Prepared],
    act: Activation,
    zp_out: i8,
    out: &mut [i8],
) {
    // `kernels-small`: one loop for every activation (code size, docs/size.md).
    #[cfg(feature = "kernels-small")]
    prepared_i32(acc, prep, zp_out, out, |a| activate(a, act));
    #[cfg(all(not(feature = "kernels-small"), not(target_pointer_width = "64")))]
    // (A per-row scan for records with a left shift cost more than the
    // branch it saves per value.)
    match act {
        Activation::None => prepared_i32_fast::<true>(acc, prep, zp_out, out, |a| a),
        Activation::Relu => prepared_i32_fast::<true>(acc, prep, zp_out, out, |a| a.max(0)),
        Activation::LeakyRelu { .. } => prepared_i32(acc, prep, zp_out, out, |a| activate(a, act)),
    }
    #[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
    {
        // Records without a left shift (every multiplier below 1.0, the
        // usual case) skip that step.
        let left = prep.iter().any(|p| p[2] & 0x1F != 0);
        match (act, left) {
            (Activation::None, true) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| s.clamp(I32_MIN, I32_MAX))
            }
            (Activation::None, false) => {
                prepared_with::<false>(acc, prep, zp_out, out, |s| s.clamp(I32_MIN, I32_MAX))
            }
            (Activation::Relu, true) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| s.clamp(0, I32_MAX))
            }
            (Activation::Relu, false) => {
                prepared_with::<false>(acc, prep, zp_out, out, |s| s.clamp(0, I32_MAX))
            }
            (Activation::LeakyRelu { .. }, _) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| {
                    i64::from(activate(clamp_i32(s), act))
                })
            }
        }
    }
}

/// Whether [`requantize_row_prepared`] runs [`prepared_with`] (64-bit hosts
/// without `kernels-small`), whose records carry `2^right / 2`, or
/// [`prepared_i32`], whose records carry the mask `2^right − 1` (0 with
/// `kernels-small`, which derives it per value).
const I64_STEPS: bool = cfg!(all(
    not(feature = "kernels-small"),
    target_pointer_width = "64"
));

/// [`requantize_row_prepared`] on 32-bit targets and with `kernels-small`:
/// `i32` saturating steps and TFLite's remainder-against-threshold rounding,
/// fewer instructions than 64-bit steps there (the emulated Cortex-M4); the
/// same values as [`prepared_with`] (both proptested against
/// [`requantize_row_ref`]).
#[cfg(any(feature = "kernels-small", not(target_pointer_width = "64")))]
#[inline(always)]
fn prepared_i32(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, mask, _] = *p;
        // `prepare` keeps left ≤ 30 and right ≤ 31; the masks keep the
        // shifts in range for any record.
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let mask = if cfg!(feature = "kernels-small") {
            (1u32 << right).wrapping_sub(1) as i32
        } else {
            mask
        };
        let x = act(a.saturating_add(bias));
        let xl = if left == 0 {
            x
        } else {
            x.saturating_mul(1i32 << left.min(30))
        };
        let ab = i64::from(xl) * i64::from(mult);
        // |ab| ≤ 2^62; the one high half above i32::MAX is 2^31.
        let hm = ((ab + (1i64 << 30)) >> 31).min(i64::from(i32::MAX)) as i32;
        let threshold = (mask >> 1) + i32::from(hm < 0);
        let v = (hm >> right) + i32::from((hm & mask) > threshold);
        *o = saturate_i8(v.saturating_add(zp));
    }
}

/// [`prepared_i32`] in fewer steps on 32-bit targets (the same values,
/// proptested): the left shift left out when no record has one (`LEFT =
/// false`); the doubling high multiply's saturation (only `2^62 + 2^30 ≥ 2^62`,
/// i.e. `a = mult = i32::MIN`) read from the high word of the 64-bit sum, and
/// `hm` assembled from its two words; `sat8(sat32(v + zp))` as
/// `sat8(clamp(v, −512, 511) + zp)` (equal: beyond ±512, `v + zp` is beyond
/// the `i8` range on the same side, with or without the `i32` saturation).
#[cfg(any(
    test,
    all(not(feature = "kernels-small"), not(target_pointer_width = "64"))
))]
#[inline(always)]
fn prepared_i32_fast<const LEFT: bool>(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, mask, _] = *p;
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let x = act(a.saturating_add(bias));
        let xl = if LEFT && left != 0 {
            x.saturating_mul(1i32 << left.min(30))
        } else {
            x
        };
        // |ab| ≤ 2^62: no overflow adding 2^30.
        let s = i64::from(xl) * i64::from(mult) + (1i64 << 30);
        let (hi, lo) = ((s >> 32) as i32, s as u32);
        // s >> 31 = 2·hi + (lo >> 31), above i32::MAX exactly when hi ≥ 2^30.
        let hm = if hi >= 1 << 30 {
            i32::MAX
        } else {
            (hi << 1) | (lo >> 31) as i32
        };
        let threshold = (mask >> 1) + i32::from(hm < 0);
        let v = (hm >> right) + i32::from((hm & mask) > threshold);
        *o = saturate_i8(v.clamp(-512, 511) + zp);
    }
}

/// `i32::MIN` and `i32::MAX` as `i64`.
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
const I32_MIN: i64 = i32::MIN as i64;
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
const I32_MAX: i64 = i32::MAX as i64;

/// `s` saturated to `i32`.
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
#[inline(always)]
fn clamp_i32(s: i64) -> i32 {
    s.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// [`requantize_row_prepared`] with the activation `act`, applied to the
/// clamped sum `acc + bias` given in `i64` (`act` maps `[i32::MIN, i32::MAX]`
/// into itself).
///
/// Every step of the reference is done in `i64`, where nothing can overflow,
/// with its `i32` saturation as a clamp (`sat8(sat32(v + zp))` is
/// `clamp(v + zp, −128, 127)`), and TFLite's rounding divide by `2^right`
/// (remainder against a threshold) as `(hm + nudge) >> right`: for `hm ≥ 0`
/// it rounds half up, `nudge = 2^right / 2`; for `hm < 0` half away from
/// zero, `nudge = 2^right / 2 − 1` (`0` when `right = 0`).
///
/// `LEFT = false` only for records whose left shift is 0 (the step is then
/// the identity and is left out).
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
#[inline(always)]
fn prepared_with<const LEFT: bool>(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i64) -> i64,
) {
    let zp = i64::from(zp_out);
    let (lo, hi) = (i64::from(i32::MIN), i64::from(i32::MAX));
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, half, _] = *p;
        // `prepare` keeps left ≤ 30 and right ≤ 31; the masks keep the
        // shifts in range for any record.
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let half = i64::from(half);
        let x = act(i64::from(a) + i64::from(bias));
        // |x| ≤ 2^31, left ≤ 30: no overflow before the clamp.
        let xl = if LEFT {
            (x << left.min(30)).clamp(lo, hi)
        } else {
            x
        };
        let ab = xl * i64::from(mult);
        // |ab| ≤ 2^62; the one high half above i32::MAX is 2^31.
        let hm = ((ab + (1i64 << 30)) >> 31).min(hi);
        let nudge = if hm < 0 {
            half - i64::from(half > 0)
        } else {
            half
        };
        let v = (hm + nudge) >> right;
        *o = (v + zp).clamp(-128, 127) as i8;
    }
}

/// The reference form of [`requantize_row`]: one [`requantize`] and
/// [`activate`] per channel, the definition the fast version is tested against.
pub fn requantize_row_ref(acc: &[i32], params: &[u8], act: Activation, zp_out: i8, out: &mut [i8]) {
    match params_form(params.len(), out.len()) {
        Some(ParamsForm::Compact) => {
            let split = params.len().saturating_sub(8);
            let biases = params.get(..split).unwrap_or(&[]);
            let (mult, shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
            for ((o, &a), b) in out.iter_mut().zip(acc).zip(biases.chunks_exact(4)) {
                let bias = match b {
                    [b0, b1, b2, b3] => i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                    _ => 0,
                };
                *o = requantize(activate(a.saturating_add(bias), act), mult, shift, zp_out);
            }
        }
        _ => {
            for ((o, &a), rec) in out.iter_mut().zip(acc).zip(params.chunks_exact(12)) {
                let (bias, mult, shift) = record(rec);
                *o = requantize(activate(a.saturating_add(bias), act), mult, shift, zp_out);
            }
        }
    }
}

/// Decodes the shared `(mult, shift)` pair (8 bytes, little endian) of a
/// compact [`crate::format::ChannelParams`] section (zeros if short).
#[inline]
pub fn shared_rescale(rec: &[u8]) -> (i32, i32) {
    match rec {
        [m0, m1, m2, m3, s0, s1, s2, s3, ..] => (
            i32::from_le_bytes([*m0, *m1, *m2, *m3]),
            i32::from_le_bytes([*s0, *s1, *s2, *s3]),
        ),
        _ => (0, 0),
    }
}

/// Decodes one 12-byte little-endian `(bias, mult, shift)` record (zeros if short).
#[inline]
pub fn record(rec: &[u8]) -> (i32, i32, i32) {
    match rec {
        [b0, b1, b2, b3, m0, m1, m2, m3, s0, s1, s2, s3, ..] => (
            i32::from_le_bytes([*b0, *b1, *b2, *b3]),
            i32::from_le_bytes([*m0, *m1, *m2, *m3]),
            i32::from_le_bytes([*s0, *s1, *s2, *s3]),
        ),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations() {
        assert_eq!(activate(-5, Activation::Relu), 0);
        assert_eq!(activate(5, Activation::Relu), 5);
        // alpha = 0.25: -5 · 0.25 = -1.25 → -1; -6 · 0.25 = -1.5 → -2 (half away).
        let leaky = Activation::LeakyRelu { alpha_q16: 16384 };
        assert_eq!(activate(-5, leaky), -1);
        assert_eq!(activate(-6, leaky), -2);
        assert_eq!(activate(9, leaky), 9);
        assert_eq!(activate(-9, Activation::None), -9);
    }

    #[test]
    fn record_matches_channel_record() {
        let mut params = [0u8; 36];
        for (i, b) in params.iter_mut().enumerate() {
            *b = (i * 29 + 7) as u8;
        }
        for c in 0..3 {
            assert_eq!(record(&params[c * 12..]), channel_record(&params, c));
        }
        assert_eq!(record(&params[..11]), (0, 0, 0));
    }

    fn params_strategy() -> impl proptest::strategy::Strategy<Value = (Vec<i32>, Vec<u8>, bool)> {
        use proptest::prelude::*;
        (1usize..20, any::<bool>())
            .prop_flat_map(|(n, compact)| {
                let words = if compact { n + 2 } else { 3 * n };
                (
                    proptest::collection::vec(any::<i32>(), n),
                    proptest::collection::vec(
                        prop_oneof![
                            any::<i32>(),
                            -40i32..40,
                            (1i32 << 30)..=i32::MAX,
                            Just(i32::MIN),
                            Just(i32::MAX)
                        ],
                        words,
                    ),
                    Just(compact),
                )
            })
            .prop_map(|(acc, words, compact)| {
                let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                (acc, bytes, compact)
            })
    }

    proptest::proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn requantize_row_matches_reference(
            (acc, params, _compact) in params_strategy(),
            act in 0u8..4,
            alpha in proptest::num::i32::ANY,
            zp in proptest::num::i8::ANY,
            small in proptest::bool::ANY,
            cut in 0usize..3,
        ) {
            let act = match act {
                0 => Activation::None,
                1 => Activation::Relu,
                2 => Activation::LeakyRelu { alpha_q16: alpha },
                _ => Activation::LeakyRelu { alpha_q16: 6554 },
            };
            // Small accumulators (the usual case) as well as arbitrary ones.
            let acc: Vec<i32> = if small { acc.iter().map(|a| a % 100_000).collect() } else { acc };
            // A short params section too (channels without records untouched).
            let params = &params[..params.len().saturating_sub(cut * 5)];
            let mut want = vec![7i8; acc.len()];
            let mut got = vec![7i8; acc.len()];
            requantize_row_ref(&acc, params, act, zp, &mut want);
            requantize_row(&acc, params, act, zp, &mut got);
            proptest::prop_assert_eq!(&got, &want);
            let mut prep = vec![[0i32; 5]; acc.len()];
            let n = prepare_records(params, acc.len(), &mut prep);
            let mut got2 = vec![7i8; acc.len()];
            requantize_row_prepared(&acc, &prep[..n], act, zp, &mut got2);
            proptest::prop_assert_eq!(&got2, &want);
            // The 32-bit form, with its records' mask `2^right − 1` (this
            // host's `prepare` stores `2^right / 2`), with and without the
            // left-shift step (the latter only when no record shifts left).
            let masked: Vec<Prepared> = prep[..n]
                .iter()
                .map(|&[b, m, lr, _, _]| [b, m, lr, ((1u32 << ((lr >> 8) & 0x1F)) - 1) as i32, 0])
                .collect();
            let left = masked.iter().any(|p| p[2] & 0x1F != 0);
            let fast = |act: &dyn Fn(i32) -> i32, out: &mut [i8]| {
                if left {
                    prepared_i32_fast::<true>(&acc, &masked, zp, out, act)
                } else {
                    prepared_i32_fast::<false>(&acc, &masked, zp, out, act)
                }
            };
            let mut got3 = vec![7i8; acc.len()];
            fast(&|a| activate(a, act), &mut got3);
            proptest::prop_assert_eq!(&got3, &want);
            if !left {
                let mut got4 = vec![7i8; acc.len()];
                prepared_i32_fast::<true>(&acc, &masked, zp, &mut got4, |a| activate(a, act));
                proptest::prop_assert_eq!(&got4, &want);
            }
        }
    }

    /// Records the single-multiply form takes: right shifts 1..=31,
    /// non-negative multipliers, any bias; accumulators of every size.
    fn single_strategy() -> impl proptest::strategy::Strategy<Value = (Vec<i32>, Vec<u8>)> {
        use proptest::prelude::*;
        (1usize..20)
            .prop_flat_map(|n| {
                let acc = prop_oneof![
                    any::<i32>(),
                    -100_000i32..100_000,
                    Just(i32::MIN),
                    Just(i32::MAX),
                    Just(-1),
                    (1i32 << 29)..i32::MAX,
                    i32::MIN..-(1 << 29),
                ];
                let rec = (
                    prop_oneof![any::<i32>(), -1000i32..1000, Just(i32::MIN), Just(i32::MAX)],
                    prop_oneof![
                        (1i32 << 30)..=i32::MAX,
                        0..=i32::MAX,
                        Just(0),
                        Just(1 << 30),
                        Just(i32::MAX)
                    ],
                    prop_oneof![-31i32..=-1, -23i32..=-1, Just(-23), Just(-24), Just(-31)],
                );
                (
                    proptest::collection::vec(acc, n),
                    proptest::collection::vec(rec, n),
                )
            })
            .prop_map(|(acc, recs)| {
                let bytes = recs
                    .iter()
                    .flat_map(|&(b, m, sh)| [b, m, sh])
                    .flat_map(|w| w.to_le_bytes())
                    .collect();
                (acc, bytes)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 2000 }))]
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn single_multiply_form_matches_reference(
            (acc, params) in single_strategy(),
            relu in proptest::bool::ANY,
            zp in proptest::num::i8::ANY,
        ) {
            let act = if relu { Activation::Relu } else { Activation::None };
            let mut want = vec![7i8; acc.len()];
            requantize_row_ref(&acc, &params, act, zp, &mut want);
            let mut prep = vec![[0i32; 5]; acc.len()];
            let n = prepare_records(&params, acc.len(), &mut prep);
            proptest::prop_assert_eq!(n, acc.len());
            let form = single_form(&prep, act);
            proptest::prop_assert!(form != Form::General);
            // The zero point after the shift (any record), and in the
            // constant (when every right shift allows it).
            let single: Vec<Prepared> = prep.iter().map(|&p| to_single(p, 0)).collect();
            let mut got = vec![7i8; acc.len()];
            single_row(&acc, &single, relu, zp, &mut got);
            proptest::prop_assert_eq!(&got, &want);
            if form == Form::SingleZp {
                let single: Vec<Prepared> = prep.iter().map(|&p| to_single(p, zp)).collect();
                let mut got = vec![7i8; acc.len()];
                single_row(&acc, &single, relu, 0, &mut got);
                proptest::prop_assert_eq!(&got, &want);
            }
            // Through `prepare` (the single form where `cfg(tinygnn_single)`),
            // one row and three (the second reversed).
            let mut prep2 = vec![[0i32; 5]; acc.len()];
            let rq = prepare(&params, acc.len(), act, zp, &mut prep2);
            let mut got2 = vec![7i8; acc.len()];
            rq.row(&acc, &mut got2);
            proptest::prop_assert_eq!(&got2, &want);
            let rev: Vec<i32> = acc.iter().rev().copied().collect();
            let mut want_rev = vec![7i8; acc.len()];
            requantize_row_ref(&rev, &params, act, zp, &mut want_rev);
            let three: Vec<i32> = acc.iter().chain(&rev).chain(&acc).copied().collect();
            let mut got3 = vec![7i8; 3 * acc.len()];
            rq.rows(&three, &mut got3);
            let want3: Vec<i8> = want.iter().chain(&want_rev).chain(&want).copied().collect();
            proptest::prop_assert_eq!(&got3, &want3);
        }
    }

    /// Records outside the single-multiply form keep the general one.
    #[test]
    fn single_form_refuses_what_it_cannot_compute() {
        let rec = |m: i32, sh: i32| {
            let mut p = [[0i32; 5]];
            let bytes: Vec<u8> = [5, m, sh]
                .iter()
                .flat_map(|w: &i32| w.to_le_bytes())
                .collect();
            prepare_records(&bytes, 1, &mut p);
            p
        };
        assert_eq!(
            single_form(&rec(1 << 30, -1), Activation::Relu),
            Form::SingleZp
        );
        assert_eq!(single_form(&rec(0, -23), Activation::None), Form::SingleZp);
        assert_eq!(
            single_form(&rec(i32::MAX, -24), Activation::None),
            Form::Single
        );
        assert_eq!(
            single_form(&rec(i32::MAX, -31), Activation::None),
            Form::Single
        );
        assert_eq!(
            single_form(&rec(1 << 30, 0), Activation::None),
            Form::General,
            "right 0"
        );
        assert_eq!(
            single_form(&rec(1 << 30, 2), Activation::None),
            Form::General,
            "left"
        );
        assert_eq!(
            single_form(&rec(-5, -3), Activation::None),
            Form::General,
            "mult < 0"
        );
        let leaky = Activation::LeakyRelu { alpha_q16: 6554 };
        assert_eq!(
            single_form(&rec(1 << 30, -3), leaky),
            Form::General,
            "leaky ReLU"
        );
    }

    #[test]
    fn requantize_scales_and_saturates() {
        let (m, s) = crate::quant::quantize_multiplier(0.5);
        assert_eq!(requantize(7, m, s, 0), 4);
        assert_eq!(requantize(-6, m, s, 0), -3);
        assert_eq!(requantize(-6, m, s, -2), -5);
        assert_eq!(requantize(1000, m, s, 3), 127);
        assert_eq!(requantize(-1000, m, s, 3), -128);
    }
}
