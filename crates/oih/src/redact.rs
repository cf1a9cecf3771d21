//! Connection URLs are printed at start-up; their passwords must not be.

const MASK: &str = "****";

/// `scheme://user:secret@host/db?password=x` → `scheme://user:****@host/db?password=****`.
pub fn url(raw: &str) -> String {
    let (head, query) = match raw.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (raw, None),
    };
    let mut out = match head.split_once("://") {
        // The last `@` ends the user info even if an unencoded password holds `/` or `@`;
        // erring that way can only hide too much.
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host_and_path)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:{MASK}@{host_and_path}"),
                None => format!("{scheme}://{userinfo}@{host_and_path}"),
            },
            None => head.to_owned(),
        },
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret(key) => format!("{key}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "pass", "secret", "token", "key"]
        .iter()
        .any(|s| key.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords() {
        assert_eq!(
            url("postgres://oih:s3cret@db:5432/oih"),
            "postgres://oih:****@db:5432/oih"
        );
        assert_eq!(
            url("amqp://guest:p@ss:w@rabbit/%2f"),
            "amqp://guest:****@rabbit/%2f"
        );
        assert_eq!(
            url("postgres://db/oih?user=a&password=b&sslmode=require"),
            "postgres://db/oih?user=a&password=****&sslmode=require"
        );
        assert_eq!(url("postgres://user@db/oih"), "postgres://user@db/oih");
        assert_eq!(url("postgres://u:a/b@db/oih"), "postgres://u:****@db/oih");
        assert_eq!(url("sqlite::memory:"), "sqlite::memory:");
    }
}
