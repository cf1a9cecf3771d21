//! OIH's two guards (data-services.md §5.3), evaluated on a domain already loaded (or found
//! missing). They are pure so that the rules are tested without HTTP.

use oih_core::Identity;
use oih_http::ApiError;

use crate::model::Domain;

/// OIH's permission for creating and changing domains and schemas (a "common" permission:
/// `tenant.all` grants it too).
pub const CRUD: &str = "metadata.domains.crud";

/// The permission OIH asks for where it means "owner, tenant admin or admin only": nobody
/// holds it, so only the ownership rules or `all` let a caller through.
pub const OWNER_ONLY: &str = "not.defined";

pub fn not_found() -> ApiError {
    ApiError::not_found("Domain not found")
}

fn forbidden() -> ApiError {
    ApiError::forbidden("Forbidden")
}

fn same_tenant(user: &Identity, domain: &Domain) -> bool {
    matches!((&user.tenant, &domain.tenant), (Some(a), Some(b)) if a == b)
}

/// `hasReadAccess`: public domains, the caller's tenant, owners and admins. Unlike OIH, a
/// domain without a tenant is not readable by a caller without one (two missing tenants do
/// not match) and does not crash the request.
pub fn read(user: &Identity, domain: Option<Domain>) -> Result<Domain, ApiError> {
    let domain = domain.ok_or_else(not_found)?;
    if domain.public
        || user.is_admin()
        || same_tenant(user, &domain)
        || user.is_owner_of(&domain.owners, domain.tenant.as_deref(), false)
    {
        Ok(domain)
    } else {
        Err(forbidden())
    }
}

/// `domainOwnerOrAllowed(permissions)`: an owner (or a tenant admin of the domain's tenant),
/// a caller holding `permissions` in the domain's tenant, or an admin. A missing domain is a
/// 404 only for callers that hold the permissions (OIH answers 403 otherwise, so the
/// existence of ids is not revealed to them).
pub fn owner_or_allowed(
    user: &Identity,
    domain: Option<Domain>,
    permissions: &[&str],
) -> Result<Domain, ApiError> {
    let has_all = permissions.is_empty() || user.can(permissions);
    let Some(domain) = domain else {
        return Err(if has_all { not_found() } else { forbidden() });
    };
    if user.is_admin()
        || user.is_owner_of(&domain.owners, domain.tenant.as_deref(), false)
        || (has_all && same_tenant(user, &domain))
    {
        Ok(domain)
    } else {
        Err(forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user_owner;

    fn user(sub: &str, tenant: &str, perms: &[&str]) -> Identity {
        Identity::new(
            sub,
            Some(tenant.into()),
            perms.iter().map(|p| (*p).to_owned()).collect(),
        )
    }

    fn domain(owner: &str, tenant: &str, public: bool) -> Domain {
        Domain {
            id: "d".into(),
            version: 1,
            name: None,
            description: None,
            public,
            owners: vec![user_owner(owner)],
            tenant: Some(tenant.into()),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn read_rules() {
        let d = domain("u1", "A", false);
        assert!(read(&user("u2", "A", &[]), Some(d.clone())).is_ok());
        assert!(read(&user("u9", "B", &["tenant.all"]), Some(d.clone())).is_err());
        assert!(read(&user("u9", "B", &["all"]), Some(d.clone())).is_ok());
        assert!(read(&user("u9", "B", &[]), Some(domain("u1", "A", true))).is_ok());
        assert_eq!(
            read(&user("u9", "B", &[]), None)
                .map(|_| ())
                .expect_err("refused")
                .status(),
            404
        );
    }

    #[test]
    fn owner_only_means_owner_tenant_admin_or_admin() {
        let d = domain("u1", "A", false);
        let check = |u: Identity| owner_or_allowed(&u, Some(d.clone()), &[OWNER_ONLY]).is_ok();
        assert!(check(user("u1", "A", &[])));
        assert!(check(user("u2", "A", &["tenant.all"])));
        assert!(check(user("u9", "B", &["all"])));
        assert!(!check(user("u2", "A", &[CRUD])));
        assert!(!check(user("u3", "B", &["tenant.all"])));
    }

    #[test]
    fn empty_permission_list_admits_the_whole_tenant() {
        let d = domain("u1", "A", false);
        assert!(owner_or_allowed(&user("u3", "A", &[]), Some(d.clone()), &[]).is_ok());
        assert!(owner_or_allowed(&user("u3", "B", &[]), Some(d), &[]).is_err());
        let missing = owner_or_allowed(&user("u3", "A", &[]), None, &[CRUD]);
        assert_eq!(missing.map(|_| ()).expect_err("refused").status(), 403);
    }
}
