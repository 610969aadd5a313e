//! `check_lines` (the batch API the verifier uses, which hashes lines two at a time) against
//! `check_line` on each line, in both modes: the same verdict and the same error for every line,
//! whatever its neighbours. Lines of many lengths (so paired hashes run out at different blocks),
//! chained and not, with damage anywhere: a damaged line must fail alone, never its partner.

use chainsink_format::verify::{LineError, LineInfo, Mode, check_line, check_lines};
use chainsink_format::{Hash, chain, json};

use crate::common::event;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `n` sealed lines (without `\n`) with payloads of random size and content.
fn log(rng: &mut Rng, n: usize, chained: bool) -> Vec<Vec<u8>> {
    let pieces = [
        "x",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\\"",
        "\\n",
        "abcdefghijklmnopqrstuvwxyz0123456789",
        " ",
    ];
    let mut prev = Hash::GENESIS;
    (0..n)
        .map(|i| {
            let mut text = String::new();
            for _ in 0..rng.below(40) {
                text.push_str(pieces[rng.below(pieces.len())]);
            }
            let payload = format!(
                r#"{{"i": {i}, "ratio": {}.5, "text": "{text}", "list": [1, null, {{"k": "v"}}]}}"#,
                rng.below(1000)
            );
            let map = json::parse_object(&payload).unwrap();
            let mut out = Vec::new();
            if let Some(h) = chain::seal(
                &event(&map, "step.finished"),
                i as u64 + 1,
                chained.then_some(&prev),
                &mut out,
            )
            .unwrap()
            {
                prev = h;
            }
            out.pop();
            out
        })
        .collect()
}

/// The results of `check_lines` and of `check_line` on each line agree; returns them.
fn agree(lines: &[Vec<u8>], mode: Mode) -> Vec<Result<LineInfo, LineError>> {
    let mut batch = Vec::new();
    check_lines(lines.iter().map(Vec::as_slice), mode, &mut batch);
    assert_eq!(batch.len(), lines.len());
    for (line, got) in lines.iter().zip(&batch) {
        assert_eq!(
            got,
            &check_line(line, mode),
            "{mode:?}: {}",
            String::from_utf8_lossy(line)
        );
    }
    batch
}

#[test]
fn batch_matches_one_line_at_a_time() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..60 {
        let chained = round % 4 != 3;
        let n = 1 + rng.below(40);
        let mut lines = log(&mut rng, n, chained);
        let clean = lines.clone();
        // Damage a few lines: a flipped or replaced byte, a cut, a doubled line.
        let mut damaged = Vec::new();
        for _ in 0..rng.below(4) {
            let k = rng.below(lines.len());
            let line = &mut lines[k];
            match rng.below(4) {
                0 => {
                    let at = rng.below(line.len());
                    line[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let at = rng.below(line.len());
                    line[at] = b"\"\\ 0}],:{[-.eE9a"[rng.below(16)];
                }
                2 => line.truncate(rng.below(line.len())),
                _ => {
                    let copy = line.clone();
                    line.extend_from_slice(&copy);
                }
            }
            damaged.push(k);
        }
        for mode in [Mode::Fast, Mode::Strict] {
            let results = agree(&lines, mode);
            // Every undamaged line is still a valid record, whatever line it was hashed with.
            for (k, r) in results.iter().enumerate() {
                if !damaged.contains(&k) || lines[k] == clean[k] {
                    assert!(r.is_ok(), "line {k}: {r:?}");
                }
            }
        }
    }
}

#[test]
fn a_hash_mismatch_is_reported_for_its_own_line_only() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let lines = log(&mut rng, 9, true);
    for k in 0..lines.len() {
        let mut bad = lines.clone();
        // A digit of the payload's "i" changes what the line says, not its form.
        let at = bad[k]
            .windows(5)
            .position(|w| w == b"\"i\": ")
            .expect("the payload's i")
            + 5;
        bad[k][at] = if bad[k][at] == b'7' { b'8' } else { b'7' };
        let results = agree(&bad, Mode::Fast);
        for (j, r) in results.iter().enumerate() {
            if j == k {
                assert!(
                    matches!(r, Err(LineError::HashMismatch { .. })),
                    "line {j}: {r:?}"
                );
            } else {
                assert!(r.is_ok(), "line {j} of {k}: {r:?}");
            }
        }
    }
}
