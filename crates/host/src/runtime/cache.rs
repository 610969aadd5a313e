//! The on-disk cache of compiled (precompiled) sink components.
//!
//! Compiling a component with Cranelift takes tens of milliseconds; loading
//! the machine code wasmtime produced takes a fraction of one. So the first
//! load of a component compiles it and stores the result, and later loads,
//! in this process or the next, read it back.
//!
//! # Layout and keys
//!
//! ```text
//! <cache dir>/<engine key>/<component sha256>.cwasm
//! ```
//!
//! The build's precompiled default sink is never here: it runs from the
//! binary (`super::code_memory`).
//!
//! The *engine key* is SHA-256 over [`Engine::precompile_compatibility_hash`]
//! (wasmtime's version, the target, and every setting that changes code:
//! fuel, epochs, memory reservation...), so engines that could not load each
//! other's code never share entries. The *component sha256* is of the
//! component's own bytes, so a changed `.wasm` never hits a stale entry.
//!
//! # Never trusted blindly
//!
//! [`Component::deserialize`] is `unsafe`: it maps the bytes as executable
//! code, so a crafted file is arbitrary code execution. An entry is used only
//! when all of this holds; anything else is recompiled (and the entry
//! rewritten), never loaded:
//!
//! - the directory and the file belong to the current user and are not
//!   writable by group or others (the directories are created `0700`, the
//!   files `0600`): only we could have written them;
//! - the file is a regular file with our header: magic, format version, the
//!   engine key and component hash it was stored under, the payload length
//!   (which must be the length read), and the payload's CRC-32, which must
//!   match the bytes read;
//! - wasmtime's own checks in `deserialize` (its version and settings) pass.
//!
//! ## Why ownership, not a hash, is the guard
//!
//! What stops a forged entry is the first rule: a file owned by this user,
//! in a directory only this user can write, was written by this user (or by
//! root). Anyone who can write such a file can already run code as this
//! user, so loading it gives them nothing new. A checksum in the file cannot
//! add to that: it is not keyed, so whoever can write the file can write a
//! matching checksum too. (Entries format 1 stored a SHA-256 of the payload
//! and checked it at every load: 11% of a warm one-shot `chainsink emit`,
//! for no protection the ownership check did not already give.) There is no
//! second path that loads an entry someone else could have written, with or
//! without a hash: such an entry is refused and recompiled.
//!
//! What remains is accidental damage, and that is what the rest catches: a
//! torn write cannot be seen (entries are renamed into place whole), a
//! truncated or padded file fails the length check, and a flipped bit fails
//! the CRC-32 (which detects every burst error up to 32 bits, at
//! memory speed, about a tenth of SHA-256's cost).
//!
//! Entries are written to a temporary file in the same directory and renamed
//! into place, so readers see a whole entry or none, and concurrent writers
//! (two processes compiling the same sink) are harmless.

use std::fs::{self, File, OpenOptions};
use std::hash::{Hash as _, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chainsink_format::Hash;
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every cache entry.
const MAGIC: &[u8; 8] = b"CSKCWASM";
/// Version of the entry layout below; bump it when the layout changes
/// (1 had the payload's SHA-256 where 2 has its CRC-32).
const FORMAT_VERSION: u32 = 2;
/// magic, version, payload CRC-32, engine key, component hash, payload length.
const HEADER_LEN: usize = 8 + 4 + 4 + 32 + 32 + 8;
/// Larger entries are not read (no sink compiles to anything near this).
const MAX_ENTRY: u64 = 1 << 30;

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory could not be created or read.
    #[error(
        "cannot create the component cache directory {dir}: {source}; choose another with \
         --cache-dir, or run with --no-cache"
    )]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The directory could be written by someone else, so its entries could
    /// be forged: loading them would run their code.
    #[error(
        "refusing to use the component cache directory {dir}: {reason}; compiled code is only \
         loaded from a directory only you can write (fix it with `chmod go-w {dir}`, choose \
         another with --cache-dir, or run with --no-cache)"
    )]
    Untrusted {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// How a component was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry; nothing was compiled.
    Hit,
    /// Not in the cache: compiled, and stored when `stored`.
    Compiled {
        /// Whether the new entry was written (failures are logged, not fatal).
        stored: bool,
    },
    /// An entry existed but was not used (corrupt, truncated, forged, from
    /// another engine...): compiled again and the entry replaced.
    Recompiled {
        /// Why the entry was refused.
        reason: String,
    },
}

