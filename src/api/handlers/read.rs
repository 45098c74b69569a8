//! GET of one object and LIST, from the store (consistent reads, paging with
//! continue tokens) or from the watch cache (`resourceVersion=0`).

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Core, Ctx, field_attributes, load, store_error};
use crate::api::convert::from_storage;
use crate::api::object;
use crate::api::response::json;
use crate::api::status::ApiStatus;
use crate::api::tables::{self, TableRequest};
use crate::store::{ListOptions, Revision, StoreError};

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A continue token: where the next page starts and the revision the list
/// is read at, as upstream encodes it (base64 of a small JSON document).
#[derive(Debug, PartialEq, Eq)]
pub struct ContinueToken {
    pub revision: Revision,
    /// The last key returned, relative to the list prefix.
    pub start: String,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        B64.encode(
            json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": self.start}).to_string(),
        )
    }

    pub fn decode(token: &str) -> Result<Self, ApiStatus> {
        let bad = || {
            ApiStatus::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let raw = B64.decode(token).map_err(|_| bad())?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        let (Some(rv), Some(start)) = (v["rv"].as_i64(), v["start"].as_str()) else {
            return Err(bad());
        };
        if v["v"] != "meta.k8s.io/v1" || rv <= 0 || start.contains("..") || start.starts_with('/') {
            return Err(bad());
        }
        Ok(ContinueToken {
            revision: rv,
            start: start.to_string(),
        })
    }
}

/// Presents a stored object as a response body (or a one-row Table).
pub fn present_one(ctx: &Ctx, obj: Value) -> Result<Value, ApiStatus> {
    Ok(
        match TableRequest::from_request(&ctx.headers, &ctx.query)? {
            Some(req) => {
                let rv = object::meta_str(&obj, "resourceVersion")
                    .unwrap_or("")
                    .to_string();
                tables::table(
                    ctx.kind(),
                    &[obj],
                    json!({"resourceVersion": rv}),
                    &req,
                    true,
                )
            }
            None => from_storage(ctx.kind(), obj),
        },
    )
}

pub async fn get(core: &Arc<Core>, ctx: Ctx) -> Result<Response, ApiStatus> {
    let obj = if ctx.query.get("resourceVersion") == Some("0") {
        let key = ctx.key();
        let (items, _) = core.cache(ctx.kind())?.list(&key);
        items
            .into_iter()
            .find(|o| {
                ctx.kind()
                    .key(object::meta_str(o, "namespace"), object::name(o))
                    == key
            })
            .map(|o| (*o).clone())
            .ok_or_else(|| ApiStatus::not_found(ctx.kind(), ctx.name()))?
    } else {
        load(core, &ctx).await?.1
    };
    Ok(json(StatusCode::OK, &present_one(&ctx, obj)?))
}

/// One page of a list, in storage form.
struct Page {
    items: Vec<Value>,
    revision: Revision,
    next: Option<ContinueToken>,
    remaining: Option<u64>,
}

pub async fn list(core: &Arc<Core>, ctx: Ctx) -> Result<Response, ApiStatus> {
    let table = TableRequest::from_request(&ctx.headers, &ctx.query)?;
    let labels = ctx.label_selector()?;
    let fields = ctx.field_selector()?;
    let kind = ctx.kind();
    let matches = |o: &Value| {
        labels.matches(o) && (fields.is_empty() || fields.matches(&field_attributes(kind, o)))
    };
    let rv = ctx.query.get("resourceVersion");
    let rv_match = ctx.query.get("resourceVersionMatch");
    let limit = ctx
        .query
        .int("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let prefix = kind.prefix(ctx.namespace());
    let continue_token = ctx
        .query
        .get("continue")
        .map(ContinueToken::decode)
        .transpose()?;
    if continue_token.is_some() && rv.is_some_and(|v| v != "0") {
        return Err(ApiStatus::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let requested: Option<Revision> = match rv {
        None => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiStatus::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    if rv_match.is_some() && requested.is_none() {
        return Err(ApiStatus::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    let cache = core.cache(kind)?;
    let from_cache = continue_token.is_none()
        && match (requested, rv_match) {
            (Some(0), _) => true,
            (Some(n), None | Some("NotOlderThan")) => cache.revision() >= n,
            _ => false,
        };
    let page = if from_cache {
        let (items, revision) = cache.list(&prefix);
        Page {
            items: items
                .iter()
                .filter(|o| matches(o))
                .map(|o| (**o).clone())
                .collect(),
            revision,
            next: None,
            remaining: None,
        }
    } else {
        let (revision, start) = match &continue_token {
            Some(t) => (Some(t.revision), Some(format!("{prefix}{}", t.start))),
            // An exact read is at that revision; a newer-than read the
            // cache cannot serve yet is a consistent read of the latest.
            None if rv_match == Some("Exact") => (requested.filter(|n| *n > 0), None),
            None => (None, None),
        };
        let unfiltered = labels.is_empty() && fields.is_empty();
        read_store(core, &prefix, revision, start, limit, &matches, unfiltered)
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if continue_token.is_some() => {
                    ApiStatus::expired(CONTINUE_EXPIRED)
                }
                other => store_error(other),
            })?
    };
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = json!(next.encode());
    }
    if let Some(n) = page.remaining.filter(|n| *n > 0) {
        meta["remainingItemCount"] = json!(n);
    }
    let body = match table {
        Some(req) => tables::table(kind, &page.items, meta, &req, true),
        None => json!({
            "kind": kind.list_kind(),
            "apiVersion": kind.api_version(),
            "metadata": meta,
            "items": page
                .items
                .into_iter()
                .map(|o| strip_type_meta(from_storage(kind, o)))
                .collect::<Vec<_>>(),
        }),
    };
    Ok(json(StatusCode::OK, &body))
}

/// List items of built-in kinds carry no apiVersion and kind, as upstream's
/// typed lists encode them.
pub fn strip_type_meta(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    obj
}

/// Reads matching objects from the store at one revision, `limit` at most,
/// fetching further pages while a selector filters items out.
async fn read_store(
    core: &Core,
    prefix: &str,
    mut revision: Option<Revision>,
    mut start: Option<String>,
    limit: Option<usize>,
    matches: &(dyn Fn(&Value) -> bool + Sync),
    unfiltered: bool,
) -> Result<Page, StoreError> {
    let mut items = Vec::new();
    loop {
        let want = limit.map(|l| l.saturating_sub(items.len()).max(1));
        let opts = ListOptions {
            revision,
            start_after: start.clone(),
            limit: want,
        };
        let page = core.store.list(prefix, opts).await?;
        revision = Some(page.revision);
        for kv in &page.kvs {
            if let Ok(obj) = object::decode(kv) {
                if matches(&obj) {
                    items.push(obj);
                }
            }
        }
        start = page.kvs.last().map(|kv| kv.key.clone()).or(start);
        let full = limit.is_some_and(|l| items.len() >= l);
        if !page.more || full {
            let next = match (page.more, &start) {
                (true, Some(key)) => Some(ContinueToken {
                    revision: page.revision,
                    start: key.strip_prefix(prefix).unwrap_or(key).to_string(),
                }),
                _ => None,
            };
            return Ok(Page {
                items,
                revision: page.revision,
                next,
                remaining: (unfiltered && page.more).then_some(page.remaining),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = ContinueToken {
            revision: 42,
            start: "default/x".into(),
        };
        assert!(matches!(ContinueToken::decode(&t.encode()), Ok(back) if back == t));
        assert!(ContinueToken::decode("not base64!").is_err());
        let sneaky = B64.encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x"}"#);
        assert!(ContinueToken::decode(&sneaky).is_err());
    }
}
