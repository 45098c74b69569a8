//! `pods/eviction`: a delete that respects the pod's PodDisruptionBudget, as
//! upstream's eviction REST does.
//!
//! A pod that is already being deleted, or is Pending, Succeeded or Failed,
//! is deleted without looking at budgets. Otherwise the one budget that
//! selects it (more than one is an internal error) must allow a disruption:
//! its status must be current (`observedGeneration`), and
//! `disruptionsAllowed` is decremented and the pod recorded under
//! `disruptedPods` with a compare-and-swap on the budget before the pod is
//! deleted, so two evictions racing for the last allowed disruption cannot
//! both win. A not-ready pod is evicted without spending the budget when
//! `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or (`IfHealthyBudget`, the
//! default) when the budget is met without it. The pod gets the
//! `DisruptionTarget` condition (reason `EvictionByEvictionAPI`) first.
//! Blocked evictions are 429 with a `DisruptionBudget` cause.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::delete::{DeleteOptions, delete_one};
use super::subresource::created_status;
use super::{Core, Ctx, load, store_error};
use crate::api::object;
use crate::api::registry::lookup;
use crate::api::response::decode_body;
use crate::api::selectors::{LabelSelector, selector_string};
use crate::api::status::ApiStatus;
use crate::store::{KeyValue, ListOptions, StoreError};

/// How many times a lost race on the budget is retried.
const TRIES: usize = 8;
/// Upstream's cap on evictions the disruption controller has not yet seen.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
const TOO_MANY: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// `POST pods/<name>/eviction`.
pub async fn evict(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let eviction = decode_body(&ctx.headers, &body)?;
    crate::api::admission::noderestriction::admit(
        core,
        &ctx,
        crate::api::admission::noderestriction::Operation::Create,
        Some(&eviction),
        None,
    )?;
    let mut opts = match &eviction["deleteOptions"] {
        Value::Object(_) => DeleteOptions::from_value(&ctx, &eviction["deleteOptions"])?,
        _ => DeleteOptions::from_value(&ctx, &json!({}))?,
    };
    for _ in 0..TRIES {
        let (pod_kv, pod) = load(core, &ctx).await?;
        if ignores_budgets(&pod) {
            return finish(core, &ctx, &opts, false).await;
        }
        let mut budgets = budgets_of(core, &ctx, &pod).await?;
        let Some((pdb_kv, pdb)) = budgets.pop() else {
            return finish(core, &ctx, &opts, true).await;
        };
        if !budgets.is_empty() {
            return Err(ApiStatus::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if !is_ready(&pod) && unhealthy_may_go(&pdb) {
            // Only if the pod has not changed since it was judged unhealthy.
            if opts.resource_version.is_none() {
                opts.resource_version = Some(pod_kv.mod_revision.to_string());
            }
            return finish(core, &ctx, &opts, true).await;
        }
        let spent = spend(&pdb, ctx.name())?;
        if opts.dry_run {
            return Ok(created_status());
        }
        match core
            .store
            .update(
                &pdb_kv.key,
                object::encode(&spent),
                pdb_kv.mod_revision,
                None,
            )
            .await
        {
            Ok(_) => return finish(core, &ctx, &opts, true).await,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiStatus::too_many_requests(TOO_MANY))
}

/// Pods whose eviction no budget guards: already going, not yet running,
/// or finished.
fn ignores_budgets(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_some()
        || matches!(
            pod["status"]["phase"].as_str(),
            Some("Pending" | "Succeeded" | "Failed")
        )
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether a not-ready pod may go without spending the budget.
fn unhealthy_may_go(pdb: &Value) -> bool {
    if pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" {
        return true;
    }
    let status = &pdb["status"];
    let current = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    current >= desired && desired > 0
}

/// The budgets in the pod's namespace whose selector selects it.
async fn budgets_of(
    core: &Core,
    ctx: &Ctx,
    pod: &Value,
) -> Result<Vec<(KeyValue, Value)>, ApiStatus> {
    let Some(pdbs) = lookup("policy", "v1", "poddisruptionbudgets") else {
        return Err(ApiStatus::internal(
            "poddisruptionbudgets missing from the kind table",
        ));
    };
    let list = core
        .store
        .list(&pdbs.prefix(ctx.namespace()), ListOptions::default())
        .await
        .map_err(store_error)?;
    let mut out = Vec::new();
    for kv in list.kvs {
        let Ok(pdb) = object::decode(&kv) else {
            continue;
        };
        let selector = &pdb["spec"]["selector"];
        if selector.is_null() {
            continue;
        }
        let Ok(sel) = LabelSelector::parse(&selector_string(selector)) else {
            continue;
        };
        if sel.matches(pod) {
            out.push((kv, pdb));
        }
    }
    Ok(out)
}

fn blocked(cause: String) -> ApiStatus {
    let mut err = ApiStatus::too_many_requests(TOO_MANY);
    err.details = Some(json!({"causes": [{"type": "DisruptionBudget", "message": cause}]}));
    err
}

fn budget_forbidden(name: &str, why: &str) -> ApiStatus {
    ApiStatus::new(
        403,
        "Forbidden",
        format!("poddisruptionbudget.policy \"{name}\" is forbidden: {why}"),
    )
}

/// The budget with one disruption spent on `pod`, or why it cannot be.
fn spend(pdb: &Value, pod: &str) -> Result<Value, ApiStatus> {
    let name = object::name(pdb);
    let status = &pdb["status"];
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if status["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(blocked(format!(
            "The disruption budget {name} is still being processed by the server."
        )));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(budget_forbidden(
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = status["disruptedPods"].as_object().map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(budget_forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(blocked(format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            status["desiredHealthy"].as_i64().unwrap_or(0),
            status["currentHealthy"].as_i64().unwrap_or(0),
        )));
    }
    let mut next = pdb.clone();
    let st = &mut next["status"];
    st["disruptionsAllowed"] = json!(allowed - 1);
    if !st["disruptedPods"].is_object() {
        st["disruptedPods"] = json!({});
    }
    st["disruptedPods"][pod] = json!(object::now());
    if allowed - 1 == 0 {
        set_condition(st, "False", "InsufficientPods");
    }
    Ok(next)
}

/// Sets the budget's `DisruptionAllowed` condition.
pub fn set_condition(status: &mut Value, value: &str, reason: &str) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let fresh = json!({"type": "DisruptionAllowed", "status": value, "reason": reason,
        "message": "", "lastTransitionTime": object::now(),
        "observedGeneration": status["observedGeneration"].clone()});
    let Some(list) = status["conditions"].as_array_mut() else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
        Some(c) if c["status"] == value => {
            c["reason"] = json!(reason);
        }
        Some(c) => *c = fresh,
        None => list.push(fresh),
    }
}

