//! Forwarding of names outside the cluster zone to the node's upstream
//! resolvers, with a small cache.
//!
//! Upstreams are tried in order, each with a timeout (UDP, then TCP when
//! the answer is truncated); when none answers the client gets SERVFAIL.
//! Answers are cached for their smallest TTL (negative answers for their
//! SOA's minimum), capped as CoreDNS's cache plugin caps them (1 h positive,
//! 30 min negative), in a bounded table; a hit is served with the TTLs
//! counted down.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream has to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The most answers kept.
pub const CACHE_CAPACITY: usize = 10_000;
const MAX_POSITIVE_TTL: u32 = 3600;
const MAX_NEGATIVE_TTL: u32 = 1800;

type Key = (String, RecordType, u16);

struct Entry {
    response: Message,
    stored: Instant,
    ttl: u32,
}

/// The upstream resolvers and the cache of their answers.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    cache: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
}

fn key(query: &Query) -> Key {
    (
        query.name().to_lowercase().to_ascii(),
        query.query_type(),
        u16::from(query.query_class()),
    )
}

/// How long `response` may be cached, if at all.
fn cache_ttl(response: &Message) -> Option<u32> {
    match response.response_code() {
        ResponseCode::NoError if !response.answers().is_empty() => response
            .answers()
            .iter()
            .map(|r| r.ttl())
            .min()
            .map(|t| t.min(MAX_POSITIVE_TTL)),
        ResponseCode::NoError | ResponseCode::NXDomain => response
            .name_servers()
            .iter()
            .find_map(|r| match r.data() {
                RData::SOA(soa) => Some(soa.minimum().min(r.ttl())),
                _ => None,
            })
            .map(|t| t.min(MAX_NEGATIVE_TTL)),
        _ => None,
    }
    .filter(|ttl| *ttl > 0)
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration, capacity: usize) -> Self {
        Forwarder {
            upstreams,
            timeout,
            cache: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The upstreams this forwarder uses.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The upstream answer to `request`'s question (from the cache when it
    /// is still fresh), with `request`'s id; SERVFAIL when no upstream
    /// answers.
    pub async fn resolve(&self, request: &Message) -> Message {
        let Some(query) = request.query().cloned() else {
            return failure(request, ResponseCode::FormErr);
        };
        let key = key(&query);
        if let Some(mut hit) = self.cached(&key) {
            hit.set_id(request.id());
            return hit;
        }
        for upstream in &self.upstreams {
            match self
                .ask(*upstream, &query, request.recursion_desired())
                .await
            {
                Ok(mut response) => {
                    if let Some(ttl) = cache_ttl(&response) {
                        self.store(key, &response, ttl);
                    }
                    response.set_id(request.id());
                    return response;
                }
                Err(e) => {
                    tracing::debug!(%upstream, name = %query.name(), error = %e, "upstream resolver did not answer");
                }
            }
        }
        failure(request, ResponseCode::ServFail)
    }

    fn cached(&self, key: &Key) -> Option<Message> {
        let mut cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        let age = u32::try_from(entry.stored.elapsed().as_secs()).unwrap_or(u32::MAX);
        if age >= entry.ttl {
            cache.remove(key);
            return None;
        }
        let mut response = entry.response.clone();
        for record in response.answers_mut() {
            let ttl = record.ttl().saturating_sub(age);
            record.set_ttl(ttl);
        }
        for record in response.name_servers_mut() {
            let ttl = record.ttl().saturating_sub(age);
            record.set_ttl(ttl);
        }
        Some(response)
    }

    fn store(&self, key: Key, response: &Message, ttl: u32) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.capacity {
            cache.retain(|_, e| e.stored.elapsed().as_secs() < u64::from(e.ttl));
        }
        if cache.len() >= self.capacity {
            // Still full of live answers: drop an arbitrary one.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(
            key,
            Entry {
                response: response.clone(),
                stored: Instant::now(),
                ttl,
            },
        );
    }

    /// How many answers are cached (for tests and metrics).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    async fn ask(
        &self,
        upstream: SocketAddr,
        query: &Query,
        recursion_desired: bool,
    ) -> std::io::Result<Message> {
        let mut request = Message::new();
        let id: u16 = rand::random();
        request
            .set_id(id)
            .set_message_type(MessageType::Query)
            .set_recursion_desired(recursion_desired)
            .add_query(query.clone());
        let bytes = request.to_vec().map_err(std::io::Error::other)?;
        let response = tokio::time::timeout(self.timeout, async {
            let response = udp_exchange(upstream, &bytes, id).await?;
            if response.truncated() {
                tcp_exchange(upstream, &bytes).await
            } else {
                Ok(response)
            }
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))??;
        Ok(response)
    }
}

