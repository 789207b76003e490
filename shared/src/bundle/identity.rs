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

/// Whose records of a tenant a bundle counts (issue 26). Every scope of a tenant shares the tenant's
/// data version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Assignees {
    /// Every record: the tenant's dashboard (and the global view).
    #[default]
    All,
    /// The records assigned to this employee or to no one: the employee's own dashboard.
    Employee(Uuid),
    /// The records assigned to a member of this team (`team_members`), unassigned ones excluded.
    Team(Uuid),
}

impl Assignees {
    /// The scope as the response's `meta.scope` names it.
    pub fn name(self) -> &'static str {
        match self {
            Assignees::All => "tenant",
            Assignees::Employee(_) => "employee",
            Assignees::Team(_) => "team",
        }
    }

    /// The employee or team id.
    pub fn id(self) -> Option<Uuid> {
        match self {
            Assignees::All => None,
            Assignees::Employee(id) | Assignees::Team(id) => Some(id),
        }
    }
}

/// The parts of a bundle beyond its stats (the `widgets` parameter). The stats are always computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Widgets(u8);

impl Widgets {
    /// Every widget, in the order of their names (the key spells them sorted).
    pub const NAMES: [&'static str; 4] = [
        "leadSourceChart",
        "recentActivities",
        "recentLeads",
        "salesPipeline",
    ];
    pub const LEAD_SOURCE_CHART: Self = Self(1);
    pub const RECENT_ACTIVITIES: Self = Self(2);
    pub const RECENT_LEADS: Self = Self(4);
    pub const SALES_PIPELINE: Self = Self(8);
    pub const ALL: Self = Self(15);

    /// A comma list of widget names, each at most once; `None` if a name is unknown or repeated, or the
    /// list is empty.
    pub fn parse(list: &str) -> Option<Self> {
        let mut widgets = 0u8;
        for name in list.split(',') {
            let bit = 1u8 << Self::NAMES.iter().position(|known| *known == name)?;
            if widgets & bit != 0 {
                return None;
            }
            widgets |= bit;
        }
        Some(Self(widgets))
    }

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for Widgets {
    /// The names sorted, joined by `_`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("_")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One cached bundle: whose data it covers, whether test rows count, whose records of the tenant
/// and which widgets (`None`: all of them, the bundle without a `widgets` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BundleId {
    pub scope: Scope,
    pub include_test_data: bool,
    pub assignees: Assignees,
    pub widgets: Option<Widgets>,
}

impl BundleId {
    /// The whole tenant's (or the global) bundle with every widget.
    pub fn new(scope: Scope, include_test_data: bool) -> Self {
        Self {
            scope,
            include_test_data,
            assignees: Assignees::All,
            widgets: None,
        }
    }

    /// Both variants of one scope's whole bundle.
    pub fn both(scope: Scope) -> [Self; 2] {
        [Self::new(scope, true), Self::new(scope, false)]
    }

    /// Whether this bundle carries `widget`.
    pub fn shows(&self, widget: Widgets) -> bool {
        self.widgets.is_none_or(|w| w.contains(widget))
    }
}

impl BundleId {
    /// Whether this is a scoped or widget bundle of a tenant (not its whole dashboard).
    pub fn is_scoped(&self) -> bool {
        self.assignees != Assignees::All || self.widgets.is_some()
    }

    /// The key's part after the scope: `include=<bool>[:emp=<uuid>|:team=<uuid>][:widgets=<names>]`.
    pub fn spec(&self) -> String {
        Spec(self).to_string()
    }

    /// The bundle of `tenant` that [`BundleId::spec`] wrote as `spec`; `None` for any other text.
    pub fn from_spec(tenant: Uuid, spec: &str) -> Option<Self> {
        let mut parts = spec.split(':');
        let include_test_data = match parts.next()? {
            "include=true" => true,
            "include=false" => false,
            _ => return None,
        };
        let mut id = Self::new(Scope::Tenant(tenant), include_test_data);
        for part in parts {
            let (name, value) = part.split_once('=')?;
            match name {
                "emp" => id.assignees = Assignees::Employee(parse_tenant_id(value)?),
                "team" => id.assignees = Assignees::Team(parse_tenant_id(value)?),
                "widgets" => id.widgets = Some(Widgets::parse(&value.replace('_', ","))?),
                _ => return None,
            }
        }
        // Only the one spelling this code writes.
        (id.spec() == spec).then_some(id)
    }
}

/// The part of a bundle's key after its scope.
struct Spec<'a>(&'a BundleId);

impl fmt::Display for Spec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        write!(f, "include={}", id.include_test_data)?;
        match id.assignees {
            Assignees::All => {}
            Assignees::Employee(id) => write!(f, ":emp={}", id.hyphenated())?,
            Assignees::Team(id) => write!(f, ":team={}", id.hyphenated())?,
        }
        if let Some(widgets) = id.widgets {
            write!(f, ":widgets={widgets}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BundleId {
    /// `<scope>:include=<bool>`, then `:emp=<uuid>` or `:team=<uuid>`, then `:widgets=<names>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scope, Spec(self))
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

    #[test]
    fn scoped_keys_name_the_assignees_and_the_sorted_widgets() {
        let tenant = Uuid::from_u128(1);
        let emp = Uuid::from_u128(2);
        let mut id = BundleId::new(Scope::Tenant(tenant), false);
        id.assignees = Assignees::Employee(emp);
        id.widgets = Widgets::parse("salesPipeline,recentLeads");
        assert_eq!(
            id.to_string(),
            format!("{tenant}:include=false:emp={emp}:widgets=recentLeads_salesPipeline")
        );
        id.assignees = Assignees::Team(emp);
        id.widgets = None;
        assert_eq!(id.to_string(), format!("{tenant}:include=false:team={emp}"));
    }

    #[test]
    fn a_spec_reads_back_as_its_bundle_and_nothing_else_does() {
        let tenant = Uuid::from_u128(1);
        let mut id = BundleId::new(Scope::Tenant(tenant), false);
        id.assignees = Assignees::Team(Uuid::from_u128(2));
        id.widgets = Widgets::parse("salesPipeline,leadSourceChart");
        assert_eq!(BundleId::from_spec(tenant, &id.spec()), Some(id));
        let whole = BundleId::new(Scope::Tenant(tenant), true);
        assert_eq!(BundleId::from_spec(tenant, &whole.spec()), Some(whole));
        for junk in [
            "",
            "include=yes",
            "include=true:emp=x",
            "include=true:widgets=salesPipeline_leadSourceChart",
            "include=true:boss=00000000-0000-0000-0000-000000000002",
        ] {
            assert_eq!(BundleId::from_spec(tenant, junk), None, "{junk}");
        }
    }

    #[test]
    fn widget_lists_are_strict() {
        assert_eq!(Widgets::parse("recentLeads"), Some(Widgets::RECENT_LEADS));
        for bad in [
            "",
            "recentLeads,",
            "recentLeads,recentLeads",
            "RecentLeads",
            "funnel",
            " recentLeads",
        ] {
            assert_eq!(Widgets::parse(bad), None, "{bad:?}");
        }
    }
}
