//! The Redis key scheme: every key this product reads or writes is built here.

use uuid::Uuid;

use crate::bundle::identity::{BundleId, Scope};
use crate::env::{ConfigError, Env};

/// The namespace of dashboard bundles, after the configured prefix.
pub const BUNDLE_NAMESPACE: &str = "dashboard:bundle:";

#[derive(Debug, Clone, Default)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `CACHE_KEY_PREFIX`: prepended to every key, empty in production. No braces: they would move
    /// keys between Redis Cluster slots (see [`Keys::recompute_lease`]).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let prefix = env.optional("CACHE_KEY_PREFIX").unwrap_or_default();
        if prefix.contains(['{', '}']) {
            return Err(ConfigError::Invalid {
                name: "CACHE_KEY_PREFIX",
                reason: "must not contain { or } (Redis Cluster hash tags)".into(),
            });
        }
        Ok(Self::new(prefix))
    }

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
        format!("{}{BUNDLE_NAMESPACE}*", self.escaped_prefix())
    }

    /// A SCAN pattern matching the scoped and widget keys of one tenant's bundles (an employee's, a
    /// team's, a widget selection: every key past `:include=<bool>:`), and nothing else.
    pub fn scoped_bundles_pattern(&self, tenant: Uuid) -> String {
        format!(
            "{}{BUNDLE_NAMESPACE}{}:include=*:*",
            self.escaped_prefix(),
            tenant.hyphenated()
        )
    }

    fn escaped_prefix(&self) -> String {
        let mut escaped = String::with_capacity(self.prefix.len());
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped
    }

    /// The short lease that lets one caller recompute a bundle while others wait or serve stale:
    /// `dashboard:lease:{<bundle key>}`, whose hash tag puts it in the bundle key's cluster slot, so
    /// that taking it and reading the bundle, or storing the bundle and releasing it, are one round
    /// trip in a cluster too.
    pub fn recompute_lease(&self, id: BundleId) -> String {
        format!("{}dashboard:lease:{{{}}}", self.prefix, self.bundle(id))
    }

    /// The hours (UTC, unix hours) in which tenant `tenant`'s dashboard was read, a hash kept for
    /// [`super::read_history::WINDOW_DAYS`]: what the warmer learns a tenant's habits from. Outside the
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
    fn a_prefix_with_braces_is_refused() {
        for prefix in ["app{1}:", "a{b:", "a}b:"] {
            let env = Env::new(|name| (name == "CACHE_KEY_PREFIX").then(|| prefix.to_owned()));
            assert!(Keys::from_env(&env).is_err(), "{prefix}");
        }
        let env = Env::new(|name| (name == "CACHE_KEY_PREFIX").then(|| "app:".to_owned()));
        assert_eq!(Keys::from_env(&env).unwrap().prefix(), "app:");
    }

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
            "dashboard:lease:{dashboard:bundle:SUPERADMIN_GLOBAL:include=true}"
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
        let tenant = Uuid::from_u128(1);
        let mut scoped = BundleId::new(Scope::Tenant(tenant), true);
        scoped.assignees = crate::bundle::identity::Assignees::Team(Uuid::from_u128(2));
        assert!(keys
            .bundle(scoped)
            .starts_with("t1:dashboard:bundle:00000000-0000-0000-0000-000000000001:include=true:"));
        assert_eq!(
            keys.scoped_bundles_pattern(tenant),
            "t1:dashboard:bundle:00000000-0000-0000-0000-000000000001:include=*:*"
        );
        let id = Uuid::parse_str("a11dfb63-4b18-4eb8-872e-747af2e37c46").unwrap();
        assert_eq!(
            keys.tenant_reads(id),
            "t1:dashboard:reads:a11dfb63-4b18-4eb8-872e-747af2e37c46"
        );
        assert!(!keys.tenant_reads(id).starts_with("t1:dashboard:bundle:"));
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
