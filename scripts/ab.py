#!/usr/bin/env python3
"""Times two or more chainsink binaries on the same command, interleaved
round by round, so load on a shared machine hits each alike; prints the
median wall time of each and its ratio to the first.

    ab.py ROUNDS BIN_A BIN_B [BIN ...] -- ARGS...

Each round runs `BIN ARGS` once for every binary, in order (stdout and
stderr discarded; a non-zero exit status stops the script). Stdin is
empty unless `--stdin FILE` comes before `--`:

    ab.py 3 old/chainsink new/chainsink --stdin events.jsonl -- \
        emit --stdin --durability none --log /tmp/ab.jsonl

With `--fresh PATH` (repeatable) those paths are deleted before every run
(the log an `emit` appends to, with its side files).
"""

import glob
import os
import statistics
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    head, args = argv[1 : argv.index("--")], argv[argv.index("--") + 1 :]
    rounds, rest = int(head[0]), head[1:]
    stdin, fresh, bins = None, [], []
    i = 0
    while i < len(rest):
        if rest[i] == "--stdin":
            stdin, i = rest[i + 1], i + 2
        elif rest[i] == "--fresh":
            fresh.append(rest[i + 1])
            i += 2
        else:
            bins.append(rest[i])
            i += 1
    if len(bins) < 2:
        print("give at least two binaries", file=sys.stderr)
        return 2
    times: dict[str, list[float]] = {b: [] for b in bins}
    for _ in range(rounds):
        for b in bins:
            for pattern in fresh:
                for path in glob.glob(pattern + "*"):
                    os.remove(path)
            with open(stdin or os.devnull, "rb") as inp:
                start = time.perf_counter()
                subprocess.run([b, *args], stdin=inp, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
                times[b].append(time.perf_counter() - start)
    first = statistics.median(times[bins[0]])
    print(f"load average: {os.getloadavg()[0]:.2f}; {rounds} rounds; `{' '.join(args)}`")
    for b in bins:
        m = statistics.median(times[b])
        rounds_s = ", ".join(f"{t:.3f}" for t in times[b])
        print(f"{b}: median {m:.3f} s ({first / m:.2f}x the first; rounds {rounds_s})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
