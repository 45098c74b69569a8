//! OpenAPI, served as upstream's kube-apiserver serves it.
//!
//! * `/openapi/v3`: the index, `paths` → `serverRelativeURL` with the
//!   document's content hash (SHA-512, upper-case hex), and
//!   `/openapi/v3/<gv>`: one document per group version ([`v3`]), as JSON
//!   or as gnostic's `openapi.v3.Document` protobuf ([`proto`]). A request
//!   with the current `hash` is answered `Cache-Control: public, immutable`
//!   (kubectl caches it on disk); a stale hash is redirected (301) to the
//!   current URL.
//! * `/openapi/v2`: the Swagger 2.0 document of every group version
//!   ([`v2`]), as JSON or, when asked with
//!   `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, as
//!   gnostic's `openapi.v2.Document` protobuf ([`proto`]) — the only form
//!   kubectl asks for.
//!
//! Everything is built on first use from [`crate::api::schema::catalog`] and
//! the kind table; the serialized bytes are cached, the `Value` trees they
//! came from are not. The answers carry an `ETag` and honour
//! `If-None-Match`.

pub mod proto;
pub mod v2;
pub mod v3;

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::api::registry;

pub use v3::gv_path;

/// The version the documents' `info` names.
pub const VERSION: &str = "v1.33.0+skiff";

const JSON: &str = "application/json";
const V3_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf";
const V3_PROTOBUF_OLD: &str = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf";
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const V2_PROTOBUF_OLD: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The built-in group versions, core first. Their documents never change
/// (CustomResourceDefinitions cannot define kinds in built-in groups).
pub(crate) fn built_in_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("", "v1")];
    for k in registry::KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// The group versions of the custom resources served now, sorted.
fn custom_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = crate::api::crd::served()
        .into_iter()
        .map(|k| (k.group, k.version))
        .filter(|gv| !registry::KINDS.iter().any(|k| (k.group, k.version) == *gv))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every group version served, core first, custom resources last.
fn all_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = built_in_group_versions();
    out.extend(custom_group_versions());
    out
}

/// The group version served at `/openapi/v3/<path>`.
pub fn lookup(path: &str) -> Option<(&'static str, &'static str)> {
    all_group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)
}

/// A catalog definition as the documents publish it. k8s-openapi makes
/// `metadata` a required field of every kind; upstream's schemas require it
/// only of core Events.
pub fn published(name: &str, def: &'static Value) -> Cow<'static, Value> {
    let requires_metadata = def
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|f| f == "metadata"));
    if !requires_metadata
        || def.get("x-kubernetes-group-version-kind").is_none()
        || name == "io.k8s.api.core.v1.Event"
    {
        return Cow::Borrowed(def);
    }
    let mut def = def.clone();
    if let Some(map) = def.as_object_mut() {
        if let Some(Value::Array(required)) = map.get_mut("required") {
            required.retain(|r| r != "metadata");
        }
        if map
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            map.remove("required");
        }
    }
    Cow::Owned(def)
}

/// A `std::io::Write` that only hashes, to hash a document without keeping
/// its bytes.
struct HashWriter(Sha512);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex_upper(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02X}")).collect()
}

/// The ETag of a JSON document: SHA-512 of its serialized form.
fn etag_of(doc: &impl serde::Serialize) -> String {
    let mut writer = HashWriter(Sha512::new());
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut writer, doc);
    hex_upper(&writer.0.finalize())
}

fn serialize(doc: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(doc).unwrap_or_default())
}

/// One group version's v3 document: its hash (known as soon as the index
/// is built) and its bytes (built when first asked for).
struct V3Doc {
    group: &'static str,
    version: &'static str,
    etag: OnceLock<String>,
    json: OnceLock<Bytes>,
    proto: OnceLock<Bytes>,
}

impl V3Doc {
    fn etag(&self) -> &str {
        self.etag
            .get_or_init(|| etag_of(&v3::document(self.group, self.version)))
    }

    fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            let bytes = serialize(&v3::document(self.group, self.version));
            release_freed_memory();
            bytes
        })
    }

    fn proto(&self) -> &Bytes {
        self.proto.get_or_init(|| {
            let doc =
                serde_json::to_value(v3::document(self.group, self.version)).unwrap_or_default();
            let bytes = Bytes::from(proto::v3::encode(&doc));
            release_freed_memory();
            bytes
        })
    }
}

fn v3_docs() -> &'static [V3Doc] {
    static DOCS: OnceLock<Vec<V3Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        built_in_group_versions()
            .into_iter()
            .map(|(group, version)| V3Doc {
                group,
                version,
                etag: OnceLock::new(),
                json: OnceLock::new(),
                proto: OnceLock::new(),
            })
            .collect()
    })
}

