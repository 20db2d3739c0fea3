//! End-to-end: an image pulled through CRI from a registry mirror on loopback
//! (Debian's docker-registry), configured in k3s' registries.yaml format, with the
//! busybox image pushed into it by skopeo.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{build_images, with_env_prepared, NODE};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};

struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    for (bin, pkg) in [("docker-registry", "docker-registry"), ("skopeo", "skopeo")] {
        let ok = std::process::Command::new("which")
            .arg(bin)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{bin} is missing (package {pkg}; run scripts/install-deps.sh)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting docker-registry");
    let reg = Registry {
        child,
        _dir: dir,
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    reg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_a_registry_mirror() {
    let reg = start_registry();
    let images = tempfile::tempdir().unwrap();
    build_images(images.path());
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!(
            "oci-archive:{}:1.35",
            images.path().join("busybox.tar").display()
        ))
        .arg(format!(
            "docker://127.0.0.1:{}/library/busybox:mirrored",
            reg.port
        ))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = reg.port;
    with_env_prepared(
        16,
        |data| {
            std::fs::write(
                data.join("registries.yaml"),
                format!("mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:{port}\"\n"),
            )
            .unwrap();
        },
        async |env| {
            let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
            // Not imported, so IfNotPresent (the default for a tag) must pull it.
            let p: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "pulled"},
                "spec": {"nodeName": NODE, "restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox:mirrored", "command": ["true"]}]}
            }))
            .unwrap();
            let t0 = Instant::now();
            pods.create(&PostParams::default(), &p).await.expect("create");
            env.wait_pod("default", "pulled", 60, "Succeeded", |p| {
                (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(())
            })
            .await;
            eprintln!("e2e: pulled through the mirror and ran in {:?}", t0.elapsed());
            let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
            let list = events.list(&Default::default()).await.unwrap();
            let pulled = list
                .items
                .iter()
                .find(|e| e.reason.as_deref() == Some("Pulled") && e.involved_object.name.as_deref() == Some("pulled"))
                .and_then(|e| e.message.clone())
                .unwrap_or_default();
            assert!(pulled.starts_with("Successfully pulled image \"busybox:mirrored\""), "{pulled}");
        },
    )
    .await;
    drop(reg);
}
