//! The dashboard's terminal path on a one-node cluster: a `v5.channel.k8s.io`
//! WebSocket exec into a running container, authenticated as a browser can
//! (the bearer token as a subprotocol, or the session cookie from the
//! server's own origin), runs `echo` and reports success on the error
//! channel. The WebSocket client is written out here (TLS, the HTTP/1.1
//! upgrade, unmasked server frames) so that nothing but the protocol is
//! assumed.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODE: &str = "fk-dash-exec";

/// What a v5 exec answered: stdout and the error channel's Status.
#[derive(Debug, Default)]
struct Exec {
    head: String,
    stdout: Vec<u8>,
    status: Option<serde_json::Value>,
}

/// Reads one server frame (unmasked): its opcode and payload.
async fn frame<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// A v5 WebSocket exec of `sh -c 'echo hello-from-exec'` in pod `sleeper`
/// with `headers` (extra request lines) and `protocols` offered.
async fn exec(c: &Cluster, protocols: &str, headers: &str) -> Exec {
    let ca_pem = std::fs::read(c.data_dir().join("tls/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", c.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let request = format!(
        "GET /api/v1/namespaces/default/pods/sleeper/exec?command=sh&command=-c&command=echo%20hello-from-exec&stdout=true&stderr=true HTTP/1.1\r\n\
         Host: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {protocols}\r\n{headers}\r\n",
        c.port
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tls.read_exact(&mut byte).await.is_err() {
            break;
        }
        head.push(byte[0]);
    }
    let mut out = Exec {
        head: String::from_utf8_lossy(&head).to_string(),
        ..Default::default()
    };
    if !out.head.starts_with("HTTP/1.1 101") {
        return out;
    }
    while let Some((opcode, payload)) = frame(&mut tls).await {
        match (opcode, payload.split_first()) {
            (2, Some((1, data))) => out.stdout.extend_from_slice(data),
            (2, Some((3, data))) if !data.is_empty() => {
                out.status = serde_json::from_slice(data).ok();
            }
            (8, _) => break,
            _ => {}
        }
    }
    out
}

/// `f` run on `rt`, within a minute.
fn within<T>(rt: &tokio::runtime::Runtime, f: impl std::future::Future<Output = T>) -> T {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), f).await })
        .expect("the exec within 60 s")
}

#[test]
fn a_browsers_exec_by_bearer_subprotocol_or_session() {
    let c = Cluster::start_ready_node(NODE, common::NODE_ALONE);
    let manifest = c.data_dir().join("sleeper.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: sleeper}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: main\n    image: busybox\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    c.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/sleeper",
        "--timeout=120s",
    ]);
    let token = std::fs::read_to_string(c.data_dir().join("tls/admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The bearer token as a subprotocol: chosen is v5, never the token.
    let offered = format!(
        "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token)
    );
    let r = within(&rt, exec(&c, &offered, ""));
    assert!(r.head.starts_with("HTTP/1.1 101"), "{}", r.head);
    let head = r.head.to_ascii_lowercase();
    assert!(
        head.contains("sec-websocket-protocol: v5.channel.k8s.io\r\n"),
        "{}",
        r.head
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hello-from-exec\n");
    assert_eq!(r.status.unwrap()["status"], "Success");
    let r = within(
        &rt,
        exec(
            &c,
            "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.d3Jvbmc",
            "",
        ),
    );
    assert!(r.head.starts_with("HTTP/1.1 401"), "{}", r.head);

    // A session cookie, from the server's own origin (the terminal's way).
    let login = format!("{{\"token\":\"{token}\"}}");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(c.data_dir().join("tls/ca.crt"))
        .args(["-X", "POST", "--data-binary", &login])
        .arg(format!("https://127.0.0.1:{}/dashboard/session", c.port))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).to_string();
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no session: {headers}"))
        .to_string();
    let origin = format!("Origin: https://127.0.0.1:{}\r\n", c.port);
    let r = within(
        &rt,
        exec(
            &c,
            "v5.channel.k8s.io",
            &format!("Cookie: {cookie}\r\n{origin}"),
        ),
    );
    assert!(r.head.starts_with("HTTP/1.1 101"), "{}", r.head);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hello-from-exec\n");
    let r = within(
        &rt,
        exec(&c, "v5.channel.k8s.io", &format!("Cookie: {cookie}\r\n")),
    );
    assert!(r.head.starts_with("HTTP/1.1 403"), "{}", r.head);
}
