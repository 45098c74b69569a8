//! Jobs and CronJobs end to end: `skiff server` with `skiff sim-nodes`
//! (whose Job pods succeed after two seconds, or fail when their command
//! ends in `false` or `exit N`), driven by stock kubectl.

mod common;

use std::time::Duration;

use common::{SimNodes, TestServer, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

fn kubectl_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply -f` of a manifest written into the server's directory.
fn apply(server: &TestServer, name: &str, yaml: &str) {
    let path = server.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write the manifest");
    kubectl_ok(server, &["apply", "-f", &path.display().to_string()]);
}

fn jsonpath(server: &TestServer, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let template = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &template]);
    kubectl_ok(server, &args)
}

fn wait_condition(server: &TestServer, job: &str, condition: &str) {
    let target = format!("job/{job}");
    let cond = format!("--for=condition={condition}");
    kubectl_ok(server, &["wait", &cond, &target, "--timeout=90s"]);
}

fn job_pods(server: &TestServer, job: &str) -> Vec<String> {
    let selector = format!("batch.kubernetes.io/job-name={job}");
    jsonpath(
        server,
        &["pods", "-l", &selector],
        "{.items[*].metadata.name}",
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

fn events_for(server: &TestServer, name: &str) -> String {
    let selector = format!("involvedObject.name={name}");
    jsonpath(
        server,
        &["events", "--field-selector", &selector],
        "{range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    )
}

fn job_yaml(name: &str, spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: {command}
"
    )
}

#[test]
fn jobs_run_to_completion_with_parallelism_and_indexes() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 2);
    kubectl_ok(
        &server,
        &["create", "job", "once", "--image=busybox", "--", "true"],
    );
    apply(
        &server,
        "wide",
        &job_yaml("wide", "  completions: 4\n  parallelism: 2", r#"["true"]"#),
    );
    apply(
        &server,
        "indexed",
        &job_yaml(
            "indexed",
            "  completions: 3\n  parallelism: 3\n  completionMode: Indexed",
            r#"["true"]"#,
        ),
    );

    wait_condition(&server, "once", "complete");
    let status = jsonpath(
        &server,
        &["job", "once"],
        "{.status.succeeded} {.status.active} {.status.conditions[*].type} {.status.completionTime}",
    );
    let words: Vec<&str> = status.split_whitespace().collect();
    assert_eq!(
        &words[..4],
        ["1", "0", "SuccessCriteriaMet", "Complete"],
        "{status}"
    );
    assert!(words.get(4).is_some_and(|t| t.ends_with('Z')), "{status}");
    let pods = job_pods(&server, "once");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = jsonpath(
        &server,
        &["pod", &pods[0]],
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} [{.metadata.finalizers}] {.status.phase}",
    );
    assert_eq!(pod, "Job/once [] Succeeded", "owned, counted and released");
    let events = events_for(&server, "once");
    assert!(
        events.contains("SuccessfulCreate: Created pod: once-"),
        "{events}"
    );
    assert!(events.contains("Completed: Job completed"), "{events}");

    wait_condition(&server, "wide", "complete");
    assert_eq!(
        jsonpath(&server, &["job", "wide"], "{.status.succeeded}"),
        "4"
    );
    assert_eq!(job_pods(&server, "wide").len(), 4);

    wait_condition(&server, "indexed", "complete");
    assert_eq!(
        jsonpath(
            &server,
            &["job", "indexed"],
            "{.status.completedIndexes} {.status.succeeded}"
        ),
        "0-2 3"
    );
    let selector = "batch.kubernetes.io/job-name=indexed";
    let indexes = jsonpath(
        &server,
        &["pods", "-l", selector],
        r#"{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}"#,
    );
    let mut indexes: Vec<&str> = indexes.lines().collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    let env = jsonpath(
        &server,
        &["pods", "-l", selector],
        "{.items[0].spec.containers[0].env[0].name}",
    );
    assert_eq!(env, "JOB_COMPLETION_INDEX");
}

#[test]
fn failing_jobs_stop_at_their_backoff_limit_deadline_or_failure_policy() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    kubectl_ok(
        &server,
        &["create", "job", "flaky", "--image=busybox", "--", "false"],
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "job",
            "flaky",
            "--type=merge",
            "-p",
            r#"{"spec":{"backoffLimit":1}}"#,
        ],
    );
    apply(
        &server,
        "policy",
        &job_yaml(
            "policy",
            "  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes:
        containerName: main
        operator: In
        values: [42]",
            r#"["sh", "-c", "exit 42"]"#,
        ),
    );
    apply(
        &server,
        "slow",
        &job_yaml("slow", "  activeDeadlineSeconds: 1", r#"["sleep", "3600"]"#),
    );

    wait_condition(&server, "policy", "failed");
    let policy = jsonpath(
        &server,
        &["job", "policy"],
        r#"{.status.failed} {.status.conditions[?(@.type=="Failed")].reason}"#,
    );
    assert_eq!(policy, "1 PodFailurePolicy");
    let message = jsonpath(
        &server,
        &["job", "policy"],
        r#"{.status.conditions[?(@.type=="Failed")].message}"#,
    );
    assert!(
        message.contains("failed with exit code 42 matching FailJob rule at index 0"),
        "{message}"
    );

    wait_condition(&server, "slow", "failed");
    assert_eq!(
        jsonpath(
            &server,
            &["job", "slow"],
            r#"{.status.conditions[?(@.type=="Failed")].reason} {.status.active}"#
        ),
        "DeadlineExceeded 0"
    );

    // The first pod may already have failed before backoffLimit was lowered;
    // either way two failures (one retry after a 10 s backoff) end the Job.
    wait_condition(&server, "flaky", "failed");
    let flaky = jsonpath(
        &server,
        &["job", "flaky"],
        r#"{.status.failed} {.status.conditions[?(@.type=="FailureTarget")].reason} {.status.conditions[?(@.type=="Failed")].reason}"#,
    );
    assert_eq!(flaky, "2 BackoffLimitExceeded BackoffLimitExceeded");
    assert_eq!(job_pods(&server, "flaky").len(), 2);
    let events = events_for(&server, "flaky");
    assert!(
        events.contains("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{events}"
    );
}

#[test]
fn suspended_jobs_wait_and_finished_jobs_expire() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    apply(
        &server,
        "paused",
        &job_yaml("paused", "  suspend: true", r#"["true"]"#),
    );
    apply(
        &server,
        "brief",
        &job_yaml("brief", "  ttlSecondsAfterFinished: 1", r#"["true"]"#),
    );
    wait_condition(&server, "paused", "Suspended");
    assert!(job_pods(&server, "paused").is_empty());
    assert_eq!(
        jsonpath(&server, &["job", "paused"], "{.status.startTime}"),
        ""
    );
    kubectl_ok(
        &server,
        &[
            "patch",
            "job",
            "paused",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
    );
    wait_condition(&server, "paused", "complete");
    assert_eq!(
        jsonpath(
            &server,
            &["job", "paused"],
            r#"{.status.conditions[?(@.type=="Suspended")].status}"#
        ),
        "False"
    );

    eventually(DEADLINE, "the finished job deleted after its TTL", || {
        let out = server.kubectl(&["get", "job", "brief"]);
        String::from_utf8_lossy(&out.stderr)
            .contains("NotFound")
            .then_some(())
    });
    eventually(DEADLINE, "its pods deleted with it", || {
        job_pods(&server, "brief").is_empty().then_some(())
    });
}

#[test]
fn cronjobs_start_jobs_on_schedule_and_keep_history_limits() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    kubectl_ok(
        &server,
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/1 * * * *",
            "--",
            "true",
        ],
    );
    // History limits, without waiting for a schedule: Jobs this CronJob
    // owns (it never fires on its own) finish, and only the newest stay.
    apply(
        &server,
        "keeper",
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: keeper
spec:
  schedule: \"0 0 1 1 *\"
  timeZone: Asia/Tokyo
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
",
    );
    let uid = jsonpath(&server, &["cronjob", "keeper"], "{.metadata.uid}");
    for (name, command, limit) in [
        ("keeper-ok-1", "true", 6),
        ("keeper-ok-2", "true", 6),
        ("keeper-bad-1", "false", 0),
        ("keeper-bad-2", "false", 0),
    ] {
        let spec = format!("  backoffLimit: {limit}");
        let yaml = job_yaml(name, &spec, &format!("[\"{command}\"]")).replace(
            &format!("  name: {name}\n"),
            &format!(
                "  name: {name}
  ownerReferences:
  - apiVersion: batch/v1
    kind: CronJob
    name: keeper
    uid: {uid}
    controller: true
"
            ),
        );
        apply(&server, name, &yaml);
        // Distinct start times, so "the newest" is well defined.
        std::thread::sleep(Duration::from_millis(1100));
    }
    eventually(
        Duration::from_secs(90),
        "history trimmed to one of each",
        || {
            let names = jsonpath(&server, &["jobs"], "{.items[*].metadata.name}");
            let mut keeper: Vec<&str> = names
                .split_whitespace()
                .filter(|n| n.starts_with("keeper-"))
                .collect();
            keeper.sort();
            (keeper == ["keeper-bad-2", "keeper-ok-2"]).then_some(())
        },
    );
    let events = events_for(&server, "keeper");
    assert!(
        events.contains("SuccessfulDelete: Deleted job keeper-ok-1"),
        "{events}"
    );
    assert!(
        jsonpath(
            &server,
            &["cronjob", "keeper"],
            "{.status.lastSuccessfulTime}"
        )
        .ends_with('Z')
    );

    // The every-minute CronJob fires at the next minute boundary.
    let job = eventually(
        Duration::from_secs(90),
        "a job started by the schedule",
        || {
            let names = jsonpath(&server, &["jobs"], "{.items[*].metadata.name}");
            names
                .split_whitespace()
                .find(|n| n.starts_with("tick-"))
                .map(String::from)
        },
    );
    let minutes: i64 = job["tick-".len()..].parse().expect("minutes in the name");
    let scheduled = jsonpath(
        &server,
        &["job", &job],
        r#"{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}"#,
    );
    let scheduled: jiff::Timestamp = scheduled.parse().expect("scheduled timestamp");
    assert_eq!(scheduled.as_second(), minutes * 60);
    assert_eq!(
        jsonpath(
            &server,
            &["job", &job],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"
        ),
        "CronJob/tick"
    );
    wait_condition(&server, &job, "complete");
    eventually(DEADLINE, "the cronjob's status updated", || {
        let status = jsonpath(
            &server,
            &["cronjob", "tick"],
            "{.status.lastScheduleTime} {.status.lastSuccessfulTime}",
        );
        let times: Vec<&str> = status.split_whitespace().collect();
        (times.len() == 2 && times[0] == scheduled.to_string()).then_some(())
    });
    let events = events_for(&server, "tick");
    assert!(
        events.contains(&format!("SuccessfulCreate: Created job {job}")),
        "{events}"
    );
}
