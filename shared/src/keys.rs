//! The Redis key scheme: every key this product reads or writes is built here.

use std::fmt;

use uuid::Uuid;

/// The namespace of dashboard bundles, after the configured prefix.
pub const BUNDLE_NAMESPACE: &str = "dashboard:bundle:";
const GLOBAL_SCOPE: &str = "SUPERADMIN_GLOBAL";

/// Whose data a bundle covers: one tenant, or every tenant (the superadmin global view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Tenant(Uuid),
    Global,
}

impl Scope {
    pub fn tenant_id(self) -> Option<Uuid> {
        match self {
            Scope::Tenant(id) => Some(id),
            Scope::Global => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Hyphenated lower case: the one spelling of a tenant in keys and logs.
            Scope::Tenant(id) => write!(f, "{}", id.hyphenated()),
            Scope::Global => f.write_str(GLOBAL_SCOPE),
        }
    }
}

/// A tenant id as requests and events spell it: a hyphenated UUID in any letter case. Other spellings
/// (braced, URN, bare hex) are refused, so that a tenant has one accepted form besides case.
pub fn parse_tenant_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// One cached bundle: whose data it covers and whether test rows count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BundleId {
    pub scope: Scope,
    pub include_test_data: bool,
}

impl BundleId {
    pub fn new(scope: Scope, include_test_data: bool) -> Self {
        Self {
            scope,
            include_test_data,
        }
    }

    /// Both variants of one scope's bundle, the exact pair a tenant clear deletes.
    pub fn both(scope: Scope) -> [Self; 2] {
        [Self::new(scope, true), Self::new(scope, false)]
    }
}

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:include={}", self.scope, self.include_test_data)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `dashboard:bundle:{tenant uuid | SUPERADMIN_GLOBAL}:include={true|false}`.
    pub fn bundle(&self, id: BundleId) -> String {
        format!("{}{BUNDLE_NAMESPACE}{id}", self.prefix)
    }

    /// Both variants of one scope's bundle, the exact keys a tenant clear deletes.
    pub fn bundles_of(&self, scope: Scope) -> [String; 2] {
        BundleId::both(scope).map(|id| self.bundle(id))
    }

    /// A SCAN pattern matching every bundle key and nothing else. The prefix comes from configuration,
    /// but its glob characters are escaped anyway so that no configured value can widen the match.
    pub fn bundle_scan_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + BUNDLE_NAMESPACE.len() + 1);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(BUNDLE_NAMESPACE);
        pattern.push('*');
        pattern
    }

    /// The short lease that lets one caller recompute a bundle while others wait or serve stale.
    pub fn recompute_lease(&self, id: BundleId) -> String {
        format!("{}dashboard:lease:{id}", self.prefix)
    }

    /// The hours (UTC, unix hours) in which tenant `tenant`'s dashboard was read, a hash kept for
    /// [`crate::read_history::WINDOW_DAYS`]: what the warmer learns a tenant's habits from. Outside the
    /// bundle namespace, so a cache clear keeps it.
    pub fn tenant_reads(&self, tenant: Uuid) -> String {
        format!("{}dashboard:reads:{}", self.prefix, tenant.hyphenated())
    }

    /// When read recording began (unix ms, set once by the warmer): history shorter than a rule needs
    /// is never taken as "not read".
    pub fn reads_recorded_since(&self) -> String {
        format!("{}dashboard:reads-since", self.prefix)
    }

    /// The prefix every key of this configuration starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_keys_match_the_runbook() {
        let keys = Keys::default();
        let id = Uuid::parse_str("A11DFB63-4B18-4EB8-872E-747AF2E37C46").unwrap();
        assert_eq!(
            keys.bundle(BundleId::new(Scope::Tenant(id), false)),
            "dashboard:bundle:a11dfb63-4b18-4eb8-872e-747af2e37c46:include=false"
        );
        assert_eq!(
            keys.bundle(BundleId::new(Scope::Global, true)),
            "dashboard:bundle:SUPERADMIN_GLOBAL:include=true"
        );
        assert_eq!(
            keys.recompute_lease(BundleId::new(Scope::Global, true)),
            "dashboard:lease:SUPERADMIN_GLOBAL:include=true"
        );
    }

    #[test]
    fn prefix_goes_in_front_of_every_key() {
        let keys = Keys::new("t1:");
        assert_eq!(
            keys.bundle(BundleId::new(Scope::Global, true)),
            "t1:dashboard:bundle:SUPERADMIN_GLOBAL:include=true"
        );
        assert_eq!(keys.bundle_scan_pattern(), "t1:dashboard:bundle:*");
        let id = Uuid::parse_str("a11dfb63-4b18-4eb8-872e-747af2e37c46").unwrap();
        assert_eq!(
            keys.tenant_reads(id),
            "t1:dashboard:reads:a11dfb63-4b18-4eb8-872e-747af2e37c46"
        );
        assert!(!keys.tenant_reads(id).starts_with("t1:dashboard:bundle:"));
    }

    #[test]
    fn tenant_ids_are_accepted_only_hyphenated() {
        let id = "a11dfb63-4b18-4eb8-872e-747af2e37c46";
        assert_eq!(parse_tenant_id(&id.to_uppercase()), Uuid::parse_str(id).ok());
        for other in [
            "a11dfb634b184eb8872e747af2e37c46",
            "{a11dfb63-4b18-4eb8-872e-747af2e37c46}",
            "*",
            "",
        ] {
            assert_eq!(parse_tenant_id(other), None, "{other}");
        }
        assert_eq!(parse_tenant_id(&format!("urn:uuid:{id}")), None);
    }

    #[test]
    fn glob_characters_in_prefix_are_escaped_in_scan_pattern() {
        let keys = Keys::new("a*b?[c]\\:");
        assert_eq!(
            keys.bundle_scan_pattern(),
            "a\\*b\\?\\[c\\]\\\\:dashboard:bundle:*"
        );
    }
}
