//! Air-gapped images: every `*.tar` in `<data-dir>/agent/images/` is imported
//! into containerd's `k8s.io` namespace at agent start with `ctr images
//! import`. A state file remembers what was imported (name, size, mtime and
//! sha256), so an unchanged tarball is not imported again.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::RuntimeError;

/// One imported tarball, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Imported {
    size: u64,
    mtime: u64,
    sha256: String,
}

/// Imports new or changed tarballs from `images_dir`; returns how many were
/// imported.
pub async fn import_all(
    images_dir: &Path,
    state_file: &Path,
    socket: &Path,
    snapshotter: &str,
) -> Result<usize, RuntimeError> {
    let Ok(entries) = std::fs::read_dir(images_dir) else {
        return Ok(0);
    };
    let mut state: BTreeMap<String, Imported> = std::fs::read(state_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut tarballs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "tar"))
        .collect();
    tarballs.sort();
    let mut imported = 0;
    for path in tarballs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let error = |message: String| RuntimeError::Import {
            path: path.clone(),
            message,
        };
        let meta = std::fs::metadata(&path).map_err(|e| error(e.to_string()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        if let Some(seen) = state.get(&name)
            && seen.size == meta.len()
            && seen.mtime == mtime
        {
            continue;
        }
        let sha256 = file_sha256(&path).map_err(|e| error(e.to_string()))?;
        if state.get(&name).is_some_and(|seen| seen.sha256 == sha256) {
            continue;
        }
        let output = tokio::process::Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                snapshotter,
            ])
            .arg(&path)
            .output()
            .await
            .map_err(|e| error(format!("cannot run ctr: {e}")))?;
        if !output.status.success() {
            return Err(error(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        tracing::info!(path = %path.display(), "imported image tarball");
        imported += 1;
        state.insert(
            name,
            Imported {
                size: meta.len(),
                mtime,
                sha256,
            },
        );
        let text = serde_json::to_vec_pretty(&state).unwrap_or_default();
        std::fs::write(state_file, text).map_err(|source| RuntimeError::Write {
            path: state_file.to_path_buf(),
            source,
        })?;
    }
    Ok(imported)
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
