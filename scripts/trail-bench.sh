#!/usr/bin/env bash
# Times `verify` against `show --workflow` and `stats` on a log of 1,000,000
# records (about 540 MB, 50 workflows) in one run (docs/benchmarks.md,
# "Reading the trail"). Usage: scripts/trail-bench.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
cargo build --release -q
bin="$PWD/target/release/chainsink"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
python3 -c "
import json, sys
types = ['task.started', 'task.completed', 'workflow.started', 'team.created']
for i in range($n):
    print(json.dumps({'event_type': types[i % 4], 'workflow_id': 'wf-%d' % (i % 50),
                      'payload': {'i': i, 'task_id': 't-%d' % (i % 1000), 'duration_seconds': i % 97 / 10}}))
" | USER=bench "$bin" emit --stdin --durability none --log "$dir/big.jsonl" > /dev/null
ls -l "$dir/big.jsonl"
t() { /usr/bin/time -f "%e s wall, %M KB peak: $*" "$@" > /dev/null; }
t "$bin" verify "$dir/big.jsonl"
t "$bin" show "$dir/big.jsonl" --workflow wf-7 -o jsonl
t "$bin" show "$dir/big.jsonl" --type 'task.c*' --since 2026-01-01 -o jsonl
t "$bin" stats "$dir/big.jsonl" --json
