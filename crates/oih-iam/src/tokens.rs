//! Opaque tokens (iam-ils.md §7): minting with OIH's reuse rule, lookup with the expiry checked
//! against the clock, and a sliding expiry that is written at most once per refresh interval
//! instead of on every use.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use oih_core::Identity;
use oih_store::{Filter, StoreError};
use serde_json::Value;

use crate::jwt::{Claims, looks_like_jwt};
use crate::model::{ACCOUNT_HIDDEN, Account, Role, Status, TokenDoc, TokenType, render};
use crate::state::AppState;
use crate::store::{ACCOUNTS, Stored, TOKENS};

/// Tokens longer than this are not looked up (OIH's are 171 characters).
const MAX_TOKEN_LEN: usize = 4096;

/// A token's lifetime: `expiresIn: -1` / `"-1"` never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifespan {
    Never,
    For(Duration),
}

impl Lifespan {
    /// `ms`-style strings (`"500"` = ms, `"90s"`, `"30m"`, `"3h"`, `"2d"`, `"1w"`, `"1y"`,
    /// long unit names too) and `"-1"`. OIH turned numbers into invalid dates; here the API
    /// layer passes numbers as their decimal text, so `3600000` means one hour in ms.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t == "-1" {
            return Some(Self::Never);
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().ok()?;
        let unit_ms: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1e3,
            "m" | "min" | "mins" | "minute" | "minutes" => 6e4,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3.6e6,
            "d" | "day" | "days" => 8.64e7,
            "w" | "week" | "weeks" => 6.048e8,
            "y" | "yr" | "yrs" | "year" | "years" => 3.15576e10,
            _ => return None,
        };
        let ms = n * unit_ms;
        // At least a millisecond, at most ~100 years.
        if !(1.0..=3.2e12).contains(&ms) {
            return None;
        }
        Some(Self::For(Duration::from_millis(ms as u64)))
    }

    fn expiry_from(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Never => None,
            Self::For(d) => chrono::Duration::from_std(d).ok().map(|d| now + d),
        }
    }
}

