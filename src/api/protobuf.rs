//! Decoding `application/vnd.kubernetes.protobuf` request bodies into JSON.
//!
//! kubectl's typed commands (`create configmap|secret|namespace|
//! serviceaccount|deployment|job|cronjob|role|rolebinding|clusterrole|
//! clusterrolebinding|pdb|priorityclass|quota`, `run`, `expose`, `drain`'s
//! evictions) always send protobuf. A body is the magic `k8s\0` followed
//! by a `runtime.Unknown` envelope (type meta and the raw object message).
//! The raw message is decoded by the schema table in [`schema`]; a field
//! the table does not know is an error rather than silently dropped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("the body is not a Kubernetes protobuf envelope")]
    NotEnvelope,
    #[error("truncated or malformed protobuf data")]
    Malformed,
    #[error("protobuf bodies of {0} are not supported by this server yet; send JSON")]
    UnknownKind(String),
    #[error("field {tag} of {message} is not supported by this server yet; send JSON")]
    UnknownField { message: &'static str, tag: u64 },
}

pub mod schema;

use schema::Ty::{Bool, Bytes, Int, IntOrString, MapBytes, MapQuantity, MapStr, Msg, Str, Time};
use schema::{Message, Ty, message_for};

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
}

/// One field as read from the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or(ProtoError::Malformed)?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(ProtoError::Malformed),
        };
        Ok(Some((key >> 3, wire)))
    }
}

fn string(data: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(data.to_vec()).map_err(|_| ProtoError::Malformed)
}

/// A map entry: key (field 1) and raw value (field 2).
fn entry(data: &[u8]) -> Result<(String, Wire<'_>), ProtoError> {
    let mut r = Reader { buf: data };
    let (mut key, mut value) = (String::new(), Wire::Bytes(&[]));
    while let Some((tag, w)) = r.field()? {
        match (tag, w) {
            (1, Wire::Bytes(b)) => key = string(b)?,
            (2, w) => value = w,
            _ => return Err(ProtoError::Malformed),
        }
    }
    Ok((key, value))
}

