#!/usr/bin/env python3
"""Lists the functions that call a panicking core function in a disassembly.

Usage: llvm-objdump -d --no-show-raw-insn -C FIRMWARE.elf | boards/panic-check/panic-callers.py
Used by scripts/panic-check.sh after a failed check (on a `diagnose` build,
whose panic handler links). Prints `caller  (address) -> callee`.
"""
import re
import sys

PANICKY = re.compile(
    r"core::panicking::|core::slice::index::|core::option::unwrap_failed|"
    r"core::option::expect_failed|core::result::unwrap_failed|rust_begin_unwind|"
    r"core::panic::|core::fmt::"
)
func = None
seen = set()
for line in sys.stdin:
    m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if m:
        if not m.group(1).startswith("$"):
            func = m.group(1)
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(b\S*|cb\S*)\s.*<([^>+]*)(\+0x[0-9a-f]+)?>", line)
    if not m or func is None:
        continue
    callee = m.group(3)
    if PANICKY.search(callee) and not PANICKY.search(func):
        key = (func, callee)
        if key not in seen:
            seen.add(key)
            print(f"{func}  ({m.group(1)}) -> {callee}")
if not seen:
    print("(no caller of a panicking function found)")
