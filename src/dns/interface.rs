//! The host side of the cluster DNS address: a dummy interface `skiff-dns`
//! holding the address as a /32, so the node's pods reach the in-process
//! DNS at it. On kernels without the dummy driver the address is put on
//! `lo` under the label `lo:skiff-dns` instead. [`remove`] undoes either.

use std::net::IpAddr;
use std::process::Command;

/// The dummy interface skiff creates.
pub const INTERFACE: &str = "skiff-dns";
/// The address label used when the address goes on `lo`.
const LO_LABEL: &str = "lo:skiff-dns";

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (is iproute2 installed?): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn host_prefix(address: IpAddr) -> String {
    match address {
        IpAddr::V4(_) => format!("{address}/32"),
        IpAddr::V6(_) => format!("{address}/128"),
    }
}

/// Puts `address` on the host (idempotent).
pub fn ensure(address: IpAddr) -> Result<(), String> {
    let prefix = host_prefix(address);
    let dummy = ip(&["link", "show", INTERFACE]).is_ok()
        || ip(&["link", "add", INTERFACE, "type", "dummy"]).is_ok();
    if dummy {
        ip(&["addr", "replace", &prefix, "dev", INTERFACE])?;
        return ip(&["link", "set", INTERFACE, "up"]);
    }
    tracing::debug!("no dummy interface driver: the cluster DNS address goes on lo");
    match address {
        IpAddr::V4(_) => ip(&["addr", "replace", &prefix, "dev", "lo", "label", LO_LABEL]),
        IpAddr::V6(_) => ip(&["addr", "replace", &prefix, "dev", "lo"]),
    }
}

/// Removes what [`ensure`] added, whichever way it went; best effort.
pub fn remove(address: Option<IpAddr>) {
    let _ = ip(&["link", "del", INTERFACE]);
    // Addresses labelled as skiff's on lo (IPv4), or the given one.
    let _ = ip(&["-4", "addr", "flush", "dev", "lo", "label", LO_LABEL]);
    if let Some(address) = address {
        let _ = ip(&["addr", "del", &host_prefix(address), "dev", "lo"]);
    }
}
