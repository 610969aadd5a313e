#!/usr/bin/env bash
# Times what a newcomer runs on a fresh clone, in order: the README's quick
# start (cold: an empty target dir), then `.ci/run` (which runs the README's
# test command), and says whether the test command recompiled wasmtime.
# Usage: scripts/measure-build.sh [COMMIT]   (default: HEAD)
# Needs a few GB of disk and 20-40 minutes on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
git checkout -q "${1:-HEAD}"
export CI=true CARGO_TARGET_DIR="$work/clone/target"
start=$(date +%s)
rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null
cargo run --release -- run workflows/example.yaml --dry-run --log quickstart.jsonl >/dev/null
cargo run --release -- verify quickstart.jsonl
quick=$(( $(date +%s) - start ))
start=$(date +%s)
bash .ci/run > "$work/ci.log" 2>&1 || { tail -50 "$work/ci.log"; exit 1; }
ci=$(( $(date +%s) - start ))
if grep -qE "Compiling (wasmtime|cranelift-codegen) v" "$work/ci.log"; then
  recompiled="yes"
else
  recompiled="no"
fi
echo "quick start (cold): ${quick} s"
echo ".ci/run after it:   ${ci} s"
echo "the test command recompiled wasmtime or Cranelift: ${recompiled}"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work"
