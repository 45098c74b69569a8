//! rtnetlink plumbing shared by the overlay backends: the connection, the
//! uplink (interface, address, MTU) and the routes skiff owns.
//!
//! skiff marks its routes with its own route protocol number
//! ([`RTPROT_SKIFF`], shown as `proto 83` by `ip route`), so a resync and the
//! cleanup find exactly the routes skiff added, whatever their device.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::overlay::{Desired, OverlayError};

/// The route protocol number on skiff's routes (unassigned in
/// /etc/iproute2/rt_protos).
pub const RTPROT_SKIFF: u8 = 83;
/// The main routing table.
const RT_TABLE_MAIN: u32 = 254;

/// The interface the overlay runs over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub name: String,
    pub index: u32,
    /// The node's public IP: the VTEP's local address, the host-gw gateway
    /// peers use.
    pub ip: Ipv4Addr,
    pub mtu: u32,
}

pub(crate) fn nl(e: impl std::fmt::Display) -> OverlayError {
    OverlayError::Netlink(e.to_string())
}

/// A connection in the calling thread's network namespace (its task runs
/// on the current tokio runtime).
pub fn connect() -> Result<Handle, OverlayError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(nl)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Every link of the namespace.
pub(crate) async fn links(handle: &Handle) -> Result<Vec<LinkMessage>, OverlayError> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl)
}

pub(crate) fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn link_mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// The link called `name`, if any.
pub(crate) async fn link_by_name(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, OverlayError> {
    Ok(links(handle)
        .await?
        .into_iter()
        .find(|l| link_name(l) == Some(name)))
}

/// IPv4 addresses by interface index, in the kernel's order.
async fn ipv4_addresses(handle: &Handle) -> Result<Vec<(u32, Ipv4Addr)>, OverlayError> {
    let messages: Vec<_> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl)?;
    Ok(messages
        .into_iter()
        .filter_map(|m| {
            let ip = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })?;
            Some((m.header.index, ip))
        })
        .collect())
}

/// The interface of the IPv4 default route with the lowest metric.
async fn default_route_interface(handle: &Handle) -> Result<Option<u32>, OverlayError> {
    let routes: Vec<RouteMessage> = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(nl)?;
    let priority = |r: &RouteMessage| {
        r.attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Priority(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(0)
    };
    Ok(routes
        .iter()
        .filter(|r| r.header.destination_prefix_length == 0 && r.header.kind == RouteType::Unicast)
        .filter_map(|r| Some((priority(r), oif(r)?)))
        .min()
        .map(|(_, index)| index))
}

fn oif(route: &RouteMessage) -> Option<u32> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// Finds the uplink: `iface` when given (its first IPv4 is the public IP
/// unless `node_ip` is given); else the interface holding `node_ip`; else
/// the interface of the default route (with its first IPv4).
pub async fn find_uplink(
    iface: Option<&str>,
    node_ip: Option<Ipv4Addr>,
) -> Result<Uplink, OverlayError> {
    let handle = connect()?;
    let links = links(&handle).await?;
    let addresses = ipv4_addresses(&handle).await?;
    let first_ip = |index: u32| {
        addresses
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, ip)| *ip)
    };
    let by_index = |index: u32| links.iter().find(|l| l.header.index == index);
    let (link, ip) = if let Some(name) = iface {
        let link = links
            .iter()
            .find(|l| link_name(l) == Some(name))
            .ok_or_else(|| {
                OverlayError::Uplink(format!("--flannel-iface {name}: no such interface"))
            })?;
        (link, node_ip.or_else(|| first_ip(link.header.index)))
    } else {
        let holding = node_ip.and_then(|ip| {
            let (index, _) = addresses.iter().find(|(_, a)| *a == ip)?;
            by_index(*index).filter(|l| !l.header.flags.contains(LinkFlags::Loopback))
        });
        match holding {
            Some(link) => (link, node_ip),
            None => {
                let link = default_route_interface(&handle)
                    .await?
                    .and_then(by_index)
                    .ok_or_else(|| {
                        OverlayError::Uplink(
                            "no uplink: the node IP is on no interface and there is no default route; give --flannel-iface"
                                .to_string(),
                        )
                    })?;
                (link, first_ip(link.header.index))
            }
        }
    };
    let name = link_name(link).unwrap_or_default().to_string();
    let Some(ip) = ip else {
        return Err(OverlayError::Uplink(format!(
            "the uplink {name} has no IPv4 address; give --node-ip"
        )));
    };
    Ok(Uplink {
        index: link.header.index,
        mtu: link_mtu(link).unwrap_or(1500),
        ip,
        name,
    })
}

/// A route skiff owns: destination, gateway, output interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedRoute {
    destination: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    oif: Option<u32>,
    message: RouteMessage,
}

async fn owned_routes(handle: &Handle) -> Result<Vec<OwnedRoute>, OverlayError> {
    let routes: Vec<RouteMessage> = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(nl)?;
    Ok(routes
        .into_iter()
        .filter(|r| r.header.protocol == RouteProtocol::Other(RTPROT_SKIFF))
        .filter_map(|r| {
            let destination = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            })?;
            let gateway = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            Some(OwnedRoute {
                destination: Ipv4Net::new(destination, r.header.destination_prefix_length).ok()?,
                gateway,
                oif: oif(&r),
                message: r,
            })
        })
        .collect())
}

/// Makes skiff's routes equal `want.routes` (destination → gateway) over
/// `device` (`onlink` for the VXLAN device, whose gateways are not on a
/// connected subnet).
pub(crate) async fn sync_routes(
    handle: &Handle,
    want: &Desired,
    device: Option<u32>,
    onlink: bool,
) -> Result<(), OverlayError> {
    for route in owned_routes(handle).await? {
        let keep = want.routes.get(&route.destination) == route.gateway.as_ref()
            && (device.is_none() || route.oif == device);
        if !keep {
            handle
                .route()
                .del(route.message)
                .execute()
                .await
                .map_err(nl)?;
        }
    }
    for (destination, gateway) in &want.routes {
        let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(destination.network(), destination.prefix_len())
            .gateway(*gateway)
            .protocol(RouteProtocol::Other(RTPROT_SKIFF))
            .table_id(RT_TABLE_MAIN);
        if let Some(index) = device {
            builder = builder.output_interface(index);
        }
        if onlink {
            builder = builder.onlink();
        }
        handle
            .route()
            .add(builder.build())
            .replace()
            .execute()
            .await
            .map_err(|e| nl(format!("route {destination} via {gateway}: {e}")))?;
    }
    Ok(())
}

/// Removes every route skiff owns and the VXLAN device (its routes,
/// neighbours and FDB entries go with it).
pub async fn remove_all(device: &str) -> Result<(), OverlayError> {
    let handle = connect()?;
    if let Some(link) = link_by_name(&handle, device).await? {
        handle
            .link()
            .del(link.header.index)
            .execute()
            .await
            .map_err(nl)?;
    }
    sync_routes(&handle, &Desired::default(), None, false).await
}

/// The IPv4 routes skiff owns in this namespace, destination → gateway.
pub async fn owned_route_table() -> Result<BTreeMap<Ipv4Net, Option<Ipv4Addr>>, OverlayError> {
    let handle = connect()?;
    Ok(owned_routes(&handle)
        .await?
        .into_iter()
        .map(|r| (r.destination, r.gateway))
        .collect())
}
