//! The OAuth 1.0a flows against a fake provider that checks every signature itself, on SQLite
//! and PostgreSQL.

use anyhow::{Context, Result};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use oih_store::{Collection, Filter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::engines;
use crate::support::{App, Infra, config};

const CONSUMER_KEY: &str = "consumer-key";
/// With characters the signing key must percent-encode.
const CONSUMER_SECRET: &str = "consumer+secret/ü&";
const REDIRECT_URI: &str = "https://hub.example/api/v1/callback";
const FLOWS: Collection = Collection("secrets_auth_flows");
const SECRETS: Collection = Collection("secrets_secrets");

/// RFC 3986 unreserved characters stay, everything else is %XX (RFC 5849 §3.6).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn dec(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Accepts a request only if its `Authorization: OAuth` header is a valid HMAC-SHA1
/// signature (recomputed here from the consumer secret and `token_secret`) over exactly the
/// request made, with the consumer key and `expected` protocol parameters.
struct SignedBy {
    token_secret: &'static str,
    expected: Vec<(&'static str, &'static str)>,
}

impl SignedBy {
    fn check(&self, request: &Request) -> Result<()> {
        let header = request
            .headers
            .get("authorization")
            .context("no Authorization")?
            .to_str()?;
        let fields = header.strip_prefix("OAuth ").context("not OAuth")?;
        let mut params = Vec::new();
        for field in fields.split(',') {
            let (k, v) = field.trim().split_once('=').context("field")?;
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .context("unquoted")?;
            params.push((dec(k), dec(v)));
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        anyhow::ensure!(get("oauth_consumer_key").as_deref() == Some(CONSUMER_KEY));
        anyhow::ensure!(get("oauth_signature_method").as_deref() == Some("HMAC-SHA1"));
        anyhow::ensure!(get("oauth_version").as_deref().is_none_or(|v| v == "1.0"));
        anyhow::ensure!(get("oauth_nonce").is_some_and(|n| n.len() >= 16));
        let timestamp: i64 = get("oauth_timestamp").context("timestamp")?.parse()?;
        anyhow::ensure!((chrono::Utc::now().timestamp() - timestamp).abs() < 600);
        for (name, value) in &self.expected {
            anyhow::ensure!(get(name).as_deref() == Some(*value), "{name}");
        }
        let signature = get("oauth_signature").context("no signature")?;
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "oauth_signature" && k != "realm")
            .chain(&request.url.query_pairs().into_owned().collect::<Vec<_>>())
            .map(|(k, v)| (enc(k), enc(v)))
            .collect();
        pairs.sort();
        let normalized: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // wiremock's `url` names no real host: the Host header does (with its port).
        let host = request.headers.get("host").context("no Host")?.to_str()?;
        let base_uri = format!("http://{host}{}", request.url.path());
        let base = format!(
            "{}&{}&{}",
            request.method.as_str(),
            enc(&base_uri),
            enc(&normalized.join("&"))
        );
        let key = format!("{}&{}", enc(CONSUMER_SECRET), enc(self.token_secret));
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())?;
        mac.update(base.as_bytes());
        anyhow::ensure!(
            B64.encode(mac.finalize().into_bytes()) == signature,
            "signature"
        );
        Ok(())
    }
}

impl Match for SignedBy {
    fn matches(&self, request: &Request) -> bool {
        match self.check(request) {
            Ok(()) => true,
            Err(err) => {
                eprintln!("provider refused {}: {err}", request.url);
                false
            }
        }
    }
}

fn form(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/x-www-form-urlencoded")
}

/// The provider grants `req-token` for a correctly signed request-token request.
async fn grants_request_token(provider: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/oauth/request_token"))
        .and(SignedBy {
            token_secret: "",
            expected: vec![("oauth_callback", REDIRECT_URI)],
        })
        .respond_with(form(
            "oauth_token=req-token&oauth_token_secret=req-secret&oauth_callback_confirmed=true",
        ))
        .mount(provider)
        .await;
}

