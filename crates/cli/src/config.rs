//! Settings that come from the environment, as in telemachy.
//!
//! The binary reads `AUDIT_LOG_PATH`, `AUDIT_HASH_CHAIN`, `AUDIT_SINK`,
//! `AUDIT_DURABILITY` and `HOST_ID` through its flags' `env` fallbacks; the
//! two whose fallback is not a single variable live here.

/// The account name: `USER`, else `USERNAME`, else `"unknown"` (with a
/// warning, since the record then says less than it should).
pub fn user_from_env() -> String {
    user_from(|k| std::env::var(k).ok())
}

/// `user_from_env` over any variable lookup (for tests and embedders).
pub fn user_from(var: impl Fn(&str) -> Option<String>) -> String {
    match var("USER")
        .filter(|u| !u.is_empty())
        .or_else(|| var("USERNAME").filter(|u| !u.is_empty()))
    {
        Some(u) => u,
        None => {
            tracing::warn!("audit actor.user is \"unknown\": neither USER nor USERNAME is set");
            "unknown".to_string()
        }
    }
}

/// The host identity when `HOST_ID` is unset: the kernel's host name.
///
/// telemachy defaults to `"hermes"`; a name that is true of this machine says
/// more in an audit record, so chainsink uses the real host name.
pub fn default_host_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_falls_back_in_order() {
        let vars = |user: Option<&str>, username: Option<&str>| {
            let (user, username) = (user.map(String::from), username.map(String::from));
            move |k: &str| match k {
                "USER" => user.clone(),
                "USERNAME" => username.clone(),
                _ => None,
            }
        };
        assert_eq!(user_from(vars(Some("alice"), Some("bob"))), "alice");
        assert_eq!(user_from(vars(None, Some("bob"))), "bob");
        assert_eq!(user_from(vars(Some(""), Some("bob"))), "bob");
        assert_eq!(user_from(vars(None, None)), "unknown");
    }

    #[test]
    fn host_id_is_never_empty() {
        assert!(!default_host_id().is_empty());
    }
}
