//! What a validating admission webhook adds to a request (issue 17): a
//! release `ferrokube server` (the API server alone) and, in this process,
//! a webhook over HTTPS on loopback (its own CA, given as `caBundle`) that
//! allows every review at once and records its own handling time, from the
//! parsed review to its answer (reading the request and writing the answer
//! over TLS count as added time: the figure errs on the strict side). A ValidatingWebhookConfiguration sends
//! it the creates of ConfigMaps labelled `bench-webhook: "on"`; ConfigMaps
//! labelled `"off"` are not sent (the configuration is there, its object
//! selector does not match). Creates of both, one after the other, by one
//! client; the added latency is with − without at the median and the p99,
//! and the same less the webhook's own time (goal: ≤ 2 ms at the p99).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};

use ferrokube_client::testing::https::{Certificates, JsonServer};
use ferrokube_client::testing::wait::{poll, EVERY};

use crate::apiserver::{client, start_server};
use crate::stats::{ms, Samples};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Creates of each kind (sent to the webhook and not).
    #[arg(long, default_value_t = 1_000)]
    creates: usize,
}

/// What the webhook recorded: its handling time of each review.
#[derive(Default)]
struct Recorded {
    own: Mutex<Samples>,
    calls: AtomicUsize,
}

/// The webhook: its server (on a thread of its own, so that its work does
/// not wait behind the client's; stopped when dropped), its CA and what it
/// recorded.
struct Webhook {
    server: JsonServer,
    ca_pem: String,
    recorded: Arc<Recorded>,
}

/// Starts the webhook: it allows every review (an AdmissionReview v1),
/// answering with its uid, and records the time it took.
fn start_webhook() -> anyhow::Result<Webhook> {
    let certs = Certificates::loopback()?;
    let recorded = Arc::new(Recorded::default());
    let seen = recorded.clone();
    let server = JsonServer::start(&certs, 0, move |_, review| {
        let t = Instant::now();
        let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": true}});
        seen.own.lock().push(t.elapsed());
        seen.calls.fetch_add(1, Ordering::Relaxed);
        answer
    })?;
    Ok(Webhook {
        server,
        ca_pem: certs.ca,
        recorded,
    })
}

fn configuration(hook: &Webhook) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "bench-allow"},
        "webhooks": [{
            "name": "allow.bench.ferrokube.io",
            "clientConfig": {
                "url": hook.server.url("/validate"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"bench-webhook": "on"}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "admissionReviewVersions": ["v1"],
        }],
    })
}

fn configmap(name: &str, hooked: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench-webhook": if hooked { "on" } else { "off" }}},
        "data": {"key": "value", "note": "a ConfigMap made for the webhook benchmark"}})
}

async fn post(client: &kube::Client, path: &str, body: &Value) -> anyhow::Result<()> {
    let req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body)?)?;
    client.request_text(req).await?;
    Ok(())
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Creates `n` ConfigMaps of each kind, one after the other, named after
/// `tag`: the samples without the webhook and with it.
async fn creates(client: &kube::Client, n: usize, tag: &str) -> anyhow::Result<[Samples; 2]> {
    let mut samples = [Samples::with_capacity(n), Samples::with_capacity(n)];
    for i in 0..n {
        for (hooked, s) in [false, true].into_iter().zip(samples.iter_mut()) {
            let side = if hooked { "on" } else { "off" };
            let body = configmap(&format!("{tag}-{side}-{i}"), hooked);
            let t = Instant::now();
            post(client, CONFIGMAPS, &body).await?;
            s.push(t.elapsed());
        }
    }
    Ok(samples)
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let hook = start_webhook()?;
    let server = start_server(&["--disable-scheduler", "--disable-controller-manager"])?;
    let client = client(&server.kubeconfig).await.context("connecting")?;
    poll(Duration::from_secs(30), EVERY, || async {
        let req = http::Request::get(format!("{CONFIGMAPS}?limit=1"))
            .body(Vec::new())
            .ok()?;
        client.request_text(req).await.ok()
    })
    .await
    .context("the server did not become ready")?;
    post(
        &client,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        &configuration(&hook),
    )
    .await
    .context("creating the ValidatingWebhookConfiguration")?;
    // The configuration is in force once the webhook hears of a create.
    let mut tries = 0;
    poll(Duration::from_secs(30), EVERY, || {
        tries += 1;
        let name = format!("probe-{tries}");
        let client = &client;
        let calls = &hook.recorded.calls;
        async move {
            post(client, CONFIGMAPS, &configmap(&name, true))
                .await
                .ok()?;
            (calls.load(Ordering::Relaxed) > 0).then_some(())
        }
    })
    .await
    .context("the webhook was never called")?;
    creates(&client, 100, "warm").await?;
    *hook.recorded.own.lock() = Samples::default();
    let calls_before = hook.recorded.calls.load(Ordering::Relaxed);
    let n = opts.creates;
    let [mut without, mut with] = creates(&client, n, "bench").await?;
    let calls = hook.recorded.calls.load(Ordering::Relaxed) - calls_before;
    anyhow::ensure!(
        calls == n,
        "the webhook was called {calls} times for {n} creates sent to it"
    );
    let mut own = std::mem::take(&mut *hook.recorded.own.lock());
    print(n, [&mut without, &mut with, &mut own]);
    Ok(())
}

fn print(n: usize, [without, with, own]: [&mut Samples; 3]) {
    let q = |s: &mut Samples| (s.quantile(0.5), s.quantile(0.99));
    let (without, with, own) = (q(without), q(with), q(own));
    // Signed differences in milliseconds.
    let diff = |a: Duration, b: Duration| a.as_secs_f64() * 1e3 - b.as_secs_f64() * 1e3;
    println!();
    println!("Validating webhook, added latency (cargo build --release -p ferrokube -p ferrokube-bench && target/release/ferrokube-bench webhook --creates {n})");
    println!("ferrokube server on the embedded store, the API server alone; a webhook in the benchmark's process over HTTPS on loopback that allows at once;");
    println!("ConfigMap creates by one kube-rs client over HTTPS, {n} sent to the webhook and {n} not (its object selector), one after the other");
    println!();
    println!("| creates | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    println!(
        "| without the webhook | {} | {} |",
        ms(without.0),
        ms(without.1)
    );
    println!("| with the webhook | {} | {} |", ms(with.0), ms(with.1));
    println!("| the webhook's own time | {} | {} |", ms(own.0), ms(own.1));
    println!(
        "| added (with − without) | {:.2} | {:.2} |",
        diff(with.0, without.0),
        diff(with.1, without.1)
    );
    println!(
        "| added over the webhook's own time | {:.2} | {:.2} |",
        diff(with.0, without.0) - own.0.as_secs_f64() * 1e3,
        diff(with.1, without.1) - own.1.as_secs_f64() * 1e3
    );
}
