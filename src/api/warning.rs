//! Warnings for the client: `Warning: 299 - "<text>"` response headers,
//! which kubectl prints as `Warning: <text>`.
//!
//! As upstream's `warning.AddWarning(ctx, ...)`, anything on the request's
//! path may add one: the dispatcher runs each request in a scope that
//! collects them ([`collect`]) and writes them onto the response
//! ([`apply`]). Outside such a scope (in-process tests) they are dropped.

use std::cell::RefCell;
use std::future::Future;

use http::HeaderValue;
use http::header::WARNING;

tokio::task_local! {
    static WARNINGS: RefCell<Vec<String>>;
}

/// Adds a warning to the current request (once per distinct text).
pub fn add(text: impl Into<String>) {
    let text = text.into();
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&text) {
            w.push(text);
        }
    });
}

/// Runs `fut` collecting the warnings it adds.
pub async fn collect<F: Future>(fut: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let warnings = WARNINGS.with(|w| w.take());
            (out, warnings)
        })
        .await
}

/// `299 - "<text>"` with `"` and `\` escaped, as upstream writes them.
pub fn header_value(text: &str) -> Option<HeaderValue> {
    let mut quoted = String::with_capacity(text.len() + 10);
    quoted.push_str("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        // Control characters cannot travel in a header.
        quoted.push(if c.is_control() { ' ' } else { c });
    }
    quoted.push('"');
    HeaderValue::from_bytes(quoted.as_bytes()).ok()
}

/// Appends the warnings to a response's headers.
pub fn apply(resp: &mut axum::response::Response, warnings: &[String]) {
    for w in warnings {
        if let Some(v) = header_value(w) {
            resp.headers_mut().append(WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_are_collected_once_and_quoted() {
        let ((), warnings) = collect(async {
            add(r#"unknown field "spec.foo""#);
            add(r#"unknown field "spec.foo""#);
        })
        .await;
        assert_eq!(warnings, vec![r#"unknown field "spec.foo""#.to_string()]);
        assert_eq!(
            header_value(&warnings[0])
                .as_ref()
                .and_then(|v| v.to_str().ok()),
            Some(r#"299 - "unknown field \"spec.foo\"""#)
        );
        add("outside a scope is dropped");
    }
}
