#!/usr/bin/env python3
"""Sums a per-address instruction profile (scripts/pcprof/pcprof.c) by stage.

    stages.py PROFILE A2L COUNTS

PROFILE: `pc count` lines (one window of the plugin); A2L: the inline chain of
every counted address, `addr2line -f -i -C -a` output (one `0x…` line per
address, then function / location line pairs, innermost first); COUNTS:
`macs=N,sparse=N,dense=N,sums=N,values=N`, the inference's multiply-accumulates
in all and per stage (layer 1's, the dense layers', the neighbour sums') and
the values requantized, for the "per unit" column.

A stage is the first rule (in order) whose pattern matches any function of an
address's inline chain; the rest is "other". Prints a table: instructions,
share, instructions per MAC of the whole inference, and per unit of the
stage's own work (its MACs, or the values it requantizes).
"""
import collections
import re
import sys

# (stage, pattern, unit of its own work in COUNTS or None)
RULES = [
    ("layer 1: sparse X·W", r"kernels::sparse(_sub)?::|ops::common::Src::matmul", "sparse"),
    ("dense X·W", r"kernels::pairs::|kernels::dense::|dense_i4::|dense_i2::|kernels::packed::", "dense"),
    ("requantization", r"kernels::requant::|quant::saturate_i8", "values"),
    ("GCN degrees and normalisation", r"ops::gcn::degree|ops::gcn::dinv_q24|graph::prepare", None),
    ("GCN neighbour sums (coefficients, MACs, rounding)", r"ops::gcn::|round_shift_i64_to_i32", "sums"),
    ("graph validation", r"graph::validate|graph::check_sparse", None),
    ("CSR build (counting sort)", r"aggregate::build_csr", None),
    ("memset / memcpy builtins", r"compiler_builtins|__aeabi_mem|memset|memcpy", None),
]
UNIT_NAMES = {"sparse": "MAC", "dense": "MAC", "sums": "MAC", "values": "value"}


def main():
    prof_path, a2l_path = sys.argv[1], sys.argv[2]
    counts = {k: int(v) for k, v in (kv.split("=") for kv in sys.argv[3].split(","))}
    macs = counts["macs"]
    units = {name: unit for name, _, unit in RULES}
    prof = {}
    for line in open(prof_path):
        a, c = line.split()
        if a != "other":
            prof[int(a, 16)] = int(c)
    chains, cur = {}, None
    lines = open(a2l_path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            cur = int(line, 16)
            chains[cur] = []
            i += 1
            continue
        chains[cur].append(line)
        i += 2
    agg = collections.Counter()
    other = collections.Counter()
    total = 0
    for pc, c in prof.items():
        s = " ".join(chains.get(pc, []))
        total += c
        for name, rx, _ in RULES:
            if re.search(rx, s):
                agg[name] += c
                break
        else:
            agg["other (session, planning, op dispatch)"] += c
            other[(chains.get(pc) or ["?"])[-1][:90]] += c
    print("| stage | instructions | share | per MAC of the inference | per unit of its own work |")
    print("|---|---:|---:|---:|---:|")
    for name, c in agg.most_common():
        unit = units.get(name)
        own = ""
        if unit and counts.get(unit):
            own = f"{c / counts[unit]:.2f} per {UNIT_NAMES[unit]} ({counts[unit]:,})"
        print(f"| {name} | {c:,} | {c / max(total, 1) * 100:.1f} % | {c / max(macs, 1):.2f} | {own} |")
    print(f"| **total** | **{total:,}** | 100 % | **{total / max(macs, 1):.2f}** | |")
    print()
    print(f"{macs:,} multiply-accumulates; {total / max(macs, 1):.2f} instructions per MAC.")
    if "--other" in sys.argv:
        for n, c in other.most_common(10):
            print("   ", c, n, file=sys.stderr)


if __name__ == "__main__":
    main()
