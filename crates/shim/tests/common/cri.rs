//! A small CRI v1 client (the calls kubelet makes), over containerd's
//! socket, blocking on a private tokio runtime.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

type R<T> = Result<T, tonic::Status>;

impl Cri {
    pub fn connect(socket: &Path) -> Cri {
        Self::try_connect(socket).expect("connecting to containerd's CRI socket")
    }

    /// Connects; every call then times out after a minute.
    pub fn try_connect(socket: &Path) -> Option<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let path: PathBuf = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:50051")
                    .unwrap()
                    .timeout(std::time::Duration::from_secs(60))
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let p = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(p).await?,
                            ))
                        }
                    }))
                    .await
            })
            .ok()?;
        Some(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    pub fn version(&mut self) -> R<VersionResponse> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.version(VersionRequest::default()))
            .map(|r| r.into_inner())
    }

    /// Whether CRI knows the image (ImageStatus).
    pub fn image_present(&mut self, image: &str) -> R<bool> {
        let c = &mut self.images;
        self.rt
            .block_on(c.image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            }))
            .map(|r| r.into_inner().image.is_some())
    }

    pub fn run_pod_sandbox(&mut self, config: PodSandboxConfig, handler: &str) -> R<String> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: handler.to_string(),
            }))
            .map(|r| r.into_inner().pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&mut self, id: &str) -> R<PodSandboxStatus> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            }))
            .map(|r| r.into_inner().status.unwrap_or_default())
    }

    pub fn create_container(
        &mut self,
        pod: &str,
        config: ContainerConfig,
        sandbox: PodSandboxConfig,
    ) -> R<String> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox),
            }))
            .map(|r| r.into_inner().container_id)
    }

    pub fn start_container(&mut self, id: &str) -> R<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.start_container(StartContainerRequest {
                container_id: id.to_string(),
            }))
            .map(|_| ())
    }

    pub fn container_status(&mut self, id: &str) -> R<ContainerStatus> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            }))
            .map(|r| r.into_inner().status.unwrap_or_default())
    }

    pub fn container_stats(&mut self, id: &str) -> R<ContainerStats> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.container_stats(ContainerStatsRequest {
                container_id: id.to_string(),
            }))
            .map(|r| r.into_inner().stats.unwrap_or_default())
    }

    pub fn exec_sync(&mut self, id: &str, cmd: &[&str], timeout_s: i64) -> R<ExecSyncResponse> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: timeout_s,
            }))
            .map(|r| r.into_inner())
    }

    pub fn stop_container(&mut self, id: &str, timeout_s: i64) -> R<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.stop_container(StopContainerRequest {
                container_id: id.to_string(),
                timeout: timeout_s,
            }))
            .map(|_| ())
    }

    pub fn stop_pod_sandbox(&mut self, id: &str) -> R<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .map(|_| ())
    }

    pub fn remove_pod_sandbox(&mut self, id: &str) -> R<()> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }))
            .map(|_| ())
    }

    pub fn list_pod_sandboxes(&mut self) -> R<Vec<PodSandbox>> {
        let c = &mut self.runtime;
        self.rt
            .block_on(c.list_pod_sandbox(ListPodSandboxRequest { filter: None }))
            .map(|r| r.into_inner().items)
    }
}
