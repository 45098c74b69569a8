//! The table of a custom resource, from its CRD version's
//! `additionalPrinterColumns`: a Name column, then one column per entry
//! whose cell is the first result of its simple JSONPath, typed as upstream's
//! apiextensions table convertor types it (`integer`, `number`, `boolean`,
//! `date` as an age, `string` as JSONPath prints it).

use serde_json::{Value, json};

use super::format::{human_duration, name};
use super::{Clock, IncludeObject, NAME, TableRequest};

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub ty: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

impl CustomColumn {
    /// An entry of a CRD version's `additionalPrinterColumns`; `None` when it
    /// lacks a name, type or jsonPath.
    pub fn from_crd(col: &Value) -> Option<Self> {
        let field = |k: &str| col.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let column = CustomColumn {
            name: field("name"),
            ty: field("type"),
            format: field("format"),
            description: field("description"),
            priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path: field("jsonPath"),
        };
        (!column.name.is_empty() && !column.ty.is_empty() && !column.json_path.is_empty())
            .then_some(column)
    }
}

/// The column definitions: Name, then the custom columns.
pub fn column_definitions(columns: &[CustomColumn]) -> Vec<Value> {
    let mut defs = vec![NAME.to_value()];
    defs.extend(columns.iter().map(|c| {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        json!({
            "name": c.name,
            "type": c.ty,
            "format": c.format,
            "description": description,
            "priority": c.priority,
        })
    }));
    defs
}

/// The cells of one object: its name, then one per custom column (null when
/// the path finds nothing or the value does not fit the column's type).
pub fn cells(columns: &[CustomColumn], obj: &Value, clock: &Clock) -> Vec<Value> {
    let mut cells = vec![json!(name(obj))];
    cells.extend(columns.iter().map(|c| {
        match parse_path(&c.json_path).and_then(|p| first_result(obj, &p)) {
            Some(v) => typed_cell(&c.ty, v, clock),
            None => Value::Null,
        }
    }));
    cells
}

/// The Table of custom resources `items` with the given columns.
pub fn table(
    columns: &[CustomColumn],
    items: &[Value],
    list_meta: Value,
    req: &TableRequest,
    headers: bool,
) -> Value {
    let clock = Clock {
        now: jiff::Timestamp::now(),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let object = match req.include {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => obj.clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            json!({"cells": cells(columns, obj, &clock), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{}", req.version),
        "metadata": list_meta,
        "columnDefinitions": if headers { column_definitions(columns) } else { Vec::new() },
        "rows": rows,
    })
}

/// A step of a simple JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

/// Parses `.a.b[0]['c.d'].e\.f` (optionally in `{...}`, with a leading
/// `$`); `None` for anything else.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut field = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    field.push(chars[i]);
                    i += 1;
                }
                if field.is_empty() {
                    return None;
                }
                steps.push(if field == "*" {
                    Step::All
                } else {
                    Step::Field(field)
                });
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                let quoted = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                steps.push(match quoted {
                    Some(field) => Step::Field(field.to_string()),
                    None if inner == "*" => Step::All,
                    None => Step::Index(inner.parse().ok()?),
                });
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// The first value the path finds (missing keys find nothing).
fn first_result<'a>(obj: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(obj);
    };
    match (step, obj) {
        (Step::Field(f), Value::Object(m)) => first_result(m.get(f)?, rest),
        (Step::Index(i), Value::Array(a)) => {
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            first_result(a.get(usize::try_from(idx).ok()?)?, rest)
        }
        (Step::All, Value::Array(a)) => a.iter().find_map(|v| first_result(v, rest)),
        (Step::All, Value::Object(m)) => m.values().find_map(|v| first_result(v, rest)),
        _ => None,
    }
}

/// A value typed for its column, as upstream's `cellForJSONValue`.
fn typed_cell(ty: &str, v: &Value, clock: &Clock) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => json!(human_duration(clock.now.duration_since(t))),
            Err(_) => json!("<invalid>"),
        },
        ("string", v) => json!(text(v)),
        _ => Value::Null,
    }
}