/// A directory of compiled components; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// Opens the cache in `dir`, creating it (mode `0700`) if needed.
    ///
    /// Fails when the directory cannot be created, or belongs to another
    /// user, or can be written by group or others.
    pub fn new(dir: impl Into<PathBuf>) -> Result<ComponentCache, CacheError> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| CacheError::Directory {
                dir: dir.clone(),
                source,
            })?;
        let meta = fs::metadata(&dir).map_err(|source| CacheError::Directory {
            dir: dir.clone(),
            source,
        })?;
        if let Err(reason) = owned_by_us(&meta) {
            return Err(CacheError::Untrusted { dir, reason });
        }
        Ok(ComponentCache { dir })
    }

    /// The default cache directory: `$XDG_CACHE_HOME/chainsink`, else
    /// `$HOME/.cache/chainsink`; `None` when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        Self::default_dir_from(|k| std::env::var_os(k))
    }

    /// [`default_dir`](Self::default_dir) over any variable lookup.
    pub fn default_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
        let nonempty = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        nonempty("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| nonempty("HOME").map(|h| h.join(".cache")))
            .map(|base| base.join("chainsink"))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `engine`'s compiled code: 64 hex digits of SHA-256 over
    /// its [`Engine::precompile_compatibility_hash`].
    pub fn engine_key(engine: &Engine) -> Hash {
        let mut hasher = Sha256Hasher(Vec::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Hash::of(&hasher.0)
    }

    /// Where the entry for a component with SHA-256 `component` compiled by
    /// an engine with key `engine_key` lives.
    pub fn entry_path(&self, engine_key: &Hash, component: &Hash) -> PathBuf {
        self.dir
            .join(engine_key.to_hex())
            .join(format!("{}.cwasm", component.to_hex()))
    }

    /// The component `bytes` (whose SHA-256 is `sha256`) compiled for
    /// `engine`: from the cache when a valid entry exists, else compiled
    /// (`engine.precompile_component`) and stored. `load` turns compiled
    /// code into a component; it is given only code `engine` produced, just
    /// now or from an entry that passed every check in the
    /// [module docs](self). Errors are compile errors; cache trouble is only
    /// logged.
    pub fn load(
        &self,
        engine: &Engine,
        engine_key: &Hash,
        bytes: &[u8],
        sha256: &Hash,
        load: impl Fn(&[u8]) -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine_key, sha256);
        let refused = match read_entry(&path, engine_key, sha256) {
            Ok(None) => None,
            Ok(Some(payload)) => match load(&payload) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => Some(format!("wasmtime refused it: {e:#}")),
            },
            Err(reason) => Some(reason),
        };
        if let Some(reason) = &refused {
            tracing::warn!(
                "ignoring cache entry {}: {reason}; recompiling",
                path.display()
            );
        }
        let code = engine.precompile_component(bytes)?;
        let component = load(&code)?;
        let stored = match self.store(&path, engine_key, sha256, &code) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "cannot store the compiled component in the cache at {}: {e:#}; \
                     it will be compiled again next time",
                    path.display()
                );
                false
            }
        };
        let outcome = match refused {
            Some(reason) => CacheOutcome::Recompiled { reason },
            None => CacheOutcome::Compiled { stored },
        };
        Ok((component, outcome))
    }

    /// Writes compiled code `payload` into a new entry at `path`, atomically.
    fn store(
        &self,
        path: &Path,
        engine_key: &Hash,
        sha256: &Hash,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let mut entry = header(engine_key, sha256, payload).to_vec();
        entry.extend_from_slice(payload);
        write_atomically(path, &sha256.to_hex(), &entry)
    }
}

