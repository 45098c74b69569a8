//! Private registries: `/etc/skiff/registries.yaml` (k3s' format) turned
//! into containerd's registry configuration.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["https://mirror.example.com:5000"]
//! configs:
//!   mirror.example.com:5000:
//!     auth: {username: u, password: p}
//!     tls: {ca_file: /etc/ssl/mirror-ca.pem, insecure_skip_verify: false}
//! ```
//!
//! Each mirrored registry (and each registry with a `configs` entry) gets a
//! `hosts.toml` under `<data-dir>/agent/etc/containerd/certs.d/<registry>/`,
//! the directory containerd's CRI plugin reads at every pull (its
//! `config_path`): the mirror endpoints in order, with the TLS settings of
//! their hosts, then the registry itself as the fallback — or, with
//! `--disable-default-registry-endpoint`, no fallback (pulls go to the
//! mirrors only, as k3s' flag). Credentials go into containerd's own config
//! (`registry.configs."<host>".auth`), which is where containerd 1.6 reads
//! them. A mirror named `*` applies to every registry (containerd's
//! `_default` directory). `rewrite` rules need k3s' patched containerd and
//! are ignored with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default location of the file.
pub const DEFAULT_PATH: &str = "/etc/skiff/registries.yaml";

/// The file, as k3s documents it.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
    pub identitytoken: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Why the file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid registries file: {detail}")]
    Syntax { path: PathBuf, detail: String },
    #[error("{path}: mirror {registry:?} endpoint {endpoint:?} is not an http:// or https:// URL")]
    Endpoint {
        path: PathBuf,
        registry: String,
        endpoint: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads the file; `None` when it does not exist (no private registries).
pub fn load(path: &Path) -> Result<Option<Registries>, RegistriesError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistriesError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let registries: Registries = if text.trim().is_empty() {
        Registries::default()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| RegistriesError::Syntax {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?
    };
    for (registry, mirror) in &registries.mirrors {
        for endpoint in &mirror.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(RegistriesError::Endpoint {
                    path: path.to_path_buf(),
                    registry: registry.clone(),
                    endpoint: endpoint.clone(),
                });
            }
        }
        if !mirror.rewrite.is_empty() {
            tracing::warn!(
                registry,
                "registries.yaml: rewrite rules need k3s' patched containerd; they are ignored"
            );
        }
    }
    Ok(Some(registries))
}

/// The host (and port) of an endpoint URL: `https://a.b:5000/x` → `a.b:5000`.
fn host_of(endpoint: &str) -> &str {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// containerd's directory name for a registry (`*` → `_default`).
fn dir_name(registry: &str) -> &str {
    if registry == "*" {
        "_default"
    } else {
        registry
    }
}

/// The registry's own endpoint: Docker Hub's API lives elsewhere.
fn default_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".to_string(),
        other => format!("https://{other}"),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The TLS lines for `host` from its `configs` entry.
fn tls_lines(registries: &Registries, host: &str, indent: &str) -> String {
    let Some(tls) = registries.configs.get(host).and_then(|c| c.tls.as_ref()) else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(ca) = &tls.ca_file {
        out.push_str(&format!("{indent}ca = {}\n", quoted(ca)));
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        out.push_str(&format!(
            "{indent}client = [[{}, {}]]\n",
            quoted(cert),
            quoted(key)
        ));
    }
    if tls.insecure_skip_verify {
        out.push_str(&format!("{indent}skip_verify = true\n"));
    }
    out
}

/// The `hosts.toml` of every configured registry, by directory name.
pub fn hosts_files(registries: &Registries, disable_default: bool) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for (registry, mirror) in &registries.mirrors {
        let mut text =
            String::from("# Generated by skiff from registries.yaml; edits are overwritten.\n");
        let server = match (disable_default, mirror.endpoint.first()) {
            (true, Some(first)) => Some(first.clone()),
            _ if registry == "*" => None,
            _ => Some(default_server(registry)),
        };
        if let Some(server) = &server {
            text.push_str(&format!("server = {}\n", quoted(server)));
            text.push_str(&tls_lines(registries, host_of(server), ""));
        }
        for endpoint in &mirror.endpoint {
            text.push_str(&format!(
                "\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
                quoted(endpoint)
            ));
            text.push_str(&tls_lines(registries, host_of(endpoint), "  "));
        }
        files.insert(dir_name(registry).to_string(), text);
    }
    // Registries with only TLS settings (no mirror): their own hosts.toml.
    for (host, config) in &registries.configs {
        if config.tls.is_none() || files.contains_key(host.as_str()) {
            continue;
        }
        let mut text =
            String::from("# Generated by skiff from registries.yaml; edits are overwritten.\n");
        let server = default_server(host);
        text.push_str(&format!("server = {}\n", quoted(&server)));
        text.push_str(&tls_lines(registries, host, ""));
        files.insert(host.clone(), text);
    }
    files
}

