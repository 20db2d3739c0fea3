//! The DNS wire: UDP and TCP listeners, answers built from the zone, and
//! forwarding of everything outside it to the host's resolvers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::zone::{Answer, Data, Kind, Zone};

/// Time to live of every record (and of negative answers), in seconds: the
/// cluster changes often, so answers are cached briefly.
pub(crate) const TTL: u32 = 5;
/// How long one upstream resolver gets before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries answered at once; more wait.
const MAX_IN_FLIGHT: usize = 1024;
/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Answers DNS messages from the current zone.
pub struct Resolver {
    zone: RwLock<Arc<Zone>>,
    upstreams: Vec<SocketAddr>,
}

impl Resolver {
    /// Answers from `zone`; names outside it go to `upstreams`, tried in
    /// turn (none: such names fail with SERVFAIL).
    pub fn new(zone: Zone, upstreams: Vec<SocketAddr>) -> Resolver {
        Resolver {
            zone: RwLock::new(Arc::new(zone)),
            upstreams,
        }
    }

    /// Swaps in a rebuilt zone.
    pub fn set_zone(&self, zone: Zone) {
        *self.zone.write() = Arc::new(zone);
    }

    /// The answer to one query message (None: drop it, it is not DNS).
    pub(crate) async fn handle(&self, packet: &[u8], over_udp: bool) -> Option<Vec<u8>> {
        let query = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => return format_error(packet),
        };
        if query.message_type() != MessageType::Query {
            return None;
        }
        let mut response = reply_to(&query);
        if query.op_code() != OpCode::Query {
            response.set_response_code(ResponseCode::NotImp);
            return encode(response, &query, over_udp);
        }
        let [question] = query.queries() else {
            response.set_response_code(ResponseCode::FormErr);
            return encode(response, &query, over_udp);
        };
        let zone = self.zone.read().clone();
        let name = question.name().to_ascii();
        match zone.lookup(&name, kind_of(question.query_type())) {
            Answer::NotOurs => match self.forward(packet).await {
                Some(bytes) => Some(bytes),
                None => {
                    response.set_response_code(ResponseCode::ServFail);
                    encode(response, &query, over_udp)
                }
            },
            Answer::NxDomain => {
                response.set_authoritative(true);
                response.set_response_code(ResponseCode::NXDomain);
                response.add_name_server(soa(&zone)?);
                encode(response, &query, over_udp)
            }
            Answer::Records(records) => {
                response.set_authoritative(true);
                if records.is_empty() {
                    response.add_name_server(soa(&zone)?);
                }
                for (owner, data) in records {
                    response.add_answer(record(&owner, &data)?);
                }
                encode(response, &query, over_udp)
            }
        }
    }

    /// Sends the query as it came to each upstream in turn; the first
    /// answer wins. No upstreams, or none answering: None at once.
    async fn forward(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let id = packet.get(..2)?;
        for upstream in &self.upstreams {
            let bind: SocketAddr = if upstream.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let Ok(socket) = UdpSocket::bind(bind).await else {
                continue;
            };
            // Connected, so an upstream that is not there refuses at once
            // (ICMP port unreachable) instead of timing out.
            if socket.connect(upstream).await.is_err() || socket.send(packet).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 65535];
            let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
                loop {
                    match socket.recv(&mut buf).await {
                        Ok(n) if buf.get(..2) == Some(id) => return Some(n),
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            })
            .await;
            if let Ok(Some(n)) = got {
                buf.truncate(n);
                return Some(buf);
            }
            tracing::debug!(%upstream, "upstream resolver did not answer");
        }
        None
    }
}

/// A response skeleton for `query`.
fn reply_to(query: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    for q in query.queries() {
        m.add_query(q.clone());
    }
    m
}

/// FORMERR for a message that has a header but does not parse.
fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let id = packet.get(..2)?;
    if packet.len() < 12 {
        return None;
    }
    let mut m = Message::new();
    m.set_id(u16::from_be_bytes([id[0], id[1]]))
        .set_message_type(MessageType::Response)
        .set_response_code(ResponseCode::FormErr);
    m.to_vec().ok()
}

