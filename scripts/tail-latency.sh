#!/usr/bin/env bash
# `chainsink tail -f` latency: the time from an append (one write(2) of a
# valid, chained record) to its line on tail's stdout, over N appends spaced
# 10 to 50 ms apart at random, with the median, p99 and max; then the CPU
# tail uses idling for 3 s (docs/benchmarks.md, "tail -f latency").
# Usage: scripts/tail-latency.sh [N]   (default 200; uses `chainsink` on
# PATH, or $CHAINSINK). The snippet test runs it with N=20.
set -euo pipefail
n="${1:-200}"
bin="${CHAINSINK:-chainsink}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
USER="${USER:-bench}" "$bin" emit --log "$dir/audit.jsonl" --durability none --type bench.started --payload '{}' > /dev/null
python3 - "$bin" "$dir/audit.jsonl" "$n" <<'PY'
import datetime, hashlib, json, os, random, statistics, subprocess, sys, time

bin, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(log, "rb") as f:
    last = json.loads(f.read().splitlines()[-1])
tail = subprocess.Popen([bin, "tail", "-f", "-n", "1", "-o", "jsonl", log], stdout=subprocess.PIPE)
tail.stdout.readline()  # the last record: tail has read the log to its end
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
ms = []
for i in range(n):
    rec = {k: v for k, v in last.items() if k != "hash"}
    rec.update(seq=last["seq"] + 1, prev_hash=last["hash"], payload={"i": i},
               timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"))
    rec["hash"] = hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()
    line = json.dumps(rec, sort_keys=True).encode() + b"\n"
    time.sleep(random.uniform(0.010, 0.050))
    t0 = time.monotonic()
    os.write(fd, line)
    got = tail.stdout.readline()
    ms.append((time.monotonic() - t0) * 1000)
    assert got == line, f"tail printed {got!r}, expected {line!r}"
    last = rec

def cpu_ticks():
    with open(f"/proc/{tail.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

before = cpu_ticks()
time.sleep(3)
idle_ms = (cpu_ticks() - before) * 1000 / os.sysconf("SC_CLK_TCK")
tail.terminate()
tail.wait()
ms.sort()
p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
print(f"tail -f, {n} appends: append -> printed median {statistics.median(ms):.2f} ms, "
      f"p99 {p99:.2f} ms, max {ms[-1]:.2f} ms; CPU while idle for 3 s: {idle_ms:.0f} ms")
PY
