//! The cluster DNS against a real (in-process) API server: Services and
//! EndpointSlices created through the API answer over UDP and TCP; names
//! that do not exist are NXDOMAIN; other names go to the upstream resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferrokube_client::testing::wait::{poll, EVERY};
use ferrokube_client::testing::TestApi;
use ferrokube_dns::{query_packet, DnsConfig};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

async fn ask(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let packet = query_packet(7, name, t).expect("packet");
    socket.send_to(&packet, server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("answer in time")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("parse answer")
}

async fn ask_tcp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let mut s = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    let packet = query_packet(9, name, t).expect("packet");
    s.write_all(&(packet.len() as u16).to_be_bytes())
        .await
        .expect("w");
    s.write_all(&packet).await.expect("w");
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.expect("len");
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.expect("body");
    Message::from_vec(&buf).expect("parse")
}

fn addresses(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Asks until `check` holds (the zone follows the API within moments).
async fn eventually(
    server: SocketAddr,
    name: &str,
    t: RecordType,
    check: impl Fn(&Message) -> bool,
) -> Message {
    let check = &check;
    let answer = poll(Duration::from_secs(15), EVERY, || async move {
        let m = ask(server, name, t).await;
        check(&m).then_some(m)
    })
    .await;
    match answer {
        Some((m, _)) => m,
        None => {
            let m = ask(server, name, t).await;
            panic!("{name} {t}: last answer {m:?}")
        }
    }
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: each kind of name is created through the API, then asked for"
)]
async fn services_resolve_and_the_rest_is_forwarded() {
    let api = TestApi::start().await.expect("api");
    let client = api.client().await.expect("client");
    // A stand-in upstream resolver on loopback that answers every question
    // with 192.0.2.1.
    let upstream = UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream");
    let upstream_addr = upstream.local_addr().expect("addr");
    let fake = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        for _ in 0..16 {
            let Ok((n, peer)) = upstream.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = q.clone();
            r.set_message_type(hickory_proto::op::MessageType::Response);
            let name = q.queries()[0].name().clone();
            r.add_answer(hickory_proto::rr::Record::from_rdata(
                name,
                30,
                RData::A(
                    "192.0.2.1"
                        .parse::<std::net::Ipv4Addr>()
                        .expect("ip")
                        .into(),
                ),
            ));
            let _ = upstream.send_to(&r.to_vec().expect("encode"), peer).await;
        }
    });
    let cancel = CancellationToken::new();
    let dns = ferrokube_dns::start(
        client.clone(),
        DnsConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            domain: "cluster.local".into(),
            upstreams: Some(vec![upstream_addr]),
        },
        cancel.clone(),
    )
    .await
    .expect("dns starts");
    let server = dns.addr;

    // The `kubernetes` Service the API server makes.
    let m = eventually(
        server,
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
        |m| !m.answers().is_empty(),
    )
    .await;
    assert_eq!(
        addresses(&m),
        vec!["10.43.0.1".parse::<IpAddr>().expect("ip")]
    );
    assert!(m.authoritative());

    // A ClusterIP Service with a named port, and a headless one with a slice.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let web: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("service");
    let web = services
        .create(&PostParams::default(), &web)
        .await
        .expect("create web");
    let web_ip: IpAddr = web
        .spec
        .and_then(|s| s.cluster_ip)
        .and_then(|s| s.parse().ok())
        .expect("cluster ip");
    let db: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &db)
        .await
        .expect("create db");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db-abc", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.42.0.5"], "conditions": {"ready": true}, "hostname": "db-0"},
            {"addresses": ["10.42.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "conditions": {"ready": false}}
        ],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    }))
    .expect("slice");
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create slice");

    let m = eventually(
        server,
        "web.default.svc.cluster.local",
        RecordType::A,
        |m| !m.answers().is_empty(),
    )
    .await;
    assert_eq!(addresses(&m), vec![web_ip]);
    let m = ask_tcp(server, "web.default.svc.cluster.local", RecordType::A).await;
    assert_eq!(addresses(&m), vec![web_ip], "same answer over TCP");
    let m = ask(
        server,
        "_http._tcp.web.default.svc.cluster.local",
        RecordType::SRV,
    )
    .await;
    match m.answers().first().map(|r| r.data()) {
        Some(RData::SRV(srv)) => {
            assert_eq!(srv.port(), 80);
            assert_eq!(srv.target().to_ascii(), "web.default.svc.cluster.local.");
        }
        other => panic!("expected an SRV record, got {other:?}"),
    }

    let m = eventually(server, "db.default.svc.cluster.local", RecordType::A, |m| {
        m.answers().len() == 2
    })
    .await;
    assert_eq!(
        addresses(&m),
        vec![
            "10.42.0.5".parse::<IpAddr>().expect("ip"),
            "10.42.0.6".parse::<IpAddr>().expect("ip")
        ],
        "a headless Service answers with its ready endpoints"
    );
    let m = ask(server, "db-0.db.default.svc.cluster.local", RecordType::A).await;
    assert_eq!(
        addresses(&m),
        vec!["10.42.0.5".parse::<IpAddr>().expect("ip")]
    );
    let m = ask(server, "10-42-0-9.default.pod.cluster.local", RecordType::A).await;
    assert_eq!(
        addresses(&m),
        vec!["10.42.0.9".parse::<IpAddr>().expect("ip")]
    );

    // Names of the domain that do not exist.
    let m = ask(server, "nope.default.svc.cluster.local", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(
        !m.name_servers().is_empty(),
        "negative answers carry the SOA"
    );

    // A deleted Service stops resolving.
    services
        .delete("web", &Default::default())
        .await
        .expect("delete web");
    eventually(
        server,
        "web.default.svc.cluster.local",
        RecordType::A,
        |m| m.response_code() == ResponseCode::NXDomain,
    )
    .await;

    // The kube-dns Service puts this server behind the cluster DNS address.
    ferrokube_dns::publish(client.clone(), "10.43.0.10".parse().expect("ip"), server)
        .await
        .expect("publish kube-dns");
    ferrokube_dns::publish(client.clone(), "10.43.0.10".parse().expect("ip"), server)
        .await
        .expect("publishing again changes nothing and succeeds");
    let m = eventually(
        server,
        "kube-dns.kube-system.svc.cluster.local",
        RecordType::A,
        |m| !m.answers().is_empty(),
    )
    .await;
    assert_eq!(
        addresses(&m),
        vec!["10.43.0.10".parse::<IpAddr>().expect("ip")]
    );
    let slice = Api::<EndpointSlice>::namespaced(client.clone(), "kube-system")
        .get("kube-dns-server")
        .await
        .expect("kube-dns slice");
    assert_eq!(slice.endpoints[0].addresses, vec![server.ip().to_string()]);

    // Everything else goes upstream.
    let m = ask(server, "example.org", RecordType::A).await;
    assert_eq!(
        addresses(&m),
        vec!["192.0.2.1".parse::<IpAddr>().expect("ip")]
    );

    cancel.cancel();
    dns.join().await;
    fake.abort();
}

#[tokio::test]
async fn no_upstream_fails_fast() {
    let api = TestApi::start().await.expect("api");
    let client = api.client().await.expect("client");
    // A loopback port with nobody listening: the query is refused at once.
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        s.local_addr().expect("addr")
    };
    let cancel = CancellationToken::new();
    let dns = ferrokube_dns::start(
        client,
        DnsConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            domain: "cluster.local".into(),
            upstreams: Some(vec![dead]),
        },
        cancel.clone(),
    )
    .await
    .expect("dns starts");
    let started = std::time::Instant::now();
    let m = ask(dns.addr, "example.org", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    // Garbage gets no crash: the server still answers afterwards.
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    s.send_to(
        &[0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0, 0, 0, 0, 0, 0xff],
        dns.addr,
    )
    .await
    .expect("send");
    let m = ask(dns.addr, "dns-version.cluster.local", RecordType::TXT).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 1);
    cancel.cancel();
    dns.join().await;
}
