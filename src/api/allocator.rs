//! ClusterIP and NodePort allocation for Services, done in the API server's
//! write path as upstream's `registry/core/service` REST does.
//!
//! The truth is the stored Services: every allocation lists them from the
//! store (a consistent read, so a Service deleted a moment ago has released
//! its IP and ports, and one created a moment ago holds them) and adds the
//! values that writes in flight have reserved but not yet stored. The list
//! and the pick happen under one lock; the reservation lasts until the write
//! that carries the values has been committed or has failed. So two
//! concurrent creates never get the same IP or port, nothing is lost or
//! leaked across restarts (there is no separate allocation state to keep in
//! step), and deleting a Service or changing its type frees what it held.

pub mod range;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::api::ApiConfig;
use crate::api::kinds::Cause;
use crate::api::kinds::validation::{arr_at, int_at, invalid, invalid_shown, parse_ip, str_at};
use crate::api::object;
use crate::api::registry::KindInfo;
use crate::api::status::ApiStatus;
use crate::store::{Backend, ListOptions};
use range::{IpRange, PortRange, RangeError};

/// What writes in flight hold.
#[derive(Default)]
struct Pending {
    next: u64,
    held: HashMap<u64, (Vec<IpAddr>, Vec<u16>)>,
}

/// The allocator of one API server.
pub struct ServiceAllocator {
    ips: IpRange,
    ports: PortRange,
    /// Serializes list-and-pick, so two allocations never see the same state.
    serial: tokio::sync::Mutex<()>,
    pending: Arc<Mutex<Pending>>,
}

/// Values held for a write in flight; released when dropped (after the
/// write, when the store holds them or the write failed).
pub struct Reservation {
    pending: Arc<Mutex<Pending>>,
    id: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending.lock() {
            p.held.remove(&self.id);
        }
    }
}

/// The IPs and node ports stored Services hold.
#[derive(Debug, Default)]
pub struct InUse {
    pub ips: HashSet<IpAddr>,
    pub ports: HashSet<u16>,
}

impl InUse {
    /// Adds what one Service holds.
    pub fn add(&mut self, svc: &Value) {
        let spec = svc.get("spec").unwrap_or(&Value::Null);
        self.ips.extend(cluster_ips(spec));
        self.ports
            .extend(node_ports(spec).filter_map(|p| u16::try_from(p).ok()));
    }
}

fn cluster_ips(spec: &Value) -> impl Iterator<Item = IpAddr> + '_ {
    arr_at(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .chain(str_at(spec, "clusterIP"))
        .filter_map(parse_ip)
}

fn node_ports(spec: &Value) -> impl Iterator<Item = i64> + '_ {
    arr_at(spec, "ports")
        .iter()
        .filter_map(|p| int_at(p, "nodePort"))
        .chain(int_at(spec, "healthCheckNodePort"))
        .filter(|p| *p != 0)
}

fn svc_type(spec: &Value) -> &str {
    str_at(spec, "type").unwrap_or("ClusterIP")
}

/// Whether this kind's writes go through the allocator.
fn is_service(kind: &KindInfo) -> bool {
    kind.group.is_empty() && kind.kind == "Service"
}

impl ServiceAllocator {
    pub fn new(config: &ApiConfig) -> Self {
        let (low, high) = config.service_node_port_range;
        ServiceAllocator {
            ips: IpRange::new(config.service_cidr),
            ports: PortRange { low, high },
            serial: tokio::sync::Mutex::new(()),
            pending: Arc::default(),
        }
    }

