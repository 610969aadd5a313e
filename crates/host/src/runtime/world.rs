//! The `audit-sink` worlds a component may fit: what chainsink provides to
//! a sink and what a sink must export, checked by semver, for every WIT
//! version this host loads.
//!
//! The current WIT lives in one place, `wit/audit.wit`; frozen versions live
//! under `wit/since_vX.Y.Z/` and never change (Zed's pattern). The build
//! script reads their package versions into [`WIT_VERSION`] and
//! [`WIT_V0_1_VERSION`]. This host loads components built against either
//! ([`WitVersion`]): an interface name `chainsink:audit/NAME@VERSION` fits
//! when VERSION is semver-compatible with one of them, as the WIT promises:
//! the same major version, and for 0.x the same minor. A component uses one
//! version throughout: the version of the `sink` it exports decides, and its
//! imports must name the same one.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The version of the current `chainsink:audit` WIT package (from
/// `wit/audit.wit`): what new sinks are built against.
pub const WIT_VERSION: &str = env!("CHAINSINK_WIT_VERSION");

/// The frozen 0.1 version (from `wit/since_v0.1.0/audit.wit`), still loaded.
pub const WIT_V0_1_VERSION: &str = env!("CHAINSINK_WIT_V0_1_VERSION");

/// The WIT package.
pub const WIT_PACKAGE: &str = "chainsink:audit";

/// The interfaces chainsink provides to sinks of the current version.
pub const PROVIDED_INTERFACES: &[&str] = &["types", "log-file", "digest", "diagnostics"];

/// The interface a sink must export.
pub const REQUIRED_INTERFACE: &str = "sink";

/// The interface a sink may export to check its own log (WIT 0.2 on).
pub const VERIFIER_INTERFACE: &str = "verifier";

/// The interface a sink may export to take events packed (WIT 0.2 on):
/// `emit-batch` in one byte list each way.
pub const PACKED_INTERFACE: &str = "packed-batch";

/// A WIT version this host loads components of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WitVersion {
    /// 0.1.x (`wit/since_v0.1.0/`): no `describe`, `digest` or `verifier`;
    /// its records are `telemachy-json`.
    V0_1,
    /// 0.2.x (`wit/audit.wit`), the current version.
    V0_2,
}

impl WitVersion {
    /// Every version this host loads, oldest first.
    pub const ALL: [WitVersion; 2] = [WitVersion::V0_1, WitVersion::V0_2];

    /// The version of the WIT file it was built from, such as `0.1.0`.
    pub fn version(self) -> &'static str {
        match self {
            WitVersion::V0_1 => WIT_V0_1_VERSION,
            WitVersion::V0_2 => WIT_VERSION,
        }
    }

    /// The WIT file, relative to the repository root.
    pub fn wit_file(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "wit/since_v0.1.0/audit.wit",
            WitVersion::V0_2 => "wit/audit.wit",
        }
    }

    /// The version this host serves for a component built against
    /// `version`, if any (semver-compatible).
    pub fn of(version: &str) -> Option<WitVersion> {
        WitVersion::ALL
            .into_iter()
            .find(|v| compatible(v.version(), version))
    }

    /// The interfaces chainsink provides to sinks of this version.
    pub fn provided(self) -> &'static [&'static str] {
        match self {
            WitVersion::V0_1 => &["types", "log-file", "diagnostics"],
            WitVersion::V0_2 => PROVIDED_INTERFACES,
        }
    }

    /// `chainsink:audit/INTERFACE@VERSION` in this version.
    pub fn interface_name(self, interface: &str) -> String {
        format!("{WIT_PACKAGE}/{interface}@{}", self.version())
    }

    /// The world's full name in this version, `chainsink:audit/audit-sink@VERSION`.
    pub fn world_name(self) -> String {
        self.interface_name("audit-sink")
    }
}

impl fmt::Display for WitVersion {
    /// `0.1.0`, `0.2.0`: the WIT file's version.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version())
    }
}

/// The versions this host loads, for messages: `0.1.x and 0.2.x`.
pub fn supported() -> String {
    let majors: Vec<String> = WitVersion::ALL
        .iter()
        .map(|v| {
            let mut parts = v.version().split('.');
            match (parts.next(), parts.next()) {
                (Some("0"), Some(minor)) => format!("0.{minor}.x"),
                (Some(major), _) => format!("{major}.x"),
                _ => v.version().to_string(),
            }
        })
        .collect();
    majors.join(" and ")
}

