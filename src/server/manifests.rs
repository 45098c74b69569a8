//! Auto-deploying manifests, as k3s' `server/manifests` directory: every
//! `*.yaml`, `*.yml` and `*.json` file in `<data-dir>/server/manifests/` is
//! applied at start and again whenever it changes, with server-side apply
//! under the field manager `skiff-deploy` (forcing conflicts: the file is
//! the source of truth). A file with a `<name>.skip` beside it is left
//! alone. Objects without a namespace go to `kube-system`, as k3s puts
//! them. Removing a file does not delete what it created (k3s neither).
//!
//! The directory is polled every two seconds, reading only file metadata;
//! a file is re-read when its size or modification time changes. A file
//! whose objects could not all be applied (a kind its CRD has not yet
//! made served, a rejected object) is tried again on later rounds, with
//! the reason logged once per change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kube::Client;
use serde_json::Value;

/// The field manager of applied manifests.
pub const FIELD_MANAGER: &str = "skiff-deploy";
/// Namespace for namespaced objects that name none.
const DEFAULT_NAMESPACE: &str = "kube-system";
const POLL: Duration = Duration::from_secs(2);

/// What a file looked like when it was last applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    /// Whether everything in it was applied.
    done: bool,
}

/// The manifests directory of a data dir.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("manifests")
}

/// Starts the deployer on `dir` (created if missing).
pub fn start(client: Client, dir: PathBuf) {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the manifests directory");
    }
    tokio::spawn(async move {
        let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round(&client, &dir, &mut seen).await;
        }
    });
}

/// The manifest files of `dir`, sorted by name.
fn manifests(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    files
}

fn skipped(file: &Path) -> bool {
    let mut skip = file.as_os_str().to_owned();
    skip.push(".skip");
    Path::new(&skip).exists()
}

async fn round(client: &Client, dir: &Path, seen: &mut HashMap<PathBuf, Seen>) {
    let files = manifests(dir);
    seen.retain(|p, _| files.contains(p));
    for file in files {
        if skipped(&file) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let now = Seen {
            len: meta.len(),
            modified: meta.modified().ok(),
            done: true,
        };
        let before = seen.get(&file);
        let changed = before.is_none_or(|b| b.len != now.len || b.modified != now.modified);
        if !changed && before.is_some_and(|b| b.done) {
            continue;
        }
        let result = apply_file(client, &file).await;
        let done = match &result {
            Ok(n) => {
                tracing::info!(file = %file.display(), objects = n, "applied manifest");
                true
            }
            Err(why) => {
                if changed {
                    tracing::warn!(file = %file.display(), error = %why, "manifest not applied yet; retrying");
                }
                false
            }
        };
        seen.insert(file, Seen { done, ..now });
    }
}

/// The objects of a manifest file, kinds that others depend on first.
pub fn parse(text: &str, json: bool) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = if json {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        vec![v]
    } else {
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| e.to_string())?
    };
    let mut objects = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(_) if doc["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                objects.extend(doc["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => objects.push(doc),
            _ => return Err("a document is not an object".into()),
        }
    }
    objects.sort_by_key(|o| match o["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        Some("ServiceAccount" | "ClusterRole" | "Role") => 2,
        _ => 3,
    });
    Ok(objects)
}

/// Applies every object of `file`; how many, or the first failure.
async fn apply_file(client: &Client, file: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let json = file.extension().is_some_and(|e| e == "json");
    let objects = parse(&text, json)?;
    let mut failures = Vec::new();
    for obj in &objects {
        if let Err(e) = apply(client, obj).await {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(objects.len())
    } else {
        Err(failures.join("; "))
    }
}

/// The URL path of an object, from the kinds served now.
fn path_of(obj: &Value) -> Result<String, String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err("an object lacks apiVersion, kind or metadata.name".into());
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let info = crate::api::registry::kinds_in(group, version)
        .find(|k| k.kind == kind)
        .ok_or_else(|| format!("no kind {kind} is served in {api_version}"))?;
    let base = crate::api::openapi::gv_path(group, version);
    Ok(if info.namespaced {
        let namespace = obj["metadata"]["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE);
        format!("/{base}/namespaces/{namespace}/{}/{name}", info.plural)
    } else {
        format!("/{base}/{}/{name}", info.plural)
    })
}

async fn apply(client: &Client, obj: &Value) -> Result<(), String> {
    let path = path_of(obj)?;
    let url = format!("{path}?fieldManager={FIELD_MANAGER}&force=true");
    let body = serde_json::to_vec(obj).map_err(|e| e.to_string())?;
    let request = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/apply-patch+yaml")
        .body(body)
        .map_err(|e| e.to_string())?;
    client
        .request::<Value>(request)
        .await
        .map(|_| ())
        .map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_lists_and_order() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n";
        let objects = parse(text, false).expect("parses");
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(kinds, vec!["Namespace", "ConfigMap", "Secret"]);
        assert!(parse("- 1\n", false).is_err());
    }

    #[test]
    fn paths_default_to_kube_system() {
        let cm =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert_eq!(
            path_of(&cm).as_deref(),
            Ok("/api/v1/namespaces/kube-system/configmaps/a")
        );
        let role = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        assert_eq!(
            path_of(&role).as_deref(),
            Ok("/apis/rbac.authorization.k8s.io/v1/clusterroles/r")
        );
        let nameless = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(path_of(&nameless).is_err());
    }
}
