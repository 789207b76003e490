//! Which bundle is meant: whose data it covers ([`Scope`]) and whether test rows count ([`BundleId`]),
//! and the one accepted spelling of a tenant id.

use std::fmt;

use uuid::Uuid;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
