//! Custom resources against ConfigMaps (issue 17): a release `ferrokube
//! server` (the API server alone) is given a CustomResourceDefinition with a
//! structural schema (typed fields with bounds and an enum, a default, a
//! `/status` subresource, printer columns); once it is Established, objects
//! of it and ConfigMaps of about the same size are created, read and listed
//! (whole, in pages, and as the Table `kubectl get` asks for) in the same
//! run, one request of each kind after the other so that the machine's
//! drift falls on both alike. Requests are raw HTTP through kube-rs's
//! client, so the figures are the server's work and the transport's, not
//! decoding into types. Prints each operation's median and p99 and the
//! ratio custom resource / ConfigMap (goal: within 1.5×).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use ferrokube_client::testing::wait::{poll, EVERY};

use crate::apiserver::{client, start_server};
use crate::stats::{ms, Samples};

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Objects of each kind created, read back and listed.
    #[arg(long, default_value_t = 1_000)]
    objects: usize,
    /// Lists of all the objects of each kind, for each way of listing.
    #[arg(long, default_value_t = 20)]
    lists: usize,
    /// Objects per page of the paged lists.
    #[arg(long, default_value_t = 100)]
    page: usize,
}

const GROUP: &str = "bench.ferrokube.io";
const NAMESPACE: &str = "default";

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["color"],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
                                "color": {"type": "string", "enum": ["red", "green", "blue"]},
                                "size": {"type": "string", "default": "medium"},
                                "owner": {"type": "string", "maxLength": 63},
                                "tags": {"type": "array", "maxItems": 16, "items": {"type": "string"}},
                                "note": {"type": "string"},
                            },
                        },
                        "status": {
                            "type": "object",
                            "properties": {"phase": {"type": "string"}},
                        },
                    },
                }},
            }],
        },
    })
}

/// The note both kinds carry, so that they are about the same size.
fn note() -> String {
    "a widget made for the benchmark; ".repeat(6)
}

fn widget(name: &str, i: usize) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"replicas": i % 1000, "color": "green", "owner": "team-a",
            "tags": ["a", "b", "c"], "note": note()},
    })
}

fn configmap(name: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"replicas": (i % 1000).to_string(), "color": "green", "owner": "team-a",
            "tags": "a,b,c", "note": note(), "size": "medium"},
    })
}

/// One of the two kinds compared: where its objects are and how one is made.
struct Kind {
    path: String,
    make: fn(&str, usize) -> Value,
}

/// Sends `req` and returns the body's length; an error status is an error.
async fn send(client: &kube::Client, req: http::Request<Vec<u8>>) -> anyhow::Result<usize> {
    Ok(client.request_text(req).await?.len())
}

fn get(uri: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    Ok(http::Request::get(uri).body(Vec::new())?)
}

/// The ways of listing compared.
#[derive(Clone, Copy)]
enum Listing {
    Whole,
    Paged(usize),
    Table,
}

/// Lists all the objects of `kind` once; returns the objects listed.
async fn list(client: &kube::Client, kind: &Kind, how: Listing) -> anyhow::Result<usize> {
    match how {
        Listing::Whole => {
            let body = client.request_text(get(&kind.path)?).await?;
            Ok(items(&body)?.0)
        }
        Listing::Table => {
            let req = http::Request::get(&kind.path)
                .header(
                    http::header::ACCEPT,
                    "application/json;as=Table;v=v1;g=meta.k8s.io",
                )
                .body(Vec::new())?;
            let body: Value = serde_json::from_str(&client.request_text(req).await?)?;
            Ok(body["rows"].as_array().map_or(0, Vec::len))
        }
        Listing::Paged(limit) => {
            let mut total = 0;
            let mut token = String::new();
            for _ in 0..100_000 {
                let mut uri = format!("{}?limit={limit}", kind.path);
                if !token.is_empty() {
                    uri.push_str("&continue=");
                    uri.push_str(&token);
                }
                let (n, next) = items(&client.request_text(get(&uri)?).await?)?;
                total += n;
                if next.is_empty() {
                    break;
                }
                token = next;
            }
            Ok(total)
        }
    }
}

/// The number of items of a list and its continue token.
fn items(body: &str) -> anyhow::Result<(usize, String)> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "continue", default)]
        token: String,
    }
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
        metadata: Meta,
    }
    let l: List = serde_json::from_str(body)?;
    Ok((l.items.len(), l.metadata.token))
}

/// One operation's samples for each kind (ConfigMaps first).
struct Pair {
    name: String,
    samples: [Samples; 2],
}

impl Pair {
    fn new(name: impl Into<String>) -> Pair {
        Pair {
            name: name.into(),
            samples: [Samples::default(), Samples::default()],
        }
    }

    fn print(&mut self) {
        let [cm, cr] = &mut self.samples;
        let (cm50, cm99) = (cm.quantile(0.5), cm.quantile(0.99));
        let (cr50, cr99) = (cr.quantile(0.5), cr.quantile(0.99));
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            self.name,
            ms(cm50),
            ms(cm99),
            ms(cr50),
            ms(cr99),
            ratio(cr50, cm50),
            ratio(cr99, cm99)
        );
    }
}

