//! The dashboard at 10,000 pods, in a real browser: a release `ferrokube
//! server` (the binary beside this one; no node agent) with one hollow node
//! (a Node object, as the scheduler benchmark makes them) and 10,000 pods
//! bound to it, spread over namespaces; headless `chromium` logged in with
//! the admin kubeconfig, driven over the DevTools protocol
//! (`ferrokube-browser`). Prints, for the Pods page of all namespaces, the
//! time from navigation to the first rows and to the complete count
//! (`[data-testid=list-count]` gets `data-count`); the latency from a
//! change through the API (a pod's restart count, as its kubelet would
//! post it) to the row showing it, p50/p99 over many changes, stamped in
//! the page by a MutationObserver; the browser's JS heap and its processes'
//! memory; and the requests the page sends while idle (goal: none).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ferrokube_browser::{js_string, Browser, LaunchOptions, Page};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::stats::Samples;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Pods, all on the hollow node.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Namespaces the pods are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Page loads measured (first rows, complete count); the median is printed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Changes whose latency to the row is measured.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Seconds the page is left idle while its requests are counted.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
}

/// The node the pods are bound to.
const NODE: &str = "node-0";

/// The route of the Pods page, all namespaces.
const PODS: &str = "#/r/core/v1/pods?ns=_all";

/// Stamps, on every document, when the first row and the complete count
/// appear (ms since navigation start) and, for the rows it is told to
/// watch (`__fk.watch`), when each value of their Restarts cell first shows
/// (`Date.now()`, the clock the benchmark stamps its changes with).
const RECORDER: &str = r#"
window.__fk = { first: null, complete: null, count: null, watch: [], seen: {} };
new MutationObserver(() => {
  const fk = window.__fk, now = performance.now();
  if (fk.first === null && document.querySelector('[data-testid=list-table] tr[data-name]')) fk.first = now;
  if (fk.complete === null) {
    const c = document.querySelector('[data-testid=list-count][data-count]');
    if (c) { fk.complete = now; fk.count = c.getAttribute('data-count'); }
  }
  if (fk.watch.length) {
    const t = Date.now();
    for (const [ns, name] of fk.watch) {
      const c = document.querySelector(`tr[data-name="${name}"][data-namespace="${ns}"] td[data-col="Restarts"]`);
      if (!c) continue;
      const k = `${ns}/${name}=${c.textContent.trim().split(/\s/)[0]}`;
      if (!(k in fk.seen)) fk.seen[k] = t;
    }
  }
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"#;

fn ns_name(i: usize) -> String {
    format!("bench-{i:02}")
}

/// A pod bound to the hollow node (nothing runs it: its status is what the
/// benchmark posts).
fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "bench", "shard": (i % 16).to_string()}},
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]
        }
    }))
    .expect("a valid pod")
}

/// The status a kubelet posts for a container that restarted `n` times.
fn restarted(n: usize) -> serde_json::Value {
    json!({"status": {"containerStatuses": [{
        "name": "c", "image": "registry.k8s.io/pause:3.10", "imageID": "", "ready": false,
        "restartCount": n, "started": false,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}
    }]}})
}

