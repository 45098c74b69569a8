//! WATCH: a chunked stream of newline-delimited watch events served from
//! the kind's watch cache, with selectors (an object that stops matching is
//! DELETED, one that starts matching is ADDED), bookmarks, timeouts and
//! `410 Expired` as an ERROR event.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{Core, Ctx, field_attributes};
use crate::api::convert::from_storage;
use crate::api::registry::KindInfo;
use crate::api::selectors::{FieldSelector, LabelSelector};
use crate::api::status::ApiStatus;
use crate::api::tables::{self, TableRequest};
use crate::api::watch_cache::{CachedEvent, WatchCache};
use crate::store::{EventKind, Revision};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(20);
/// Upstream's default watch length (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watcher wants to see.
struct Filter {
    kind: &'static KindInfo,
    prefix: String,
    labels: LabelSelector,
    fields: FieldSelector,
    after: Revision,
    /// One-row Tables instead of objects, when asked for.
    table: Option<TableRequest>,
    /// Whether a Table with column definitions went out: as upstream, only
    /// the first event's Table carries them.
    headers_sent: AtomicBool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj)
            && (self.fields.is_empty() || self.fields.matches(&field_attributes(self.kind, obj)))
    }

    /// The event type this watcher sees for a cached event, if any.
    fn event_type(&self, e: &CachedEvent) -> Option<&'static str> {
        if e.revision <= self.after || !e.key.starts_with(&self.prefix) {
            return None;
        }
        let now = self.matches(&e.object);
        let before = e.prev.as_deref().is_some_and(|p| self.matches(p));
        match e.kind {
            EventKind::Created => now.then_some("ADDED"),
            EventKind::Deleted => now.then_some("DELETED"),
            EventKind::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }

    fn encode(&self, kind: &str, obj: &Value) -> Bytes {
        let out = match &self.table {
            Some(req) => {
                let rv = obj["metadata"]["resourceVersion"].clone();
                let headers = !self.headers_sent.swap(true, Ordering::Relaxed);
                tables::table(
                    self.kind,
                    std::slice::from_ref(obj),
                    json!({"resourceVersion": rv}),
                    req,
                    headers,
                )
            }
            None => from_storage(self.kind, obj.clone()),
        };
        line(kind, &out)
    }
}

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn bookmark(kind: &KindInfo, revision: Revision, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind.kind, "apiVersion": kind.api_version(), "metadata": meta}),
    )
}

pub async fn watch(core: &Arc<Core>, ctx: Ctx) -> Result<Response, ApiStatus> {
    let kind = ctx.kind();
    let requested: Option<Revision> = match ctx.query.get("resourceVersion") {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiStatus::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let send_initial = ctx.query.flag("sendInitialEvents");
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let timeout = ctx
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut filter = Filter {
        kind,
        prefix: kind.prefix(ctx.namespace()),
        labels: ctx.label_selector()?,
        fields: ctx.field_selector()?,
        after: 0,
        table: TableRequest::from_request(&ctx.headers, &ctx.query)?,
        headers_sent: AtomicBool::new(false),
    };
    if let (Some(name), Some(ns)) = (filter.fields.required("metadata.name"), ctx.namespace()) {
        filter.prefix = kind.key(Some(ns), name);
    }
    let cache = core.cache(kind)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let subscription = cache.subscribe(if send_initial { None } else { requested });
    match subscription {
        Err(too_old) => {
            let status = ApiStatus::expired(too_old.to_string()).to_value();
            let _ = tx.try_send(line("ERROR", &status));
        }
        Ok(sub) => {
            filter.after = match (send_initial, requested) {
                (false, Some(after)) => after,
                _ => 0,
            };
            let initial_end = (send_initial && bookmarks).then_some(sub.revision);
            tokio::spawn(async move {
                let sender = Sender { tx, filter, cache };
                sender
                    .run(sub.replay, sub.live, initial_end, bookmarks, timeout)
                    .await;
            });
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// The task feeding one watcher's response body.
struct Sender {
    tx: mpsc::Sender<Bytes>,
    filter: Filter,
    cache: Arc<WatchCache>,
}

impl Sender {
    /// Sends one event; false once the client is gone.
    async fn send(&self, e: &CachedEvent) -> bool {
        match self.filter.event_type(e) {
            Some(t) => self.tx.send(self.filter.encode(t, &e.object)).await.is_ok(),
            None => true,
        }
    }

    async fn run(
        self,
        replay: Vec<Arc<CachedEvent>>,
        mut live: broadcast::Receiver<Arc<CachedEvent>>,
        initial_end: Option<Revision>,
        bookmarks: bool,
        timeout: Duration,
    ) {
        for e in &replay {
            if !self.send(e).await {
                return;
            }
        }
        if let Some(revision) = initial_end {
            if self
                .tx
                .send(bookmark(self.filter.kind, revision, true))
                .await
                .is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if let Some(revision) = self.cache.bookmark_revision(&live) {
                        let revision = revision.max(self.filter.after);
                        if self.tx.send(bookmark(self.filter.kind, revision, false)).await.is_err() {
                            return;
                        }
                    }
                }
                event = live.recv() => match event {
                    Ok(e) => {
                        if !self.send(&e).await {
                            return;
                        }
                    }
                    // Too far behind, or the cache re-listed: end the watch;
                    // the client resumes from its last resourceVersion.
                    Err(_) => return,
                },
            }
        }
    }
}
