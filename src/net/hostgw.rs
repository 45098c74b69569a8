//! The host-gw backend: each remote podCIDR is routed via the remote node's
//! IP over the uplink, as flannel's host-gw does. The nodes must share one
//! L2 segment (the gateway must be on a connected subnet); no device, no
//! encapsulation, the full uplink MTU for pods.

use rtnetlink::Handle;

use super::link::{Uplink, sync_routes};
use super::overlay::{Desired, OverlayError};

/// Makes skiff's routes equal `want.routes` (podCIDR → node IP) over the
/// uplink.
pub async fn sync(handle: &Handle, uplink: &Uplink, want: &Desired) -> Result<(), OverlayError> {
    sync_routes(handle, want, Some(uplink.index), false).await
}