/// How JSONPath prints a value: strings raw, maps and lists as JSON,
/// numbers as Go's `%v` does.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and
/// from 1e21 (`1e-05`, `1e+21`).
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, path: &str) -> CustomColumn {
        let Some(c) = CustomColumn::from_crd(&json!({"name": name, "type": ty, "jsonPath": path}))
        else {
            panic!("valid column")
        };
        c
    }

    fn clock() -> Clock {
        match "2024-01-01T01:00:00Z".parse() {
            Ok(now) => Clock { now },
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path(".spec.replicas"),
            Some(vec![
                Step::Field("spec".into()),
                Step::Field("replicas".into())
            ])
        );
        assert_eq!(
            parse_path("{.status.conditions[0]['type']}"),
            Some(vec![
                Step::Field("status".into()),
                Step::Field("conditions".into()),
                Step::Index(0),
                Step::Field("type".into())
            ])
        );
        assert_eq!(
            parse_path(".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(vec![
                Step::Field("metadata".into()),
                Step::Field("labels".into()),
                Step::Field("app.kubernetes.io/name".into())
            ])
        );
        assert_eq!(parse_path("spec"), None);
        assert_eq!(parse_path(".a[x]"), None);
        assert_eq!(parse_path(".a[0"), None);
    }

    #[test]
    fn typed_cells() {
        let obj = json!({
            "metadata": {"name": "w", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ratio": 0.5, "paused": false, "tags": ["a", "b"], "big": 1e21,
                     "port": 8080},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced"}]}
        });
        let columns = vec![
            col("Replicas", "integer", ".spec.replicas"),
            col("Ratio", "number", ".spec.ratio"),
            col("Paused", "boolean", ".spec.paused"),
            col("Age", "date", ".metadata.creationTimestamp"),
            col("Ready", "string", ".status.conditions[0].status"),
            col("Last", "string", ".status.conditions[-1].type"),
            col("Tags", "string", ".spec.tags"),
            col(
                "App",
                "string",
                ".metadata.labels.app\\.kubernetes\\.io/name",
            ),
            col("Missing", "string", ".spec.nothing"),
            col("Mismatch", "integer", ".metadata.name"),
            col("Big", "string", ".spec.big"),
            col("Port", "string", ".spec.port"),
            col("Types", "string", ".status.conditions[*].type"),
        ];
        let c = cells(&columns, &obj, &clock());
        assert_eq!(
            c,
            vec![
                json!("w"),
                json!(3),
                json!(0.5),
                json!(false),
                json!("60m"),
                json!("True"),
                json!("Synced"),
                json!("[\"a\",\"b\"]"),
                json!("web"),
                Value::Null,
                Value::Null,
                json!("1e+21"),
                json!("8080"),
                json!("Ready"),
            ]
        );
    }

    #[test]
    fn definitions_and_table() {
        let mut with_desc = col("Phase", "string", ".status.phase");
        with_desc.description = "The phase.".into();
        with_desc.priority = 1;
        let columns = vec![col("Size", "integer", ".spec.size"), with_desc];
        let defs = column_definitions(&columns);
        assert_eq!(defs.len(), 3);
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.size"
        );
        assert_eq!(
            (defs[2]["description"].clone(), defs[2]["priority"].clone()),
            (json!("The phase."), json!(1))
        );
        let req = TableRequest {
            version: "v1",
            include: IncludeObject::Object,
        };
        let obj = json!({"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "a"}, "spec": {"size": 2}});
        let t = table(
            &columns,
            &[obj],
            json!({"resourceVersion": "9"}),
            &req,
            true,
        );
        assert_eq!(t["rows"][0]["cells"], json!(["a", 2, null]));
        assert_eq!(t["rows"][0]["object"]["kind"], "W");
        assert_eq!(t["metadata"]["resourceVersion"], "9");
        assert!(CustomColumn::from_crd(&json!({"name": "x", "type": "string"})).is_none());
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(2.5e22), "2.5e+22");
        assert_eq!(go_float(100.0), "100");
    }
}
