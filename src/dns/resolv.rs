//! The node's resolver configuration (`--resolv-conf`): the upstream name
//! servers the cluster DNS forwards to, and what the kubelet gives pods with
//! dnsPolicy Default (and the host search domains it appends for
//! ClusterFirst).
//!
//! As k3s does, when the default `/etc/resolv.conf` names only loopback
//! resolvers (systemd-resolved's stub at 127.0.0.53) and
//! `/run/systemd/resolve/resolv.conf` exists, the latter is used: a
//! loopback resolver is unreachable from pods.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The default `--resolv-conf`.
pub const DEFAULT_PATH: &str = "/etc/resolv.conf";
const SYSTEMD_RESOLVED: &str = "/run/systemd/resolve/resolv.conf";

/// What a resolv.conf says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        conf.nameservers.push(ip);
                    }
                }
                // The last search/domain line wins, as in resolver(5).
                Some("search") | Some("domain") => {
                    conf.searches = words
                        .map(|w| w.trim_end_matches('.').to_string())
                        .filter(|w| !w.is_empty())
                        .collect();
                }
                Some("options") => conf.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        conf
    }

    /// Reads and parses `path`; a missing file is an empty configuration.
    pub fn read(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the resolver configuration");
                Self::default()
            }
        }
    }
}

/// The file to use for `configured`: systemd-resolved's upstream list when
/// the default file names only loopback resolvers.
pub fn effective_path(configured: &Path) -> PathBuf {
    if configured == Path::new(DEFAULT_PATH) {
        let conf = ResolvConf::read(configured);
        let only_loopback =
            !conf.nameservers.is_empty() && conf.nameservers.iter().all(|ip| ip.is_loopback());
        if only_loopback && Path::new(SYSTEMD_RESOLVED).exists() {
            return PathBuf::from(SYSTEMD_RESOLVED);
        }
    }
    configured.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_search_and_options() {
        let conf = ResolvConf::parse(
            "# comment\nnameserver 127.0.0.9\nnameserver bad\nsearch a.example b.example.\noptions ndots:2 edns0\nnameserver ::1 # v6\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                "127.0.0.9".parse::<IpAddr>().expect("ip"),
                "::1".parse().expect("ip")
            ]
        );
        assert_eq!(conf.searches, ["a.example", "b.example"]);
        assert_eq!(conf.options, ["ndots:2", "edns0"]);
    }

    #[test]
    fn a_file_other_than_the_default_is_used_as_given() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.53\n").expect("write");
        assert_eq!(effective_path(&path), path);
    }
}
