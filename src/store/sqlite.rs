//! The SQLite engine of the store: the default, single-server datastore.
//!
//! One writer thread owns the database's write connection and the revision
//! counter and commits concurrent writes in groups ([`writer`]); reads use a
//! small pool of read-only connections on blocking threads ([`read`]); watch
//! events flow from the writer into the engine-independent hub
//! ([`crate::store::watch`]); compaction and file maintenance run in the
//! writer between groups ([`compact`]). See `docs/store.md`.

mod compact;
mod read;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

pub use compact::CompactionConfig;
use read::Readers;
use writer::{Request, WriteOp, Writer};

use super::watch::{History, Hub};
use super::{
    Backend, Event, KeyValue, ListOptions, ListResult, Result, Revision, StoreError, WatchStream,
    WriteResult,
};

/// How the SQLite engine is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database file.
    pub path: PathBuf,
    pub compaction: CompactionConfig,
    /// Events kept in memory for watches that start a little in the past.
    pub ring_capacity: usize,
    /// Events queued per watcher before it counts as lagging and is dropped.
    pub watch_queue: usize,
}

impl Config {
    /// The defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            compaction: CompactionConfig::default(),
            ring_capacity: 10_000,
            watch_queue: 10_000,
        }
    }
}

/// State the writer publishes for lock-free reads.
pub struct Shared {
    revision: AtomicI64,
    compacted: AtomicI64,
}

/// Opens (creating if needed) the store named by `endpoint`: `None` is
/// `<data_dir>/server/db/state.db`, `sqlite://PATH` or a bare path names the
/// file. Other engines are not available yet.
pub async fn open(endpoint: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Backend>> {
    let path = database_path(endpoint, data_dir)?;
    Ok(Arc::new(SqliteStore::open(Config::new(path)).await?))
}

/// The database file an endpoint names.
fn database_path(endpoint: Option<&str>, data_dir: &Path) -> Result<PathBuf> {
    let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        return Ok(data_dir.join("server").join("db").join("state.db"));
    };
    if let Some(rest) = endpoint.strip_prefix("sqlite://") {
        // k3s-style endpoints may carry driver options after '?'.
        let file = rest.split('?').next().unwrap_or_default();
        if file.is_empty() {
            return Ok(data_dir.join("server").join("db").join("state.db"));
        }
        return Ok(PathBuf::from(file));
    }
    if let Some((scheme, _)) = endpoint.split_once("://") {
        let engine = match scheme {
            "postgres" | "postgresql" => "PostgreSQL",
            "http" | "https" => "etcd",
            "mysql" => "MySQL",
            _ => scheme,
        };
        return Err(StoreError::Database {
            path: endpoint.to_string(),
            detail: format!(
                "the {engine} datastore is not available in this skiff yet; use a sqlite:// endpoint or omit --datastore-endpoint"
            ),
        });
    }
    Ok(PathBuf::from(endpoint))
}

/// The SQLite-backed [`Backend`].
pub struct SqliteStore {
    requests: mpsc::Sender<Request>,
    readers: Arc<Readers>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
}

impl SqliteStore {
    /// Opens the database described by `config`, creating it (and its
    /// directory) if needed, and starts the writer thread.
    pub async fn open(config: Config) -> Result<Self> {
        let path = config.path.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(|e| StoreError::Database {
                path: path.display().to_string(),
                detail: format!("opening the database failed: {e}"),
            })?
    }

    fn open_blocking(config: Config) -> Result<Self> {
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database {
                path: dir.display().to_string(),
                detail: format!("cannot create the database directory: {e}"),
            })?;
        }
        let conn = schema::open_writer(&path)?;
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(0),
            compacted: AtomicI64::new(0),
        });
        let revision = schema::current_revision(&conn).map_err(|e| schema::map_err(&path, e))?;
        let hub = Arc::new(Hub::new(revision, config.ring_capacity, config.watch_queue));
        let writer = Writer::new(conn, path.clone(), shared.clone(), hub.clone(), &config)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("skiff-store-writer".to_string())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database {
                path: path.display().to_string(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        tracing::info!(path = %path.display(), revision, "store opened");
        Ok(Self {
            requests: tx,
            readers: Arc::new(Readers::new(path)),
            hub,
            shared,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<Event> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Write { op, reply })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&read::Snapshot<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Database {
                path: self.readers.path().display().to_string(),
                detail: format!("read task failed: {e}"),
            })?
    }
}

/// Watch replays older than the ring, read through the read pool.
struct HistoryReader(Arc<Readers>);

#[async_trait]
impl History for HistoryReader {
    async fn replay(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
    ) -> Result<(Vec<Event>, Revision)> {
        let prefix = prefix.to_string();
        let readers = self.0.clone();
        tokio::task::spawn_blocking(move || readers.with(|s| s.replay(&prefix, after, upto)))
            .await
            .map_err(|e| StoreError::Database {
                path: self.0.path().display().to_string(),
                detail: format!("replay task failed: {e}"),
            })?
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        let key = key.to_string();
        Ok(self.write(WriteOp::Create { key, value, ttl }).await?.kv)
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.read(move |s| s.get(&key, revision)).await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<(KeyValue, WriteResult)> {
        let key = key.to_string();
        let event = self
            .write(WriteOp::Update {
                key: key.clone(),
                value,
                expected,
                ttl,
            })
            .await?;
        let prev = event
            .prev
            .ok_or(StoreError::Conflict { key, current: None })?;
        Ok((
            event.kv,
            WriteResult {
                revision: event.revision,
                prev,
            },
        ))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<WriteResult> {
        let key = key.to_string();
        let event = self
            .write(WriteOp::Delete {
                key: key.clone(),
                expected,
            })
            .await?;
        let prev = event.prev.ok_or(StoreError::NotFound(key))?;
        Ok(WriteResult {
            revision: event.revision,
            prev,
        })
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.read(move |s| s.list(&prefix, &opts)).await
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        let prefix = prefix.to_string();
        self.read(move |s| s.count(&prefix)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let history: Arc<dyn History> = Arc::new(HistoryReader(self.readers.clone()));
        Ok(self.hub.watch(prefix, after, history))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Compact { revision, reply })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_a_file_or_an_unavailable_engine() {
        let dir = Path::new("/data");
        assert_eq!(
            database_path(None, dir).ok(),
            Some(PathBuf::from("/data/server/db/state.db"))
        );
        assert_eq!(
            database_path(Some("sqlite:///tmp/x.db?_journal=WAL"), dir).ok(),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            database_path(Some("/tmp/y.db"), dir).ok(),
            Some(PathBuf::from("/tmp/y.db"))
        );
        for other in ["postgres://u@h/db", "https://127.0.0.1:2379"] {
            match database_path(Some(other), dir) {
                Err(StoreError::Database { detail, .. }) => {
                    assert!(detail.contains("not available"))
                }
                r => panic!("{other}: {r:?}"),
            }
        }
    }
}
