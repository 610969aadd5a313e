//! What a component is: its world (imports, exports, their functions), its
//! size and resources, and whether it fits chainsink's `audit-sink` world.
//!
//! The fit is decided by the very check the loader applies before it runs a
//! sink ([`SinkRuntime::check_world`]), so `chainsink inspect` says "fits"
//! exactly when `--sink` would accept the component, and lists the same
//! problems otherwise.

use std::fmt::Write as _;

use serde_json::{Value, json};
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

use crate::runtime::world::WitVersion;
use crate::runtime::{Origin, SinkRuntime};
use crate::sink::SinkInfo;

/// What the bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmKind {
    /// A WebAssembly component.
    Component,
    /// A core WebAssembly module (not a component).
    CoreModule,
    /// Not WebAssembly at all.
    NotWasm,
}

impl WasmKind {
    /// Tells from the header what `bytes` are.
    pub fn of(bytes: &[u8]) -> WasmKind {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => WasmKind::CoreModule,
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
            _ => WasmKind::NotWasm,
        }
    }

    /// `component`, `core module` or `not wasm`.
    pub fn as_str(self) -> &'static str {
        match self {
            WasmKind::Component => "component",
            WasmKind::CoreModule => "core module",
            WasmKind::NotWasm => "not wasm",
        }
    }
}

/// The language a sink was written in, as far as its bytes tell, so that
/// load errors can give advice that fits the author's toolchain.
///
/// Told from the marks toolchains leave: the `producers` section (`rustc`,
/// `wit-bindgen-rust`, `ComponentizeJS`) and componentize-py's runtime
/// modules (`componentize_py_runtime`, `libpython3`), which carry no
/// language tag of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkLanguage {
    /// Built by rustc (wit-bindgen, chainsink-sdk).
    Rust,
    /// Built by componentize-py.
    Python,
    /// Built by componentize-js (`jco componentize`).
    JavaScript,
    /// No mark we know.
    Unknown,
}

impl SinkLanguage {
    /// Tells from `bytes` which toolchain built them.
    pub fn of(bytes: &[u8]) -> SinkLanguage {
        let has = |needle: &[u8]| memchr::memmem::find(bytes, needle).is_some();
        // Python and JS first: their components also hold Rust-built parts.
        if has(b"ComponentizeJS") || has(b"componentize-js") {
            SinkLanguage::JavaScript
        } else if has(b"componentize_py_runtime") || has(b"componentize-py") || has(b"libpython3") {
            SinkLanguage::Python
        } else if has(b"wit-bindgen-rust") || has(b"rustc") {
            SinkLanguage::Rust
        } else {
            SinkLanguage::Unknown
        }
    }

    /// `Rust`, `Python`, `JavaScript` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkLanguage::Rust => "Rust",
            SinkLanguage::Python => "Python",
            SinkLanguage::JavaScript => "JavaScript",
            SinkLanguage::Unknown => "unknown",
        }
    }

    /// How to rebuild a sink in this language so that it fits the world
    /// (`docs/writing-a-sink.md` has the whole guide).
    pub fn rebuild_advice(self) -> &'static str {
        match self {
            SinkLanguage::Rust => {
                "implement chainsink_sdk::Sink, end the crate with `export_sink!`, and build it \
                 with `cargo build --release --target wasm32-wasip2` (`chainsink new-sink --lang \
                 rust DIR` writes a project that does)"
            }
            SinkLanguage::Python => {
                "subclass chainsink_sdk.ChainSink in app.py, end it with `Sink, Verifier = \
                 export(...)`, and build it with `componentize-py -d wit -w audit-sink componentize \
                 app -o sink.wasm` against the wit/ that `chainsink new-sink --lang python DIR` \
                 writes"
            }
            SinkLanguage::JavaScript => {
                "export the sink from sink.js with the SDK's exportSink and build it with `npm run \
                 build` (componentize-js against the wit/ that `chainsink new-sink --lang js DIR` \
                 writes)"
            }
            SinkLanguage::Unknown => {
                "build it against wit/audit.wit (world audit-sink), exporting \
                 chainsink:audit/sink; see docs/writing-a-sink.md, or start from `chainsink \
                 new-sink --lang rust|python|js DIR`"
            }
        }
    }

    /// How to turn a core module in this language into a component.
    pub fn componentize_advice(self) -> &'static str {
        match self {
            SinkLanguage::Rust => {
                "build for wasm32-wasip2, which makes a component directly, or run `wasm-tools \
                 component new` on the module"
            }
            _ => {
                "turn it into a component that implements wit/audit.wit (Rust: build for \
                 wasm32-wasip2 or run `wasm-tools component new`; Python: componentize-py; \
                 JavaScript: jco componentize)"
            }
        }
    }
}

