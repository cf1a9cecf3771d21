//! Who may see and change what (data-services.md §2.4, §2.5).

use oih_core::Identity;
use oih_store::Filter;
use serde_json::json;

use crate::model::component::Component;
use crate::model::virtual_component::VirtualComponent;

/// Lets a service account read every component (the orchestrator resolves flow nodes).
pub const ANY_READ: &str = "components.any.read";

/// `canRead`: public, a user owner, or a holder of `components.any.read` (admins included).
pub fn can_read(identity: &Identity, component: &Component) -> bool {
    identity.has_one_of(&[ANY_READ])
        || component.is_public()
        || component.has_user_owner(&identity.sub)
}

/// `canWrite`: an admin or a user owner.
pub fn can_write(identity: &Identity, component: &Component) -> bool {
    identity.is_admin() || component.has_user_owner(&identity.sub)
}

/// The components `GET /components` lists: everything for an admin, otherwise the public
/// ones and those the caller owns.
pub fn listable(identity: &Identity) -> Filter {
    if identity.is_admin() {
        return Filter::All;
    }
    Filter::or([
        Filter::eq("access", "public"),
        Filter::ArrayContains("owners".into(), json!({"id": identity.sub})),
    ])
}

/// A virtual component can be loaded when it is public, or private and the caller's tenant
/// or owned by the caller; admins load all. A missing tenant matches nothing (OIH compares
/// two undefined tenants as equal).
pub fn can_load_virtual(identity: &Identity, vc: &VirtualComponent) -> bool {
    if vc.is_public() || identity.is_admin() {
        return true;
    }
    let same_tenant = identity.tenant.is_some() && vc.tenant == identity.tenant;
    same_tenant || vc.owners.iter().any(|o| o.id == identity.sub)
}

/// `canWriteVComponent`: a public virtual component belongs to the admins.
pub fn can_write_virtual(identity: &Identity, vc: &VirtualComponent) -> bool {
    !vc.is_public() || identity.is_admin()
}

/// The virtual components the list endpoints show: active and (public, owned, or in the
/// caller's tenant). `tenant_owner` also admits those owned by the caller's tenant id, as
/// the defaults endpoint does.
pub fn listable_virtual(identity: &Identity, tenant_owner: bool) -> Filter {
    if identity.is_admin() {
        return Filter::All;
    }
    let mut visible = vec![
        Filter::eq("access", "public"),
        Filter::ArrayContains("owners".into(), json!({"id": identity.sub})),
    ];
    if let Some(tenant) = &identity.tenant {
        visible.push(Filter::eq("tenant", tenant.as_str()));
        if tenant_owner {
            visible.push(Filter::ArrayContains(
                "owners".into(),
                json!({"id": tenant}),
            ));
        }
    }
    Filter::and([Filter::eq("active", true), Filter::Or(visible)])
}
