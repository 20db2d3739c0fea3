//! Finding a pod's sandbox and container instances in the runtime by the
//! labels the agent puts on them (namespace, pod name, container name).

use std::collections::HashMap;

use crate::cri::{api, labels, Runtime};

/// Instances of container `container` of pod `ns/pod`, newest first (all from
/// the newest pod UID, so a pod re-created under the same name does not show
/// its predecessor's).
pub(crate) async fn containers(
    runtime: &dyn Runtime,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<api::Container>, tonic::Status> {
    let filter = api::ContainerFilter {
        label_selector: HashMap::from([
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
            (labels::CONTAINER_NAME.to_string(), container.to_string()),
        ]),
        ..Default::default()
    };
    let mut list = runtime.list_containers(Some(filter)).await?;
    list.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    if let Some(uid) = list
        .first()
        .and_then(|c| c.labels.get(labels::POD_UID))
        .cloned()
    {
        list.retain(|c| c.labels.get(labels::POD_UID) == Some(&uid));
    }
    Ok(list)
}

/// True for an instance that is running.
pub(crate) fn is_running(c: &api::Container) -> bool {
    c.state == api::ContainerState::ContainerRunning as i32
}

/// The instance logs read: the newest, or with `previous` the last one that
/// has ended before it (the newest itself when it has ended, as in a back-off).
pub(crate) fn pick(instances: &[api::Container], previous: bool) -> Option<&api::Container> {
    let newest = instances.first()?;
    if !previous {
        return Some(newest);
    }
    let exited = |c: &&api::Container| c.state == api::ContainerState::ContainerExited as i32;
    if exited(&newest) {
        return Some(newest);
    }
    instances.iter().skip(1).find(exited)
}

/// The pod's ready sandbox, newest first.
pub(crate) async fn sandbox(
    runtime: &dyn Runtime,
    ns: &str,
    pod: &str,
) -> Result<Option<api::PodSandbox>, tonic::Status> {
    let filter = api::PodSandboxFilter {
        label_selector: HashMap::from([
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
        ]),
        state: Some(api::PodSandboxStateValue {
            state: api::PodSandboxState::SandboxReady as i32,
        }),
        ..Default::default()
    };
    let mut list = runtime.list_pod_sandbox(Some(filter)).await?;
    list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(list.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, state: api::ContainerState) -> api::Container {
        api::Container {
            id: id.into(),
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn previous_is_the_last_ended_instance() {
        use api::ContainerState::*;
        let running = [c("b", ContainerRunning), c("a", ContainerExited)];
        assert_eq!(pick(&running, false).unwrap().id, "b");
        assert_eq!(pick(&running, true).unwrap().id, "a");
        let backoff = [c("b", ContainerExited), c("a", ContainerExited)];
        assert_eq!(pick(&backoff, true).unwrap().id, "b");
        assert!(pick(&[c("a", ContainerRunning)], true).is_none());
        assert!(pick(&[], false).is_none());
    }
}
