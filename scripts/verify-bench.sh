#!/usr/bin/env bash
# `chainsink verify` against `openssl dgst -sha256` of the same file, side by
# side in one run (docs/benchmarks.md, "Verify"): a log of RECORDS records
# (default 1,000,000, about 530 MB) written by `chainsink emit --stdin`, page
# cache warm; ROUNDS rounds (default 5), each running openssl, verify with 1
# thread and verify with 2 threads back to back; medians of the per-round
# ratios. Then verify of one 50 MB line against one 200 MB line (linearity).
# Prints the load average before and after, since the machine may be shared.
# Usage: scripts/verify-bench.sh [RECORDS] [ROUNDS]
# CHAINSINK=path uses that binary instead of building one; LINE_MB sets the
# shorter long line's size (default 50; the other is 4 times that).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
rounds="${2:-5}"
if [ -n "${CHAINSINK:-}" ]; then
  bin="$CHAINSINK"
else
  cargo build --release -q -p chainsink
  bin="$PWD/target/release/chainsink"
fi
line_mb="${LINE_MB:-50}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
python3 -c "
import json
for i in range($n):
    print(json.dumps({'event_type': 'task.completed', 'workflow_id': '3f2a9c1d',
                      'payload': {'team': 'audit-team', 'task_subject': 'Analyse repository structure',
                                  'task_id': 'task-3f2a9c1d-%d' % i, 'exit_code': 0,
                                  'duration_seconds': i % 977 / 10, 'stdout_bytes': i * 7,
                                  'workflow_id': '3f2a9c1d'}}))
" | USER=bench HOST_ID=bench-host "$bin" emit --stdin --durability none --log "$dir/big.jsonl" > /dev/null
python3 - "$bin" "$dir" "$rounds" "$line_mb" <<'EOF'
import os, resource, statistics, subprocess, sys, time

bin, d, rounds, line_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = os.path.join(d, "big.jsonl")
size = os.path.getsize(log)

def run(cmd, ok=(0,)):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert p.returncode in ok, (cmd, p.returncode, p.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss, p.stdout.decode().strip()

print(f"log: {size / 1e6:.0f} MB, {sum(1 for _ in open(log, 'rb'))} records; "
      f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
with open(log, "rb") as f:  # warm the page cache
    while f.read(1 << 24):
        pass
cmds = {
    "openssl dgst -sha256": ["openssl", "dgst", "-sha256", log],
    "verify --threads 1": [bin, "verify", "--threads", "1", log],
    "verify --threads 2": [bin, "verify", "--threads", "2", log],
}
walls = {k: [] for k in cmds}
cpus = {k: [] for k in cmds}
for r in range(rounds):
    for name, cmd in cmds.items():
        wall, cpu, rss, out = run(cmd)
        walls[name].append(wall)
        cpus[name].append(cpu)
        if r == 0 and name.startswith("verify"):
            print(f"{name}: {out}")
print(f"| command | median wall | MB/s | median CPU (user + sys) |\n|---|---|---|---|")
for name, w in walls.items():
    m = statistics.median(w)
    print(f"| {name} | {m:.3f} s | {size / m / 1e6:,.0f} | {statistics.median(cpus[name]):.3f} s |")
ssl = walls["openssl dgst -sha256"]
one = [o / v for o, v in zip(ssl, walls["verify --threads 1"])]
two = [o / v for o, v in zip(ssl, walls["verify --threads 2"])]
scale = [a / b for a, b in zip(walls["verify --threads 1"], walls["verify --threads 2"])]
fmt = lambda xs: f"{statistics.median(xs):.2f} (rounds: {', '.join(f'{x:.2f}' for x in xs)})"
print(f"verify 1 thread / openssl (speed ratio, goal >= 0.8): {fmt(one)}")
print(f"verify 2 threads / openssl: {fmt(two)}")
print(f"verify 2 threads / 1 thread (goal >= 1.7 on an idle machine): {fmt(scale)}")
cpu_one = [o / v for o, v in zip(cpus["openssl dgst -sha256"], cpus["verify --threads 1"])]
print(f"CPU time, openssl / verify 1 thread (less sensitive to load): {fmt(cpu_one)}")
_, _, rss, _ = run([bin, "verify", "--threads", "2", log])
print(f"peak RSS of any verify so far: {rss / 1024:.1f} MB (ru_maxrss of the largest child)")

# One long line, LINE_MB and 4 times that: not a record, streamed past; time should grow 4x.
lines = {}
sizes = (line_mb, 4 * line_mb)
for mb in sizes:
    p = os.path.join(d, f"long{mb}.jsonl")
    with open(p, "wb") as f:
        f.write(b'{"a": "')
        block = b"x" * (1 << 20)
        for _ in range(mb):
            f.write(block)
        f.write(b'"}\n')
    lines[mb] = min(run([bin, "verify", "--threads", "1", p], ok=(1,))[0] for _ in range(3))
    os.remove(p)
a, b = sizes
print(f"one {a} MB line: {lines[a]:.3f} s; one {b} MB line: {lines[b]:.3f} s; "
      f"ratio {lines[b] / lines[a]:.2f} (linear: 4)")
print(f"load average after: {os.getloadavg()}")
EOF
