//! Strategic merge patch (`application/strategic-merge-patch+json`), applied
//! as upstream's apimachinery `strategicpatch.StrategicMergeMapPatch` applies
//! it on the API server, driven by the kind's schema in the catalog
//! (`api/schema.rs`) instead of Go struct tags.
//!
//! It is a JSON merge patch (maps merge recursively, `null` deletes) with
//! these differences:
//! * a list whose field has patch strategy `merge` merges with the live
//!   list: lists of maps by the field's merge key (containers by `name`),
//!   lists of scalars as a union;
//! * `$patch: replace` on a map replaces it, `$patch: delete` empties it;
//!   in a merging list, `{$patch: delete, <key>: v}` removes the item and
//!   `{$patch: replace}` makes the patch's items the whole list;
//! * `$deleteFromPrimitiveList/<field>: [..]` removes scalars from a list;
//! * `$setElementOrder/<field>: [..]` gives the order of the merged list;
//! * `$retainKeys: [..]` clears the keys of a map it does not name.

mod errors;
mod order;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::api::schema::{Catalog, patching};
pub use errors::Error;
use order::Elements;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies `patch` to `original`, an object of the shape `schema` (a
/// catalog definition).
pub fn apply(
    catalog: &Catalog,
    schema: &Value,
    original: Map<String, Value>,
    patch: Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    merge_map(
        original,
        patch,
        Level {
            catalog,
            schema: Some(schema),
        },
    )
}

/// Where a merge is in the schema; `None` below fields the schema does not
/// know, where lists replace and maps merge.
#[derive(Clone, Copy)]
struct Level<'a> {
    catalog: &'a Catalog,
    schema: Option<&'a Value>,
}

/// How a field's value merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Strategy {
    /// Maps merge, lists replace.
    #[default]
    Default,
    /// Lists merge (by the merge key, or as a union of scalars).
    Merge,
    /// The patch's value replaces the live one.
    Replace,
}

#[derive(Debug, Clone, Copy, Default)]
struct FieldMeta<'a> {
    strategy: Strategy,
    merge_key: &'a str,
}

impl<'a> Level<'a> {
    /// The schema of field `key` of this level and how it merges.
    fn field(&self, key: &str) -> (Level<'a>, FieldMeta<'a>) {
        let catalog = self.catalog;
        let Some(schema) = self.schema.map(|s| catalog.resolve(s)) else {
            return (*self, FieldMeta::default());
        };
        if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
            let (strategy, merge_key) = patching::markers(prop);
            let strategies = strategy.unwrap_or("").split(',');
            let strategy = strategies
                .filter_map(|s| match s {
                    "merge" => Some(Strategy::Merge),
                    "replace" => Some(Strategy::Replace),
                    _ => None,
                })
                .next()
                .unwrap_or_default();
            let meta = FieldMeta {
                strategy,
                merge_key: merge_key.unwrap_or(""),
            };
            let level = Level {
                catalog,
                schema: Some(catalog.resolve(prop)),
            };
            return (level, meta);
        }
        let level = Level {
            catalog,
            schema: catalog.values(schema),
        };
        (level, FieldMeta::default())
    }

    /// The schema of the items of this (list) level.
    fn items(&self) -> Level<'a> {
        Level {
            catalog: self.catalog,
            schema: self.schema.and_then(|s| self.catalog.items(s)),
        }
    }
}

/// Whether a list item is `{$patch: delete, ...}`.
fn is_delete_directive(item: &Value) -> bool {
    item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

/// The field a `<prefix>/<field>` directive key names.
fn directive_field(key: &str, prefix: &str, error: Error) -> Result<String, Error> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ => Err(error),
    }
}

/// A patch value as it is stored when there is nothing to merge it with:
/// without `null`s (decoding drops them) and without directives.
fn strip(mut value: Value) -> Option<Value> {
    discard_nulls(&mut value);
    remove_directives(value)
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops maps carrying `$patch` and the other directive keys, as upstream's
/// `removeDirectives` (whose leftovers typed decoding then drops).
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter(|(k, _)| !is_directive_key(k))
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// Upstream's `mergeMap`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    level: Level<'_>,
) -> Result<Map<String, Value>, Error> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                let mut replaced = Value::Object(patch);
                discard_nulls(&mut replaced);
                Ok(match replaced {
                    Value::Object(map) => map,
                    _ => Map::new(),
                })
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(Error::bad_patch_type(
                directive,
                &Value::Object(patch.clone()),
            )),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, level)?;
    for (key, patch_value) in patch {
        let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = directive_field(&key, DELETE_FROM_PRIMITIVE_LIST, Error::BadPrimitiveList)?;
            (field, true)
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        match (original.remove(&key), patch_value) {
            (Some(Value::Object(live)), Value::Object(patch_map)) => {
                let (sub, meta) = level.field(&key);
                let merged = match meta.strategy {
                    Strategy::Replace => patch_map,
                    _ => merge_map(live, patch_map, sub)?,
                };
                original.insert(key, Value::Object(merged));
            }
            (Some(Value::Array(live)), Value::Array(patch_list)) => {
                let (sub, meta) = level.field(&key);
                let merged = merge_list(live, patch_list, sub.items(), meta, delete_list)?;
                original.insert(key, Value::Array(merged));
            }
            (live, patch_value) => {
                if delete_list {
                    if let Some(live) = live {
                        original.insert(key, live);
                    }
                } else if let Some(value) = strip(patch_value) {
                    original.insert(key, value);
                }
            }
        }
    }
    Ok(original)
}

