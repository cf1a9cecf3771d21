//! IAM's settings, with OIH's environment variable names where OIH has one (iam-ils.md §2).

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::jwt::JwtAlgorithm;

/// A password, key or token from the configuration: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self::new(s))
    }
}

/// What `POST /login` hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenFormat {
    /// OIH's opaque 171-character tokens, checked by introspection.
    Opaque,
    /// Signed JWTs that services can verify locally.
    Jwt,
}

const DEFAULT_ADMIN_USERNAME: &str = "admin@example.com";

/// IAM configuration. `serve` flattens it into its own command line.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "iam")]
pub struct Config {
    /// Username (an e-mail address) of the admin account created on first start.
    #[arg(
        long = "iam-admin-username",
        env = "IAM_ACC_ADMIN_USERNAME",
        default_value = DEFAULT_ADMIN_USERNAME
    )]
    pub admin_username: String,

    /// Password of that admin account. When unset, a random one is generated and printed once
    /// on first start.
    #[arg(long = "iam-admin-password", env = "IAM_ACC_ADMIN_PASSWORD")]
    pub admin_password: Option<Secret>,

    /// Shorter names for the two settings above (used when OIH's names are not set).
    #[arg(
        long = "iam-admin-username-alias",
        env = "IAM_ADMIN_USERNAME",
        hide = true
    )]
    pub admin_username_alias: Option<String>,
    #[arg(
        long = "iam-admin-password-alias",
        env = "IAM_ADMIN_PASSWORD",
        hide = true
    )]
    pub admin_password_alias: Option<Secret>,

    /// Username of the service account created on first start for the hub's own
    /// service-to-service calls (it gets `all` and a persistent token).
    #[arg(
        long = "iam-service-account-username",
        env = "IAM_ACC_SERVICEACCOUNT_USERNAME",
        default_value = "service-iam@example.com"
    )]
    pub service_account_username: String,

    /// Default lifespan of tokens (login tokens, and API tokens without `expiresIn`), as an
    /// `ms`-style duration: `90s`, `30m`, `3h`, `2d`.
    #[arg(
        long = "iam-token-lifespan",
        env = "IAM_JWT_EXPIRES",
        default_value = "3h"
    )]
    pub token_lifespan: String,

    /// Login token format: `opaque` (OIH's) or `jwt`. API tokens (`POST /api/v1/tokens`,
    /// including persistent ones) stay opaque either way, so they can be revoked.
    #[arg(
        long = "iam-token-format",
        env = "IAM_TOKEN_FORMAT",
        value_enum,
        default_value = "opaque"
    )]
    pub token_format: TokenFormat,

    /// JWT signature family: `HMAC` (HS256) or `RSA` (RS256, with a JWKS endpoint).
    #[arg(
        long = "iam-jwt-algorithm-type",
        env = "IAM_JWT_ALGORITHM_TYPE",
        value_enum,
        default_value = "HMAC"
    )]
    pub jwt_algorithm: JwtAlgorithm,

    /// HS256 secret. When unset, secrets are generated, stored and rotated like RSA keys.
    #[arg(
        long = "iam-jwt-secret",
        env = "IAM_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<Secret>,

    /// JWT `aud` claim.
    #[arg(
        long = "iam-jwt-audience",
        env = "IAM_JWT_AUDIENCE",
        default_value = "example.com"
    )]
    pub jwt_audience: String,

    /// IAM's public base URL, the JWT `iss` claim.
    #[arg(
        long = "iam-baseurl",
        env = "IAM_BASEURL",
        default_value = "https://127.0.0.1:3099"
    )]
    pub base_url: String,

    /// How long a generated JWT key signs before a new one replaces it, in seconds (it keeps
    /// verifying for one token lifespan longer).
    #[arg(
        long = "iam-jwt-key-rotation-seconds",
        env = "IAM_JWT_KEY_ROTATION_SECONDS",
        default_value_t = 30 * 24 * 3600
    )]
    pub jwt_key_rotation_seconds: u64,

    /// Memory cost of new argon2id password hashes, in KiB.
    #[arg(
        long = "iam-argon2-memory-kib",
        env = "IAM_ARGON2_MEMORY_KIB",
        default_value_t = 19 * 1024
    )]
    pub argon2_memory_kib: u32,

    /// Time cost (passes) of new argon2id password hashes.
    #[arg(
        long = "iam-argon2-iterations",
        env = "IAM_ARGON2_ITERATIONS",
        default_value_t = 2
    )]
    pub argon2_iterations: u32,

    /// How long the in-process authenticator trusts a token it has checked, in seconds, and
    /// never past the token's own expiry (revocations made through this IAM clear it at once).
    #[arg(
        long = "iam-auth-cache-seconds",
        env = "IAM_AUTH_CACHE_SECONDS",
        default_value_t = 10
    )]
    pub auth_cache_seconds: u64,

    /// A token's sliding expiry is pushed forward at most this often, in seconds, so that
    /// using a token does not write to the database on every request.
    #[arg(
        long = "iam-token-refresh-seconds",
        env = "IAM_TOKEN_REFRESH_SECONDS",
        default_value_t = 300
    )]
    pub token_refresh_seconds: u64,

    /// Failed logins for one username before further attempts are refused for a while.
    #[arg(
        long = "iam-login-max-failures",
        env = "IAM_LOGIN_MAX_FAILURES",
        default_value_t = 5
    )]
    pub login_max_failures: u32,

    /// How long a username stays locked after too many failed logins, in seconds.
    #[arg(
        long = "iam-login-lockout-seconds",
        env = "IAM_LOGIN_LOCKOUT_SECONDS",
        default_value_t = 60
    )]
    pub login_lockout_seconds: u64,

    /// Serve the OpenID Connect provider: discovery at `/.well-known/openid-configuration`,
    /// `/op/*` and admin client registration at `/api/v1/oidc/clients` (OIH mounted its
    /// provider only with `IAM_AUTH_TYPE=oidc`). Its ID tokens are RS256-signed with RSA keys
    /// that are generated and rotated like the JWT keys, whatever the login token format.
    #[arg(
        long = "iam-oidc-enabled",
        env = "IAM_OIDC_ENABLED",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub oidc_enabled: bool,

    /// Lifetime of an OIDC authorization code, in seconds (single use in any case).
    #[arg(
        long = "iam-oidc-ttl-authcode",
        env = "IAM_OIDC_TTL_AUTHCODE",
        default_value_t = 60
    )]
    pub oidc_code_ttl_seconds: u64,

    /// Lifetime of an OIDC access token (authorization code and client credentials grants), in
    /// seconds.
    #[arg(
        long = "iam-oidc-ttl-accesstoken",
        env = "IAM_OIDC_TTL_ACCESSTOKEN",
        default_value_t = 3600
    )]
    pub oidc_access_token_ttl_seconds: u64,

    /// Lifetime of an OIDC ID token, in seconds.
    #[arg(
        long = "iam-oidc-ttl-idtoken",
        env = "IAM_OIDC_TTL_IDTOKEN",
        default_value_t = 3600
    )]
    pub oidc_id_token_ttl_seconds: u64,

    /// Lifetime of an OIDC refresh token, in seconds; each use replaces it with a new one.
    #[arg(
        long = "iam-oidc-ttl-refreshtoken",
        env = "IAM_OIDC_TTL_REFRESHTOKEN",
        default_value_t = 1_209_600
    )]
    pub oidc_refresh_token_ttl_seconds: u64,
}

