#!/usr/bin/env bash
# chainsink against the Python reference sink, side by side, through the CLI:
# prints every ratio of issue 15's table (docs/benchmarks.md, "Issue 15").
#
#   scripts/compare.sh            # builds chainsink once (cargo build --release)
#   CHAINSINK=path/to/chainsink scripts/compare.sh   # no build
#
# Knobs (environment): EVENTS (emit --stdin, default 200000), ROUNDS (median
# of, default 5), ONESHOT (one-shot runs per round, default 20), LINES (one
# line at a time with fsync, default 300), VERIFY_RECORDS (default 500000),
# LINE_MB (the long line, default 200; the short one is a quarter of it),
# BENCH_DIR (scratch directory; default $TMPDIR), GROUP=0 to skip the group
# commit figures (they run `cargo bench -p chainsink-host --bench durability`).
#
# Timing: hyperfine when installed (apt install hyperfine), else its own
# loop with bash's $EPOCHREALTIME; either way the median of ROUNDS. Both
# sides run in the same loop, interleaved, so load on a shared machine hits
# both alike; the ratios are what to compare across runs, not the seconds.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVENTS=${EVENTS:-200000}
ROUNDS=${ROUNDS:-5}
ONESHOT=${ONESHOT:-20}
LINES=${LINES:-300}
VERIFY_RECORDS=${VERIFY_RECORDS:-500000}
LINE_MB=${LINE_MB:-200}
GROUP=${GROUP:-1}
REF="$REPO/crates/cli/tests/fixtures/reference_sink.py"

if [ -z "${CHAINSINK:-}" ]; then
    (cd "$REPO" && cargo build --release -p chainsink >&2)
    CHAINSINK="$REPO/target/release/chainsink"
fi
CS=$CHAINSINK
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/chainsink-compare.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export USER=${USER:-bench} HOST_ID=bench-host CHAINSINK_CACHE_DIR="$WORK/cache"
unset AUDIT_LOG_PATH AUDIT_SINK AUDIT_DURABILITY

# --- helpers -----------------------------------------------------------------

# Seconds since the epoch, to the microsecond.
now() { echo "$EPOCHREALTIME"; }

# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# calc EXPR: floating-point arithmetic
calc() { awk "BEGIN {v = $1; if (v >= 1000 || v <= -1000) printf \"%.0f\", v; else printf \"%.3g\", v}"; }

# seconds for one run of "$@" (output discarded)
timed() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    calc "$t1 - $t0"
}

# seconds for one run of "$@", whatever its exit status (verify may refuse
# what it is timed on)
timed_any() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>&1 || true
    t1=$(now)
    calc "$t1 - $t0"
}

# per_run_seconds N CMD...: wall time of N runs of CMD, divided by N
per_run() {
    local n=$1 t0 t1 i
    shift
    t0=$(now)
    for ((i = 0; i < n; i++)); do "$@" >/dev/null; done
    t1=$(now)
    calc "($t1 - $t0) / $n"
}

row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }

PAYLOAD='{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}'
LINE="{\"event_type\": \"task.completed\", \"workflow_id\": \"3f2a9c1d\", \"payload\": $PAYLOAD}"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chainsink: $CS; python3: $(python3 --version 2>&1); hyperfine: $(command -v hyperfine || echo 'not installed (own loop)')"
echo

# Warm the cache once.
"$CS" emit --log "$WORK/warm.jsonl" --type warm >/dev/null

echo "| measure | chainsink | anchor | ratio | goal |"
echo "|---|---|---|---|---|"

# --- 1. emit --stdin, durability none, against the Python reference no fsync -
python3 -c "import sys; sys.stdout.write((sys.argv[1] + '\n') * int(sys.argv[2]))" "$LINE" "$EVENTS" >"$WORK/events.jsonl"
cs_rates=() py_rates=()
for ((r = 0; r < ROUNDS; r++)); do
    rm -f "$WORK"/none.jsonl* "$WORK/py-none.jsonl"
    t=$(timed "$CS" emit --stdin --durability none --log "$WORK/none.jsonl" <"$WORK/events.jsonl")
    cs_rates+=("$(calc "$EVENTS / $t")")
    py_rates+=("$(python3 "$REF" bench "$WORK/py-none.jsonl" "$EVENTS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_per_second"])')")
