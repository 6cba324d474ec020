#!/usr/bin/env python3
"""Static worst-case stack of a call tree in an ARM (Thumb) ELF.

Usage: stack.py FIRMWARE.elf ROOT [--all] [--prologue]

Frame sizes come from the `.stack_sizes` section (rustc `-Z emit-stack-sizes`);
functions without an entry (precompiled compiler-builtins, e.g. `memcpy`) get
theirs from their prologue (`push`, `vpush`, `str rN, [sp, #-n]!`,
`sub sp, #imm`). With `--prologue` every frame comes from the prologue (for a
stable-toolchain build, which has no `.stack_sizes`; on the nightly build both
ways give identical frames for every function of the tinygnn call tree).
ROOT is a demangled function name (exact, else a unique substring). The call graph is
read from `llvm-objdump -d`: `bl`/`blx <label>` calls, and `b`/`b.w` branches
to another function's start (tail calls, counted as calls: an upper bound).
The bound is `max over call paths from ROOT of Σ frame sizes`.

It is sound only if the call graph is complete, so the script fails (exit 2)
on anything it cannot follow: an indirect call (`blx rN`, `bx rN` other than
`bx lr`, writes to `pc`), recursion (a cycle), or a dynamic stack adjustment
(`sub sp, rN`). One computed branch is accepted: the ARMv6-M switch jump table
`adr rT, table; ldr rN, [rT, rI]; mov pc, rN`, whose table entries (read from
the words after it) are addresses inside the same function — an LLVM switch
lowering, not a call. (Its length is not decoded: the entries taken are the
leading run of in-function Thumb addresses, before the literal pool.)

Prints the frame and worst-case total of every function reachable from ROOT,
the worst call chain, and `BOUND <bytes>` last.
"""
import re
import shutil
import subprocess
import sys
import tempfile
import os


def tool(name):
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    for d in ([os.path.join(sysroot, "lib", "rustlib", t, "bin") for t in os.listdir(os.path.join(sysroot, "lib", "rustlib"))]
              if sysroot else []):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    p = shutil.which(name)
    if not p:
        sys.exit(f"stack.py: {name} not found (rustup component add llvm-tools, or install llvm)")
    return p


