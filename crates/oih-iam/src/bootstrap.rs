//! First start (iam-ils.md §9): the default global roles, the admin account, and (beyond OIH,
//! whose setup scripts did it through the API) the hub's service account with a persistent
//! token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oih_store::{Filter, StoreError};

use crate::config::{Config, Secret};
use crate::model::{Account, Role, RoleType, Safeguard, Status, TokenDoc, TokenType};
use crate::state::AppState;
use crate::store::{ACCOUNTS, ROLES, Stored, TOKENS};
use crate::tokens::{Lifespan, MintRequest, mint};
use crate::{Error, model};

const SERVICE_TOKEN_DESCRIPTION: &str = "hub service token";

const DEFAULT_ROLES: &[(&str, &[&str])] = &[
    ("ADMIN", &["all"]),
    ("USER", &["tenant.profile.read", "tenant.roles.read"]),
    (
        "TENANT_ADMIN",
        &[
            "tenant.all",
            "tenant.profile.read",
            "tenant.profile.update",
            "tenant.roles.read",
            "tenant.roles.create",
            "tenant.roles.update",
            "tenant.roles.delete",
            "tenant.flows.read",
            "tenant.flows.create",
            "tenant.flows.update",
            "tenant.flows.delete",
        ],
    ),
];

/// What the first start produced.
pub struct Outcome {
    /// The service account's persistent token (the same on every start).
    pub service_token: String,
    /// The admin password generated on this start (already printed); `None` when the admin
    /// existed or its password was configured.
    pub generated_admin_password: Option<Secret>,
}

/// Seeds what is missing.
pub async fn run(state: &AppState, config: &Config) -> Result<Outcome, Error> {
    if state.repo.count(ROLES, &Filter::All).await? == 0 {
        for (name, permissions) in DEFAULT_ROLES {
            let role = Role {
                name: (*name).to_owned(),
                kind: RoleType::Tenant,
                is_global: true,
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                description: String::new(),
                tenant: None,
            };
            state.repo.insert(ROLES, &role, None).await?;
        }
    }
    let generated_admin_password = if state.repo.count(ACCOUNTS, &Filter::All).await? == 0 {
        create_admin(state, config).await?
    } else {
        None
    };
    let service = ensure_service_account(state, config).await?;
    Ok(Outcome {
        service_token: service_token(state, &service).await?,
        generated_admin_password,
    })
}

/// Creates the admin; returns its password when it was generated.
async fn create_admin(state: &AppState, config: &Config) -> Result<Option<Secret>, Error> {
    let admin_role: Option<Stored<Role>> = state
        .repo
        .find_one(
            ROLES,
            &Filter::and([Filter::eq("name", "ADMIN"), Filter::eq("isGlobal", true)]),
        )
        .await?;
    let (password, generated) = match config.bootstrap_admin_password() {
        Some(p) if !p.expose().is_empty() => (p.expose().to_owned(), false),
        _ => (random_password(), true),
    };
    let mut admin = account(config.bootstrap_admin_username(), "admin", &password, state)?;
    admin.roles = admin_role.map(|r| vec![r.id]).unwrap_or_default();
    // Also `all` on the account itself: OIH's web UI decides "admin" from the raw account
    // permissions of /users/me, so a role-only admin was not an admin there.
    admin.permissions = vec!["all".into()];
    state.repo.insert(ACCOUNTS, &admin, None).await?;
    if generated {
        // Shown once, as OIH does; deliberately not through the logger.
        println!(
            "IAM: created admin account {} with generated password {password}",
            admin.username
        );
    }
    Ok(generated.then(|| Secret::new(password)))
}

async fn ensure_service_account(
    state: &AppState,
    config: &Config,
) -> Result<Stored<Account>, Error> {
    let username = config.service_account_username.to_lowercase();
    let by_name = Filter::eq("username", username.clone());
    if let Some(found) = state.repo.find_one(ACCOUNTS, &by_name).await? {
        return Ok(found);
    }
    // Nobody logs in as the service account: it works with its token only.
    let mut service = account(&username, "service", &random_password(), state)?;
    service.permissions = vec!["all".into()];
    match state.repo.insert(ACCOUNTS, &service, None).await {
        Ok(stored) => Ok(stored),
        // Another replica created it at the same moment.
        Err(StoreError::Duplicate(_)) => state
            .repo
            .find_one(ACCOUNTS, &by_name)
            .await?
            .ok_or_else(|| Error::Data("service account vanished during bootstrap".into())),
        Err(err) => Err(err.into()),
    }
}

async fn service_token(state: &AppState, service: &Stored<Account>) -> Result<String, Error> {
    let filter = Filter::and([
        Filter::eq("accountId", service.id.clone()),
        Filter::eq("type", "PERSISTENT"),
        Filter::eq("description", SERVICE_TOKEN_DESCRIPTION),
    ]);
    if let Some(token) = state.repo.find_one::<TokenDoc>(TOKENS, &filter).await? {
        return Ok(token.body.token);
    }
    let token = mint(
        state,
        MintRequest {
            account_id: service.id.clone(),
            kind: TokenType::Persistent,
            lifespan_text: "-1".into(),
            lifespan: Lifespan::Never,
            initiator: Some(service.id.clone()),
            inquirer: Some(service.id.clone()),
            permissions: service.body.permissions.clone(),
            description: SERVICE_TOKEN_DESCRIPTION.into(),
            force_new: true,
        },
    )
    .await?;
    Ok(token.body.token)
}

fn account(username: &str, name: &str, password: &str, state: &AppState) -> Result<Account, Error> {
    let username = username.to_lowercase();
    if !model::is_email(&username) {
        return Err(Error::Config(format!(
            "bootstrap username {username:?} is not an e-mail address"
        )));
    }
    Ok(Account {
        username,
        firstname: Some(name.into()),
        lastname: Some(name.into()),
        phone: None,
        avatar: None,
        status: Status::Active,
        confirmed: true,
        tenant: None,
        roles: Vec::new(),
        permissions: Vec::new(),
        safeguard: Safeguard::default(),
        hash: Some(
            state
                .hasher
                .hash(password)
                .map_err(|e| Error::Config(e.to_string()))?,
        ),
        salt: None,
    })
}

/// 12 random bytes in base64 (16 characters), like OIH's generated passwords.
fn random_password() -> String {
    let bytes: [u8; 12] = rand::random();
    STANDARD.encode(bytes)
}
