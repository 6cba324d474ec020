#!/usr/bin/env python3
"""Measures how the code is laid out against the targets of the op-by-op layout.

    scripts/layout-check.py                  # report
    scripts/layout-check.py --strict         # exit 1 if a target is missed

Reports, for the runtime crate (src/) and the host tool (tools/src/):
  * import circles between files (a file "imports" another when it names a
    `crate::…` or `super::…` path that resolves to it; `pub use` re-exports count
    as imports of the re-exporting file);
  * functions longer than 120 lines in src/ or 150 in tools/src/ (test modules aside);
  * in how many files each op family is named (test modules and doc comments aside).

--strict fails on an import circle, on a long function in the crates named
after it (every crate when none is named) and on an op family named in more
than five files.
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = {"src": ROOT / "src", "tools/src": ROOT / "tools/src"}
FN_LIMIT = {"src": 120, "tools/src": 150}
FAMILY_LIMIT = 5
FAMILIES = {
    "linear": r"\bLinear\b|\blinear::",
    "gcn": r"\bGcn\w*|\bgcn_conv\b|\bgcn::",
    "sage": r"\bSage\w*|\bsage_conv\b|\bsage::",
    "gin": r"\bGin[A-Z]\w*|\bgin_aggregate\b|\bgin::",
    "gine": r"\bGine\w*|\bgine_conv\b|\bgine::",
    "gat": r"\bGat\w*|\bgat_conv\b|\bgatv2_conv\b|\bgat::",
    "propagate": r"\bPropagate\b|\bProp[A-Z]\w*|\bappnp\b|\bpropagate::",
    "edge_conv": r"\bEdgeConv\w*|\bedge_conv\b|\bedge_conv::",
    "lut": r"\bLut\b|\blut::",
    "pool": r"\bGlobalPool\b|\bglobal_pool\b|\bpool::",
    "link": r"\bInnerProduct\b|\bPairFeatures\b|\binner_product\b|\blink::",
    "softmax": r"\bSoftmax\b|\bsoftmax::",
    "norm": r"\bLayerNorm\b|\blayer_norm\b|\bnorm::",
    "transformer": r"\bTransformer\w*|\btransformer_conv\b|\btransformer::",
    "pe": r"\bRandomWalkPe\b|\brandom_walk_pe\b|\bpe::",
    "hypergraph": r"\bHypergraph\w*|\bhypergraph_conv\b|\bhypergraph::",
    "cheb": r"\bCheb\w*|\bcheb_conv\b|\bcheb::",
}


def strip(text: str) -> str:
    """Source without comments, string literals and `#[cfg(test)] mod … { … }` blocks."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\((?:all\()?test[^\]]*\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def module_of(base: Path, path: Path) -> list:
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


REEXPORTS = {}  # (file, item) -> absolute module path of what `pub use` re-exports


def resolve(base: Path, mods: dict, segs: list, depth: int = 0):
    """The file of the longest module prefix of `segs`, following `pub use`
    re-exports (an item named through a re-export is imported from its own file)."""
    for n in range(len(segs), -1, -1):
        key = tuple(segs[:n])
        if key in mods:
            f = mods[key]
            if n < len(segs) and depth < 8:
                target = REEXPORTS.get((f, segs[n]))
                if target is not None:
                    return resolve(base, mods, target + segs[n + 1 :], depth + 1)
            return f
    return None


def collect_reexports(base: Path, mods: dict):
    for p in files(base):
        me = module_of(base, p)
        here = me if p.stem in ("mod", "lib", "main") else me[:-1]
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", strip(p.read_text())):
            for path in expand(m.group(1)):
                segs = [x for x in path.split("::") if x]
                if not segs:
                    continue
                if segs[0] == "crate":
                    segs = segs[1:]
                elif segs[0] == "super":
                    segs = here[:-1] + segs[1:]
                elif segs[0] == "self":
                    segs = me + segs[1:]
                else:
                    segs = me + segs
                if segs and segs[-1] == "*":
                    src = tuple(segs[:-1])
                    if src in mods:
                        text = strip(mods[src].read_text())
                        items = re.findall(r"\bpub\s+(?:const\s+fn|struct|enum|fn|const|type|trait|static|mod)\s+(\w+)", text)
                        # names the glob's source itself re-exports (followed by `resolve`)
                        for m2 in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
                            items += [x.split("::")[-1] for x in expand(m2.group(1)) if not x.endswith("*")]
                        for item in items:
                            REEXPORTS.setdefault((p, item), list(src))
                elif len(segs) >= 1:
                    REEXPORTS[(p, segs[-1])] = segs[:-1]


