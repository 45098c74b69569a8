//! Server-side printing: the `meta.k8s.io` `Table` that `kubectl get` asks
//! for, with upstream's columns and cell values per kind
//! (`pkg/printers/internalversion/printers.go`).
//!
//! A [`Printer`] is a kind's column definitions and a function from an object
//! (in its storage form) to the row's cells. Cells are always computed for
//! every column, the `-o wide` ones (priority 1) included: kubectl picks the
//! columns it shows by priority, as with upstream's server-side printing.
//! Kinds without a printer get upstream's default table: Name and Created At.

mod apps;
mod cluster;
mod core;
pub mod custom;
pub mod format;
mod pod;

use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::api::convert::{from_storage, storage_row};
use crate::api::registry::KindInfo;
use crate::api::request::Query;
use crate::api::status::ApiStatus;

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// An OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub ty: &'static str,
    /// `name` for the object's name column, else empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 is always shown; 1 only with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, ty: &'static str, description: &'static str) -> Self {
        Column {
            name,
            ty,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The same column, shown only with `-o wide`.
    pub const fn wide(self) -> Self {
        Column {
            priority: 1,
            ..self
        }
    }

    pub fn to_value(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The object's name column, first in (almost) every table.
pub const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
/// The object's age, as a human duration.
pub const AGE: Column = Column::new("Age", "string", CREATED_DESC);
pub const CONTAINERS: Column = Column::new(
    "Containers",
    "string",
    "Names of each container in the template.",
)
.wide();
pub const IMAGES: Column = Column::new(
    "Images",
    "string",
    "Images referenced by each container in the template.",
)
.wide();

/// What the cells of a row are computed with: the current time, for ages.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Timestamp,
}

/// A kind's table: its columns and how an object becomes a row.
pub struct Printer {
    pub columns: &'static [Column],
    pub cells: fn(&Value, &Clock) -> Vec<Value>,
    /// Row conditions (pods mark completed rows, as upstream does).
    pub conditions: fn(&Value) -> Option<Value>,
}

/// No row conditions.
pub fn no_conditions(_: &Value) -> Option<Value> {
    None
}

/// Upstream's default table for kinds without a printer.
static DEFAULT: Printer = Printer {
    columns: &[
        NAME,
        Column {
            name: "Created At",
            ty: "date",
            format: "",
            description: CREATED_DESC,
            priority: 0,
        },
    ],
    cells: default_cells,
    conditions: no_conditions,
};

fn default_cells(obj: &Value, _: &Clock) -> Vec<Value> {
    vec![
        json!(format::name(obj)),
        obj.pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

/// The printer of a built-in kind, by its storage group and kind.
pub fn printer_for(group: &str, kind: &str) -> &'static Printer {
    let found = match group {
        "" => core::printer(kind).or_else(|| pod::printer(kind)),
        "apps" | "batch" | "autoscaling" | "policy" => apps::printer(kind),
        _ => cluster::printer(group, kind),
    };
    found.unwrap_or(&DEFAULT)
}

/// What goes into a row's `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// A request for a Table: its version and what rows carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRequest {
    /// `v1` or `v1beta1` of `meta.k8s.io`.
    pub version: &'static str,
    pub include: IncludeObject,
}

impl TableRequest {
    /// The Table the client asked for, if its Accept header's first usable
    /// media type is one; a bad `includeObject` is a 400 as upstream's.
    pub fn from_request(headers: &HeaderMap, query: &Query) -> Result<Option<Self>, ApiStatus> {
        let Some(version) = negotiate(headers) else {
            return Ok(None);
        };
        let include = match query.get("includeObject") {
            None | Some("Metadata") => IncludeObject::Metadata,
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            Some(other) => {
                return Err(ApiStatus::bad_request(format!(
                    "Unable to convert to Table as requested: includeObject: Unsupported value: \"{other}\": supported values: \"\", \"Metadata\", \"None\", \"Object\""
                )));
            }
        };
        Ok(Some(TableRequest { version, include }))
    }
}

/// The Table version of the first media type in Accept that the server can
/// produce: a Table of `meta.k8s.io` v1 or v1beta1, or plain JSON (`None`).
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())?;
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(media, "application/json" | "application/*" | "*/*") {
            continue;
        }
        let (mut as_, mut g, mut v) = (None, None, None);
        for param in parts {
            match param.split_once('=') {
                Some(("as", x)) => as_ = Some(x),
                Some(("g", x)) => g = Some(x),
                Some(("v", x)) => v = Some(x),
                _ => {}
            }
        }
        match (as_, g, v) {
            (None, _, _) => return None,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Some("v1"),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => return Some("v1beta1"),
            // A form this server does not produce: try the next one.
            _ => continue,
        }
    }
    None
}

