//! gnostic's `openapi.v3.Document` (`openapiv3/OpenAPIv3.proto`), served
//! for `/openapi/v3/<gv>` when asked for protobuf.

use serde_json::Value;

use super::{Msg, any, vendor_extensions};

/// `SchemaOrReference`: a bare `$ref` is a Reference, anything else a
/// Schema.
fn schema_or_reference(value: &Value) -> Msg {
    let mut m = Msg::default();
    match value {
        Value::Object(s) if s.len() == 1 && s.contains_key("$ref") => {
            let mut r = Msg::default();
            r.string_of(1, s, "$ref");
            m.message(2, r);
        }
        other => m.message(1, schema(other)),
    }
    m
}

fn schema(value: &Value) -> Msg {
    let mut m = Msg::default();
    let Value::Object(s) = value else {
        return m;
    };
    m.bool_of(1, s, "nullable");
    m.bool_of(3, s, "readOnly");
    m.bool_of(4, s, "writeOnly");
    if let Some(e) = s.get("example") {
        m.message(7, any(e));
    }
    m.bool_of(8, s, "deprecated");
    m.string_of(9, s, "title");
    for (field, name) in [(10, "multipleOf"), (11, "maximum"), (13, "minimum")] {
        if let Some(v) = s.get(name).and_then(Value::as_f64) {
            m.double(field, v);
        }
    }
    m.bool_of(12, s, "exclusiveMaximum");
    m.bool_of(14, s, "exclusiveMinimum");
    for (field, name) in [
        (15, "maxLength"),
        (16, "minLength"),
        (18, "maxItems"),
        (19, "minItems"),
        (21, "maxProperties"),
        (22, "minProperties"),
    ] {
        if let Some(v) = s.get(name).and_then(Value::as_i64) {
            m.int64(field, v);
        }
    }
    m.string_of(17, s, "pattern");
    m.bool_of(20, s, "uniqueItems");
    m.strings_of(23, s, "required");
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, any(e));
    }
    m.string_of(25, s, "type");
    for (field, name) in [(26, "allOf"), (27, "oneOf"), (28, "anyOf")] {
        for a in s.get(name).and_then(Value::as_array).into_iter().flatten() {
            m.message(field, schema_or_reference(a));
        }
    }
    if let Some(not) = s.get("not") {
        m.message(29, schema(not));
    }
    if let Some(items) = s.get("items") {
        let mut item = Msg::default();
        item.message(1, schema_or_reference(items));
        m.message(30, item);
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        let mut p = Msg::default();
        for (name, prop) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema_or_reference(prop));
            p.message(1, named);
        }
        m.message(31, p);
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(32, item);
        }
        Some(other @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema_or_reference(other));
            m.message(32, item);
        }
        _ => {}
    }
    // DefaultType holds scalars only; object defaults (`{}`) are left out.
    match s.get("default") {
        Some(Value::Number(n)) => {
            let mut d = Msg::default();
            d.key(1, 1);
            d.0.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            m.message(33, d);
        }
        Some(Value::Bool(b)) => {
            let mut d = Msg::default();
            d.key(2, 0);
            d.varint(u64::from(*b));
            m.message(33, d);
        }
        Some(Value::String(text)) => {
            let mut d = Msg::default();
            d.bytes(3, text.as_bytes());
            m.message(33, d);
        }
        _ => {}
    }
    m.string_of(34, s, "description");
    m.string_of(35, s, "format");
    vendor_extensions(&mut m, 36, s);
    m
}

/// v3 `MediaTypes` of a `content` object.
fn media_types(content: &Value) -> Msg {
    let mut m = Msg::default();
    for (name, media) in content.as_object().into_iter().flatten() {
        let mut mt = Msg::default();
        if let Some(s) = media.get("schema") {
            mt.message(1, schema_or_reference(s));
        }
        let mut named = Msg::default();
        named.string(1, name);
        named.message(2, mt);
        m.message(1, named);
    }
    m
}

fn parameter(value: &Value) -> Msg {
    let mut p = Msg::default();
    if let Value::Object(obj) = value {
        p.string_of(1, obj, "name");
        p.string_of(2, obj, "in");
        p.string_of(3, obj, "description");
        p.bool_of(4, obj, "required");
        if let Some(s) = obj.get("schema") {
            p.message(10, schema_or_reference(s));
        }
    }
    let mut item = Msg::default();
    item.message(1, p);
    item
}

