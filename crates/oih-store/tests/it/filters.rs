//! Every `Filter` variant, JSON typing, sort, paging and path validation.

use std::time::Duration;

use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, SortOrder, StoreError};
use serde_json::{Value, json};

use crate::support::Ctx;

const C: Collection = Collection("t_filter");

async fn seed(docs: &dyn DocStore) -> anyhow::Result<()> {
    let spec = CollectionSpec {
        unique: vec![],
        indexed: vec!["name", "n"],
    };
    docs.ensure_collection(C, &spec).await?;
    let rows = [
        (
            "a",
            json!({"name": "alpha", "n": 1, "s": "1", "flag": true, "nul": null,
                   "tags": ["x", "y"], "nested": {"k": "v"},
                   "owners": [{"id": "u1", "type": "USER"}, {"id": "t1", "type": "TENANT"}],
                   "at": "2024-01-02T00:00:00Z"}),
        ),
        (
            "b",
            json!({"name": "Beta", "n": 2.5, "s": "2", "flag": false, "tags": ["y"],
                   "owners": [{"id": "u2", "type": "USER"}], "at": "2024-03-01T00:00:00Z"}),
        ),
        (
            "c",
            json!({"name": "gamma", "n": 10, "s": "10", "tags": [],
                   "owners": [{"id": "u1", "type": "TENANT", "role": "admin"}],
                   "at": "2023-12-31T23:59:59Z"}),
        ),
        (
            "d",
            json!({"name": "delta 50%_off", "n": 1.0, "tags": [1, 2], "owners": "u1"}),
        ),
        ("e", json!({"other": true, "name": ["alpha"]})),
    ];
    for (id, body) in rows {
        docs.insert(C, id, body, None).await?;
    }
    Ok(())
}

/// The ids matching `f`, in id order.
async fn ids(docs: &dyn DocStore, f: Filter) -> anyhow::Result<Vec<String>> {
    let opts = FindOptions {
        sort: vec![("_id".into(), SortOrder::Asc)],
        ..FindOptions::default()
    };
    let found: Vec<String> = docs
        .find(C, &f, &opts)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    // count agrees with find for every filter.
    assert_eq!(
        docs.count(C, &f).await?,
        found.len() as u64,
        "count of {f:?}"
    );
    Ok(found)
}

macro_rules! check {
    ($docs:expr, $filter:expr, [$($id:expr),*]) => {{
        let filter = $filter;
        let want: Vec<&str> = vec![$($id),*];
        assert_eq!(ids($docs, filter.clone()).await?, want, "filter {filter:?}");
    }};
}

fn s(v: &str) -> String {
    v.to_owned()
}

pub async fn equality_and_typing(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    seed(docs).await?;
    check!(docs, Filter::All, ["a", "b", "c", "d", "e"]);
    check!(docs, Filter::eq("name", "alpha"), ["a"]);
    // Numbers compare numerically: 1 == 1.0.
    check!(docs, Filter::eq("n", 1), ["a", "d"]);
    check!(docs, Filter::eq("n", 1.0), ["a", "d"]);
    check!(docs, Filter::eq("n", 2.5), ["b"]);
    // A string is not a number, and a boolean is not a number either.
    check!(docs, Filter::eq("s", "1"), ["a"]);
    check!(docs, Filter::eq("s", 1), []);
    check!(docs, Filter::eq("n", "1"), []);
    check!(docs, Filter::eq("flag", true), ["a"]);
    check!(docs, Filter::eq("flag", false), ["b"]);
    check!(docs, Filter::eq("flag", 1), []);
    check!(docs, Filter::Eq(s("nul"), Value::Null), ["a"]);
    check!(docs, Filter::eq("nested.k", "v"), ["a"]);
    check!(docs, Filter::eq("missing", "v"), []);
    // An array is not equal to one of its elements (that is ArrayContains).
    check!(docs, Filter::eq("tags", "y"), []);

    // Ne: not equal, or missing.
    check!(
        docs,
        Filter::Ne(s("name"), json!("alpha")),
        ["b", "c", "d", "e"]
    );
    check!(
        docs,
        Filter::Ne(s("flag"), json!(true)),
        ["b", "c", "d", "e"]
    );
    check!(docs, Filter::Ne(s("n"), json!(1)), ["b", "c", "e"]);

    check!(
        docs,
        Filter::In(s("n"), vec![json!(1), json!(10)]),
        ["a", "c", "d"]
    );
    check!(
        docs,
        Filter::In(s("name"), vec![json!("alpha"), json!("gamma"), json!(5)]),
        ["a", "c"]
    );
    check!(
        docs,
        Filter::In(s("flag"), vec![json!(false), Value::Null]),
        ["b"]
    );
    check!(docs, Filter::In(s("s"), vec![json!(1), json!(2)]), []);
    check!(docs, Filter::In(s("name"), vec![]), []);
    Ok(())
}

