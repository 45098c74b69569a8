//! The order of merged lists. Upstream keeps the relative order of the
//! patch's items (or of `$setElementOrder/<field>`, which wins), keeps the
//! relative order of the items only the server had, and interleaves the two
//! by the server's order where it can. These helpers follow upstream's
//! `normalizeElementOrder`, `mergeSortedSlice` and the partition functions.

use serde_json::Value;

use super::errors::{Error, go_type, go_value};
use super::{DIRECTIVE, is_delete_directive};

/// What a list holds, as far as merging cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elements {
    Maps,
    Scalars,
}

/// The kind of the items of two lists, which must all be of one Go type
/// and not lists themselves.
pub fn elements(first: &[Value], second: &[Value]) -> Result<Elements, Error> {
    let mut seen: Option<&'static str> = None;
    for v in first.iter().chain(second) {
        let t = go_type(v);
        match seen {
            None if matches!(v, Value::Array(_)) => return Err(Error::ListOfLists),
            None => seen = Some(t),
            Some(prev) if prev != t => {
                return Err(Error::Other(format!(
                    "list element types are not identical: [{} {}]",
                    go_value(&Value::Array(first.to_vec())),
                    go_value(&Value::Array(second.to_vec()))
                )));
            }
            Some(_) => {}
        }
    }
    match seen {
        None => Err(Error::Other(
            "no elements in any of the given slices".into(),
        )),
        Some("map[string]interface {}") => Ok(Elements::Maps),
        Some(_) => Ok(Elements::Scalars),
    }
}

/// The value an item is identified by: its merge key for maps, itself
/// otherwise. An item without the key is identified by nothing (Go's nil).
fn identity<'a>(item: &'a Value, key: &str, elements: Elements) -> Option<&'a Value> {
    match elements {
        Elements::Maps => item.as_object().and_then(|m| m.get(key)),
        Elements::Scalars => Some(item),
    }
}

fn position(list: &[Value], item: &Value, key: &str, elements: Elements) -> Option<usize> {
    let id = identity(item, key, elements);
    list.iter().position(|v| identity(v, key, elements) == id)
}

/// The value of `key` in a list item, which must be a map that has it.
pub fn merge_key_value<'a>(item: &'a Value, key: &str) -> Result<&'a Value, Error> {
    let map = item
        .as_object()
        .ok_or_else(|| Error::bad_arg_type("map[string]interface {}", item))?;
    map.get(key).ok_or_else(|| Error::no_merge_key(item, key))
}

/// The index of the map whose `key` is `value`; every item must be a map.
pub fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, Error> {
    for (i, item) in list.iter().enumerate() {
        let Some(map) = item.as_object() else {
            return Err(Error::Other(format!("value for key {i} is not a map")));
        };
        if map.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `merged` into the items `by` names (by merge key for maps, by
/// value for scalars) and the rest, each in `merged`'s order.
pub fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let mut named = Vec::new();
    let mut rest = Vec::new();
    for item in merged {
        let found = if key.is_empty() {
            by.contains(&item)
        } else {
            find_by_key(by, key, merge_key_value(&item, key)?)?.is_some()
        };
        if found {
            named.push(item);
        } else {
            rest.push(item);
        }
    }
    Ok((named, rest))
}

/// Sorts `items` by their place in `order` (items `order` lacks keep their
/// relative order, after the others); for maps, every item of both must
/// carry the merge key, and `$patch: delete` items go last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: &str,
    elements: Elements,
) -> Result<Vec<Value>, Error> {
    let mut deletes = Vec::new();
    let mut kept = Vec::new();
    if elements == Elements::Maps {
        for v in items.iter().chain(order) {
            merge_key_value(v, key)?;
        }
        for v in items {
            if is_delete_directive(&v) {
                deletes.push(v);
            } else {
                kept.push(v);
            }
        }
    } else {
        kept = items;
    }
    kept.sort_by_key(|v| position(order, v, key, elements).unwrap_or(usize::MAX));
    kept.extend(deletes);
    Ok(kept)
}

/// The final order of a merged list: the patch's items in `patch_order`,
/// the server-only items in `server_order`, interleaved by `server_order`.
pub fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    elements: Elements,
) -> Result<Vec<Value>, Error> {
    let patch_items = sort_by_order(patch_items, patch_order, key, elements)?;
    let server_only = sort_by_order(server_only, server_order, key, elements)?;
    Ok(interleave(
        server_only,
        patch_items,
        server_order,
        key,
        elements,
    ))
}

/// Upstream's `mergeSortedSlice`: walks both lists and takes the
/// server-only item first only when both are in `server_order` and it comes
/// earlier there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: &str,
    elements: Elements,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position(server_order, l, key, elements),
                    position(server_order, r, key, elements),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Checks that the patch list's items (deletions and directives aside)
/// appear in `$setElementOrder` in the same relative order.
pub fn check_patch_order(patch: &[Value], order: &[Value], key: &str) -> Result<(), Error> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut items = Vec::new();
    for item in patch {
        if !key.is_empty() {
            if !item.is_object() {
                return Err(Error::bad_arg_type("map[string]interface {}", item));
            }
            if is_delete_directive(item) {
                continue;
            }
        }
        items.push(item);
    }
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        let equal = if key.is_empty() {
            items[p] == &order[o]
        } else {
            merge_key_value(items[p], key)? == merge_key_value(&order[o], key)?
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(Error::Other(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            go_value(&Value::Array(patch.to_vec())),
            go_value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}