/// `chainsink:audit/INTERFACE@WIT_VERSION`, the full current name of one of ours.
pub fn interface_name(interface: &str) -> String {
    WitVersion::V0_2.interface_name(interface)
}

/// The current world's full name, `chainsink:audit/audit-sink@WIT_VERSION`.
pub fn world_name() -> String {
    WitVersion::V0_2.world_name()
}

/// A `major.minor.patch` version (pre-release and build suffixes ignored).
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// Whether a component built against `theirs` can use a host at `ours`
/// (semver: same major; for 0.x, same minor).
pub fn compatible(ours: &str, theirs: &str) -> bool {
    match (parse_version(ours), parse_version(theirs)) {
        (Some((0, a, _)), Some((0, b, _))) => a == b,
        (Some((a, _, _)), Some((b, _, _))) => a == b && a != 0,
        _ => false,
    }
}

/// If `name` is `chainsink:audit/INTERFACE@VERSION`, the interface and version.
fn split_ours(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
    rest.split_once('@')
}

/// What a component imports and exports, and what keeps it from being a sink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldCheck {
    /// Every import's name.
    pub imports: Vec<String>,
    /// Every export's name.
    pub exports: Vec<String>,
    /// The WIT version it was built against (from its `sink` export), when
    /// this host loads that version.
    pub version: Option<WitVersion>,
    /// Whether it exports a `verifier` (WIT 0.2 on).
    pub verifier: bool,
    /// Each thing that keeps it from fitting `audit-sink`; empty when it fits.
    pub problems: Vec<String>,
}

impl WorldCheck {
    /// The world it fits (or would fit): its version's, else the current one.
    pub fn world_name(&self) -> String {
        self.version.unwrap_or(WitVersion::V0_2).world_name()
    }
}

/// What `component` imports and exports, and every way it does not fit an
/// `audit-sink` world this host loads, by name and version. (Whether the
/// types match is checked when the runtime pre-instantiates it.)
pub fn check_names(engine: &Engine, component: &Component) -> WorldCheck {
    let ty = component.component_type();
    let mut check = WorldCheck {
        imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
        exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
        ..WorldCheck::default()
    };
    // The version comes from the `sink` export.
    let sink_export = check
        .exports
        .iter()
        .find(|e| split_ours(e).is_some_and(|(i, _)| i == REQUIRED_INTERFACE));
    let export_version = sink_export.map(|e| split_ours(e).map_or("", |(_, v)| v));
    match (sink_export, export_version) {
        (Some(export), Some(version)) => match WitVersion::of(version) {
            Some(v) => check.version = Some(v),
            None => check.problems.push(format!(
                "it exports `{export}`, built against {WIT_PACKAGE}@{version}, but this host \
                 loads {}; rebuild it against wit/audit.wit ({WIT_VERSION}), or use a \
                 chainsink that supports {version}",
                supported()
            )),
        },
        _ => check.problems.push(format!(
            "it does not export `{}` (it exports: {})",
            WitVersion::ALL
                .iter()
                .map(|v| v.interface_name(REQUIRED_INTERFACE))
                .collect::<Vec<_>>()
                .join("` or `"),
            if check.exports.is_empty() {
                "nothing".to_string()
            } else {
                check.exports.join(", ")
            }
        )),
    }
    if let Some(v) = check.version {
        check.verifier = check.exports.iter().any(|e| {
            split_ours(e)
                .is_some_and(|(i, ev)| i == VERIFIER_INTERFACE && WitVersion::of(ev) == Some(v))
        });
    }
    for import in &check.imports {
        if import.starts_with("wasi:") {
            continue;
        }
        let problem = match (split_ours(import), check.version) {
            (Some((iface, version)), Some(ours)) => match WitVersion::of(version) {
                Some(theirs) if theirs == ours && ours.provided().contains(&iface) => None,
                Some(theirs) if theirs == ours => Some(format!(
                    "it imports `{import}`, which chainsink does not provide in \
                     {WIT_PACKAGE}@{ours} (a sink may import only {} and WASI, which it gets \
                     empty)",
                    names(ours)
                )),
                Some(_) => Some(format!(
                    "it imports `{import}` but exports `{}`: a sink is built against one \
                     version of {} throughout; rebuild it against {} only",
                    ours.interface_name(REQUIRED_INTERFACE),
                    WIT_PACKAGE,
                    ours.wit_file()
                )),
                None => Some(format!(
                    "it imports `{import}`, built against {WIT_PACKAGE}@{version}, which this \
                     host cannot serve (it loads {}); rebuild it against wit/audit.wit \
                     ({WIT_VERSION}), or use a chainsink that supports {version}",
                    supported()
                )),
            },
            (Some((iface, version)), None) => match WitVersion::of(version) {
                Some(v) if v.provided().contains(&iface) => None,
                Some(v) => Some(format!(
                    "it imports `{import}`, which chainsink does not provide in \
                     {WIT_PACKAGE}@{v} (a sink may import only {} and WASI, which it gets \
                     empty)",
                    names(v)
                )),
                None => Some(format!(
                    "it imports `{import}`, built against {WIT_PACKAGE}@{version}, which this \
                     host cannot serve (it loads {}); rebuild it against wit/audit.wit \
                     ({WIT_VERSION}), or use a chainsink that supports {version}",
                    supported()
                )),
            },
            (None, v) => Some(format!(
                "it imports `{import}`, which chainsink does not provide (a sink may import \
                 only {} and WASI, which it gets empty)",
                names(v.unwrap_or(WitVersion::V0_2))
            )),
        };
        check.problems.extend(problem);
    }
    check
}

