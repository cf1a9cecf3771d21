//! The verified caller of an HTTP request, and OIH's permission rules (`lib/iam-utils`):
//! `all` grants everything; `tenant.all` grants only the "common" tenant-level permissions.

use serde::{Deserialize, Serialize};

pub const PERMISSION_ALL: &str = "all";
pub const PERMISSION_TENANT_ALL: &str = "tenant.all";

/// Permissions a tenant admin (`tenant.all`) holds without being granted them. `flows.*`,
/// `components.*`, `logs.*` and `templates.*` are deliberately not here, as in OIH.
const TENANT_ADMIN_COMMON: &[&str] = &[
    "metadata.domains.crud",
    "secrets.secret.readRaw",
    "secrets.authClient.readRaw",
    "rds.rawRecord.read",
    "rds.rawRecord.write",
];

fn is_common(permission: &str) -> bool {
    permission.starts_with("tenant.") || TENANT_ADMIN_COMMON.contains(&permission)
}

/// Who made a request, as established by the authentication layer (IAM fills it in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Account id (OIH's `sub`).
    pub sub: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Set when the caller is a flow step using its step token: it acts for the flow's
    /// starter (`sub`) but may reach only what [`StepScope`] names, nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepScope>,
}

/// What a step token gives access to: its own node's secret and snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepScope {
    pub flow_id: String,
    pub step_id: String,
    /// The node's `credentials_id`, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
}

impl Identity {
    pub fn new(sub: impl Into<String>, tenant: Option<String>, permissions: Vec<String>) -> Self {
        Self {
            sub: sub.into(),
            username: String::new(),
            tenant,
            permissions,
            step: None,
        }
    }

    pub fn has(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Holds `all`.
    pub fn is_admin(&self) -> bool {
        self.has(PERMISSION_ALL)
    }

    /// Holds `tenant.all`.
    pub fn is_tenant_admin(&self) -> bool {
        self.has(PERMISSION_TENANT_ALL)
    }

    /// OIH's `can(perms)`: admin, or tenant admin asking only for common permissions, or
    /// holding every permission asked for.
    pub fn can(&self, required: &[&str]) -> bool {
        self.is_admin()
            || (self.is_tenant_admin() && required.iter().all(|p| is_common(p)))
            || required.iter().all(|p| self.has(p))
    }

    /// OIH's `hasOneOf(perms)`: admin, or holding any one of them.
    pub fn has_one_of(&self, any_of: &[&str]) -> bool {
        self.is_admin() || any_of.iter().any(|p| self.has(p))
    }

    /// OIH's `isOwnerOf`: a USER owner with the caller's id, or the entity is in the caller's
    /// tenant and the caller is a tenant admin (or `all_tenant_users`). Unlike OIH, a missing
    /// tenant on either side never matches (OIH treats two undefined tenants as equal).
    pub fn is_owner_of(
        &self,
        owners: &[Owner],
        entity_tenant: Option<&str>,
        all_tenant_users: bool,
    ) -> bool {
        if owners
            .iter()
            .any(|o| o.kind == OwnerType::User && o.id == self.sub)
        {
            return true;
        }
        let Some(tenant) = self.tenant.as_deref() else {
            return false;
        };
        let same_tenant = entity_tenant == Some(tenant)
            || owners
                .iter()
                .any(|o| o.kind == OwnerType::Tenant && o.id == tenant);
        same_tenant && (self.is_tenant_admin() || all_tenant_users)
    }
}

/// OIH spells owner types in upper case in most services (`USER`, `TENANT`) and in lower case
/// in the flow repository (`user`, `tenant`); both are read, upper case is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OwnerType {
    #[serde(alias = "user")]
    User,
    #[serde(alias = "tenant")]
    Tenant,
}

/// An entry of an entity's `owners` array: `{"id": "...", "type": "USER"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: OwnerType,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(perms: &[&str]) -> Identity {
        Identity::new(
            "u1",
            Some("t1".into()),
            perms.iter().map(|p| (*p).to_owned()).collect(),
        )
    }

    #[test]
    fn admin_can_do_anything() {
        assert!(who(&["all"]).can(&["flows.write", "secrets.secret.deleteAny"]));
        assert!(who(&["all"]).has_one_of(&["x"]));
    }

    #[test]
    fn tenant_admin_gets_only_common_permissions() {
        let ta = who(&["tenant.all"]);
        assert!(ta.can(&["tenant.flows.read"]));
        assert!(ta.can(&["metadata.domains.crud", "secrets.secret.readRaw"]));
        assert!(!ta.can(&["flows.read"]));
        assert!(!ta.can(&["tenant.flows.read", "components.write"]));
        assert!(!ta.can(&["logs.read"]));
    }

    #[test]
    fn plain_user_needs_every_permission() {
        let u = who(&["flows.read", "flows.write"]);
        assert!(u.can(&["flows.read"]));
        assert!(u.can(&["flows.read", "flows.write"]));
        assert!(!u.can(&["flows.read", "flows.control"]));
        assert!(u.has_one_of(&["flows.control", "flows.write"]));
        assert!(!u.has_one_of(&["flows.control"]));
    }

    #[test]
    fn ownership_by_user_or_tenant_admin() {
        let owners = vec![Owner {
            id: "u1".into(),
            kind: OwnerType::User,
        }];
        assert!(who(&[]).is_owner_of(&owners, None, false));
        let other = vec![Owner {
            id: "u2".into(),
            kind: OwnerType::User,
        }];
        assert!(!who(&[]).is_owner_of(&other, Some("t1"), false));
        assert!(who(&[]).is_owner_of(&other, Some("t1"), true));
        assert!(who(&["tenant.all"]).is_owner_of(&other, Some("t1"), false));
        assert!(!who(&["tenant.all"]).is_owner_of(&other, Some("t2"), false));
        let tenant_owned = vec![Owner {
            id: "t1".into(),
            kind: OwnerType::Tenant,
        }];
        assert!(who(&["tenant.all"]).is_owner_of(&tenant_owned, None, false));
    }

    #[test]
    fn owner_types_are_read_in_either_case() {
        for (wire, kind) in [
            ("USER", OwnerType::User),
            ("user", OwnerType::User),
            ("TENANT", OwnerType::Tenant),
            ("tenant", OwnerType::Tenant),
        ] {
            let owner: Owner =
                serde_json::from_str(&format!(r#"{{"id":"x","type":"{wire}"}}"#)).expect("parse");
            assert_eq!(owner.kind, kind);
        }
        assert!(serde_json::from_str::<Owner>(r#"{"id":"x","type":"group"}"#).is_err());
    }

    #[test]
    fn missing_tenants_never_match() {
        let no_tenant = Identity::new("u1", None, vec!["tenant.all".into()]);
        let other = vec![Owner {
            id: "u2".into(),
            kind: OwnerType::User,
        }];
        assert!(!no_tenant.is_owner_of(&other, None, true));
    }
}
