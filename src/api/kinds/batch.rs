//! Jobs and CronJobs (batch/v1): defaults, the selector generated from the
//! Job's uid, the `OnFailure`/`Never` restart rule of their pod templates,
//! cron schedule and time zone checks, and what a Job update may change.

use serde_json::{Map, Value, json};

use super::cron::validate_schedule;
use super::labelselector::{self, go_selector};
use super::podspec::{default_template, validate_template};
use super::validation::{
    check_immutable, default_field, go_string_map, int_at, invalid, invalid_shown, not_supported,
    obj_entry, required, required_because, str_at, validate_meta,
};
use super::workloads::{nonnegative, reset_status};
use super::{Cause, Strategy};

/// The label selecting a Job's pods by the Job's uid.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

/// Jobs (batch/v1).
pub struct JobStrategy;

impl Strategy for JobStrategy {
    fn default(&self, obj: &mut Value) {
        let template_labels = obj
            .pointer("/spec/template/metadata/labels")
            .filter(|l| l.is_object())
            .cloned();
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        let unset = |s: &Value, k: &str| s.get(k).is_none_or(Value::is_null);
        if unset(spec, "completions") && unset(spec, "parallelism") {
            default_field(spec, "completions", 1);
        }
        default_field(spec, "parallelism", 1);
        if unset(spec, "backoffLimit") {
            let limit = if unset(spec, "backoffLimitPerIndex") {
                6
            } else {
                i64::from(i32::MAX)
            };
            default_field(spec, "backoffLimit", limit);
        }
        default_field(spec, "completionMode", "NonIndexed");
        default_field(spec, "suspend", false);
        default_field(spec, "manualSelector", false);
        let replacement = if unset(spec, "podFailurePolicy") {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        default_field(spec, "podReplacementPolicy", replacement);
        if let Some(rules) = spec
            .pointer_mut("/podFailurePolicy/rules")
            .and_then(Value::as_array_mut)
        {
            for rule in rules {
                if let Some(conds) = rule
                    .get_mut("onPodConditions")
                    .and_then(Value::as_array_mut)
                {
                    for c in conds.iter_mut().filter(|c| c.is_object()) {
                        default_field(c, "status", "True");
                    }
                }
            }
        }
        default_template(spec.get_mut("template"));
        if let Some(labels) =
            template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        {
            if let Some(meta) = obj_entry(obj, "metadata") {
                if meta
                    .get("labels")
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty)
                {
                    if let Some(m) = meta.as_object_mut() {
                        m.insert("labels".into(), labels);
                    }
                }
            }
        }
    }

