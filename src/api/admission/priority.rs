//! Priority: a pod's `priority` and `preemptionPolicy` come from its
//! PriorityClass (or the global default class), as upstream's plugin sets
//! them; a pod naming a missing class, or bringing its own different
//! values, is refused.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::registry::KindInfo;
use crate::api::status::ApiStatus;

/// Sets the pod's priority fields from `classes` (every PriorityClass).
pub fn admit_pod(
    kind: &KindInfo,
    pod: &mut Value,
    classes: &[Arc<Value>],
) -> Result<(), ApiStatus> {
    let name = crate::api::object::name(pod).to_string();
    let wanted = pod["spec"]["priorityClassName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (class_name, priority, policy) = if wanted.is_empty() {
        // Several global defaults can exist after a race: the lowest wins.
        match classes
            .iter()
            .filter(|c| c["globalDefault"] == true)
            .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
        {
            Some(c) => (
                crate::api::object::name(c).to_string(),
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"]
                    .as_str()
                    .unwrap_or("PreemptLowerPriority")
                    .to_string(),
            ),
            None => (String::new(), 0, "PreemptLowerPriority".to_string()),
        }
    } else {
        let Some(c) = classes
            .iter()
            .find(|c| crate::api::object::name(c) == wanted)
        else {
            return Err(ApiStatus::forbidden(
                kind,
                &name,
                &format!("no PriorityClass with name {wanted} was found"),
            ));
        };
        (
            wanted.clone(),
            c["value"].as_i64().unwrap_or(0),
            c["preemptionPolicy"]
                .as_str()
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        )
    };
    if let Some(given) = pod["spec"]["priority"].as_i64().filter(|p| *p != priority) {
        return Err(ApiStatus::forbidden(
            kind,
            &name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(given) = pod["spec"]["preemptionPolicy"]
        .as_str()
        .filter(|p| *p != policy)
    {
        return Err(ApiStatus::forbidden(
            kind,
            &name,
            &format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        if !class_name.is_empty() {
            spec.insert("priorityClassName".into(), json!(class_name));
        }
        spec.insert("priority".into(), json!(priority));
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> &'static KindInfo {
        crate::api::registry::lookup("", "v1", "pods").expect("pods")
    }

    fn class(name: &str, value: i64, default: bool) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name}, "value": value, "globalDefault": default}))
    }

    #[test]
    fn the_class_sets_priority_and_policy() {
        let classes = [class("high", 1000, false), class("low", 10, true)];
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "high"}});
        admit_pod(kind(), &mut pod, &classes).expect("admitted");
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let mut plain = json!({"metadata": {"name": "p"}, "spec": {}});
        admit_pod(kind(), &mut plain, &classes).expect("admitted");
        assert_eq!(plain["spec"]["priorityClassName"], "low");
        assert_eq!(plain["spec"]["priority"], 10);
    }

    #[test]
    fn missing_classes_and_foreign_values_are_forbidden() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "nope"}});
        let err = admit_pod(kind(), &mut pod, &[]).expect_err("refused");
        assert_eq!(err.code, 403);
        assert!(
            err.message
                .ends_with("no PriorityClass with name nope was found")
        );
        let mut own = json!({"metadata": {"name": "p"}, "spec": {"priority": 5}});
        let err = admit_pod(kind(), &mut own, &[]).expect_err("refused");
        assert!(
            err.message
                .contains("the integer value of priority (5) must not be provided")
        );
    }
}
