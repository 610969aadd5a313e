#!/usr/bin/env python3
"""Names the embedded default sink's functions in a perf profile of chainsink.

The embedded sink runs where it lies in the binary (`runtime::PRECOMPILED`),
so perf only sees offsets into that symbol. That blob is `default_sink.cwasm`
in the host's build directory: an ELF whose symbol table names each compiled
function `wasm[0]::function[N]` (its text starts at file offset 0x1000). N is
named by the name section of the same sink built unstripped. Prints each
function's share of the samples in the sink's code (docs/benchmarks.md,
issue 15).

    perf record -o perf.data chainsink emit --stdin ... < events.jsonl
    CARGO_ENCODED_RUSTFLAGS=-Ctarget-feature=+simd128 \\
      CARGO_PROFILE_GUEST_STRIP=false cargo rustc --locked --profile guest \\
      -p chainsink-guest-sink --target wasm32-unknown-unknown --crate-type cdylib \\
      --target-dir /tmp/gt
    scripts/sink-profile.py perf.data \\
      target/release/build/chainsink-host-*/out/default_sink.cwasm \\
      /tmp/gt/wasm32-unknown-unknown/guest/chainsink_guest_sink.wasm [TID]

Use the cwasm of the build that made the profiled binary (the newest one, by
modification time, when several build directories exist). TID limits it to
one thread (`perf report --sort pid` lists them).

The unstripped rebuild is not always the embedded module function for
function: the script compares their code (the embedded core module sits in
`guest-target/` beside the cwasm) and marks with `?` every name from the
first function whose size differs on, since from there a name may be a
neighbour's. (Stripping changes the code: at 7b793fe a rebuild in the very
same target dir still differed from function 70 on.)

Exact names: build the host with the embedded sink itself unstripped, so the
profiled code and the names come from one module (guest-build passes the
variable on to the guest's cargo), then give that module as the third
argument (it is the one beside the cwasm, so no `?` appears):

    touch guests/sink/src/lib.rs
    CARGO_PROFILE_GUEST_STRIP=false cargo build --release
    perf record -o perf.data target/release/chainsink emit --stdin ... < events.jsonl
    OUT=$(dirname $(ls -t target/release/build/chainsink-host-*/out/default_sink.cwasm | head -1))
    scripts/sink-profile.py perf.data $OUT/default_sink.cwasm \
      $OUT/guest-target/wasm32-unknown-unknown/guest/chainsink_guest_sink.wasm [TID]

Build again without the variable (touching the sink again) before
measuring anything else.
"""
import os

import bisect
import collections
import re
import subprocess
import sys


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def function_names(wasm):
    """Function index -> name, from the module's `name` section."""
    d = open(wasm, "rb").read()
    names, i = {}, 8
    while i < len(d):
        sid = d[i]
        size, i = leb(d, i + 1)
        end = i + size
        if sid == 0:
            n, j = leb(d, i)
            if d[j : j + n] == b"name":
                j += n
                while j < end:
                    sub = d[j]
                    ss, j = leb(d, j + 1)
                    if sub == 1:
                        count, k = leb(d, j)
                        for _ in range(count):
                            idx, k = leb(d, k)
                            ln, k = leb(d, k)
                            names[idx] = d[k : k + ln].decode()
                            k += ln
                    j += ss
        i = end
    return names


def body_sizes(wasm):
    """The size of each function body in the module's code section."""
    d = open(wasm, "rb").read()
    sizes, i = [], 8
    while i < len(d):
        sid = d[i]
        size, i = leb(d, i + 1)
        end = i + size
        if sid == 10:
            n, j = leb(d, i)
            for _ in range(n):
                sz, j = leb(d, j)
                sizes.append(sz)
                j += sz
        i = end
    return sizes


def imported_functions(wasm):
    """How many functions the module imports (they come first in its index space)."""
    d = open(wasm, "rb").read()
    i = 8
    while i < len(d):
        sid = d[i]
        size, i = leb(d, i + 1)
        if sid == 2:
            n, j = leb(d, i)
            funcs = 0
            for _ in range(n):
                for _ in range(2):
                    ln, j = leb(d, j)
                    j += ln
                kind = d[j]
                j += 1
                if kind == 0:
                    funcs += 1
                    _, j = leb(d, j)
                elif kind == 1:
                    j += 1
                    flags, j = leb(d, j)
                    _, j = leb(d, j)
                    if flags & 1:
                        _, j = leb(d, j)
                elif kind == 2:
                    flags, j = leb(d, j)
                    _, j = leb(d, j)
                    if flags & 1:
                        _, j = leb(d, j)
                else:
                    j += 2
            return funcs
        i += size
    return 0


def first_difference(cwasm, wasm):
    """The first function index whose code differs in size between the embedded core module
    and `wasm`, or None when they agree (or the embedded one cannot be found)."""
    core = os.path.join(
        os.path.dirname(cwasm), "guest-target", "wasm32-unknown-unknown", "guest",
        os.path.basename(wasm),
    )
    if not os.path.exists(core):
        print(f"(cannot compare with the embedded module: no {core})", file=sys.stderr)
        return None
    a, b = body_sizes(core), body_sizes(wasm)
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return imported_functions(wasm) + k
    return None if len(a) == len(b) else imported_functions(wasm) + min(len(a), len(b))


def compiled_functions(cwasm):
    """(start, size, symbol) of each function in the cwasm's text, sorted."""
    out = subprocess.run(["readelf", "-sW", cwasm], capture_output=True, text=True, check=True)
    syms = []
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC":
            syms.append((int(f[1], 16), int(f[2]), f[7]))
    return sorted(syms)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    data, cwasm, wasm = argv[1:4]
    tid = argv[4] if len(argv) > 4 else None
    cmd = ["perf", "script", "-G", "-i", data, "-F", "ip,sym,symoff"]
    if tid:
        cmd += ["--tid", tid]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    offsets = [int(m.group(1), 16) for m in re.finditer(r"PRECOMPILED\S*\+0x([0-9a-f]+)", out)]
    if not offsets:
        print("no samples in runtime::PRECOMPILED", file=sys.stderr)
        return 1
    syms, names = compiled_functions(cwasm), function_names(wasm)
    differ = first_difference(cwasm, wasm)
    if differ is not None:
        print(f"(the rebuild differs from the embedded module from function {differ} on: "
              "names marked ? may be a neighbour's)")
    starts = [s[0] for s in syms]
    count = collections.Counter()
    for off in offsets:
        text = off - 0x1000
        k = bisect.bisect_right(starts, text) - 1
        start, size, sym = syms[k] if k >= 0 else (0, 0, "?")
        m = re.fullmatch(r"wasm\[0\]::function\[(\d+)\]", sym)
        if k < 0 or text >= start + size:
            name = "(between functions)"
        elif m:
            index = int(m.group(1))
            name = names.get(index, sym)
            if differ is not None and index >= differ:
                name = "? " + name
        else:
            name = sym
        count[name] += 1
    print(f"{len(offsets)} samples in the sink's code")
    for name, n in count.most_common(25):
        print(f"{100 * n / len(offsets):5.1f}%  {name[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
