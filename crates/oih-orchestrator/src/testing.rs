//! Support for tests that run a real Ferryman component (this crate's and the binary's
//! end-to-end tests): OIH's Ferryman from npm, installed once outside the source tree, and
//! the small test component in `tests/ferryman-component`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The npm package OIH's Node.js components are built on, at the version they use.
pub const FERRYMAN: &str = "@openintegrationhub/ferryman";
pub const FERRYMAN_VERSION: &str = "2.4.7";

/// The test component's directory (its `component.json` and `lib/`).
pub fn ferryman_component_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ferryman-component")
}

/// Ferryman's entry point (`runGlobal.js`), installed into `$OIH_FERRYMAN_CACHE` or
/// `$HOME/.cache/oih/ferryman` when missing; `None`, with the reason printed, when `node` or
/// `npm` is not installed here.
///
/// # Panics
/// When neither directory variable is set, or `npm install` fails.
pub fn ferryman() -> Option<PathBuf> {
    if let Some(tool) = ["node", "npm"]
        .into_iter()
        .find(|t| Command::new(t).arg("--version").output().is_err())
    {
        eprintln!("skipped: `{tool}` is not installed");
        return None;
    }
    let cache = std::env::var_os("OIH_FERRYMAN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/oih/ferryman")))
        .expect("HOME or OIH_FERRYMAN_CACHE");
    let package = cache.join("node_modules").join(FERRYMAN);
    let installed = std::fs::read(package.join("package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|p| p["version"] == FERRYMAN_VERSION);
    if !installed {
        std::fs::create_dir_all(&cache).expect("ferryman cache directory");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&cache)
            .arg(format!("{FERRYMAN}@{FERRYMAN_VERSION}"))
            .status()
            .expect("npm runs");
        assert!(
            status.success(),
            "npm install {FERRYMAN}@{FERRYMAN_VERSION}: {status}"
        );
    }
    Some(package.join("runGlobal.js"))
}
