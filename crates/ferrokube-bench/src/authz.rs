//! Authorization on the hot path: the scheduler benchmark (SchedulingBasic)
//! and the API create benchmark, each with `--authorization-mode
//! AlwaysAllow` and with `Node,RBAC`, interleaved in one run. The clients
//! are not in `system:masters` (which is allowed before any mode is
//! asked): pods are created and watched by `bench-user`, with a client
//! certificate of the cluster CA and a RoleBinding in `default`, and the
//! scheduler is `system:kube-scheduler` with the bootstrap policy's roles,
//! so RBAC really looks up bindings and matches rules (every request also
//! visits the bootstrap bindings of `system:authenticated`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrokube_apiserver::authz::Mode;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::stats::ms;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Hollow nodes for SchedulingBasic.
    #[arg(long, default_value_t = 5_000)]
    nodes: usize,
    /// Pods for SchedulingBasic.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Runs of each mode (interleaved; medians printed).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Creates per client in each API create measurement.
    #[arg(long, default_value_t = 200)]
    per_client: usize,
}

/// The user the benchmarks' clients act as.
pub(crate) const USER: &str = "bench-user";

/// The authorization modes compared: the previous behaviour and RBAC.
pub(crate) const MODES: [(&str, &[Mode]); 2] = [
    ("AlwaysAllow", &[Mode::AlwaysAllow]),
    ("Node,RBAC", &[Mode::Node, Mode::Rbac]),
];