pub async fn ranges(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    seed(docs).await?;
    check!(docs, Filter::Gt(s("n"), json!(1)), ["b", "c"]);
    check!(docs, Filter::Gte(s("n"), json!(1)), ["a", "b", "c", "d"]);
    check!(docs, Filter::Lt(s("n"), json!(2.5)), ["a", "d"]);
    check!(docs, Filter::Lte(s("n"), json!(2.5)), ["a", "b", "d"]);
    // Numerically, not lexicographically: 10 > 9.
    check!(docs, Filter::Gt(s("n"), json!(9)), ["c"]);
    // Strings compare lexicographically: "10" < "2".
    check!(docs, Filter::Gt(s("s"), json!("1")), ["b", "c"]);
    check!(docs, Filter::Lt(s("s"), json!("2")), ["a", "c"]);
    // A range over one type never matches the other.
    check!(docs, Filter::Gt(s("n"), json!("0")), []);
    check!(docs, Filter::Gt(s("s"), json!(0)), []);
    // ISO timestamps order as strings.
    check!(
        docs,
        Filter::Lt(s("at"), json!("2024-01-01T00:00:00Z")),
        ["c"]
    );
    check!(
        docs,
        Filter::Gte(s("at"), json!("2024-01-02T00:00:00Z")),
        ["a", "b"]
    );
    // Ranges over booleans, null, objects are refused.
    for v in [json!(true), Value::Null, json!({"a": 1}), json!([1])] {
        let err = docs
            .find(C, &Filter::Gt(s("n"), v), &FindOptions::default())
            .await;
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    }
    Ok(())
}

