//! IAM's permission catalogue (iam-ils.md §5.1), in the order `GET /api/v1/permissions`
//! lists it, and the effective-permission merge of §5.2.

/// Permissions a tenant admin may put into roles and accounts of their own tenant.
pub const COMMON_PERMISSIONS: &[&str] = &[
    "tenant.all",
    "tenant.account.read",
    "tenant.account.create",
    "tenant.account.update",
    "tenant.account.delete",
    "tenant.membership.create",
    "tenant.membership.update",
    "tenant.membership.delete",
    "tenant.profile.read",
    "tenant.profile.update",
    "tenant.profile.delete",
    "tenant.roles.read",
    "tenant.roles.create",
    "tenant.roles.update",
    "tenant.roles.delete",
    "tenant.flows.read",
    "tenant.flows.create",
    "tenant.flows.update",
    "tenant.flows.delete",
    "metadata.domains.crud",
    "secrets.secret.readRaw",
    "secrets.authClient.readRaw",
];

/// Permissions only an admin may grant, and only on accounts and tokens.
pub const RESTRICTED_PERMISSIONS: &[&str] = &[
    "all",
    "iam.tenant.create",
    "iam.tenant.read",
    "iam.tenant.update",
    "iam.tenant.delete",
    "iam.secret.create",
    "iam.secret.read",
    "iam.key.create",
    "iam.key.read",
    "iam.key.delete",
    "iam.account.create",
    "iam.account.read",
    "iam.account.update",
    "iam.account.delete",
    "iam.token.create",
    "iam.token.update",
    "iam.token.delete",
    "iam.token.introspect",
    "secrets.secret.deleteAny",
    "secrets.authClient.deleteAny",
];

pub fn is_common(permission: &str) -> bool {
    COMMON_PERMISSIONS.contains(&permission)
}

/// Concatenates permission lists, keeping the first occurrence of each.
pub fn merge<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for p in list {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_sizes_match_oih() {
        assert_eq!(COMMON_PERMISSIONS.len(), 22);
        assert_eq!(RESTRICTED_PERMISSIONS.len(), 20);
        assert!(is_common("tenant.all"));
        assert!(!is_common("all"));
        assert!(!is_common("flows.read"));
    }

    #[test]
    fn merge_keeps_order_and_drops_duplicates() {
        let a = vec!["x".to_owned(), "y".to_owned()];
        let b = vec!["y".to_owned(), "z".to_owned()];
        assert_eq!(merge([a.as_slice(), b.as_slice()]), ["x", "y", "z"]);
    }
}