/// Runs `op` for ConfigMaps then for custom resources, `rounds` times,
/// timing each; `op` is given the kind's index (0: ConfigMaps) and the
/// round's.
async fn interleaved<F, Fut>(pair: &mut Pair, rounds: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for i in 0..rounds {
        for (k, samples) in pair.samples.iter_mut().enumerate() {
            let t = Instant::now();
            op(k, i).await?;
            samples.push(t.elapsed());
        }
    }
    Ok(())
}

/// Creates the CRD and waits (60 s at most) until it is Established and
/// its objects are served.
async fn install_crd(client: &kube::Client) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let req = http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&crd())?)?;
    send(client, req).await.context("creating the CRD")?;
    let crd_path =
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}");
    poll(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async {
            let body = client.request_text(get(&crd_path).ok()?).await.ok()?;
            let crd: Value = serde_json::from_str(&body).ok()?;
            let established = crd["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            established.then_some(())
        },
    )
    .await
    .context("the CRD did not become Established")?;
    let established = t.elapsed();
    let list = format!("/apis/{GROUP}/v1/namespaces/{NAMESPACE}/widgets?limit=1");
    poll(Duration::from_secs(60), EVERY, || async {
        client.request_text(get(&list).ok()?).await.ok().map(|_| ())
    })
    .await
    .context("the custom resource was not served")?;
    Ok(established)
}

pub(crate) async fn run(opts: Options) -> anyhow::Result<()> {
    let server = start_server(&["--disable-scheduler", "--disable-controller-manager"])?;
    let client = client(&server.kubeconfig).await.context("connecting")?;
    poll(Duration::from_secs(30), EVERY, || async {
        client
            .request_text(get("/api/v1/namespaces/default/configmaps?limit=1").ok()?)
            .await
            .ok()
    })
    .await
    .context("the server did not become ready")?;
    let established = install_crd(&client).await?;
    let kinds = [
        Kind {
            path: format!("/api/v1/namespaces/{NAMESPACE}/configmaps"),
            make: configmap,
        },
        Kind {
            path: format!("/apis/{GROUP}/v1/namespaces/{NAMESPACE}/widgets"),
            make: widget,
        },
    ];
    let n = opts.objects;
    let (client, kinds) = (&client, &kinds);
    let mut table = Vec::new();

    // Warm-up: connections, caches, the allocator.
    let mut warm = Pair::new("warm-up");
    interleaved(&mut warm, 50, |k, i| {
        create(client, &kinds[k], format!("warm-{i}"), i)
    })
    .await?;
    let mut creates = Pair::new(format!("create (1 client, {n} each)"));
    interleaved(&mut creates, n, |k, i| {
        create(client, &kinds[k], format!("obj-{i}"), i)
    })
    .await?;
    table.push(creates);
    let mut gets = Pair::new(format!("get (1 client, {n} each)"));
    interleaved(&mut gets, n, |k, i| async move {
        send(client, get(&format!("{}/obj-{i}", kinds[k].path))?).await?;
        Ok(())
    })
    .await?;
    table.push(gets);
    let total = n + 50;
    for (name, how) in [
        (format!("list of {total}, whole"), Listing::Whole),
        (
            format!("list of {total}, pages of {}", opts.page),
            Listing::Paged(opts.page),
        ),
        (
            format!("list of {total} as a Table (kubectl get)"),
            Listing::Table,
        ),
    ] {
        let mut pair = Pair::new(name);
        interleaved(&mut pair, opts.lists, |k, _| async move {
            let kind = &kinds[k];
            let got = list(client, kind, how).await?;
            anyhow::ensure!(
                got == total,
                "{} listed {got} objects, not {total}",
                kind.path
            );
            Ok(())
        })
        .await?;
        table.push(pair);
    }

    println!();
    println!(
        "Custom resources against ConfigMaps (cargo build --release -p ferrokube -p ferrokube-bench && target/release/ferrokube-bench crd --objects {n} --lists {} --page {})",
        opts.lists, opts.page
    );
    println!("ferrokube server on the embedded store, the API server alone; raw JSON requests through kube-rs over HTTPS, one kind after the other");
    println!(
        "CRD with a structural schema (bounds, an enum, a default, /status, printer columns) Established {} ms after its create",
        ms(established)
    );
    println!();
    println!("| operation | ConfigMap p50 ms | ConfigMap p99 ms | custom resource p50 ms | custom resource p99 ms | ratio p50 | ratio p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for p in &mut table {
        p.print();
    }
    Ok(())
}

/// Creates object `name` of `kind`.
async fn create(client: &kube::Client, kind: &Kind, name: String, i: usize) -> anyhow::Result<()> {
    let req = http::Request::post(&kind.path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&(kind.make)(&name, i))?)?;
    send(client, req).await?;
    Ok(())
}