pub async fn exists_arrays_text(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    seed(docs).await?;
    check!(docs, Filter::Exists(s("flag"), true), ["a", "b"]);
    check!(docs, Filter::Exists(s("flag"), false), ["c", "d", "e"]);
    // A JSON null counts as present.
    check!(docs, Filter::Exists(s("nul"), true), ["a"]);
    check!(docs, Filter::Exists(s("nested.k"), true), ["a"]);
    check!(docs, Filter::Exists(s("nested.k.deeper"), true), []);

    check!(
        docs,
        Filter::ArrayContains(s("tags"), json!("y")),
        ["a", "b"]
    );
    check!(docs, Filter::ArrayContains(s("tags"), json!(1)), ["d"]);
    check!(docs, Filter::ArrayContains(s("tags"), json!(1.0)), ["d"]);
    check!(docs, Filter::ArrayContains(s("tags"), json!("1")), []);
    // "owners contains {id: u1}": objects match on the given fields only.
    check!(
        docs,
        Filter::ArrayContains(s("owners"), json!({"id": "u1"})),
        ["a", "c"]
    );
    check!(
        docs,
        Filter::ArrayContains(s("owners"), json!({"id": "u1", "type": "USER"})),
        ["a"]
    );
    check!(
        docs,
        Filter::ArrayContains(s("owners"), json!({"id": "u1", "type": "TENANT"})),
        ["c"]
    );
    check!(
        docs,
        Filter::ArrayContains(s("owners"), json!({"id": "nobody"})),
        []
    );
    // Only arrays match: `a.name` is the string "alpha", `e.name` is ["alpha"].
    check!(
        docs,
        Filter::ArrayContains(s("name"), json!("alpha")),
        ["e"]
    );
    check!(docs, Filter::ArrayContains(s("missing"), json!("x")), []);
    // Malicious field names inside the object are refused.
    let err = docs
        .count(
            C,
            &Filter::ArrayContains(s("owners"), json!({"id') OR 1=1 --": "x"})),
        )
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");

    // Case-insensitive substring; LIKE wildcards are plain characters.
    check!(docs, Filter::ContainsText(s("name"), s("ALP")), ["a"]);
    check!(docs, Filter::ContainsText(s("name"), s("beta")), ["b"]);
    check!(docs, Filter::ContainsText(s("name"), s("%")), ["d"]);
    check!(docs, Filter::ContainsText(s("name"), s("_")), ["d"]);
    check!(
        docs,
        Filter::ContainsText(s("name"), s("a")),
        ["a", "b", "c", "d"]
    );
    // Only strings are searched.
    check!(docs, Filter::ContainsText(s("n"), s("1")), []);
    Ok(())
}

pub async fn boolean_logic_and_pseudo_paths(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    seed(docs).await?;
    check!(docs, Filter::And(vec![]), ["a", "b", "c", "d", "e"]);
    check!(docs, Filter::Or(vec![]), []);
    check!(
        docs,
        Filter::Not(Box::new(Filter::Or(vec![]))),
        ["a", "b", "c", "d", "e"]
    );
    check!(
        docs,
        Filter::and([Filter::eq("flag", true), Filter::Gt(s("n"), json!(0))]),
        ["a"]
    );
    check!(
        docs,
        Filter::or([Filter::eq("name", "alpha"), Filter::eq("name", "gamma")]),
        ["a", "c"]
    );
    check!(
        docs,
        Filter::Not(Box::new(Filter::eq("name", "alpha"))),
        ["b", "c", "d", "e"]
    );
    // Not over a missing path is true (two-valued logic, no SQL NULL leaking through).
    check!(
        docs,
        Filter::Not(Box::new(Filter::Gt(s("n"), json!(2)))),
        ["a", "d", "e"]
    );
    check!(
        docs,
        Filter::Not(Box::new(Filter::Not(Box::new(Filter::eq("n", 1))))),
        ["a", "d"]
    );
    check!(
        docs,
        Filter::and([
            Filter::or([Filter::eq("n", 1), Filter::eq("n", 10)]),
            Filter::Not(Box::new(Filter::Exists(s("s"), false))),
        ]),
        ["a", "c"]
    );

    check!(docs, Filter::eq("_id", "b"), ["b"]);
    check!(docs, Filter::eq("_id", 5), []);
    check!(
        docs,
        Filter::In(s("_id"), vec![json!("a"), json!("c"), json!("zz")]),
        ["a", "c"]
    );
    check!(docs, Filter::Gt(s("_id"), json!("c")), ["d", "e"]);
    check!(docs, Filter::Ne(s("_id"), json!("a")), ["b", "c", "d", "e"]);
    check!(docs, Filter::ContainsText(s("_id"), s("A")), ["a"]);
    check!(
        docs,
        Filter::Exists(s("_id"), true),
        ["a", "b", "c", "d", "e"]
    );
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    check!(
        docs,
        Filter::Lte(s("_createdAt"), json!(now.to_rfc3339())),
        ["a", "b", "c", "d", "e"]
    );
    check!(
        docs,
        Filter::Gt(s("_updatedAt"), json!(now.to_rfc3339())),
        []
    );
    check!(
        docs,
        Filter::Gt(s("_createdAt"), json!(0)),
        ["a", "b", "c", "d", "e"]
    );
    let err = docs
        .count(C, &Filter::Gt(s("_createdAt"), json!("yesterday")))
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");

    // delete_many removes exactly the matches.
    assert_eq!(docs.delete_many(C, &Filter::eq("n", 1)).await?, 2);
    check!(docs, Filter::All, ["b", "c", "e"]);
    Ok(())
}