/// Writes `bytes` to `path` (mode `0600`, its directory `0700`) through a
/// temporary file named after `stem` in the same directory, renamed into
/// place: readers see a whole file or none, and a file someone has mapped
/// is replaced, never changed.
fn write_atomically(path: &Path, stem: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().expect("entries live in an engine directory");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{stem}.{}.{nanos}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

/// An entry's header for `payload`.
fn header(engine_key: &Hash, sha256: &Hash, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h[16..48].copy_from_slice(&engine_key.0);
    h[48..80].copy_from_slice(&sha256.0);
    h[80..88].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h
}

/// Reads and checks the entry at `path`: `Ok(None)` when there is none,
/// `Ok(Some(payload))` when it passes every check, `Err(reason)` otherwise.
fn read_entry(path: &Path, engine_key: &Hash, sha256: &Hash) -> Result<Option<Vec<u8>>, String> {
    let Some(meta) = trusted_file(path)? else {
        return Ok(None);
    };
    if meta.len() > MAX_ENTRY {
        return Err(format!("it is {} bytes, too large", meta.len()));
    }
    let mut file = File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read it: {e}")),
        }
    }
    // The payload in its own buffer (no copy to drop the header), read to
    // the end whatever the header says, so a padded file is seen.
    let mut payload = Vec::with_capacity((meta.len() as usize).saturating_sub(HEADER_LEN));
    file.read_to_end(&mut payload)
        .map_err(|e| format!("cannot read it: {e}"))?;
    check_entry(&head[..got], &payload, engine_key, sha256)?;
    Ok(Some(payload))
}

/// The ownership rule of the [module docs](self) for the file at `path`:
/// `Ok(None)` when there is none, its metadata when it is a regular file that
/// it and its directory belong to this user and no one else can write,
/// `Err(reason)` otherwise.
fn trusted_file(path: &Path) -> Result<Option<fs::Metadata>, String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot stat it: {e}")),
    };
    if !meta.file_type().is_file() {
        return Err("it is not a regular file".into());
    }
    owned_by_us(&meta)?;
    if let Some(dir) = path.parent() {
        let dir_meta = fs::metadata(dir).map_err(|e| format!("cannot stat its directory: {e}"))?;
        owned_by_us(&dir_meta).map_err(|r| format!("its directory: {r}"))?;
    }
    Ok(Some(meta))
}

