//! The service's settings, with OIH's environment variable names (data-services.md §2.1).

use std::str::FromStr;

use crate::builtin::BuiltinDescriptor;

pub const GITHUB_RAW_URL: &str = "https://raw.githubusercontent.com";

/// Component Repository settings. The database, bus, port and IAM settings are the binary's.
#[derive(Debug, Clone, PartialEq, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "component-repository")]
pub struct Config {
    /// Permission needed to create components and virtual components (and their versions).
    #[arg(
        long = "component-create-permission",
        env = "COMPONENT_CREATE_PERMISSION",
        default_value = "components.create"
    )]
    pub create_permission: String,

    /// Permission needed to update components, virtual components and versions.
    #[arg(
        long = "component-update-permission",
        env = "COMPONENT_UPDATE_PERMISSION",
        default_value = "components.update"
    )]
    pub update_permission: String,

    /// Permission needed to delete components, virtual components and versions.
    #[arg(
        long = "component-delete-permission",
        env = "COMPONENT_DELETE_PERMISSION",
        default_value = "components.delete"
    )]
    pub delete_permission: String,

    /// Permission needed to create or change a tenant's component configuration.
    #[arg(
        long = "component-write-permission",
        env = "COMPONENT_WRITE_PERMISSION",
        default_value = "components.write"
    )]
    pub write_permission: String,

    /// Permission needed to start, stop and restart global components.
    #[arg(
        long = "components-admin-permission",
        env = "ADMIN_PERMISSION",
        default_value = "all"
    )]
    pub admin_permission: String,

    /// Largest JSON body accepted by this service (`100kb`, `1mb`, or a byte count); larger
    /// bodies are answered with 413.
    #[arg(
        long = "components-max-request-body-size",
        env = "MAX_REQUEST_BODY_SIZE",
        default_value = "100kb"
    )]
    pub max_request_body_size: ByteSize,

    /// Where `PATCH /components/enrich/{id}` downloads a GitHub repository's files from
    /// (`<base>/<owner>/<repo>/master/component.json`). OIH hard-codes GitHub's raw host.
    #[arg(
        long = "components-github-raw-url",
        env = "OIH_COMPONENTS_GITHUB_RAW_URL",
        default_value = GITHUB_RAW_URL
    )]
    pub github_raw_url: String,

    /// The built-in (Rust) components the runtime provides. Listed on start as public,
    /// read-only components so flows can reference them by id. Set by the binary, not on the
    /// command line.
    #[arg(skip)]
    pub builtins: Vec<BuiltinDescriptor>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            create_permission: "components.create".into(),
            update_permission: "components.update".into(),
            delete_permission: "components.delete".into(),
            write_permission: "components.write".into(),
            admin_permission: "all".into(),
            max_request_body_size: ByteSize(100 * 1024),
            github_raw_url: GITHUB_RAW_URL.into(),
            builtins: Vec::new(),
        }
    }
}

/// A size in bytes written as body-parser writes limits: `512`, `100kb`, `1mb`, `1gb`
/// (1024-based, case-insensitive, optional `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: expected a number of bytes, optionally followed by b, kb, mb or gb")]
pub struct ParseByteSizeError(String);

impl FromStr for ByteSize {
    type Err = ParseByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (digits, unit) = lower.split_at(split);
        let scale: usize = match unit.trim() {
            "" | "b" => 1,
            "kb" => 1 << 10,
            "mb" => 1 << 20,
            "gb" => 1 << 30,
            _ => return Err(ParseByteSizeError(s.to_owned())),
        };
        digits
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|n| *n > 0)
            .map(ByteSize)
            .ok_or_else(|| ParseByteSizeError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn command_line_defaults_are_the_default_config() {
        let cli = Cli::try_parse_from(["oih"]).expect("parse");
        assert_eq!(cli.config, Config::default());
        let cli = Cli::try_parse_from(["oih", "--components-max-request-body-size", "1mb"])
            .expect("parse");
        assert_eq!(cli.config.max_request_body_size, ByteSize(1 << 20));
    }

    #[test]
    fn sizes() {
        assert_eq!("100kb".parse(), Ok(ByteSize(102_400)));
        assert_eq!("1MB".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("512".parse(), Ok(ByteSize(512)));
        assert_eq!("2 gb".parse(), Ok(ByteSize(2 << 30)));
        for bad in ["", "kb", "0", "10tb", "-1kb"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