/// 128 random bytes, base64url without padding: 171 characters, like OIH's.
pub fn generate() -> String {
    let bytes: [u8; 128] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub struct MintRequest {
    pub account_id: String,
    pub kind: TokenType,
    /// As given by the caller, stored as `tokenLifeSpan`.
    pub lifespan_text: String,
    pub lifespan: Lifespan,
    pub initiator: Option<String>,
    pub inquirer: Option<String>,
    pub permissions: Vec<String>,
    pub description: String,
    /// Skip OIH's reuse of an identical existing token.
    pub force_new: bool,
}

/// Stores a new token, or (OIH's rule) returns an existing one with the same account,
/// inquirer, permissions, type and lifespan, its expiry pushed forward.
pub async fn mint(state: &AppState, req: MintRequest) -> Result<Stored<TokenDoc>, StoreError> {
    let now = Utc::now();
    let expire_at = req.lifespan.expiry_from(now);
    if !req.force_new {
        let filter = Filter::and([
            Filter::eq("accountId", req.account_id.clone()),
            Filter::eq("type", serde_json::to_value(req.kind)?),
            Filter::eq("tokenLifeSpan", req.lifespan_text.clone()),
        ]);
        let existing: Vec<Stored<TokenDoc>> = state.repo.find(TOKENS, &filter).await?;
        if let Some(mut found) = existing
            .into_iter()
            .find(|t| t.body.inquirer == req.inquirer && t.body.permissions == req.permissions)
        {
            if expire_at.is_some() {
                found.body.expire_at = expire_at;
                state
                    .repo
                    .replace_with_expiry(TOKENS, &found.id, &found.body, expire_at)
                    .await?;
            }
            return Ok(found);
        }
    }
    let doc = TokenDoc {
        token: generate(),
        kind: req.kind,
        account_id: req.account_id,
        initiator: req.initiator,
        inquirer: req.inquirer,
        permissions: req.permissions,
        description: req.description,
        token_life_span: req.lifespan_text,
        expire_at,
    };
    let stored = state.repo.insert(TOKENS, &doc, expire_at).await?;
    state
        .events
        .token_created(&stored.id, &stored.body.account_id)
        .await;
    Ok(stored)
}

/// A valid token with everything it stands for.
pub struct Resolved {
    pub token: Stored<TokenDoc>,
    pub account: Stored<Account>,
    pub roles: Vec<Stored<Role>>,
    /// Account ++ roles ++ token permissions.
    pub permissions: Vec<String>,
}

impl Resolved {
    pub fn is_admin(&self) -> bool {
        self.permissions.iter().any(|p| p == "all")
    }

    pub fn identity(&self) -> Identity {
        let mut identity = Identity::new(
            self.account.id.clone(),
            self.account.body.tenant.clone(),
            self.permissions.clone(),
        );
        identity.username = self.account.body.username.clone();
        identity
    }

    /// OIH's introspection answer (iam-ils.md §11): the account with roles populated, the
    /// merged permissions and `isAdmin`.
    pub fn introspection(&self) -> Value {
        let mut body = render(&self.account, ACCOUNT_HIDDEN);
        if let Value::Object(obj) = &mut body {
            obj.insert(
                "roles".into(),
                Value::Array(self.roles.iter().map(|r| render(r, &[])).collect()),
            );
            obj.insert("permissions".into(), Value::from(self.permissions.clone()));
            obj.insert("isAdmin".into(), Value::Bool(self.is_admin()));
            // Beyond OIH: lets a caching service stop trusting the answer when the token
            // expires. Absent for persistent tokens.
            if let Some(at) = self.token.body.expire_at {
                obj.insert("tokenExpireAt".into(), Value::String(at.to_rfc3339()));
            }
        }
        body
    }
}

/// The JWT for a freshly minted login token (JWT mode; `None` otherwise), carrying the account's current
/// effective permissions.
pub async fn sign_jwt(
    state: &AppState,
    token: &Stored<TokenDoc>,
    account: &Stored<Account>,
) -> Result<Option<String>, crate::Error> {
    let (Some(jwt), Some(exp), true) = (state.jwt.as_ref(), token.body.expire_at, state.issue_jwt)
    else {
        return Ok(None);
    };
    let (_, permissions) = state
        .resolve_roles(&account.body, &token.body.permissions)
        .await?;
    let claims = Claims {
        iss: jwt.issuer().to_owned(),
        aud: jwt.audience().to_owned(),
        sub: account.id.clone(),
        iat: token.created_at.timestamp(),
        exp: exp.timestamp(),
        jti: token.id.clone(),
        username: account.body.username.clone(),
        tenant: account.body.tenant.clone(),
        permissions,
    };
    jwt.sign(&claims).map(Some)
}

/// Looks a token up. `None` for unknown or expired tokens and for accounts that are gone or
/// not `ACTIVE`.
pub async fn resolve(state: &AppState, raw: &str) -> Result<Option<Resolved>, StoreError> {
    if raw.is_empty() || raw.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let jwt = state.jwt.as_ref().filter(|_| looks_like_jwt(raw));
    let token = match jwt {
        Some(jwt) => {
            let Some(claims) = jwt.verify(raw) else {
                return Ok(None);
            };
            // The document still decides: a logged-out JWT is no longer valid in IAM.
            state
                .repo
                .get::<TokenDoc>(TOKENS, &claims.jti)
                .await?
                .map(|mut t| {
                    // Callers (`/tokens/refresh`) hand back what was presented: the JWT.
                    t.body.token = raw.to_owned();
                    t
                })
        }
        None => {
            state
                .repo
                .find_one::<TokenDoc>(TOKENS, &Filter::eq("token", raw))
                .await?
        }
    };
    let Some(token) = token else {
        return Ok(None);
    };
    let now = Utc::now();
    // The store hides expired documents too; checking here keeps the rule in one visible place.
    if token.body.expire_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let Some(account) = state
        .repo
        .get::<Account>(ACCOUNTS, &token.body.account_id)
        .await?
    else {
        return Ok(None);
    };
    if account.body.status != Status::Active {
        return Ok(None);
    }
    // A JWT's `exp` is signed: it cannot slide.
    let token = if jwt.is_some() {
        token
    } else {
        slide(state, token, now).await
    };
    let (roles, permissions) = state
        .resolve_roles(&account.body, &token.body.permissions)
        .await?;
    Ok(Some(Resolved {
        token,
        account,
        roles,
        permissions,
    }))
}

/// OIH extends a token's expiry on every use. Here the extension is written only when it
/// would move the expiry by at least the refresh interval, so steady use costs one write per
/// interval, not one per request.
async fn slide(
    state: &AppState,
    mut token: Stored<TokenDoc>,
    now: DateTime<Utc>,
) -> Stored<TokenDoc> {
    let (Some(current), Some(Lifespan::For(d))) = (
        token.body.expire_at,
        Lifespan::parse(&token.body.token_life_span),
    ) else {
        return token;
    };
    let Some(next) = Lifespan::For(d).expiry_from(now) else {
        return token;
    };
    let step = chrono::Duration::from_std(state.refresh_every).unwrap_or_default();
    if next - current < step {
        return token;
    }
    token.body.expire_at = Some(next);
    if let Err(err) = state
        .repo
        .replace_with_expiry(TOKENS, &token.id, &token.body, Some(next))
        .await
    {
        // The token is still valid until its old expiry; failing the request would be worse.
        tracing::warn!(error = %err, "could not extend token expiry");
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifespans() {
        let ms = |n: u64| Some(Lifespan::For(Duration::from_millis(n)));
        assert_eq!(Lifespan::parse("-1"), Some(Lifespan::Never));
        assert_eq!(Lifespan::parse("3h"), ms(3 * 3_600_000));
        assert_eq!(Lifespan::parse("5m"), ms(300_000));
        assert_eq!(Lifespan::parse("2 days"), ms(2 * 86_400_000));
        assert_eq!(Lifespan::parse("1500"), ms(1500));
        assert_eq!(Lifespan::parse("1.5h"), ms(5_400_000));
        assert_eq!(Lifespan::parse("soon"), None);
        assert_eq!(Lifespan::parse("3 fortnights"), None);
        assert_eq!(Lifespan::parse("-5"), None);
        assert_eq!(Lifespan::parse("0"), None);
        assert_eq!(Lifespan::parse(""), None);
    }

    #[test]
    fn tokens_look_like_oih_tokens() {
        let t = generate();
        assert_eq!(t.len(), 171);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(t, generate());
    }
}