/// Creates the hollow node, the namespaces and the pods.
async fn populate(client: &kube::Client, o: &Options) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &crate::scheduler::hollow_node(0, 1))
        .await
        .context("creating the hollow node")?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for n in 0..o.namespaces.max(1) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": ns_name(n)}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    // The namespaces' default service accounts (pods need them), made by
    // the controller manager.
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..o.namespaces.max(1) {
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &ns_name(n));
        while sa.get_opt("default").await?.is_none() {
            anyhow::ensure!(Instant::now() < deadline, "no default service account");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let t = Instant::now();
    let spread = o.namespaces.max(1);
    futures::stream::iter(0..o.pods)
        .map(|i| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns_name(i % spread));
            async move {
                api.create(&PostParams::default(), &pod(i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .context("creating pods")?;
    eprintln!(
        "  {} pods created in {:.1}s",
        o.pods,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn eval_f64(page: &Page, js: &str) -> anyhow::Result<Option<f64>> {
    Ok(page.evaluate(js).await?.as_f64())
}

/// Logs in through the login form with the admin kubeconfig.
async fn login(page: &Page, origin: &str, kubeconfig: &str) -> anyhow::Result<()> {
    page.navigate(&format!("{origin}/dashboard/")).await?;
    let t = Duration::from_secs(30);
    page.wait_for("[data-testid=login-kubeconfig]", t).await?;
    page.fill("[data-testid=login-kubeconfig]", kubeconfig)
        .await?;
    page.click("[data-testid=login-submit]").await?;
    page.wait_for("[data-testid=user-name]", t)
        .await
        .context("logging in")?;
    Ok(())
}

/// One load of the Pods page from a blank page: ms from navigation start to
/// the first rows and to the complete count, and the count.
async fn load_pods_page(page: &Page, origin: &str) -> anyhow::Result<(f64, f64, String)> {
    page.navigate("about:blank").await?;
    page.navigate(&format!("{origin}/dashboard/{PODS}")).await?;
    page.wait_until_every(
        "the complete count on the Pods page",
        "window.__fk && window.__fk.complete !== null && window.__fk.first !== null",
        Duration::from_secs(60),
        Duration::from_millis(10),
    )
    .await?;
    let first = eval_f64(page, "window.__fk.first")
        .await?
        .unwrap_or(f64::NAN);
    let complete = eval_f64(page, "window.__fk.complete")
        .await?
        .unwrap_or(f64::NAN);
    let count = page
        .evaluate("window.__fk.count")
        .await?
        .as_str()
        .unwrap_or("")
        .to_string();
    Ok((first, complete, count))
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// `changes` restart counts posted one after the other to the pods whose
/// rows are on screen; each one's latency from before its request to its
/// row showing it.
async fn update_latency(
    page: &Page,
    client: &kube::Client,
    changes: usize,
) -> anyhow::Result<Samples> {
    let rows: Vec<(String, String)> = page
        .evaluate_as(
            "[...document.querySelectorAll('[data-testid=list-table] tr[data-name]')].slice(0, 20)\
             .filter(r => r.querySelector('td[data-col=\"Restarts\"]'))\
             .map(r => [r.getAttribute('data-namespace'), r.getAttribute('data-name')])",
        )
        .await?;
    anyhow::ensure!(
        !rows.is_empty(),
        "no rows with a Restarts cell on the Pods page"
    );
    page.evaluate(&format!(
        "window.__fk.watch = {}; window.__fk.seen = {{}}; 0",
        serde_json::to_string(&rows)?
    ))
    .await?;
    let mut samples = Samples::with_capacity(changes);
    for i in 1..=changes {
        let (ns, name) = &rows[i % rows.len()];
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let key = js_string(&format!("{ns}/{name}={i}"));
        let sent = epoch_ms();
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(restarted(i)))
            .await
            .with_context(|| format!("patching {ns}/{name}"))?;
        let seen = page
            .wait_until_every(
                &format!("{ns}/{name} to show {i} restarts"),
                &format!("window.__fk.seen[{key}]"),
                Duration::from_secs(10),
                Duration::from_millis(2),
            )
            .await?
            .as_f64()
            .unwrap_or(f64::NAN);
        samples.push(Duration::from_secs_f64(((seen - sent) / 1e3).max(0.0)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(samples)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn goal(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

/// Counts what the page sends on its own for `seconds`.
async fn idle_requests(page: &Page, seconds: u64) -> anyhow::Result<()> {
    let mark = page.net_mark().await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let sent: Vec<String> = page
        .net_since(mark)
        .await?
        .into_iter()
        .filter(|e| e.is_start())
        .map(|e| format!("{} {}", e.method, e.url))
        .collect();
    // Streams of this document (those of pages left before never end in
    // the log).
    let log = page.net_log().await?;
    let doc = log
        .iter()
        .rposition(|e| e.resource_type == "Document" && e.is_start())
        .unwrap_or(0);
    let open: Vec<_> = page
        .net_open()
        .await?
        .into_iter()
        .filter(|o| {
            log.iter()
                .position(|e| e.request_id == o.request_id && e.is_start())
                .is_some_and(|i| i > doc)
        })
        .collect();
    println!(
        "requests while idle for {} s: {} (goal 0: {}); {} stream(s) open{}",
        seconds,
        sent.len(),
        goal(sent.is_empty()),
        open.len(),
        if sent.is_empty() {
            String::new()
        } else {
            format!(": {}", sent.join(", "))
        }
    );
    Ok(())
}

/// The browser's memory, with the page showing the pods.
async fn memory(page: &Page, browser: &Browser) -> anyhow::Result<()> {
    page.collect_garbage().await?;
    let metrics = page.metrics().await?;
    let mem = browser.memory();
    println!(
        "browser memory on the Pods page: JS heap used {:.1} MiB (of {:.1} MiB), DOM nodes {:.0}; chromium's {} processes PSS {:.0} MiB (RSS {:.0} MiB, renderers' RSS {:.0} MiB)",
        mib(metrics.get("JSHeapUsedSize").copied().unwrap_or(0.0)),
        mib(metrics.get("JSHeapTotalSize").copied().unwrap_or(0.0)),
        metrics.get("Nodes").copied().unwrap_or(0.0),
        mem.processes,
        mib(mem.pss as f64),
        mib(mem.rss as f64),
        mib(mem.renderer_rss as f64),
    );
    Ok(())
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let server = crate::apiserver::start_server(&["--node-monitor-grace-period", "1h"])?;
    let client = crate::apiserver::client(&server.kubeconfig).await?;
    let kubeconfig = std::fs::read_to_string(&server.kubeconfig)?;
    let origin = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .context("no server in the kubeconfig")?;
    populate(&client, &o).await?;
    let total = Api::<Pod>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .remaining_item_count
        .map_or(o.pods, |r| r as usize + 1);

    // As root, chromium in a network namespace of its own that reaches only
    // the server: it drops its connections when an interface appears on the
    // host (pods of a node test running beside the benchmark).
    let port = origin
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .context("no port in the server's URL")?;
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let browser = Browser::launch(LaunchOptions {
        isolated_network: root.then(|| vec![port]),
        ..Default::default()
    })
    .await?;
    let version = browser.call("Browser.getVersion", json!({})).await?;
    let page = browser.page().await?;
    login(&page, &origin, &kubeconfig).await?;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": RECORDER}),
    )
    .await?;
    println!(
        "dashboard: ferrokube server ({} build, API server with its controllers, no node agent), {} pods on a hollow node in {} namespaces; {} headless, window {}x{}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        total,
        o.namespaces,
        version["product"].as_str().unwrap_or("chromium"),
        LaunchOptions::default().window.0,
        LaunchOptions::default().window.1,
    );

    // Loads of the Pods page, all namespaces.
    let (mut firsts, mut completes) = (Vec::new(), Vec::new());
    for run in 1..=o.runs.max(1) {
        let (first, complete, count) = load_pods_page(&page, &origin).await?;
        println!(
            "  Pods page load {run}: first rows {first:.0} ms, complete count ({count}) {complete:.0} ms"
        );
        anyhow::ensure!(
            count == total.to_string(),
            "the page counted {count} pods, the API has {total}"
        );
        firsts.push(first);
        completes.push(complete);
    }
    let (first, complete) = (median(firsts), median(completes));
    println!(
        "Pods page, all namespaces, median of {} loads: first rows {first:.0} ms (goal <= 1000: {}), complete count {complete:.0} ms (goal <= 3000: {})",
        o.runs.max(1),
        goal(first <= 1000.0),
        goal(complete <= 3000.0)
    );

    let mut lat = update_latency(&page, &client, o.changes).await?;
    let (p50, p99, max) = (lat.quantile(0.5), lat.quantile(0.99), lat.quantile(1.0));
    println!(
        "update latency, API change to row ({} changes): p50 {:.0} ms, p99 {:.0} ms (goal <= 500: {}), max {:.0} ms",
        lat.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        goal(p99 <= Duration::from_millis(500)),
        max.as_secs_f64() * 1e3
    );

    idle_requests(&page, o.idle_seconds).await?;
    memory(&page, &browser).await?;
    drop(page);
    drop(browser);
    drop(server);
    Ok(())
}
