//! Cases mirroring upstream's `strategicpatch` tests, on real kinds: the
//! merging list of maps is `containers` (merge key `name`), the merging
//! list of scalars `finalizers`, the replacing lists `tolerations` and
//! `args`, the retainKeys map a Deployment's `strategy`.

use serde_json::{Value, json};

use super::{Error, apply};
use crate::api::schema::catalog;

fn patch_kind(group: &str, kind: &str, live: Value, patch: Value) -> Result<Value, Error> {
    let version = "v1";
    let catalog = catalog();
    let Some(schema) = catalog.root(group, version, kind) else {
        panic!("no schema for {kind}")
    };
    let (Value::Object(live), Value::Object(patch)) = (live, patch) else {
        panic!("objects")
    };
    apply(catalog, schema, live, patch).map(Value::Object)
}

fn pod(live: Value, patch: Value) -> Value {
    match patch_kind("", "Pod", live, patch) {
        Ok(v) => v,
        Err(e) => panic!("patch failed: {e}"),
    }
}

fn pod_err(live: Value, patch: Value) -> Error {
    match patch_kind("", "Pod", live, patch) {
        Ok(v) => panic!("patch should fail, got {v}"),
        Err(e) => e,
    }
}

fn containers(names: &[(&str, &str)]) -> Value {
    json!({"spec": {"containers": names.iter().map(|(n, i)| json!({"name": n, "image": i})).collect::<Vec<_>>()}})
}

fn names(obj: &Value) -> Vec<String> {
    obj["spec"]["containers"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn maps_merge_and_null_deletes() {
    let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}});
    let out = pod(
        live,
        json!({"metadata": {"labels": {"a": null, "c": "3", "gone": null}}}),
    );
    assert_eq!(
        out["metadata"],
        json!({"labels": {"b": "2", "c": "3"}, "name": "p"})
    );
}

#[test]
fn added_values_lose_their_nulls_and_directives() {
    let out = pod(
        json!({"metadata": {"name": "p"}}),
        json!({"spec": {"nodeSelector": {"a": "1", "b": null}, "initContainers": [{"name": "hello"}, {"$patch": "delete", "name": "x"}]}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({"a": "1"}));
    assert_eq!(out["spec"]["initContainers"], json!([{"name": "hello"}]));
}

#[test]
fn merging_lists_merge_by_key() {
    let live = containers(&[("a", "a:1"), ("b", "b:1")]);
    let out = pod(live.clone(), containers(&[("b", "b:2")]));
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
    );
    // A new item without $setElementOrder goes before the server's items,
    // as upstream's mergeSortedSlice puts it.
    let out = pod(live, containers(&[("c", "c:1")]));
    assert_eq!(names(&out), ["c", "a", "b"]);
}

#[test]
fn merging_lists_keep_patch_order_and_server_order() {
    // upstream: "preserve the order from the patch in a merging list 2"
    let live = containers(&[("1", "x"), ("2", "b"), ("3", "x")]);
    let out = pod(live, containers(&[("3", "c"), ("1", "a")]));
    assert_eq!(names(&out), ["2", "3", "1"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "c");
}

#[test]
fn replacing_lists_replace() {
    let live = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "c", "args": ["x", "y"]}]}});
    let out = pod(
        live,
        json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "c", "args": ["z"]}]}}),
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["z"]));
}

#[test]
fn scalar_merging_lists_are_unions() {
    let live = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = pod(live, json!({"metadata": {"finalizers": ["c", "a"]}}));
    // "c" is new to the server, so it leads; "b" follows "a" as it did.
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn patch_delete_removes_list_items_and_empties_maps() {
    let live = json!({"spec": {"containers": [{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}]}, "metadata": {"labels": {"a": "1"}}});
    let out = pod(
        live,
        json!({"spec": {"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}, "metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "2", "image": "a"}])
    );
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn patch_replace_replaces_lists_and_maps() {
    let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "metadata": {"labels": {"a": "1"}}});
    let out = pod(
        live,
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}, "metadata": {"labels": {"$patch": "replace", "b": "2"}}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "c"}]));
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"containers": [{"$patch": "replace"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([]));
}

