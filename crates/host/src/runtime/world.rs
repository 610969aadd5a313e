//! The `audit-sink` world a component must fit: what chainsink provides to
//! a sink and what a sink must export, checked by semver.
//!
//! The WIT package version lives in one place, `wit/audit.wit`; the build
//! script reads it from there into [`WIT_VERSION`]. An interface name
//! `chainsink:audit/NAME@VERSION` fits when VERSION is semver-compatible
//! with ours, as `wit/audit.wit` promises: the same major version, and for
//! 0.x the same minor.

use wasmtime::Engine;
use wasmtime::component::Component;

/// The version of the `chainsink:audit` WIT package this host implements
/// (from `wit/audit.wit`).
pub const WIT_VERSION: &str = env!("CHAINSINK_WIT_VERSION");

/// The WIT package.
pub const WIT_PACKAGE: &str = "chainsink:audit";

/// The interfaces chainsink provides to sinks.
pub const PROVIDED_INTERFACES: &[&str] = &["types", "log-file", "diagnostics"];

/// The interface a sink must export.
pub const REQUIRED_INTERFACE: &str = "sink";

/// `chainsink:audit/INTERFACE@WIT_VERSION`, the full name of one of ours.
pub fn interface_name(interface: &str) -> String {
    format!("{WIT_PACKAGE}/{interface}@{WIT_VERSION}")
}

/// The world's full name, `chainsink:audit/audit-sink@WIT_VERSION`.
pub fn world_name() -> String {
    interface_name("audit-sink")
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
    /// Each thing that keeps it from fitting `audit-sink`; empty when it fits.
    pub problems: Vec<String>,
}

/// What `component` imports and exports, and every way it does not fit the
/// `audit-sink` world by name and version. (Whether the types match is
/// checked when the runtime pre-instantiates it.)
pub fn check_names(engine: &Engine, component: &Component) -> WorldCheck {
    let ty = component.component_type();
    let mut check = WorldCheck::default();
    for (import, _) in ty.imports(engine) {
        check.imports.push(import.to_string());
        if import.starts_with("wasi:") {
            continue;
        }
        let problem = match split_ours(import) {
            Some((iface, version)) if PROVIDED_INTERFACES.contains(&iface) => {
                (!compatible(WIT_VERSION, version)).then(|| {
                    format!(
                        "it imports `{import}`, built against {WIT_PACKAGE}@{version}, which this \
                         host ({WIT_PACKAGE}@{WIT_VERSION}) cannot serve; rebuild it against \
                         wit/audit.wit {WIT_VERSION}, or use a chainsink that supports {version}"
                    )
                })
            }
            _ => Some(format!(
                "it imports `{import}`, which chainsink does not provide (a sink may import only \
                 {} and WASI, which it gets empty)",
                PROVIDED_INTERFACES
                    .iter()
                    .map(|i| interface_name(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        check.problems.extend(problem);
    }
    check.exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let sink_exports: Vec<&String> = check
        .exports
        .iter()
        .filter(|e| split_ours(e).is_some_and(|(i, _)| i == REQUIRED_INTERFACE))
        .collect();
    match sink_exports.first() {
        None => check.problems.push(format!(
            "it does not export `{}` (it exports: {})",
            interface_name(REQUIRED_INTERFACE),
            if check.exports.is_empty() {
                "nothing".to_string()
            } else {
                check.exports.join(", ")
            }
        )),
        Some(export) => {
            let version = split_ours(export).map_or("", |(_, v)| v);
            if !compatible(WIT_VERSION, version) {
                check.problems.push(format!(
                    "it exports `{export}`, but this host implements {WIT_PACKAGE}@{WIT_VERSION}; \
                     rebuild it against wit/audit.wit {WIT_VERSION}"
                ));
            }
        }
    }
    check
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
}
