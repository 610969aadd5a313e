#!/usr/bin/env bash
# SHA-256 in the sink (sha2 compiled to wasm) against the host's
# digest.sha256 import, per hash, measured side by side in one run:
#   crates/sdk/bench-sink/run.sh [ROUNDS] [BYTES]
# Builds this sink, then times `chainsink emit --stdin` over 10 events that
# each compute ROUNDS hashes of BYTES bytes, per method, after a baseline
# of events that hash nothing. Needs `chainsink` on PATH.
set -euo pipefail
rounds=${1:-20000}
bytes=${2:-400}
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../../target/sink-projects/digest-bench}
CARGO_TARGET_DIR=$target cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$here/Cargo.toml"
sink=$target/wasm32-wasip2/release/digest_bench_sink.wasm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
time_ns() {
  local kind=$1 n=$2
  for _ in $(seq 10); do
    printf '{"event_type": "%s", "payload": {"rounds": %d, "bytes": %d}}\n' "$kind" "$n" "$bytes"
  done >"$tmp/in.jsonl"
  rm -f "$tmp/log.jsonl"
  local start end
  start=$(date +%s%N)
  chainsink emit --stdin --sink "$sink" --log "$tmp/log.jsonl" --durability none \
    --sink-timeout 60000 <"$tmp/in.jsonl" >/dev/null
  end=$(date +%s%N)
  echo $((end - start))
}
time_ns bench.none 0 >/dev/null # warm the component cache
base=$(time_ns bench.none 0)
wasm=$(time_ns bench.wasm "$rounds")
host=$(time_ns bench.host "$rounds")
hashes=$((10 * rounds))
echo "SHA-256 of $bytes bytes, $hashes hashes per method:"
echo "  in the sink (sha2, wasm): $(((wasm - base) / hashes)) ns per hash"
echo "  host digest.sha256 call:  $(((host - base) / hashes)) ns per hash"