/// `$retainKeys`: every key the patch sets must be listed; the live keys
/// not listed are cleared.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), Error> {
    let Some(retained) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retained) = retained else {
        return Err(Error::BadRetainKeys);
    };
    let kept = |k: &str| retained.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !kept(k) {
            return Err(Error::BadRetainKeys);
        }
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// The list under `key` of a map, if any; anything else there is an error.
fn list_at(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, Error> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(Error::bad_arg_type("[]interface {}", other)),
    }
}

/// `$setElementOrder/<field>`: merges the field's list (when the patch has
/// one) and orders the result; upstream's `mergePatchIntoOriginal`.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    level: Level<'_>,
) -> Result<(), Error> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for order_key in order_keys {
        let Some(order) = patch.remove(&order_key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(Error::bad_arg_type("[]interface {}", &order));
        };
        let field = directive_field(&order_key, SET_ELEMENT_ORDER, Error::BadSetElementOrder)?;
        let live = list_at(original, &field)?;
        let patched = list_at(patch, &field)?;
        let (sub, meta) = level.field(&field);
        order::check_patch_order(patched.as_deref().unwrap_or(&[]), &order, meta.merge_key)?;
        let merged = match (&live, &patched) {
            (Some(live), None) => live.clone(),
            (None, Some(patched)) => match remove_directives(Value::Array(patched.clone())) {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            (Some(live), Some(patched)) => {
                merge_list(live.clone(), patched.clone(), sub.items(), meta, false)?
            }
            (None, None) => continue,
        };
        let live = live.unwrap_or_default();
        if merged.is_empty() && live.is_empty() {
            // An empty list has no order to set. (Upstream never meets one:
            // its typed objects drop empty lists; stored objects here may
            // keep them.)
            original.insert(field.clone(), Value::Array(merged));
            patch.remove(&field);
            continue;
        }
        let (named, server_only) = order::partition(merged, &order, meta.merge_key)?;
        let elements = order::elements(&live, patched.as_deref().unwrap_or(&[]))?;
        let ordered =
            order::normalize(named, server_only, &order, &live, meta.merge_key, elements)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
    }
    Ok(())
}

/// Upstream's `mergeSliceHandler`: lists merge when their field says so
/// (and deletion lists always); otherwise the patch's list replaces.
fn merge_list(
    live: Vec<Value>,
    patch: Vec<Value>,
    items: Level<'_>,
    meta: FieldMeta<'_>,
    delete_list: bool,
) -> Result<Vec<Value>, Error> {
    if meta.strategy != Strategy::Merge && !delete_list {
        return Ok(patch);
    }
    if live.is_empty() && patch.is_empty() {
        return Ok(live);
    }
    let key = meta.merge_key;
    let elements = order::elements(&live, &patch)?;
    if elements == Elements::Scalars {
        if delete_list {
            return Ok(live.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(live.len() + patch.len());
        for v in live.iter().chain(&patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (named, server_only) = order::partition(merged, &patch, "")?;
        return order::normalize(named, server_only, &patch, &live, "", elements);
    }
    if key.is_empty() {
        return Err(Error::Other(
            "cannot merge lists without merge key for struct".into(),
        ));
    }
    let (live, patch) = apply_list_directives(live, patch, key)?;
    let mut merged = live.clone();
    for item in &patch {
        let value = order::merge_key_value(item, key)?;
        let found = order::find_by_key(&merged, key, value)?;
        match (found, item) {
            (Some(i), Value::Object(patch_map)) => {
                let live_map = match std::mem::take(&mut merged[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(live_map, patch_map.clone(), items)?);
            }
            _ => merged.extend(strip(item.clone())),
        }
    }
    let (named, server_only) = order::partition(merged, &patch, key)?;
    order::normalize(named, server_only, &patch, &live, key, elements)
}

/// The `$patch` items of a merging list of maps: `delete` removes the
/// live items with that key, `replace` makes the other patch items the
/// whole list. Returns the live list and the remaining patch items.
fn apply_list_directives(
    mut live: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    if !patch.iter().any(|v| v.get(DIRECTIVE).is_some()) {
        return Ok((live, patch));
    }
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(value) = item.get(key) else {
                    return Err(Error::no_merge_key(&item, key));
                };
                while let Some(i) = order::find_by_key(&live, key, value)? {
                    live.remove(i);
                }
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(Error::Other(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => return Err(Error::bad_patch_type(directive, &item)),
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((live, plain))
    }
}
