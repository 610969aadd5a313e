//! What every `chainsink` process pays before it does anything (issue 15).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Name and size of every section of the ELF64 (little-endian) file at
/// `path`, read from its section header table.
fn elf_sections(path: &str) -> Vec<(String, u64)> {
    let file = File::open(path).unwrap();
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).unwrap();
    assert_eq!(
        &header[..6],
        b"\x7fELF\x02\x01",
        "{path}: not a little-endian ELF64 file"
    );
    let u16_at = |b: &[u8], i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&header, 0x28),
        u16_at(&header, 0x3a),
        u16_at(&header, 0x3c),
        u16_at(&header, 0x3e),
    );
    let mut table = vec![0u8; (shentsize * shnum) as usize];
    file.read_exact_at(&mut table, shoff).unwrap();
    let entry = |i: u64| &table[(i * shentsize) as usize..((i + 1) * shentsize) as usize];
    let strings = entry(shstrndx);
    let mut names = vec![0u8; u64_at(strings, 0x20) as usize];
    file.read_exact_at(&mut names, u64_at(strings, 0x18))
        .unwrap();
    (0..shnum)
        .map(|i| {
            let e = entry(i);
            let start = u32::from_le_bytes(e[..4].try_into().unwrap()) as usize;
            let len = names[start..].iter().position(|&b| b == 0).unwrap();
            let name = String::from_utf8_lossy(&names[start..start + len]).into_owned();
            (name, u64_at(e, 0x20))
        })
        .collect()
}

/// The dynamic loader applies the binary's relative relocations from a
/// packed bitmap (`.relr.dyn`) when `build.rs` found a linker that packs
/// them, leaving few in the 24-byte-per-entry table (`.rela.dyn`); before,
/// the table held 45,000 entries, 0.35 ms of every process.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_binary_packs_its_relative_relocations_when_the_linker_can() {
    let exe = env!("CARGO_BIN_EXE_chainsink");
    let sections = elf_sections(exe);
    let size = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    let packed = env!("CHAINSINK_PACKED_RELOCS") == "1";
    assert_eq!(
        size(".relr.dyn").is_some(),
        packed,
        "build.rs {} the linker flag, but {exe} {} a .relr.dyn section",
        if packed { "passed" } else { "did not pass" },
        if packed { "has no" } else { "has" },
    );
    if packed {
        let rela = size(".rela.dyn").unwrap_or(0) / 24;
        assert!(
            rela < 1_000,
            "{rela} relocations left unpacked in .rela.dyn"
        );
    }
}

/// A one-shot `emit` runs the built-in sink's precompiled code where it lies
/// in the binary (x86-64): nothing copied, nothing read from or written to
/// the cache directory. Elsewhere it is copied out of the binary.
#[test]
fn a_one_shot_emit_runs_the_built_in_sink_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let cache = dir.path().join("cache");
    let out = crate::common::bin()
        .env("CHAINSINK_LOG", "debug")
        .env("CHAINSINK_CACHE_DIR", &cache)
        .args(["emit", "--type", "t", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let expected = if cfg!(target_arch = "x86_64") {
        "the precompiled default sink runs in place from the binary"
    } else {
        "the precompiled default sink is copied out of the binary"
    };
    assert!(stderr.contains(expected), "{stderr}");
    let cached: Vec<_> = walk(&cache);
    assert!(cached.is_empty(), "the cache holds {cached:?}");
    assert_eq!(crate::common::lines(&log).len(), 1);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
