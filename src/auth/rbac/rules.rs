//! Policy rules: whether a rule allows a request, whether one set of rules
//! covers another (escalation checks, bootstrap reconciliation), and the
//! compact text upstream prints for missing rules.
//!
//! The logic follows upstream's `rbac/v1` helpers (`RuleAllows`,
//! `ruleCovers`, `BreakdownRule`, `CompactRules`, `CompactString`).

use serde::{Deserialize, Serialize};

use super::Attributes;

/// One `PolicyRule`, in its JSON form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

impl Rule {
    /// Whether this rule allows the request.
    pub fn allows(&self, attrs: &Attributes<'_>) -> bool {
        if !self.verb_matches(attrs.verb) {
            return false;
        }
        match &attrs.resource {
            Some(r) => {
                let combined = if r.subresource.is_empty() {
                    r.resource.to_string()
                } else {
                    format!("{}/{}", r.resource, r.subresource)
                };
                self.group_matches(r.group)
                    && self.resource_matches(&combined, r.subresource)
                    && self.name_matches(r.name)
            }
            None => self.url_matches(attrs.path),
        }
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
        })
    }

    fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || has(&self.resource_names, name)
    }

    fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*"
                || u == path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        })
    }

    /// Whether this rule grants everything `sub` (one broken-down rule)
    /// grants, as upstream's `ruleCovers`.
    fn covers(&self, sub: &Rule) -> bool {
        let verbs = has(&self.verbs, "*") || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, "*") || has_all(&self.api_groups, &sub.api_groups);
        let resources = resources_cover(&self.resources, &sub.resources);
        let urls = sub.non_resource_urls.iter().all(|path| {
            self.non_resource_urls.iter().any(|owner| {
                owner == path
                    || owner
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
        });
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty() || has_all(&self.resource_names, &sub.resource_names)
        };
        verbs && groups && resources && urls && names
    }

    /// Splits the rule into rules of one group, resource, verb (and name),
    /// or one URL and verb.
    fn breakdown(&self) -> Vec<Rule> {
        let one = |s: &String| vec![s.clone()];
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let base = Rule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..Rule::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(base);
                    } else {
                        out.extend(self.resource_names.iter().map(|n| Rule {
                            resource_names: one(n),
                            ..base.clone()
                        }));
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(Rule {
                    verbs: one(verb),
                    non_resource_urls: one(url),
                    ..Rule::default()
                });
            }
        }
        out
    }

    /// Upstream's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        for (label, values) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !values.is_empty() {
                parts.push(format!("{label}:{}", go_quoted_list(values)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// A string as Go's `%q` prints it.
pub fn go_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A list of strings as Go's `%q` prints a `[]string`: `["a" "b"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quoted(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Whether `owner` covers every rule in `wanted`; the second value lists the
/// broken-down rules that are not covered.
pub fn covers(owner: &[Rule], wanted: &[Rule]) -> (bool, Vec<Rule>) {
    let missing: Vec<Rule> = wanted
        .iter()
        .flat_map(Rule::breakdown)
        .filter(|sub| !owner.iter().any(|o| o.covers(sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// Merges rules that differ only in their verbs (one group, one resource, at
/// most one name), as upstream's `CompactRules`.
pub fn compact(rules: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let mut simple: Vec<Rule> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            out.push(rule.clone());
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == rule.api_groups
                && s.resources == rule.resources
                && s.resource_names == rule.resource_names
        }) {
            Some(existing) => existing.verbs.extend(rule.verbs.iter().cloned()),
            None => simple.push(rule.clone()),
        }
    }
    out.extend(simple);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use crate::auth::rbac::ResourceAttributes;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn url_rule(verbs: &[&str], urls: &[&str]) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            verbs: v(verbs),
            non_resource_urls: v(urls),
            ..Rule::default()
        }
    }

    fn resource<'a>(
        user: &'a UserInfo,
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            path: "",
            resource: Some(ResourceAttributes {
                group,
                version: "v1",
                resource,
                subresource,
                namespace: "default",
                name,
            }),
        }
    }

    #[test]
    fn verbs_groups_resources_and_wildcards() {
        let u = UserInfo::default();
        let r = rule(&["get", "list"], &[""], &["pods"], &[]);
        assert!(r.allows(&resource(&u, "get", "", "pods", "", "x")));
        assert!(r.allows(&resource(&u, "list", "", "pods", "", "")));
        assert!(!r.allows(&resource(&u, "delete", "", "pods", "", "x")));
        assert!(!r.allows(&resource(&u, "get", "apps", "pods", "", "x")));
        assert!(!r.allows(&resource(&u, "get", "", "pods", "log", "x")));
        let star = rule(&["*"], &["*"], &["*"], &[]);
        assert!(star.allows(&resource(
            &u,
            "escalate",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            ""
        )));
        assert!(star.allows(&resource(&u, "get", "", "pods", "log", "x")));
    }

    #[test]
    fn subresources_match_exactly_or_by_star_prefix() {
        let u = UserInfo::default();
        let logs = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(logs.allows(&resource(&u, "get", "", "pods", "log", "p")));
        assert!(!logs.allows(&resource(&u, "get", "", "pods", "", "p")));
        let any_scale = rule(&["get"], &["*"], &["*/scale"], &[]);
        assert!(any_scale.allows(&resource(&u, "get", "apps", "deployments", "scale", "d")));
        assert!(!any_scale.allows(&resource(&u, "get", "apps", "deployments", "", "d")));
        assert!(!any_scale.allows(&resource(&u, "get", "apps", "deployments", "status", "d")));
    }

    #[test]
    fn resource_names_restrict_to_those_names() {
        let u = UserInfo::default();
        let r = rule(&["get", "update"], &[""], &["configmaps"], &["one"]);
        assert!(r.allows(&resource(&u, "get", "", "configmaps", "", "one")));
        assert!(!r.allows(&resource(&u, "get", "", "configmaps", "", "two")));
        // A list has no name, so a named rule never allows it.
        assert!(!r.allows(&resource(&u, "list", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls_with_trailing_star() {
        let u = UserInfo::default();
        let r = url_rule(&["get"], &["/healthz", "/apis/*"]);
        let at = |path: &'static str, verb: &'static str| Attributes {
            user: &u,
            verb,
            path,
            resource: None,
        };
        assert!(r.allows(&at("/healthz", "get")));
        assert!(!r.allows(&at("/healthz/ping", "get")));
        assert!(r.allows(&at("/apis/apps/v1", "get")));
        assert!(!r.allows(&at("/apis", "get")));
        assert!(!r.allows(&at("/healthz", "post")));
        assert!(url_rule(&["*"], &["*"]).allows(&at("/anything", "delete")));
        // A URL rule never allows a resource request and vice versa.
        assert!(!r.allows(&resource(&u, "get", "", "pods", "", "")));
        assert!(!rule(&["*"], &["*"], &["*"], &[]).allows(&at("/healthz", "get")));
    }

    #[test]
    fn covers_reports_the_missing_broken_down_rules() {
        let owner = vec![
            rule(&["get", "list"], &[""], &["pods"], &[]),
            rule(&["get"], &["*"], &["*/scale"], &[]),
            url_rule(&["get"], &["/api/*"]),
        ];
        let (ok, missing) = covers(
            &owner,
            &[
                rule(&["get"], &[""], &["pods"], &["a"]),
                rule(&["get"], &["apps"], &["deployments/scale"], &[]),
                url_rule(&["get"], &["/api/v1"]),
            ],
        );
        assert!(ok, "{missing:?}");
        let (ok, missing) = covers(
            &owner,
            &[rule(&["get", "delete"], &[""], &["pods", "secrets"], &[])],
        );
        assert!(!ok);
        let text: Vec<String> = compact(&missing).iter().map(Rule::compact_string).collect();
        assert_eq!(
            text,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}"#,
            ]
        );
        // A named owner rule does not cover an unnamed request.
        let (ok, _) = covers(
            &[rule(&["get"], &[""], &["pods"], &["a"])],
            &[rule(&["get"], &[""], &["pods"], &[])],
        );
        assert!(!ok);
    }

    #[test]
    fn compact_string_quotes_like_go() {
        let r = url_rule(&["get"], &["/a\"b"]);
        assert_eq!(
            r.compact_string(),
            r#"{NonResourceURLs:["/a\"b"], Verbs:["get"]}"#
        );
    }
}
