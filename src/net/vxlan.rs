//! The VXLAN backend's device and its neighbour and FDB entries, as flannel
//! programs them: `skiff.1` (VNI 1, UDP 8472, local = the node IP, learning
//! off) with the podCIDR's network address /32; per peer a permanent
//! neighbour entry (VTEP address → VTEP MAC) and an FDB entry (VTEP MAC →
//! the peer's public IP), so the kernel never has to learn or flood.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkUnspec, LinkVxlan};

use super::link::{Uplink, link_by_name, nl};
use super::overlay::{Mac, OverlayError, VNI, VXLAN_DEVICE, VXLAN_PORT};

/// The node's VXLAN endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    pub index: u32,
    pub mac: Mac,
}

/// The VXLAN attributes of `link`, when it is a VXLAN device.
fn vxlan_info(link: &LinkMessage) -> Option<&Vec<InfoVxlan>> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(v)) => Some(v),
            _ => None,
        }),
        _ => None,
    })
}

/// Whether an existing device is the one wanted (else it is recreated).
fn matches(link: &LinkMessage, uplink: &Uplink) -> bool {
    let kind_is_vxlan = link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan))),
        _ => false,
    });
    let Some(info) = vxlan_info(link) else {
        return false;
    };
    kind_is_vxlan
        && info.contains(&InfoVxlan::Id(VNI))
        && info.contains(&InfoVxlan::Local(uplink.ip))
        && info.contains(&InfoVxlan::Port(VXLAN_PORT))
        && info.contains(&InfoVxlan::Link(uplink.index))
        && info.contains(&InfoVxlan::Learning(false))
}

fn mac_of(link: &LinkMessage) -> Option<Mac> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => bytes.as_slice().try_into().ok(),
        _ => None,
    })
}

/// Creates (or keeps, when it matches) the VXLAN device, sets its MTU and
/// address and brings it up.
pub async fn ensure_device(
    handle: &Handle,
    uplink: &Uplink,
    pod_cidr: Ipv4Net,
    mtu: u32,
) -> Result<Vtep, OverlayError> {
    if let Some(existing) = link_by_name(handle, VXLAN_DEVICE).await?
        && !matches(&existing, uplink)
    {
        tracing::info!(
            device = VXLAN_DEVICE,
            "the VXLAN device differs from the wanted one; recreating it"
        );
        handle
            .link()
            .del(existing.header.index)
            .execute()
            .await
            .map_err(nl)?;
    }
    if link_by_name(handle, VXLAN_DEVICE).await?.is_none() {
        let message = LinkVxlan::new(VXLAN_DEVICE, VNI)
            .dev(uplink.index)
            .local(uplink.ip)
            .port(VXLAN_PORT)
            .learning(false)
            .mtu(mtu)
            .build();
        handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| nl(format!("creating {VXLAN_DEVICE}: {e}")))?;
    }
    let link = link_by_name(handle, VXLAN_DEVICE)
        .await?
        .ok_or_else(|| nl(format!("{VXLAN_DEVICE} vanished after it was created")))?;
    let index = link.header.index;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).up().build())
        .execute()
        .await
        .map_err(nl)?;
    ensure_address(handle, index, pod_cidr.network()).await?;
    let mac = mac_of(&link).ok_or_else(|| nl(format!("{VXLAN_DEVICE} has no MAC address")))?;
    Ok(Vtep { index, mac })
}

/// Leaves exactly `address`/32 on the device.
async fn ensure_address(
    handle: &Handle,
    index: u32,
    address: Ipv4Addr,
) -> Result<(), OverlayError> {
    let current: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(nl)?;
    let mut present = false;
    for message in current {
        let ip = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        });
        if ip == Some(address) && message.header.prefix_len == 32 {
            present = true;
        } else if ip.is_some() {
            handle.address().del(message).execute().await.map_err(nl)?;
        }
    }
    if !present {
        handle
            .address()
            .add(index, IpAddr::V4(address), 32)
            .execute()
            .await
            .map_err(nl)?;
    }
    Ok(())
}

async fn dump(
    handle: &Handle,
    family: AddressFamily,
) -> Result<Vec<NeighbourMessage>, OverlayError> {
    handle
        .neighbours()
        .get()
        .set_address_family(family)
        .execute()
        .try_collect()
        .await
        .map_err(nl)
}

/// The entry's IPv4 destination (in a bridge-family FDB dump the kernel's
/// NDA_DST comes back as raw bytes).
fn destination(m: &NeighbourMessage) -> Option<Ipv4Addr> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
            <[u8; 4]>::try_from(bytes.as_slice())
                .ok()
                .map(Ipv4Addr::from)
        }
        _ => None,
    })
}

fn lladdr(m: &NeighbourMessage) -> Option<Mac> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(bytes) => bytes.as_slice().try_into().ok(),
        _ => None,
    })
}

/// The permanent neighbour entries on the device, VTEP address → MAC.
pub async fn neighbours(
    handle: &Handle,
    index: u32,
) -> Result<BTreeMap<Ipv4Addr, Mac>, OverlayError> {
    Ok(dump(handle, AddressFamily::Inet)
        .await?
        .iter()
        .filter(|m| m.header.ifindex == index && m.header.state == NeighbourState::Permanent)
        .filter_map(|m| Some((destination(m)?, lladdr(m)?)))
        .collect())
}

/// The device's FDB entries with a remote, MAC → remote IP.
pub async fn fdb(handle: &Handle, index: u32) -> Result<BTreeMap<Mac, Ipv4Addr>, OverlayError> {
    Ok(dump(handle, AddressFamily::Bridge)
        .await?
        .iter()
        .filter(|m| m.header.ifindex == index)
        .filter_map(|m| Some((lladdr(m)?, destination(m)?)))
        .collect())
}

/// Makes the device's permanent neighbours equal `want`.
pub async fn sync_neighbours(
    handle: &Handle,
    index: u32,
    want: &BTreeMap<Ipv4Addr, Mac>,
) -> Result<(), OverlayError> {
    for (ip, mac) in neighbours(handle, index).await? {
        if want.get(&ip) != Some(&mac) {
            let mut message = NeighbourMessage::default();
            message.header.family = AddressFamily::Inet;
            message.header.ifindex = index;
            message
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
            handle
                .neighbours()
                .del(message)
                .execute()
                .await
                .map_err(nl)?;
        }
    }
    for (ip, mac) in want {
        handle
            .neighbours()
            .add(index, IpAddr::V4(*ip))
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| nl(format!("neighbour {ip}: {e}")))?;
    }
    Ok(())
}

/// Makes the device's FDB (MAC → remote) equal `want`.
pub async fn sync_fdb(
    handle: &Handle,
    index: u32,
    want: &BTreeMap<Mac, Ipv4Addr>,
) -> Result<(), OverlayError> {
    for (mac, remote) in fdb(handle, index).await? {
        if want.get(&mac) != Some(&remote) {
            let mut message = NeighbourMessage::default();
            message.header.family = AddressFamily::Bridge;
            message.header.ifindex = index;
            message.header.flags = NeighbourFlags::Own;
            message.header.state = NeighbourState::Permanent;
            message
                .attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
            message
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                    remote,
                )));
            handle
                .neighbours()
                .del(message)
                .execute()
                .await
                .map_err(nl)?;
        }
    }
    for (mac, remote) in want {
        handle
            .neighbours()
            .add_bridge(index, mac)
            .destination(IpAddr::V4(*remote))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| nl(format!("fdb entry for {remote}: {e}")))?;
    }
    Ok(())
}
