//! Upstream's atomic writer for configMap, secret and downwardAPI volumes:
//! the files live in a hidden timestamped directory, `..data` is a symlink
//! to it, and each visible name is a symlink into `..data`. A new version is
//! written to a new directory and swapped in by renaming a fresh `..data`
//! over the old one, so a reader sees the old set of files or the new one,
//! never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// The files under `dir` by path relative to it.
fn read_tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = rel.join(entry.file_name());
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(rel);
            } else if let Ok(bytes) = std::fs::read(entry.path()) {
                out.insert(
                    rel.display().to_string(),
                    (bytes, meta.permissions().mode() & 0o777),
                );
            }
        }
    }
    out
}

/// Makes `dir` hold exactly `files` (relative path → contents, mode);
/// returns whether anything changed.
pub fn write(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> std::io::Result<bool> {
    let current = std::fs::read_link(dir.join(DATA)).ok();
    if let Some(target) = &current
        && read_tree(&dir.join(target)) == *files
    {
        return Ok(false);
    }
    for path in files.keys() {
        if path
            .split('/')
            .any(|c| c.is_empty() || c == ".." || c.starts_with(".."))
        {
            return Err(std::io::Error::other(format!("invalid path {path:?}")));
        }
    }
    let stamp = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let version = dir.join(&stamp);
    std::fs::create_dir_all(&version)?;
    for (path, (contents, mode)) in files {
        let target = version.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(*mode)
            .open(&target)?;
        f.set_permissions(std::fs::Permissions::from_mode(*mode))?;
        f.write_all(contents)?;
    }
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    let visible: BTreeSet<&str> = files.keys().filter_map(|p| p.split('/').next()).collect();
    for name in &visible {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || visible.contains(name.as_str()) {
            continue;
        }
        let _ = std::fs::remove_file(entry.path());
    }
    if let Some(old) = current
        && old != Path::new(&stamp)
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, (Vec<u8>, u32)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (v.as_bytes().to_vec(), 0o644)))
            .collect()
    }

    #[test]
    fn a_new_version_replaces_the_old_through_the_data_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        assert!(write(d, &files(&[("a", "1"), ("sub/b", "2")])).expect("first"));
        assert_eq!(std::fs::read_to_string(d.join("a")).expect("a"), "1");
        assert_eq!(std::fs::read_to_string(d.join("sub/b")).expect("b"), "2");
        assert!(!write(d, &files(&[("a", "1"), ("sub/b", "2")])).expect("same"));
        assert!(write(d, &files(&[("a", "one")])).expect("second"));
        assert_eq!(std::fs::read_to_string(d.join("a")).expect("a"), "one");
        assert!(!d.join("sub").exists(), "a dropped key disappears");
        let hidden: Vec<String> = std::fs::read_dir(d)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA)
            .collect();
        assert_eq!(
            hidden.len(),
            1,
            "only the current version is kept: {hidden:?}"
        );
        assert!(write(d, &files(&[("../x", "no")])).is_err());
    }
}
