//! Writing PKI material to disk: atomically, with an exact file mode.
//!
//! A file is written to a temporary sibling and renamed into place, so a
//! crash never leaves half a key behind, and its mode is set explicitly so
//! the umask cannot widen or narrow it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::PkiError;

/// Mode of private keys and secrets.
pub const PRIVATE: u32 = 0o600;
/// Mode of certificates, which are public.
pub const PUBLIC: u32 = 0o644;

/// Creates `dir` and its parents (new directories get mode 0700 when
/// `private`, so keys inside are not even listable by others).
pub fn ensure_dir(dir: &Path, private: bool) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    if private {
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    }
    builder
        .create(dir)
        .map_err(|source| PkiError::io("create directory", dir, source))
}

/// Writes `contents` to `path` with `mode`, replacing any previous file.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        PkiError::io("write", path, source)
    })
}

/// Reads `path` as text; `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::io("read", path, source)),
    }
}
