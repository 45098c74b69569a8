//! The documents as gnostic's protobuf messages: `openapi.v2.Document`
//! (`openapiv2/OpenAPIv2.proto`), the form kubectl asks `/openapi/v2` for,
//! and `openapi.v3.Document` (`openapiv3/OpenAPIv3.proto`) for
//! `/openapi/v3/<gv>`.
//!
//! Encoded by hand from the JSON documents for the messages a Kubernetes
//! document uses: Document, Info, Paths, PathItem, Operation, parameters,
//! request bodies, responses, schemas. Vendor extensions and other
//! free-form values travel as gnostic's `Any` with their `yaml` text (JSON
//! is YAML).

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A string field from `obj[name]`.
    fn string_of(&mut self, field: u32, obj: &Map<String, Value>, name: &str) {
        if let Some(s) = obj.get(name).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings_of(&mut self, field: u32, obj: &Map<String, Value>, name: &str) {
        for s in obj
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool_of(&mut self, field: u32, obj: &Map<String, Value>, name: &str) {
        self.boolean(
            field,
            obj.get(name).and_then(Value::as_bool).unwrap_or(false),
        );
    }
}

/// gnostic `Any`: the value's YAML (here JSON) text.
fn any(value: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &format!("{value}\n"));
    m
}

/// `NamedAny` entries for the `x-` keys of an object.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.message(2, any(v));
        m.message(field, named);
    }
}

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
pub fn encode_document(doc: &Value) -> Vec<u8> {
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

/// v3 `SchemaOrReference`: a bare `$ref` is a Reference, anything else a
/// Schema.
fn schema_or_reference_v3(value: &Value) -> Msg {
    let mut m = Msg::default();
    match value {
        Value::Object(s) if s.len() == 1 && s.contains_key("$ref") => {
            let mut r = Msg::default();
            r.string_of(1, s, "$ref");
            m.message(2, r);
        }
        other => m.message(1, schema_v3(other)),
    }
    m
}

fn schema_v3(value: &Value) -> Msg {
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
            m.message(field, schema_or_reference_v3(a));
        }
    }
    if let Some(not) = s.get("not") {
        m.message(29, schema_v3(not));
    }
    if let Some(items) = s.get("items") {
        let mut item = Msg::default();
        item.message(1, schema_or_reference_v3(items));
        m.message(30, item);
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        let mut p = Msg::default();
        for (name, prop) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema_or_reference_v3(prop));
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
            item.message(1, schema_or_reference_v3(other));
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
fn media_types_v3(content: &Value) -> Msg {
    let mut m = Msg::default();
    for (name, media) in content.as_object().into_iter().flatten() {
        let mut mt = Msg::default();
        if let Some(s) = media.get("schema") {
            mt.message(1, schema_or_reference_v3(s));
        }
        let mut named = Msg::default();
        named.string(1, name);
        named.message(2, mt);
        m.message(1, named);
    }
    m
}

fn parameter_v3(value: &Value) -> Msg {
    let mut p = Msg::default();
    if let Value::Object(obj) = value {
        p.string_of(1, obj, "name");
        p.string_of(2, obj, "in");
        p.string_of(3, obj, "description");
        p.bool_of(4, obj, "required");
        if let Some(s) = obj.get("schema") {
            p.message(10, schema_or_reference_v3(s));
        }
    }
    let mut item = Msg::default();
    item.message(1, p);
    item
}

fn operation_v3(value: &Value) -> Msg {
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
        m.message(6, parameter_v3(p));
    }
    if let Some(body) = op.get("requestBody") {
        let mut b = Msg::default();
        if let Some(content) = body.get("content") {
            b.message(2, media_types_v3(content));
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
                r.message(3, media_types_v3(content));
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
pub fn encode_v3_document(doc: &Value) -> Vec<u8> {
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
                        pi.message(field, operation_v3(op));
                    }
                }
                for param in item
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    pi.message(13, parameter_v3(param));
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
            named.message(2, schema_or_reference_v3(s));
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
    use serde_json::json;

    /// A minimal protobuf reader for the tests: the fields of one message.
    fn fields(mut buf: &[u8]) -> Vec<(u32, Vec<u8>)> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            while let Some((&b, rest)) = buf.split_first() {
                *buf = rest;
                v |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let (field, wire) = ((key >> 3) as u32, key & 7);
            let value = match wire {
                0 => varint(&mut buf).to_le_bytes().to_vec(),
                1 => {
                    let (v, rest) = buf.split_at(8);
                    buf = rest;
                    v.to_vec()
                }
                _ => {
                    let len = varint(&mut buf) as usize;
                    let (v, rest) = buf.split_at(len);
                    buf = rest;
                    v.to_vec()
                }
            };
            out.push((field, value));
        }
        out
    }

    fn field(buf: &[u8], n: u32) -> Vec<Vec<u8>> {
        fields(buf)
            .into_iter()
            .filter(|(f, _)| *f == n)
            .map(|(_, v)| v)
            .collect()
    }

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
        let bytes = encode_document(&doc);
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
        let bytes = encode_v3_document(&doc);
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
