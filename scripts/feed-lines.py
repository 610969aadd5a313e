#!/usr/bin/env python3
"""Feeds a line-at-a-time emitter and times it: one line in, wait for its
answer line, then the next, as a caller that needs each receipt before going
on does.

    feed-lines.py COUNT LINE -- CMD [ARGS...]

Starts CMD, writes LINE (plus a newline) COUNT times, reading one answer line
after each, and prints events per second (the loop only: process start and
exit are not counted). Both `chainsink emit --stdin` and the Python
reference's `serve` mode are driven by this same loop in
`scripts/compare.sh`, so both pay the same pipe round trip per event.
"""

import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    count, line, cmd = int(argv[1]), (argv[2] + "\n").encode(), argv[4:]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    answers = child.stdout
    start = time.perf_counter()
    for i in range(count):
        child.stdin.write(line)
        answer = answers.readline()
        if not answer:
            print(f"{cmd[0]}: no answer to line {i + 1}", file=sys.stderr)
            return 1
    secs = time.perf_counter() - start
    child.stdin.close()
    if child.wait() != 0:
        print(f"{cmd[0]}: exit status {child.returncode}", file=sys.stderr)
        return 1
    print(f"{count / secs:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