/// Paths end up in SQL text, so anything outside `[A-Za-z0-9_$-]` (dot-separated) is refused;
/// values are always bound, so hostile values are just values.
pub async fn malicious_input(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    seed(docs).await?;
    let bad_paths = [
        "",
        "name') OR 1=1 --",
        "name'",
        "na\"me",
        "a b",
        "a..b",
        "a.",
        ".a",
        "a[0]",
        "a}",
        "a,b",
        "a;DROP TABLE doc_t_filter",
        "ünïcode",
    ];
    for path in bad_paths {
        let filters = [
            Filter::eq(path, "x"),
            Filter::Exists(s(path), true),
            Filter::ContainsText(s(path), s("x")),
            Filter::Not(Box::new(Filter::In(s(path), vec![json!(1)]))),
        ];
        for f in filters {
            let err = docs.find(C, &f, &FindOptions::default()).await;
            assert!(
                matches!(err, Err(StoreError::Invalid(_))),
                "{path:?}: {err:?}"
            );
        }
        let opts = FindOptions {
            sort: vec![(s(path), SortOrder::Asc)],
            ..FindOptions::default()
        };
        let err = docs.find(C, &Filter::All, &opts).await;
        assert!(
            matches!(err, Err(StoreError::Invalid(_))),
            "sort {path:?}: {err:?}"
        );
    }
    // Unusual but valid segment characters work.
    docs.insert(C, "w", json!({"a-b": {"c$d_1": 5}}), None)
        .await?;
    check!(docs, Filter::eq("a-b.c$d_1", 5), ["w"]);

    for value in ["x' OR '1'='1", "'; DROP TABLE doc_t_filter; --", "\"", "\\"] {
        check!(docs, Filter::eq("name", value), []);
        check!(docs, Filter::ContainsText(s("name"), s(value)), []);
    }
    check!(docs, Filter::All, ["a", "b", "c", "d", "e", "w"]);
    Ok(())
}

async fn sorted(
    docs: &dyn DocStore,
    coll: Collection,
    sort: &[(&str, SortOrder)],
    skip: u64,
    limit: Option<u64>,
) -> anyhow::Result<Vec<String>> {
    let opts = FindOptions {
        sort: sort.iter().map(|(p, o)| (s(p), *o)).collect(),
        skip,
        limit,
    };
    Ok(docs
        .find(coll, &Filter::All, &opts)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect())
}

