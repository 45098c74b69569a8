//! The OpenAPI v3 document of one group version, as upstream's
//! `/openapi/v3/<gv>` documents are shaped: every resource path with its
//! operations (`x-kubernetes-action`, `x-kubernetes-group-version-kind`,
//! parameters, request bodies and responses referring to schemas), and under
//! `components.schemas` every schema those reach in the catalog, plus the
//! `<Kind>List` schemas and the meta types requests and responses carry.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use serde_json::{Map, Value, json};

use crate::api::registry::{self, KindInfo, Subresource};
use crate::api::schema::{self, REF_PREFIX};

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// The media types a resource answers in.
const ANSWERS: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// The media types a watch streams in.
const STREAMS: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
/// The patch media types skiff takes.
const PATCHES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Custom resources take no strategic merge patch (they have no patch
/// strategies); kubectl's client-side apply then sends a merge patch.
const CUSTOM_PATCHES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

/// `core` → `Core`, `rbac.authorization.k8s.io` → `RbacAuthorization`, as
/// upstream's operation ids spell groups.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The schema name of a kind's list: `io.k8s.api.apps.v1.DeploymentList`.
pub fn list_name(root: &str) -> String {
    format!("{root}List")
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

fn param(name: &str, location: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": location,
        "description": description,
        "required": location == "path",
        "schema": {"type": kind, "uniqueItems": true},
    })
}

fn query_params(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .filter_map(|name| {
            let (kind, description) = match *name {
                "allowWatchBookmarks" => ("boolean", "Ask for BOOKMARK events in a watch."),
                "continue" => ("string", "The continue token of the previous page."),
                "fieldSelector" => ("string", "Only objects whose fields match."),
                "labelSelector" => ("string", "Only objects whose labels match."),
                "limit" => ("integer", "At most this many objects; more pages follow."),
                "resourceVersion" => ("string", "Which version of the collection to read."),
                "resourceVersionMatch" => ("string", "How resourceVersion applies to a list."),
                "sendInitialEvents" => ("boolean", "Begin a watch with the current objects."),
                "timeoutSeconds" => ("integer", "End the list or watch after this long."),
                "watch" => ("boolean", "Watch for changes instead of listing."),
                "dryRun" => ("string", "All: run the request without persisting it."),
                "fieldManager" => ("string", "The name of the actor making the change."),
                "fieldValidation" => (
                    "string",
                    "Unknown or duplicate fields: Ignore drops them, Warn drops them with a warning (the default), Strict rejects the request.",
                ),
                "force" => ("boolean", "Apply: take over conflicting fields."),
                "gracePeriodSeconds" => ("integer", "Seconds before the object is deleted."),
                "orphanDependents" => ("boolean", "Deprecated: use propagationPolicy."),
                "propagationPolicy" => (
                    "string",
                    "Whether and how dependents are deleted: Orphan, Background or Foreground.",
                ),
                _ => return None,
            };
            Some(param(name, "query", kind, description))
        })
        .collect()
}

const LIST_QUERY: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_QUERY: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "orphanDependents",
    "propagationPolicy",
];

fn content(types: &[&str], schema_name: &str) -> Value {
    let schema = json!({"schema": reference(schema_name)});
    Value::Object(
        types
            .iter()
            .map(|t| (t.to_string(), schema.clone()))
            .collect(),
    )
}

fn responses(codes: &[&str], types: &[&str], schema_name: &str) -> Value {
    let mut out = Map::new();
    for code in codes {
        let description = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        out.insert(
            code.to_string(),
            json!({"description": description, "content": content(types, schema_name)}),
        );
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

/// One operation on a path.
struct Op<'a> {
    verb: &'a str,
    id: String,
    action: &'a str,
    gvk: (&'a str, &'a str, &'a str),
    query: &'a [&'a str],
    body: Option<Value>,
    responses: Value,
    tag: &'a str,
}

impl Op<'_> {
    fn render(self) -> Value {
        let (group, version, kind) = self.gvk;
        let mut op = json!({
            "tags": [self.tag],
            "description": format!("{} {}", self.action, kind),
            "operationId": self.id,
            "parameters": query_params(self.query),
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
        });
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        op
    }
}

fn body(types: &[&str], schema_name: &str) -> Value {
    json!({"content": content(types, schema_name), "required": true})
}