def uleb(b, i):
    v, s = 0, 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return v, i


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    elf, root_pat = sys.argv[1], sys.argv[2]
    show_all = "--all" in sys.argv
    prologue_only = "--prologue" in sys.argv
    objdump = tool("llvm-objdump")
    objcopy = tool("llvm-objcopy")

    # .stack_sizes: (u32 address, uleb128 size) pairs.
    sizes = {}
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ss.bin")
        r = subprocess.run([objcopy, "--dump-section", f".stack_sizes={out}", elf, os.path.join(d, "x.elf")],
                           capture_output=True, text=True)
        if r.returncode != 0 and prologue_only:
            b = b""
        elif r.returncode != 0:
            sys.exit("stack.py: no .stack_sizes section (build with RUSTFLAGS=-Zemit-stack-sizes on nightly)\n" + r.stderr)
        else:
            b = open(out, "rb").read()
    i = 0
    while i + 4 <= len(b):
        addr = int.from_bytes(b[i:i + 4], "little") & ~1
        size, i = uleb(b, i + 4)
        sizes[addr] = size

    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", elf], capture_output=True, text=True).stdout
    funcs = {}  # addr -> dict(name, insns)
    order = []
    cur = None
    for line in dis.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            name = re.sub(r"::h[0-9a-f]{16}$", "", m.group(2))
            if name.startswith("$"):
                continue
            cur = int(m.group(1), 16)
            funcs[cur] = {"name": name, "insns": []}
            order.append(cur)
            continue
        m = re.match(r"^\s*([0-9a-f]+):.*\.word\s+0x([0-9a-f]+)", line)
        if m and cur is not None:
            funcs[cur]["insns"].append((int(m.group(1), 16), ".word", m.group(2)))
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and cur is not None:
            funcs[cur]["insns"].append((int(m.group(1), 16), m.group(2), m.group(3)))
    words = {}  # address -> 32-bit literal (signed), for `ldr rN, [pc, #x]` frame sizes
    for f in funcs.values():
        for addr, op, args in f["insns"]:
            if op == ".word":
                v = int(args, 16)
                words[addr] = v - (1 << 32) if v & 0x80000000 else v

    def sp_reg_adjust(insns, k):
        """Bytes allocated by `add sp, rN` / `sub sp, rN` at index k (rN from a
        literal load shortly before), or None if rN is not a known literal."""
        addr, op, args = insns[k]
        m = re.match(r"sp,\s*(?:sp,\s*)?(r\d+)$", args)
        if not m:
            return None
        reg = m.group(1)
        for _, o2, a2 in reversed(insns[max(0, k - 6):k]):
            lm = re.match(reg + r",\s*\[pc,\s*#(?:0x)?[0-9a-f]+\]\s*@\s*0x([0-9a-f]+)", a2)
            if o2.startswith("ldr") and lm and int(lm.group(1), 16) in words:
                v = words[int(lm.group(1), 16)]
                return -v if op.startswith("add") else v
            if a2.startswith(reg):
                return None
        return None

    starts = sorted(funcs)
    ends = {a: (starts[k + 1] if k + 1 < len(starts) else 1 << 32) for k, a in enumerate(starts)}

    problems = []

    def prologue_frame(a):
        total = 0
        insns = funcs[a]["insns"]
        for k, (_, op, args) in enumerate(insns[:12]):
            if re.match(r"^(add|sub)s?(\.w)?$", op) and re.match(r"sp,\s*(sp,\s*)?r\d+$", args):
                v = sp_reg_adjust(insns, k)
                if v is None:
                    problems.append(f"unknown stack adjustment in the prologue of {funcs[a]['name']}: {op} {args}")
                else:
                    total += max(v, 0)
                continue
            if op in ("push", "push.w") or (op.startswith("stmdb") and args.startswith("sp!")):
                regs = re.search(r"\{(.*)\}", args).group(1)
                n = 0
                for part in regs.split(","):
                    part = part.strip()
                    m = re.match(r"r(\d+)-r(\d+)", part)
                    n += (int(m.group(2)) - int(m.group(1)) + 1) if m else 1
                total += 4 * n
            elif op.startswith("vpush"):
                regs = re.search(r"\{(.*)\}", args).group(1)
                n = 0
                for part in regs.split(","):
                    m = re.match(r"\s*([ds])(\d+)(?:-[ds](\d+))?", part)
                    cnt = (int(m.group(3)) - int(m.group(2)) + 1) if m.group(3) else 1
                    n += cnt * (8 if m.group(1) == "d" else 4)
                total += n
            elif op.startswith(("str", "vstr")) and re.search(r"\[sp,\s*#-((?:0x)?[0-9a-f]+)\]!", args):
                total += int(re.search(r"\[sp,\s*#-((?:0x)?[0-9a-f]+)\]!", args).group(1), 0)
            elif op.startswith("sub") and re.match(r"sp,\s*(sp,\s*)?#", args):
                total += int(re.search(r"#(0x[0-9a-f]+|\d+)", args).group(1), 0)
        return total

    def frame(a):
        if a in sizes and not prologue_only:
            return sizes[a], ".stack_sizes"
        return prologue_frame(a), "prologue"

    def callees(a):
        out = set()
        lo, hi = a, ends[a]
        insns = funcs[a]["insns"]
        for k, (addr, op, args) in enumerate(insns):
            if op == "mov" and re.match(r"pc,\s*r\d+$", args) and any(
                    o == "adr" for _, o, _ in insns[max(0, k - 12):k]):
                # Thumb-1 jump table: `adr; ldr rN, [table, idx]; mov pc, rN` (the `adr` up to
                # 12 instructions before: LLVM may schedule the index arithmetic between),
                # table words right after. Fine if every entry stays in the function.
                j = k + 1
                while j < len(insns) and insns[j][1] == "mov" and insns[j][2] == "r8, r8":
                    j += 1
                # The table starts where the `adr` points (Align(pc, 4) + imm),
                # which may be past a few literal words.
                for aaddr, aop, aargs in insns[max(0, k - 12):k]:
                    am = re.match(r"r\d+,\s*#(\d+)", aargs) if aop == "adr" else None
                    if am:
                        start = ((aaddr + 4) & ~3) + int(am.group(1))
                        at = [i for i in range(k + 1, len(insns)) if insns[i][0] == start]
                        if at:
                            j = at[0]
                # The table is followed by the literal pool: take the run of
                # words that are Thumb addresses (odd) inside this function.
                table = []
                while j < len(insns) and insns[j][1] == ".word":
                    w = int(insns[j][2], 16)
                    if not (w & 1 and lo <= (w & ~1) < hi):
                        break
                    table.append(w & ~1)
                    j += 1
                if table:
                    continue
                problems.append(f"unresolved jump table in {funcs[a]['name']} at {addr:#x}")
                continue
            if re.match(r"^(blx|bx)$", op) and re.match(r"^r\d+|^ip|^r12", args) and not args.startswith("lr"):
                problems.append(f"indirect call/branch in {funcs[a]['name']} at {addr:#x}: {op} {args}")
                continue
            if re.match(r"^(mov|ldr|pop)", op) and "pc" in args.split(",")[0] and op.startswith(("mov", "ldr")):
                problems.append(f"write to pc in {funcs[a]['name']} at {addr:#x}: {op} {args}")
            if k >= 12 and re.match(r"^(add|sub)s?(\.w)?$", op) and re.match(r"sp,\s*(sp,\s*)?r\d+$", args):
                v = sp_reg_adjust(insns, k)
                if v is None or v > 0:
                    problems.append(f"dynamic stack adjustment in {funcs[a]['name']} at {addr:#x}: {op} {args}")
            m = re.match(r"^(bl|blx|b|b\.w|b\.n)$", op)
            if not m:
                continue
            t = re.match(r"^0x([0-9a-f]+)", args)
            if not t:
                continue
            tgt = int(t.group(1), 16)
            if lo <= tgt < hi:
                continue  # branch inside the function
            if tgt in funcs:
                out.add(tgt)
            else:
                problems.append(f"branch from {funcs[a]['name']} at {addr:#x} into the middle of a function: {args}")
        return out

    roots = [a for a in funcs if funcs[a]["name"] == root_pat] or [a for a in funcs if root_pat in funcs[a]["name"]]
    if len(roots) != 1:
        sys.exit(f"stack.py: root pattern {root_pat!r} matches {[funcs[a]['name'] for a in roots]}")
    root = roots[0]

    memo, best_next, onstack = {}, {}, set()

    def worst(a):
        if a in memo:
            return memo[a]
        if a in onstack:
            problems.append(f"recursion through {funcs[a]['name']}")
            return 0
        onstack.add(a)
        f, _ = frame(a)
        w, nxt = 0, None
        for c in sorted(callees(a)):
            v = worst(c)
            if v > w:
                w, nxt = v, c
        onstack.discard(a)
        memo[a] = f + w
        best_next[a] = nxt
        return memo[a]

    bound = worst(root)
    print(f"{'frame':>6} {'worst':>6}  source       function (reachable from {funcs[root]['name']})")
    for a in sorted(memo, key=lambda a: -memo[a]):
        f, src = frame(a)
        if show_all or f > 0 or a == root:
            print(f"{f:6d} {memo[a]:6d}  {src:<12} {funcs[a]['name']}")
    print("\nworst call chain:")
    a = root
    while a is not None:
        f, _ = frame(a)
        print(f"  {f:6d}  {funcs[a]['name']}")
        a = best_next.get(a)
    if problems:
        print("\nthe bound is NOT sound:", file=sys.stderr)
        for p in sorted(set(problems)):
            print("  " + p, file=sys.stderr)
        print(f"BOUND {bound} (unsound)")
        sys.exit(2)
    print(f"BOUND {bound}")


if __name__ == "__main__":
    main()
