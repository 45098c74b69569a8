//! Node scoring: upstream's LeastAllocated and BalancedAllocation plugins,
//! each 0..=100, summed.

use super::resources::Resources;

/// The score of a node with `alloc` allocatable and `requested` (including
/// the pod being placed, with non-zero defaults) in use.
pub fn score(alloc: Resources, requested: Resources) -> i64 {
    least_allocated(alloc, requested) + balanced(alloc, requested)
}

fn free_share(capacity: i128, used: i128) -> i64 {
    if capacity <= 0 || used > capacity {
        return 0;
    }
    ((capacity - used) * 100 / capacity) as i64
}

/// The mean share of CPU and memory left free, 0..=100.
pub fn least_allocated(alloc: Resources, requested: Resources) -> i64 {
    (free_share(alloc.cpu_milli, requested.cpu_milli) + free_share(alloc.memory, requested.memory))
        / 2
}

/// 100 when CPU and memory are used in the same proportion, less the more
/// they differ (one minus their standard deviation).
pub fn balanced(alloc: Resources, requested: Resources) -> i64 {
    let fraction = |cap: i128, used: i128| {
        if cap <= 0 {
            1.0
        } else {
            (used as f64 / cap as f64).min(1.0)
        }
    };
    let cpu = fraction(alloc.cpu_milli, requested.cpu_milli);
    let mem = fraction(alloc.memory, requested.memory);
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * 100.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cpu_milli: i128, memory: i128) -> Resources {
        Resources {
            cpu_milli,
            memory,
            pods: 0,
        }
    }

    #[test]
    fn an_emptier_node_scores_higher() {
        let alloc = r(4000, 8 << 30);
        assert!(score(alloc, r(100, 200 << 20)) > score(alloc, r(2000, 4 << 30)));
        assert_eq!(least_allocated(alloc, r(2000, 4 << 30)), 50);
    }

    #[test]
    fn balanced_use_scores_higher_than_lopsided_use() {
        let alloc = r(4000, 4000);
        assert_eq!(balanced(alloc, r(2000, 2000)), 100);
        assert_eq!(balanced(alloc, r(4000, 0)), 50);
    }
}
