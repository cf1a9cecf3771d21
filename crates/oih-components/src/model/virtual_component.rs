//! `VirtualComponent`: a named, versioned entry of the component catalogue, visible to its
//! tenant (or to everyone when public).

use serde::{Deserialize, Serialize};

use super::{ACCESS_VALUES, Owner, Problems};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualComponent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version_id: Option<String>,
    #[serde(default)]
    pub versions: Vec<VersionRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default = "private")]
    pub access: String,
    #[serde(default)]
    pub owners: Vec<Owner>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn private() -> String {
    "private".into()
}

fn yes() -> bool {
    true
}

/// An entry of `versions`: which ComponentVersion, and its labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

impl VirtualComponent {
    pub fn is_public(&self) -> bool {
        self.access == "public"
    }

    pub fn validate(&self) -> Result<(), oih_http::ApiError> {
        let mut p = Problems::default();
        p.required_text("name", self.name.as_deref());
        p.one_of("access", &self.access, ACCESS_VALUES);
        p.object_id("defaultVersionId", self.default_version_id.as_deref());
        if self.owners.is_empty() {
            p.required("owners", None::<&()>);
        }
        for (i, owner) in self.owners.iter().enumerate() {
            p.required_text(&format!("owners.{i}.id"), Some(&owner.id));
            p.required_text(&format!("owners.{i}.type"), Some(&owner.kind));
        }
        for (i, version) in self.versions.iter().enumerate() {
            p.object_id(&format!("versions.{i}.id"), version.id.as_deref());
        }
        p.finish()
    }
}
