//! IAM's OpenAPI document, served at `/api-docs/iam/openapi.json`.
//!
//! The handlers take IAM's own `Caller` extractor and answer `{message}` errors; rather than
//! annotate every handler, each operation is described by an empty function here. A test
//! (`tests/it/access.rs`) checks that every mounted route is listed, so the two stay in step.

use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;

/// The document; the OpenID Connect provider's endpoints only when it is mounted.
pub fn document(oidc: bool) -> OpenApi {
    let mut doc = IamApi::openapi();
    if oidc {
        doc.merge(OidcApi::openapi());
    }
    doc
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "iam",
        description = "Identity and Access Management: accounts, tenants, roles, permissions, \
                       tokens, login and token introspection, at OIH's paths. Errors are \
                       `{message}`. Every endpoint under `/api/v1` and `/logout` needs \
                       `Authorization: Bearer <token>` (401 `{message: \"\"}` without it, \
                       401 `VALIDATION_ERROR` for an unknown, expired or revoked token)."
    ),
    paths(
        login,
        logout,
        jwks,
        users_list,
        users_create,
        users_me,
        users_patch_me,
        users_get,
        users_update,
        users_delete,
        tenants_list,
        tenants_create,
        tenants_get,
        tenants_profile,
        tenants_update,
        tenants_delete,
        tenants_users,
        tenants_remove_user,
        tenant_key_get,
        tenant_key_create,
        tenant_key_delete,
        tokens_list,
        tokens_create,
        tokens_introspect,
        tokens_refresh,
        tokens_get,
        tokens_delete,
        roles_list,
        roles_create,
        roles_get,
        roles_update,
        roles_delete,
        permissions_list,
    )
)]
struct IamApi;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    oidc_discovery,
    oidc_certs,
    oidc_auth_form,
    oidc_auth_login,
    oidc_token,
    oidc_userinfo,
    oidc_clients_list,
    oidc_clients_register,
    oidc_clients_delete,
))]
struct OidcApi;

// Reused response descriptions.
const OK_TEXT: &str = "Plain-text `OK`";
const BAD_ID: &str = "`{message: \"INPUT_INVALID\"}`: malformed id or body";
const NO_AUTH: &str = "`{message}`: missing, invalid or expired token";
const MISSING: &str = "`{message: \"MISSING_PERMISSION\"}` or `{message: \"FORBIDDEN\"}`";

#[utoipa::path(post, path = "/login", tag = "auth",
    request_body(content = Object, description = "`{username, password}`"),
    responses(
        (status = 200, description = "`{token, id}`: a login token (opaque, or a JWT with `--iam-token-format jwt`) and its document id"),
        (status = 400, description = "`{message}`: the body is not JSON"),
        (status = 401, description = "`{message}`: `UNKNOWN_ERROR` (credentials missing), `USER_NOT_FOUND`, `PASSWORD_INCORRECT`, `ENTITY_DISABLED`; publishes `iam.user.loginFailed`"),
        (status = 429, description = "`{message: \"TOO_MANY_ATTEMPTS\"}`: too many recent failures for this username"),
    )
)]
#[allow(dead_code)]
fn login() {}

#[utoipa::path(post, path = "/logout", tag = "auth",
    responses(
        (status = 200, description = "`{loggedOut: true}`: the token the request used is revoked"),
        (status = 401, description = NO_AUTH),
    )
)]
#[allow(dead_code)]
fn logout() {}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses(
        (status = 200, description = "The RS256 public keys (JWK set) that verify IAM's JWTs"),
        (status = 423, description = "`{message: \"RSA algorithm is not activated\"}` unless `IAM_JWT_ALGORITHM_TYPE=RSA`"),
    )
)]
#[allow(dead_code)]
fn jwks() {}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(
        ("userId" = Option<String>, Query, description = "Account id (repeatable)"),
        ("username" = Option<String>, Query, description = "Username (repeatable)"),
        ("meta" = Option<bool>, Query, description = "Wrap as `{data, meta: {total}}`"),
    ),
    responses(
        (status = 200, description = "Accounts without `hash`/`salt`"),
        (status = 400, description = "`{message: \"The filter is invalid.\"}`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`{message: \"FORBIDDEN\"}`: admins only"),
    )
)]
#[allow(dead_code)]
fn users_list() {}

#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body(content = Object, description = "`{username, password, firstname?, lastname?, status?, tenant?, roles?, permissions?}`"),
    responses(
        (status = 200, description = "`{id}`; publishes `iam.user.created`"),
        (status = 400, description = "`{message}`: no password, invalid field"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.account.create`, or a non-admin granting a restricted permission or a foreign role"),
        (status = 409, description = "`{message: \"DUPLICATE_KEY\"}`: the username exists"),
    )
)]
#[allow(dead_code)]
fn users_create() {}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    responses(
        (status = 200, description = "The caller's account with its roles"),
        (status = 401, description = NO_AUTH),
    )
)]
#[allow(dead_code)]
fn users_me() {}

