#!/usr/bin/env bash
# area: cargo test --workspace (profile test-release): runtime unit, property, conformance and CLI tests (host)
# needs: rust
# Every crate of the workspace: the runtime (ops, kernels, quantization, sparse input, int4,
# random models, bad input, arena, ...), the CLI (tools/tests: convert, run, verify, stream,
# conformance goldens, calibration, link, GAT, GINE, EdgeConv, propagation, int4 accuracy),
# the protocol (proto), the C API's host tests (capi) and the testkit. The mutation suite's
# mutants (mutate_*) run once, in the hostile area, which prints their counts.
source "$(dirname "$0")/../lib.sh"
need rust
cargo test --workspace --profile test-release -- --skip mutate_