done
cs=$(median "${cs_rates[@]}")
py=$(median "${py_rates[@]}")
row "\`emit --stdin\`, $EVENTS events, durability none (whole process)" "$(calc "$cs") ev/s" "Python reference, no fsync (in-process loop): $(calc "$py") ev/s" "$(calc "$cs / $py")×" "≥ 10×"

# --- 2. one emit process, warm cache, against a Python one-shot --------------
oneshot_cs() { "$CS" emit --log "$WORK/one.jsonl" --type task.completed --workflow-id 3f2a9c1d --payload "$PAYLOAD"; }
oneshot_py() { python3 "$REF" bench "$WORK/py-one.jsonl" 1 --fsync; }
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs $((ROUNDS * ONESHOT)) --export-json "$WORK/one.json" \
        "$CS emit --log $WORK/one.jsonl --type task.completed --workflow-id 3f2a9c1d --payload '$PAYLOAD'" \
        "python3 $REF bench $WORK/py-one.jsonl 1 --fsync" >/dev/null 2>&1
    read -r cs py < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(r[0]["median"], r[1]["median"])' "$WORK/one.json")
else
    cs_t=() py_t=()
    for ((r = 0; r < ROUNDS; r++)); do
        cs_t+=("$(per_run "$ONESHOT" oneshot_cs)")
        py_t+=("$(per_run "$ONESHOT" oneshot_py)")
    done
    cs=$(median "${cs_t[@]}")
    py=$(median "${py_t[@]}")
fi
warm=$cs
row "one \`emit\` process, warm cache (durability always)" "$(calc "$cs * 1000") ms" "Python one-shot, fsync: $(calc "$py * 1000") ms" "$(calc "$py / $cs")×" "≥ 20× (< 3 ms)"

# --- 3. one emit process, cold cache ------------------------------------------
# Timed the way the warm one-shot was, so the two compare.
if command -v hyperfine >/dev/null; then
    CHAINSINK_CACHE_DIR="$WORK/cold-cache" hyperfine -N --runs "$ROUNDS" \
        --prepare "rm -rf $WORK/cold-cache" --export-json "$WORK/cold.json" \
        "$CS emit --log $WORK/one.jsonl --type task.completed --workflow-id 3f2a9c1d --payload '$PAYLOAD'" >/dev/null 2>&1
    cold=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$WORK/cold.json")
else
    cold_t=()
    for ((r = 0; r < ROUNDS; r++)); do
        rm -rf "$WORK/cold-cache"
        cold_t+=("$(CHAINSINK_CACHE_DIR="$WORK/cold-cache" timed oneshot_cs)")
    done
    cold=$(median "${cold_t[@]}")
fi
row "one \`emit\`, cold (empty) cache" "$(calc "$cold * 1000") ms" "the warm one-shot above" "$(calc "$cold / $warm")× the warm time" "< 100 ms"

# --- 4. emit --stdin always, fed one line at a time, against Python fsync each
# Both are processes driven by the same loop (scripts/feed-lines.py: a line
# in, wait for its receipt, the next), so both pay the same pipe round trip;
# the Python reference's in-process loop (no round trip) is shown beside.
FEED="$REPO/scripts/feed-lines.py"
cs_rates=() py_rates=() loop_rates=()
for ((r = 0; r < ROUNDS; r++)); do
    rm -f "$WORK"/always.jsonl* "$WORK/py-always.jsonl" "$WORK/py-loop.jsonl"
    cs_rates+=("$(python3 "$FEED" "$LINES" "$LINE" -- "$CS" emit --stdin --durability always --log "$WORK/always.jsonl")")
    py_rates+=("$(python3 "$FEED" "$LINES" "$LINE" -- python3 "$REF" serve "$WORK/py-always.jsonl" --fsync)")
    loop_rates+=("$(python3 "$REF" bench "$WORK/py-loop.jsonl" "$LINES" --fsync | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_per_second"])')")