#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    request_body(content = Object, description = "`{firstname?, lastname?}` (other fields are ignored)"),
    responses(
        (status = 200, description = OK_TEXT),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
    )
)]
#[allow(dead_code)]
fn users_patch_me() {}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account with its roles"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.account.read`"),
        (status = 404, description = "No such account in the caller's reach"),
    )
)]
#[allow(dead_code)]
fn users_get() {}

#[utoipa::path(method(patch, put), path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "Account id")),
    request_body(content = Object, description = "Fields to set (PUT does not replace); `password` re-hashes"),
    responses(
        (status = 200, description = "`OK`; publishes `iam.user.modified`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = MISSING),
        (status = 404, description = "No such account in the caller's reach"),
    )
)]
#[allow(dead_code)]
fn users_update() {}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, description = "`OK` (also for unknown ids); deletes its tokens; publishes `iam.user.deleted`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.account.delete`"),
        (status = 404, description = "Another tenant's account"),
    )
)]
#[allow(dead_code)]
fn users_delete() {}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "All tenants"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
    )
)]
#[allow(dead_code)]
fn tenants_list() {}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants",
    request_body(content = Object, description = "`{name, confirmed?, status?}`"),
    responses(
        (status = 200, description = "`{id}`; publishes `iam.tenant.created`"),
        (status = 400, description = "`{message: \"Bad Request\"}`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.tenant.create`"),
    )
)]
#[allow(dead_code)]
fn tenants_create() {}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.profile.read`"),
        (status = 404, description = "No such tenant, or another tenant"),
    )
)]
#[allow(dead_code)]
fn tenants_get() {}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/profile", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.profile.read`"),
        (status = 404, description = "No such tenant, or another tenant"),
    )
)]
#[allow(dead_code)]
fn tenants_profile() {}

#[utoipa::path(method(put, patch), path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, description = "`{name?, confirmed?, status?}`"),
    responses(
        (status = 200, description = "`OK`; publishes `iam.tenant.modified`"),
        (status = 400, description = "`{message}`: malformed id, empty name, invalid field"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.profile.update`"),
        (status = 404, description = "No such tenant, or another tenant"),
    )
)]
#[allow(dead_code)]
fn tenants_update() {}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "`OK`; deletes its accounts (with their tokens), roles and key; publishes `iam.tenant.deleted`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.tenant.delete`"),
    )
)]
#[allow(dead_code)]
fn tenants_delete() {}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/users", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant's accounts"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.account.read`"),
        (status = 404, description = "Another tenant"),
    )
)]
#[allow(dead_code)]
fn tenants_users() {}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}/user/{user_id}", tag = "tenants",
    params(
        ("id" = String, Path, description = "Tenant id"),
        ("user_id" = String, Path, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`OK`: the account and its tokens are deleted"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = MISSING),
        (status = 404, description = "No such account in that tenant, or another tenant"),
    )
)]
#[allow(dead_code)]
fn tenants_remove_user() {}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/key", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "`{key}` (`null` when the tenant has none)"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.key.read`"),
    )
)]
#[allow(dead_code)]
fn tenant_key_get() {}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/key", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, description = "`{value}`"),
    responses(
        (status = 200, description = OK_TEXT),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.key.create`"),
        (status = 409, description = "`{message: \"DUPLICATE_KEY\"}`: the tenant has a key"),
    )
)]
#[allow(dead_code)]
fn tenant_key_create() {}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}/key", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = OK_TEXT),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.key.delete`"),
    )
)]
#[allow(dead_code)]
fn tenant_key_delete() {}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    params(
        ("token" = Option<String>, Query, description = "Exact token"),
        ("accountId" = Option<String>, Query, description = "Owner account"),
    ),
    responses(
        (status = 200, description = "Token documents, each `token` masked but its last 4 characters"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
    )
)]
#[allow(dead_code)]
fn tokens_list() {}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = Object, description = "`{accountId, expiresIn? (ms-style or -1 for persistent), inquirer?, customPermissions?, description?, new?}`"),
    responses(
        (status = 200, description = "`{token, id}`; publishes `iam.token.created`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.token.create` (`iam.token.update` for `customPermissions`), or a non-admin asking for permissions they do not hold"),
        (status = 404, description = "`{message: \"FORBIDDEN\"}`: no active account with that id in the caller's reach"),
    )
)]
#[allow(dead_code)]
fn tokens_create() {}