    /// Gives the Service `obj` (stored at `key`; `old` is its current state
    /// on an update) the IPs and node ports its type needs, and checks the
    /// ones it asks for. Other kinds pass through untouched.
    pub async fn allocate(
        &self,
        store: &dyn Backend,
        kind: &KindInfo,
        key: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Option<Reservation>, ApiStatus> {
        if !is_service(kind) {
            return Ok(None);
        }
        let old_spec = old.and_then(|o| o.get("spec")).unwrap_or(&Value::Null);
        if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
            // A Service that takes no new value (an update keeping what it
            // had, a headless Service) needs no look at the others; what
            // the probe did (dropping a health-check port no longer
            // needed) stands.
            let mut probe = spec.clone();
            let taken = self.assign(&mut probe, old_spec, &mut InUse::default());
            if matches!(taken, Ok((ips, ports)) if ips.is_empty() && ports.is_empty()) {
                *spec = probe;
                return Ok(None);
            }
        }
        let _serial = self.serial.lock().await;
        // Reservations first, then the store: a write that commits and
        // drops its reservation in between is then seen in the list.
        let held: Vec<(Vec<IpAddr>, Vec<u16>)> = match self.pending.lock() {
            Ok(p) => p.held.values().cloned().collect(),
            Err(_) => return Err(ApiStatus::internal("the service allocator is poisoned")),
        };
        let list = store
            .list(&kind.prefix(None), ListOptions::default())
            .await
            .map_err(crate::api::handlers::store_error)?;
        let mut used = InUse::default();
        for kv in list.kvs.iter().filter(|kv| kv.key != key) {
            if let Ok(svc) = object::decode(kv) {
                used.add(&svc);
            }
        }
        for (ips, ports) in held {
            used.ips.extend(ips);
            used.ports.extend(ports);
        }
        let name = object::name(obj).to_string();
        let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
            return Ok(None);
        };
        let taken = self
            .assign(spec, old_spec, &mut used)
            .map_err(|e| e.into_status(kind, &name))?;
        let mut p = self
            .pending
            .lock()
            .map_err(|_| ApiStatus::internal("the service allocator is poisoned"))?;
        p.next += 1;
        let id = p.next;
        p.held.insert(id, taken);
        Ok(Some(Reservation {
            pending: Arc::clone(&self.pending),
            id,
        }))
    }

    /// Fills in and checks `spec` against `used`; returns what it took.
    fn assign(
        &self,
        spec: &mut Value,
        old: &Value,
        used: &mut InUse,
    ) -> Result<(Vec<IpAddr>, Vec<u16>), AllocError> {
        let mut ips = Vec::new();
        let mut ports = Vec::new();
        let ty = svc_type(spec).to_string();
        let old_ips: HashSet<IpAddr> = cluster_ips(old).collect();
        let old_ports: HashSet<i64> = node_ports(old).collect();

        if ty != "ExternalName" && str_at(spec, "clusterIP") != Some("None") {
            let requested: Vec<String> = arr_at(spec, "clusterIPs")
                .iter()
                .filter_map(Value::as_str)
                .chain(str_at(spec, "clusterIP"))
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if requested.is_empty() {
                let ip = self.ips.pick(&used.ips).map_err(AllocError::IpFull)?;
                set_cluster_ip(spec, ip);
                ips.push(ip);
            }
            let mut seen = HashSet::new();
            for s in &requested {
                let Some(ip) = parse_ip(s) else { continue };
                if old_ips.contains(&ip) || !seen.insert(ip) {
                    continue;
                }
                self.ips.check(ip, &used.ips).map_err(|e| AllocError::Ip {
                    requested: requested_list(spec),
                    ip,
                    error: e,
                })?;
                ips.push(ip);
            }
            used.ips.extend(ips.iter().copied());
        }

        let node_ports_wanted = ty == "NodePort"
            || (ty == "LoadBalancer"
                && spec.get("allocateLoadBalancerNodePorts") != Some(&json!(false)));
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            // the ports the Service keeps or asks for, checked first so an
            // automatic pick never takes a number asked for further down
            for (i, p) in list.iter().enumerate() {
                let Some(np) = int_at(p, "nodePort").filter(|n| *n != 0) else {
                    continue;
                };
                if old_ports.contains(&np) || ports.iter().any(|q| i64::from(*q) == np) {
                    continue;
                }
                let port = self
                    .ports
                    .check(np, &used.ports)
                    .map_err(|e| AllocError::Port {
                        field: format!("spec.ports[{i}].nodePort"),
                        port: np,
                        detail: e.to_string(),
                    })?;
                used.ports.insert(port);
                ports.push(port);
            }
            if node_ports_wanted {
                // one port number served over several protocols shares its
                // node port, as upstream allocates it
                let mut by_port: HashMap<i64, i64> = HashMap::new();
                for p in list.iter() {
                    if let (Some(port), Some(np)) =
                        (int_at(p, "port"), int_at(p, "nodePort").filter(|n| *n != 0))
                    {
                        by_port.entry(port).or_insert(np);
                    }
                }
                for p in list.iter_mut() {
                    if int_at(p, "nodePort").unwrap_or(0) != 0 {
                        continue;
                    }
                    let port = int_at(p, "port").unwrap_or(0);
                    let np = match by_port.get(&port) {
                        Some(np) => *np,
                        None => {
                            let np = self.ports.pick(&used.ports).map_err(AllocError::PortFull)?;
                            used.ports.insert(np);
                            ports.push(np);
                            by_port.insert(port, i64::from(np));
                            i64::from(np)
                        }
                    };
                    if let Some(m) = p.as_object_mut() {
                        m.insert("nodePort".into(), json!(np));
                    }
                }
            }
        }

        let wants_health_check =
            ty == "LoadBalancer" && str_at(spec, "externalTrafficPolicy") == Some("Local");
        if wants_health_check {
            match int_at(spec, "healthCheckNodePort").filter(|n| *n != 0) {
                Some(np) if old_ports.contains(&np) => {}
                Some(np) => {
                    let port = self
                        .ports
                        .check(np, &used.ports)
                        .map_err(|e| AllocError::Port {
                            field: "spec.healthCheckNodePort".into(),
                            port: np,
                            detail: format!(
                                "failed to allocate requested HealthCheck NodePort {np}: {e}"
                            ),
                        })?;
                    used.ports.insert(port);
                    ports.push(port);
                }
                None => {
                    let np = self.ports.pick(&used.ports).map_err(AllocError::PortFull)?;
                    used.ports.insert(np);
                    ports.push(np);
                    if let Some(m) = spec.as_object_mut() {
                        m.insert("healthCheckNodePort".into(), json!(np));
                    }
                }
            }
        } else if let Some(np) = int_at(spec, "healthCheckNodePort").filter(|n| *n != 0) {
            // no longer needed: a kept one is released, a new one refused
            if int_at(old, "healthCheckNodePort") != Some(np) {
                return Err(AllocError::Port {
                    field: "spec.healthCheckNodePort".into(),
                    port: np,
                    detail: "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'".into(),
                });
            }
            if let Some(m) = spec.as_object_mut() {
                m.remove("healthCheckNodePort");
            }
        }
        Ok((ips, ports))
    }
}