/// The interfaces `v` provides, by full name, for messages.
fn names(v: WitVersion) -> String {
    v.provided()
        .iter()
        .map(|i| v.interface_name(i))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_wit_file() {
        let wit = include_str!("../../../../wit/audit.wit");
        assert!(
            wit.contains(&format!("package {WIT_PACKAGE}@{WIT_VERSION};")),
            "wit/audit.wit does not declare {WIT_PACKAGE}@{WIT_VERSION}"
        );
        let frozen = include_str!("../../../../wit/since_v0.1.0/audit.wit");
        assert!(
            frozen.contains(&format!("package {WIT_PACKAGE}@{WIT_V0_1_VERSION};")),
            "wit/since_v0.1.0/audit.wit does not declare {WIT_PACKAGE}@{WIT_V0_1_VERSION}"
        );
        assert!(WIT_V0_1_VERSION.starts_with("0.1."), "{WIT_V0_1_VERSION}");
        assert!(WIT_VERSION.starts_with("0.2."), "{WIT_VERSION}");
    }

    #[test]
    fn frozen_wit_never_changes() {
        // wit/since_v0.1.0/audit.wit is the 0.1.0 contract as released,
        // byte for byte. Components built against it must keep loading, so
        // it must NEVER be edited (not even its comments: a frozen file is
        // a record). Change wit/audit.wit and bump its version instead.
        let frozen = include_bytes!("../../../../wit/since_v0.1.0/audit.wit");
        assert_eq!(
            chainsink_format::Hash::of(frozen).to_hex(),
            "d3dd33f9859ce62020dc74d744b522d7724c693c4dc06128edda162e24913180",
            "wit/since_v0.1.0/audit.wit was edited: frozen WIT must never be edited; restore it \
             (git show 30a3129:wit/audit.wit) and put changes in wit/audit.wit"
        );
    }

    #[test]
    fn versions_match_by_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.0.0", "1.4.2"));
        assert!(!compatible("1.0.0", "2.0.0"));
        assert!(!compatible("0.1.0", "x"));
        assert_eq!(
            split_ours("chainsink:audit/sink@0.1.0"),
            Some(("sink", "0.1.0"))
        );
        assert_eq!(split_ours("chainsink:other/sink@0.1.0"), None);
    }

    #[test]
    fn both_versions_are_loaded_and_nothing_else() {
        assert_eq!(WitVersion::of("0.1.0"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::of("0.1.9"), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::of("0.2.0"), Some(WitVersion::V0_2));
        assert_eq!(WitVersion::of("0.2.4"), Some(WitVersion::V0_2));
        assert_eq!(WitVersion::of("0.3.0"), None);
        assert_eq!(WitVersion::of("1.0.0"), None);
        assert_eq!(supported(), "0.1.x and 0.2.x");
        assert!(!WitVersion::V0_1.provided().contains(&"digest"));
        assert!(WitVersion::V0_2.provided().contains(&"digest"));
    }
}
