//! RBAC authorization, as upstream's RBAC authorizer.
//!
//! A request's [`Attributes`] (user, verb, and either a resource with its
//! group, namespace and name or a non-resource path) are checked against
//! the rules of every ClusterRoleBinding, and of every RoleBinding in the
//! request's namespace, whose subjects include the user. Members of
//! `system:masters` may do anything without any binding, as upstream's
//! privileged-group authorizer allows.
//!
//! The RBAC objects are read from the API server's watch caches: an
//! [`Authorizer`] keeps a [`Snapshot`] of them, rebuilt only when one of the
//! four caches has moved on, so a request costs a few map lookups.
//!
//! `rules` holds the rule logic, `policy` the bootstrap policy,
//! `reconcile` creates and updates it at start, `escalation` guards role
//! and binding writes, and `request_info` derives attributes from an HTTP
//! request.

pub mod escalation;
pub mod policy;
pub mod reconcile;
pub mod request_info;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use crate::api::watch_cache::WatchCache;
use crate::auth::UserInfo;
use rules::{Rule, go_quoted};

/// The group whose members are allowed everything.
pub const MASTERS: &str = "system:masters";

/// What a request wants to do.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    pub verb: &'a str,
    /// The request path (used for non-resource requests).
    pub path: &'a str,
    /// `None` for a non-resource request.
    pub resource: Option<ResourceAttributes<'a>>,
}

/// The resource part of a request's attributes.
#[derive(Debug, Clone, Default)]
pub struct ResourceAttributes<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why: the binding that allowed it, or the errors met on the way
    /// (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
    pub reason: String,
}

/// Whether the user is a member of `system:masters`.
pub fn is_master(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == MASTERS)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RoleRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_object(obj: &Value) -> Self {
        let meta = |k: &str| obj["metadata"][k].as_str().unwrap_or_default().to_string();
        Binding {
            name: meta("name"),
            namespace: meta("namespace"),
            role_ref: serde_json::from_value(obj["roleRef"].clone()).unwrap_or_default(),
            subjects: serde_json::from_value(obj["subjects"].clone()).unwrap_or_default(),
        }
    }

    /// The first subject that names the user, as upstream's `appliesTo`.
    fn subject_for(&self, user: &UserInfo) -> Option<&Subject> {
        self.subjects.iter().find(|s| match s.kind.as_str() {
            "User" => s.name == user.username,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                !s.namespace.is_empty()
                    && user.username == format!("system:serviceaccount:{}:{}", s.namespace, s.name)
            }
            _ => false,
        })
    }

    /// Upstream's description of a binding for a subject, used in reasons.
    fn describe(&self, subject: &Subject) -> String {
        let who = match subject.kind.as_str() {
            "ServiceAccount" => {
                let ns = if subject.namespace.is_empty() {
                    &self.namespace
                } else {
                    &subject.namespace
                };
                format!(
                    "{} {}",
                    subject.kind,
                    go_quoted(&format!("{}/{ns}", subject.name))
                )
            }
            _ => format!("{} {}", subject.kind, go_quoted(&subject.name)),
        };
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {who}",
                go_quoted(&self.name),
                self.role_ref.kind,
                go_quoted(&self.role_ref.name)
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {who}",
                go_quoted(&format!("{}/{}", self.name, self.namespace)),
                self.role_ref.kind,
                go_quoted(&self.role_ref.name)
            )
        }
    }
}

fn rules_of(obj: &Value) -> Arc<[Rule]> {
    serde_json::from_value::<Vec<Rule>>(obj["rules"].clone())
        .unwrap_or_default()
        .into()
}

/// The RBAC objects at one point in time, indexed for authorization.
#[derive(Default)]
pub struct Snapshot {
    cluster_roles: HashMap<String, Arc<[Rule]>>,
    /// By (namespace, name).
    roles: HashMap<(String, String), Arc<[Rule]>>,
    cluster_bindings: Vec<Binding>,
    /// By namespace.
    bindings: HashMap<String, Vec<Binding>>,
}

impl Snapshot {
    /// Indexes Roles, RoleBindings, ClusterRoles and ClusterRoleBindings.
    pub fn from_objects(
        roles: &[Arc<Value>],
        role_bindings: &[Arc<Value>],
        cluster_roles: &[Arc<Value>],
        cluster_bindings: &[Arc<Value>],
    ) -> Self {
        let name = |o: &Value, k: &str| o["metadata"][k].as_str().unwrap_or_default().to_string();
        let mut s = Snapshot::default();
        for r in cluster_roles {
            s.cluster_roles.insert(name(r, "name"), rules_of(r));
        }
        for r in roles {
            s.roles
                .insert((name(r, "namespace"), name(r, "name")), rules_of(r));
        }
        s.cluster_bindings = cluster_bindings
            .iter()
            .map(|b| Binding::from_object(b))
            .collect();
        for b in role_bindings {
            let b = Binding::from_object(b);
            s.bindings.entry(b.namespace.clone()).or_default().push(b);
        }
        s
    }

