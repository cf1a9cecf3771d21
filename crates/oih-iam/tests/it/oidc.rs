//! The OpenID Connect provider, driven by an independent relying party (the `openidconnect`
//! crate) over a real TCP port, plus the refusals the provider must make.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oih_store::Collection;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{ADMIN, ADMIN_PASSWORD, TestIam, boot, config};

const REDIRECT: &str = "http://rp.test/callback";

/// IAM with the OIDC provider on a real port; the issuer is that port's URL.
struct Op {
    iam: TestIam,
    base: String,
    /// Never follows redirects: the tests read `Location` themselves.
    web: reqwest::Client,
}

async fn op() -> Op {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut cfg = config();
    cfg.base_url = base.clone();
    cfg.oidc_enabled = true;
    let mut iam = boot(cfg).await;
    iam.admin = iam.login(ADMIN, ADMIN_PASSWORD).await;
    let router = iam.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Op { iam, base, web }
}

/// PKCE by hand, for tests that speak the protocol without the library.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Op {
    /// Registers a client as the admin; returns (client id, secret for confidential ones).
    async fn register(&self, public: bool) -> (String, Option<String>) {
        let (status, body) = self
            .iam
            .post(
                "/api/v1/oidc/clients",
                &self.iam.admin,
                json!({"name": "rp", "redirectUris": [REDIRECT], "public": public}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["clientId"].as_str().expect("clientId").to_owned();
        let secret = body["clientSecret"].as_str().map(str::to_owned);
        (id, secret)
    }

    /// Posts the login form with the authorization request's parameters.
    async fn login_form(&self, params: &[(&str, &str)]) -> reqwest::Response {
        let body = serde_urlencoded::to_string(params).expect("form");
        self.web
            .post(format!("{}/op/auth", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("login form")
    }

    /// A code for the admin through the login form, with the given PKCE challenge.
    async fn code(&self, client_id: &str, challenge: &str) -> String {
        let res = self
            .login_form(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", "s1"),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
            ])
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let location = query_of(&res);
        assert_eq!(location["state"], "s1");
        location["code"].as_str().expect("code").to_owned()
    }

    async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
            basic,
        )
        .await
    }

    /// The status of `GET /op/me` with a bearer token.
    async fn userinfo_status(&self, token: &str) -> StatusCode {
        self.web
            .get(format!("{}/op/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("userinfo")
            .status()
    }

    /// `POST /op/token` with a form and optional Basic client credentials.
    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .web
            .post(format!("{}/op/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"));
        if let Some((id, secret)) = basic {
            req = req.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        let res = req.send().await.expect("token");
        let status = res.status();
        (status, res.json().await.expect("json body"))
    }
}

/// The query parameters of a redirect's `Location`, as a JSON object.
fn query_of(res: &reqwest::Response) -> Value {
    let location = res
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii");
    let url = reqwest::Url::parse(location).expect("url");
    assert!(location.starts_with(REDIRECT), "{location}");
    Value::Object(
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

/// The relying party's HTTP client: our reqwest 0.13 behind oauth2's `AsyncHttpClient`.
fn rp_http(
    web: reqwest::Client,
) -> impl Fn(HttpRequest) -> std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>>>>
{
    move |req: HttpRequest| {
        let web = web.clone();
        Box::pin(async move {
            let res = web.execute(reqwest::Request::try_from(req)?).await?;
            let status = res.status();
            let headers = res.headers().clone();
            let mut out = HttpResponse::new(res.bytes().await?.to_vec());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

#[tokio::test]
async fn relying_party_runs_the_code_flow_with_pkce_and_refreshes() {
    let op = op().await;
    let (client_id, secret) = op.register(false).await;
    let http = rp_http(op.web.clone());

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(op.base.clone()).expect("url"), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The login page shows a form carrying the request.
    let page = op.web.get(auth_url.clone()).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<form") && html.contains("name=\"password\""),
        "{html}"
    );

    // The user submits the form: the request's parameters plus credentials.
    let mut form: Vec<(String, String)> = auth_url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("username".into(), ADMIN.into()));
    form.push(("password".into(), ADMIN_PASSWORD.into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = op.login_form(&pairs).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = query_of(&res);
    assert_eq!(back["state"].as_str(), Some(csrf.secret().as_str()));
    let code = back["code"].as_str().expect("code").to_owned();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token valid: signature via JWKS, issuer, audience, nonce");
    let admin_id = op.iam.me_id(&op.iam.admin).await;
    assert_eq!(claims.subject().as_str(), admin_id);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(ADMIN));
    // A wrong nonce is rejected by the relying party.
    assert!(
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new("other".into()))
            .is_err()
    );

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), admin_id);
    assert_eq!(info.email().map(|e| e.as_str()), Some(ADMIN));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some(ADMIN));

    // Refresh: new tokens; the old refresh token is spent.
    let refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let new_id = refreshed.id_token().expect("id token on refresh");
    let again = new_id
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("refreshed ID token valid");
    assert_eq!(again.subject().as_str(), admin_id);
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .expect("token endpoint")
            .request_async(&http)
            .await
            .is_err(),
        "a refresh token works once"
    );
    assert_eq!(
        op.userinfo_status(refreshed.access_token().secret()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unregistered_redirect_uri_is_refused_without_redirect() {
    let op = op().await;
    let (client_id, _) = op.register(false).await;
    let (_, challenge) = pkce();
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", "http://evil.test/callback"),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .expect("query");
    let res = op
        .web
        .get(format!("{}/op/auth?{query}", op.base))
        .send()
        .await
        .expect("auth");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    // Nor does a correct password help.
    let res = op
        .login_form(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", "http://evil.test/callback"),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());

    // With a registered URI, a request without PKCE goes back to the client as an error.
    let res = op
        .login_form(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "xyz"),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = query_of(&res);
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(back["state"], "xyz");
    assert!(back.get("code").is_none());
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_the_pkce_verifier() {
    let op = op().await;
    let (client_id, secret) = op.register(false).await;
    let secret = secret.expect("secret");
    let basic = Some((client_id.as_str(), secret.as_str()));

    let (verifier, challenge) = pkce();
    let code = op.code(&client_id, &challenge).await;
    let (wrong, _) = pkce();
    let (status, body) = op.exchange(&code, &wrong, basic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body["error_description"].is_string());

    // A fresh code: redeemed once, refused the second time.
    let code = op.code(&client_id, &challenge).await;
    let (status, body) = op.exchange(&code, &verifier, basic).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_eq!(op.userinfo_status(&access).await, StatusCode::OK);
    let (status, body) = op.exchange(&code, &verifier, basic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The replay revokes what the code gave.
    assert_eq!(op.userinfo_status(&access).await, StatusCode::UNAUTHORIZED);

    // Wrong client secret: invalid_client with a Basic challenge.
    let (status, body) = op
        .token(
            &[("grant_type", "client_credentials")],
            Some((client_id.as_str(), "wrong")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let op = op().await;
    let (client_id, secret) = op.register(false).await;
    let secret = secret.expect("secret");
    // client_secret_post.
    let (status, body) = op
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    // The token describes no user: userinfo refuses it.
    assert_eq!(
        op.userinfo_status(body["access_token"].as_str().expect("token"))
            .await,
        StatusCode::UNAUTHORIZED
    );

    let (public_id, none) = op.register(true).await;
    assert!(none.is_none());
    let (status, body) = op
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &public_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");

    let (status, body) = op
        .token(
            &[("grant_type", "password"), ("client_id", &public_id)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn only_admins_register_clients() {
    let op = op().await;
    let (_, user) = op.iam.account("rp-user@example.com", json!({})).await;
    let body = json!({"name": "rp", "redirectUris": [REDIRECT]});
    let (status, res) = op
        .iam
        .post("/api/v1/oidc/clients", &user, body.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    let (status, _) = op
        .iam
        .call(Method::POST, "/api/v1/oidc/clients", None, Some(body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = op.iam.get("/api/v1/oidc/clients", &user).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A tenant admin is not an admin of the whole IAM either.
    let tenant = op.iam.tenant_with_users("rp-tenant").await;
    let (status, _) = op
        .iam
        .post(
            "/api/v1/oidc/clients",
            &tenant.admin,
            json!({"name": "rp", "redirectUris": [REDIRECT]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"name": "rp", "redirectUris": ["not a url"]}),
        json!({"name": "rp", "redirectUris": []}),
        json!({"name": "rp", "redirectUris": ["https://x.test/#frag"]}),
        json!({"name": "", "redirectUris": [REDIRECT]}),
        json!({"name": "rp", "redirectUris": [REDIRECT], "extra": 1}),
        json!(["rp"]),
    ] {
        let (status, res) = op
            .iam
            .post("/api/v1/oidc/clients", &op.iam.admin, bad)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    }
    let (status, list) = op.iam.get("/api/v1/oidc/clients", &op.iam.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));

    // Listing never shows the secret or its fingerprint; removal is admin-only too.
    let (id, _) = op.register(false).await;
    let (_, list) = op.iam.get("/api/v1/oidc/clients", &op.iam.admin).await;
    assert_eq!(list[0]["clientId"], id.as_str());
    assert!(list[0].get("clientSecret").is_none() && list[0].get("secretHash").is_none());
    let path = format!("/api/v1/oidc/clients/{id}");
    let (status, _) = op.iam.delete(&path, &user).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = op.iam.delete(&path, &op.iam.admin).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = op.iam.delete(&path, &op.iam.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = op
        .iam
        .delete("/api/v1/oidc/clients/not-an-id", &op.iam.admin)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn client_secrets_are_stored_only_as_fingerprints() {
    let op = op().await;
    let (id, secret) = op.register(false).await;
    let secret = secret.expect("secret");
    let doc = op
        .iam
        .docs
        .get(Collection("iam_oidc_clients"), &id)
        .await
        .expect("store")
        .expect("client document");
    let stored = doc.body.to_string();
    assert!(!stored.contains(&secret), "{stored}");
    assert_eq!(doc.body["secretHash"].as_str().map(str::len), Some(64));
}

#[tokio::test]
async fn malformed_token_requests_get_rfc6749_errors() {
    let op = op().await;
    let (client_id, secret) = op.register(false).await;
    let secret = secret.expect("secret");
    let basic = Some((client_id.as_str(), secret.as_str()));
    let (status, body) = op.token(&[], basic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = op
        .token(&[("grant_type", "authorization_code")], basic)
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (status, body) = op
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
            basic,
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    // Both Basic and form secrets: ambiguous.
    let (status, body) = op
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
            basic,
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    // Unknown or malformed client ids.
    for id in ["0123456789abcdef01234567", "x"] {
        let (status, body) = op
            .token(&[("grant_type", "client_credentials")], Some((id, "s")))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
    }
    let res = op
        .web
        .get(format!("{}/op/me", op.base))
        .bearer_auth("unknown")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn login_form_checks_passwords_and_throttles() {
    let op = op().await;
    let (client_id, _) = op.register(true).await;
    let (_, challenge) = pkce();
    let attempt = |password: &'static str| {
        let client_id = client_id.clone();
        let challenge = challenge.clone();
        let op = &op;
        async move {
            op.login_form(&[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("username", ADMIN),
                ("password", password),
            ])
            .await
        }
    };
    // config(): three failures lock the username.
    for _ in 0..3 {
        let res = attempt("wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().get("location").is_none());
    }
    let res = attempt(ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn provider_is_absent_unless_enabled() {
    let iam = crate::start().await;
    let (status, _) = iam
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = iam
        .post(
            "/api/v1/oidc/clients",
            &iam.admin,
            json!({"name": "rp", "redirectUris": [REDIRECT]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rsa_mode_shares_its_keys_with_the_provider() {
    let mut cfg = config();
    cfg.oidc_enabled = true;
    cfg.jwt_algorithm = oih_iam::JwtAlgorithm::Rsa;
    let iam = boot(cfg).await;
    let kids = |keys: Value| -> Vec<String> {
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    };
    let (status, login_keys) = iam
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, oidc_keys) = iam.call(Method::GET, "/op/certs", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kids(login_keys), kids(oidc_keys.clone()));
    assert_eq!(oidc_keys["keys"][0]["kty"], "RSA");
    let (_, discovery) = iam
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(discovery["issuer"], "http://iam.test");
    assert_eq!(discovery["jwks_uri"], "http://iam.test/op/certs");
}
