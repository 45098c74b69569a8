//! `skiff token create|list|delete`: bootstrap join tokens, as k3s's
//! `k3s token` and kubeadm's `kubeadm token`.
//!
//! The commands talk to the API server with the admin kubeconfig
//! (`--kubeconfig`, else `SKIFF_KUBECONFIG`, else `KUBECONFIG`, else
//! `/etc/skiff/skiff.yaml`) and keep each token in the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`,
//! in upstream's format. `create` prints the join token
//! `K10<ca-hash>::<id>.<secret>`, whose hash pins the CA the server serves
//! at `/cacerts`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use crate::auth::bootstrap::{
    self, BootstrapToken, KEY_DESCRIPTION, KEY_EXPIRATION, KEY_EXTRA_GROUPS, KEY_ID, KEY_SECRET,
    NAMESPACE, SECRET_TYPE,
};

const DEFAULT_KUBECONFIG: &str = "/etc/skiff/skiff.yaml";
/// The extra group of tokens `create` makes unless told otherwise, as k3s's
/// `system:bootstrappers:k3s:default-node-token`.
pub const DEFAULT_GROUP: &str = "system:bootstrappers:skiff:default-node-token";

/// Manage bootstrap tokens for joining nodes.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The admin kubeconfig (default: $SKIFF_KUBECONFIG, $KUBECONFIG, then
    /// /etc/skiff/skiff.yaml).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token and print the join token for it.
    Create(CreateArgs),
    /// List the bootstrap tokens.
    List,
    /// Delete bootstrap tokens by id (or by the token itself).
    Delete {
        /// Token ids (`abcdef`), tokens (`abcdef.0123456789abcdef`) or join
        /// tokens (`K10...::abcdef.0123456789abcdef`).
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

/// `skiff token create` flags.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The token to create (`[a-z0-9]{6}.[a-z0-9]{16}`); random when not given.
    pub token: Option<String>,
    /// How long the token is valid, as a Go duration (`24h`, `90m`);
    /// 0 means it never expires.
    #[arg(long, default_value = "24h")]
    pub ttl: String,
    /// A human-readable description of the token.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Extra groups the token authenticates as (each
    /// `system:bootstrappers:...`).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_GROUP)]
    pub groups: Vec<String>,
    /// What the token may be used for: `signing`, `authentication`.
    #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
    pub usages: Vec<String>,
}

/// What went wrong, as the user reads it.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid --ttl {0:?}: {1}")]
    Ttl(String, String),
    #[error("invalid token {0:?}: a token looks like [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    BadToken(String),
    #[error("invalid token id {0:?}: an id is 6 characters of [a-z0-9]")]
    BadId(String),
    #[error("invalid group {0:?}: extra groups must look like system:bootstrappers:<name>")]
    BadGroup(String),
    #[error("invalid usage {0:?}: usages are {1}")]
    BadUsage(String, String),
    #[error("reading the kubeconfig {0}: {1}")]
    Kubeconfig(String, String),
    #[error("cannot reach the API server at {0}: {1}")]
    Unreachable(String, String),
    #[error("bootstrap token {0:?} not found")]
    NotFound(String),
    #[error("bootstrap token {0:?} already exists")]
    Exists(String),
    #[error("the API server refused: {0}")]
    Api(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

/// Runs a token subcommand, printing its result or error.
pub fn main(args: TokenArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skiff token: {}", TokenError::Runtime(e.to_string()));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skiff token: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The kubeconfig to use: the flag, `SKIFF_KUBECONFIG`, `KUBECONFIG`
/// (its first file), else the default.
fn kubeconfig_path(flag: Option<PathBuf>) -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .and_then(|v| std::env::split_paths(&v).next())
    };
    flag.or_else(|| env("SKIFF_KUBECONFIG"))
        .or_else(|| env("KUBECONFIG"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KUBECONFIG))
}

