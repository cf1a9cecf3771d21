//! The `metadata_domains` and `metadata_schemas` collections. Ids that are not 24-hex are
//! simply not found (OIH's CastError → 404).

use std::sync::Arc;

use oih_core::{Identity, ObjectId};
use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, SortOrder, StoreError};
use serde_json::{Value, json};

use crate::model::{Domain, DomainInput, Schema};

pub const DOMAINS: Collection = Collection("metadata_domains");
pub const SCHEMAS: Collection = Collection("metadata_schemas");

/// A page of results and the number of matches on every page.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[derive(Clone)]
pub struct MetaStore {
    docs: Arc<dyn DocStore>,
}

fn by_creation(skip: u64, limit: u64) -> FindOptions {
    FindOptions {
        sort: vec![("_createdAt".into(), SortOrder::Asc)],
        skip,
        limit: Some(limit),
    }
}

fn uri_filter(uri: &str) -> Filter {
    Filter::eq("uri", uri)
}

impl MetaStore {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, StoreError> {
        docs.ensure_collection(
            DOMAINS,
            &CollectionSpec {
                unique: vec![],
                indexed: vec!["tenant", "name"],
            },
        )
        .await?;
        docs.ensure_collection(
            SCHEMAS,
            &CollectionSpec {
                unique: vec![vec!["uri"]],
                indexed: vec!["domainId"],
            },
        )
        .await?;
        Ok(Self { docs })
    }

    // ---- domains -------------------------------------------------------------------------

    pub async fn domain(&self, id: &str) -> Result<Option<Domain>, StoreError> {
        if !ObjectId::is_valid(id) {
            return Ok(None);
        }
        Ok(self
            .docs
            .get(DOMAINS, id)
            .await?
            .as_ref()
            .map(Domain::from_doc))
    }

    /// The domains a caller sees in `GET /domains`: its tenant's, public ones and those it
    /// owns. `total` counts the same set (OIH counted only the tenant's).
    pub async fn visible_domains(
        &self,
        user: &Identity,
        skip: u64,
        limit: u64,
    ) -> Result<Listed<Domain>, StoreError> {
        let mut any = vec![
            Filter::eq("public", true),
            Filter::ArrayContains("owners".into(), json!({"id": user.sub, "type": "USER"})),
        ];
        if let Some(tenant) = &user.tenant {
            any.push(Filter::eq("tenant", tenant.as_str()));
        }
        let filter = Filter::or(any);
        let items = self
            .docs
            .find(DOMAINS, &filter, &by_creation(skip, limit))
            .await?;
        Ok(Listed {
            items: items.iter().map(Domain::from_doc).collect(),
            total: self.docs.count(DOMAINS, &filter).await?,
        })
    }

    pub async fn create_domain(
        &self,
        input: DomainInput,
        owners: Vec<oih_core::Owner>,
        tenant: Option<String>,
    ) -> Result<Domain, StoreError> {
        let body = json!({
            "name": input.name,
            "description": input.description,
            "public": input.public,
            "owners": owners,
            "tenant": tenant,
        });
        let doc = self
            .docs
            .insert(DOMAINS, &ObjectId::new().to_string(), body, None)
            .await?;
        Ok(Domain::from_doc(&doc))
    }

    pub async fn update_domain(
        &self,
        domain: &Domain,
        input: DomainInput,
    ) -> Result<Domain, StoreError> {
        let updated = Domain {
            name: input.name,
            description: input.description,
            public: input.public,
            ..domain.clone()
        };
        let doc = self
            .docs
            .update(DOMAINS, &domain.id, Some(domain.version), updated.body())
            .await?;
        Ok(Domain::from_doc(&doc))
    }

    /// Deletes a domain and all its schemas in one transaction.
    pub async fn delete_domain(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.docs.begin().await?;
        tx.delete_many(SCHEMAS, &Filter::eq("domainId", id)).await?;
        tx.delete(DOMAINS, id).await?;
        tx.commit().await
    }

    pub async fn tenant_domain_ids(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let docs = self
            .docs
            .find(
                DOMAINS,
                &Filter::eq("tenant", tenant),
                &FindOptions::default(),
            )
            .await?;
        Ok(docs.into_iter().map(|d| d.id).collect())
    }

