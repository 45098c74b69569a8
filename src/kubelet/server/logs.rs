//! `/containerLogs/{namespace}/{pod}/{container}`: a container's output
//! from the CRI log file the runtime writes, with upstream's options
//! (`follow`, `previous`, `tailLines`, `sinceSeconds`, `sinceTime`,
//! `timestamps`, `limitBytes`).
//!
//! The CRI log format is one record per line,
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`, where `P` marks a
//! partial record that the next one continues (a long line split by the
//! runtime) and `F` the end of a line. Records are joined into lines; a
//! line carries the time of its first record.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use k8s_cri::v1::ContainerStatusRequest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::streams::{CONTAINER_RUNNING, instances, sandbox};
use super::{Failure, Shared, flag, query_pairs, values};

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How often a followed log's container is checked for having exited.
const FOLLOW_STATE_EVERY: u32 = 4;

/// One line of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: jiff::Timestamp,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: Vec<u8>,
}

/// Joins CRI log records into lines as they arrive.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes after the last newline seen.
    rest: Vec<u8>,
    /// A line whose records so far were partial.
    open: Option<LogLine>,
}

impl Parser {
    /// Feeds `bytes` of the file; returns the lines they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        self.rest.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(end) = self.rest[start..].iter().position(|b| *b == b'\n') {
            let record = &self.rest[start..start + end];
            start += end + 1;
            let Some((time, stream, partial, text)) = parse_record(record) else {
                continue;
            };
            let line = self.open.get_or_insert_with(|| LogLine {
                time,
                stream: stream.to_string(),
                text: Vec::new(),
            });
            line.text.extend_from_slice(text);
            if !partial && let Some(mut done) = self.open.take() {
                done.text.push(b'\n');
                lines.push(done);
            }
        }
        self.rest.drain(..start);
        lines
    }
}

/// Splits one record into (time, stream, partial, text); `None` for a
/// record that is not in the CRI format.
fn parse_record(record: &[u8]) -> Option<(jiff::Timestamp, &str, bool, &[u8])> {
    let mut fields = record.splitn(4, |b| *b == b' ');
    let time: jiff::Timestamp = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tags = std::str::from_utf8(fields.next()?).ok()?;
    let partial = tags.split(':').any(|t| t == "P");
    let text = fields.next().unwrap_or_default();
    Some((time, stream, partial, text))
}

/// Upstream's output time format: RFC 3339 with nine fraction digits.
pub fn format_time(time: jiff::Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        time.strftime("%Y-%m-%dT%H:%M:%S"),
        time.subsec_nanosecond().max(0)
    )
}

/// The options of a log request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub since: Option<jiff::Timestamp>,
}

impl LogOptions {
    /// Reads the query parameters; malformed ones are refused.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let number = |key: &str| -> Result<Option<i64>, String> {
            match values(pairs, key).last() {
                None | Some(&"") => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("{key}: invalid value {v:?}: must be an integer")),
            }
        };
        let non_negative = |key: &str, v: Option<i64>, min: i64| -> Result<Option<u64>, String> {
            match v {
                Some(n) if n < min => Err(format!("{key}: must be greater than or equal to {min}")),
                Some(n) => Ok(Some(n as u64)),
                None => Ok(None),
            }
        };
        let since_seconds = non_negative("sinceSeconds", number("sinceSeconds")?, 1)?;
        let since_time = match values(pairs, "sinceTime").last() {
            None | Some(&"") => None,
            Some(v) => Some(
                v.parse::<jiff::Timestamp>()
                    .map_err(|_| format!("sinceTime: invalid value {v:?}: must be RFC 3339"))?,
            ),
        };
        if since_seconds.is_some() && since_time.is_some() {
            return Err("at most one of sinceTime or sinceSeconds may be specified".into());
        }
        let since = match since_seconds {
            Some(s) => jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(
                    s.min(i64::MAX as u64) as i64
                ))
                .ok(),
            None => since_time,
        };
        Ok(LogOptions {
            follow: flag(pairs, "follow"),
            previous: flag(pairs, "previous"),
            timestamps: flag(pairs, "timestamps"),
            tail_lines: non_negative("tailLines", number("tailLines")?, 0)?,
            limit_bytes: non_negative("limitBytes", number("limitBytes")?, 1)?,
            since,
        })
    }
}

/// Formats the lines that pass `options`' time filter, counting down the
/// byte limit; the bool is false once the limit is reached.
fn render(lines: Vec<LogLine>, options: &LogOptions, budget: &mut Option<u64>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for line in lines {
        if options.since.is_some_and(|since| line.time < since) {
            continue;
        }
        let mut text = Vec::new();
        if options.timestamps {
            text.extend_from_slice(format_time(line.time).as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(&line.text);
        if let Some(left) = budget {
            let take = (*left).min(text.len() as u64) as usize;
            out.extend_from_slice(&text[..take]);
            *left -= take as u64;
            if *left == 0 {
                return (out, false);
            }
        } else {
            out.extend_from_slice(&text);
        }
    }
    (out, true)
}

/// The last `n` lines of `lines` (all when `n` is `None`).
fn tail(mut lines: Vec<LogLine>, n: Option<u64>) -> Vec<LogLine> {
    if let Some(n) = n {
        let keep = usize::try_from(n).unwrap_or(usize::MAX);
        if lines.len() > keep {
            lines.drain(..lines.len() - keep);
        }
    }
    lines
}

pub(super) async fn container_logs(
    State(shared): State<Shared>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    serve(shared, namespace, pod, container, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn serve(
    shared: Shared,
    namespace: String,
    pod: String,
    container: String,
    req: Request,
) -> Result<Response, Failure> {
    let options =
        LogOptions::parse(&query_pairs(req.uri().query())).map_err(Failure::bad_request)?;
    let waiting = || {
        Failure::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        ))
    };
    // No sandbox yet: the pod is still being set up.
    let sandbox = match sandbox(&shared, &namespace, &pod, None).await {
        Ok(s) => s,
        Err(f) if f.status == http::StatusCode::NOT_FOUND => return Err(waiting()),
        Err(f) => return Err(f),
    };
    let all = instances(&shared, &sandbox, &container).await?;
    let chosen = if options.previous {
        all.get(1).ok_or_else(|| {
            Failure::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            ))
        })?
    } else {
        all.first().ok_or_else(waiting)?
    };
    let status = shared
        .cri
        .clone()
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: chosen.id.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?
        .into_inner()
        .status
        .unwrap_or_default();
    let path = PathBuf::from(&status.log_path);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        // Not written yet (or removed): empty output, as upstream.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure::runtime(format!("reading {}: {e}", path.display()))),
    };
    let mut parser = Parser::default();
    let mut content = Vec::new();
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut content)
            .await
            .map_err(|e| Failure::runtime(format!("reading {}: {e}", path.display())))?;
    }
    let lines = tail(parser.feed(&content), options.tail_lines);
    let mut budget = options.limit_bytes;
    let (first, more) = render(lines, &options, &mut budget);
    let follow = options.follow && more && !options.previous;
    if !follow {
        return Ok(text_response(Body::from(first)));
    }
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let follower = Follower {
        shared,
        container_id: chosen.id.clone(),
        path,
        file,
        parser,
        options,
        budget,
    };
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        follower.run(tx).await;
    });
    Ok(text_response(Body::from_stream(rx)))
}

fn text_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

/// Streams a log file's new lines until the container has exited and its
/// output is drained, the client goes away or the byte limit is reached.
struct Follower {
    shared: Shared,
    container_id: String,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    parser: Parser,
    options: LogOptions,
    budget: Option<u64>,
}

impl Follower {
    async fn run(mut self, mut tx: mpsc::Sender<Result<Bytes, std::io::Error>>) {
        let mut idle_polls = 0u32;
        let mut exited = false;
        loop {
            let fresh = self.read_new().await;
            if !fresh.is_empty() {
                idle_polls = 0;
                let lines = self.parser.feed(&fresh);
                let (out, more) = render(lines, &self.options, &mut self.budget);
                if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                    return;
                }
                if !more {
                    return;
                }
                continue;
            }
            if exited || tx.is_closed() {
                return;
            }
            if self.reopen_if_rotated().await {
                continue;
            }
            idle_polls += 1;
            if idle_polls % FOLLOW_STATE_EVERY == 0 && !self.running().await {
                // One more read picks up what was written before the exit.
                exited = true;
                continue;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// What was appended to the open file since the last read.
    async fn read_new(&mut self) -> Vec<u8> {
        let mut fresh = Vec::new();
        if let Some(file) = self.file.as_mut()
            && let Err(e) = file.read_to_end(&mut fresh).await
        {
            tracing::debug!(error = %e, path = %self.path.display(), "reading a followed log");
        }
        fresh
    }

    /// Opens the log path again when it is no longer the open file (the
    /// log was rotated, or had not been created yet).
    async fn reopen_if_rotated(&mut self) -> bool {
        let Ok(on_disk) = tokio::fs::metadata(&self.path).await else {
            return false;
        };
        let open_inode = match self.file.as_ref() {
            Some(f) => f.metadata().await.ok().map(|m| m.ino()),
            None => None,
        };
        if open_inode == Some(on_disk.ino()) {
            return false;
        }
        match tokio::fs::File::open(&self.path).await {
            Ok(mut f) => {
                if f.seek(SeekFrom::Start(0)).await.is_err() {
                    return false;
                }
                self.file = Some(f);
                true
            }
            Err(_) => false,
        }
    }

    async fn running(&self) -> bool {
        match self
            .shared
            .cri
            .clone()
            .runtime
            .container_status(ContainerStatusRequest {
                container_id: self.container_id.clone(),
                verbose: false,
            })
            .await
        {
            Ok(r) => r
                .into_inner()
                .status
                .is_some_and(|s| s.state == CONTAINER_RUNNING),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn records_are_joined_into_lines_across_reads() {
        let mut parser = Parser::default();
        let lines = parser.feed(
            b"2026-11-23T10:00:00.000000001Z stdout P hel\n2026-11-23T10:00:01Z stdout F lo\n2026-11-23T10:00:02.5Z stderr F oops\n2026-11-23T10:00:03Z std",
        );
        assert_eq!(
            lines,
            vec![
                LogLine {
                    time: ts("2026-11-23T10:00:00.000000001Z"),
                    stream: "stdout".into(),
                    text: b"hello\n".to_vec(),
                },
                LogLine {
                    time: ts("2026-11-23T10:00:02.5Z"),
                    stream: "stderr".into(),
                    text: b"oops\n".to_vec(),
                },
            ]
        );
        let more = parser.feed(b"out F \nnot a record\n2026-11-23T10:00:04Z stdout F\n");
        assert_eq!(more.len(), 2);
        assert_eq!(more[0].text, b"\n");
        assert_eq!(more[1].text, b"\n");
    }

    #[test]
    fn times_are_printed_with_nine_fraction_digits() {
        assert_eq!(
            format_time(ts("2026-11-23T10:00:02.5Z")),
            "2026-11-23T10:00:02.500000000Z"
        );
    }

    fn line(time: &str, text: &str) -> LogLine {
        LogLine {
            time: ts(time),
            stream: "stdout".into(),
            text: format!("{text}\n").into_bytes(),
        }
    }

    #[test]
    fn tail_since_timestamps_and_limits_select_the_output() {
        let lines = vec![
            line("2026-11-23T10:00:00Z", "one"),
            line("2026-11-23T10:00:01Z", "two"),
            line("2026-11-23T10:00:02Z", "three"),
        ];
        let plain = LogOptions::default();
        let (out, more) = render(tail(lines.clone(), Some(2)), &plain, &mut None);
        assert_eq!(out, b"two\nthree\n");
        assert!(more);
        assert!(
            render(tail(lines.clone(), Some(0)), &plain, &mut None)
                .0
                .is_empty()
        );
        let stamped = LogOptions {
            timestamps: true,
            since: Some(ts("2026-11-23T10:00:01Z")),
            ..Default::default()
        };
        let (out, _) = render(lines.clone(), &stamped, &mut None);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2026-11-23T10:00:01.000000000Z two\n2026-11-23T10:00:02.000000000Z three\n"
        );
        let mut budget = Some(6);
        let (out, more) = render(lines, &plain, &mut budget);
        assert_eq!(out, b"one\ntw");
        assert!(!more);
    }

    #[test]
    fn options_are_read_and_checked() {
        let pairs = |q: &str| super::super::query_pairs(Some(q));
        let o = LogOptions::parse(&pairs("follow=true&tailLines=3&timestamps=1&limitBytes=10"))
            .expect("valid");
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(3), Some(10)));
        assert!(LogOptions::parse(&pairs("tailLines=-1")).is_err());
        assert!(LogOptions::parse(&pairs("limitBytes=0")).is_err());
        assert!(LogOptions::parse(&pairs("tailLines=x")).is_err());
        assert!(
            LogOptions::parse(&pairs("sinceSeconds=5&sinceTime=2026-11-23T10:00:00Z")).is_err()
        );
        let since = LogOptions::parse(&pairs("sinceTime=2026-11-23T10:00:00Z")).expect("valid");
        assert_eq!(since.since, Some(ts("2026-11-23T10:00:00Z")));
        let recent = LogOptions::parse(&pairs("sinceSeconds=60")).expect("valid");
        assert!(recent.since.is_some_and(|s| s < jiff::Timestamp::now()));
    }
}