/// One import or export of a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldItem {
    /// Its name, such as `chainsink:audit/log-file@0.1.0`.
    pub name: String,
    /// `instance`, `func`, `type`, `resource`, `module` or `component`.
    pub kind: &'static str,
    /// Its functions as `name: func(...) -> ...` (for an instance, each of
    /// its functions; for a function, itself).
    pub functions: Vec<String>,
}

/// Memories and tables the component needs to instantiate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    /// Linear memories.
    pub memories: u32,
    /// Largest initial memory, in bytes.
    pub initial_memory_bytes: Option<u64>,
    /// Tables.
    pub tables: u32,
}

/// Everything `chainsink inspect` reports about a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The name it was inspected under (its path, or the default's name).
    pub name: String,
    /// Size of the bytes.
    pub size: usize,
    /// SHA-256 of the bytes, 64 hex digits.
    pub sha256: String,
    /// What the bytes are.
    pub kind: WasmKind,
    /// The language it was written in, as far as its bytes tell.
    pub language: SinkLanguage,
    /// Its imports (empty unless it compiled).
    pub imports: Vec<WorldItem>,
    /// Its exports (empty unless it compiled).
    pub exports: Vec<WorldItem>,
    /// What it needs to instantiate (None unless it compiled).
    pub resources: Option<Resources>,
    /// Whether it imports WASI (and so runs with an empty WASI context).
    pub wasi: bool,
    /// Where the compiled code came from (None unless it compiled).
    pub origin: Option<Origin>,
    /// The WIT version it was built against (from its `sink` export), when
    /// this host loads that version.
    pub wit_version: Option<WitVersion>,
    /// What it says it is (`describe`, run on an empty in-memory log), or
    /// what the host takes a 0.1 sink to be; `Err` when `describe` failed.
    /// None unless it fits.
    pub info: Option<Result<SinkInfo, String>>,
    /// Everything that keeps it from fitting the `audit-sink` world; empty when it fits.
    pub problems: Vec<String>,
}

/// Inspects `bytes` (a component, maybe) with `runtime`'s engine and linker.
pub fn inspect(runtime: &SinkRuntime, name: &str, bytes: &[u8]) -> Inspection {
    let kind = WasmKind::of(bytes);
    let mut inspection = Inspection {
        name: name.to_string(),
        size: bytes.len(),
        sha256: chainsink_format::Hash::of(bytes).to_hex(),
        kind,
        language: SinkLanguage::of(bytes),
        imports: Vec::new(),
        exports: Vec::new(),
        resources: None,
        wasi: false,
        origin: None,
        wit_version: None,
        info: None,
        problems: Vec::new(),
    };
    match kind {
        WasmKind::NotWasm => {
            inspection
                .problems
                .push("it is not WebAssembly (no `\\0asm` header)".into());
            return inspection;
        }
        WasmKind::CoreModule => {
            inspection.problems.push(
                "it is a core wasm module, not a component; turn it into one with \
                 `wasm-tools component new` (or build with `cargo component`)"
                    .into(),
            );
            return inspection;
        }
        WasmKind::Component => {}
    }
    let component = match runtime.compile(name, bytes) {
        Ok((component, _, origin)) => {
            inspection.origin = Some(origin);
            component
        }
        Err(e) => {
            inspection.problems.push(e.to_string());
            return inspection;
        }
    };
    let engine = runtime.engine();
    let ty = component.component_type();
    inspection.imports = ty
        .imports(engine)
        .map(|(n, item)| world_item(engine, n, &item.ty))
        .collect();
    inspection.exports = ty
        .exports(engine)
        .map(|(n, item)| world_item(engine, n, &item.ty))
        .collect();
    inspection.wasi = inspection
        .imports
        .iter()
        .any(|i| i.name.starts_with("wasi:"));
    inspection.resources = component.resources_required().map(|r| Resources {
        memories: r.num_memories,
        initial_memory_bytes: r.max_initial_memory_size.map(|pages| pages * 65536),
        tables: r.num_tables,
    });
    let check = runtime.check_world(&component);
    inspection.wit_version = check.version;
    inspection.problems = check.problems;
    if inspection.problems.is_empty() {
        inspection.info = Some(
            runtime
                .load_bytes(name, bytes)
                .map_err(|e| e.to_string())
                .and_then(|c| crate::sink_verify::describe(runtime, &c).map_err(|e| e.to_string())),
        );
    }
    inspection
}

impl Inspection {
    /// The world it fits, or would: its WIT version's, else the current one.
    pub fn world_name(&self) -> String {
        self.wit_version.unwrap_or(WitVersion::V0_2).world_name()
    }