    /// The rules a binding grants, or the error upstream reports when its
    /// role is missing.
    fn role_rules(&self, binding: &Binding) -> Result<&Arc<[Rule]>, String> {
        let r = &binding.role_ref;
        let found = match r.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&r.name),
            "Role" => self.roles.get(&(binding.namespace.clone(), r.name.clone())),
            other => {
                return Err(format!(
                    "unsupported role reference kind: {}",
                    go_quoted(other)
                ));
            }
        };
        found.ok_or_else(|| {
            let kind = if r.kind == "Role" {
                "role"
            } else {
                "clusterrole"
            };
            format!(
                "{kind}.rbac.authorization.k8s.io {} not found",
                go_quoted(&r.name)
            )
        })
    }

    /// Calls `visit` with the rules of every binding that applies to `user`
    /// (cluster-wide, then in `namespace`) until it returns false; returns
    /// the resolution errors met.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        visit: &mut dyn FnMut(&Binding, &Subject, &[Rule]) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.bindings.get(namespace)
        };
        let all = self
            .cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten());
        for binding in all {
            let Some(subject) = binding.subject_for(user) else {
                continue;
            };
            match self.role_rules(binding) {
                Ok(rules) => {
                    if !visit(binding, subject, rules) {
                        return errors;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Upstream's RBAC decision for `attrs`.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let namespace = attrs.resource.as_ref().map_or("", |r| r.namespace);
        let mut allowed_by = None;
        let errors = self.visit(attrs.user, namespace, &mut |binding, subject, rules| {
            if rules.iter().any(|r| r.allows(attrs)) {
                allowed_by = Some(binding.describe(subject));
                false
            } else {
                true
            }
        });
        match allowed_by {
            Some(source) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {source}"),
            },
            None => Decision {
                allowed: false,
                reason: if errors.is_empty() {
                    String::new()
                } else {
                    format!("RBAC: {}", aggregate(&errors))
                },
            },
        }
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide rules
    /// included), and the resolution errors met.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut out = Vec::new();
        let errors = self.visit(user, namespace, &mut |_, _, rules| {
            out.extend(rules.iter().cloned());
            true
        });
        (out, errors)
    }

    /// The rules of a role a binding refers to.
    pub fn role_reference_rules(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<Rule>, String> {
        let binding = Binding {
            name: String::new(),
            namespace: namespace.to_string(),
            role_ref: RoleRef {
                kind: kind.to_string(),
                name: name.to_string(),
            },
            subjects: Vec::new(),
        };
        self.role_rules(&binding).map(|r| r.to_vec())
    }
}

/// Errors as upstream's `utilerrors.NewAggregate` prints them.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The four caches the RBAC objects come from.
pub struct Sources {
    pub roles: Arc<WatchCache>,
    pub role_bindings: Arc<WatchCache>,
    pub cluster_roles: Arc<WatchCache>,
    pub cluster_bindings: Arc<WatchCache>,
}

impl Sources {
    fn revisions(&self) -> [i64; 4] {
        [
            self.roles.revision(),
            self.role_bindings.revision(),
            self.cluster_roles.revision(),
            self.cluster_bindings.revision(),
        ]
    }

    fn snapshot(&self) -> Snapshot {
        let all = |c: &WatchCache| c.list("/registry/").0;
        Snapshot::from_objects(
            &all(&self.roles),
            &all(&self.role_bindings),
            &all(&self.cluster_roles),
            &all(&self.cluster_bindings),
        )
    }
}

/// The authorizer of the API server: upstream's `Node,RBAC` chain (the
/// node authorizer, when set, decides for kubelets first; RBAC for the
/// rest and for what it has no opinion on).
pub struct Authorizer {
    sources: Sources,
    current: Mutex<Option<([i64; 4], Arc<Snapshot>)>>,
    node: Option<crate::auth::node::NodeAuthorizer>,
}

impl Authorizer {
    pub fn new(sources: Sources) -> Self {
        Authorizer {
            sources,
            current: Mutex::new(None),
            node: None,
        }
    }

    /// Puts the node authorizer in front of RBAC.
    pub fn with_node_authorizer(mut self, node: crate::auth::node::NodeAuthorizer) -> Self {
        self.node = Some(node);
        self
    }

    /// The node authorizer, when enabled.
    pub fn node_authorizer(&self) -> Option<&crate::auth::node::NodeAuthorizer> {
        self.node.as_ref()
    }

    /// The RBAC objects as the caches hold them now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let revisions = self.sources.revisions();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, snap)) = current.as_ref()
            && *at == revisions
        {
            return Arc::clone(snap);
        }
        let snap = Arc::new(self.sources.snapshot());
        *current = Some((revisions, Arc::clone(&snap)));
        snap
    }

    /// Whether `attrs` are allowed.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if is_master(attrs.user) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let mut reasons = Vec::new();
        if let Some(node) = &self.node {
            match node.authorize(attrs) {
                crate::auth::node::Verdict::Allow => {
                    return Decision {
                        allowed: true,
                        reason: String::new(),
                    };
                }
                crate::auth::node::Verdict::NoOpinion(reason) if !reason.is_empty() => {
                    reasons.push(reason);
                }
                crate::auth::node::Verdict::NoOpinion(_) => {}
            }
        }
        let mut decision = self.snapshot().authorize(attrs);
        if !decision.allowed && !decision.reason.is_empty() {
            reasons.push(std::mem::take(&mut decision.reason));
        }
        if !decision.allowed {
            // As upstream's union authorizer joins its members' reasons.
            decision.reason = reasons.join(", ");
        }
        decision
    }

    /// Every rule the user holds in `namespace`, as the rules review shows
    /// them (members of `system:masters` hold everything).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let (mut rules, mut errors) = self.snapshot().rules_for(user, namespace);
        if let Some(node) = &self.node
            && crate::auth::node::node_identity(user).is_some()
        {
            // Upstream's node authorizer cannot enumerate what a node may
            // read through its pods; its static rules are listed.
            rules.splice(0..0, node.rules().iter().cloned());
            errors.push("node authorizer does not support user rule resolution".to_string());
        }
        if is_master(user) {
            let all = vec!["*".to_string()];
            rules.insert(
                0,
                Rule {
                    verbs: all.clone(),
                    non_resource_urls: all.clone(),
                    ..Rule::default()
                },
            );
            rules.insert(
                0,
                Rule {
                    verbs: all.clone(),
                    api_groups: all.clone(),
                    resources: all,
                    ..Rule::default()
                },
            );
        }
        (rules, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    fn arcs(v: Vec<Value>) -> Vec<Arc<Value>> {
        v.into_iter().map(Arc::new).collect()
    }

    fn snapshot() -> Snapshot {
        let view = json!({"metadata": {"name": "view"}, "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]});
        let reader = json!({"metadata": {"name": "cm-reader", "namespace": "team"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]}]});
        let rb = json!({"metadata": {"name": "alice-view", "namespace": "team"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "alice"}]});
        let rb2 = json!({"metadata": {"name": "sa-reader", "namespace": "team"}, "roleRef": {"kind": "Role", "name": "cm-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "team"}]});
        let dangling = json!({"metadata": {"name": "ghost"}, "roleRef": {"kind": "ClusterRole", "name": "gone"}, "subjects": [{"kind": "Group", "name": "devs"}]});
        Snapshot::from_objects(
            &arcs(vec![reader]),
            &arcs(vec![rb, rb2]),
            &arcs(vec![view]),
            &arcs(vec![dangling]),
        )
    }

    fn pods<'a>(u: &'a UserInfo, verb: &'a str, ns: &'a str) -> Attributes<'a> {
        Attributes {
            user: u,
            verb,
            path: "",
            resource: Some(ResourceAttributes {
                resource: "pods",
                namespace: ns,
                version: "v1",
                ..ResourceAttributes::default()
            }),
        }
    }

    #[test]
    fn a_role_binding_grants_only_in_its_namespace() {
        let s = snapshot();
        let alice = user("alice", &["system:authenticated"]);
        let d = s.authorize(&pods(&alice, "list", "team"));
        assert!(d.allowed);
        assert_eq!(
            d.reason,
            r#"RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#
        );
        assert!(!s.authorize(&pods(&alice, "list", "other")).allowed);
        assert!(!s.authorize(&pods(&alice, "list", "")).allowed);
        assert!(!s.authorize(&pods(&alice, "delete", "team")).allowed);
        assert!(
            !s.authorize(&pods(&user("bob", &[]), "list", "team"))
                .allowed
        );
    }

    #[test]
    fn service_accounts_match_by_their_full_user_name() {
        let s = snapshot();
        let sa = user("system:serviceaccount:team:app", &[]);
        let cm = |name: &'static str| Attributes {
            user: &sa,
            verb: "get",
            path: "",
            resource: Some(ResourceAttributes {
                resource: "configmaps",
                namespace: "team",
                name,
                ..ResourceAttributes::default()
            }),
        };
        assert!(s.authorize(&cm("settings")).allowed);
        assert!(!s.authorize(&cm("other")).allowed);
    }

    #[test]
    fn a_missing_role_is_reported_in_the_reason() {
        let s = snapshot();
        let dev = user("carol", &["devs"]);
        let d = s.authorize(&pods(&dev, "get", "team"));
        assert!(!d.allowed);
        assert_eq!(
            d.reason,
            r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
        );
    }

    #[test]
    fn rules_for_collects_cluster_and_namespace_rules() {
        let s = snapshot();
        let (rules, errors) = s.rules_for(&user("alice", &[]), "team");
        assert_eq!(rules.len(), 1);
        assert!(errors.is_empty());
        assert!(s.rules_for(&user("alice", &[]), "other").0.is_empty());
    }
}
