//! The `Dangling` condition of FlowSchemas, as Kubernetes' priority and
//! fairness configuration controller keeps it: `False` (reason `Found`)
//! when the PriorityLevelConfiguration a FlowSchema names exists, `True`
//! (reason `NotFound`) when it does not. (ferrokube stores priority and
//! fairness objects but does not classify requests by them.)
//!
//! Level-triggered: each pass compares every FlowSchema's condition with
//! what it should be; watches of both kinds wake it, and it runs again now
//! and then.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::flowcontrol::v1::{
    FlowSchema, FlowSchemaCondition, PriorityLevelConfiguration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, PostParams};
use kube::Api;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util;
use crate::watchqueue::Key;

const RESYNC: Duration = Duration::from_secs(60);

/// The condition a FlowSchema naming `level` should carry: (status,
/// reason, message).
pub(crate) fn dangling(level: &str, exists: bool) -> (&'static str, &'static str, String) {
    if exists {
        (
            "False",
            "Found",
            format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"),
        )
    } else {
        (
            "True",
            "NotFound",
            format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"),
        )
    }
}

/// Sets `fs`'s Dangling condition; true if it changed.
pub(crate) fn update_condition(fs: &mut FlowSchema, levels: &HashSet<String>) -> bool {
    let level = fs
        .spec
        .as_ref()
        .map(|s| s.priority_level_configuration.name.clone())
        .unwrap_or_default();
    let (status, reason, message) = dangling(&level, levels.contains(&level));
    let conditions = fs
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let current = conditions
        .iter_mut()
        .find(|c| c.type_.as_deref() == Some("Dangling"));
    match current {
        Some(c)
            if c.status.as_deref() == Some(status)
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message.as_str()) =>
        {
            false
        }
        Some(c) => {
            if c.status.as_deref() != Some(status) {
                c.last_transition_time = Some(Time(jiff::Timestamp::now()));
            }
            c.status = Some(status.into());
            c.reason = Some(reason.into());
            c.message = Some(message);
            true
        }
        None => {
            conditions.push(FlowSchemaCondition {
                type_: Some("Dangling".into()),
                status: Some(status.into()),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(Time(jiff::Timestamp::now())),
            });
            true
        }
    }
}

async fn pass(schemas: &Api<FlowSchema>, levels: &Api<PriorityLevelConfiguration>) {
    let (Ok(fs), Ok(pl)) = (
        schemas.list(&ListParams::default()).await,
        levels.list(&ListParams::default()).await,
    ) else {
        return;
    };
    let names: HashSet<String> = pl
        .items
        .iter()
        .filter(|l| l.metadata.deletion_timestamp.is_none())
        .filter_map(|l| l.metadata.name.clone())
        .collect();
    for mut f in fs.items {
        if !update_condition(&mut f, &names) {
            continue;
        }
        let name = f.metadata.name.clone().unwrap_or_default();
        if let Err(e) = schemas
            .replace_status(&name, &PostParams::default(), &f)
            .await
        {
            tracing::debug!(flowschema = name, error = %e, "writing the Dangling condition");
        }
    }
}

/// Keeps every FlowSchema's Dangling condition until `cancel`.
pub(crate) async fn run(client: kube::Client, cancel: CancellationToken) {
    let c = Arc::new(DanglingCondition {
        ctx: Context::new(NAME, cancel.clone()),
        schemas: Api::all(client.clone()),
        levels: Api::all(client),
    });
    let watches = [
        util::on_watch(c.schemas.clone(), c.ctx.pass_trigger(), cancel.clone()),
        util::on_watch(c.levels.clone(), c.ctx.pass_trigger(), cancel.clone()),
    ];
    controller::run(c, 1).await;
    for w in watches {
        w.abort();
    }
}

/// The controller's name (its metrics).
const NAME: &str = "flowschema-status";

/// The controller: a pass over every FlowSchema on each change of
/// FlowSchemas or priority levels.
struct DanglingCondition {
    ctx: Context,
    schemas: Api<FlowSchema>,
    levels: Api<PriorityLevelConfiguration>,
}

impl Reconciler for DanglingCondition {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        pass(&self.schemas, &self.levels).await;
        Ok(Action::requeue(RESYNC))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_follows_the_priority_level() {
        let mut fs: FlowSchema = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "mine"},
            "spec": {"priorityLevelConfiguration": {"name": "batch"}}}))
        .unwrap();
        let mut levels = HashSet::new();
        assert!(update_condition(&mut fs, &levels));
        let c = &fs.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_deref(), c.reason.as_deref()),
            (Some("True"), Some("NotFound"))
        );
        assert!(!update_condition(&mut fs, &levels), "nothing more to write");
        levels.insert("batch".to_string());
        assert!(update_condition(&mut fs, &levels));
        let c = &fs.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(c.status.as_deref(), Some("False"));
        assert_eq!(
            c.message.as_deref(),
            Some("This FlowSchema references the PriorityLevelConfiguration object named \"batch\" and it exists")
        );
    }
}