    /// Whether the component fits the `audit-sink` world (and so loads as a sink).
    pub fn fits(&self) -> bool {
        self.problems.is_empty() && !matches!(self.info, Some(Err(_)))
    }

    /// The report as text, as `chainsink inspect` prints it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.name);
        let _ = writeln!(s, "  kind:    {}", self.kind.as_str());
        let _ = writeln!(s, "  written in: {}", self.language.as_str());
        let _ = writeln!(
            s,
            "  size:    {} bytes ({:.1} KiB)",
            self.size,
            self.size as f64 / 1024.0
        );
        let _ = writeln!(s, "  sha256:  {}", self.sha256);
        if let Some(r) = &self.resources {
            let _ = writeln!(
                s,
                "  needs:   {} memor{}{}, {} table{}",
                r.memories,
                if r.memories == 1 { "y" } else { "ies" },
                r.initial_memory_bytes
                    .map(|b| format!(" (initial {:.1} MiB)", b as f64 / f64::from(1 << 20)))
                    .unwrap_or_default(),
                r.tables,
                if r.tables == 1 { "" } else { "s" }
            );
        }
        if self.kind == WasmKind::Component && self.origin.is_some() {
            let _ = writeln!(s, "  imports: {}", self.imports.len());
            render_items(&mut s, &self.imports);
            let _ = writeln!(s, "  exports: {}", self.exports.len());
            render_items(&mut s, &self.exports);
        }
        if let Some(v) = self.wit_version {
            let _ = writeln!(s, "  wit:     chainsink:audit@{v}");
        }
        match &self.info {
            Some(Ok(info)) if info.described => {
                let _ = writeln!(
                    s,
                    "  sink:    {} {}, writes {}, verifier: {}",
                    info.name,
                    info.version,
                    info.format,
                    if info.verifier { "yes" } else { "no" }
                );
            }
            Some(Ok(info)) => {
                let _ = writeln!(
                    s,
                    "  sink:    a WIT {} sink does not describe itself: taken to write {}, \
                     verifier: no",
                    info.wit, info.format
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "  sink:    describe() failed: {e}");
            }
            None => {}
        }
        if self.fits() {
            let _ = writeln!(s, "fits {}: yes", self.world_name());
            if self.wasi {
                let _ = writeln!(
                    s,
                    "  (it imports WASI: it runs with an empty WASI context, no files, \
                     environment, arguments or sockets)"
                );
            }
        } else {
            let _ = writeln!(s, "fits {}: NO", self.world_name());
            for p in &self.problems {
                let _ = writeln!(s, "  - {p}");
            }
        }
        s
    }

    /// The report as one JSON object, as `chainsink inspect --json` prints it.
    pub fn to_json(&self) -> Value {
        let items = |items: &[WorldItem]| -> Value {
            items
                .iter()
                .map(|i| json!({"name": i.name, "kind": i.kind, "functions": i.functions}))
                .collect()
        };
        json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "language": self.language.as_str(),
            "size": self.size,
            "sha256": self.sha256,
            "imports": items(&self.imports),
            "exports": items(&self.exports),
            "resources": self.resources.as_ref().map(|r| json!({
                "memories": r.memories,
                "initial_memory_bytes": r.initial_memory_bytes,
                "tables": r.tables,
            })),
            "wasi": self.wasi,
            "world": self.world_name(),
            "wit_version": self.wit_version.map(|v| v.version()),
            "sink": match &self.info {
                Some(Ok(i)) => json!({
                    "name": i.name, "version": i.version, "format": i.format.to_string(),
                    "described": i.described, "verifier": i.verifier,
                }),
                Some(Err(e)) => json!({"error": e}),
                None => Value::Null,
            },
            "fits": self.fits(),
            "problems": self.problems,
        })
    }
}

/// Lists `items`; WASI interfaces by function name only (their full
/// signatures are in the JSON output), everything else with signatures.
fn render_items(s: &mut String, items: &[WorldItem]) {
    for item in items {
        let _ = writeln!(s, "    {} ({})", item.name, item.kind);
        if item.name.starts_with("wasi:") {
            if !item.functions.is_empty() {
                let names: Vec<&str> = item
                    .functions
                    .iter()
                    .map(|f| f.split(": func").next().unwrap_or(f))
                    .collect();
                let _ = writeln!(s, "      {}", names.join(", "));
            }
            continue;
        }
        for f in &item.functions {
            let _ = writeln!(s, "      {f}");
        }
    }
}

