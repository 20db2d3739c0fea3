//! The CRI v1 gRPC client: tonic over a unix socket (`unix:///path` or a bare path).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{api, CriResult, Runtime};

/// A CRI runtime reached over its unix socket.
#[derive(Clone)]
pub struct RemoteRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// The socket path of an endpoint given as `unix:///path` or `/path`.
pub fn socket_path(endpoint: &str) -> PathBuf {
    PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint))
}

impl RemoteRuntime {
    /// Connects (lazily: the first call dials) to the runtime at `endpoint`.
    pub fn connect(endpoint: &str) -> anyhow::Result<Self> {
        let path = socket_path(endpoint);
        let channel = Endpoint::try_from("http://[::1]:0")?
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        // Image lists and pulls can exceed tonic's default 4 MiB message size.
        let runtime =
            RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
        let images = ImageServiceClient::new(channel).max_decoding_message_size(64 << 20);
        Ok(RemoteRuntime { runtime, images })
    }
}

fn timed<T>(msg: T, secs: u64) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(Duration::from_secs(secs));
    req
}

/// Deadline for ordinary calls; pulls and stops get their own.
const CALL_SECS: u64 = 30;

#[async_trait]
impl Runtime for RemoteRuntime {
    async fn version(&self) -> CriResult<api::VersionResponse> {
        let req = timed(
            api::VersionRequest {
                version: "v1".into(),
            },
            CALL_SECS,
        );
        Ok(self.runtime.clone().version(req).await?.into_inner())
    }

    async fn status(&self) -> CriResult<api::StatusResponse> {
        let req = timed(api::StatusRequest { verbose: false }, CALL_SECS);
        Ok(self.runtime.clone().status(req).await?.into_inner())
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> CriResult<String> {
        let req = timed(
            api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            },
            240,
        );
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let req = timed(
            api::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            },
            120,
        );
        self.runtime.clone().stop_pod_sandbox(req).await?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let req = timed(
            api::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            },
            120,
        );
        self.runtime.clone().remove_pod_sandbox(req).await?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus> {
        let req = timed(
            api::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            },
            CALL_SECS,
        );
        let resp = self
            .runtime
            .clone()
            .pod_sandbox_status(req)
            .await?
            .into_inner();
        resp.status
            .ok_or_else(|| tonic::Status::not_found("sandbox status missing"))
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> CriResult<Vec<api::PodSandbox>> {
        let req = timed(api::ListPodSandboxRequest { filter }, CALL_SECS);
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await?
            .into_inner()
            .items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String> {
        let req = timed(
            api::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            },
            240,
        );
        Ok(self
            .runtime
            .clone()
            .create_container(req)
            .await?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        let req = timed(
            api::StartContainerRequest {
                container_id: id.into(),
            },
            240,
        );
        self.runtime.clone().start_container(req).await?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> CriResult<()> {
        let req = timed(
            api::StopContainerRequest {
                container_id: id.into(),
                timeout: timeout_secs,
            },
            timeout_secs.max(0) as u64 + CALL_SECS,
        );
        self.runtime.clone().stop_container(req).await?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        let req = timed(
            api::RemoveContainerRequest {
                container_id: id.into(),
            },
            120,
        );
        self.runtime.clone().remove_container(req).await?;
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> CriResult<Vec<api::Container>> {
        let req = timed(api::ListContainersRequest { filter }, CALL_SECS);
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await?
            .into_inner()
            .containers)
    }

    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus> {
        let req = timed(
            api::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            },
            CALL_SECS,
        );
        let resp = self
            .runtime
            .clone()
            .container_status(req)
            .await?
            .into_inner();
        resp.status
            .ok_or_else(|| tonic::Status::not_found("container status missing"))
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> CriResult<api::ExecSyncResponse> {
        let msg = api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout_secs,
        };
        // CRI's timeout 0 means none (lifecycle hooks): no deadline on the call either.
        let req = if timeout_secs <= 0 {
            tonic::Request::new(msg)
        } else {
            timed(msg, timeout_secs as u64 + CALL_SECS)
        };
        Ok(self.runtime.clone().exec_sync(req).await?.into_inner())
    }

    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>> {
        let req = timed(
            api::ImageStatusRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            },
            CALL_SECS,
        );
        Ok(self
            .images
            .clone()
            .image_status(req)
            .await?
            .into_inner()
            .image)
    }

    async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> CriResult<String> {
        let req = timed(
            api::PullImageRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth: None,
                sandbox_config,
            },
            600,
        );
        Ok(self
            .images
            .clone()
            .pull_image(req)
            .await?
            .into_inner()
            .image_ref)
    }

    async fn list_images(&self) -> CriResult<Vec<api::Image>> {
        let req = timed(api::ListImagesRequest { filter: None }, CALL_SECS);
        Ok(self
            .images
            .clone()
            .list_images(req)
            .await?
            .into_inner()
            .images)
    }

    async fn exec(&self, req: api::ExecRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .exec(timed(req, CALL_SECS))
            .await?
            .into_inner()
            .url)
    }

    async fn attach(&self, req: api::AttachRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .attach(timed(req, CALL_SECS))
            .await?
            .into_inner()
            .url)
    }

    async fn port_forward(&self, req: api::PortForwardRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .port_forward(timed(req, CALL_SECS))
            .await?
            .into_inner()
            .url)
    }

    async fn image_fs_info(&self) -> CriResult<Vec<api::FilesystemUsage>> {
        let req = timed(api::ImageFsInfoRequest {}, CALL_SECS);
        Ok(self
            .images
            .clone()
            .image_fs_info(req)
            .await?
            .into_inner()
            .image_filesystems)
    }

    async fn list_container_stats(&self) -> CriResult<Vec<api::ContainerStats>> {
        let req = timed(api::ListContainerStatsRequest { filter: None }, CALL_SECS);
        Ok(self
            .runtime
            .clone()
            .list_container_stats(req)
            .await?
            .into_inner()
            .stats)
    }
}
