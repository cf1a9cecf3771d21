//! The flow every system runs, as data: the fixed request bodies, what each one must answer,
//! and the check of an answer.
//!
//! The flow renames `id` to `orderId`, computes `customer` (first and last name) and `total`
//! (price × quantity), drops the orders whose `orderId` is a multiple of 10 (10 % of the
//! bodies) and replies with the rest: 200 with the result, or 204 (no content) for a dropped
//! order (what oih answers when an execution ends without a reply; the peers' flows reply
//! 204 on their filter's other branch).

use serde_json::{Map, Value, json};

use super::load::Script;

/// How many distinct bodies the load generator cycles through.
const BODIES: usize = 100;

const FIRST: [&str; 4] = ["Ada", "Grace", "Alan", "Edsger"];
const LAST: [&str; 3] = ["Lovelace", "Hopper", "Turing"];

/// One request body and what the flow makes of it.
pub struct Case {
    pub body: String,
    /// The reply's JSON, or `None` when the filter drops the order.
    pub expected: Option<Map<String, Value>>,
}

/// The bodies, in the order the load generator sends them.
pub fn cases() -> Vec<Case> {
    (1..=BODIES).map(case).collect()
}

fn case(id: usize) -> Case {
    let (body, transformed) = order(id);
    Case {
        body: body.to_string(),
        expected: (!id.is_multiple_of(10)).then_some(transformed),
    }
}

/// Order `id` as sent, and what the transform step makes of it (before the filter).
pub fn order(id: usize) -> (Value, Map<String, Value>) {
    let first = FIRST[id % FIRST.len()];
    let last = LAST[id % LAST.len()];
    // Quarters are exact in binary floating point, so every engine computes the same total.
    let price = (id % 40) as f64 + 0.25 * (id % 4) as f64;
    let quantity = id % 7 + 1;
    let body = json!({
        "id": id,
        "firstName": first,
        "lastName": last,
        "price": price,
        "quantity": quantity,
        "note": "fixed-size padding so that every body is a realistic few hundred bytes long; the flow ignores it",
    });
    let Value::Object(transformed) = json!({
        "orderId": id,
        "customer": format!("{first} {last}"),
        "total": price * quantity as f64,
    }) else {
        unreachable!("a json! object literal")
    };
    (body, transformed)
}

/// Scenario (a)'s script: the bodies cycled in order, each answer's status checked against
/// what the flow makes of its body.
pub struct Replies(Vec<Case>);

impl Default for Replies {
    fn default() -> Self {
        Self(cases())
    }
}

impl Replies {
    pub fn cases(&self) -> &[Case] {
        &self.0
    }
}

impl Script for Replies {
    /// The index of the body's case.
    type Ticket = usize;

    fn body(&self, k: usize) -> (String, usize) {
        let i = k % self.0.len();
        (self.0[i].body.clone(), i)
    }

    fn settle(&self, i: usize, answer: Result<(u16, &[u8]), String>) -> Result<(), String> {
        let (status, body) = answer?;
        if self.0[i].status_ok(status) {
            Ok(())
        } else {
            Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(body)
            ))
        }
    }
}

impl Case {
    /// Whether `status` is the right kind of answer (checked on every request under load).
    pub fn status_ok(&self, status: u16) -> bool {
        match self.expected {
            Some(_) => status == 200,
            None => status == 204,
        }
    }

    /// The full check of one answer: a kept order gets exactly its result; a dropped one a 204
    /// without a result.
    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let text = || String::from_utf8_lossy(body).into_owned();
        if !self.status_ok(status) {
            return Err(format!("status {status}, body {}", text()));
        }
        let got = serde_json::from_slice::<Value>(body).ok();
        match (&self.expected, got) {
            (Some(want), Some(Value::Object(got))) if same(want, &got) => Ok(()),
            (Some(want), _) => Err(format!(
                "expected {}, got {}",
                Value::Object(want.clone()),
                text()
            )),
            (None, Some(Value::Object(got))) if got.contains_key("orderId") => Err(format!(
                "a dropped order was answered with a result: {}",
                text()
            )),
            (None, _) => Ok(()),
        }
    }
}

/// Equal field by field, numbers by value (engines print 7 as `7` or `7.0`).
pub fn same(want: &Map<String, Value>, got: &Map<String, Value>) -> bool {
    want.len() == got.len()
        && want.iter().all(|(k, w)| match (w, got.get(k)) {
            (Value::Number(w), Some(Value::Number(g))) => w.as_f64() == g.as_f64(),
            (w, g) => Some(w) == g,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_order_in_ten_is_dropped() {
        let cases = cases();
        let dropped = cases.iter().filter(|c| c.expected.is_none()).count();
        assert_eq!(dropped * 10, cases.len());
    }

    #[test]
    fn the_check_accepts_the_result_in_any_number_spelling_and_rejects_others() {
        let kept = case(7);
        let want = kept.expected.clone().expect("7 is kept");
        assert_eq!(
            Value::Object(want),
            json!({"orderId": 7, "customer": "Edsger Hopper", "total": 7.75})
        );
        let body = json!({"orderId": 7.0, "customer": "Edsger Hopper", "total": 7.75});
        assert_eq!(kept.check(200, body.to_string().as_bytes()), Ok(()));
        assert!(kept.check(201, body.to_string().as_bytes()).is_err());
        let wrong = json!({"orderId": 7, "customer": "Edsger Hopper", "total": 9});
        assert!(kept.check(200, wrong.to_string().as_bytes()).is_err());
        let extra = json!({"orderId": 7, "customer": "Edsger Hopper", "total": 7.75, "id": 7});
        assert!(kept.check(200, extra.to_string().as_bytes()).is_err());

        let dropped = case(10);
        assert_eq!(dropped.check(204, b""), Ok(()));
        assert!(dropped.check(200, br#"{"message":"done"}"#).is_err());
        assert!(dropped.check(202, b"").is_err());
        assert!(dropped.check(204, br#"{"orderId":10}"#).is_err());
    }
}