#[utoipa::path(post, path = "/api/v1/tokens/introspect", tag = "tokens",
    request_body(content = Object, description = "`{token}`"),
    responses(
        (status = 200, description = "The token owner's account with roles, merged `permissions`, `isAdmin` and `tokenExpireAt` (absent for persistent tokens)"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.token.introspect`"),
        (status = 404, description = "Unknown, expired or revoked token, or a disabled account"),
    )
)]
#[allow(dead_code)]
fn tokens_introspect() {}

#[utoipa::path(get, path = "/api/v1/tokens/refresh", tag = "tokens",
    responses(
        (status = 200, description = "`{token}`: the caller's token, its sliding expiry extended"),
        (status = 401, description = NO_AUTH),
    )
)]
#[allow(dead_code)]
fn tokens_refresh() {}

#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token document id")),
    responses(
        (status = 200, description = "The token document"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such token"),
    )
)]
#[allow(dead_code)]
fn tokens_get() {}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token document id")),
    responses(
        (status = 200, description = "`OK` (also for unknown ids); publishes `iam.token.deleted`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `iam.token.delete`"),
    )
)]
#[allow(dead_code)]
fn tokens_delete() {}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses(
        (status = 200, description = "Global roles, then the caller's tenant's"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.roles.read`"),
    )
)]
#[allow(dead_code)]
fn roles_list() {}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles",
    request_body(content = Object, description = "`{name, description?, permissions? (common permissions only), isGlobal? (admins)}`"),
    responses(
        (status = 200, description = "The role; publishes `iam.role.created`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.roles.create`, a reserved name or a non-common permission"),
        (status = 409, description = "`{message: \"DUPLICATE_KEY\"}`"),
    )
)]
#[allow(dead_code)]
fn roles_create() {}

#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    responses(
        (status = 200, description = "The role"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.roles.read`, or not the caller's tenant's role"),
        (status = 404, description = "`{message: \"FORBIDDEN\"}`: no such role"),
    )
)]
#[allow(dead_code)]
fn roles_get() {}

#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    request_body(content = Object, description = "`{name?, description?, permissions?}`"),
    responses(
        (status = 200, description = "The updated role; publishes `iam.role.modified`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.roles.update`, not the caller's tenant's role, a reserved name or a non-common permission"),
        (status = 404, description = "`{message: \"FORBIDDEN\"}`: no such role"),
    )
)]
#[allow(dead_code)]
fn roles_update() {}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    responses(
        (status = 200, description = "`OK`: removed from every account holding it; publishes `iam.role.deleted`"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Missing `tenant.roles.delete`, or not the caller's tenant's role"),
        (status = 404, description = "`{message: \"FORBIDDEN\"}`: no such role"),
    )
)]
#[allow(dead_code)]
fn roles_delete() {}

#[utoipa::path(get, path = "/api/v1/permissions", tag = "permissions",
    responses(
        (status = 200, description = "The common permissions; admins also get the restricted ones"),
        (status = 401, description = NO_AUTH),
    )
)]
#[allow(dead_code)]
fn permissions_list() {}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc",
    responses((status = 200, description = "OpenID Provider metadata"))
)]
#[allow(dead_code)]
fn oidc_discovery() {}

#[utoipa::path(get, path = "/op/certs", tag = "oidc",
    responses((status = 200, description = "JWK set verifying ID tokens"))
)]
#[allow(dead_code)]
fn oidc_certs() {}

#[utoipa::path(get, path = "/op/auth", tag = "oidc",
    responses(
        (status = 200, description = "The login form (authorization request with PKCE S256)"),
        (status = 400, description = "Unknown client or unregistered redirect URI (no redirect)"),
    )
)]
#[allow(dead_code)]
fn oidc_auth_form() {}

#[utoipa::path(post, path = "/op/auth", tag = "oidc",
    responses(
        (status = 303, description = "Redirect to the client with `code` and `state`"),
        (status = 401, description = "The form again, after wrong credentials"),
        (status = 429, description = "The form again: too many failed logins for this username"),
    )
)]
#[allow(dead_code)]
fn oidc_auth_login() {}

#[utoipa::path(post, path = "/op/token", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`grant_type` `authorization_code`, `refresh_token` or `client_credentials`"),
    responses(
        (status = 200, description = "`{access_token, token_type, expires_in, id_token?, refresh_token?}`"),
        (status = 400, description = "RFC 6749 error body"),
        (status = 401, description = "`invalid_client`"),
    )
)]
#[allow(dead_code)]
fn oidc_token() {}

#[utoipa::path(method(get, post), path = "/op/me", tag = "oidc",
    responses(
        (status = 200, description = "UserInfo claims"),
        (status = 401, description = "Missing or invalid access token"),
    )
)]
#[allow(dead_code)]
fn oidc_userinfo() {}

#[utoipa::path(get, path = "/api/v1/oidc/clients", tag = "oidc",
    responses(
        (status = 200, description = "Registered clients (never their secrets)"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
    )
)]
#[allow(dead_code)]
fn oidc_clients_list() {}

#[utoipa::path(post, path = "/api/v1/oidc/clients", tag = "oidc",
    request_body(content = Object, description = "`{name, redirectUris, public?}`"),
    responses(
        (status = 201, description = "The client with `clientSecret`, shown only here"),
        (status = 400, description = "`{message}`: invalid registration"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
    )
)]
#[allow(dead_code)]
fn oidc_clients_register() {}

#[utoipa::path(delete, path = "/api/v1/oidc/clients/{id}", tag = "oidc",
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 204, description = "Deleted with every token issued to it"),
        (status = 400, description = BAD_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such client"),
    )
)]
#[allow(dead_code)]
fn oidc_clients_delete() {}
