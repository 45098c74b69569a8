//! `skiff certificate check` and `skiff certificate rotate`, as k3s'
//! `k3s certificate` commands.
//!
//! `check` lists every certificate under the data dir (the server's in
//! `server/tls/`, the node's in `agent/`) with its subject, usages, expiry
//! and a status: OK, WARNING when fewer than 90 days are left (the next
//! start renews it), EXPIRED, or NOT YET VALID. `rotate` moves the chosen
//! leaf certificates (all of them by default; never the CA) into a backup
//! directory `server/tls-<unix time>/`, so the next start of skiff issues
//! new ones; it refuses while skiff runs on that data dir (the data dir
//! lock, see `server::lock`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use x509_parser::certificate::X509Certificate;
use x509_parser::pem::parse_x509_pem;

use crate::pki::certs::RENEW_BEFORE_DAYS;

/// `skiff certificate ...`.
#[derive(Debug, clap::Args)]
pub struct CertificateArgs {
    #[command(subcommand)]
    pub command: CertificateCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertificateCommand {
    /// List skiff's certificates with their expiry and status.
    Check(DataDirArg),
    /// Set leaf certificates aside so that the next start issues new ones
    /// (stop skiff first; the CA is kept).
    Rotate(RotateArgs),
}

#[derive(Debug, clap::Args)]
pub struct DataDirArg {
    /// skiff's data dir [default: SKIFF_DATA_DIR, the config file's data-dir, else /var/lib/skiff]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Which certificates to rotate (repeatable or comma-separated): admin,
    /// api-server, kubelet-client, kubelet [default: all of them]
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub service: Vec<String>,
}

/// The leaf certificates `rotate` knows, by service name: the files (cert
/// and key) relative to the data dir.
const SERVICES: &[(&str, &str, &str)] = &[
    (
        "admin",
        "server/tls/client-admin.crt",
        "server/tls/client-admin.key",
    ),
    (
        "api-server",
        "server/tls/serving-kube-apiserver.crt",
        "server/tls/serving-kube-apiserver.key",
    ),
    (
        "kubelet-client",
        "server/tls/client-kube-apiserver-kubelet-client.crt",
        "server/tls/client-kube-apiserver-kubelet-client.key",
    ),
    (
        "kubelet",
        "agent/tls/serving-kubelet.crt",
        "agent/tls/serving-kubelet.key",
    ),
];

/// Runs `skiff certificate ...`.
pub fn main(args: CertificateArgs) -> ExitCode {
    let result = match args.command {
        CertificateCommand::Check(dir) => check(&data_dir(dir)),
        CertificateCommand::Rotate(rotate) => {
            let dir = data_dir(rotate.dir);
            self::rotate(&dir, &rotate.service)
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("skiff certificate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn data_dir(arg: DataDirArg) -> PathBuf {
    arg.data_dir.unwrap_or_else(super::tools::data_dir)
}

/// One certificate's facts, as `check` prints them.
#[derive(Debug, PartialEq)]
struct Row {
    file: String,
    subject: String,
    usages: String,
    expires: String,
    residual: String,
    status: &'static str,
}

/// The table of every certificate under `data_dir`.
fn check(data_dir: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    for dir in ["server/tls", "agent", "agent/tls"] {
        let Ok(entries) = std::fs::read_dir(data_dir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no certificates under {}: is this skiff's data dir (--data-dir)? skiff writes them at its first start",
            data_dir.display()
        ));
    }
    files.sort();
    let now = jiff::Timestamp::now().as_second();
    let mut rows = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(data_dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read(&path).map_err(|e| format!("cannot read {file}: {e}"))?;
        rows.push(match parse_x509_pem(&text) {
            Ok((_, pem)) => match pem.parse_x509() {
                Ok(cert) => row(file, &cert, now),
                Err(e) => damaged(file, &e.to_string()),
            },
            Err(e) => damaged(file, &e.to_string()),
        });
    }
    Ok(table(&rows))
}

fn damaged(file: String, detail: &str) -> Row {
    Row {
        file,
        subject: format!("(unreadable: {detail})"),
        usages: String::new(),
        expires: String::new(),
        residual: String::new(),
        status: "DAMAGED",
    }
}

fn row(file: String, cert: &X509Certificate<'_>, now: i64) -> Row {
    let subject = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut usages = Vec::new();
    if cert.is_ca() {
        usages.push("CA");
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if eku.value.server_auth {
            usages.push("ServerAuth");
        }
        if eku.value.client_auth {
            usages.push("ClientAuth");
        }
    }
    let not_after = cert.validity().not_after.timestamp();
    let not_before = cert.validity().not_before.timestamp();
    let expires = jiff::Timestamp::from_second(not_after)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let left = not_after - now;
    let status = if now < not_before {
        "NOT YET VALID"
    } else if left <= 0 {
        "EXPIRED"
    } else if left < RENEW_BEFORE_DAYS * 86_400 && !cert.is_ca() {
        "WARNING"
    } else {
        "OK"
    };
    Row {
        file,
        subject,
        usages: usages.join(","),
        expires,
        residual: residual(left),
        status,
    }
}

/// A duration in the largest unit that fits, as k3s prints it.
fn residual(seconds: i64) -> String {
    if seconds <= 0 {
        return "expired".to_string();
    }
    match seconds / 86_400 {
        0 => format!("{}h", seconds / 3600),
        days if days < 730 => format!("{days}d"),
        days => format!("{}y", days / 365),
    }
}

fn table(rows: &[Row]) -> String {
    let header = ["FILE", "SUBJECT", "USAGES", "EXPIRES", "RESIDUAL", "STATUS"];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.file.as_str(),
                r.subject.as_str(),
                r.usages.as_str(),
                r.expires.as_str(),
                r.residual.as_str(),
                r.status,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c) {
            *w = (*w).max(v.len());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(header).chain(cells) {
        let mut text = String::new();
        for (i, (v, w)) in line.iter().zip(widths).enumerate() {
            if i + 1 == line.len() {
                text.push_str(v);
            } else {
                text.push_str(&format!("{v:<w$}   "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Moves the chosen leaf certificates aside; the next start issues new ones.
fn rotate(data_dir: &Path, services: &[String]) -> Result<String, String> {
    for s in services {
        if !SERVICES.iter().any(|(name, _, _)| name == s) {
            let known: Vec<&str> = SERVICES.iter().map(|(n, _, _)| *n).collect();
            return Err(format!(
                "unknown --service {s:?}; choose from {}",
                known.join(", ")
            ));
        }
    }
    if !data_dir.join("server/tls").is_dir() {
        return Err(format!(
            "no certificates under {}: is this skiff's data dir (--data-dir)?",
            data_dir.display()
        ));
    }
    // Refuses while a server runs here: it would keep serving (and writing
    // out) the old certificates.
    let _lock = crate::server::lock::acquire(data_dir).map_err(|e| match e {
        crate::server::lock::LockError::Held { .. } => format!(
            "skiff is running on {}; stop it first (e.g. `systemctl stop skiff`), rotate, then start it",
            data_dir.display()
        ),
        other => other.to_string(),
    })?;
    let stamp = jiff::Timestamp::now().as_second();
    let backup = data_dir.join(format!("server/tls-{stamp}"));
    let mut out = String::new();
    for (name, cert, key) in SERVICES {
        if !services.is_empty() && !services.iter().any(|s| s == name) {
            continue;
        }
        let mut moved = false;
        for file in [cert, key] {
            let from = data_dir.join(file);
            if !from.exists() {
                continue;
            }
            std::fs::create_dir_all(&backup)
                .map_err(|e| format!("cannot create {}: {e}", backup.display()))?;
            let Some(base) = from.file_name() else {
                continue;
            };
            let to = backup.join(base);
            std::fs::rename(&from, &to)
                .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))?;
            moved = true;
        }
        if moved {
            out.push_str(&format!(
                "{name}: set aside; the next start issues a new one\n"
            ));
        }
    }
    if out.is_empty() {
        return Err("none of the chosen certificates exist; nothing to rotate".to_string());
    }
    out.push_str(&format!("backup: {}\n", backup.display()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_time_uses_the_largest_unit_that_fits() {
        assert_eq!(residual(-5), "expired");
        assert_eq!(residual(7200), "2h");
        assert_eq!(residual(89 * 86_400), "89d");
        assert_eq!(residual(364 * 86_400), "364d");
        assert_eq!(residual(3650 * 86_400), "10y");
    }

    #[test]
    fn rotate_refuses_unknown_services_and_a_running_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = rotate(dir.path(), &["etcd".to_string()]).expect_err("unknown");
        assert!(err.contains("unknown --service \"etcd\""), "{err}");
        std::fs::create_dir_all(dir.path().join("server/tls")).expect("tls dir");
        std::fs::write(dir.path().join("server/tls/client-admin.crt"), "x").expect("cert");
        let held = crate::server::lock::acquire(dir.path()).expect("lock");
        let err = rotate(dir.path(), &[]).expect_err("running");
        assert!(err.contains("stop it first"), "{err}");
        drop(held);
        let out = rotate(dir.path(), &["admin".to_string()]).expect("rotate");
        assert!(out.starts_with("admin: set aside"), "{out}");
        assert!(!dir.path().join("server/tls/client-admin.crt").exists());
    }
}