/// The same values as the flags' defaults (a test checks they agree), for code that builds a
/// configuration without a command line (tests, benchmarks).
impl Default for Config {
    fn default() -> Self {
        Self {
            admin_username: DEFAULT_ADMIN_USERNAME.into(),
            admin_password: None,
            admin_username_alias: None,
            admin_password_alias: None,
            service_account_username: "service-iam@example.com".into(),
            token_lifespan: "3h".into(),
            token_format: TokenFormat::Opaque,
            jwt_algorithm: JwtAlgorithm::Hmac,
            jwt_secret: None,
            jwt_audience: "example.com".into(),
            base_url: "https://127.0.0.1:3099".into(),
            jwt_key_rotation_seconds: 30 * 24 * 3600,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            auth_cache_seconds: 10,
            token_refresh_seconds: 300,
            login_max_failures: 5,
            login_lockout_seconds: 60,
            oidc_enabled: false,
            oidc_code_ttl_seconds: 60,
            oidc_access_token_ttl_seconds: 3600,
            oidc_id_token_ttl_seconds: 3600,
            oidc_refresh_token_ttl_seconds: 1_209_600,
        }
    }
}

impl Config {
    /// The bootstrap admin's username: OIH's `IAM_ACC_ADMIN_USERNAME` when given, else
    /// `IAM_ADMIN_USERNAME`, else the default.
    pub(crate) fn bootstrap_admin_username(&self) -> &str {
        match &self.admin_username_alias {
            Some(alias) if self.admin_username == DEFAULT_ADMIN_USERNAME => alias,
            _ => &self.admin_username,
        }
    }

    /// The bootstrap admin's password: `IAM_ACC_ADMIN_PASSWORD`, else `IAM_ADMIN_PASSWORD`.
    pub(crate) fn bootstrap_admin_password(&self) -> Option<&Secret> {
        self.admin_password
            .as_ref()
            .or(self.admin_password_alias.as_ref())
    }

