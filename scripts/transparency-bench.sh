#!/usr/bin/env bash
# The figures in docs/benchmarks.md, "Signed checkpoints": the cost per
# record of `chainsink emit --stdin` with automatic checkpoints on (default
# interval: every 1000 records, every 60 s, at close) against off, measured
# side by side in one run (alternating rounds, the best of each); then the
# time to sign a checkpoint from scratch, to make an inclusion and a
# consistency proof, and their sizes, on a log of PROOF_RECORDS records.
#
#   cargo build --release -p chainsink
#   scripts/transparency-bench.sh [RECORDS] [ROUNDS] [PROOF_RECORDS]
set -euo pipefail
RECORDS=${1:-200000}
ROUNDS=${2:-3}
PROOF_RECORDS=${3:-1000000}
BIN=${CHAINSINK:-$(command -v chainsink || echo "$(cd "$(dirname "$0")/.." && pwd)/target/release/chainsink")}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export USER=bench HOST_ID=bench CHAINSINK_CACHE_DIR="$WORK/cache"
"$BIN" keygen --origin bench.example/log --out key >/dev/null 2>&1
events() {
python3 - "$1" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"event_type": "bench.event", "workflow_id": "wf-1",
                      "payload": {"i": i, "service": "api", "note": "a typical small payload"}}))
PY
}
events "$RECORDS" > events.jsonl
# Warm up: compile the sink into the cache, once, outside the timings.
head -n 10 events.jsonl | "$BIN" emit --stdin --durability none --log warmup.jsonl > /dev/null
now() { date +%s.%N; }
best_off=""; best_on=""
for round in $(seq "$ROUNDS"); do
  for mode in off on; do
    rm -f "$mode.jsonl" "$mode.jsonl.checkpoint" "$mode.jsonl.tree"
    key=(); [ "$mode" = on ] && key=(--signing-key key.key)
    t0=$(now)
    "$BIN" emit --stdin --durability none --log "$mode.jsonl" "${key[@]}" < events.jsonl > /dev/null
    t1=$(now)
    secs=$(echo "$t1 - $t0" | bc -l)
    echo "round $round checkpoints $mode: $secs s for $RECORDS records"
    if [ "$mode" = off ]; then
      if [ -z "$best_off" ] || (( $(echo "$secs < $best_off" | bc -l) )); then best_off=$secs; fi
    else
      if [ -z "$best_on" ] || (( $(echo "$secs < $best_on" | bc -l) )); then best_on=$secs; fi
    fi
  done
done
"$BIN" verify on.jsonl --checkpoint on.jsonl.checkpoint --key key.vkey | tail -1
printf 'per record: off %.2f us, on %.2f us, overhead %.1f%%\n' \
  "$(echo "$best_off * 1000000 / $RECORDS" | bc -l)" \
  "$(echo "$best_on * 1000000 / $RECORDS" | bc -l)" \
  "$(echo "($best_on - $best_off) * 100 / $best_off" | bc -l)"

# A log of PROOF_RECORDS records: the events above, repeated.
events "$PROOF_RECORDS" > big-events.jsonl
"$BIN" emit --stdin --durability none --log big.jsonl < big-events.jsonl > /dev/null
echo "log: $PROOF_RECORDS records, $(stat -c %s big.jsonl) bytes"
t0=$(now); "$BIN" checkpoint big.jsonl --signing-key key.key > /dev/null; t1=$(now)
echo "checkpoint from scratch: $(echo "$t1 - $t0" | bc -l) s"
cp big.jsonl.checkpoint old.checkpoint
head -n 1000 big-events.jsonl | "$BIN" emit --stdin --durability none --log big.jsonl > /dev/null
t0=$(now); "$BIN" checkpoint big.jsonl --signing-key key.key > /dev/null; t1=$(now)
echo "checkpoint after 1000 more records (resumed from LOG.tree): $(echo "$t1 - $t0" | bc -l) s"
mid=$(( PROOF_RECORDS / 2 ))
t0=$(now); "$BIN" prove big.jsonl --index "$mid" > inclusion.tlog-proof; t1=$(now)
echo "inclusion proof (--index $mid): $(echo "$t1 - $t0" | bc -l) s, $(awk '/^index /{f=1;next} /^$/{exit} f{n++} END{print n}' inclusion.tlog-proof) hashes, $(stat -c %s inclusion.tlog-proof) bytes with the checkpoint"
t0=$(now); "$BIN" prove big.jsonl --seq "$mid" > /dev/null; t1=$(now)
echo "inclusion proof (--seq $mid, finding the record): $(echo "$t1 - $t0" | bc -l) s"
t0=$(now); "$BIN" prove big.jsonl --from old.checkpoint > consistency.proof; t1=$(now)
echo "consistency proof ($PROOF_RECORDS -> $((PROOF_RECORDS + 1000))): $(echo "$t1 - $t0" | bc -l) s, $(stat -c %s consistency.proof) bytes"
line=$((mid + 1))
sed -n "${line}p" big.jsonl > line.jsonl
t0=$(now); "$BIN" verify-proof --line line.jsonl --proof inclusion.tlog-proof --key key.vkey; t1=$(now)
echo "verify-proof: $(echo "$t1 - $t0" | bc -l) s"
