//! The DNS protocol side: answers one request from the cluster zone or the
//! forwarder, and serves requests on UDP and TCP sockets.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::forward::{Forwarder, failure};
use super::records::{Lookup, Snapshot};

/// The payload size skiff advertises and accepts over UDP with EDNS.
const EDNS_PAYLOAD: u16 = 1232;
/// How many ExternalName aliases one answer follows.
const MAX_CNAME_CHAIN: u8 = 8;
/// Requests answered at once; more are dropped (the client retries), so a
/// flood cannot pile up tasks and upstream sockets without bound.
const MAX_IN_FLIGHT: usize = 1024;
/// How long an idle TCP connection is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Answers requests: the cluster zone from the current snapshot, the rest
/// through the forwarder.
pub struct Handler {
    pub domain: String,
    pub snapshot: RwLock<Arc<Snapshot>>,
    pub forwarder: Forwarder,
}

impl Handler {
    pub fn new(domain: &str, forwarder: Forwarder) -> Self {
        Handler {
            domain: domain.trim_end_matches('.').to_lowercase(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            forwarder,
        }
    }

    /// Replaces the snapshot the zone is answered from.
    pub fn set_snapshot(&self, snapshot: Snapshot) {
        if let Ok(mut current) = self.snapshot.write() {
            *current = Arc::new(snapshot);
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// The encoded answer to the encoded `request`, at most `limit` bytes
    /// (UDP) with the TC bit set when it does not fit; None for bytes that
    /// are not a DNS request at all.
    pub async fn answer_bytes(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        let request = match Message::from_vec(request) {
            Ok(m) => m,
            Err(_) => {
                // Answer FORMERR when at least the header's id can be read.
                let id = u16::from_be_bytes([*request.first()?, *request.get(1)?]);
                let mut m = Message::new();
                m.set_id(id)
                    .set_message_type(MessageType::Response)
                    .set_response_code(ResponseCode::FormErr);
                return m.to_vec().ok();
            }
        };
        if request.message_type() != MessageType::Query {
            return None;
        }
        let mut response = self.answer(&request).await;
        let limit = if udp {
            request
                .extensions()
                .as_ref()
                .map(|e| e.max_payload().clamp(512, EDNS_PAYLOAD))
                .unwrap_or(512)
        } else {
            u16::MAX
        };
        if request.extensions().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            response.set_edns(edns);
        } else {
            *response.extensions_mut() = None;
        }
        let bytes = response.to_vec().ok()?;
        if bytes.len() <= usize::from(limit) {
            return Some(bytes);
        }
        let mut truncated = failure(&request, response.response_code());
        truncated.set_truncated(true);
        truncated.set_authoritative(response.authoritative());
        truncated.to_vec().ok()
    }

    /// The answer to `request`.
    pub async fn answer(&self, request: &Message) -> Message {
        self.answer_within(request, MAX_CNAME_CHAIN).await
    }

    /// The answer to `request`, following at most `chain` more ExternalName
    /// aliases (a Service may name itself or another alias).
    async fn answer_within(&self, request: &Message, chain: u8) -> Message {
        if request.op_code() != OpCode::Query {
            return failure(request, ResponseCode::NotImp);
        }
        let Some(query) = request.query() else {
            return failure(request, ResponseCode::FormErr);
        };
        if query.query_class() != DNSClass::IN {
            return self.forwarder.resolve(request).await;
        }
        let snapshot = self.current();
        let qtype = query.query_type();
        let lookup = snapshot.lookup(&self.domain, query.name(), qtype);
        let mut response = failure(request, ResponseCode::NoError);
        response.set_authoritative(true);
        match lookup {
            Lookup::Forward => return self.forwarder.resolve(request).await,
            Lookup::Answer {
                answers,
                additionals,
            } => {
                response.add_answers(answers);
                response.add_additionals(additionals);
            }
            Lookup::Alias { cname, target } => {
                response.add_answer(*cname);
                if qtype != RecordType::CNAME && chain > 0 {
                    // Chase the target as CoreDNS does, outside the zone
                    // through the upstreams.
                    let mut chase = request.clone();
                    let mut q = query.clone();
                    q.set_name(target);
                    chase.queries_mut().clear();
                    chase.add_query(q);
                    let chased = Box::pin(self.answer_within(&chase, chain - 1)).await;
                    for record in chased.answers() {
                        if !response.answers().contains(record) {
                            response.add_answer(record.clone());
                        }
                    }
                }
            }
            Lookup::NoData => {
                response.add_name_server(snapshot.soa(&self.domain));
            }
            Lookup::NxDomain => {
                response.set_response_code(ResponseCode::NXDomain);
                response.add_name_server(snapshot.soa(&self.domain));
            }
        }
        response
    }
}

/// Serves UDP requests on `socket` until the task is dropped.
pub async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!(error = %e, "DNS receive failed");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            continue;
        };
        let request = buf[..n].to_vec();
        let socket = Arc::clone(&socket);
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            if let Some(reply) = handler.answer_bytes(&request, true).await {
                let _ = socket.send_to(&reply, from).await;
            }
            drop(permit);
        });
    }
}

