#!/usr/bin/env bash
# Sinks in Python and JavaScript against the default (Rust) sink, all loaded
# the same way (`--sink FILE`, compiled by the host and cached): component
# size, first compile, load from the cache, peak memory of a process with one
# instance, and emit throughput; plus the Python SDK hashing with the host's
# `digest.sha256` import (its default) against hashlib (docs/benchmarks.md, "Sinks in
# Python and JavaScript"). Every figure is a median of ROUNDS runs, all taken
# in this one run of the script.
# Usage: scripts/sink-lang-bench.sh [EVENTS] [ROUNDS]   (default: 2000 5)
# Needs python3 with pip, node and npm; installs the pinned toolchains into a
# temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-2000}"
rounds="${2:-5}"
cargo build --release -q -p chainsink
bin="$PWD/target/release/chainsink"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Toolchains, pinned as the templates pin them.
python3 -m pip install --quiet --disable-pip-version-check --target "$work/pytools" componentize-py==0.25.1
npm install --silent --no-audit --no-fund --prefix "$work/jstools" @bytecodealliance/componentize-js@0.23.0

# The three sinks, from the templates, built with their documented commands.
"$bin" export-sink "$work/rust.wasm"
"$bin" new-sink --lang python "$work/python"
"$bin" new-sink --lang js "$work/js"
(cd "$work/python" && PYTHONPATH="$work/pytools" "$work/pytools/bin/componentize-py" \
  -d wit -w audit-sink componentize app -o sink.wasm)
cp "$work/python/sink.wasm" "$work/python.wasm"
# The same Python sink, hashing with hashlib instead of the host's digest import.
sed -i 's/export(AppSink())/export(AppSink(), host_digest=False)/' "$work/python/app.py"
(cd "$work/python" && PYTHONPATH="$work/pytools" "$work/pytools/bin/componentize-py" \
  -d wit -w audit-sink componentize app -o sink.wasm)
cp "$work/python/sink.wasm" "$work/python-hashlib.wasm"
ln -s "$work/jstools/node_modules" "$work/js/node_modules"
(cd "$work/js" && npm run --silent build)
cp "$work/js/sink.wasm" "$work/js.wasm"

python3 - "$bin" "$work" "$events" "$rounds" <<'EOF'
import json, os, shutil, statistics, subprocess, sys, time

bin, work, events, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = "".join(
    json.dumps({"event_type": "task.completed", "workflow_id": "wf-%d" % (i % 7),
                "payload": {"i": i, "task_subject": "Analyse repository structure",
                            "duration_seconds": i / 1000, "team": "audit-team"}}) + "\n"
    for i in range(events)
)

def run(sink, cache, log, stdin=None, args=()):
    """Wall seconds and peak RSS (KiB) of one chainsink process."""
    env = dict(os.environ, CHAINSINK_CACHE_DIR=cache, USER="bench", HOST_ID="bench")
    cmd = ["/usr/bin/time", "-f", "%M", bin, "emit", "--sink", sink, "--log", log,
           "--durability", "none", *args]
    start = time.perf_counter()
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr}")
    return wall, int(out.stderr.strip().splitlines()[-1])

rows = []
for name in ["rust", "python", "python-hashlib", "js"]:
    sink = f"{work}/{name}.wasm"
    cold, warm, rss, emit = [], [], [], []
    for r in range(rounds):
        cache = f"{work}/cache-{name}-{r}"
        log = f"{work}/{name}-{r}.jsonl"
        cold.append(run(sink, cache, log, args=["--type", "x"])[0])
        w, m = run(sink, cache, log, args=["--type", "x"])
        warm.append(w)
        rss.append(m)
        e, _ = run(sink, cache, f"{work}/{name}-{r}-many.jsonl", stdin=lines, args=["--stdin"])
        emit.append(e)
        shutil.rmtree(cache)
    med = statistics.median
    rows.append((name, os.path.getsize(sink), med(cold), med(warm), med(rss),
                 events / (med(emit) - med(warm))))

print(f"{events} events for throughput, medians of {rounds} rounds; load average "
      + open("/proc/loadavg").read().split()[0])
print("| sink | component | first run (compile + 1 emit) | run from the cache (load + 1 emit) "
      "| peak RSS, one instance | emit, events/s |")
print("|---|---|---|---|---|---|")
for name, size, cold, warm, rss, eps in rows:
    print(f"| {name} | {size / 1e6:.1f} MB | {cold * 1000:.0f} ms | {warm * 1000:.0f} ms "
          f"| {rss / 1024:.0f} MiB | {eps:,.0f} |")
EOF
