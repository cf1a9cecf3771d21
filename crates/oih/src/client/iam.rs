//! `oih iam create-user|create-token`.

use clap::Args;
use serde_json::{Map, Value, json};

use super::http::Api;
use super::output::{self, Output};

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The account's username (an e-mail address).
    #[arg(long, value_name = "USERNAME")]
    pub username: String,

    #[arg(long, value_name = "PASSWORD")]
    pub password: String,

    #[arg(long, value_name = "NAME")]
    pub firstname: Option<String>,

    #[arg(long, value_name = "NAME")]
    pub lastname: Option<String>,

    /// A role id to give the account; repeatable.
    #[arg(long = "role", value_name = "ROLE_ID")]
    pub roles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    /// The account the token is for.
    #[arg(long, value_name = "ID")]
    pub account_id: String,

    /// Lifetime, e.g. `30m`, `1h`, `7d`; `-1` for a persistent token. Default: the hub's.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub expires_in: Option<String>,

    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

pub async fn create_user(api: &Api, out: Output, args: CreateUserArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    body.insert("username".into(), json!(args.username));
    body.insert("password".into(), json!(args.password));
    if let Some(first) = args.firstname {
        body.insert("firstname".into(), json!(first));
    }
    if let Some(last) = args.lastname {
        body.insert("lastname".into(), json!(last));
    }
    if !args.roles.is_empty() {
        body.insert("roles".into(), json!(args.roles));
    }
    let saved = api
        .post(&["api", "v1", "users"], &Value::Object(body))
        .await?;
    let saved = output::data(&saved);
    match out {
        Output::Json => output::print_json(saved),
        Output::Table => println!("{}", field(saved, "id")?),
    }
    Ok(())
}

pub async fn create_token(api: &Api, out: Output, args: CreateTokenArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    body.insert("accountId".into(), json!(args.account_id));
    if let Some(expires) = args.expires_in {
        // IAM reads the number -1 as "persistent"; any other lifetime as text ("1h").
        let expires = match expires.trim() {
            "-1" => json!(-1),
            other => json!(other),
        };
        body.insert("expiresIn".into(), expires);
    }
    if let Some(description) = args.description {
        body.insert("description".into(), json!(description));
    }
    let saved = api
        .post(&["api", "v1", "tokens"], &Value::Object(body))
        .await?;
    match out {
        Output::Json => output::print_json(output::data(&saved)),
        Output::Table => println!("{}", field(&saved, "token")?),
    }
    Ok(())
}

fn field<'a>(body: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("unexpected answer from the hub: no {key} in {body}"))
}