/// Sets an allocated IP and the single-stack family fields that go with it.
fn set_cluster_ip(spec: &mut Value, ip: IpAddr) {
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    m.insert("clusterIP".into(), json!(ip.to_string()));
    m.insert("clusterIPs".into(), json!([ip.to_string()]));
    if m.get("ipFamilies")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        m.insert("ipFamilies".into(), json!([family]));
    }
    if m.get("ipFamilyPolicy").is_none_or(Value::is_null) {
        m.insert("ipFamilyPolicy".into(), json!("SingleStack"));
    }
}

/// `spec.clusterIPs` as Go's `%#v` shows a `[]string`.
fn requested_list(spec: &Value) -> String {
    let mut ips: Vec<String> = arr_at(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(|s| format!("{s:?}"))
        .collect();
    if ips.is_empty() {
        ips.extend(str_at(spec, "clusterIP").map(|s| format!("{s:?}")));
    }
    format!("[]string{{{}}}", ips.join(", "))
}

/// Why an allocation failed.
#[derive(Debug)]
enum AllocError {
    Ip {
        requested: String,
        ip: IpAddr,
        error: RangeError,
    },
    IpFull(RangeError),
    Port {
        field: String,
        port: i64,
        detail: String,
    },
    PortFull(RangeError),
}

impl AllocError {
    /// Upstream's answers: 422 for a value that cannot be had, 500 when a
    /// range is full.
    fn into_status(self, kind: &KindInfo, name: &str) -> ApiStatus {
        let cause: Cause = match self {
            AllocError::Ip {
                requested,
                ip,
                error,
            } => invalid_shown(
                "spec.clusterIPs",
                &requested,
                &format!("failed to allocate IP {ip}: {error}"),
            ),
            AllocError::Port {
                field,
                port,
                detail,
            } => invalid(&field, port, &detail),
            AllocError::IpFull(e) => {
                return ApiStatus::internal(format!("failed to allocate a serviceIP: {e}"));
            }
            AllocError::PortFull(e) => {
                return ApiStatus::internal(format!("failed to allocate a nodePort: {e}"));
            }
        };
        ApiStatus::invalid(kind, name, &[cause])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator(cidr: &str, low: u16, high: u16) -> ServiceAllocator {
        ServiceAllocator {
            ips: IpRange::new(cidr.parse().expect("cidr")),
            ports: PortRange { low, high },
            serial: tokio::sync::Mutex::new(()),
            pending: Arc::default(),
        }
    }

    #[test]
    fn in_use_is_rebuilt_from_stored_services() {
        let mut used = InUse::default();
        used.add(&json!({"spec": {"clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1"]}}));
        used.add(&json!({"spec": {"type": "NodePort", "clusterIP": "10.43.7.7", "ports": [{"port": 80, "nodePort": 30080}]}}));
        used.add(&json!({"spec": {"type": "LoadBalancer", "clusterIP": "None", "healthCheckNodePort": 31000, "ports": [{"port": 1}]}}));
        used.add(&json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}));
        let ips: HashSet<IpAddr> = ["10.43.0.1", "10.43.7.7"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(used.ips, ips);
        assert_eq!(used.ports, [30080, 31000].into());
    }

    #[test]
    fn a_cluster_ip_service_gets_a_free_ip_and_families() {
        let a = allocator("10.43.0.0/16", 30000, 32767);
        let mut used = InUse::default();
        used.ips.insert("10.43.0.1".parse().expect("ip"));
        let mut s = json!({"type": "ClusterIP", "ports": [{"port": 80}]});
        let (ips, ports) = a
            .assign(&mut s, &Value::Null, &mut used)
            .expect("allocated");
        assert_eq!(ips.len(), 1);
        assert!(ports.is_empty());
        assert_eq!(s["clusterIP"], json!(ips[0].to_string()));
        assert_eq!(s["clusterIPs"], json!([ips[0].to_string()]));
        assert_eq!(s["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["ipFamilyPolicy"], "SingleStack");
        assert!(s["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn a_requested_ip_in_use_or_out_of_range_is_refused_with_upstreams_message() {
        let a = allocator("10.0.0.0/24", 30000, 32767);
        let mut used = InUse::default();
        used.ips.insert("10.0.0.1".parse().expect("ip"));
        let mut s = json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]});
        let Err(e) = a.assign(&mut s, &Value::Null, &mut used) else {
            panic!("a taken IP was handed out")
        };
        let Some(row) = crate::api::registry::lookup("", "v1", "services") else {
            panic!("row")
        };
        let status = e.into_status(row, "web");
        assert_eq!(status.code, 422);
        assert!(
            status.message.contains(r#"spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: failed to allocate IP 10.0.0.1: provided IP is already allocated"#),
            "{}",
            status.message
        );
        let mut outside = json!({"clusterIP": "10.1.0.1"});
        assert!(a.assign(&mut outside, &Value::Null, &mut used).is_err());
        // the same IP kept on an update is no new allocation
        let old = json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]});
        let mut same = old.clone();
        assert!(a.assign(&mut same, &old, &mut used).is_ok());
    }

    #[test]
    fn headless_and_external_name_services_get_no_ip() {
        let a = allocator("10.43.0.0/16", 30000, 32767);
        let mut used = InUse::default();
        for mut s in [
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            json!({"type": "ExternalName", "externalName": "db.example"}),
        ] {
            let before = s.clone();
            let (ips, _) = a.assign(&mut s, &Value::Null, &mut used).expect("ok");
            assert!(ips.is_empty());
            assert_eq!(s, before);
        }
    }

    #[test]
    fn node_ports_are_allocated_shared_by_protocol_and_checked() {
        let a = allocator("10.43.0.0/16", 30000, 30002);
        let mut used = InUse::default();
        let mut s = json!({"type": "NodePort", "ports": [
            {"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}, {"port": 80, "nodePort": 30001}
        ]});
        let (_, ports) = a
            .assign(&mut s, &Value::Null, &mut used)
            .expect("allocated");
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(s["ports"][0]["nodePort"], s["ports"][1]["nodePort"]);
        assert_eq!(s["ports"][2]["nodePort"], 30001);
        let mut again = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]});
        let Err(AllocError::Port { field, detail, .. }) =
            a.assign(&mut again, &Value::Null, &mut used)
        else {
            panic!("a taken node port was handed out")
        };
        assert_eq!(field, "spec.ports[0].nodePort");
        assert_eq!(detail, "provided port is already allocated");
        // one port left, then the range is full
        let mut one = json!({"type": "NodePort", "ports": [{"port": 1}]});
        assert!(a.assign(&mut one, &Value::Null, &mut used).is_ok());
        let mut none = json!({"type": "NodePort", "ports": [{"port": 2}]});
        assert!(matches!(
            a.assign(&mut none, &Value::Null, &mut used),
            Err(AllocError::PortFull(RangeError::Full))
        ));
    }

    #[test]
    fn load_balancers_get_a_health_check_port_for_local_traffic() {
        let a = allocator("10.43.0.0/16", 30000, 32767);
        let mut used = InUse::default();
        let mut s = json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]});
        let (_, ports) = a
            .assign(&mut s, &Value::Null, &mut used)
            .expect("allocated");
        assert_eq!(ports.len(), 2);
        assert!(int_at(&s, "healthCheckNodePort").is_some());
        // local → cluster traffic gives the health-check port back
        let old = s.clone();
        let mut cluster = s.clone();
        cluster["externalTrafficPolicy"] = json!("Cluster");
        a.assign(&mut cluster, &old, &mut used).expect("updated");
        assert!(cluster.get("healthCheckNodePort").is_none());
        let mut stray =
            json!({"type": "ClusterIP", "clusterIP": "None", "healthCheckNodePort": 30500});
        assert!(matches!(
            a.assign(&mut stray, &Value::Null, &mut used),
            Err(AllocError::Port { field, .. }) if field == "spec.healthCheckNodePort"
        ));
        let mut no_np = json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "externalTrafficPolicy": "Cluster", "ports": [{"port": 80}]});
        let (_, ports) = a
            .assign(&mut no_np, &Value::Null, &mut used)
            .expect("allocated");
        assert!(ports.is_empty());
        assert!(no_np["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn reservations_hold_values_until_dropped() {
        let a = allocator("10.0.0.0/30", 30000, 30000);
        let mut p = a.pending.lock().expect("lock");
        p.held
            .insert(1, (vec!["10.0.0.1".parse().expect("ip")], vec![30000]));
        drop(p);
        let r = Reservation {
            pending: Arc::clone(&a.pending),
            id: 1,
        };
        assert_eq!(a.pending.lock().expect("lock").held.len(), 1);
        drop(r);
        assert!(a.pending.lock().expect("lock").held.is_empty());
    }

    /// Concurrent creates through the real router: every Service that is
    /// created has its own IP and node port, and the ranges' sizes bound
    /// how many are.
    #[tokio::test]
    async fn concurrent_creates_never_share_a_value() {
        use k8s_openapi::api::core::v1::Service;
        use kube::api::{Api, PostParams};

        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::open(None, dir.path()).await.expect("store");
        let config = ApiConfig {
            cluster_cidr: "10.42.0.0/16".parse().expect("cidr"),
            // 14 usable addresses, one of them the kubernetes Service's
            service_cidr: "10.0.0.0/28".parse().expect("cidr"),
            cluster_dns: "10.0.0.10".parse().expect("ip"),
            cluster_domain: "cluster.local".into(),
            service_node_port_range: (30000, 30009),
            advertise_address: "192.0.2.10".parse().expect("ip"),
            https_port: 6443,
        };
        let api = crate::api::ApiServer::new(store, config)
            .await
            .expect("api server");
        let admin = crate::auth::UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        let services: Api<Service> =
            Api::namespaced(crate::client::in_process(api.router(), admin), "default");
        let creates = (0..20).map(|i| {
            let services = services.clone();
            async move {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("s{i}")},
                    "spec": {"type": "NodePort", "ports": [{"port": 80}]}
                }))
                .expect("service");
                services.create(&PostParams::default(), &svc).await
            }
        });
        let results = futures::future::join_all(creates).await;
        let created: Vec<Service> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        // node ports run out first: ten of them
        assert_eq!(created.len(), 10, "{results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(r, kube::Error::Api(e) if e.code == 500 && e.message.contains("range is full")),
                "{r:?}"
            );
        }
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        for svc in &created {
            let spec = svc.spec.clone().unwrap_or_default();
            let ip = spec.cluster_ip.unwrap_or_default();
            assert_ne!(ip, "10.0.0.1");
            assert!(ips.insert(ip.clone()), "{ip} handed out twice");
            let np = spec.ports.unwrap_or_default()[0].node_port.unwrap_or(0);
            assert!(ports.insert(np), "node port {np} handed out twice");
        }
    }
}
