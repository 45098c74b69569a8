//! A container's environment as upstream's kubelet builds it: `envFrom`
//! (ConfigMaps and Secrets, with a prefix) first, then `env` in order, whose
//! `value`s may refer to variables defined before them as `$(NAME)`; values
//! come from literals, ConfigMap and Secret keys, the pod's own fields
//! (`fieldRef`) and the container's resources (`resourceFieldRef`). The
//! same `$(NAME)` expansion applies to `command` and `args`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

use crate::api::kinds::quantity::Quantity;

/// Why a container's environment cannot be built; the message is the
/// container's `CreateContainerConfigError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource: {0}")]
    Resource(String),
    #[error("reading {0}: {1}")]
    Api(String, String),
}

/// The ConfigMaps and Secrets a pod refers to, fetched once per start.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `None` for one that does not exist.
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    pub secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

/// What the pod's fields resolve to besides its spec and metadata.
#[derive(Debug, Default, Clone)]
pub struct Runtime {
    pub pod_ip: String,
    pub host_ip: String,
    /// Node allocatable, the default of an unset limit: millicores, bytes.
    pub node_cpu_millis: i128,
    pub node_memory: i128,
}

impl Sources {
    /// Fetches every ConfigMap and Secret `container` names in its env.
    pub async fn fetch(
        client: &kube::Client,
        namespace: &str,
        containers: &[&Container],
    ) -> Result<Sources, EnvError> {
        let mut sources = Sources::default();
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let (mut cm_names, mut secret_names) = (Vec::new(), Vec::new());
        for c in containers {
            for from in c.env_from.iter().flatten() {
                cm_names.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
                secret_names.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
            }
            for var in c.env.iter().flatten() {
                let Some(from) = &var.value_from else {
                    continue;
                };
                cm_names.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secret_names.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
        }
        for name in cm_names {
            if sources.config_maps.contains_key(&name) {
                continue;
            }
            let found = config_maps
                .get_opt(&name)
                .await
                .map_err(|e| EnvError::Api(format!("configmap {name}"), e.to_string()))?;
            sources
                .config_maps
                .insert(name, found.map(|c| c.data.unwrap_or_default()));
        }
        for name in secret_names {
            if sources.secrets.contains_key(&name) {
                continue;
            }
            let found = secrets
                .get_opt(&name)
                .await
                .map_err(|e| EnvError::Api(format!("secret {name}"), e.to_string()))?;
            let data = found.map(|s| {
                let mut data: BTreeMap<String, String> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                data.extend(s.string_data.unwrap_or_default());
                data
            });
            sources.secrets.insert(name, data);
        }
        Ok(sources)
    }
}

/// The environment of `container` in `pod`, in order.
pub fn build(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
    runtime: &Runtime,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, name: String, value: String| match vars
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => vars.push((name, value)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name).cloned().flatten() {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        } else if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name).cloned().flatten() {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        } else {
            continue;
        };
        for (key, value) in data {
            let name = format!("{prefix}{key}");
            // Upstream skips keys that are not valid variable names.
            if is_env_name(&name) {
                set(&mut vars, name, value);
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(from) = &var.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match sources.config_maps.get(&r.name).cloned().flatten() {
                    None if optional => continue,
                    None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::ConfigMapKey {
                                key: r.key.clone(),
                                namespace,
                                name: r.name.clone(),
                            });
                        }
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match sources.secrets.get(&r.name).cloned().flatten() {
                    None if optional => continue,
                    None => return Err(EnvError::SecretNotFound(r.name.clone())),
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::SecretKey {
                                key: r.key.clone(),
                                namespace,
                                name: r.name.clone(),
                            });
                        }
                    },
                }
            } else if let Some(f) = &from.field_ref {
                field(pod, &f.field_path, runtime)?
            } else if let Some(r) = &from.resource_field_ref {
                let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
                resource(container, &r.resource, divisor, runtime)?
            } else {
                continue;
            }
        } else {
            let defined: BTreeMap<&str, &str> =
                vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            expand(var.value.as_deref().unwrap_or_default(), &defined)
        };
        set(&mut vars, var.name.clone(), value);
    }
    Ok(vars)
}

/// `command` and `args` with `$(NAME)` replaced from `env`.
pub fn expand_all(items: &[String], env: &[(String, String)]) -> Vec<String> {
    let defined: BTreeMap<&str, &str> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    items.iter().map(|s| expand(s, &defined)).collect()
}