/// Where one kind's paths go and what they are called.
struct KindPaths<'a> {
    kind: &'a KindInfo,
    root: String,
    base: String,
    tag: String,
    /// `AppsV1`.
    prefix: String,
    /// `Namespaced` for namespaced kinds.
    scope: &'static str,
}

impl KindPaths<'_> {
    fn collection(&self) -> String {
        if self.kind.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                self.base, self.kind.plural
            )
        } else {
            format!("{}/{}", self.base, self.kind.plural)
        }
    }

    fn watch_collection(&self) -> String {
        if self.kind.namespaced {
            format!(
                "{}/watch/namespaces/{{namespace}}/{}",
                self.base, self.kind.plural
            )
        } else {
            format!("{}/watch/{}", self.base, self.kind.plural)
        }
    }

    fn id(&self, verb: &str, suffix: &str) -> String {
        format!(
            "{verb}{}{}{}{suffix}",
            self.prefix, self.scope, self.kind.kind
        )
    }

    fn patches(&self) -> &'static [&'static str] {
        if crate::api::crd::is_custom(self.kind.group, self.kind.kind) {
            CUSTOM_PATCHES
        } else {
            PATCHES
        }
    }

    fn gvk(&self) -> (&str, &str, &str) {
        (self.kind.group, self.kind.version, self.kind.kind)
    }

    fn path_params(&self, named: bool) -> Vec<Value> {
        let mut params = Vec::new();
        if named {
            params.push(param(
                "name",
                "path",
                "string",
                &format!("name of the {}", self.kind.kind),
            ));
        }
        if self.kind.namespaced {
            params.push(param(
                "namespace",
                "path",
                "string",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        params.push(param(
            "pretty",
            "query",
            "string",
            "If 'true', the output is pretty printed.",
        ));
        params
    }

    fn op<'s>(&'s self, verb: &'s str, action: &'s str, suffix: &str) -> Op<'s> {
        Op {
            verb,
            id: self.id(verb, suffix),
            action,
            gvk: self.gvk(),
            query: &[],
            body: None,
            responses: Value::Null,
            tag: &self.tag,
        }
    }

    fn add(&self, paths: &mut Map<String, Value>) {
        let root = self.root.as_str();
        let list = list_name(root);
        let collection = self.collection();
        let item = format!("{collection}/{{name}}");

        let mut list_op = self.op("list", "list", "");
        list_op.query = LIST_QUERY;
        list_op.responses = responses(&["200"], STREAMS, &list);
        let mut create = self.op("create", "post", "");
        create.query = WRITE_QUERY;
        create.body = Some(body(&["*/*"], root));
        create.responses = responses(&["200", "201", "202"], ANSWERS, root);
        let mut delete_all = self.op("delete", "deletecollection", "");
        delete_all.id = format!(
            "delete{}Collection{}{}",
            self.prefix, self.scope, self.kind.kind
        );
        delete_all.query = &[
            "continue",
            "dryRun",
            "fieldSelector",
            "gracePeriodSeconds",
            "labelSelector",
            "limit",
            "orphanDependents",
            "propagationPolicy",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
            "timeoutSeconds",
        ];
        delete_all.body = Some(body(&["*/*"], DELETE_OPTIONS));
        delete_all.responses = responses(&["200"], ANSWERS, STATUS);
        insert_path(
            paths,
            &collection,
            self.path_params(false),
            [list_op, create, delete_all],
        );

        let mut read = self.op("read", "get", "");
        read.responses = responses(&["200"], ANSWERS, root);
        let mut replace = self.op("replace", "put", "");
        replace.query = WRITE_QUERY;
        replace.body = Some(body(&["*/*"], root));
        replace.responses = responses(&["200", "201"], ANSWERS, root);
        let mut patch = self.op("patch", "patch", "");
        patch.query = PATCH_QUERY;
        patch.body = Some(body(self.patches(), PATCH));
        patch.responses = responses(&["200", "201"], ANSWERS, root);
        let mut delete = self.op("delete", "delete", "");
        delete.query = DELETE_QUERY;
        delete.body = Some(body(&["*/*"], DELETE_OPTIONS));
        delete.responses = responses(&["200", "202"], ANSWERS, STATUS);
        insert_path(
            paths,
            &item,
            self.path_params(true),
            [read, replace, patch, delete],
        );

        if self.kind.namespaced {
            let mut all = self.op("list", "list", "ForAllNamespaces");
            all.id = format!("list{}{}ForAllNamespaces", self.prefix, self.kind.kind);
            all.query = LIST_QUERY;
            all.responses = responses(&["200"], STREAMS, &list);
            let all_path = format!("{}/{}", self.base, self.kind.plural);
            insert_path(
                paths,
                &all_path,
                vec![param(
                    "pretty",
                    "query",
                    "string",
                    "If 'true', the output is pretty printed.",
                )],
                [all],
            );
        }

        let mut watch_list = self.op("watch", "watchlist", "List");
        watch_list.query = LIST_QUERY;
        watch_list.responses = responses(&["200"], STREAMS, WATCH_EVENT);
        insert_path(
            paths,
            &self.watch_collection(),
            self.path_params(false),
            [watch_list],
        );
        let mut watch_one = self.op("watch", "watch", "");
        watch_one.query = LIST_QUERY;
        watch_one.responses = responses(&["200"], STREAMS, WATCH_EVENT);
        insert_path(
            paths,
            &format!("{}/{{name}}", self.watch_collection()),
            self.path_params(true),
            [watch_one],
        );

        for sub in self.kind.subresources {
            self.add_subresource(paths, &item, *sub);
        }
    }

    fn add_subresource(&self, paths: &mut Map<String, Value>, item: &str, sub: Subresource) {
        let path = format!("{item}/{}", sub.name());
        let suffix = capitalize(sub.name());
        let (gvk, schema_name) = match sub.response_kind() {
            None => (self.gvk(), self.root.clone()),
            Some((g, v, k)) => match schema::catalog().root_name(g, v, k) {
                Some(name) => ((g, v, k), name.to_string()),
                None => return,
            },
        };
        let schema_name = schema_name.as_str();
        let mut ops = Vec::new();
        if sub.verbs().contains(&"get") {
            let mut read = self.op("read", "get", &suffix);
            read.gvk = gvk;
            read.responses = responses(&["200"], ANSWERS, schema_name);
            ops.push(read);
        }
        if sub.verbs().contains(&"update") {
            let mut replace = self.op("replace", "put", &suffix);
            replace.gvk = gvk;
            replace.query = WRITE_QUERY;
            replace.body = Some(body(&["*/*"], schema_name));
            replace.responses = responses(&["200", "201"], ANSWERS, schema_name);
            ops.push(replace);
        }
        if sub.verbs().contains(&"patch") {
            let mut patch = self.op("patch", "patch", &suffix);
            patch.gvk = gvk;
            patch.query = PATCH_QUERY;
            patch.body = Some(body(self.patches(), PATCH));
            patch.responses = responses(&["200", "201"], ANSWERS, schema_name);
            ops.push(patch);
        }
        if sub.verbs().contains(&"create") {
            let mut create = self.op("create", "post", &suffix);
            create.gvk = gvk;
            create.query = WRITE_QUERY;
            create.body = Some(body(&["*/*"], schema_name));
            create.responses = responses(&["200", "201", "202"], ANSWERS, schema_name);
            ops.push(create);
        }
        insert_path(paths, &path, self.path_params(true), ops);
    }
}