fn server_relative_url(path: &str, etag: &str) -> String {
    format!("/openapi/v3/{path}?hash={etag}")
}

/// The built-in part of the `/openapi/v3` index.
fn built_in_index() -> &'static Map<String, Value> {
    static INDEX: OnceLock<Map<String, Value>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut paths = Map::new();
        for doc in v3_docs() {
            let path = gv_path(doc.group, doc.version);
            let url = server_relative_url(&path, doc.etag());
            paths.insert(path, json!({"serverRelativeURL": url}));
        }
        release_freed_memory();
        paths
    })
}

/// The `/openapi/v3` index: the built-in group versions (cached), then
/// those of the custom resources served now, whose documents are small and
/// built on each request (CRDs come and go).
pub fn index() -> Bytes {
    static BUILT_IN: OnceLock<Bytes> = OnceLock::new();
    let custom = custom_group_versions();
    if custom.is_empty() {
        return BUILT_IN
            .get_or_init(|| serialize(&json!({"paths": built_in_index()})))
            .clone();
    }
    let mut paths = built_in_index().clone();
    for (group, version) in custom {
        let path = gv_path(group, version);
        let url = server_relative_url(&path, &etag_of(&v3::document(group, version)));
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    serialize(&json!({"paths": paths}))
}

/// The v2 document in its forms.
struct V2Doc {
    etag: OnceLock<String>,
    json: OnceLock<Bytes>,
    proto: OnceLock<Bytes>,
}

fn v2_doc() -> &'static V2Doc {
    static DOC: V2Doc = V2Doc {
        etag: OnceLock::new(),
        json: OnceLock::new(),
        proto: OnceLock::new(),
    };
    &DOC
}

impl V2Doc {
    /// The document's ETag, and the form asked for built from the same
    /// build of the document.
    fn get(&self, protobuf: bool) -> (&str, &Bytes) {
        let cell = if protobuf { &self.proto } else { &self.json };
        let mut built = None;
        let bytes = cell.get_or_init(|| {
            let doc = v2::document(&built_in_group_versions());
            if self.etag.get().is_none() {
                let _ = self.etag.set(etag_of(&doc));
            }
            let bytes = if protobuf {
                Bytes::from(proto::v2::encode(&doc))
            } else {
                serialize(&doc)
            };
            built = Some(());
            bytes
        });
        if built.is_some() {
            release_freed_memory();
        }
        let etag = self
            .etag
            .get_or_init(|| etag_of(&v2::document(&built_in_group_versions())));
        (etag, bytes)
    }
}

/// Building a document allocates and frees many small values; glibc keeps
/// freed memory in its arenas. Hand it back so that a server that answered
/// one `kubectl explain` idles as small as before.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no
    // preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The media-type clauses of an `Accept` header, most preferred first
/// (by `q`, then specific before wildcard, then as written).
fn accept_clauses(headers: &HeaderMap) -> Vec<(String, String)> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(f32, u8, usize, String, String)> = Vec::new();
    for (i, clause) in accept.split(',').enumerate() {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let Some((t, s)) = media.split_once('/') else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        let wild = u8::from(t == "*") + u8::from(s == "*");
        clauses.push((q, wild, i, t.to_string(), s.to_string()));
    }
    clauses.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    clauses.into_iter().map(|c| (c.3, c.4)).collect()
}

/// The first of `offers` (full media types) the client accepts, in the
/// client's order of preference.
fn negotiate<'a>(headers: &HeaderMap, offers: &[&'a str]) -> Option<&'a str> {
    for (t, s) in accept_clauses(headers) {
        for offer in offers {
            let Some((ot, os)) = offer.split_once('/') else {
                continue;
            };
            if (t == "*" || t == ot) && (s == "*" || s == os) {
                return Some(offer);
            }
        }
    }
    None
}

fn not_acceptable() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_ACCEPTABLE;
    resp
}