pub async fn sort_and_page(ctx: Ctx) -> anyhow::Result<()> {
    use SortOrder::{Asc, Desc};
    let docs = &*ctx.db.docs;
    let coll = Collection("t_sort");
    docs.ensure_collection(coll, &CollectionSpec::default())
        .await?;
    // Inserted in this order, a little apart so creation times differ.
    let rows = [
        ("r1", json!({"n": 10, "name": "b", "grp": 1})),
        ("r2", json!({"n": 2, "name": "B", "grp": 2})),
        ("r3", json!({"n": 1.5, "name": "a", "grp": 1})),
        ("r4", json!({"n": -3, "name": "ab", "grp": 2})),
        ("r5", json!({"n": 100, "name": "c", "grp": 1})),
        ("r6", json!({"n": 2, "name": "10", "grp": 2})),
    ];
    for (id, body) in rows {
        docs.insert(coll, id, body, None).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Numbers sort numerically (2 < 10 < 100), ties (n = 2) by id ascending in both directions.
    assert_eq!(
        sorted(docs, coll, &[("n", Asc)], 0, None).await?,
        ["r4", "r3", "r2", "r6", "r1", "r5"]
    );
    assert_eq!(
        sorted(docs, coll, &[("n", Desc)], 0, None).await?,
        ["r5", "r1", "r2", "r6", "r3", "r4"]
    );
    // Strings sort by code point: "10" < "B" < "a" < "ab" < "b" < "c".
    assert_eq!(
        sorted(docs, coll, &[("name", Asc)], 0, None).await?,
        ["r6", "r2", "r3", "r4", "r1", "r5"]
    );
    assert_eq!(
        sorted(docs, coll, &[("name", Desc)], 0, None).await?,
        ["r5", "r1", "r4", "r3", "r2", "r6"]
    );
    // Several keys.
    assert_eq!(
        sorted(docs, coll, &[("grp", Asc), ("n", Desc)], 0, None).await?,
        ["r5", "r1", "r3", "r2", "r6", "r4"]
    );
    // Pseudo-paths.
    assert_eq!(
        sorted(docs, coll, &[("_createdAt", Asc)], 0, None).await?,
        ["r1", "r2", "r3", "r4", "r5", "r6"]
    );
    assert_eq!(
        sorted(docs, coll, &[("_createdAt", Desc)], 0, None).await?,
        ["r6", "r5", "r4", "r3", "r2", "r1"]
    );
    assert_eq!(
        sorted(docs, coll, &[("_id", Desc)], 0, None).await?,
        ["r6", "r5", "r4", "r3", "r2", "r1"]
    );
    docs.update(coll, "r3", None, json!({"n": 1.5, "name": "a", "grp": 1}))
        .await?;
    assert_eq!(
        sorted(docs, coll, &[("_updatedAt", Desc)], 0, Some(1)).await?,
        ["r3"]
    );

    // Paging: consecutive pages cover the ordering exactly once.
    let all = sorted(docs, coll, &[("n", Asc)], 0, None).await?;
    let mut paged = Vec::new();
    for page in 0..3 {
        paged.extend(sorted(docs, coll, &[("n", Asc)], page * 2, Some(2)).await?);
    }
    assert_eq!(paged, all);
    assert_eq!(sorted(docs, coll, &[("n", Asc)], 4, None).await?, all[4..]);
    assert!(sorted(docs, coll, &[], 6, Some(10)).await?.is_empty());
    assert!(sorted(docs, coll, &[], 0, Some(0)).await?.is_empty());
    // No sort: id order.
    assert_eq!(sorted(docs, coll, &[], 1, Some(2)).await?, ["r2", "r3"]);

    // Paging composes with a filter; count ignores paging.
    let opts = FindOptions {
        sort: vec![(s("n"), Desc)],
        skip: 1,
        limit: Some(1),
    };
    let f = Filter::eq("grp", 1);
    let page = docs.find(coll, &f, &opts).await?;
    assert_eq!(
        page.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["r1"]
    );
    assert_eq!(docs.count(coll, &f).await?, 3);

    // Mixed types: missing first, then numbers, then strings (ascending).
    docs.insert(coll, "m1", json!({"mixed": "x"}), None).await?;
    docs.insert(coll, "m2", json!({"mixed": 5}), None).await?;
    docs.insert(coll, "m3", json!({"mixed": "a"}), None).await?;
    docs.insert(coll, "m4", json!({"mixed": 40}), None).await?;
    let mixed = docs
        .find(
            coll,
            &Filter::Exists(s("mixed"), true),
            &FindOptions {
                sort: vec![(s("mixed"), Asc)],
                ..FindOptions::default()
            },
        )
        .await?;
    assert_eq!(
        mixed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["m2", "m4", "m3", "m1"]
    );
    let first = sorted(docs, coll, &[("mixed", Asc)], 0, Some(1)).await?;
    assert_eq!(first, ["r1"], "missing sorts first");
    Ok(())
}