/// A three-legged client of `token` whose endpoints are at `provider`; returns its id.
async fn oa1_client(app: &App, token: &str, provider: &MockServer, method: &str) -> Result<String> {
    let base = provider.uri();
    let reply = app
        .post(
            "/api/v1/auth-clients",
            token,
            json!({"data": {"name": "Trello-like", "type": "OA1_THREE_LEGGED",
                "key": CONSUMER_KEY, "secret": CONSUMER_SECRET, "signatureMethod": method,
                "appName": "My Hub", "expiration": "never", "redirectUri": REDIRECT_URI,
                "endpoints": {
                    "request": format!("{base}/oauth/request_token?access=write"),
                    "authorize": "https://provider.example/authorize",
                    "access": format!("{base}/oauth/access_token")}}}),
        )
        .await?;
    anyhow::ensure!(
        reply.status == StatusCode::OK,
        "client: {} {}",
        reply.status,
        reply.body
    );
    reply.body["data"]["_id"]
        .as_str()
        .map(str::to_owned)
        .context("no _id")
}

async fn start_flow(
    app: &App,
    token: &str,
    client: &str,
    body: Value,
) -> Result<crate::support::Reply> {
    app.post(
        &format!("/api/v1/auth-clients/{client}/start-flow"),
        token,
        body,
    )
    .await
}

async fn callback(app: &App, query: &str) -> Result<crate::support::Reply> {
    app.call(
        Method::GET,
        &format!("/api/v1/callback?{query}"),
        None,
        None,
    )
    .await
}

async fn count(infra: &Infra, coll: Collection) -> Result<u64> {
    Ok(infra.docs.count(coll, &Filter::All).await?)
}

async fn three_legged_round_trip(infra: Infra) -> Result<()> {
    let provider = MockServer::start().await;
    grants_request_token(&provider).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(SignedBy {
            token_secret: "req-secret",
            expected: vec![
                ("oauth_token", "req-token"),
                ("oauth_verifier", "the-verifier"),
            ],
        })
        .respond_with(form(
            "oauth_token=acc-token-0123&oauth_token_secret=acc-secret-0123&user_id=42",
        ))
        .expect(1)
        .mount(&provider)
        .await;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa1_client(&app, "u1", &provider, "HMAC-SHA1").await?;

    let started = start_flow(
        &app,
        "u1",
        &client,
        json!({"data": {"scope": "read,write", "secretName": "my board",
                         "successUrl": "https://app.example/done?x=1"}}),
    )
    .await?;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(
        started.body["data"]["authUrl"],
        "https://provider.example/authorize?oauth_token=req-token&name=My%20Hub&scope=read%2Cwrite&expiration=never"
    );
    assert_eq!(count(&infra, FLOWS).await?, 1);

    let back = callback(&app, "oauth_token=req-token&oauth_verifier=the-verifier").await?;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    let location = back.location.context("no Location")?;
    let id = location
        .strip_prefix("https://app.example/done?x=1&secretId=")
        .context("redirect")?
        .to_owned();

    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.body);
    let data = &raw.body["data"];
    assert_eq!(data["name"], "my board");
    assert_eq!(data["type"], "OA1_THREE_LEGGED");
    assert_eq!(data["owners"], json!([{"id": "u1", "type": "USER"}]));
    assert_eq!(
        data["value"],
        json!({"accessToken": "acc-token-0123", "accessTokenSecret": "acc-secret-0123",
               "scope": "read,write", "expires": "9999-12-31T23:59:59Z",
               "authClientId": client, "consumerKey": CONSUMER_KEY,
               "consumerSecret": CONSUMER_SECRET, "signatureMethod": "HMAC-SHA1"})
    );
    let masked = app.get(&format!("/api/v1/secrets/{id}"), "u1").await?;
    assert_eq!(
        masked.body["data"]["value"]["accessTokenSecret"],
        "***********0123"
    );
    assert!(masked.body["data"]["value"].get("consumerSecret").is_none());
    // Encrypted at rest like every other token.
    let stored = infra.docs.get(SECRETS, &id).await?.context("stored")?;
    let at_rest = stored.body.to_string();
    assert!(!at_rest.contains("acc-token-0123") && !at_rest.contains("acc-secret-0123"));
    assert_eq!(
        stored.body["encryptedFields"],
        json!(["accessTokenSecret", "accessToken"])
    );

    // The flow is gone: a replay is refused and stores nothing.
    assert_eq!(count(&infra, FLOWS).await?, 0);
    let replay = callback(&app, "oauth_token=req-token&oauth_verifier=the-verifier").await?;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.body,
        json!({"message": "Unknown or expired auth flow"})
    );
    assert_eq!(count(&infra, SECRETS).await?, 1);
    Ok(())
}