/// An answer with `ETag`, or 304 when the client already has it.
fn answer(headers: &HeaderMap, content_type: &str, etag: &str, body: &Bytes) -> Response {
    let quoted = format!("\"{etag}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let mut resp = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(body.clone()))
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

/// `GET /openapi/v3`.
pub fn serve_index(headers: &HeaderMap) -> Response {
    let body = index();
    answer(headers, JSON, &hex_upper(&Sha512::digest(&body)), &body)
}

/// `GET /openapi/v3/<gv>[?hash=...]`.
pub fn serve_v3(path: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    use axum::response::IntoResponse;
    let content_type = match negotiate(headers, &[JSON, V3_PROTOBUF, V3_PROTOBUF_OLD]) {
        Some(JSON) => JSON,
        Some(_) => V3_PROTOBUF,
        None => return not_acceptable(),
    };
    let cached = v3_docs()
        .iter()
        .find(|d| gv_path(d.group, d.version) == path);
    // A custom resources' document, built now.
    let built;
    let (etag, body): (&str, &Bytes) = match cached {
        Some(doc) if content_type == JSON => (doc.etag(), doc.json()),
        Some(doc) => (doc.etag(), doc.proto()),
        None => {
            let Some((group, version)) = custom_group_versions()
                .into_iter()
                .find(|(g, v)| gv_path(g, v) == path)
            else {
                return crate::api::status::ApiStatus::path_not_found().into_response();
            };
            let doc = v3::document(group, version);
            let etag = etag_of(&doc);
            let bytes = if content_type == JSON {
                serialize(&doc)
            } else {
                Bytes::from(proto::v3::encode(
                    &serde_json::to_value(&doc).unwrap_or_default(),
                ))
            };
            built = (etag, bytes);
            (&built.0, &built.1)
        }
    };
    let hash = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("hash="));
    if let Some(hash) = hash.filter(|h| !h.is_empty()) {
        if hash != etag {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = HeaderValue::from_str(&server_relative_url(path, etag)) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return resp;
        }
        let mut resp = answer(headers, content_type, etag, body);
        let h = resp.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * 365))
            .ok()
            .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string());
        if let Some(v) = expires.and_then(|e| HeaderValue::from_str(&e).ok()) {
            h.insert(header::EXPIRES, v);
        }
        return resp;
    }
    answer(headers, content_type, etag, body)
}

/// `GET /openapi/v2`: the built-in document is cached; while custom
/// resources are served, the document with them is built per request.
pub fn serve_v2(headers: &HeaderMap) -> Response {
    let content_type = match negotiate(headers, &[JSON, V2_PROTOBUF_OLD, V2_PROTOBUF]) {
        Some(JSON) => JSON,
        Some(_) => V2_PROTOBUF,
        None => return not_acceptable(),
    };
    let protobuf = content_type != JSON;
    if custom_group_versions().is_empty() {
        let (etag, body) = v2_doc().get(protobuf);
        return answer(headers, content_type, etag, body);
    }
    let doc = v2::document(&all_group_versions());
    let etag = etag_of(&doc);
    let body = if protobuf {
        Bytes::from(proto::v2::encode(&doc))
    } else {
        serialize(&doc)
    };
    drop(doc);
    release_freed_memory();
    answer(headers, content_type, &etag, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn negotiation_follows_preference() {
        let offers = [JSON, V2_PROTOBUF_OLD, V2_PROTOBUF];
        assert_eq!(
            negotiate(
                &accept("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
                &offers
            ),
            Some(V2_PROTOBUF_OLD)
        );
        assert_eq!(
            negotiate(&accept("application/json, */*"), &offers),
            Some(JSON)
        );
        assert_eq!(negotiate(&accept("*/*"), &offers), Some(JSON));
        assert_eq!(
            negotiate(
                &accept(
                    "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                ),
                &offers
            ),
            Some(V2_PROTOBUF)
        );
        assert_eq!(negotiate(&accept("text/html"), &offers), None);
        assert_eq!(negotiate(&HeaderMap::new(), &offers), Some(JSON));
    }

    #[test]
    fn index_points_at_hashed_documents() {
        let index: Value = serde_json::from_slice(&index()).expect("json");
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("url");
        let hash = url
            .strip_prefix("/openapi/v3/apis/apps/v1?hash=")
            .expect("hashed url");
        assert_eq!(hash.len(), 128);
        let doc = v3_docs().iter().find(|d| d.group == "apps").expect("apps");
        assert_eq!(hex_upper(&Sha512::digest(doc.json())), hash);
        assert_eq!(lookup("apis/apps/v1"), Some(("apps", "v1")));
    }

    #[test]
    fn stale_hash_redirects_and_current_is_immutable() {
        let h = accept("application/json");
        let resp = serve_v3("apis/apps/v1", Some("hash=ABC"), &h);
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
        let location = resp.headers()[header::LOCATION].to_str().unwrap_or("");
        let query = location.split_once('?').map(|(_, q)| q);
        let resp = serve_v3("apis/apps/v1", query, &h);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, immutable");
        let etag = resp.headers()[header::ETAG].clone();
        let mut again = h.clone();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve_v3("apis/apps/v1", None, &again).status(),
            StatusCode::NOT_MODIFIED
        );
        let proto = serve_v3(
            "apis/apps/v1",
            None,
            &accept("application/com.github.proto-openapi.spec.v3@v1.0+protobuf"),
        );
        assert_eq!(proto.status(), StatusCode::OK);
        assert_eq!(proto.headers()[header::CONTENT_TYPE], V3_PROTOBUF);
        assert_eq!(
            serve_v3("apis/apps/v1", None, &accept("text/html")).status(),
            StatusCode::NOT_ACCEPTABLE
        );
    }
}