fn time(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let mut seconds = None;
    while let Some((tag, w)) = r.field()? {
        if let (1, Wire::Varint(v)) = (tag, w) {
            seconds = Some(v as i64);
        }
    }
    // A zero time is sent as an empty message; its JSON form is null.
    let Some(seconds) = seconds else {
        return Ok(Value::Null);
    };
    let t = jiff::Timestamp::from_second(seconds).map_err(|_| ProtoError::Malformed)?;
    Ok(json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn single_string(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let mut out = String::new();
    while let Some((tag, w)) = r.field()? {
        if let (1, Wire::Bytes(b)) = (tag, w) {
            out = string(b)?;
        }
    }
    Ok(json!(out))
}

fn int_or_string(data: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader { buf: data };
    let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
    while let Some((tag, w)) = r.field()? {
        match (tag, w) {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Bytes(b)) => text = string(b)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(text) } else { json!(int) })
}

fn value(ty: Ty, wire: Wire<'_>) -> Result<Value, ProtoError> {
    Ok(match (ty, wire) {
        (Str, Wire::Bytes(b)) => json!(string(b)?),
        (Bytes, Wire::Bytes(b)) => json!(B64.encode(b)),
        // int32 fields carry negative values sign-extended to 64 bits.
        (Int, Wire::Varint(v)) => json!(v as i64),
        (Bool, Wire::Varint(v)) => json!(v != 0),
        (Msg(m), Wire::Bytes(b)) => message(m, b)?,
        (Time, Wire::Bytes(b)) => time(b)?,
        (Ty::Quantity, Wire::Bytes(b)) => single_string(b)?,
        (IntOrString, Wire::Bytes(b)) => int_or_string(b)?,
        (Ty::Ignored, Wire::Bytes(_)) => json!({}),
        _ => return Err(ProtoError::Malformed),
    })
}

fn message(m: &'static Message, data: &[u8]) -> Result<Value, ProtoError> {
    let mut out = Map::new();
    let mut r = Reader { buf: data };
    while let Some((tag, wire)) = r.field()? {
        let field = m
            .fields
            .iter()
            .find(|f| f.tag == tag)
            .ok_or(ProtoError::UnknownField {
                message: m.name,
                tag,
            })?;
        if let Ty::Inline(inner) = field.ty {
            let Wire::Bytes(b) = wire else {
                return Err(ProtoError::Malformed);
            };
            if let Value::Object(fields) = message(inner, b)? {
                out.extend(fields);
            }
            continue;
        }
        let map_value = match field.ty {
            MapStr => Some(Str),
            MapBytes => Some(Bytes),
            MapQuantity => Some(Ty::Quantity),
            _ => None,
        };
        if let Some(vty) = map_value {
            let Wire::Bytes(b) = wire else {
                return Err(ProtoError::Malformed);
            };
            let (k, v) = entry(b)?;
            let slot = out.entry(field.name).or_insert_with(|| json!({}));
            if let Value::Object(map) = slot {
                map.insert(k, value(vty, v)?);
            }
        } else if field.repeated {
            let slot = out.entry(field.name).or_insert_with(|| json!([]));
            let packed_ints = matches!((field.ty, &wire), (Int | Bool, Wire::Bytes(_)));
            let items = if packed_ints {
                let Wire::Bytes(b) = wire else {
                    unreachable!("checked above")
                };
                let mut pr = Reader { buf: b };
                let mut items = Vec::new();
                while !pr.buf.is_empty() {
                    items.push(value(field.ty, Wire::Varint(pr.varint()?))?);
                }
                items
            } else {
                vec![value(field.ty, wire)?]
            };
            if let Value::Array(a) = slot {
                a.extend(items);
            }
        } else {
            // Go encodes unset plain strings as empty ones; its JSON omits them.
            match value(field.ty, wire)? {
                Value::String(s) if s.is_empty() => {}
                Value::Null => {}
                Value::Bool(false) if field.omit_zero => {}
                Value::Number(n) if field.omit_zero && n.as_i64() == Some(0) => {}
                v => {
                    out.insert(field.name.to_string(), v);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = body.strip_prefix(b"k8s\0").ok_or(ProtoError::NotEnvelope)?;
    let mut r = Reader { buf: envelope };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((tag, wire)) = r.field()? {
        match (tag, wire) {
            (1, Wire::Bytes(type_meta)) => {
                let mut t = Reader { buf: type_meta };
                while let Some((tag, w)) = t.field()? {
                    match (tag, w) {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let m = message_for(&api_version, &kind)
        .ok_or_else(|| ProtoError::UnknownKind(format!("{api_version} {kind}")))?;
    let mut obj = message(m, raw)?;
    if let Value::Object(map) = &mut obj {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body `kubectl create configmap a --from-literal=x=1` sends.
    const CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x1b\x0a\x11\x0a\x01a\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01x\x12\x011\x1a\x00\x22\x00";

    #[test]
    fn decodes_kubectls_configmap() {
        let Ok(obj) = decode(CONFIGMAP) else {
            panic!("decodes")
        };
        assert_eq!(obj["kind"], "ConfigMap");
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["metadata"]["name"], "a");
        assert_eq!(obj["data"], json!({"x": "1"}));
        assert_eq!(obj["metadata"].get("creationTimestamp"), None);
        assert_eq!(obj["metadata"].get("namespace"), None);
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert_eq!(decode(b"{}"), Err(ProtoError::NotEnvelope));
        assert!(decode(&CONFIGMAP[..30]).is_err());
        let unknown_kind = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Widget";
        assert!(matches!(
            decode(unknown_kind),
            Err(ProtoError::UnknownKind(_))
        ));
        // ConfigMap with a field 9 the table does not have.
        let unknown_field = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x02\x48\x01";
        assert!(matches!(
            decode(unknown_field),
            Err(ProtoError::UnknownField { tag: 9, .. })
        ));
    }

    #[test]
    fn wrapped_scalars_become_json_scalars() {
        // IntOrString: type=0, intVal=8080; Time: seconds=0.
        assert_eq!(
            int_or_string(b"\x08\x00\x10\x90\x3f").ok(),
            Some(json!(8080))
        );
        assert_eq!(
            int_or_string(b"\x08\x01\x1a\x04http").ok(),
            Some(json!("http"))
        );
        assert_eq!(time(b"\x08\x00").ok(), Some(json!("1970-01-01T00:00:00Z")));
        assert_eq!(time(b"").ok(), Some(Value::Null));
    }
}