async fn provider_errors_store_nothing(infra: Infra) -> Result<()> {
    let provider = MockServer::start().await;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa1_client(&app, "u1", &provider, "").await?;
    for (answer, message) in [
        (
            ResponseTemplate::new(401).set_body_raw(
                "oauth_problem=signature_invalid",
                "application/x-www-form-urlencoded",
            ),
            "Obtaining a request token failed: the provider refused: signature_invalid",
        ),
        (
            ResponseTemplate::new(401),
            "Obtaining a request token failed: HTTP Error Response: 401 Unauthorized",
        ),
        (
            form("<html>not a token</html>"),
            "Obtaining a request token failed: the provider's answer has no oauth_token and oauth_token_secret",
        ),
    ] {
        let mock = Mock::given(method("POST"))
            .and(path("/oauth/request_token"))
            .respond_with(answer)
            .expect(1)
            .mount_as_scoped(&provider)
            .await;
        let reply = start_flow(&app, "u1", &client, json!({})).await?;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
        assert_eq!(reply.body, json!({"message": message}));
        drop(mock);
    }
    assert_eq!(count(&infra, FLOWS).await?, 0);

    // The access token is refused: 400, the flow is used up, no secret.
    grants_request_token(&provider).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            "oauth_problem=token_rejected",
            "application/x-www-form-urlencoded",
        ))
        .expect(1)
        .mount(&provider)
        .await;
    let reply = start_flow(&app, "u1", &client, json!({})).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let back = callback(&app, "oauth_token=req-token&oauth_verifier=v").await?;
    assert_eq!(back.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        back.body,
        json!({"message": "Token exchange failed: the provider refused: token_rejected"})
    );
    assert_eq!(count(&infra, FLOWS).await?, 0);
    assert_eq!(count(&infra, SECRETS).await?, 0);
    Ok(())
}

async fn unknown_expired_and_declined_flows(infra: Infra) -> Result<()> {
    let provider = MockServer::start().await;
    grants_request_token(&provider).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(form("oauth_token=a&oauth_token_secret=b"))
        .expect(0)
        .mount(&provider)
        .await;
    // Flows that expire as soon as they are stored.
    let cfg = oih_secrets::Config {
        auth_flow_ttl: std::time::Duration::ZERO,
        ..config(infra.dir.path())
    };
    let app = infra.app(cfg).await?;
    let client = oa1_client(&app, "u1", &provider, "HMAC-SHA1").await?;
    let reply = start_flow(&app, "u1", &client, json!({})).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for query in [
        "oauth_token=req-token&oauth_verifier=v",
        "oauth_token=never-issued&oauth_verifier=v",
    ] {
        let reply = callback(&app, query).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            reply.body,
            json!({"message": "Unknown or expired auth flow"})
        );
    }
    let reply = callback(&app, "oauth_token=req-token").await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // A user who declines at the provider: the flow is dropped.
    drop(app);
    let app = infra.app(config(infra.dir.path())).await?;
    let reply = start_flow(&app, "u1", &client, json!({})).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = callback(&app, "denied=req-token").await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["message"],
        "The provider did not grant access: the user declined"
    );
    let reply = callback(&app, "oauth_token=req-token&oauth_verifier=v").await?;
    assert_eq!(
        reply.body,
        json!({"message": "Unknown or expired auth flow"})
    );
    assert_eq!(count(&infra, SECRETS).await?, 0);
    Ok(())
}

