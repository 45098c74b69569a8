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

pub mod v2;
pub mod v3;

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

#[cfg(test)]
mod tests {

    /// A minimal protobuf reader for the tests: the fields of one message.
    pub fn fields(mut buf: &[u8]) -> Vec<(u32, Vec<u8>)> {
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

    pub fn field(buf: &[u8], n: u32) -> Vec<Vec<u8>> {
        fields(buf)
            .into_iter()
            .filter(|(f, _)| *f == n)
            .map(|(_, v)| v)
            .collect()
    }
}
