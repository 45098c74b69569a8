//! `skiff check-config`: whether this machine can run skiff, as k3s'
//! `check-config`. Every check reads `/proc` and `/sys` (and the kernel's
//! config from `/proc/config.gz` or `/boot/config-<release>` when there is
//! one); nothing is loaded or changed. Each line is PASS, WARN or FAIL, and
//! every WARN and FAIL says what to do. The exit code is 1 when anything
//! FAILs.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub section: &'static str,
    pub name: String,
    pub verdict: Verdict,
    /// What was found (PASS) or what to do (WARN, FAIL).
    pub detail: String,
}

fn check(section: &'static str, name: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        section,
        name: name.to_string(),
        verdict,
        detail: detail.into(),
    }
}

/// The kernel's build options, when the kernel publishes them.
fn kernel_config() -> Option<HashMap<String, String>> {
    let text = match std::fs::File::open("/proc/config.gz") {
        Ok(f) => {
            let mut out = String::new();
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut out)
                .ok()?;
            out
        }
        Err(_) => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
            std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()?
        }
    };
    Some(parse_kernel_config(&text))
}

/// `CONFIG_X=y` lines to a map.
pub fn parse_kernel_config(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// How a kernel feature is present: probed at run time, else from the
/// kernel config.
fn feature(
    config: Option<&HashMap<String, String>>,
    probe: bool,
    option: &str,
) -> Option<&'static str> {
    if probe {
        return Some("present");
    }
    match config.and_then(|c| c.get(option)).map(String::as_str) {
        Some("y") => Some("built in"),
        Some("m") => Some("a module"),
        _ => None,
    }
}

