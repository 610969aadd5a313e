#!/usr/bin/env python3
"""The Python check shown in docs/audit-log.md ("Verifying"), run by the
snippet test on a chained, a chain-off and a tampered log:
python3 verify.py LOG"""
import hashlib, json, sys

prev, n = "0" * 64, 0
with open(sys.argv[1], "rb") as f:
    for n, raw in enumerate(f, 1):
        assert raw.endswith(b"\n"), f"line {n}: missing newline"
        rec = json.loads(raw)
        assert json.dumps(rec, sort_keys=True).encode() + b"\n" == raw, f"line {n}: not canonical"
        assert rec.get("seq", n) == n, f"line {n}: seq mismatch"
        if "hash" not in rec:  # written with the chain off: nothing to link
            prev = None
            continue
        stored = rec.pop("hash")
        digest = hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()
        assert digest == stored, f"line {n}: hash mismatch"
        assert rec["prev_hash"] == prev, f"line {n}: broken link"
        prev = stored
print(f"OK {n} records" + (f", head {prev}" if prev else ", no hash chain"))
