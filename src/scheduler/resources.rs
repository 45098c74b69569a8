//! Resource amounts the scheduler adds up: CPU in millicores, memory in
//! bytes, and pod slots, parsed with the API's [`Quantity`].

use k8s_openapi::api::core::v1::{Container, Node, Pod};

use crate::api::kinds::quantity::Quantity;

/// What upstream assumes a container without requests uses, for scoring only.
const DEFAULT_CPU_MILLI: i128 = 100;
const DEFAULT_MEMORY: i128 = 200 * 1024 * 1024;

/// CPU (millicores), memory (bytes) and pods.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    pub cpu_milli: i128,
    pub memory: i128,
    pub pods: i128,
}

fn amount(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
    milli: bool,
) -> i128 {
    map.and_then(|m| m.get(name))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| {
            if milli {
                q.round_up_to_milli().millis()
            } else {
                q.value()
            }
        })
        .unwrap_or(0)
}

fn container_requests(c: &Container) -> Resources {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    Resources {
        cpu_milli: amount(requests, "cpu", true),
        memory: amount(requests, "memory", false),
        pods: 0,
    }
}

impl Resources {
    /// What a node offers to pods.
    pub fn allocatable(node: &Node) -> Resources {
        let status = node.status.as_ref();
        let alloc = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
        Resources {
            cpu_milli: amount(alloc, "cpu", true),
            memory: amount(alloc, "memory", false),
            pods: amount(alloc, "pods", false),
        }
    }

    /// A pod's effective request: the sum over containers, at least the
    /// largest init container, plus the pod overhead.
    pub fn requests(pod: &Pod) -> Resources {
        let Some(spec) = pod.spec.as_ref() else {
            return Resources::default();
        };
        let mut sum = Resources::default();
        for c in &spec.containers {
            sum = sum.plus(container_requests(c));
        }
        for c in spec.init_containers.iter().flatten() {
            let r = container_requests(c);
            sum.cpu_milli = sum.cpu_milli.max(r.cpu_milli);
            sum.memory = sum.memory.max(r.memory);
        }
        let overhead = spec.overhead.as_ref();
        sum.cpu_milli += amount(overhead, "cpu", true);
        sum.memory += amount(overhead, "memory", false);
        sum.pods = 1;
        sum
    }

    /// The request used for scoring: zero CPU or memory counts as upstream's
    /// defaults, so that pods without requests still spread.
    pub fn non_zero_requests(pod: &Pod) -> Resources {
        let mut r = Resources::default();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let cr = container_requests(c);
            r.cpu_milli += if cr.cpu_milli == 0 {
                DEFAULT_CPU_MILLI
            } else {
                cr.cpu_milli
            };
            r.memory += if cr.memory == 0 {
                DEFAULT_MEMORY
            } else {
                cr.memory
            };
        }
        r.pods = 1;
        r
    }

    /// The sum of two amounts.
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli + other.cpu_milli,
            memory: self.memory + other.memory,
            pods: self.pods + other.pods,
        }
    }

    /// `self` without `other`.
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli - other.cpu_milli,
            memory: self.memory - other.memory,
            pods: self.pods - other.pods,
        }
    }
}