fn world_item(engine: &wasmtime::Engine, name: &str, item: &ComponentItem) -> WorldItem {
    let (kind, functions) = match item {
        ComponentItem::ComponentFunc(f) => ("func", vec![signature(name, f)]),
        ComponentItem::ComponentInstance(i) => (
            "instance",
            i.exports(engine)
                .filter_map(|(n, item)| match item.ty {
                    ComponentItem::ComponentFunc(f) => Some(signature(n, &f)),
                    _ => None,
                })
                .collect(),
        ),
        ComponentItem::CoreFunc(_) => ("core func", Vec::new()),
        ComponentItem::Module(_) => ("module", Vec::new()),
        ComponentItem::Component(_) => ("component", Vec::new()),
        ComponentItem::Type(_) => ("type", Vec::new()),
        ComponentItem::Resource(_) => ("resource", Vec::new()),
    };
    WorldItem {
        name: name.to_string(),
        kind,
        functions,
    }
}

/// `name: func(a: t, ...) -> r`, in WIT-like syntax (types are structural:
/// wasmtime does not keep the names of records and variants).
fn signature(name: &str, f: &ComponentFunc) -> String {
    let params: Vec<String> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", type_name(&t, 0)))
        .collect();
    let results: Vec<String> = f.results().map(|t| type_name(&t, 0)).collect();
    let arrow = match results.len() {
        0 => String::new(),
        1 => format!(" -> {}", results[0]),
        _ => format!(" -> ({})", results.join(", ")),
    };
    format!("{name}: func({}){arrow}", params.join(", "))
}

/// A type in WIT-like syntax; nested records and variants past `depth` 2 are
/// abbreviated.
fn type_name(t: &Type, depth: usize) -> String {
    let inner = |t: &Type| type_name(t, depth + 1);
    let deep = depth >= 2;
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", inner(&l.ty())),
        Type::Option(o) => format!("option<{}>", inner(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", inner(&ok)),
            (None, Some(err)) => format!("result<_, {}>", inner(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", inner(&ok), inner(&err)),
        },
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types().map(|t| inner(&t)).collect::<Vec<_>>().join(", ")
        ),
        Type::Record(_) if deep => "record {..}".into(),
        Type::Record(r) => format!(
            "record {{{}}}",
            r.fields()
                .map(|f| format!("{}: {}", f.name, inner(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Variant(_) if deep => "variant {..}".into(),
        Type::Variant(v) => format!(
            "variant {{{}}}",
            v.cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, inner(&t)),
                    None => c.name.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(e) => format!("enum {{{}}}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{{}}}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
        _ => "(type)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_toolchains_marks() {
        let with = |mark: &[u8]| [b"\0asm\x0d\0\x01\0 producers ".as_slice(), mark].concat();
        assert_eq!(
            SinkLanguage::of(&with(b"processed-by ComponentizeJS0.23.0")),
            SinkLanguage::JavaScript
        );
        assert_eq!(
            SinkLanguage::of(&with(b"componentize_py_runtime.wasm")),
            SinkLanguage::Python
        );
        assert_eq!(
            SinkLanguage::of(&with(b"libpython3.14.so")),
            SinkLanguage::Python
        );
        assert_eq!(
            SinkLanguage::of(&with(b"language Rust processed-by rustc 1.95.0")),
            SinkLanguage::Rust
        );
        assert_eq!(
            SinkLanguage::of(&with(b"wit-bindgen-rust 0.46")),
            SinkLanguage::Rust
        );
        assert_eq!(SinkLanguage::of(&with(b"clang 19")), SinkLanguage::Unknown);
        // A JS or Python component also holds Rust-built parts: those win.
        assert_eq!(
            SinkLanguage::of(&with(b"rustc ComponentizeJS")),
            SinkLanguage::JavaScript
        );
        assert_eq!(
            SinkLanguage::of(&with(b"rustc componentize-py")),
            SinkLanguage::Python
        );
        // The advice names the language's own build command.
        assert!(
            SinkLanguage::Python
                .rebuild_advice()
                .contains("componentize-py")
        );
        assert!(
            SinkLanguage::JavaScript
                .rebuild_advice()
                .contains("npm run build")
        );
        assert!(
            SinkLanguage::Rust
                .rebuild_advice()
                .contains("wasm32-wasip2")
        );
    }

    #[test]
    fn the_default_sink_is_told_as_rust() {
        assert_eq!(
            SinkLanguage::of(crate::runtime::DEFAULT_SINK_WASM),
            SinkLanguage::Rust
        );
    }

    #[test]
    fn kinds_from_the_header() {
        assert_eq!(WasmKind::of(b"\0asm\x01\0\0\0rest"), WasmKind::CoreModule);
        assert_eq!(WasmKind::of(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert_eq!(WasmKind::of(b"hello world"), WasmKind::NotWasm);
        assert_eq!(WasmKind::of(b""), WasmKind::NotWasm);
    }
}
