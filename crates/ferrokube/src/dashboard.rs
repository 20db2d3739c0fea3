//! `ferrokube dashboard url`: a one-time login link to the dashboard, for
//! the user of a kubeconfig (by default the server's admin kubeconfig).
//! The API server makes the code (`POST /dashboard/codes`, authenticated
//! by the kubeconfig's certificate or token); the link is good once, for
//! five minutes.

use anyhow::Context;

use crate::cli::DashboardUrlArgs;

/// Asks the server for a code and prints `<server>/dashboard/#code=<code>`.
pub(crate) async fn url(args: DashboardUrlArgs) -> anyhow::Result<()> {
    let path = args
        .kubeconfig
        .unwrap_or_else(|| args.data_dir.join("kubeconfig.yaml"));
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .with_context(|| format!("loading the kubeconfig {}", path.display()))?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let client = kube::Client::try_from(config).context("building the API client")?;
    let request = hyper::Request::post("/dashboard/codes")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .context("building the request")?;
    let answer: serde_json::Value = client.request(request).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => {
            anyhow::anyhow!("the server at {server} does not serve the dashboard (started with --disable dashboard?)")
        }
        other => anyhow::Error::from(other).context(format!("asking {server} for a login code")),
    })?;
    let code = answer
        .get("code")
        .and_then(serde_json::Value::as_str)
        .context("the server's answer has no code")?;
    println!("{server}/dashboard/#code={code}");
    Ok(())
}
