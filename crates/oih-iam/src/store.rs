//! IAM's collections (`iam_accounts`, `iam_tenants`, `iam_roles`, `iam_tokens`, `iam_keys` (JWT keys), `iam_tenant_keys`) and typed access
//! to them. Only this module talks to the [`DocStore`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use oih_core::ObjectId;
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ACCOUNTS: Collection = Collection("iam_accounts");
pub const TENANTS: Collection = Collection("iam_tenants");
pub const ROLES: Collection = Collection("iam_roles");
pub const TOKENS: Collection = Collection("iam_tokens");
pub const KEYS: Collection = Collection("iam_keys");
pub const TENANT_KEYS: Collection = Collection("iam_tenant_keys");
pub const OIDC_CLIENTS: Collection = Collection("iam_oidc_clients");
pub const OIDC_CODES: Collection = Collection("iam_oidc_codes");
pub const OIDC_TOKENS: Collection = Collection("iam_oidc_tokens");

/// A typed document with the store's bookkeeping.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: T,
}

fn decode<T: DeserializeOwned>(doc: Document) -> Result<Stored<T>, StoreError> {
    Ok(Stored {
        body: serde_json::from_value(doc.body)?,
        id: doc.id,
        version: doc.version,
        created_at: doc.created_at,
        updated_at: doc.updated_at,
    })
}

#[derive(Clone)]
pub struct Repo {
    docs: Arc<dyn DocStore>,
}

impl Repo {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, StoreError> {
        docs.ensure_collection(
            ACCOUNTS,
            &CollectionSpec {
                unique: vec![vec!["username"]],
                indexed: vec!["tenant"],
            },
        )
        .await?;
        docs.ensure_collection(
            TENANTS,
            &CollectionSpec {
                unique: vec![],
                indexed: vec!["name"],
            },
        )
        .await?;
        docs.ensure_collection(
            ROLES,
            &CollectionSpec {
                unique: vec![vec!["name", "tenant"]],
                indexed: vec!["tenant"],
            },
        )
        .await?;
        docs.ensure_collection(
            TOKENS,
            &CollectionSpec {
                unique: vec![vec!["token"]],
                indexed: vec!["accountId"],
            },
        )
        .await?;
        docs.ensure_collection(
            TENANT_KEYS,
            &CollectionSpec {
                unique: vec![vec!["tenant"]],
                indexed: vec![],
            },
        )
        .await?;
        docs.ensure_collection(
            KEYS,
            &CollectionSpec {
                unique: vec![vec!["kid"]],
                indexed: vec!["alg"],
            },
        )
        .await?;
        for (coll, hash) in [(OIDC_CODES, "codeHash"), (OIDC_TOKENS, "tokenHash")] {
            docs.ensure_collection(
                coll,
                &CollectionSpec {
                    unique: vec![vec![hash]],
                    indexed: vec!["clientId"],
                },
            )
            .await?;
        }
        docs.ensure_collection(OIDC_CLIENTS, &CollectionSpec::default())
            .await?;
        Ok(Self { docs })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Stored<T>>, StoreError> {
        // Malformed ids cannot exist; answering "absent" keeps handlers free of special cases.
        if !ObjectId::is_valid(id) {
            return Ok(None);
        }
        self.docs.get(coll, id).await?.map(decode).transpose()
    }

    pub async fn find<T: DeserializeOwned>(
        &self,
        coll: Collection,
        filter: &Filter,
    ) -> Result<Vec<Stored<T>>, StoreError> {
        let opts = FindOptions {
            sort: vec![("_createdAt".into(), SortOrder::Asc)],
            ..FindOptions::default()
        };
        self.docs
            .find(coll, filter, &opts)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    pub async fn find_one<T: DeserializeOwned>(
        &self,
        coll: Collection,
        filter: &Filter,
    ) -> Result<Option<Stored<T>>, StoreError> {
        let opts = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        self.docs
            .find(coll, filter, &opts)
            .await?
            .into_iter()
            .next()
            .map(decode)
            .transpose()
    }

    pub async fn count(&self, coll: Collection, filter: &Filter) -> Result<u64, StoreError> {
        self.docs.count(coll, filter).await
    }

    pub async fn insert<T: Serialize + DeserializeOwned>(
        &self,
        coll: Collection,
        body: &T,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Stored<T>, StoreError> {
        let id = ObjectId::new().to_string();
        let doc = self
            .docs
            .insert(coll, &id, serde_json::to_value(body)?, expires_at)
            .await?;
        decode(doc)
    }

    /// Replaces the body if nobody changed the document since `current` was read.
    pub async fn update<T: Serialize + DeserializeOwned>(
        &self,
        coll: Collection,
        current: &Stored<T>,
        body: &T,
    ) -> Result<Stored<T>, StoreError> {
        let doc = self
            .docs
            .update(
                coll,
                &current.id,
                Some(current.version),
                serde_json::to_value(body)?,
            )
            .await?;
        decode(doc)
    }

    /// Rewrites a document with a new store expiry (the store's update keeps the old one), in
    /// one transaction so the document never disappears in between.
    pub async fn replace_with_expiry<T: Serialize + DeserializeOwned>(
        &self,
        coll: Collection,
        id: &str,
        body: &T,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.docs.begin().await?;
        if tx.delete(coll, id).await? {
            tx.insert(coll, id, serde_json::to_value(body)?, expires_at)
                .await?;
        }
        tx.commit().await
    }

    pub async fn delete(&self, coll: Collection, id: &str) -> Result<bool, StoreError> {
        if !ObjectId::is_valid(id) {
            return Ok(false);
        }
        self.docs.delete(coll, id).await
    }

    pub async fn delete_many(&self, coll: Collection, filter: &Filter) -> Result<u64, StoreError> {
        self.docs.delete_many(coll, filter).await
    }
}