/// Serializes a response; over UDP, one larger than the client takes is
/// cut to its header and question with TC set, so the client retries over
/// TCP.
fn encode(mut response: Message, query: &Message, over_udp: bool) -> Option<Vec<u8>> {
    let limit = match query.extensions() {
        Some(edns) => {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            response.set_edns(e);
            edns.max_payload().max(512) as usize
        }
        None => 512,
    };
    let bytes = response.to_vec().ok()?;
    if !over_udp || bytes.len() <= limit {
        return Some(bytes);
    }
    response.answers_mut().clear();
    response.name_servers_mut().clear();
    response.set_truncated(true);
    response.to_vec().ok()
}

fn kind_of(t: RecordType) -> Kind {
    match t {
        RecordType::A => Kind::A,
        RecordType::AAAA => Kind::Aaaa,
        RecordType::CNAME => Kind::Cname,
        RecordType::SRV => Kind::Srv,
        RecordType::PTR => Kind::Ptr,
        RecordType::TXT => Kind::Txt,
        RecordType::ANY => Kind::Any,
        _ => Kind::Other,
    }
}

fn fqdn(name: &str) -> Option<Name> {
    Name::from_ascii(format!("{name}.")).ok()
}

fn record(owner: &str, data: &Data) -> Option<Record> {
    let rdata = match data {
        Data::A(ip) => RData::A((*ip).into()),
        Data::Aaaa(ip) => RData::AAAA((*ip).into()),
        Data::Cname(t) => RData::CNAME(CNAME(fqdn(t)?)),
        Data::Ptr(t) => RData::PTR(PTR(fqdn(t)?)),
        Data::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target)?)),
    };
    Some(Record::from_rdata(fqdn(owner)?, TTL, rdata))
}

/// The zone's SOA, sent with negative answers (its minimum is the
/// negative-caching time).
fn soa(zone: &Zone) -> Option<Record> {
    let apex = zone.apex();
    let serial = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % u32::MAX as u64) as u32;
    let rdata = SOA::new(
        fqdn(&format!("ns.dns.{apex}"))?,
        fqdn(&format!("hostmaster.{apex}"))?,
        serial,
        7200,
        1800,
        86400,
        TTL,
    );
    Some(Record::from_rdata(fqdn(apex)?, TTL, RData::SOA(rdata)))
}

/// A UDP socket and a TCP listener on the same address. With port 0 the UDP socket
/// picks the port, and another program may already hold that port for TCP: then a
/// new port is tried (a bounded number of times).
async fn bind_udp_and_tcp(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let attempts = if addr.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

/// Serves DNS over UDP and TCP on `addr` until `cancel`.
pub async fn serve(
    resolver: Arc<Resolver>,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let (udp, tcp) = bind_udp_and_tcp(addr).await?;
    let udp = Arc::new(udp);
    let bound = udp.local_addr()?;
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    {
        let (resolver, cancel, limit) = (resolver.clone(), cancel.clone(), limit.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let got = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = udp.recv_from(&mut buf) => r,
                };
                let Ok((n, peer)) = got else { continue };
                let Some(packet) = buf.get(..n).map(<[u8]>::to_vec) else {
                    continue;
                };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let (resolver, udp) = (resolver.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(reply) = resolver.handle(&packet, true).await {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                    drop(permit);
                });
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tcp.accept() => r,
            };
            let Ok((stream, _)) = got else { continue };
            let (resolver, cancel, limit) = (resolver.clone(), cancel.clone(), limit.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = serve_tcp(stream, resolver, limit) => {}
                }
            });
        }
    });
    Ok(bound)
}

/// One TCP connection: length-prefixed messages until EOF or idleness.
async fn serve_tcp(mut stream: TcpStream, resolver: Arc<Resolver>, limit: Arc<Semaphore>) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut packet = vec![0u8; u16::from_be_bytes(len) as usize];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Ok(permit) = limit.acquire().await else {
            return;
        };
        let reply = resolver.handle(&packet, false).await;
        drop(permit);
        let Some(reply) = reply else { return };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_all(&n.to_be_bytes()).await.is_err()
            || stream.write_all(&reply).await.is_err()
        {
            return;
        }
    }
}

/// A question for tests and tools: `name` of `record_type`, as a packet.
pub fn query_packet(id: u16, name: &str, record_type: RecordType) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(fqdn(name.trim_end_matches('.'))?, record_type));
    m.to_vec().ok()
}
