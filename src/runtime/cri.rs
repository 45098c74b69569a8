//! A CRI v1 client over a unix socket (tonic), with the calls the kubelet
//! makes most often wrapped to return [`RuntimeError`].

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{StatusRequest, VersionRequest, VersionResponse};
use tonic::transport::{Endpoint, Uri};

use super::RuntimeError;

/// CRI runtime and image services on one connection.
#[derive(Debug, Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<tonic::transport::Channel>,
    pub images: ImageServiceClient<tonic::transport::Channel>,
}

/// What the runtime says about its own readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConditions {
    pub runtime_ready: bool,
    pub network_ready: bool,
    /// Why a condition is false, for the Node's Ready message.
    pub message: String,
}

impl Cri {
    pub async fn connect(socket: &Path) -> Result<Self, RuntimeError> {
        let path: PathBuf = socket.to_path_buf();
        let connect_error = |message: String| RuntimeError::Connect {
            path: socket.to_path_buf(),
            message,
        };
        // The URI is required by tonic and ignored by the connector.
        let channel = Endpoint::try_from("http://[::]:50051")
            .map_err(|e| connect_error(e.to_string()))?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    tokio::net::UnixStream::connect(path)
                        .await
                        .map(TokioIo::new)
                }
            }))
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    pub async fn version(&mut self) -> Result<VersionResponse, RuntimeError> {
        self.runtime
            .version(VersionRequest {
                version: "v1".to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|e| call_error("Version", e))
    }

    pub async fn conditions(&mut self) -> Result<RuntimeConditions, RuntimeError> {
        let status = self
            .runtime
            .status(StatusRequest { verbose: false })
            .await
            .map_err(|e| call_error("Status", e))?
            .into_inner()
            .status
            .unwrap_or_default();
        let mut result = RuntimeConditions {
            runtime_ready: false,
            network_ready: false,
            message: String::new(),
        };
        for condition in status.conditions {
            match condition.r#type.as_str() {
                "RuntimeReady" => result.runtime_ready = condition.status,
                "NetworkReady" => result.network_ready = condition.status,
                _ => continue,
            }
            if !condition.status {
                result.message = format!(
                    "{} is false: {} {}",
                    condition.r#type, condition.reason, condition.message
                );
            }
        }
        Ok(result)
    }
}

/// Wraps a failed CRI call.
pub fn call_error(call: &'static str, status: tonic::Status) -> RuntimeError {
    RuntimeError::Call {
        call,
        status: Box::new(status),
    }
}