/// One row of `obj` (storage form) for the table of `kind`.
fn row(
    kind: &'static KindInfo,
    printer: &Printer,
    obj: &Value,
    req: &TableRequest,
    clock: &Clock,
) -> Value {
    let object = match req.include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => from_storage(kind, obj.clone()),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    let mut row = json!({"cells": (printer.cells)(obj, clock), "object": object});
    if let Some(conditions) = (printer.conditions)(obj) {
        row["conditions"] = conditions;
    }
    row
}

/// The Table of `items` (storage form) of `kind`, with `list_meta`
/// (resourceVersion, continue, remainingItemCount). `headers` is false for
/// watch events after the first, which carry no column definitions.
pub fn table(
    kind: &'static KindInfo,
    items: &[Value],
    list_meta: Value,
    req: &TableRequest,
    headers: bool,
) -> Value {
    if let Some(columns) = crate::api::crd::printer_columns(kind) {
        return custom::table(&columns, items, list_meta, req, headers);
    }
    let storage = storage_row(kind);
    let printer = printer_for(storage.group, storage.kind);
    let clock = Clock {
        now: Timestamp::now(),
    };
    let columns: Vec<Value> = if headers {
        printer.columns.iter().map(Column::to_value).collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| row(kind, printer, obj, req, &clock))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{}", req.version),
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::{KINDS, lookup};
    use http::HeaderValue;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    fn query(q: &str) -> Query {
        match Query::parse(Some(q)) {
            Ok(q) => q,
            Err(e) => panic!("{q}: {e:?}"),
        }
    }

    #[test]
    fn negotiates_table_versions_in_order() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(&accept(kubectl)), Some("v1"));
        assert_eq!(
            negotiate(&accept(
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"
            )),
            Some("v1beta1")
        );
        assert_eq!(
            negotiate(&accept(
                "application/json;as=Table;v=v9;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io"
            )),
            Some("v1beta1")
        );
        assert_eq!(negotiate(&accept("application/json")), None);
        assert_eq!(
            negotiate(&accept(
                "application/json,application/json;as=Table;v=v1;g=meta.k8s.io"
            )),
            None
        );
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn include_object_values() {
        let h = accept("application/json;as=Table;v=v1;g=meta.k8s.io");
        let get = |q: &str| TableRequest::from_request(&h, &query(q)).map(|r| r.map(|r| r.include));
        assert_eq!(get("").ok(), Some(Some(IncludeObject::Metadata)));
        assert_eq!(
            get("includeObject=None").ok(),
            Some(Some(IncludeObject::None))
        );
        assert_eq!(
            get("includeObject=Object").ok(),
            Some(Some(IncludeObject::Object))
        );
        let Err(e) = get("includeObject=All") else {
            panic!("a bad includeObject is refused")
        };
        assert_eq!(e.code, 400);
        assert!(
            e.message.contains("Unsupported value: \"All\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn every_kind_has_cells_for_every_column() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let clock = Clock {
            now: Timestamp::UNIX_EPOCH,
        };
        for kind in KINDS {
            let p = printer_for(kind.group, kind.kind);
            let cells = (p.cells)(&obj, &clock);
            assert_eq!(cells.len(), p.columns.len(), "{}", kind.plural);
            assert_eq!(
                p.columns.iter().filter(|c| c.format == "name").count(),
                1,
                "{}",
                kind.plural
            );
        }
    }

    #[test]
    fn rows_carry_metadata_object_or_nothing() {
        let Some(kind) = lookup("", "v1", "configmaps") else {
            panic!("configmaps are served")
        };
        let cm = json!({"metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}});
        let mut req = TableRequest {
            version: "v1",
            include: IncludeObject::Metadata,
        };
        let t = table(
            kind,
            std::slice::from_ref(&cm),
            json!({"resourceVersion": "5"}),
            &req,
            true,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["columnDefinitions"][1]["name"], "Data");
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["cells"][1], 1);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "a");
        req.include = IncludeObject::Object;
        req.version = "v1beta1";
        let t = table(kind, std::slice::from_ref(&cm), json!({}), &req, false);
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(t["columnDefinitions"], json!([]));
        assert_eq!(t["rows"][0]["object"]["kind"], "ConfigMap");
        assert_eq!(t["rows"][0]["object"]["data"]["k"], "v");
        req.include = IncludeObject::None;
        let t = table(kind, &[cm], json!({}), &req, true);
        assert_eq!(t["rows"][0]["object"], Value::Null);
    }
}