def files(base: Path):
    return sorted(p for p in base.rglob("*.rs"))


def imports(base: Path):
    mods = {tuple(module_of(base, p)): p for p in files(base)}
    collect_reexports(base, mods)
    edges = defaultdict(set)
    for p in files(base):
        me = module_of(base, p)
        text = strip(p.read_text())
        # expand `use a::{b, c::{d}}` shallowly: each path written in braces after a prefix
        # `pub use` re-exports are a facade, not an import: names used through
        # them are resolved to their own file (see `resolve`).
        text = re.sub(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]+;", "", text)
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for path in expand(m.group(1)):
                add_edge(base, mods, edges, p, me, path)
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
            add_edge(base, mods, edges, p, me, m.group(1))
        # paths into child modules: `child::item`
        here = me if p.stem in ("mod", "lib", "main") else None
        if here is not None:
            for key, target in mods.items():
                if len(key) == len(here) + 1 and list(key[:-1]) == list(here):
                    if re.search(r"(?<![\w:])" + key[-1] + r"::", text):
                        edges[p].add(target)
    return edges


def expand(tree: str):
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, t):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(t):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(t[start:i])
                start = i + 1
        parts.append(t[start:])
        for part in parts:
            if not part:
                continue
            k = part.find("{")
            if k >= 0 and part.endswith("}"):
                walk(prefix + part[:k], part[k + 1 : -1])
            else:
                out.append(prefix + part)

    walk("", tree)
    return [o.split(" as ")[0] for o in out]


def add_edge(base, mods, edges, p, me, path):
    segs = [s for s in path.split("::") if s and s != "*"]
    if not segs:
        return
    if segs[0] == "crate":
        segs = segs[1:]
    elif segs[0] == "super":
        cur = list(me) if p.stem in ("mod", "lib", "main") else list(me[:-1])
        while segs and segs[0] == "super":
            segs = segs[1:]
            cur = cur[:-1] if segs and segs[0] == "super" else cur
        segs = cur + segs
    else:
        return
    target = resolve(base, mods, segs)
    if target is not None and target != p:
        # a path into a parent module's file counts only when it names an item there
        edges[p].add(target)


def cycles(edges):
    """Strongly connected components with more than one file."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def long_functions(base: Path, limit: int):
    out = []
    for p in files(base):
        lines = strip(p.read_text()).split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)", lines[i])
            if not m:
                i += 1
                continue
            depth, started, j = 0, False, i
            while j < len(lines):
                for ch in lines[j]:
                    if ch == "{":
                        depth += 1
                        started = True
                    elif ch == "}":
                        depth -= 1
                if started and depth <= 0:
                    break
                if not started and lines[j].rstrip().endswith(";"):
                    break
                j += 1
            n = j - i + 1
            if started and n > limit:
                out.append((n, f"{p.relative_to(ROOT)}:{i + 1}", m.group(1)))
            i += 1
    return sorted(out, reverse=True)


def family_files():
    per = defaultdict(set)
    for base in CRATES.values():
        for p in files(base):
            text = strip(p.read_text())
            for fam, pat in FAMILIES.items():
                if re.search(pat, text):
                    per[fam].add(str(p.relative_to(ROOT)))
    return per


def main():
    args = sys.argv[1:]
    strict = "--strict" in args
    enforced = [a for a in args if a in CRATES] or list(CRATES)
    failed = False
    for name, base in CRATES.items():
        circ = cycles(imports(base))
        print(f"{name}: {len(circ)} import circle(s)")
        for c in circ:
            print("   ", " ↔ ".join(str(p.relative_to(ROOT)) for p in sorted(c)))
        failed |= bool(circ)
        longs = long_functions(base, FN_LIMIT[name])
        print(f"{name}: {len(longs)} function(s) longer than {FN_LIMIT[name]} lines")
        for n, where, fn in longs:
            print(f"    {n:5} {fn} ({where})")
        failed |= bool(longs) and name in enforced
    print(f"files naming each op family (src/ + tools/src/; at most {FAMILY_LIMIT}):")
    for fam, fs in sorted(family_files().items(), key=lambda kv: -len(kv[1])):
        print(f"    {fam:10} {len(fs):3}  {' '.join(sorted(fs))}")
        failed |= len(fs) > FAMILY_LIMIT
    if strict and failed:
        print("layout-check: targets missed")
        sys.exit(1)


if __name__ == "__main__":
    main()
