//! The SQLite engine of the store.

use std::path::Path;
use std::sync::Arc;

use super::{Backend, Result, StoreError};

/// Opens (creating if needed) the SQLite store for `data_dir`.
pub async fn open(_endpoint: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Backend>> {
    Err(StoreError::Database {
        path: data_dir.display().to_string(),
        detail: "the SQLite engine is not built yet".to_string(),
    })
}