done
cs=$(median "${cs_rates[@]}")
py=$(median "${py_rates[@]}")
loop=$(median "${loop_rates[@]}")
row "\`emit --stdin --durability always\`, fed one line at a time (one fsync a record)" "$(calc "$cs") ev/s" "Python reference \`serve\`, fed the same way, fsync each: $(calc "$py") ev/s (its in-process loop, no pipe: $(calc "$loop") ev/s)" "$(calc "$cs / $py")×" "≥ 1×"

# --- 5. group commit: records per fsync with N synchronous emitters ----------
if [ "$GROUP" = 1 ]; then
    (cd "$REPO" && cargo bench -q -p chainsink-host --bench durability -- --group-commit 2>/dev/null) |
        awk -F'\t' '/^group-commit/ {printf "| group commit, %s synchronous emitters, `batch` | %s records per fsync (%s ev/s) | `always`: %s ev/s | %s× `always`; %s records per fsync per emitter | ≥ 0.7 records per fsync per emitter |\n", $2, $3, $4, $5, $6, $7}'
fi

# --- 6. verify: 1 thread against openssl, 2 threads against 1 -----------------
python3 -c "import sys; sys.stdout.write((sys.argv[1] + '\n') * int(sys.argv[2]))" "$LINE" "$VERIFY_RECORDS" |
    "$CS" emit --stdin --durability none --log "$WORK/big.jsonl" >/dev/null
size=$(stat -c %s "$WORK/big.jsonl")
cat "$WORK/big.jsonl" >/dev/null # page cache warm
v1=() v2=() ssl=()
sha256_of() {
    if command -v openssl >/dev/null; then openssl dgst -sha256 "$1"; else sha256sum "$1"; fi
}
for ((r = 0; r < ROUNDS; r++)); do
    v1+=("$(timed "$CS" verify --threads 1 "$WORK/big.jsonl")")
    ssl+=("$(timed sha256_of "$WORK/big.jsonl")")
    v2+=("$(timed "$CS" verify --threads 2 "$WORK/big.jsonl")")
done
v1=$(median "${v1[@]}")
v2=$(median "${v2[@]}")
ssl=$(median "${ssl[@]}")
row "verify $VERIFY_RECORDS records ($(calc "$size / 1e6") MB), 1 thread" "$(calc "$size / 1e6 / $v1") MB/s" "\`$(command -v openssl >/dev/null && echo 'openssl dgst -sha256' || echo sha256sum)\` of the file: $(calc "$size / 1e6 / $ssl") MB/s" "$(calc "$ssl / $v1")×" "≥ 0.8×"
row "verify, 2 threads against 1" "$(calc "$size / 1e6 / $v2") MB/s" "1 thread: $(calc "$size / 1e6 / $v1") MB/s" "$(calc "$v1 / $v2")×" "≥ 1.7× (idle machine)"

# --- 7. verify of one 200 MB line against one 50 MB line ----------------------
one_line_log() {
    python3 - "$1" "$2" <<'PY'
import hashlib, json, sys
path, size = sys.argv[1], int(sys.argv[2])
record = {
    "actor": {"host_id": "bench-host", "user": "bench"},
    "event_type": "big.line",
    "payload": {"blob": "x" * size},
    "prev_hash": "0" * 64,
    "timestamp": "2026-01-01T00:00:00.000000+00:00",
    "workflow_id": None,
}
record["hash"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
with open(path, "w") as fh:
    fh.write(json.dumps(record, sort_keys=True) + "\n")
PY
}
one_line_log "$WORK/l50.jsonl" $((LINE_MB * 250000))
one_line_log "$WORK/l200.jsonl" $((LINE_MB * 1000000))
t50=() t200=()
for ((r = 0; r < ROUNDS; r++)); do
    t50+=("$(timed_any "$CS" verify --threads 1 "$WORK/l50.jsonl")")
    t200+=("$(timed_any "$CS" verify --threads 1 "$WORK/l200.jsonl")")
done
t50=$(median "${t50[@]}")
t200=$(median "${t200[@]}")
row "verify a log of one $LINE_MB MB line against one of $(calc "$LINE_MB / 4") MB (both refused: longer than any record; the time is the scan)" "$(calc "$t200 * 1000") ms" "$(calc "$t50 * 1000") ms" "$(calc "$t200 / $t50")× the time for 4× the size" "4× (linear)"