/// Upstream's `expansion.Expand`: `$(NAME)` becomes the value of a defined
/// NAME and stays as written otherwise; `$$` is a literal `$`.
pub fn expand(input: &str, defined: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(close) = body.find(')')
        {
            let name = &body[..close];
            match defined.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| !c.is_ascii_digit() && (c.is_ascii_alphanumeric() || "-._".contains(c)))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// A downward-API field of `pod`.
pub fn field(pod: &Pod, path: &str, runtime: &Runtime) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let map_path = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|p| p.strip_prefix("['"))
            .and_then(|p| p.strip_suffix("']"))
            .map(str::to_string)
    };
    let render = |m: &Option<BTreeMap<String, String>>| {
        m.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => render(&meta.labels),
        "metadata.annotations" => render(&meta.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.podIP" | "status.podIPs" => runtime.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => runtime.host_ip.clone(),
        _ => {
            if let Some(key) = map_path("metadata.labels") {
                meta.labels
                    .iter()
                    .flatten()
                    .find(|(k, _)| **k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            } else if let Some(key) = map_path("metadata.annotations") {
                meta.annotations
                    .iter()
                    .flatten()
                    .find(|(k, _)| **k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// A resource of `container` (`limits.cpu`, `requests.memory`, ...) in units
/// of `divisor`, rounded up; an unset limit is the node's allocatable.
pub fn resource(
    container: &Container,
    name: &str,
    divisor: Option<&str>,
    runtime: &Runtime,
) -> Result<String, EnvError> {
    let resources = container.resources.clone().unwrap_or_default();
    let (kind, resource) = name
        .split_once('.')
        .ok_or_else(|| EnvError::Resource(name.to_string()))?;
    let limits = resources.limits.unwrap_or_default();
    let requests = resources.requests.unwrap_or_default();
    let set = match kind {
        "limits" => limits.get(resource),
        "requests" => requests.get(resource).or_else(|| limits.get(resource)),
        _ => return Err(EnvError::Resource(name.to_string())),
    };
    let parse = |s: &str| Quantity::parse(s).map_err(|_| EnvError::Resource(name.to_string()));
    let nanos = match (set, resource) {
        (Some(q), _) => parse(&q.0)?.nanos(),
        (None, "cpu") if kind == "limits" => runtime.node_cpu_millis * 1_000_000,
        (None, "memory" | "ephemeral-storage") if kind == "limits" => {
            runtime.node_memory * 1_000_000_000
        }
        (None, _) => 0,
    };
    let divisor = match divisor {
        Some(d) => parse(d)?.nanos(),
        None => 1_000_000_000,
    };
    if divisor <= 0 {
        return Err(EnvError::Resource(name.to_string()));
    }
    let value = nanos / divisor + i128::from(nanos % divisor > 0);
    // Upstream never reports less than one core for cpu.
    let value = if resource == "cpu" {
        value.max(1)
    } else {
        value
    };
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, ResourceFieldSelector, ResourceRequirements, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(source),
            ..Default::default()
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn expansion_follows_upstream() {
        let defined = BTreeMap::from([("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &defined), "1-two");
        assert_eq!(expand("$(C) stays", &defined), "$(C) stays");
        assert_eq!(expand("$$(A) is escaped", &defined), "$(A) is escaped");
        assert_eq!(expand("cost $5 and $(", &defined), "cost $5 and $(");
    }

    #[test]
    fn env_comes_from_sources_in_order() {
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                prefix: Some("CM_".into()),
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cm".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                var("GREETING", "hello"),
                var("MSG", "$(GREETING) $(CM_colour) $(UNSET)"),
                from(
                    "COLOUR",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cm".into(),
                            key: "colour".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "PASS",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "s".into(),
                            key: "password".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "NAME",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "APP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.labels['app']".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "MEM",
                    EnvVarSource {
                        resource_field_ref: Some(ResourceFieldSelector {
                            resource: "limits.memory".into(),
                            divisor: Some(Q("1Mi".into())),
                            container_name: None,
                        }),
                        ..Default::default()
                    },
                ),
            ]),
            resources: Some(ResourceRequirements {
                limits: Some([("memory".to_string(), Q("64Mi".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sources = Sources {
            config_maps: [(
                "cm".to_string(),
                Some([("colour".to_string(), "blue".to_string())].into()),
            )]
            .into(),
            secrets: [(
                "s".to_string(),
                Some([("password".to_string(), "hunter2".to_string())].into()),
            )]
            .into(),
        };
        let env = build(&pod(), &container, &sources, &Runtime::default()).expect("env");
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("CM_colour"), Some("blue"));
        assert_eq!(get("MSG"), Some("hello blue $(UNSET)"));
        assert_eq!(get("COLOUR"), Some("blue"));
        assert_eq!(get("PASS"), Some("hunter2"));
        assert_eq!(get("NAME"), Some("p"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("MEM"), Some("64"));
        assert_eq!(env[0].0, "CM_colour", "envFrom comes first");
    }

    #[test]
    fn missing_sources_say_what_is_missing_unless_optional() {
        let key_ref = |optional| Container {
            env: Some(vec![from(
                "X",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cm".into(),
                        key: "nope".into(),
                        optional,
                    }),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let none = Sources::default();
        let err = build(&pod(), &key_ref(None), &none, &Runtime::default()).expect_err("missing");
        assert_eq!(err.to_string(), "configmap \"cm\" not found");
        let empty = Sources {
            config_maps: [("cm".to_string(), Some(BTreeMap::new()))].into(),
            ..Default::default()
        };
        let err = build(&pod(), &key_ref(None), &empty, &Runtime::default()).expect_err("no key");
        assert_eq!(err.to_string(), "couldn't find key nope in ConfigMap ns/cm");
        let env =
            build(&pod(), &key_ref(Some(true)), &none, &Runtime::default()).expect("optional");
        assert!(env.is_empty());
    }
}
