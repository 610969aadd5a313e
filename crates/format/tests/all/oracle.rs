//! The Python algorithm, as the oracle for whole lines and whole logs.
//!
//! `RULES` is what a valid record is, written in Python from the definition (not from our code):
//! `json.loads` reads the line; its bytes must be exactly `json.dumps(obj, sort_keys=True)`; the
//! hash must be `sha256(json.dumps(obj without "hash", sort_keys=True))`; plus our documented
//! limits and fields (docs/audit-log.md, "Limits and what counts as a valid record"): at most
//! 1 MiB, nesting at most 995, no NaN/Infinity, the record fields. Python's recursion limit is
//! raised so that only the documented depth limit decides (the default-limit numbers are checked
//! on their own in `canonical_oracle::python_depth_and_digit_limits_are_as_documented`).

use crate::common::python;

pub const RULES: &str = r#"
import json, hashlib, sys, re
sys.setrecursionlimit(20000)
MAX_DEPTH = 995
MAX_BYTES = 1 << 20
HEX = re.compile(r"[0-9a-f]{64}\Z")

def no_constants(c):
    raise ValueError("not JSON: " + c)

def depth(v):
    d, stack = 0, [(v, 1)]
    while stack:
        x, k = stack.pop()
        if isinstance(x, dict):
            d = max(d, k)
            stack.extend((y, k + 1) for y in x.values())
        elif isinstance(x, list):
            d = max(d, k)
            stack.extend((y, k + 1) for y in x)
    return d

def canon(o):
    return json.dumps(o, sort_keys=True)

def record(b):
    """The record a line holds, or None when the line is not a valid record."""
    if len(b) > MAX_BYTES:
        return None
    try:
        s = b.decode("utf-8")
        obj = json.loads(s, parse_constant=no_constants)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or depth(obj) > MAX_DEPTH:
        return None
    if s != canon(obj):
        return None
    if "hash" in obj:
        body = {k: v for k, v in obj.items() if k != "hash"}
        if obj["hash"] != hashlib.sha256(canon(body).encode()).hexdigest():
            return None
    for k, t in (("actor", dict), ("event_type", str), ("payload", dict), ("timestamp", str)):
        if not isinstance(obj.get(k), t):
            return None
    if "workflow_id" not in obj or not (obj["workflow_id"] is None or isinstance(obj["workflow_id"], str)):
        return None
    if ("hash" in obj) != ("prev_hash" in obj):
        return None
    for k in ("hash", "prev_hash"):
        if k in obj and not (isinstance(obj[k], str) and HEX.match(obj[k])):
            return None
    if "seq" in obj and (type(obj["seq"]) is not int or not 1 <= obj["seq"] < 2 ** 64):
        return None
    return obj

def covers(rec, offset, line):
    p = rec.get("payload", {})
    return (rec.get("event_type") == "chain.recovered"
            and p.get("torn_offset") == offset and p.get("torn_length") == len(line)
            and p.get("torn_sha256") == hashlib.sha256(line).hexdigest())

def log_verdict(data, skip):
    """valid RECORDS HEAD / tail / tampered LINE. `skip`: indexes of lines our side accepted as
    recovered torn writes; each must be followed by a chain.recovered record covering it."""
    lines = data.split(b"\n")
    tail = lines.pop()
    prev, records, chained, offset = "0" * 64, 0, None, 0
    for i, line in enumerate(lines):
        if i in skip:
            nxt = record(lines[i + 1]) if i + 1 < len(lines) else None
            if nxt is None or not covers(nxt, offset, line):
                return "tampered %d" % i
            offset += len(line) + 1
            continue
        offset += len(line) + 1
        obj = record(line)
        if obj is None:
            return "tampered %d" % i
        ch = "hash" in obj
        if chained is None:
            chained = ch
        if ch != chained or (ch and obj["prev_hash"] != prev):
            return "tampered %d" % i
        if "seq" in obj and obj["seq"] != records + 1:
            return "tampered %d" % i
        if ch:
            prev = obj["hash"]
        records += 1
    if tail:
        return "tail %d" % len(lines)
    return "valid %d %s" % (records, prev if chained else "-")
"#;

/// One verdict a line: `1` valid record, `0` not. Input: one hex-encoded line each.
const LINES: &str = r#"
for h in sys.stdin.read().split():
    sys.stdout.write("1\n" if record(bytes.fromhex(h)) is not None else "0\n")
"#;

/// Python's verdict on each line (true: a valid record).
pub fn python_line_verdicts(lines: &[Vec<u8>]) -> Vec<bool> {
    let input: String = lines.iter().map(|l| hex(l) + "\n").collect();
    let out = python(&format!("{RULES}{LINES}"), &input);
    let v: Vec<bool> = out.lines().map(|l| l == "1").collect();
    assert_eq!(v.len(), lines.len(), "python answered every line");
    v
}

/// One log a line: `<hex log> <comma-separated skip indexes or ->`.
const LOGS: &str = r#"
for row in sys.stdin.read().split("\n"):
    if not row:
        continue
    h, skip = row.split(" ")
    skip = set() if skip == "-" else {int(x) for x in skip.split(",")}
    sys.stdout.write(log_verdict(bytes.fromhex(h[1:]), skip) + "\n")
"#;

/// Python's verdict on each log (see `log_verdict` in [`RULES`]).
pub fn python_log_verdicts(logs: &[(Vec<u8>, Vec<usize>)]) -> Vec<String> {
    let input: String = logs
        .iter()
        .map(|(log, skip)| {
            let skip = if skip.is_empty() {
                "-".to_string()
            } else {
                skip.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            // A leading `x` keeps an empty log's hex non-empty.
            format!("x{} {skip}\n", hex(log))
        })
        .collect();
    let out = python(&format!("{RULES}{LOGS}"), &input);
    let v: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(v.len(), logs.len(), "python answered every log");
    v
}

pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for &c in b {
        s.push(char::from(H[usize::from(c >> 4)]));
        s.push(char::from(H[usize::from(c & 15)]));
    }
    s
}
