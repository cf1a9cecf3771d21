//! `Component`: what a flow node's `componentId` points at, and how to run it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ACCESS_VALUES, Owner, Problems};

/// How the component's code is obtained and run. OIH knows `docker` and `slug`; `process`
/// (a local child process) and `builtin` (a component compiled into the hub) are ours.
pub const DISTRIBUTION_TYPES: &[&str] = &["docker", "slug", "process", "builtin"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// component.json-style `actions` map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "private")]
    pub access: String,
    #[serde(default)]
    pub is_global: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Running state of a global component (set by start/stop).
    #[serde(default)]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<Value>,
    #[serde(default)]
    pub distribution: Distribution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// Copied by the orchestrator into the component's token; only admins may set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_flags: Option<SpecialFlags>,
}

fn private() -> String {
    "private".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    #[serde(rename = "type", default = "docker")]
    pub kind: String,
    /// docker: the image to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// docker: a secret holding the registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_secret_id: Option<String>,
    /// slug: where the slug is downloaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug_url: Option<String>,
    /// process: program and arguments (no shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// process: working directory of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// process: extra environment variables for the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// builtin: the name of the Rust component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn docker() -> String {
    "docker".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<CpuMemory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<CpuMemory>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuMemory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Unknown flags are dropped (Mongoose strict sub-schema).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecialFlags {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged_component: Option<bool>,
}

impl Component {
    pub fn has_user_owner(&self, sub: &str) -> bool {
        self.owners.iter().any(|o| o.is_user(sub))
    }

    pub fn is_public(&self) -> bool {
        self.access == "public"
    }

    /// Mongoose minimizes empty sub-objects away; so do we, so a component reads back as
    /// OIH's would.
    pub fn minimize(&mut self) {
        if self.resources.as_ref().is_some_and(|r| {
            r.limits.as_ref().is_none_or(|l| *l == CpuMemory::default())
                && r.requests
                    .as_ref()
                    .is_none_or(|l| *l == CpuMemory::default())
        }) {
            self.resources = None;
        }
        if self.special_flags == Some(SpecialFlags::default()) {
            self.special_flags = None;
        }
    }

    /// Checks every rule; `builtins` are the names a `builtin` distribution may refer to.
    pub fn validate(&self, builtins: &HashSet<String>) -> Result<(), oih_http::ApiError> {
        let mut p = Problems::default();
        p.required_text("name", self.name.as_deref());
        p.max_len("name", self.name.as_deref(), 50);
        p.max_len("description", self.description.as_deref(), 300);
        p.max_len("applicationUid", self.application_uid.as_deref(), 100);
        p.one_of("access", &self.access, ACCESS_VALUES);
        for (i, owner) in self.owners.iter().enumerate() {
            p.required_text(&format!("owners.{i}.id"), Some(&owner.id));
            p.required_text(&format!("owners.{i}.type"), Some(&owner.kind));
        }
        self.distribution.check(&mut p, builtins);
        p.finish()
    }
}

impl Distribution {
    fn check(&self, p: &mut Problems, builtins: &HashSet<String>) {
        p.one_of("distribution.type", &self.kind, DISTRIBUTION_TYPES);
        p.max_len("distribution.image", self.image.as_deref(), 300);
        p.max_len("distribution.slugUrl", self.slug_url.as_deref(), 300);
        p.object_id(
            "distribution.registrySecretId",
            self.registry_secret_id.as_deref(),
        );
        match self.kind.as_str() {
            "docker" => p.required_text("distribution.image", self.image.as_deref()),
            "slug" => p.required_text("distribution.slugUrl", self.slug_url.as_deref()),
            "process"
                if self
                    .command
                    .as_ref()
                    .and_then(|c| c.first())
                    .is_none_or(String::is_empty) =>
            {
                p.custom(
                    "distribution.command",
                    "Path `distribution.command` is required: a non-empty array, the program first.",
                );
            }
            "builtin" => match self.name.as_deref() {
                None | Some("") => p.required_text("distribution.name", None),
                Some(name) if !builtins.contains(name) => p.custom(
                    "distribution.name",
                    format!("`{name}` is not a built-in component of this hub."),
                ),
                Some(_) => {}
            },
            _ => {}
        }
    }
}