    /// Resets status and, unless `manualSelector` is set, generates the
    /// selector and template labels from the Job's uid and name. Without a
    /// uid (the generic code sets it first) nothing is generated and
    /// validation reports the missing selector.
    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
        if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let Some(uid) = str_at(meta, "uid")
            .filter(|u| !u.is_empty())
            .map(str::to_string)
        else {
            return;
        };
        let name = str_at(meta, "name").unwrap_or("").to_string();
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        if let Some(labels) = obj_entry(spec, "template")
            .and_then(|t| obj_entry(t, "metadata"))
            .and_then(|m| obj_entry(m, "labels"))
            .and_then(Value::as_object_mut)
        {
            for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
                labels.entry(key).or_insert_with(|| name.clone().into());
            }
            for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
                labels.entry(key).or_insert_with(|| uid.clone().into());
            }
        }
        if let Some(match_labels) = obj_entry(spec, "selector")
            .and_then(|s| obj_entry(s, "matchLabels"))
            .and_then(Value::as_object_mut)
        {
            match_labels
                .entry(CONTROLLER_UID_LABEL)
                .or_insert_with(|| uid.into());
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = spec_of(obj);
        validate_job_spec(spec, "spec", &mut errs);
        let selector = spec.get("selector").filter(|s| !s.is_null());
        match selector {
            None => errs.push(required("spec.selector")),
            Some(sel) => {
                let sel_errs = labelselector::validate_selector(sel, "spec.selector");
                let ok = sel_errs.is_empty();
                errs.extend(sel_errs);
                let labels = spec.pointer("/template/metadata/labels");
                if ok && !labelselector::matches(sel, labels) {
                    errs.push(invalid_shown(
                        "spec.template.metadata.labels",
                        &go_string_map(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
                let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
                let uid = obj
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let generated = sel
                    .pointer("/matchLabels")
                    .and_then(|m| m.get(CONTROLLER_UID_LABEL));
                if ok && !manual && generated.and_then(Value::as_str) != Some(uid) {
                    errs.push(invalid_shown(
                        "spec.selector",
                        &go_selector(sel),
                        "`selector` not auto-generated",
                    ));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        if new.pointer("/spec/selector") != old.pointer("/spec/selector") {
            let sel = new.pointer("/spec/selector").unwrap_or(&Value::Null);
            errs.push(invalid_shown(
                "spec.selector",
                &go_selector(sel),
                "field is immutable",
            ));
        }
        errs.extend(check_immutable(
            new,
            old,
            "/spec/completionMode",
            "spec.completionMode",
        ));
        let indexed = str_at(spec_of(new), "completionMode") == Some("Indexed");
        let elastic = indexed && spec_of(new).get("completions") == spec_of(new).get("parallelism");
        if !elastic {
            errs.extend(check_immutable(
                new,
                old,
                "/spec/completions",
                "spec.completions",
            ));
        }
        let suspended = spec_of(old).get("suspend").and_then(Value::as_bool) == Some(true)
            && old.pointer("/status/startTime").is_none();
        if !suspended && new.pointer("/spec/template") != old.pointer("/spec/template") {
            errs.push(invalid(
                "spec.template",
                new.pointer("/spec/template")
                    .cloned()
                    .unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let n = obj
            .pointer("/status/succeeded")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        vec![("status.successful", n.to_string())]
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Rules shared by a Job's spec and a CronJob's job template spec.
fn validate_job_spec(spec: &Value, p: &str, errs: &mut Vec<Cause>) {
    for key in [
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(spec, key, &format!("{p}.{key}"), errs);
    }
    if let Some(v) = spec.get("activeDeadlineSeconds").filter(|v| !v.is_null()) {
        if v.as_i64().is_none_or(|n| n <= 0) {
            errs.push(invalid(
                &format!("{p}.activeDeadlineSeconds"),
                v.clone(),
                "must be greater than 0",
            ));
        }
    }
    match str_at(spec, "completionMode") {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if int_at(spec, "completions").is_none() {
                errs.push(required_because(
                    &format!("{p}.completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(other) => errs.push(not_supported(
            &format!("{p}.completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(policy) = str_at(spec, "podReplacementPolicy") {
        if !matches!(policy, "TerminatingOrFailed" | "Failed") {
            errs.push(not_supported(
                &format!("{p}.podReplacementPolicy"),
                policy,
                &["TerminatingOrFailed", "Failed"],
            ));
        }
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(validate_template(template, &format!("{p}.template")));
    let policy = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let field = format!("{p}.template.spec.restartPolicy");
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|f| !f.is_null());
    match policy {
        _ if template.is_null() => {}
        "" => errs.push(required_because(
            &field,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if has_failure_policy => errs.push(invalid(
            &field,
            policy,
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(not_supported(&field, other, &["OnFailure", "Never"])),
    }
}

/// CronJobs (batch/v1).
pub struct CronJobStrategy;

impl Strategy for CronJobStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        default_field(spec, "concurrencyPolicy", "Allow");
        default_field(spec, "suspend", false);
        default_field(spec, "successfulJobsHistoryLimit", 3);
        default_field(spec, "failedJobsHistoryLimit", 1);
        if let Some(job_spec) = spec.get_mut("jobTemplate").and_then(|t| t.get_mut("spec")) {
            default_template(job_spec.get_mut("template"));
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj);
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
            if name.len() > 52 {
                errs.push(invalid(
                    "metadata.name",
                    name,
                    "must be no more than 52 characters",
                ));
            }
        }
        let spec = spec_of(obj);
        match str_at(spec, "schedule").unwrap_or("") {
            "" => errs.push(required("spec.schedule")),
            s if s.contains("TZ") => errs.push(invalid(
                "spec.schedule",
                s,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            )),
            s => {
                if let Err(e) = validate_schedule(s) {
                    errs.push(invalid("spec.schedule", s, &e));
                }
            }
        }
        if let Some(tz) = str_at(spec, "timeZone") {
            validate_time_zone(tz, &mut errs);
        }
        match str_at(spec, "concurrencyPolicy").unwrap_or("") {
            "" => errs.push(required("spec.concurrencyPolicy")),
            "Allow" | "Forbid" | "Replace" => {}
            other => errs.push(not_supported(
                "spec.concurrencyPolicy",
                other,
                &["Allow", "Forbid", "Replace"],
            )),
        }
        for key in [
            "startingDeadlineSeconds",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
        ] {
            nonnegative(spec, key, &format!("spec.{key}"), &mut errs);
        }
        let job_template = spec.get("jobTemplate").unwrap_or(&Value::Null);
        let meta = job_template.get("metadata");
        errs.extend(super::validation::validate_labels(
            meta.and_then(|m| m.get("labels")),
            "spec.jobTemplate.metadata.labels",
        ));
        validate_job_spec(
            job_template.get("spec").unwrap_or(&json!({})),
            "spec.jobTemplate.spec",
            &mut errs,
        );
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Upstream accepts any IANA zone Go can load, but never `Local`. When
/// this host has no zone database at all, only the shape is checked.
fn validate_time_zone(tz: &str, errs: &mut Vec<Cause>) {
    let detail =
        "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones";
    if tz.eq_ignore_ascii_case("local") || tz.is_empty() {
        errs.push(invalid("spec.timeZone", tz, detail));
        return;
    }
    let has_database = jiff::tz::TimeZone::get("America/New_York").is_ok();
    let shape_ok = !tz.contains("..")
        && !tz.starts_with('/')
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
    if !shape_ok || (has_database && jiff::tz::TimeZone::get(tz).is_err()) {
        errs.push(invalid(
            "spec.timeZone",
            tz,
            &format!("unknown time zone {tz}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "1234-abcd"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}})
    }

    fn created(mut j: Value) -> Value {
        JobStrategy.default(&mut j);
        JobStrategy.prepare_for_create(&mut j);
        j
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let j = created(job());
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID_LABEL: "1234-abcd"}})
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({"batch.kubernetes.io/controller-uid": "1234-abcd", "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "1234-abcd", "job-name": "pi"})
        );
        assert!(
            JobStrategy.validate_create(&j).is_empty(),
            "{:?}",
            JobStrategy.validate_create(&j)
        );
        assert_eq!(
            JobStrategy.field_attributes(&j),
            vec![("status.successful", "0".to_string())]
        );
    }

    #[test]
    fn job_without_uid_gets_no_selector() {
        let mut j = job();
        if let Some(m) = j["metadata"].as_object_mut() {
            m.remove("uid");
        }
        let j = created(j);
        assert!(j["spec"].get("selector").is_none());
        assert_eq!(JobStrategy.validate_create(&j)[0].field, "spec.selector");
    }

    #[test]
    fn job_restart_policy_and_immutability() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let j = created(j);
        let errs = JobStrategy.validate_create(&j);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
        let old = created(job());
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        let errs = JobStrategy.validate_update(&new, &old);
        assert_eq!(errs[0].field, "spec.template");
    }

    #[test]
    fn cronjob_defaults_and_schedule() {
        let mut c = json!({"metadata": {"name": "hello"}, "spec": {"schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}],
                "restartPolicy": "OnFailure"}}}}}});
        CronJobStrategy.default(&mut c);
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(c["spec"]["suspend"], false);
        assert!(CronJobStrategy.validate_create(&c).is_empty());
        c["spec"]["schedule"] = json!("61 * * * *");
        c["spec"]["timeZone"] = json!("Local");
        let errs = CronJobStrategy.validate_create(&c);
        assert_eq!(
            errs[0].message,
            "Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        );
        assert_eq!(errs[1].field, "spec.timeZone");
        c["spec"]["schedule"] = json!("@hourly");
        c["spec"]["timeZone"] = json!("Europe/Berlin");
        assert!(CronJobStrategy.validate_create(&c).is_empty());
    }
}