/// Marks the pod as a disruption target (unless `mark` is false or this is
/// a dry run) and deletes it.
async fn finish(
    core: &Arc<Core>,
    ctx: &Ctx,
    opts: &DeleteOptions,
    mark: bool,
) -> Result<Response, ApiStatus> {
    if mark && !opts.dry_run {
        mark_disruption_target(core, ctx).await?;
    }
    delete_one(core, ctx, opts).await?;
    Ok(created_status())
}

/// Adds `DisruptionTarget: True` (reason `EvictionByEvictionAPI`) to the
/// pod's conditions, as upstream does before an eviction's delete.
async fn mark_disruption_target(core: &Core, ctx: &Ctx) -> Result<(), ApiStatus> {
    for _ in 0..TRIES {
        let (kv, mut pod) = load(core, ctx).await?;
        let conditions = pod["status"]["conditions"].as_array().cloned();
        let mut conditions = conditions.unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["status"] == "True")
        {
            return Ok(());
        }
        conditions.retain(|c| c["type"] != "DisruptionTarget");
        conditions.push(json!({"type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
            "lastProbeTime": null, "lastTransitionTime": object::now()}));
        object::set_path(&mut pod, &["status", "conditions"], json!(conditions));
        match core
            .store
            .update(&kv.key, object::encode(&pod), kv.mod_revision, None)
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiStatus::modified(ctx.kind(), ctx.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({"metadata": {"name": "b", "generation": generation},
            "spec": {"minAvailable": 2},
            "status": {"disruptionsAllowed": allowed, "observedGeneration": observed,
                "currentHealthy": 2 + allowed, "desiredHealthy": 2}})
    }

    #[test]
    fn spending_takes_one_and_records_the_pod() {
        let spent = spend(&pdb(1, 1, 1), "p").expect("allowed");
        assert_eq!(spent["status"]["disruptionsAllowed"], 0);
        assert!(spent["status"]["disruptedPods"]["p"].is_string());
        assert_eq!(
            spent["status"]["conditions"][0]["reason"],
            "InsufficientPods"
        );
    }

    #[test]
    fn exhausted_or_stale_budgets_block_with_429() {
        let err = spend(&pdb(0, 1, 1), "p").expect_err("blocked");
        assert_eq!(err.code, 429);
        let cause = err
            .details
            .as_ref()
            .map(|d| d["causes"][0]["message"].clone());
        assert_eq!(
            cause,
            Some(json!(
                "The disruption budget b needs 2 healthy pods and has 2 currently"
            ))
        );
        let stale = spend(&pdb(3, 2, 1), "p").expect_err("stale");
        assert_eq!(stale.code, 429);
        assert_eq!(spend(&pdb(-1, 1, 1), "p").expect_err("negative").code, 403);
    }

    #[test]
    fn unhealthy_pods_go_when_the_budget_is_met_or_always_allowed() {
        let mut b = pdb(0, 1, 1);
        assert!(unhealthy_may_go(&b));
        b["status"]["currentHealthy"] = json!(1);
        assert!(!unhealthy_may_go(&b));
        b["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert!(unhealthy_may_go(&b));
    }

    #[test]
    fn pending_and_finished_pods_ignore_budgets() {
        for phase in ["Pending", "Succeeded", "Failed"] {
            assert!(ignores_budgets(
                &json!({"metadata": {}, "status": {"phase": phase}})
            ));
        }
        assert!(!ignores_budgets(
            &json!({"metadata": {}, "status": {"phase": "Running"}})
        ));
    }
}