async fn foreign_and_unsupported_clients(infra: Infra) -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(form("oauth_token=t&oauth_token_secret=s"))
        .expect(0)
        .mount(&provider)
        .await;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa1_client(&app, "u1", &provider, "HMAC-SHA1").await?;
    // u3 is in another tenant.
    let reply = start_flow(&app, "u3", &client, json!({})).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body["message"].is_string());
    let reply = app
        .post(
            "/api/v1/secrets",
            "u3",
            json!({"name": "x", "type": "OA1_THREE_LEGGED",
                   "value": {"authClientId": client, "accessToken": "a", "accessTokenSecret": "b"}}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"message": "Auth client does not exist"}));

    let rsa = oa1_client(&app, "u1", &provider, "RSA-SHA1").await?;
    let reply = start_flow(&app, "u1", &rsa, json!({})).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["message"],
        "Unsupported signature method \"RSA-SHA1\": use HMAC-SHA1, HMAC-SHA256 or PLAINTEXT"
    );
    assert_eq!(count(&infra, FLOWS).await?, 0);
    assert_eq!(count(&infra, SECRETS).await?, 0);
    Ok(())
}

async fn two_legged_secrets_carry_the_consumer_credentials(infra: Infra) -> Result<()> {
    let app = infra.app(config(infra.dir.path())).await?;
    let reply = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"name": "two-legged", "type": "OA1_TWO_LEGGED", "consumerKey": "ck",
                   "consumerSecret": "cs-0123456789", "nonce": "n", "signature": "s",
                   "signatureMethod": "hmac-sha1"}),
        )
        .await?;
    let client = reply.body["data"]["_id"]
        .as_str()
        .context("client")?
        .to_owned();

    let started = start_flow(
        &app,
        "u1",
        &client,
        json!({"successUrl": "https://app.example/done"}),
    )
    .await?;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let id = started.body["data"]["secretId"]
        .as_str()
        .context("secretId")?;
    assert_eq!(
        started.body["data"]["authUrl"],
        format!("https://app.example/done?secretId={id}")
    );
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["name"], "two-legged");
    assert_eq!(raw.body["data"]["type"], "OA1_TWO_LEGGED");
    assert_eq!(
        raw.body["data"]["value"],
        json!({"authClientId": client, "consumerKey": "ck",
               "consumerSecret": "cs-0123456789", "signatureMethod": "HMAC-SHA1"})
    );
    let masked = app.get(&format!("/api/v1/secrets/{id}"), "u1").await?;
    assert_eq!(
        masked.body["data"]["value"],
        json!({"authClientId": client})
    );

    // Created directly, as OIH's secrets were (without a client), or with one.
    let bare = app
        .create(
            "u1",
            json!({"name": "oih", "type": "OA1_TWO_LEGGED", "value": {"expiresAt": "never"}}),
        )
        .await?;
    let raw = app.get(&format!("/api/v1/secrets/{bare}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"], json!({"expiresAt": "never"}));
    let reply = app
        .post(
            "/api/v1/secrets",
            "u3",
            json!({"name": "x", "type": "OA1_TWO_LEGGED", "value": {"authClientId": client}}),
        )
        .await?;
    assert_eq!(reply.body, json!({"message": "Auth client does not exist"}));
    Ok(())
}

engines!(
    three_legged_round_trip,
    provider_errors_store_nothing,
    unknown_expired_and_declined_flows,
    foreign_and_unsupported_clients,
    two_legged_secrets_carry_the_consumer_credentials,
);
