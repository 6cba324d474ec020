//! Kernel test and benchmark firmware for QEMU (run by `scripts/kernel-bench.sh`).
//!
//! 1. **Bit-exactness**: on seeded random shapes (input lengths around the
//!    group, loop and tile boundaries of the pair kernels, odd output
//!    channel counts, 1–9 nodes, random zero points, extreme values), every
//!    dense kernel variant this target has — the defaults `dense::matvec` /
//!    `dense::matmul` (the DSP kernels on Cortex-M4/M33), the portable ones,
//!    the emulated pair kernels and, with the DSP extension, the assembly
//!    kernels themselves — is compared with `dense::matvec_ref`. Any
//!    difference prints `kernel-check BOARD MISMATCH …` and exits QEMU with 1;
//!    success prints `kernel-check BOARD ok: …`.
//! 2. **Instructions per MAC**: with `-icount shift=10` every instruction
//!    advances virtual time by 2^10 ns, so a hardware timer read before and
//!    after a call counts its instructions exactly (minus the cost of an
//!    empty measurement, subtracted). One line per measurement:
//!    `kernel-bench BOARD KERNEL rows=R cols=C macs=N instructions=M per_mac=X.XXX`
//!    (`rows` = output channels, `cols` = input channels, `macs` =
//!    nodes·rows·cols; the per-op weight sums are outside the count).
//! 3. The same for requantization (per value) and for the sparse input
//!    layer (sparse int8 rows × int8 or int2 weights, per stored MAC: the
//!    check compares `sparse::matvec` and `sparse_sub`'s kernels with the dense
//!    references on the densified row).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};

use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use tinygnn::kernels::requant::{self, Activation};
use tinygnn::kernels::sparse::{self, SparseRows};
use tinygnn::kernels::{dense, dense_i2, dense_i4, pairs, pairs_i2, sparse_sub};

#[cfg(feature = "m0")]
const BOARD: &str = "m0";
#[cfg(feature = "m33")]
const BOARD: &str = "m33";
#[cfg(not(any(feature = "m0", feature = "m33")))]
const BOARD: &str = "m4";

/// The `-icount shift` the script runs QEMU with.
const ICOUNT_SHIFT: u64 = 10;

fn mmio_write(addr: usize, v: u32) {
    // SAFETY: a timer register of the emulated board's memory map.
    unsafe { write_volatile(addr as *mut u32, v) }
}

fn mmio_read(addr: usize) -> u32 {
    // SAFETY: a timer register of the emulated board's memory map.
    unsafe { read_volatile(addr as *const u32) }
}

/// CMSDK APB timer 0 (mps2-an386: 25 MHz at 0x4000_0000; mps2-an505:
/// 20 MHz, secure alias 0x5000_0000), a 32-bit down counter.
#[cfg(not(feature = "m0"))]
mod timer {
    use super::*;
    #[cfg(feature = "m33")]
    const BASE: usize = 0x5000_0000;
    #[cfg(feature = "m33")]
    const HZ: u64 = 20_000_000;
    #[cfg(not(feature = "m33"))]
    const BASE: usize = 0x4000_0000;
    #[cfg(not(feature = "m33"))]
    const HZ: u64 = 25_000_000;

    pub fn init() {
        mmio_write(BASE + 0x8, u32::MAX);
        mmio_write(BASE + 0x4, u32::MAX);
        mmio_write(BASE, 1);
    }

    #[inline(always)]
    pub fn now() -> u32 {
        // Counts down: negate so that later readings are larger.
        u32::MAX - mmio_read(BASE + 0x4)
    }

    /// Instructions in `ticks`: `ticks · 1e9 / (HZ · 2^shift)`, rounded.
    pub fn insns(ticks: u32) -> u64 {
        let den = HZ << ICOUNT_SHIFT;
        (u64::from(ticks) * 1_000_000_000 + den / 2) / den
    }
}