/// containerd config sections with the registries' credentials.
pub fn auth_sections(registries: &Registries, cri: &str) -> String {
    let mut out = String::new();
    for (host, config) in &registries.configs {
        let Some(auth) = &config.auth else { continue };
        out.push_str(&format!(
            "\n[{cri}.registry.configs.{}.auth]\n",
            quoted(host)
        ));
        for (key, value) in [
            ("username", &auth.username),
            ("password", &auth.password),
            ("auth", &auth.auth),
            ("identitytoken", &auth.identitytoken),
        ] {
            if let Some(v) = value {
                out.push_str(&format!("  {key} = {}\n", quoted(v)));
            }
        }
    }
    out
}

/// Replaces the hosts directory's contents with `files`.
pub fn write_hosts(dir: &Path, files: &BTreeMap<String, String>) -> Result<(), RegistriesError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistriesError::Write { path, source }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(write_err(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    for (name, text) in files {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(write_err(&sub))?;
        let file = sub.join("hosts.toml");
        std::fs::write(&file, text).map_err(write_err(&file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Registries {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registries.yaml");
        std::fs::write(&path, text).expect("write");
        load(&path).expect("valid").expect("present")
    }

    #[test]
    fn mirrors_become_hosts_files_with_their_tls_and_a_fallback() {
        let r = parse(
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "https://mirror.example:5443/v2"]
configs:
  "mirror.example:5443":
    tls: {ca_file: /ca.pem, insecure_skip_verify: true}
    auth: {username: u, password: "p\"w"}
  "private.example":
    tls: {cert_file: /c.pem, key_file: /k.pem}
"#,
        );
        let files = hosts_files(&r, false);
        let hub = &files["docker.io"];
        assert!(
            hub.contains("server = \"https://registry-1.docker.io\""),
            "{hub}"
        );
        assert!(hub.contains("[host.\"http://127.0.0.1:5000\"]"), "{hub}");
        assert!(
            hub.contains("[host.\"https://mirror.example:5443/v2\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/ca.pem\"\n  skip_verify = true\n"),
            "{hub}"
        );
        assert!(
            files["private.example"].contains("client = [[\"/c.pem\", \"/k.pem\"]]"),
            "{files:?}"
        );
        let only = hosts_files(&r, true);
        assert!(
            only["docker.io"].contains("server = \"http://127.0.0.1:5000\""),
            "{only:?}"
        );
        let auth = auth_sections(&r, "plugins.cri");
        assert!(
            auth.contains("[plugins.cri.registry.configs.\"mirror.example:5443\".auth]\n  username = \"u\"\n  password = \"p\\\"w\"\n"),
            "{auth}"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(&dir.path().join("none.yaml")).expect("ok").is_none());
        let path = dir.path().join("r.yaml");
        std::fs::write(
            &path,
            "mirrors:\n  docker.io:\n    endpoint: [\"mirror:5000\"]\n",
        )
        .expect("write");
        let err = load(&path).expect_err("no scheme").to_string();
        assert!(err.contains("is not an http:// or https:// URL"), "{err}");
        std::fs::write(&path, "mirors: {}\n").expect("write");
        let err = load(&path).expect_err("typo").to_string();
        assert!(err.contains("not a valid registries file"), "{err}");
        let wildcard = parse("mirrors:\n  \"*\":\n    endpoint: [\"https://m\"]\n");
        let files = hosts_files(&wildcard, false);
        assert!(!files["_default"].contains("server ="), "{files:?}");
    }
}