async fn udp_exchange(upstream: SocketAddr, bytes: &[u8], id: u16) -> std::io::Result<Message> {
    let local: IpAddr = if upstream.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await?;
    socket.connect(upstream).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A stray or spoofed datagram with another id is ignored.
        if let Ok(message) = Message::from_vec(&buf[..n])
            && message.id() == id
            && message.message_type() == MessageType::Response
        {
            return Ok(message);
        }
    }
}

async fn tcp_exchange(upstream: SocketAddr, bytes: &[u8]) -> std::io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(bytes).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(std::io::Error::other)
}

/// An empty response to `request` with `code`.
pub fn failure(request: &Message, code: ResponseCode) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code)
        .add_queries(request.queries().to_vec());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, Record};
    use std::str::FromStr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake upstream on 127.0.0.x: answers A queries for `known.test.`
    /// with 192.0.2.1 (TTL `ttl`) and NXDOMAIN otherwise; counts queries.
    async fn fake_upstream(ip: &str, ttl: u32) -> (SocketAddr, Arc<AtomicUsize>) {
        let socket = UdpSocket::bind(format!("{ip}:0"))
            .await
            .expect("bind the fake upstream");
        let addr = socket.local_addr().expect("addr");
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                seen.fetch_add(1, Ordering::SeqCst);
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = request.query().cloned() else {
                    continue;
                };
                let mut response = failure(&request, ResponseCode::NoError);
                if q.name() == &Name::from_str("known.test.").expect("name") {
                    response.add_answer(Record::from_rdata(
                        q.name().clone(),
                        ttl,
                        RData::A(A::new(192, 0, 2, 1)),
                    ));
                } else {
                    response.set_response_code(ResponseCode::NXDomain);
                    response.add_name_server(Record::from_rdata(
                        Name::from_str("test.").expect("name"),
                        60,
                        RData::SOA(SOA::new(Name::root(), Name::root(), 1, 1, 1, 1, 30)),
                    ));
                }
                let _ = socket
                    .send_to(&response.to_vec().expect("encode"), from)
                    .await;
            }
        });
        (addr, count)
    }

    fn question(name: &str) -> Message {
        let mut m = Message::new();
        m.set_id(4242)
            .set_recursion_desired(true)
            .add_query(Query::query(
                Name::from_str(name).expect("name"),
                RecordType::A,
            ));
        m
    }

    #[tokio::test]
    async fn forwards_and_caches_answers_for_their_ttl() {
        let (upstream, count) = fake_upstream("127.0.0.1", 300).await;
        let forwarder = Forwarder::new(vec![upstream], Duration::from_secs(1), 100);
        let first = forwarder.resolve(&question("known.test.")).await;
        assert_eq!(first.id(), 4242);
        assert_eq!(first.response_code(), ResponseCode::NoError);
        assert_eq!(first.answers()[0].data().to_string(), "192.0.2.1");
        let second = forwarder.resolve(&question("KNOWN.test.")).await;
        assert_eq!(second.answers()[0].data().to_string(), "192.0.2.1");
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "the second answer came from the cache"
        );
        let missing = forwarder.resolve(&question("missing.test.")).await;
        assert_eq!(missing.response_code(), ResponseCode::NXDomain);
        let _ = forwarder.resolve(&question("missing.test.")).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "negative answers are cached too"
        );
    }

    #[tokio::test]
    async fn a_zero_ttl_is_not_cached_and_the_cache_is_bounded() {
        let (upstream, count) = fake_upstream("127.0.0.1", 0).await;
        let forwarder = Forwarder::new(vec![upstream], Duration::from_secs(1), 2);
        let _ = forwarder.resolve(&question("known.test.")).await;
        let _ = forwarder.resolve(&question("known.test.")).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        for name in ["a.test.", "b.test.", "c.test.", "d.test."] {
            let _ = forwarder.resolve(&question(name)).await;
        }
        assert!(forwarder.cached_len() <= 2, "{}", forwarder.cached_len());
    }

    #[tokio::test]
    async fn a_silent_upstream_gives_servfail_and_the_next_one_is_tried() {
        // Bound but never read: queries to it time out.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        let forwarder = Forwarder::new(vec![silent_addr], Duration::from_millis(200), 10);
        let failed = forwarder.resolve(&question("known.test.")).await;
        assert_eq!(failed.response_code(), ResponseCode::ServFail);
        assert_eq!(failed.id(), 4242);
        let (upstream, _) = fake_upstream("127.0.0.1", 30).await;
        let forwarder = Forwarder::new(vec![silent_addr, upstream], Duration::from_millis(200), 10);
        let answered = forwarder.resolve(&question("known.test.")).await;
        assert_eq!(answered.response_code(), ResponseCode::NoError);
    }
}
