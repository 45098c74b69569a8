//! The revisioned key/value store behind the API server.
//!
//! The store knows nothing of Kubernetes kinds: it keeps opaque values under
//! string keys, stamps every write with the next value of one global revision
//! counter, and lets callers watch a key prefix from any retained revision.
//! These are the etcd semantics the API server relies on (compare-and-swap on
//! a key's mod revision, consistent paged lists, watch with replay, compaction).
//!
//! [`Backend`] is the contract; `sqlite` is the default engine. Other engines
//! (PostgreSQL, etcd) implement the same trait.

pub mod sqlite;
pub mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A position in the store's single, gap-free write log. The first write of a
/// fresh store gets revision 1.
pub type Revision = i64;

/// A live key with its value and the revisions that created and last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the latest write to the key (the CAS guard).
    pub mod_revision: Revision,
}

/// What happened to a key at one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Modified,
    Deleted,
}

/// One entry of the write log, as delivered to watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The revision of this write.
    pub revision: Revision,
    /// The key after the write. For `Deleted` its value is the value the key
    /// had just before deletion and its `mod_revision` is the delete revision.
    pub kv: KeyValue,
    /// The key before the write (`Modified` and `Deleted`), `None` for `Created`.
    pub prev: Option<KeyValue>,
}

/// Options of a range read.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read the state as of this revision; `None` reads the latest.
    pub revision: Option<Revision>,
    /// Start strictly after this key (the continue position of a paged list).
    pub start_after: Option<String>,
    /// At most this many keys; `None` or 0 means no limit.
    pub limit: Option<usize>,
}

/// A page of a range read.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the page was read at; continue with the same revision.
    pub revision: Revision,
    /// True when keys under the prefix remain after the last one returned.
    pub more: bool,
    /// How many keys under the prefix come after the page at that revision.
    pub remaining: u64,
}

/// The result of a successful update or delete.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The revision the write got.
    pub revision: Revision,
    /// The key before the write.
    pub prev: KeyValue,
}

/// Everything that can go wrong in the store. The messages are meant for an
/// operator: they name the file and say what to do where there is something
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    KeyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision was not the expected one (or the key is gone).
    /// `current` is the key as it is now, so callers can retry without a read.
    #[error("key {key} was modified concurrently")]
    Conflict {
        key: String,
        current: Option<Box<KeyValue>>,
    },
    #[error("revision {requested} has been compacted (oldest retained is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A watcher fell too far behind the writer and was dropped; it should
    /// re-list and watch again.
    #[error("watcher fell behind and was closed; re-list and watch again")]
    WatcherLagged,
    #[error("the store is shutting down")]
    Closed,
    #[error(
        "database {path} was written by a newer skiff (schema {found}, this skiff supports up to {supported}); upgrade skiff"
    )]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database {path} is corrupt or not a skiff database: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("no space left on the device holding {path}; free some space and restart")]
    DiskFull { path: String },
    #[error("database {path}: {detail}")]
    Database { path: String, detail: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stream of events in revision order. It ends with an `Err` item when the
/// watch cannot continue (`Compacted`, `WatcherLagged`, `Closed`).
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The operations the API server needs from a storage engine.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The latest committed revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable (everything at or below it that was
    /// superseded has been compacted away).
    fn compacted_revision(&self) -> Revision;

    /// Creates `key`; fails with `KeyExists` if it is live. A `ttl` makes the
    /// key expire (be deleted, with a `Deleted` event) after that long.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue>;

    /// Reads `key` as of `revision` (`None`: latest).
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>>;

    /// Replaces the value of `key` if its mod revision is `expected`.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<(KeyValue, WriteResult)>;

    /// Deletes `key`, guarded by its mod revision when `expected` is given.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<WriteResult>;

    /// Lists keys starting with `prefix` in key order, at one revision.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// Counts live keys starting with `prefix`.
    async fn count(&self, prefix: &str) -> Result<u64>;

    /// Watches keys starting with `prefix`: first every event with a revision
    /// greater than `after`, then live events, in revision order, no gaps.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Discards superseded history at or below `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// Opens the store named by `--datastore-endpoint`: `None` (or a `sqlite://`
/// path) opens the default SQLite database under `<data_dir>/server/db/`.
/// An endpoint this skiff cannot serve is a clear error naming it.
pub async fn open(endpoint: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Backend>> {
    sqlite::open(endpoint, data_dir).await
}
