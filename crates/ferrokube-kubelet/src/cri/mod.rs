//! The container runtime as the agent sees it: CRI v1's runtime and image services
//! behind one trait, with the gRPC client for a real runtime (`remote`) and an
//! in-memory runtime for unit tests (`fake`). Messages are CRI's own protobuf types.

pub mod fake;
pub mod remote;

pub use k8s_cri::v1 as api;

use async_trait::async_trait;

/// Errors are gRPC statuses, as CRI returns them; `is_not_found` tells the one
/// code the agent acts on.
pub type CriResult<T> = Result<T, tonic::Status>;

/// True if the runtime said the object does not exist.
pub fn is_not_found(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::NotFound
        || (status.code() == tonic::Code::Unknown && status.message().contains("not found"))
}

/// Labels the agent puts on every sandbox and container (Kubernetes' names).
pub mod labels {
    /// The pod's name.
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// The pod's namespace.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// The pod's UID: how the agent finds a pod's sandboxes and containers.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// The container's name in the pod's spec.
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// Annotation: the container's restart count.
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    /// Annotation: "init" for init containers.
    pub const CONTAINER_KIND: &str = "ferrokube.io/container-kind";
}

/// CRI's RuntimeService and ImageService, the calls the agent makes.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's name and version (reported in the Node's status).
    async fn version(&self) -> CriResult<api::VersionResponse>;
    /// The runtime's conditions (RuntimeReady, NetworkReady).
    async fn status(&self) -> CriResult<api::StatusResponse>;

    /// Creates and starts a pod sandbox (its network namespace and pause process); returns its ID.
    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> CriResult<String>;
    /// Stops the sandbox and its containers, and releases its network.
    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()>;
    /// Removes a sandbox and its containers.
    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()>;
    /// The sandbox's state and addresses.
    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus>;
    /// The sandboxes matching `filter` (all of them without one).
    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> CriResult<Vec<api::PodSandbox>>;

    /// Creates a container in a sandbox; returns its ID.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String>;
    /// Starts a created container.
    async fn start_container(&self, id: &str) -> CriResult<()>;
    /// Stops with SIGTERM, then SIGKILL after `timeout_secs`.
    async fn stop_container(&self, id: &str, timeout_secs: i64) -> CriResult<()>;
    /// Removes a container (stopping it first if it runs).
    async fn remove_container(&self, id: &str) -> CriResult<()>;
    /// The containers matching `filter` (all of them without one).
    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> CriResult<Vec<api::Container>>;
    /// The container's state, exit code and times.
    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus>;
    /// Runs a command in the container and waits for it, at most `timeout_secs` (exec probes and hooks).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> CriResult<api::ExecSyncResponse>;

    /// The image's status, `None` if the runtime does not have it.
    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>>;
    /// Pulls; returns the image reference (digest) the runtime stored.
    async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> CriResult<String>;
    /// The images the runtime holds.
    async fn list_images(&self) -> CriResult<Vec<api::Image>>;

    /// Streaming calls: each returns a URL on the runtime's streaming server
    /// that serves one exec, attach or port-forward session (the node's HTTP
    /// server proxies the client's upgrade request to it).
    async fn exec(&self, _req: api::ExecRequest) -> CriResult<String> {
        Err(tonic::Status::unimplemented(
            "exec is not supported by this runtime",
        ))
    }
    /// The streaming URL of one attach session (see [`Runtime::exec`]).
    async fn attach(&self, _req: api::AttachRequest) -> CriResult<String> {
        Err(tonic::Status::unimplemented(
            "attach is not supported by this runtime",
        ))
    }
    /// CPU and memory use of every container.
    async fn list_container_stats(&self) -> CriResult<Vec<api::ContainerStats>> {
        Err(tonic::Status::unimplemented(
            "container stats are not supported by this runtime",
        ))
    }
    /// The filesystems holding images (the summary's `runtime.imageFs`).
    async fn image_fs_info(&self) -> CriResult<Vec<api::FilesystemUsage>> {
        Err(tonic::Status::unimplemented(
            "image filesystem info is not supported by this runtime",
        ))
    }
    /// The streaming URL of one port-forward session (see [`Runtime::exec`]).
    async fn port_forward(&self, _req: api::PortForwardRequest) -> CriResult<String> {
        Err(tonic::Status::unimplemented(
            "port-forward is not supported by this runtime",
        ))
    }
}