async fn client(path: PathBuf) -> Result<(Client, String), TokenError> {
    let shown = path.display().to_string();
    let config = Kubeconfig::read_from(&path)
        .map_err(|e| TokenError::Kubeconfig(shown.clone(), e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map_err(|e| TokenError::Kubeconfig(shown.clone(), e.to_string()))?;
    let url = config.cluster_url.to_string();
    let client =
        Client::try_from(config).map_err(|e| TokenError::Kubeconfig(shown, e.to_string()))?;
    Ok((client, url))
}

/// A kube error as the user reads it.
fn api_error(url: &str, e: kube::Error) -> TokenError {
    match e {
        kube::Error::Api(status) => TokenError::Api(status.message),
        other => TokenError::Unreachable(url.to_string(), other.to_string()),
    }
}

async fn run(args: TokenArgs) -> Result<String, TokenError> {
    if let TokenCommand::Create(create) = &args.command {
        // Bad flags are reported before anything is contacted.
        check_create(create)?;
    }
    let (client, url) = client(kubeconfig_path(args.kubeconfig)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    match args.command {
        TokenCommand::Create(create) => {
            let (token, secret) = new_secret(&create, Timestamp::now())?;
            let ca = ca_pem(&client).await.map_err(|e| api_error(&url, e))?;
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => Ok(format!(
                    "{}\n",
                    token.full(&crate::pki::token::ca_hash(&ca))
                )),
                Err(kube::Error::Api(s)) if s.code == 409 => Err(TokenError::Exists(token.id)),
                Err(e) => Err(api_error(&url, e)),
            }
        }
        TokenCommand::List => {
            let list = secrets
                .list(&ListParams::default())
                .await
                .map_err(|e| api_error(&url, e))?;
            Ok(table(&list.items, Timestamp::now()))
        }
        TokenCommand::Delete { tokens } => {
            let mut out = String::new();
            for given in tokens {
                let id = id_of(&given)?;
                let name = format!("{}{id}", bootstrap::SECRET_PREFIX);
                match secrets.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => out.push_str(&format!("bootstrap token {id:?} deleted\n")),
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        print!("{out}");
                        return Err(TokenError::NotFound(id));
                    }
                    Err(e) => {
                        print!("{out}");
                        return Err(api_error(&url, e));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The CA the server serves at `/cacerts` (what the join token pins).
async fn ca_pem(client: &Client) -> Result<String, kube::Error> {
    let request = http::Request::get("/cacerts")
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request_text(request).await
}

/// The id a `delete` argument names.
fn id_of(given: &str) -> Result<String, TokenError> {
    if bootstrap::is_id(given) {
        return Ok(given.to_string());
    }
    if given.contains('.') {
        return BootstrapToken::parse(given)
            .map(|t| t.id)
            .ok_or_else(|| TokenError::BadToken(given.to_string()));
    }
    Err(TokenError::BadId(given.to_string()))
}

fn check_create(args: &CreateArgs) -> Result<(), TokenError> {
    parse_ttl(&args.ttl)?;
    if let Some(t) = &args.token
        && BootstrapToken::parse(t).is_none()
    {
        return Err(TokenError::BadToken(t.clone()));
    }
    for g in args.groups.iter().filter(|g| !g.is_empty()) {
        if !bootstrap::valid_extra_group(g) {
            return Err(TokenError::BadGroup(g.clone()));
        }
    }
    for u in &args.usages {
        if !bootstrap::USAGES.contains(&u.as_str()) {
            return Err(TokenError::BadUsage(
                u.clone(),
                bootstrap::USAGES.join(", "),
            ));
        }
    }
    Ok(())
}

/// The token and its Secret, for `create` at `now`.
pub fn new_secret(
    args: &CreateArgs,
    now: Timestamp,
) -> Result<(BootstrapToken, Secret), TokenError> {
    check_create(args)?;
    let token = match &args.token {
        Some(t) => BootstrapToken::parse(t).ok_or_else(|| TokenError::BadToken(t.clone()))?,
        None => BootstrapToken::generate(),
    };
    let mut data = BTreeMap::from([
        (KEY_ID.to_string(), token.id.clone()),
        (KEY_SECRET.to_string(), token.secret.clone()),
    ]);
    if let Some(ttl) = parse_ttl(&args.ttl)? {
        let at = now
            .checked_add(
                SignedDuration::try_from(ttl)
                    .map_err(|e| TokenError::Ttl(args.ttl.clone(), e.to_string()))?,
            )
            .map_err(|e| TokenError::Ttl(args.ttl.clone(), e.to_string()))?;
        data.insert(KEY_EXPIRATION.to_string(), rfc3339(at));
    }
    if !args.description.is_empty() {
        data.insert(KEY_DESCRIPTION.to_string(), args.description.clone());
    }
    for usage in &args.usages {
        data.insert(format!("usage-bootstrap-{usage}"), "true".to_string());
    }
    let groups: Vec<&str> = args
        .groups
        .iter()
        .map(String::as_str)
        .filter(|g| !g.is_empty())
        .collect();
    if !groups.is_empty() {
        data.insert(KEY_EXTRA_GROUPS.to_string(), groups.join(","));
    }
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(token.secret_name()),
            namespace: Some(NAMESPACE.to_string()),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        string_data: Some(data),
        ..Default::default()
    };
    Ok((token, secret))
}

/// RFC 3339 in UTC to the second, as Go's `time.RFC3339` prints it.
fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A Go duration (`24h`, `1h30m`, `90s`, `0`): `None` for 0 (never
/// expires).
pub fn parse_ttl(s: &str) -> Result<Option<Duration>, TokenError> {
    let bad = |why: &str| TokenError::Ttl(s.to_string(), why.to_string());
    if s == "0" {
        return Ok(None);
    }
    if s.starts_with('-') {
        return Err(bad("a TTL cannot be negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad("expected a duration such as 24h, 90m or 0"));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit (use h, m, s, ms)"))?;
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| bad("expected a duration such as 24h, 90m or 0"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            unit => return Err(bad(&format!("unknown unit {unit:?} (use h, m, s, ms)"))),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if total == 0.0 {
        return Ok(None);
    }
    if !total.is_finite() || total > 100.0 * 365.0 * 86400.0 {
        return Err(bad("too long"));
    }
    Ok(Some(Duration::from_secs_f64(total)))
}

/// Upstream's `ShortHumanDuration` (what `kubeadm token list` shows).
fn short_human(seconds: i64) -> String {
    if seconds < -1 {
        "<invalid>".to_string()
    } else if seconds < 0 {
        "0s".to_string()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m", seconds / 60)
    } else if seconds < 48 * 3600 {
        format!("{}h", seconds / 3600)
    } else if seconds < 365 * 2 * 86400 {
        format!("{}d", seconds / 86400)
    } else {
        format!("{}y", seconds / (365 * 86400))
    }
}

/// The `list` table, as `kubeadm token list` prints it (ids only: the
/// secrets stay in the Secrets).
pub fn table(secrets: &[Secret], now: Timestamp) -> String {
    let mut rows = vec![[
        "TOKEN ID".to_string(),
        "TTL".to_string(),
        "EXPIRES".to_string(),
        "USAGES".to_string(),
        "DESCRIPTION".to_string(),
        "EXTRA GROUPS".to_string(),
    ]];
    let mut items: Vec<(String, [String; 6])> = Vec::new();
    for s in secrets {
        let value = match serde_json::to_value(s) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if value["type"].as_str() != Some(SECRET_TYPE) {
            continue;
        }
        let data = bootstrap::secret_data(&value);
        let Some(id) = data.get(KEY_ID).filter(|id| bootstrap::is_id(id)) else {
            continue;
        };
        let (ttl, expires) = match bootstrap::expiration(&data) {
            Ok(None) => ("<forever>".to_string(), "<never>".to_string()),
            Ok(Some(at)) => (short_human(at.as_second() - now.as_second()), rfc3339(at)),
            Err(_) => ("<invalid>".to_string(), "<invalid>".to_string()),
        };
        let usages: Vec<&str> = bootstrap::USAGES
            .iter()
            .copied()
            .filter(|u| {
                data.get(&format!("usage-bootstrap-{u}"))
                    .map(String::as_str)
                    == Some("true")
            })
            .collect();
        let or_none = |s: Option<&String>| {
            s.filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| "<none>".to_string())
        };
        items.push((
            id.clone(),
            [
                id.clone(),
                ttl,
                expires,
                if usages.is_empty() {
                    "<none>".to_string()
                } else {
                    usages.join(",")
                },
                or_none(data.get(KEY_DESCRIPTION)),
                or_none(data.get(KEY_EXTRA_GROUPS)),
            ],
        ));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    rows.extend(items.into_iter().map(|(_, row)| row));
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == 5 {
                    cell.clone()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(ttl: &str) -> CreateArgs {
        CreateArgs {
            token: Some("abcdef.0123456789abcdef".into()),
            ttl: ttl.into(),
            description: "edge".into(),
            groups: vec![DEFAULT_GROUP.into()],
            usages: vec!["signing".into(), "authentication".into()],
        }
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn ttls_are_go_durations() {
        assert_eq!(parse_ttl("0").expect("0"), None);
        assert_eq!(
            parse_ttl("24h").expect("24h"),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(
            parse_ttl("1h30m").expect("1h30m"),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_ttl("2s").expect("2s"), Some(Duration::from_secs(2)));
        for bad in ["", "-1h", "10", "5d", "h", "1.2.3h"] {
            let err = parse_ttl(bad).expect_err(bad).to_string();
            assert!(err.starts_with("invalid --ttl"), "{err}");
        }
    }

    #[test]
    fn the_secret_has_upstreams_keys() {
        let (token, secret) = new_secret(&args("1h"), now()).expect("secret");
        assert_eq!(token.bare(), "abcdef.0123456789abcdef");
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("bootstrap-token-abcdef")
        );
        assert_eq!(secret.type_.as_deref(), Some(SECRET_TYPE));
        let data = secret.string_data.expect("data");
        assert_eq!(data[KEY_ID], "abcdef");
        assert_eq!(data[KEY_SECRET], "0123456789abcdef");
        assert_eq!(data[KEY_EXPIRATION], "2026-06-01T01:00:00Z");
        assert_eq!(data["usage-bootstrap-authentication"], "true");
        assert_eq!(data["usage-bootstrap-signing"], "true");
        assert_eq!(data[KEY_DESCRIPTION], "edge");
        assert_eq!(data[KEY_EXTRA_GROUPS], DEFAULT_GROUP);
        let (_, forever) = new_secret(&args("0"), now()).expect("secret");
        assert!(
            !forever
                .string_data
                .expect("data")
                .contains_key(KEY_EXPIRATION)
        );
        let mut bad = args("1h");
        bad.groups = vec!["system:masters".into()];
        assert!(matches!(
            new_secret(&bad, now()),
            Err(TokenError::BadGroup(_))
        ));
        bad = args("1h");
        bad.usages = vec!["everything".into()];
        assert!(matches!(
            new_secret(&bad, now()),
            Err(TokenError::BadUsage(..))
        ));
    }

    #[test]
    fn the_table_reads_as_kubeadms() {
        let (_, mut a) = new_secret(&args("3h"), now()).expect("secret");
        let mut b_args = args("0");
        b_args.token = Some("zzzzzz.0123456789abcdef".into());
        b_args.description = String::new();
        b_args.groups = vec![];
        b_args.usages = vec!["authentication".into()];
        let (_, b) = new_secret(&b_args, now()).expect("secret");
        a.metadata.name = Some("bootstrap-token-abcdef".into());
        let out = table(&[b, a], now());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("TOKEN ID   TTL"), "{out}");
        assert!(lines[1].starts_with("abcdef     3h "), "{out}");
        assert!(lines[1].contains("2026-06-01T03:00:00Z"), "{out}");
        assert!(lines[1].contains("authentication,signing"), "{out}");
        assert!(lines[1].ends_with(DEFAULT_GROUP), "{out}");
        assert!(lines[2].starts_with("zzzzzz     <forever>"), "{out}");
        assert!(lines[2].contains("<never>"), "{out}");
    }

    #[test]
    fn delete_takes_ids_and_tokens() {
        assert_eq!(id_of("abcdef").expect("id"), "abcdef");
        assert_eq!(id_of("abcdef.0123456789abcdef").expect("token"), "abcdef");
        let full = format!("K10{}::abcdef.0123456789abcdef", "a".repeat(64));
        assert_eq!(id_of(&full).expect("full"), "abcdef");
        assert!(matches!(id_of("ABC"), Err(TokenError::BadId(_))));
        assert!(matches!(id_of("abc.def"), Err(TokenError::BadToken(_))));
    }
}