fn kernel_checks(out: &mut Vec<Check>) {
    const S: &str = "Kernel";
    let config = kernel_config();
    let cfg = config.as_ref();
    let ns: Vec<&str> = ["mnt", "uts", "ipc", "pid", "net", "cgroup"]
        .into_iter()
        .filter(|n| !Path::new("/proc/self/ns").join(n).exists())
        .collect();
    out.push(if ns.is_empty() {
        check(S, "namespaces", Verdict::Pass, "mnt uts ipc pid net cgroup")
    } else {
        check(
            S,
            "namespaces",
            Verdict::Fail,
            format!(
                "missing {}: use a kernel built with CONFIG_NAMESPACES and the matching CONFIG_*_NS options",
                ns.join(" ")
            ),
        )
    });
    out.push(cgroup_check());
    let simple: [(&str, bool, &str, &str); 5] = [
        (
            "overlay filesystem",
            std::fs::read_to_string("/proc/filesystems")
                .is_ok_and(|t| t.lines().any(|l| l.trim_end().ends_with("\toverlay"))),
            "CONFIG_OVERLAY_FS",
            "containerd falls back to the slower native snapshotter; enable CONFIG_OVERLAY_FS (or `modprobe overlay`)",
        ),
        (
            "bridge",
            Path::new("/sys/module/bridge").exists()
                || Path::new("/sys/class/net/skiff0/bridge").exists(),
            "CONFIG_BRIDGE",
            "pods get no network: enable CONFIG_BRIDGE (or `modprobe bridge`)",
        ),
        (
            "br_netfilter",
            Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists(),
            "CONFIG_BRIDGE_NETFILTER",
            "services do not reach pods on the same node: enable CONFIG_BRIDGE_NETFILTER (or `modprobe br_netfilter`)",
        ),
        (
            "vxlan",
            Path::new("/sys/module/vxlan").exists(),
            "CONFIG_VXLAN",
            "agents on other machines cannot join the pod network: enable CONFIG_VXLAN (or `modprobe vxlan`)",
        ),
        (
            "veth",
            Path::new("/sys/module/veth").exists(),
            "CONFIG_VETH",
            "pods get no network: enable CONFIG_VETH (or `modprobe veth`)",
        ),
    ];
    for (name, probe, option, fix) in simple {
        let verdict = match feature(cfg, probe, option) {
            Some(how) => check(S, name, Verdict::Pass, how),
            // veth has no run-time trace until a pair exists.
            None if name == "veth" && cfg.is_none() => check(
                S,
                name,
                Verdict::Warn,
                "cannot tell without the kernel config; pods need CONFIG_VETH",
            ),
            None if name == "overlay filesystem" || name == "vxlan" => {
                check(S, name, Verdict::Warn, fix)
            }
            None => check(S, name, Verdict::Fail, fix),
        };
        out.push(verdict);
    }
    let nat = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S", "POSTROUTING"])
        .output();
    out.push(match nat {
        Ok(o) if o.status.success() => check(S, "iptables nat", Verdict::Pass, "the nat table answers"),
        Ok(o) => check(
            S,
            "iptables nat",
            Verdict::Fail,
            format!(
                "the nat table is unusable ({}): enable CONFIG_NF_NAT and CONFIG_IP_NF_NAT (or CONFIG_NFT_NAT)",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Err(_) => check(
            S,
            "iptables nat",
            Verdict::Fail,
            "iptables is not installed: apt-get install iptables (dnf/apk/zypper: iptables)",
        ),
    });
}

/// cgroup v2 with cpu, memory and pids, or v1 with its controllers.
fn cgroup_check() -> Check {
    const S: &str = "Kernel";
    let wanted = ["cpu", "memory", "pids"];
    if let Ok(text) = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
        let have: Vec<&str> = text.split_whitespace().collect();
        let missing: Vec<&str> = wanted.into_iter().filter(|w| !have.contains(w)).collect();
        return if missing.is_empty() {
            check(
                S,
                "cgroups",
                Verdict::Pass,
                format!("v2 ({})", have.join(" ")),
            )
        } else {
            check(
                S,
                "cgroups",
                Verdict::Fail,
                format!(
                    "cgroup v2 lacks {}: enable them in the kernel (CONFIG_MEMCG, CONFIG_CGROUP_PIDS, ...) or on its command line (cgroup_enable=memory)",
                    missing.join(" ")
                ),
            )
        };
    }
    let Ok(text) = std::fs::read_to_string("/proc/cgroups") else {
        return check(
            S,
            "cgroups",
            Verdict::Fail,
            "no cgroups: use a kernel built with CONFIG_CGROUPS and mount /sys/fs/cgroup",
        );
    };
    let enabled: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] == "1").then_some(f[0])
        })
        .collect();
    let v1 = ["cpu", "cpuacct", "memory", "pids", "devices", "freezer"];
    let missing: Vec<&str> = v1.into_iter().filter(|w| !enabled.contains(w)).collect();
    if missing.is_empty() {
        check(
            S,
            "cgroups",
            Verdict::Pass,
            format!("v1 ({})", v1.join(" ")),
        )
    } else {
        check(
            S,
            "cgroups",
            Verdict::Fail,
            format!(
                "cgroup v1 lacks {}: enable them in the kernel or on its command line (cgroup_enable=memory)",
                missing.join(" ")
            ),
        )
    }
}

