//! The service's OpenAPI document, served at `/api-docs/secret-service/openapi.json`.

use utoipa::OpenApi as _;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "secret-service",
        description = "Secrets (credentials flows use) and the auth clients and OAuth flows that \
                       obtain and refresh them. Errors are `{message}`. Every endpoint but \
                       `/api/v1/callback` needs a bearer token."
    ),
    paths(
        crate::http::list,
        crate::http::create,
        crate::http::get_one,
        crate::http::update,
        crate::http::delete_one,
        crate::http::delete_of_owner,
        crate::http::add_owner,
        crate::http::remove_owner,
        crate::http::validate_hmac,
        crate::client_http::list,
        crate::client_http::create,
        crate::client_http::get_one,
        crate::client_http::update,
        crate::client_http::delete_one,
        crate::client_http::delete_of_owner,
        crate::client_http::secrets_of,
        crate::flows::start_flow,
        crate::flows::callback,
    )
)]
struct SecretApi;

pub fn document() -> utoipa::openapi::OpenApi {
    SecretApi::openapi()
}