/// nRF51 TIMER0 (16 MHz, 32-bit mode, read through TASKS_CAPTURE[0]).
#[cfg(feature = "m0")]
mod timer {
    use super::*;
    const BASE: usize = 0x4000_8000;

    pub fn init() {
        mmio_write(BASE + 0x504, 0); // MODE: timer
        mmio_write(BASE + 0x508, 3); // BITMODE: 32 bit
        mmio_write(BASE + 0x510, 0); // PRESCALER: 16 MHz
        mmio_write(BASE + 0x00c, 1); // TASKS_CLEAR
        mmio_write(BASE, 1); // TASKS_START
    }

    #[inline(always)]
    pub fn now() -> u32 {
        mmio_write(BASE + 0x040, 1);
        mmio_read(BASE + 0x540)
    }

    /// Instructions in `ticks`: `ticks · 1e9 / (16e6 · 2^shift)`, rounded.
    pub fn insns(ticks: u32) -> u64 {
        let den = 16_000_000u64 << ICOUNT_SHIFT;
        (u64::from(ticks) * 1_000_000_000 + den / 2) / den
    }
}

/// Instructions taken by `f`, minus those of an empty measurement.
fn count(overhead: u64, f: impl FnOnce()) -> u64 {
    let t0 = timer::now();
    f();
    let t1 = timer::now();
    timer::insns(t1.wrapping_sub(t0)).saturating_sub(overhead)
}

/// xorshift32.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u32) as usize
    }
    fn fill(&mut self, v: &mut [i8]) {
        match self.below(16) {
            0 => v.fill(-128),
            1 => v.fill(127),
            _ => v.iter_mut().for_each(|b| *b = self.next() as i8),
        }
    }
}

const MAX_IN: usize = 2 * pairs::TILE + 24;
const MAX_OUT: usize = 11;
const MAX_NODES: usize = 9;
const CASES: u32 = 300;