/// Checks an entry's header against its payload: layout, keys, length and
/// CRC-32 (see the [module docs](self) for why that is enough).
fn check_entry(
    bytes: &[u8],
    payload: &[u8],
    engine_key: &Hash,
    sha256: &Hash,
) -> Result<(), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("it is not a chainsink cache entry (bad magic)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    if u32_at(8) != FORMAT_VERSION {
        return Err(format!(
            "it has entry format {}, this chainsink writes {FORMAT_VERSION}",
            u32_at(8)
        ));
    }
    if bytes[16..48] != engine_key.0 {
        return Err("it was compiled by another engine configuration".into());
    }
    if bytes[48..80] != sha256.0 {
        return Err("it holds another component".into());
    }
    let len = u64::from_le_bytes(bytes[80..88].try_into().unwrap());
    if payload.len() as u64 != len {
        return Err(format!(
            "it is truncated or padded: {} payload bytes, the header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != u32_at(12) {
        return Err("its checksum does not match its bytes (corrupt)".into());
    }
    Ok(())
}

/// Ok when `meta` belongs to the current user and is not writable by group
/// or others.
fn owned_by_us(meta: &fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(format!(
            "it belongs to uid {}, not to you (uid {euid})",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// A [`Hasher`] that keeps every byte written, so a [`std::hash::Hash`]
/// value can be digested with SHA-256 (stable, unlike `DefaultHasher`).
struct Sha256Hasher(Vec<u8>);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let h = Hash::of(&self.0);
        u64::from_le_bytes(h.0[..8].try_into().unwrap())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_prefers_xdg_then_home() {
        let vars = |xdg: Option<&str>, home: Option<&str>| {
            let (xdg, home) = (xdg.map(String::from), home.map(String::from));
            move |k: &str| match k {
                "XDG_CACHE_HOME" => xdg.clone().map(Into::into),
                "HOME" => home.clone().map(Into::into),
                _ => None,
            }
        };
        assert_eq!(
            ComponentCache::default_dir_from(vars(Some("/x/cache"), Some("/home/a"))),
            Some(PathBuf::from("/x/cache/chainsink"))
        );
        assert_eq!(
            ComponentCache::default_dir_from(vars(None, Some("/home/a"))),
            Some(PathBuf::from("/home/a/.cache/chainsink"))
        );
        // A relative XDG_CACHE_HOME is invalid per the spec and ignored.
        assert_eq!(
            ComponentCache::default_dir_from(vars(Some("rel"), Some("/home/a"))),
            Some(PathBuf::from("/home/a/.cache/chainsink"))
        );
        assert_eq!(ComponentCache::default_dir_from(vars(None, None)), None);
    }

    #[test]
    fn a_group_writable_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ComponentCache::new(&cache).unwrap_err();
        assert!(matches!(err, CacheError::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }

    #[test]
    fn entries_are_checked_before_use() {
        let key = Hash::of(b"engine");
        let sha = Hash::of(b"component");
        let payload = b"machine code".to_vec();
        let head = header(&key, &sha, &payload);
        assert_eq!(check_entry(&head, &payload, &key, &sha), Ok(()));
        let other = Hash::of(b"other");
        assert!(
            check_entry(&head, &payload, &other, &sha)
                .unwrap_err()
                .contains("engine")
        );
        assert!(
            check_entry(&head, &payload, &key, &other)
                .unwrap_err()
                .contains("another component")
        );
        let mut flipped = payload.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(
            check_entry(&head, &flipped, &key, &sha)
                .unwrap_err()
                .contains("checksum")
        );
        let mut version_1 = head;
        version_1[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert!(
            check_entry(&version_1, &payload, &key, &sha)
                .unwrap_err()
                .contains("entry format 1")
        );
        assert!(
            check_entry(&head, &payload[..payload.len() - 1], &key, &sha)
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            check_entry(b"garbage", &payload, &key, &sha)
                .unwrap_err()
                .contains("magic")
        );
    }

    /// Writes a valid entry for `payload` at `dir/entry.cwasm`.
    fn entry_in(dir: &Path, key: &Hash, sha: &Hash, payload: &[u8]) -> PathBuf {
        let path = dir.join("entry.cwasm");
        let mut bytes = header(key, sha, payload).to_vec();
        bytes.extend_from_slice(payload);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn an_entry_of_ours_passes_on_its_header_length_and_crc() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let (key, sha) = (Hash::of(b"engine"), Hash::of(b"component"));
        let payload = vec![7u8; 100_000];
        let path = entry_in(dir.path(), &key, &sha, &payload);
        assert_eq!(read_entry(&path, &key, &sha), Ok(Some(payload.clone())));
        // Damage in the middle of the payload is caught by the CRC.
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + 50_000] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        assert!(
            read_entry(&path, &key, &sha)
                .unwrap_err()
                .contains("checksum")
        );
        // Padding is caught by the length.
        let mut padded = header(&key, &sha, &payload).to_vec();
        padded.extend_from_slice(&payload);
        padded.push(0);
        fs::write(&path, &padded).unwrap();
        assert!(
            read_entry(&path, &key, &sha)
                .unwrap_err()
                .contains("padded")
        );
    }

    #[test]
    fn a_valid_entry_others_could_have_written_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (key, sha) = (Hash::of(b"engine"), Hash::of(b"component"));
        let payload = b"forged machine code".to_vec();
        // Header, length and checksum all match (a forger can compute
        // them): only who could write the file and its directory decides.
        let path = entry_in(dir.path(), &key, &sha, &payload);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = read_entry(&path, &key, &sha).unwrap_err();
        assert!(
            err.contains("its directory") && err.contains("writable"),
            "{err}"
        );
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        let err = read_entry(&path, &key, &sha).unwrap_err();
        assert!(err.contains("writable by group"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_entry(&path, &key, &sha), Ok(Some(payload.clone())));
        // Owned by someone else (checkable only as root, who can chown).
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let err = read_entry(&path, &key, &sha).unwrap_err();
            assert!(err.contains("belongs to uid 65534"), "{err}");
            std::os::unix::fs::chown(&path, Some(0), None).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
            let err = read_entry(&path, &key, &sha).unwrap_err();
            assert!(
                err.contains("its directory: it belongs to uid 65534"),
                "{err}"
            );
        }
    }
}