async fn create_or_keep<K>(api: &Api<K>, v: serde_json::Value) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(v)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `bench-user`'s rights, made by the admin: pods in `default`. The
/// scheduler's (`system:kube-scheduler`, `system:volume-scheduler`) and
/// every authenticated user's (`system:discovery`, `system:basic-user`,
/// `system:public-info-viewer`) are the bootstrap policy's.
pub(crate) async fn grant(admin: &kube::Client) -> anyhow::Result<()> {
    // bench-user: pods in default.
    create_or_keep(
        &Api::<Role>::namespaced(admin.clone(), "default"),
        json!({"metadata": {"name": "bench-pods", "namespace": "default"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        ]}),
    )
    .await?;
    create_or_keep(
        &Api::<RoleBinding>::namespaced(admin.clone(), "default"),
        json!({
            "metadata": {"name": "bench-pods", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-pods"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        }),
    )
    .await?;
    Ok(())
}

/// A client of the server whose admin kubeconfig is `admin_kubeconfig`
/// (in the server's data dir `data_dir`) acting as [`USER`], with a client
/// certificate of the cluster CA.
pub(crate) async fn user_client(
    data_dir: &Path,
    admin_kubeconfig: &PathBuf,
) -> anyhow::Result<kube::Client> {
    let (cert, key) = ferrokube_apiserver::pki::issue_client_certificate(data_dir, USER, &[])?;
    let (cert_path, key_path) = (
        data_dir.join("bench-user.crt"),
        data_dir.join("bench-user.key"),
    );
    std::fs::write(&cert_path, cert)?;
    std::fs::write(&key_path, key)?;
    let mut kc = Kubeconfig::read_from(admin_kubeconfig)?;
    for a in &mut kc.auth_infos {
        if let Some(info) = a.auth_info.as_mut() {
            info.client_certificate_data = None;
            info.client_key_data = None;
            info.token = None;
            info.client_certificate = Some(cert_path.to_string_lossy().into_owned());
            info.client_key = Some(key_path.to_string_lossy().into_owned());
        }
    }
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Per client count: clients, req/s, p50 ms, p99 ms, server CPU µs per
/// create.
type CreateFigures = Vec<(usize, f64, f64, f64, f64)>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// API creates by `bench-user` against a release `ferrokube server` (the
/// API server alone) in `mode`: req/s, p50 and p99 per client count.
async fn api_creates(mode: &str, per_client: usize, run: usize) -> anyhow::Result<CreateFigures> {
    let server = crate::apiserver::start_server(&[
        "--disable-scheduler",
        "--disable-controller-manager",
        "--authorization-mode",
        mode,
    ])?;
    let admin = crate::apiserver::client(&server.kubeconfig).await?;
    let pods_admin: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pods_admin.list(&Default::default()).await.is_err() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the server did not become ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    grant(&admin).await.context("granting")?;
    let data_dir = server
        .kubeconfig
        .parent()
        .context("the server's data dir")?
        .to_path_buf();
    let user = user_client(&data_dir, &server.kubeconfig).await?;
    let api: Api<Pod> = Api::namespaced(user, "default");
    // Warm up (connections, the RBAC index) before measuring.
    crate::apiserver::measure_creates(&api, 4, 25, &format!("warm{run}")).await?;
    let mut out = Vec::new();
    for clients in [1usize, 16, 64] {
        let cpu = server.cpu();
        let (rate, mut s) = crate::apiserver::measure_creates(
            &api,
            clients,
            per_client,
            &format!("c{clients}r{run}"),
        )
        .await?;
        let cpu = server.cpu().saturating_sub(cpu);
        out.push((
            clients,
            rate,
            s.quantile(0.5).as_secs_f64() * 1e3,
            s.quantile(0.99).as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / s.len().max(1) as f64,
        ));
    }
    let _ = pods_admin
        .delete_collection(&DeleteParams::default(), &Default::default())
        .await;
    Ok(out)
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let runs = o.runs.max(1);
    // SchedulingBasic, modes interleaved run by run.
    let mut sched: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); MODES.len()];
    for r in 0..runs {
        for (m, (name, modes)) in MODES.iter().enumerate() {
            eprintln!("SchedulingBasic, {name}, run {}:", r + 1);
            let (e2e, cpu) = crate::scheduler::basic_run(o.nodes, o.pods, modes).await?;
            sched[m].0.push(e2e);
            sched[m].1.push(cpu);
        }
    }
    // API creates, likewise.
    let mut creates: Vec<Vec<CreateFigures>> = vec![Vec::new(); MODES.len()];
    for r in 0..runs {
        for (m, (name, _)) in MODES.iter().enumerate() {
            eprintln!("API creates, {name}, run {}:", r + 1);
            creates[m].push(api_creates(name, o.per_client, r).await?);
        }
    }

    println!(
        "Authorization on the hot path: clients as {USER} (not system:masters; RoleBinding in default), scheduler as system:kube-scheduler (ClusterRoleBinding); medians of {runs} interleaved run(s)"
    );
    println!();
    println!(
        "SchedulingBasic ({} hollow nodes, {} pods, in-process API server):",
        o.nodes, o.pods
    );
    println!("| authorization | e2e pods/s | CPU us/pod |");
    println!("|---|---:|---:|");
    let base_e2e = median(sched[0].0.clone());
    let base_cpu = median(sched[0].1.clone());
    for (m, (name, _)) in MODES.iter().enumerate() {
        let e2e = median(sched[m].0.clone());
        let cpu = median(sched[m].1.clone());
        println!(
            "| {name} | {e2e:.0} ({:+.1}%) | {cpu:.0} ({:+.1}%) |",
            (e2e / base_e2e - 1.0) * 100.0,
            (cpu / base_cpu - 1.0) * 100.0
        );
    }
    println!();
    println!("API creates of pods (release ferrokube server, API server alone, kube-rs over HTTPS, {} per client):", o.per_client);
    println!("| authorization | clients | req/s | p50 ms | p99 ms | server CPU us/create |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (ci, clients) in [1usize, 16, 64].iter().enumerate() {
        let base = median(creates[0].iter().map(|r| r[ci].1).collect());
        let base_cpu = median(creates[0].iter().map(|r| r[ci].4).collect());
        for (m, (name, _)) in MODES.iter().enumerate() {
            let rate = median(creates[m].iter().map(|r| r[ci].1).collect());
            let p50 = median(creates[m].iter().map(|r| r[ci].2).collect());
            let p99 = median(creates[m].iter().map(|r| r[ci].3).collect());
            let cpu = median(creates[m].iter().map(|r| r[ci].4).collect());
            println!(
                "| {name} | {clients} | {rate:.0} ({:+.1}%) | {} | {} | {cpu:.0} ({:+.1}%) |",
                (rate / base - 1.0) * 100.0,
                ms(std::time::Duration::from_secs_f64(p50 / 1e3)),
                ms(std::time::Duration::from_secs_f64(p99 / 1e3)),
                (cpu / base_cpu - 1.0) * 100.0,
            );
        }
    }
    Ok(())
}