    /// The domain named `name` (refusing an ambiguous name), created public and ownerless when
    /// none exists. For the operator's import command.
    pub async fn domain_by_name_or_create(&self, name: &str) -> Result<Domain, StoreError> {
        let found = self
            .docs
            .find(DOMAINS, &Filter::eq("name", name), &FindOptions::default())
            .await?;
        match found.as_slice() {
            [] => {
                let input = DomainInput {
                    name: Some(name.to_owned()),
                    description: None,
                    public: true,
                };
                self.create_domain(input, Vec::new(), None).await
            }
            [one] => Ok(Domain::from_doc(one)),
            _ => Err(StoreError::Invalid(format!(
                "several domains are named {name}; import by id instead"
            ))),
        }
    }

    // ---- schemas -------------------------------------------------------------------------

    pub async fn schema(&self, uri: &str) -> Result<Option<Schema>, StoreError> {
        let found = self
            .docs
            .find(SCHEMAS, &uri_filter(uri), &FindOptions::default())
            .await?;
        Ok(found.first().map(Schema::from_doc))
    }

    pub async fn schemas_in_domain(
        &self,
        domain_id: &str,
        skip: u64,
        limit: u64,
    ) -> Result<Listed<Schema>, StoreError> {
        let filter = Filter::eq("domainId", domain_id);
        let items = self
            .docs
            .find(SCHEMAS, &filter, &by_creation(skip, limit))
            .await?;
        Ok(Listed {
            items: items.iter().map(Schema::from_doc).collect(),
            total: self.docs.count(SCHEMAS, &filter).await?,
        })
    }

    /// Schemas whose (transitive) `refs` name any of `uris`, except those in `outside_of`.
    pub async fn referrers(
        &self,
        uris: &[String],
        outside_of: Option<&str>,
    ) -> Result<Vec<Schema>, StoreError> {
        if uris.is_empty() {
            return Ok(Vec::new());
        }
        let any = Filter::or(
            uris.iter()
                .map(|u| Filter::ArrayContains("refs".into(), Value::String(u.clone()))),
        );
        let filter = match outside_of {
            Some(domain) => {
                Filter::and([any, Filter::Not(Box::new(Filter::eq("domainId", domain)))])
            }
            None => any,
        };
        let docs = self
            .docs
            .find(SCHEMAS, &filter, &FindOptions::default())
            .await?;
        Ok(docs.iter().map(Schema::from_doc).collect())
    }

    pub async fn schema_uris_in_domain(&self, domain_id: &str) -> Result<Vec<String>, StoreError> {
        let docs = self
            .docs
            .find(
                SCHEMAS,
                &Filter::eq("domainId", domain_id),
                &FindOptions::default(),
            )
            .await?;
        Ok(docs.iter().map(|d| Schema::from_doc(d).uri).collect())
    }

    /// Inserts new schemas, all or none.
    pub async fn insert_schemas(&self, schemas: Vec<Schema>) -> Result<Vec<Schema>, StoreError> {
        let mut tx = self.docs.begin().await?;
        let mut created = Vec::with_capacity(schemas.len());
        for schema in schemas {
            let doc = tx
                .insert(SCHEMAS, &ObjectId::new().to_string(), schema.body(), None)
                .await?;
            created.push(Schema::from_doc(&doc));
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Writes a changed schema and the recomputed `refs` of the schemas that reference it,
    /// all or none.
    pub async fn update_schemas(&self, changed: Vec<Schema>) -> Result<Vec<Schema>, StoreError> {
        let mut tx = self.docs.begin().await?;
        let mut updated = Vec::with_capacity(changed.len());
        for schema in changed {
            let doc = tx
                .update(SCHEMAS, &schema.id, Some(schema.version), schema.body())
                .await?;
            updated.push(Schema::from_doc(&doc));
        }
        tx.commit().await?;
        Ok(updated)
    }

    pub async fn delete_schema(&self, schema: &Schema) -> Result<bool, StoreError> {
        self.docs.delete(SCHEMAS, &schema.id).await
    }
}
