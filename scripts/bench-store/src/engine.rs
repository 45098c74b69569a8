//! The two engines under test behind one small interface: skiff's SQLite
//! store (in this process) and an etcd server (through its gRPC client).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use etcd_client::{Client, GetOptions, WatchOptions};
use futures::StreamExt;
use skiff::store::Backend;
use skiff::store::sqlite::{Config, SqliteStore};
use tokio::sync::mpsc;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A watch event as the benchmark sees it: the key and when it arrived.
pub type Arrival = (String, Instant);

pub enum Engine {
    Skiff(Arc<SqliteStore>),
    Etcd { client: Box<Client>, pid: u32 },
}

impl Engine {
    pub async fn skiff(path: &std::path::Path) -> Result<Self, Error> {
        Ok(Self::Skiff(Arc::new(
            SqliteStore::open(Config::new(path)).await?,
        )))
    }

    pub async fn etcd(endpoint: &str, pid: u32) -> Result<Self, Error> {
        Ok(Self::Etcd {
            client: Box::new(Client::connect([endpoint], None).await?),
            pid,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Skiff(_) => "skiff",
            Self::Etcd { .. } => "etcd",
        }
    }

    /// Creates `key` (etcd: put); returns the revision of the write.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<i64, Error> {
        match self {
            Self::Skiff(s) => Ok(s.create(key, value, None).await?.mod_revision),
            Self::Etcd { client, .. } => {
                let resp = client.kv_client().put(key, value.to_vec(), None).await?;
                Ok(resp.header().map_or(0, |h| h.revision()))
            }
        }
    }

    /// Updates `key` whose mod revision is `rev` (skiff: CAS; etcd: put).
    pub async fn update(&self, key: &str, value: Bytes, rev: i64) -> Result<i64, Error> {
        match self {
            Self::Skiff(s) => Ok(s.update(key, value, rev, None).await?.0.mod_revision),
            Self::Etcd { .. } => self.create(key, value).await,
        }
    }

    /// Reads every key under `prefix`; returns how many there were.
    pub async fn list(&self, prefix: &str) -> Result<usize, Error> {
        match self {
            Self::Skiff(s) => Ok(s.list(prefix, Default::default()).await?.kvs.len()),
            Self::Etcd { client, .. } => {
                let opts = GetOptions::new().with_prefix();
                // 10,000 values of 1 KiB exceed tonic's default 4 MiB limit.
                let mut kv = client.kv_client().max_decoding_message_size(256 << 20);
                Ok(kv.get(prefix, Some(opts)).await?.kvs().len())
            }
        }
    }

    /// Watches `prefix` from now on; every event's key and arrival time is
    /// sent to the returned channel.
    pub async fn watch(&self, prefix: &str) -> Result<mpsc::UnboundedReceiver<Arrival>, Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        match self {
            Self::Skiff(s) => {
                let after = s.current_revision().await?;
                let mut w = s.watch(prefix, after).await?;
                tokio::spawn(async move {
                    while let Some(Ok(e)) = w.next().await {
                        if tx.send((e.kv.key, Instant::now())).is_err() {
                            break;
                        }
                    }
                });
            }
            Self::Etcd { client, .. } => {
                let opts = WatchOptions::new().with_prefix();
                let (watcher, mut stream) = client.watch_client().watch(prefix, Some(opts)).await?;
                tokio::spawn(async move {
                    let _watcher = watcher;
                    while let Ok(Some(resp)) = stream.message().await {
                        let now = Instant::now();
                        for e in resp.events() {
                            let key = e
                                .kv()
                                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned());
                            if tx.send((key.unwrap_or_default(), now)).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        }
        Ok(rx)
    }

    /// Bytes the engine's process has sent to the storage layer so far.
    pub fn write_bytes(&self) -> u64 {
        let pid = match self {
            Self::Skiff(_) => "self".to_string(),
            Self::Etcd { pid, .. } => pid.to_string(),
        };
        proc_write_bytes(&pid)
    }

    /// Makes the engine write out what it buffers (skiff: checkpoint the WAL
    /// into the database file), so that bytes per update include it.
    pub async fn settle(&self, path: Option<&std::path::Path>) -> Result<(), Error> {
        match (self, path) {
            (Self::Skiff(_), Some(path)) => {
                let conn = rusqlite::Connection::open(path)?;
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            }
            // etcd commits its backend every 100 ms; give it time.
            _ => tokio::time::sleep(std::time::Duration::from_millis(1500)).await,
        }
        Ok(())
    }
}

/// `write_bytes` of /proc/<pid>/io (0 when unreadable).
pub fn proc_write_bytes(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