fn fail(what: &str, i: usize, o: usize, n: usize, case: u32) -> ! {
    hprintln!(
        "kernel-check {} MISMATCH {}: case={} cols={} rows={} nodes={}",
        BOARD,
        what,
        case,
        i,
        o,
        n
    );
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Runs every kernel variant on `CASES` seeded random shapes against the reference.
fn check_all() -> u32 {
    let mut rng = Rng(0x1234_5678);
    let mut w = [0i8; MAX_IN * MAX_OUT];
    let mut x = [0i8; MAX_IN * MAX_NODES];
    let mut want = [0i32; MAX_OUT * MAX_NODES];
    let mut got = [0i32; MAX_OUT * MAX_NODES];
    let mut sums = [0i32; MAX_OUT];
    let t = pairs::TILE;
    let mut checked = 0;
    for case in 0..CASES {
        let i = match rng.below(4) {
            0 | 1 => rng.range(1, 40),
            2 => rng.range(t - 9, t + 20),
            _ => rng.range(2 * t - 8, MAX_IN),
        };
        let o = rng.range(1, MAX_OUT);
        let n = rng.range(1, MAX_NODES);
        let zp = rng.next() as i8;
        let (w, x) = (&mut w[..i * o], &mut x[..i * n]);
        rng.fill(w);
        rng.fill(x);
        let sums = &mut sums[..o];
        dense::weight_sums(w, i, sums);
        let want = &mut want[..o * n];
        for (xr, wr) in x.chunks(i).zip(want.chunks_mut(o)) {
            dense::matvec_ref(w, i, xr, zp, wr);
        }
        let got = &mut got[..o * n];
        let mut check = |what: &str, f: &dyn Fn(&mut [i32])| {
            got.fill(0x5a5a_5a5a);
            f(got);
            if got != want {
                fail(what, i, o, n, case);
            }
            checked += 1;
        };
        check("matmul", &|g| dense::matmul(w, i, x, zp, sums, g));
        check("matmul_rows", &|g| dense::matmul_rows(w, i, x, zp, sums, g));
        check("matmul_pairs_emulated", &|g| {
            pairs::matmul_with::<pairs::Emulated>(w, i, x, zp, sums, g)
        });
        if pairs::HAS_DSP {
            check("matmul_dsp", &|g| {
                pairs::matmul_with::<pairs::Native>(w, i, x, zp, sums, g)
            });
        }
        let per_row = |g: &mut [i32], f: &dyn Fn(&[i8], &mut [i32])| {
            for (xr, gr) in x.chunks(i).zip(g.chunks_mut(o)) {
                f(xr, gr);
            }
        };
        check("matvec", &|g| {
            per_row(g, &|xr, gr| dense::matvec(w, i, xr, zp, sums, gr))
        });
        check("matvec_opt", &|g| {
            per_row(g, &|xr, gr| dense::matvec_opt(w, i, xr, zp, sums, gr))
        });
        check("matvec_narrow", &|g| {
            per_row(g, &|xr, gr| dense::matvec_narrow(w, i, xr, zp, sums, gr))
        });
        if pairs::HAS_DSP {
            check("matvec_dsp", &|g| {
                per_row(g, &|xr, gr| {
                    pairs::matvec_with::<pairs::Native>(w, i, xr, zp, sums, gr)
                })
            });
        }
        // int2 weights: the same shapes, the weights' low two bits.
        let mut w2 = [0u8; MAX_IN.div_ceil(4) * MAX_OUT];
        let rb = i.div_ceil(4);
        let w2 = &mut w2[..rb * o];
        for (c, row) in w2.chunks_mut(rb).enumerate() {
            for (k, &v) in w[c * i..(c + 1) * i].iter().enumerate() {
                row[k / 4] |= ((v as u8) & 3) << (2 * (k % 4));
            }
        }
        let mut want2 = [0i32; MAX_OUT * MAX_NODES];
        let want2 = &mut want2[..o * n];
        for (xr, wr) in x.chunks(i).zip(want2.chunks_mut(o)) {
            dense_i2::matvec_ref(w2, i, xr, zp, wr);
        }
        dense_i2::weight_sums(w2, i, sums);
        let mut check2 = |what: &str, f: &dyn Fn(&mut [i32])| {
            got.fill(0x5a5a_5a5a);
            f(got);
            if got != want2 {
                fail(what, i, o, n, case);
            }
            checked += 1;
        };
        check2("pairs_i2::matmul", &|g| {
            pairs_i2::matmul(w2, i, x, zp, sums, g)
        });
        check2("pairs_i2_emulated", &|g| {
            pairs_i2::matmul_with::<pairs::Emulated>(w2, i, x, zp, sums, g)
        });
        if pairs::HAS_DSP {
            check2("pairs_i2_dsp", &|g| {
                pairs_i2::matmul_with::<pairs::Native>(w2, i, x, zp, sums, g)
            });
        }
    }
    checked
}

/// Deterministic bench data in flash: weights `[ROWS, COLS]`, inputs `[NODES, COLS]`.
const ROWS: usize = 64;
const COLS: usize = 128;
const NODES: usize = 16;

const fn gen<const N: usize>(seed: u32) -> [i8; N] {
    let mut v = [0i8; N];
    let mut s = seed;
    let mut k = 0;
    while k < N {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        v[k] = s as i8;
        k += 1;
    }
    v
}

static BENCH_W: [i8; ROWS * COLS] = gen::<{ ROWS * COLS }>(0xdead_beef);
static BENCH_X: [i8; NODES * COLS] = gen::<{ NODES * COLS }>(0x0bad_cafe);

fn report(kernel: &str, rows: usize, cols: usize, macs: usize, insns: u64) {
    let milli = (insns * 1000 + macs as u64 / 2) / macs as u64;
    hprintln!(
        "kernel-bench {} {} rows={} cols={} macs={} instructions={} per_mac={}.{:03}",
        BOARD,
        kernel,
        rows,
        cols,
        macs,
        insns,
        milli / 1000,
        milli % 1000
    );
}

fn bench(overhead: u64) {
    let w: &[i8] = black_box(&BENCH_W);
    let x: &[i8] = black_box(&BENCH_X);
    let zp = black_box(-3i8);
    // Shapes unknown at compile time, as in a model.
    let (cols, rows) = (black_box(COLS), black_box(ROWS));
    let mut sums = [0i32; ROWS];
    dense::weight_sums(w, cols, &mut sums);
    let mut want = [0i32; ROWS * NODES];
    for (xr, wr) in x.chunks(cols).zip(want.chunks_mut(rows)) {
        dense::matvec_ref(w, cols, xr, zp, wr);
    }
    let mut out = [0i32; ROWS * NODES];
    let x1 = &x[..cols];
    let mut one = |name: &str, f: &dyn Fn(&mut [i32])| {
        out.fill(0);
        let n = count(overhead, || f(black_box(&mut out[..ROWS])));
        if out[..ROWS] != want[..ROWS] {
            fail(name, COLS, ROWS, 1, 0);
        }
        report(name, ROWS, COLS, ROWS * COLS, n);
    };
    one("matvec-ref", &|o| dense::matvec_ref(w, cols, x1, zp, o));
    one("matvec-portable", &|o| {
        dense::matvec_opt(w, cols, x1, zp, &sums, o)
    });
    one("matvec-narrow", &|o| {
        dense::matvec_narrow(w, cols, x1, zp, &sums, o)
    });
    if pairs::HAS_DSP {
        one("matvec-dsp", &|o| {
            pairs::matvec_with::<pairs::Native>(w, cols, x1, zp, &sums, o)
        });
    }
    let mut all = |name: &str, f: &dyn Fn(&mut [i32])| {
        out.fill(0);
        let n = count(overhead, || f(black_box(&mut out[..])));
        if out != want {
            fail(name, COLS, ROWS, NODES, 0);
        }
        report(name, ROWS, COLS, ROWS * COLS * NODES, n);
    };
    all("matmul-portable", &|o| {
        for (xr, or) in x.chunks(cols).zip(o.chunks_mut(rows)) {
            dense::matvec_opt(w, cols, xr, zp, &sums, or);
        }
    });
    if pairs::HAS_DSP {
        all("matmul-dsp", &|o| {
            pairs::matmul_with::<pairs::Native>(w, cols, x, zp, &sums, o)
        });
    }
    // What the ops run on this target (`dense::matmul`).
    all("matmul-default", &|o| {
        dense::matmul(w, cols, x, zp, &sums, o)
    });
    // int2 weights (the low two bits of the same weights), what the ops
    // run (`pairs_i2::matmul`), against the int2 reference; the ratio to int8.
    let mut w2 = [0u8; ROWS * COLS / 4];
    for (k, &v) in w.iter().enumerate() {
        w2[k / 4] |= ((v as u8) & 3) << (2 * (k % 4));
    }
    let w2: &[u8] = black_box(&w2);
    let n8 = count(overhead, || {
        dense::matmul(w, cols, x, zp, &sums, black_box(&mut out[..]))
    });
    dense_i2::weight_sums(w2, cols, &mut sums);
    for (xr, wr) in x.chunks(cols).zip(want.chunks_mut(rows)) {
        dense_i2::matvec_ref(w2, cols, xr, zp, wr);
    }
    out.fill(0);
    let n2 = count(overhead, || {
        pairs_i2::matmul(w2, cols, x, zp, &sums, black_box(&mut out[..]))
    });
    if out != want {
        fail("pairs_i2::matmul", COLS, ROWS, NODES, 0);
    }
    report("matmul-int2-default", ROWS, COLS, ROWS * COLS * NODES, n2);
    let milli = (n2 * 1000 + n8 / 2) / n8.max(1);
    hprintln!(
        "kernel-bench {} matmul-int2/int8 ratio={}.{:03}",
        BOARD,
        milli / 1000,
        milli % 1000
    );
}

const RQ_OUT: usize = 11;
const RQ_ROWS: usize = 5;

/// One random `(bias, mult, shift)` record: mostly what the single-multiply
/// form takes (right shifts 1..=31, multipliers ≥ 0), sometimes not.
fn rq_record(rng: &mut Rng, out: &mut [u8]) {
    let bias = match rng.below(8) {
        0 => i32::MIN,
        1 => i32::MAX,
        2 => rng.next() as i32,
        _ => (rng.next() as i32) % 100_000,
    };
    let mult = match rng.below(8) {
        0 => 1 << 30,
        1 => i32::MAX,
        2 => 0,
        3 => rng.next() as i32, // sometimes negative: the general form
        _ => ((rng.next() >> 1) | (1 << 30)) as i32,
    };
    let shift = match rng.below(16) {
        0 => 0,
        1 => rng.below(4) as i32 + 1,
        2 => -31,
        3 => -24,
        _ => -(rng.below(23) as i32 + 1),
    };
    for (d, v) in out.chunks_exact_mut(4).zip([bias, mult, shift]) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// `requant::prepare` + `RowRequant::rows` (the single-multiply assembly on
/// DSP targets) against `requantize_row_ref` on `CASES` random cases.
fn check_requant() -> u32 {
    let mut rng = Rng(0x0dd_ba11);
    let mut params = [0u8; 12 * RQ_OUT];
    let mut acc = [0i32; RQ_OUT * RQ_ROWS];
    let mut prep = [[0i32; 5]; RQ_OUT];
    for case in 0..CASES {
        let oc = rng.range(1, RQ_OUT);
        let rows = rng.range(1, RQ_ROWS);
        for c in 0..oc {
            rq_record(&mut rng, &mut params[12 * c..12 * c + 12]);
        }
        for a in acc.iter_mut() {
            *a = match rng.below(10) {
                0 => i32::MIN,
                1 => i32::MAX,
                2 | 3 => rng.next() as i32,
                _ => (rng.next() as i32) % 1_000_000,
            };
        }
        let act = match rng.below(3) {
            0 => Activation::None,
            1 => Activation::Relu,
            _ => Activation::LeakyRelu { alpha_q16: 6554 },
        };
        let zp = rng.next() as i8;
        let params = &params[..12 * oc];
        let mut want = [0i8; RQ_OUT * RQ_ROWS];
        let mut got = [0i8; RQ_OUT * RQ_ROWS];
        for r in 0..rows {
            let o = r * oc;
            requant::requantize_row_ref(&acc[o..o + oc], params, act, zp, &mut want[o..o + oc]);
        }
        let rq = requant::prepare(params, oc, act, zp, &mut prep);
        rq.rows(&acc[..rows * oc], &mut got[..rows * oc]);
        if got != want {
            fail("requant", oc, rows, 0, case);
        }
    }
    CASES
}

/// Instructions per value of `RowRequant::rows` over `[64, 16]` accumulators
/// (the records of a typical layer: right shifts 7..=12).
fn bench_requant(overhead: u64) {
    const OC: usize = 16;
    const ROWS: usize = 64;
    let mut rng = Rng(0x5eed);
    let mut params = [0u8; 12 * OC];
    for c in 0..OC {
        let rec = [
            (rng.next() as i32) % 5000,
            ((rng.next() >> 1) | (1 << 30)) as i32,
            -(rng.below(6) as i32 + 7),
        ];
        for (d, v) in params[12 * c..12 * c + 12].chunks_exact_mut(4).zip(rec) {
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut acc = [0i32; OC * ROWS];
    acc.iter_mut()
        .for_each(|a| *a = (rng.next() as i32) % 200_000);
    let mut prep = [[0i32; 5]; OC];
    let mut out = [0i8; OC * ROWS];
    for (name, act) in [
        ("requant-relu", Activation::Relu),
        ("requant-none", Activation::None),
    ] {
        let rq = requant::prepare(black_box(&params), OC, act, -5, &mut prep);
        let n = count(overhead, || rq.rows(black_box(&acc), black_box(&mut out)));
        let values = (OC * ROWS) as u64;
        let milli = (n * 1000 + values / 2) / values;
        hprintln!(
            "kernel-bench {} {} channels={} rows={} values={} instructions={} per_value={}.{:03}",
            BOARD,
            name,
            OC,
            ROWS,
            values,
            n,
            milli / 1000,
            milli % 1000
        );
    }
}

const SP_IN: usize = 200;
const SP_OUT: usize = 11;

/// The sparse kernels (`sparse::matvec`, `sparse_sub`'s defaults and
/// packed kernels for int4 and int2: the assembly on DSP targets) against the
/// dense references on the densified row, on `CASES` random cases (rows
/// longer than a packing chunk, random densities and zero points).
fn check_sparse() -> u32 {
    let mut rng = Rng(0x0dd_5eed);
    let mut w8 = [0i8; SP_IN * SP_OUT];
    let mut w2 = [0u8; SP_IN.div_ceil(4) * SP_OUT];
    let mut w4 = [0u8; SP_IN.div_ceil(2) * SP_OUT];
    let mut x = [0i8; SP_IN];
    let (mut cols, mut vals) = ([0u16; SP_IN], [0i8; SP_IN]);
    let (mut want, mut got) = ([0i32; SP_OUT], [0i32; SP_OUT]);
    let mut checked = 0;
    for case in 0..CASES {
        let i = rng.range(1, SP_IN);
        let o = rng.range(1, SP_OUT);
        let zp = rng.next() as i8;
        let pct = rng.below(101);
        let (x, want, got) = (&mut x[..i], &mut want[..o], &mut got[..o]);
        rng.fill(x);
        let mut m = 0;
        for (k, v) in x.iter_mut().enumerate() {
            if rng.below(100) >= pct {
                *v = zp;
            } else if *v != zp {
                (cols[m], vals[m]) = (k as u16, *v);
                m += 1;
            }
        }
        let (c, v) = (&cols[..m], &vals[..m]);
        let w8 = &mut w8[..i * o];
        rng.fill(w8);
        dense::matvec_ref(w8, i, x, zp, want);
        got.fill(0x5a5a_5a5a);
        sparse::matvec(w8, i, c, v, zp, got);
        if got != want {
            fail("sparse::matvec", i, o, 1, case);
        }
        type Kernel = fn(&[u8], usize, &[u16], &[i8], i8, &mut [i32]);
        let w4 = &mut w4[..i.div_ceil(2) * o];
        w4.iter_mut().for_each(|b| *b = rng.next() as u8);
        dense_i4::matvec_ref(w4, i, x, zp, want);
        let int4: [(&str, Kernel); 2] = [
            ("sparse_sub::matvec_i4", sparse_sub::matvec_i4),
            (
                "sparse_sub::matvec_packed::<4>",
                sparse_sub::matvec_packed::<4>,
            ),
        ];
        for (what, f) in int4 {
            got.fill(0x5a5a_5a5a);
            f(w4, i, c, v, zp, got);
            if got != want {
                fail(what, i, o, 1, case);
            }
        }
        let w2 = &mut w2[..i.div_ceil(4) * o];
        w2.iter_mut().for_each(|b| *b = rng.next() as u8);
        dense_i2::matvec_ref(w2, i, x, zp, want);
        let int2: [(&str, Kernel); 2] = [
            ("sparse_sub::matvec_i2", sparse_sub::matvec_i2),
            (
                "sparse_sub::matvec_packed::<2>",
                sparse_sub::matvec_packed::<2>,
            ),
        ];
        for (what, f) in int2 {
            got.fill(0x5a5a_5a5a);
            f(w2, i, c, v, zp, got);
            if got != want {
                fail(what, i, o, 1, case);
            }
        }
        checked += 5;
    }
    checked
}

/// Sparse input layer, Cora's shape: 1433 input channels, 16 outputs, 18
/// stored entries per row (Cora's average), `SP_NODES` rows; int8, int2 and
/// int4 weights, the kernels the ops run (`matmul`). Per stored MAC, and the
/// int4/int8 and int2/int8 ratios.
fn bench_sparse(overhead: u64) {
    const IN: usize = 1433;
    const OUT: usize = 16;
    const PER_ROW: usize = 18;
    const SP_NODES: usize = 32;
    static W8: [i8; IN * OUT] = gen::<{ IN * OUT }>(0xfeed_f00d);
    static W2: [i8; IN.div_ceil(4) * OUT] = gen::<{ IN.div_ceil(4) * OUT }>(0xc0ff_ee00);
    static W4: [i8; IN.div_ceil(2) * OUT] = gen::<{ IN.div_ceil(2) * OUT }>(0x5eed_1234);
    let mut rng = Rng(0xabcd_ef01);
    let mut cols = [0u16; PER_ROW * SP_NODES];
    let mut vals = [0i8; PER_ROW * SP_NODES];
    let mut row_ptr = [0u32; SP_NODES + 1];
    for r in 0..SP_NODES {
        // Increasing columns: one in each of PER_ROW equal strides.
        for e in 0..PER_ROW {
            let stride = IN / PER_ROW;
            cols[r * PER_ROW + e] = (e * stride + rng.below(stride as u32) as usize) as u16;
            vals[r * PER_ROW + e] = 1 + rng.below(100) as i8;
        }
        row_ptr[r + 1] = ((r + 1) * PER_ROW) as u32;
    }
    let x = SparseRows {
        row_ptr: &row_ptr,
        cols: &cols,
        values: &vals,
    };
    let w8: &[i8] = black_box(&W8);
    let w2: &[u8] = bytemuck_u8(black_box(&W2));
    let w4: &[u8] = bytemuck_u8(black_box(&W4));
    let mut out = [0i32; OUT * SP_NODES];
    let macs = PER_ROW * SP_NODES * OUT;
    let n8 = count(overhead, || {
        sparse::matmul(w8, black_box(IN), x, 0, OUT, black_box(&mut out))
    });
    report("sparse-int8", OUT, IN, macs, n8);
    let n2 = count(overhead, || {
        sparse_sub::matmul_i2(w2, black_box(IN), x, 0, OUT, black_box(&mut out))
    });
    report("sparse-int2", OUT, IN, macs, n2);
    let n4 = count(overhead, || {
        sparse_sub::matmul_i4(w4, black_box(IN), x, 0, OUT, black_box(&mut out))
    });
    report("sparse-int4", OUT, IN, macs, n4);
    for (name, n) in [("int4", n4), ("int2", n2)] {
        let milli = (n * 1000 + n8 / 2) / n8.max(1);
        hprintln!(
            "kernel-bench {} sparse-{}/int8 ratio={}.{:03}",
            BOARD,
            name,
            milli / 1000,
            milli % 1000
        );
    }
}

/// The bytes of an `i8` array.
fn bytemuck_u8(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, every bit pattern valid.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}

#[entry]
fn main() -> ! {
    timer::init();
    // Cost of an empty measurement (two timer reads).
    let overhead = count(0, || {});
    let checked = check_all();
    hprintln!(
        "kernel-check {} ok: {} kernel runs on {} seeded random shapes equal the reference (dsp={})",
        BOARD,
        checked,
        CASES,
        pairs::HAS_DSP
    );
    let rq = check_requant();
    hprintln!(
        "kernel-check {} ok: requantization equals the reference on {} random cases",
        BOARD,
        rq
    );
    let sp = check_sparse();
    hprintln!(
        "kernel-check {} ok: {} sparse kernel runs equal the dense references on {} random cases",
        BOARD,
        sp,
        CASES
    );
    bench(overhead);
    bench_requant(overhead);
    bench_sparse(overhead);
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("kernel-bench panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