/// Serves TCP connections on `listener` until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, handler: Arc<Handler>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "DNS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, &handler).await {
                tracing::trace!(%from, error = %e, "DNS connection ended");
            }
        });
    }
}

async fn serve_connection(mut stream: TcpStream, handler: &Handler) -> std::io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(read) => read?,
            Err(_) => return Ok(()),
        };
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut request))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out")
            })??;
        let Some(reply) = handler.answer_bytes(&request, false).await else {
            return Ok(());
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        stream.write_all(&reply_len.to_be_bytes()).await?;
        stream.write_all(&reply).await?;
    }
}

/// Binds UDP and TCP port 53 (or `addr`'s port) and serves both.
pub async fn bind_and_serve(addr: SocketAddr, handler: Arc<Handler>) -> std::io::Result<()> {
    let udp = Arc::new(UdpSocket::bind(addr).await?);
    let tcp = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "cluster DNS is serving");
    tokio::join!(
        serve_udp(udp, Arc::clone(&handler)),
        serve_tcp(tcp, handler)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use k8s_openapi::api::core::v1::Service;
    use std::str::FromStr;

    fn handler() -> Handler {
        let handler = Handler::new(
            "cluster.local",
            Forwarder::new(Vec::new(), Duration::from_millis(100), 10),
        );
        let web: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.43.0.20"}
        }))
        .expect("service");
        handler.set_snapshot(Snapshot::build("cluster.local", [&web], [], 1));
        handler
    }

    fn request(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_str(name).expect("name"), qtype));
        m.to_vec().expect("encode")
    }

    #[tokio::test]
    async fn answers_encoded_requests_with_nxdomain_soa_and_servfail() {
        let h = handler();
        let reply = h
            .answer_bytes(
                &request("web.default.svc.cluster.local.", RecordType::A),
                true,
            )
            .await
            .expect("a reply");
        let reply = Message::from_vec(&reply).expect("decode");
        assert_eq!(reply.id(), 7);
        assert!(reply.authoritative());
        assert_eq!(reply.answers()[0].data().to_string(), "10.43.0.20");

        let reply = h
            .answer_bytes(
                &request("nope.default.svc.cluster.local.", RecordType::A),
                true,
            )
            .await
            .expect("a reply");
        let reply = Message::from_vec(&reply).expect("decode");
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);
        assert_eq!(reply.name_servers()[0].record_type(), RecordType::SOA);

        // No upstream: outside names fail with SERVFAIL.
        let reply = h
            .answer_bytes(&request("example.test.", RecordType::A), true)
            .await
            .expect("a reply");
        let reply = Message::from_vec(&reply).expect("decode");
        assert_eq!(reply.response_code(), ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn an_external_name_naming_itself_ends() {
        let h = handler();
        let loop_svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "default", "name": "me"},
            "spec": {"type": "ExternalName", "externalName": "me.default.svc.cluster.local"}
        }))
        .expect("service");
        h.set_snapshot(Snapshot::build("cluster.local", [&loop_svc], [], 1));
        let reply = h
            .answer_bytes(
                &request("me.default.svc.cluster.local.", RecordType::A),
                false,
            )
            .await
            .expect("a reply");
        let reply = Message::from_vec(&reply).expect("decode");
        assert_eq!(reply.answers()[0].record_type(), RecordType::CNAME);
        assert_eq!(reply.answers().len(), 1);
    }

    #[tokio::test]
    async fn garbage_gets_formerr_or_nothing() {
        let h = handler();
        let reply = h
            .answer_bytes(&[0x12, 0x34, 0xff], true)
            .await
            .expect("a reply");
        let reply = Message::from_vec(&reply).expect("decode");
        assert_eq!(reply.id(), 0x1234);
        assert_eq!(reply.response_code(), ResponseCode::FormErr);
        assert!(h.answer_bytes(&[1], true).await.is_none());
    }
}