#[test]
fn bad_directives_fail_as_upstream() {
    let live = containers(&[("a", "x")]);
    let err = pod_err(
        live.clone(),
        json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
    );
    assert_eq!(
        err.to_string(),
        "merging lists cannot yet be specified in the patch"
    );
    let err = pod_err(live.clone(), json!({"spec": {"$patch": "bogus"}}));
    assert_eq!(
        err.to_string(),
        "unknown patch type: bogus in map: map[$patch:bogus]"
    );
    let err = pod_err(live, json!({"spec": {"containers": [{"image": "nginx"}]}}));
    assert_eq!(
        err.to_string(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
    assert_eq!(err.into_status().code, 500);
}

#[test]
fn delete_from_primitive_list() {
    let live = json!({"metadata": {"finalizers": ["a", "b", "c"]}, "spec": {"containers": [{"name": "c", "args": ["x", "y"]}]}});
    let out = pod(
        live,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"], "$deleteFromPrimitiveList/missing": ["q"]},
               "spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["x"]}]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    assert!(out["metadata"].get("missing").is_none());
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["y"]));
    let err = pod_err(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveList": ["b"]}}),
    );
    assert_eq!(err, Error::BadPrimitiveList);
    assert_eq!(err.into_status().code, 400);
}

#[test]
fn set_element_order_orders_the_result() {
    // upstream: "delete items in lists of scalars"
    let out = pod(
        json!({"metadata": {"finalizers": ["1", "2", "3", "4"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["1", "2", "4"]));
    // upstream: "$setElementOrder contains item that is not present"
    let out = pod(
        json!({"metadata": {"finalizers": ["1", "3"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["3", "1"]));
    // A reorder plus a change, as kubectl sends it. The server-only "s"
    // came before "c" on the server, so it leads (upstream's interleave).
    let live = containers(&[("a", "x"), ("b", "x"), ("s", "x"), ("c", "x")]);
    let out = pod(
        live,
        json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}], "containers": [{"name": "b", "image": "y"}]}}),
    );
    assert_eq!(names(&out), ["s", "c", "b", "a"]);
    assert_eq!(out["spec"]["containers"][2]["image"], "y");
    let out = pod(
        containers(&[("a", "x"), ("b", "x")]),
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
    );
    assert_eq!(names(&out), ["b", "a"]);
    let out = pod(
        json!({"metadata": {"finalizers": []}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!([]));
}

#[test]
fn set_element_order_must_match_the_patch() {
    // upstream: "should check if order in $setElementOrder and patch list match"
    let err = pod_err(
        containers(&[("1", "x"), ("3", "x"), ("2", "x")]),
        json!({"spec": {"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
                        "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}}),
    );
    assert!(
        err.to_string()
            .contains("doesn't match $setElementOrder list"),
        "{err}"
    );
    let err = pod_err(
        json!({"metadata": {}}),
        json!({"metadata": {"$setElementOrder": ["a"]}}),
    );
    assert_eq!(err, Error::BadSetElementOrder);
}

fn deployment(live: Value, patch: Value) -> Result<Value, Error> {
    patch_kind("apps", "Deployment", live, patch)
}

#[test]
fn retain_keys_clears_unlisted_keys() {
    let live =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let out = deployment(
        live.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(
        out.ok().map(|o| o["spec"].clone()),
        Some(json!({"strategy": {"type": "Recreate"}}))
    );
    // Without the directive, a retainKeys field merges as any map.
    let out = deployment(
        live.clone(),
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(
        out.ok()
            .map(|o| o["spec"]["strategy"]["rollingUpdate"].clone()),
        Some(json!({"maxSurge": 1}))
    );
    let err = deployment(
        live,
        json!({"spec": {"strategy": {"$retainKeys": ["rollingUpdate"], "type": "Recreate"}}}),
    );
    assert_eq!(err.err(), Some(Error::BadRetainKeys));
}

#[test]
fn retain_keys_in_merging_list_items() {
    // kubectl switches a volume's source with $retainKeys.
    let live = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}});
    let out = pod(
        live,
        json!({"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}])
    );
}

#[test]
fn lists_of_lists_and_mixed_lists_fail() {
    let err = pod_err(
        json!({"metadata": {"finalizers": []}}),
        json!({"metadata": {"finalizers": [["a"]]}}),
    );
    assert_eq!(err, Error::ListOfLists);
    assert_eq!(err.into_status().code, 422);
    let err = pod_err(
        json!({"metadata": {"finalizers": ["a"]}}),
        json!({"metadata": {"finalizers": [1]}}),
    );
    assert_eq!(
        err.to_string(),
        "list element types are not identical: [[a] [1]]"
    );
}

#[test]
fn type_changes_take_the_patch_value() {
    let out = pod(
        json!({"spec": {"nodeSelector": "odd", "containers": {"x": 1}}}),
        json!({"spec": {"nodeSelector": {"a": "1"}, "containers": [{"name": "c"}]}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({"a": "1"}));
    assert_eq!(out["spec"]["containers"], json!([{"name": "c"}]));
}

#[test]
fn three_way_patch_from_kubectl_apply() {
    // What kubectl apply sends after an env var was removed, an image
    // changed and a label dropped, against a live object others changed.
    let live = json!({
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "x", "owner": "ops"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"}},
        "spec": {"containers": [{"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent",
                                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}]}
    });
    let patch = json!({
        "metadata": {"labels": {"tier": null}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
        "spec": {"$setElementOrder/containers": [{"name": "web"}],
                 "containers": [{"name": "web", "image": "web:2",
                                 "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                                 "env": [{"$patch": "delete", "name": "B"}]}]}
    });
    let out = pod(live, patch);
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "owner": "ops"})
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "new"
    );
    let web = &out["spec"]["containers"][0];
    assert_eq!(web["image"], "web:2");
    assert_eq!(web["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        web["env"],
        json!([{"name": "C", "value": "3"}, {"name": "A", "value": "1"}])
    );
}

#[test]
fn fields_the_schema_lacks_merge_like_json_merge_patch() {
    let out = pod(
        json!({"spec": {"unknownList": [1, 2], "unknownMap": {"a": 1}}}),
        json!({"spec": {"unknownList": [3], "unknownMap": {"b": 2}}}),
    );
    assert_eq!(out["spec"]["unknownList"], json!([3]));
    assert_eq!(out["spec"]["unknownMap"], json!({"a": 1, "b": 2}));
}
