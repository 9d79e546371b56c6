#!/usr/bin/env bash
# Miri over a curated subset of the library's unit tests, with strict provenance: frame
# allocation and metadata, page-table install/walk/free through RCU, the VMA tree, RCU,
# guest-byte access and the system calls on small address spaces. Under cfg(miri) host
# regions are heap allocations (no mmap) and heavy tests shrink or are skipped.
# Installs what it needs (nightly with miri and rust-src); exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null
cargo +nightly miri setup >/dev/null
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance -Zmiri-disable-isolation}"
cargo +nightly miri test -p softmm --lib -- \
  frame:: pgtable:: vma:: sync:: stats:: error:: mm::tests::contents mm::tests::merge_split mm::tests::placement
