//! Garbage collection and namespace deletion at scale (issue 5): how long
//! the collector takes to remove a thousand dependents of a deleted owner
//! (background), to let an owner go after its thousand blocking dependents
//! (foreground), and the namespace controller to empty and remove a
//! namespace of a thousand ConfigMaps. In-process API server on the
//! embedded store, the two controllers alone.

use std::time::Duration;

use anyhow::Context;
use ferrokube_client::testing::wait::poll;
use ferrokube_client::testing::TestApi;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// Dependents (and ConfigMaps in the namespace).
    #[arg(long, default_value_t = 1000)]
    dependents: usize,
}

/// How long each case may take, and how often it is looked at.
const LIMIT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_millis(50);

async fn create_many<K>(api: &Api<K>, objs: Vec<serde_json::Value>) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(objs)
        .map(|o| async move {
            let obj: K = serde_json::from_value(o)?;
            api.create(&PostParams::default(), &obj).await?;
            Ok(())
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn count<K>(api: &Api<K>) -> usize
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

pub(crate) async fn run(o: Options) -> anyhow::Result<()> {
    let n = o.dependents;
    let api = TestApi::start().await?;
    let client = api.client().await?;
    let cancel = CancellationToken::new();
    tokio::spawn(ferrokube_controllers::gc::run(
        client.clone(),
        cancel.clone(),
    ));
    tokio::spawn(ferrokube_controllers::namespace::run(
        client.clone(),
        cancel.clone(),
    ));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let owner_ref = |owner: &ConfigMap| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
               "uid": owner.metadata.uid, "blockOwnerDeletion": true})
    };
    let new_owner = || async {
        let o: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}}))?;
        anyhow::Ok(cms.create(&PostParams::default(), &o).await?)
    };

    // Background: the pods of a deleted owner.
    let owner = new_owner().await?;
    let oref = owner_ref(&owner);
    create_many(
        &pods,
        (0..n)
            .map(|i| {
                json!({"metadata": {"name": format!("p-{i}"), "ownerReferences": [oref]},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
            })
            .collect(),
    )
    .await
    .context("creating the dependents")?;
    cms.delete("owner", &DeleteParams::default()).await?;
    let (_, background) = poll(LIMIT, STEP, || async {
        (count(&pods).await == 0).then_some(())
    })
    .await
    .context("timed out waiting for the dependents to go")?;

    // Foreground: the owner goes after its blocking dependents.
    let owner = new_owner().await?;
    let oref = owner_ref(&owner);
    create_many(
        &cms,
        (0..n)
            .map(|i| json!({"metadata": {"name": format!("c-{i}"), "ownerReferences": [oref]}}))
            .collect(),
    )
    .await?;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    cms.delete("owner", &dp).await?;
    let (_, foreground) = poll(LIMIT, STEP, || async {
        matches!(cms.get_opt("owner").await, Ok(None)).then_some(())
    })
    .await
    .context("timed out waiting for the owner to go")?;

    // A namespace of ConfigMaps.
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "big"}}))?;
    nss.create(&PostParams::default(), &ns).await?;
    let big: Api<ConfigMap> = Api::namespaced(client.clone(), "big");
    create_many(
        &big,
        (0..n)
            .map(|i| json!({"metadata": {"name": format!("c-{i}")}}))
            .collect(),
    )
    .await?;
    nss.delete("big", &DeleteParams::default()).await?;
    let (_, namespace) = poll(LIMIT, STEP, || async {
        matches!(nss.get_opt("big").await, Ok(None)).then_some(())
    })
    .await
    .context("timed out waiting for the namespace to go")?;
    cancel.cancel();

    println!("Garbage collection and namespace deletion, {n} objects each (cargo run --release -p ferrokube-bench -- gc)");
    println!("| case | seconds |");
    println!("|---|---|");
    println!(
        "| background: dependents of a deleted owner collected | {:.2} |",
        background.as_secs_f64()
    );
    println!(
        "| foreground: owner gone after its blocking dependents | {:.2} |",
        foreground.as_secs_f64()
    );
    println!(
        "| namespace emptied and removed | {:.2} |",
        namespace.as_secs_f64()
    );
    Ok(())
}
