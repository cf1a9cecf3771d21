//! `GET /api/v1/permissions` (iam-ils.md §10.6): the common permissions, plus the restricted
//! ones for admins.

use oih_http::{Json, Query};
use serde_json::Value;

use super::{list_response, wants_meta};
use crate::access::Caller;
use crate::permissions::{COMMON_PERMISSIONS, RESTRICTED_PERMISSIONS};

pub async fn list(caller: Caller, Query(query): Query<Vec<(String, String)>>) -> Json<Value> {
    let mut items: Vec<Value> = COMMON_PERMISSIONS.iter().map(|p| Value::from(*p)).collect();
    if caller.is_admin() {
        items.extend(RESTRICTED_PERMISSIONS.iter().map(|p| Value::from(*p)));
    }
    list_response(items, wants_meta(&query))
}
