//! Images for a pod's containers: present per `imagePullPolicy`, pulled
//! otherwise, with upstream's back-off between failed pulls
//! (`ErrImagePull`, then `ImagePullBackOff`).

use std::time::Instant;

use k8s_cri::v1::{ImageSpec, ImageStatusRequest, PullImageRequest};
use k8s_openapi::api::core::v1::Container;

use super::Worker;
use crate::kubelet::pods::Waiting;

impl Worker {
    /// Makes sure the image is present per the pull policy, with back-off
    /// between failed pulls; `Some` says why the container must wait.
    pub(super) async fn ensure_image(&mut self, c: &Container, image: &str) -> Option<Waiting> {
        let policy = c.image_pull_policy.as_deref();
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        let present = self
            .cri
            .images
            .image_status(ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .map(|r| r.into_inner().image.is_some())
            .unwrap_or(false);
        let always = policy == Some("Always")
            || (policy.is_none()
                && (image.ends_with(":latest")
                    || !image.rsplit('/').next().unwrap_or(image).contains(':')));
        if present && !always {
            return None;
        }
        if policy == Some("Never") {
            let message =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            if !self.waits_for(c, "ErrImageNeverPull") {
                self.event(&c.name, "Warning", "ErrImageNeverPull", message.clone())
                    .await;
            }
            return Some(Waiting {
                reason: "ErrImageNeverPull".to_string(),
                message,
            });
        }
        let key = format!("{}/image/{image}", self.uid);
        if self.backoff.in_backoff_since_update(&key, Instant::now()) {
            let message = format!("Back-off pulling image \"{image}\"");
            if !self.waits_for(c, "ImagePullBackOff") {
                self.event(&c.name, "Normal", "BackOff", message.clone())
                    .await;
            }
            return Some(Waiting {
                reason: "ImagePullBackOff".to_string(),
                message,
            });
        }
        self.event(
            &c.name,
            "Normal",
            "Pulling",
            format!("Pulling image \"{image}\""),
        )
        .await;
        match self
            .cri
            .images
            .pull_image(PullImageRequest {
                image: Some(spec),
                ..Default::default()
            })
            .await
        {
            Ok(_) => None,
            Err(_) if present => None,
            Err(e) => {
                self.backoff.next(&key, Instant::now());
                let message = format!("Failed to pull image \"{image}\": {}", e.message());
                self.event(&c.name, "Warning", "Failed", message.clone())
                    .await;
                self.event(
                    &c.name,
                    "Warning",
                    "Failed",
                    "Error: ErrImagePull".to_string(),
                )
                .await;
                Some(Waiting {
                    reason: "ErrImagePull".to_string(),
                    message,
                })
            }
        }
    }
}
