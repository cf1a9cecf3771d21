//! RabbitMQ topic matching: words separated by `.`, `*` matches exactly one word, `#` matches
//! zero or more words.

pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pat: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = if routing_key.is_empty() {
        Vec::new()
    } else {
        routing_key.split('.').collect()
    };
    matches(&pat, &key)
}

fn matches(pat: &[&str], key: &[&str]) -> bool {
    match pat.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
        Some((&word, rest)) => match key.split_first() {
            Some((first, key_rest)) => (word == "*" || word == *first) && matches(rest, key_rest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn rabbitmq_topic_semantics() {
        let cases = [
            ("flow.*", "flow.started", true),
            ("flow.*", "flow.a.b", false),
            ("flow.#", "flow", true),
            ("flow.#", "flow.a.b", true),
            ("#", "anything.at.all", true),
            ("#", "", true),
            ("*", "", false),
            ("*.deadletter", "x.deadletter", true),
            ("a.#.z", "a.z", true),
            ("a.#.z", "a.b.c.z", true),
            ("a.#.z", "a.b.c", false),
            ("#.snapshot", "flow-1.step_1.snapshot", true),
            ("flow-1.step_1.input", "flow-1.step_1.input", true),
            ("flow-1.step_1.input", "flow-1.step_2.input", false),
            ("iam.user.deleted", "iam.user", false),
        ];
        for (pattern, key, expected) in cases {
            assert_eq!(topic_matches(pattern, key), expected, "{pattern} vs {key}");
        }
    }
}
