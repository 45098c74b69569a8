//! gnostic's `openapi.v2.Document` (`openapiv2/OpenAPIv2.proto`), the form
//! kubectl asks `/openapi/v2` for.

use serde_json::Value;

use super::{Msg, any, vendor_extensions};

fn schema(value: &Value) -> Msg {
    let mut m = Msg::default();
    let Value::Object(s) = value else {
        return m;
    };
    m.string_of(1, s, "$ref");
    m.string_of(2, s, "format");
    m.string_of(3, s, "title");
    m.string_of(4, s, "description");
    if let Some(d) = s.get("default") {
        m.message(5, any(d));
    }
    for (field, name) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(v) = s.get(name).and_then(Value::as_f64) {
            m.double(field, v);
        }
    }
    m.bool_of(8, s, "exclusiveMaximum");
    m.bool_of(10, s, "exclusiveMinimum");
    for (field, name) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(v) = s.get(name).and_then(Value::as_i64) {
            m.int64(field, v);
        }
    }
    m.string_of(13, s, "pattern");
    m.bool_of(16, s, "uniqueItems");
    m.strings_of(19, s, "required");
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(other @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(other));
            m.message(21, item);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            item.string(1, t);
            m.message(22, item);
        }
        Some(Value::Array(types)) => {
            let mut item = Msg::default();
            for t in types.iter().filter_map(Value::as_str) {
                item.bytes(1, t.as_bytes());
            }
            m.message(22, item);
        }
        _ => {}
    }
    if let Some(items) = s.get("items") {
        let mut item = Msg::default();
        match items {
            Value::Array(list) => list.iter().for_each(|i| item.message(1, schema(i))),
            other => item.message(1, schema(other)),
        }
        m.message(23, item);
    }
    for a in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(a));
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        let mut p = Msg::default();
        for (name, prop) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(prop));
            p.message(1, named);
        }
        m.message(25, p);
    }
    m.string_of(26, s, "discriminator");
    m.bool_of(27, s, "readOnly");
    if let Some(e) = s.get("example") {
        m.message(30, any(e));
    }
    vendor_extensions(&mut m, 31, s);
    m
}

fn parameter(value: &Value) -> Msg {
    let mut item = Msg::default();
    let Value::Object(p) = value else {
        return item;
    };
    let mut param = Msg::default();
    match p.get("in").and_then(Value::as_str) {
        Some("body") => {
            let mut body = Msg::default();
            body.string_of(1, p, "description");
            body.string_of(2, p, "name");
            body.string_of(3, p, "in");
            body.bool_of(4, p, "required");
            if let Some(s) = p.get("schema") {
                body.message(5, schema(s));
            }
            vendor_extensions(&mut body, 6, p);
            param.message(1, body);
        }
        location => {
            // QueryParameterSubSchema (3) and PathParameterSubSchema (4)
            // share their first fields; the rest differ by one number.
            let (which, shift) = if location == Some("path") {
                (4, 0)
            } else {
                (3, 1)
            };
            let mut sub = Msg::default();
            sub.bool_of(1, p, "required");
            sub.string_of(2, p, "in");
            sub.string_of(3, p, "description");
            sub.string_of(4, p, "name");
            sub.string_of(5 + shift, p, "type");
            sub.string_of(6 + shift, p, "format");
            sub.bool_of(19 + shift, p, "uniqueItems");
            vendor_extensions(&mut sub, 22 + shift, p);
            let mut non_body = Msg::default();
            non_body.message(which, sub);
            param.message(2, non_body);
        }
    }
    item.message(1, param);
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
    m.strings_of(6, op, "produces");
    m.strings_of(7, op, "consumes");
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameter(p));
    }
    if let Some(Value::Object(codes)) = op.get("responses") {
        let mut responses = Msg::default();
        for (code, resp) in codes {
            let mut r = Msg::default();
            r.string(1, resp["description"].as_str().unwrap_or(""));
            if let Some(s) = resp.get("schema") {
                let mut item = Msg::default();
                item.message(1, schema(s));
                r.message(2, item);
            }
            let mut value = Msg::default();
            value.message(1, r);
            let mut named = Msg::default();
            named.string(1, code);
            named.message(2, value);
            responses.message(1, named);
        }
        m.message(9, responses);
    }
    m.strings_of(10, op, "schemes");
    m.bool_of(11, op, "deprecated");
    vendor_extensions(&mut m, 13, op);
    m
}

fn path_item(value: &Value) -> Msg {
    let mut m = Msg::default();
    let Value::Object(item) = value else {
        return m;
    };
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameter(p));
    }
    vendor_extensions(&mut m, 10, item);
    m
}

/// The encoded `openapi.v2.Document` of a Swagger 2.0 JSON document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    let Value::Object(d) = doc else {
        return m.0;
    };
    m.string_of(1, d, "swagger");
    if let Some(Value::Object(info)) = d.get("info") {
        let mut i = Msg::default();
        i.string_of(1, info, "title");
        i.string_of(2, info, "version");
        i.string_of(3, info, "description");
        m.message(2, i);
    }
    m.string_of(3, d, "host");
    m.string_of(4, d, "basePath");
    m.strings_of(5, d, "schemes");
    m.strings_of(6, d, "consumes");
    m.strings_of(7, d, "produces");
    if let Some(Value::Object(paths)) = d.get("paths") {
        let mut p = Msg::default();
        for (path, item) in paths {
            let mut named = Msg::default();
            named.string(1, path);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        m.message(8, p);
    }
    if let Some(Value::Object(defs)) = d.get("definitions") {
        let mut p = Msg::default();
        for (name, def) in defs {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(def));
            p.message(1, named);
        }
        m.message(9, p);
    }
    vendor_extensions(&mut m, 16, d);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi::proto::tests::field;
    use serde_json::json;

    #[test]
    fn encodes_definitions_with_refs_types_and_extensions() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1"},
            "definitions": {
                "A": {
                    "type": "object",
                    "description": "an A",
                    "properties": {"b": {"$ref": "#/definitions/B", "description": "the b"}},
                    "x-kubernetes-group-version-kind": [{"group": "", "kind": "A", "version": "v1"}],
                },
            },
        });
        let bytes = encode(&doc);
        assert_eq!(field(&bytes, 1), vec![b"2.0".to_vec()]);
        let defs = &field(&bytes, 9)[0];
        let named = &field(defs, 1)[0];
        assert_eq!(field(named, 1), vec![b"A".to_vec()]);
        let a = &field(named, 2)[0];
        assert_eq!(field(a, 4), vec![b"an A".to_vec()]);
        assert_eq!(field(&field(a, 22)[0], 1), vec![b"object".to_vec()]);
        let props = &field(a, 25)[0];
        let b = &field(&field(props, 1)[0], 2)[0];
        assert_eq!(field(b, 1), vec![b"#/definitions/B".to_vec()]);
        let ext = &field(a, 31)[0];
        assert_eq!(
            field(ext, 1),
            vec![b"x-kubernetes-group-version-kind".to_vec()]
        );
        let yaml = String::from_utf8(field(&field(ext, 2)[0], 2)[0].clone()).expect("utf8");
        assert!(yaml.contains("\"kind\":\"A\""), "{yaml}");
    }
}