    pub(crate) fn auth_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.auth_cache_seconds)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::IntrospectionConfig;

    /// `serve` flattens both into one command line: names must not clash.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        iam: Config,
        #[command(flatten)]
        introspection: IntrospectionConfig,
    }

    #[test]
    fn default_matches_the_flag_defaults() {
        let parsed = Cli::try_parse_from(["oih"]).expect("parse");
        // Debug shows every field (secrets masked); env vars of the test process could
        // differ, so only compare when none of IAM's is set.
        if std::env::vars().any(|(k, _)| k.starts_with("IAM_")) {
            eprintln!("skipping: IAM_* variables are set in this environment");
            return;
        }
        assert_eq!(
            format!("{:?}", parsed.iam),
            format!("{:?}", Config::default())
        );
    }

    #[test]
    fn the_short_admin_names_are_read_when_oihs_are_not_set() {
        let cli = Cli::try_parse_from([
            "oih",
            "--iam-admin-username-alias",
            "ops@example.com",
            "--iam-admin-password-alias",
            "pw1",
        ])
        .expect("parse");
        assert_eq!(cli.iam.bootstrap_admin_username(), "ops@example.com");
        assert_eq!(
            cli.iam.bootstrap_admin_password().map(Secret::expose),
            Some("pw1")
        );
        let cli = Cli::try_parse_from([
            "oih",
            "--iam-admin-username",
            "oih@example.com",
            "--iam-admin-username-alias",
            "ops@example.com",
            "--iam-admin-password",
            "pw0",
            "--iam-admin-password-alias",
            "pw1",
        ])
        .expect("parse");
        assert_eq!(cli.iam.bootstrap_admin_username(), "oih@example.com");
        assert_eq!(
            cli.iam.bootstrap_admin_password().map(Secret::expose),
            Some("pw0")
        );
    }

    /// Every IAM setting can be given in the environment (OIH services are configured by
    /// environment alone), under these names.
    #[test]
    fn every_setting_has_its_environment_variable() {
        let command = Cli::command();
        let env_of = |flag: &str| {
            command
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("no flag --{flag}"))
                .get_env()
                .and_then(|e| e.to_str())
                .map(str::to_owned)
        };
        let expected = [
            ("iam-admin-username", "IAM_ACC_ADMIN_USERNAME"),
            ("iam-admin-password", "IAM_ACC_ADMIN_PASSWORD"),
            ("iam-admin-username-alias", "IAM_ADMIN_USERNAME"),
            ("iam-admin-password-alias", "IAM_ADMIN_PASSWORD"),
            (
                "iam-service-account-username",
                "IAM_ACC_SERVICEACCOUNT_USERNAME",
            ),
            ("iam-token-lifespan", "IAM_JWT_EXPIRES"),
            ("iam-token-format", "IAM_TOKEN_FORMAT"),
            ("iam-jwt-algorithm-type", "IAM_JWT_ALGORITHM_TYPE"),
            ("iam-jwt-secret", "IAM_JWT_SECRET"),
            ("iam-jwt-audience", "IAM_JWT_AUDIENCE"),
            ("iam-baseurl", "IAM_BASEURL"),
            (
                "iam-jwt-key-rotation-seconds",
                "IAM_JWT_KEY_ROTATION_SECONDS",
            ),
            ("iam-argon2-memory-kib", "IAM_ARGON2_MEMORY_KIB"),
            ("iam-argon2-iterations", "IAM_ARGON2_ITERATIONS"),
            ("iam-auth-cache-seconds", "IAM_AUTH_CACHE_SECONDS"),
            ("iam-token-refresh-seconds", "IAM_TOKEN_REFRESH_SECONDS"),
            ("iam-login-max-failures", "IAM_LOGIN_MAX_FAILURES"),
            ("iam-login-lockout-seconds", "IAM_LOGIN_LOCKOUT_SECONDS"),
            ("iam-oidc-enabled", "IAM_OIDC_ENABLED"),
            ("iam-oidc-ttl-authcode", "IAM_OIDC_TTL_AUTHCODE"),
            ("iam-oidc-ttl-accesstoken", "IAM_OIDC_TTL_ACCESSTOKEN"),
            ("iam-oidc-ttl-idtoken", "IAM_OIDC_TTL_IDTOKEN"),
            ("iam-oidc-ttl-refreshtoken", "IAM_OIDC_TTL_REFRESHTOKEN"),
            ("introspect-endpoint-basic", "INTROSPECT_ENDPOINT_BASIC"),
            ("iam-token", "IAM_TOKEN"),
            ("iam-token-cache-ttl", "IAM_TOKEN_CACHE_TTL"),
            ("iam-jwks-url", "IAM_JWKS_URL"),
            ("iam-jwt-verify-secret", "IAM_JWT_SECRET"),
            ("iam-jwt-issuer", "IAM_BASEURL"),
            ("iam-jwt-verify-audience", "IAM_JWT_AUDIENCE"),
        ];
        for (flag, env) in expected {
            assert_eq!(env_of(flag).as_deref(), Some(env), "--{flag}");
        }
        // And no flag of either group was forgotten in the list above.
        let flags: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .collect();
        assert_eq!(flags.len(), expected.len(), "{flags:?}");
    }

    #[test]
    fn configs_compose_and_default_like_oih() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["oih", "--iam-admin-password", "pw"]).expect("parse");
        assert_eq!(cli.iam.admin_username, "admin@example.com");
        assert_eq!(cli.iam.token_lifespan, "3h");
        assert_eq!(cli.iam.token_format, TokenFormat::Opaque);
        assert_eq!(format!("{:?}", cli.iam.admin_password), "Some(Secret(***))");
        assert_eq!(cli.introspection.iam_token.expose(), "NoToken");
        assert!(!cli.iam.oidc_enabled);
        let cli = Cli::try_parse_from(["oih", "--iam-oidc-enabled", "true"]).expect("parse");
        assert!(cli.iam.oidc_enabled);
    }
}