/// Where `program` is on PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn binary_checks(out: &mut Vec<Check>) {
    const S: &str = "Binaries";
    let required: [(&str, &str, Verdict); 7] = [
        ("containerd", "containerd", Verdict::Fail),
        ("ctr", "containerd", Verdict::Fail),
        ("runc", "runc", Verdict::Fail),
        ("iptables", "iptables", Verdict::Fail),
        ("iptables-restore", "iptables", Verdict::Fail),
        ("conntrack", "conntrack", Verdict::Warn),
        ("kubectl", "kubectl", Verdict::Warn),
    ];
    for (program, package, severity) in required {
        out.push(match which(program) {
            Some(p) => check(S, program, Verdict::Pass, p.display().to_string()),
            None if program == "kubectl" => check(
                S,
                program,
                severity,
                "`skiff kubectl` needs it: install kubectl (https://kubernetes.io/docs/tasks/tools/)",
            ),
            None => check(
                S,
                program,
                severity,
                format!("apt-get install {package} (dnf/apk/zypper: {package}), or run install.sh"),
            ),
        });
    }
    let plugins = ["bridge", "host-local", "loopback", "portmap"];
    out.push(match crate::runtime::config::cni_bin_dir() {
        Some(dir) => {
            let missing: Vec<&str> = plugins
                .into_iter()
                .filter(|p| !dir.join(p).is_file())
                .collect();
            if missing.is_empty() {
                check(S, "CNI plugins", Verdict::Pass, dir.display().to_string())
            } else {
                check(
                    S,
                    "CNI plugins",
                    Verdict::Fail,
                    format!(
                        "{} lacks {}: apt-get install containernetworking-plugins",
                        dir.display(),
                        missing.join(" ")
                    ),
                )
            }
        }
        None => check(
            S,
            "CNI plugins",
            Verdict::Fail,
            "none in /usr/lib/cni or /opt/cni/bin: apt-get install containernetworking-plugins",
        ),
    });
}

fn system_checks(out: &mut Vec<Check>) {
    const S: &str = "System";
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let active = swaps
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    out.push(if active == 0 {
        check(S, "swap", Verdict::Pass, "off")
    } else {
        check(
            S,
            "swap",
            Verdict::Warn,
            format!("{active} swap area(s) on: memory limits are not enforced strictly; `swapoff -a` (and remove them from /etc/fstab)"),
        )
    });
    let root = euid() == 0;
    out.push(if root {
        check(S, "privileges", Verdict::Pass, "running as root")
    } else {
        check(
            S,
            "privileges",
            Verdict::Warn,
            "not root: `skiff server` with its node needs root (run this check with sudo to see what it will see)",
        )
    });
}

/// The effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Every check, in report order.
pub fn run_checks() -> Vec<Check> {
    let mut out = Vec::new();
    kernel_checks(&mut out);
    binary_checks(&mut out);
    system_checks(&mut out);
    out
}

/// The report as text.
pub fn render(checks: &[Check]) -> String {
    let mut text = String::new();
    let mut section = "";
    for c in checks {
        if c.section != section {
            section = c.section;
            text.push_str(&format!("{section}:\n"));
        }
        let tag = match c.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        let join = if c.verdict == Verdict::Pass {
            ""
        } else {
            "fix: "
        };
        text.push_str(&format!("  {tag}  {}: {join}{}\n", c.name, c.detail));
    }
    let count = |v| checks.iter().filter(|c| c.verdict == v).count();
    text.push_str(&format!(
        "\n{} checks: {} passed, {} warnings, {} failed\n",
        checks.len(),
        count(Verdict::Pass),
        count(Verdict::Warn),
        count(Verdict::Fail)
    ));
    text
}

/// `skiff check-config`.
pub fn main() -> ExitCode {
    let checks = run_checks();
    print!("{}", render(&checks));
    if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_config_lines_parse() {
        let c = parse_kernel_config(
            "# comment\nCONFIG_VXLAN=m\nCONFIG_BRIDGE=y\n# CONFIG_X is not set\n",
        );
        assert_eq!(feature(Some(&c), false, "CONFIG_VXLAN"), Some("a module"));
        assert_eq!(feature(Some(&c), false, "CONFIG_BRIDGE"), Some("built in"));
        assert_eq!(feature(Some(&c), false, "CONFIG_X"), None);
        assert_eq!(feature(None, true, "CONFIG_X"), Some("present"));
    }

    #[test]
    fn failures_name_a_fix_and_are_counted() {
        let checks = vec![
            check("Kernel", "a", Verdict::Pass, "fine"),
            check("Binaries", "runc", Verdict::Fail, "apt-get install runc"),
        ];
        let text = render(&checks);
        assert!(
            text.contains("  FAIL  runc: fix: apt-get install runc\n"),
            "{text}"
        );
        assert!(
            text.contains("2 checks: 1 passed, 0 warnings, 1 failed"),
            "{text}"
        );
    }
}