fn operation(value: &Value) -> Msg {
    let mut m = Msg::default();
    let Value::Object(op) = value else {
        return m;
    };
    m.strings_of(1, op, "tags");
    m.string_of(2, op, "summary");
    m.string_of(3, op, "description");
    m.string_of(5, op, "operationId");
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(6, parameter(p));
    }
    if let Some(body) = op.get("requestBody") {
        let mut b = Msg::default();
        if let Some(content) = body.get("content") {
            b.message(2, media_types(content));
        }
        b.boolean(
            3,
            body.get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
        let mut or_ref = Msg::default();
        or_ref.message(1, b);
        m.message(7, or_ref);
    }
    if let Some(Value::Object(codes)) = op.get("responses") {
        let mut responses = Msg::default();
        for (code, resp) in codes {
            let mut r = Msg::default();
            r.string(1, resp["description"].as_str().unwrap_or(""));
            if let Some(content) = resp.get("content") {
                r.message(3, media_types(content));
            }
            let mut or_ref = Msg::default();
            or_ref.message(1, r);
            let mut named = Msg::default();
            named.string(1, code);
            named.message(2, or_ref);
            responses.message(2, named);
        }
        m.message(8, responses);
    }
    m.bool_of(10, op, "deprecated");
    vendor_extensions(&mut m, 13, op);
    m
}

/// The encoded `openapi.v3.Document` of an OpenAPI 3.0 JSON document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    let Value::Object(d) = doc else {
        return m.0;
    };
    m.string_of(1, d, "openapi");
    if let Some(Value::Object(info)) = d.get("info") {
        let mut i = Msg::default();
        i.string_of(1, info, "title");
        i.string_of(2, info, "description");
        i.string_of(6, info, "version");
        m.message(2, i);
    }
    if let Some(Value::Object(paths)) = d.get("paths") {
        let mut p = Msg::default();
        for (path, item) in paths {
            let mut pi = Msg::default();
            if let Value::Object(item) = item {
                for (field, method) in [
                    (4, "get"),
                    (5, "put"),
                    (6, "post"),
                    (7, "delete"),
                    (8, "options"),
                    (9, "head"),
                    (10, "patch"),
                ] {
                    if let Some(op) = item.get(method) {
                        pi.message(field, operation(op));
                    }
                }
                for param in item
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    pi.message(13, parameter(param));
                }
                vendor_extensions(&mut pi, 14, item);
            }
            let mut named = Msg::default();
            named.string(1, path);
            named.message(2, pi);
            p.message(1, named);
        }
        m.message(4, p);
    }
    if let Some(Value::Object(schemas)) = d.get("components").and_then(|c| c.get("schemas")) {
        let mut list = Msg::default();
        for (name, s) in schemas {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema_or_reference(s));
            list.message(1, named);
        }
        let mut components = Msg::default();
        components.message(1, list);
        m.message(5, components);
    }
    vendor_extensions(&mut m, 9, d);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi::proto::tests::field;
    use serde_json::json;

    #[test]
    fn encodes_v3_schemas_and_references() {
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1"},
            "components": {"schemas": {
                "A": {"type": "object", "properties": {
                    "b": {"allOf": [{"$ref": "#/components/schemas/B"}], "description": "the b"},
                    "c": {"$ref": "#/components/schemas/C"},
                }},
            }},
        });
        let bytes = encode(&doc);
        assert_eq!(field(&bytes, 1), vec![b"3.0.0".to_vec()]);
        assert_eq!(field(&field(&bytes, 2)[0], 6), vec![b"v1".to_vec()]);
        let schemas = &field(&field(&bytes, 5)[0], 1)[0];
        let named = &field(schemas, 1)[0];
        let a = &field(&field(named, 2)[0], 1)[0];
        assert_eq!(field(a, 25), vec![b"object".to_vec()]);
        let props = &field(a, 31)[0];
        let entries = field(props, 1);
        let b = &field(&field(&entries[0], 2)[0], 1)[0];
        assert_eq!(field(b, 34), vec![b"the b".to_vec()]);
        let all_of = &field(b, 26)[0];
        let reference = &field(all_of, 2)[0];
        assert_eq!(
            field(reference, 1),
            vec![b"#/components/schemas/B".to_vec()]
        );
        let c = &field(&entries[1], 2)[0];
        assert_eq!(
            field(&field(c, 2)[0], 1),
            vec![b"#/components/schemas/C".to_vec()]
        );
    }
}