fn insert_path<'a>(
    paths: &mut Map<String, Value>,
    path: &str,
    parameters: Vec<Value>,
    ops: impl IntoIterator<Item = Op<'a>>,
) {
    let mut item = Map::new();
    for op in ops {
        let method = match op.verb {
            "list" | "read" | "watch" => "get",
            "create" => "post",
            "replace" => "put",
            "patch" => "patch",
            _ => "delete",
        };
        item.insert(method.into(), op.render());
    }
    item.insert("parameters".into(), Value::Array(parameters));
    paths.insert(path.to_string(), Value::Object(item));
}

/// The schema of `<Kind>List` for a kind whose schema is `root`.
fn list_schema(kind: &KindInfo, root: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {} objects.", kind.kind, kind.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {} objects.", kind.kind),
                "type": "array",
                "items": {"allOf": [reference(root)], "default": {}},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "allOf": [reference(LIST_META)],
                "default": {},
                "description": "Standard list metadata.",
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": kind.group, "version": kind.version, "kind": kind.list_kind()},
        ],
    })
}

/// Adds every definition `schema` refers to (transitively) to `names`.
fn collect_refs(schema: &Value, names: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                if names.insert(name.to_string()) {
                    if let Some(def) = schema::catalog().definition(name) {
                        collect_refs(def, names);
                    }
                }
            }
            for v in map.values() {
                collect_refs(v, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// The `gv` path segment of a group version: `api/v1`, `apis/apps/v1`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Upstream's component name of a custom kind: the reversed group, the
/// version and the kind (`com.example.v1.Widget`).
pub fn custom_schema_name(kind: &KindInfo) -> String {
    let mut parts: Vec<&str> = kind.group.split('.').rev().collect();
    parts.extend([kind.version, kind.kind]);
    parts.join(".")
}

/// The paths and the names and bodies of the extra (non-catalog) schemas of
/// one group version.
pub fn paths_and_lists(group: &str, version: &str) -> (Map<String, Value>, Map<String, Value>) {
    let catalog = schema::catalog();
    let base = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    let mut extra = Map::new();
    let tag = if group.is_empty() {
        format!("core_{version}")
    } else {
        format!(
            "{}_{version}",
            group.trim_end_matches(".k8s.io").replace(['.', '-'], "")
        )
    };
    for kind in registry::kinds_in(group, version) {
        let root = match catalog.root_name(kind.group, kind.version, kind.kind) {
            Some(root) => root.to_string(),
            None => {
                // A custom kind: its CRD version's schema.
                let Some(schema) = crate::api::crd::openapi_schema(kind) else {
                    continue;
                };
                let name = custom_schema_name(kind);
                extra.insert(name.clone(), schema);
                name
            }
        };
        extra.insert(list_name(&root), list_schema(kind, &root));
        KindPaths {
            kind,
            root,
            base: base.clone(),
            tag: tag.clone(),
            prefix: format!("{}{}", group_camel(group), capitalize(version)),
            scope: if kind.namespaced { "Namespaced" } else { "" },
        }
        .add(&mut paths);
    }
    extra.insert(
        PATCH.into(),
        json!({"description": "Patch is the body of a PATCH request, in the form its Content-Type names.", "type": "object"}),
    );
    (paths, extra)
}

/// The document of one group version. The catalog's schemas are borrowed,
/// not copied: the document exists to be serialized once.
#[derive(Serialize)]
pub struct Document {
    openapi: &'static str,
    info: Value,
    paths: Map<String, Value>,
    components: Components,
}

#[derive(Serialize)]
struct Components {
    schemas: BTreeMap<String, Cow<'static, Value>>,
}

/// The document of one group version.
pub fn document(group: &str, version: &str) -> Document {
    let catalog = schema::catalog();
    let (paths, extra) = paths_and_lists(group, version);
    let mut names = BTreeSet::new();
    for name in [STATUS, DELETE_OPTIONS, WATCH_EVENT] {
        collect_refs(&reference(name), &mut names);
    }
    for item in paths.values() {
        collect_refs(item, &mut names);
    }
    for schema in extra.values() {
        collect_refs(schema, &mut names);
    }
    let mut schemas = BTreeMap::new();
    for name in names {
        if let Some(def) = catalog.definition(&name) {
            let def = super::published(&name, def);
            schemas.insert(name, def);
        }
    }
    schemas.extend(extra.into_iter().map(|(k, v)| (k, Cow::Owned(v))));
    Document {
        openapi: "3.0.0",
        info: json!({"title": "Kubernetes", "version": super::VERSION}),
        paths,
        components: Components { schemas },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_upstream() {
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_camel(""), "Core");
        let doc = serde_json::to_value(document("apps", "v1")).expect("json");
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(
            item["patch"]["operationId"],
            "patchAppsV1NamespacedDeployment"
        );
        assert_eq!(
            item["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert_eq!(
            doc["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"],
            "listAppsV1DeploymentForAllNamespaces"
        );
    }

    #[test]
    fn components_hold_every_reachable_schema() {
        let doc = serde_json::to_value(document("apps", "v1")).expect("json");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.apps.v1.DeploymentList",
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            "io.k8s.api.autoscaling.v1.Scale",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let mut refs = BTreeSet::new();
        collect_refs(&doc, &mut refs);
        for name in refs {
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Node"));
        assert!(
            schemas["io.k8s.api.apps.v1.Deployment"]
                .get("required")
                .is_none()
        );
    }
}
