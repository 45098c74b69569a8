//! Auto-deploying manifests: files in `<data-dir>/server/manifests/` are
//! applied at start and when they change; a `.skip` file stops that.

mod common;

use std::time::Duration;

use common::{TestServer, eventually, ok};

const WAIT: Duration = Duration::from_secs(20);

fn configmap(greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: shop\ndata:\n  greeting: {greeting}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sys\ndata:\n  a: b\n"
    )
}

fn greeting(server: &TestServer) -> Option<String> {
    let out = server.kubectl(&[
        "get",
        "configmap",
        "demo",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn manifests_are_applied_updated_and_skipped() {
    let mut server = TestServer::new();
    let dir = server.data_dir.join("server").join("manifests");
    std::fs::create_dir_all(&dir).expect("make the manifests dir");
    let file = dir.join("demo.yaml");
    std::fs::write(&file, configmap("hello")).expect("write a manifest");
    server.launch(&[]);
    server.wait_ready();

    // Present at start: applied, namespace first, the namespace-less object
    // in kube-system, under skiff's field manager.
    eventually(WAIT, "the manifest applied", || {
        (greeting(&server).as_deref() == Some("hello")).then_some(())
    });
    let managers = ok(
        &server,
        &[
            "get",
            "configmap",
            "sys",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert_eq!(managers, "skiff-deploy");

    // Edited: applied again.
    std::fs::write(&file, configmap("hi there")).expect("rewrite the manifest");
    eventually(WAIT, "the edit applied", || {
        (greeting(&server).as_deref() == Some("hi there")).then_some(())
    });

    // A new file appears: applied.
    std::fs::write(
        dir.join("extra.yml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: shop\n",
    )
    .expect("write another manifest");
    eventually(WAIT, "the new file applied", || {
        server
            .kubectl(&["get", "configmap", "extra", "-n", "shop"])
            .status
            .success()
            .then_some(())
    });

    // With a .skip file beside it, changes are left alone.
    std::fs::write(dir.join("demo.yaml.skip"), "").expect("write the skip file");
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&file, configmap("skipped")).expect("rewrite the manifest");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(greeting(&server).as_deref(), Some("hi there"));

    // Without it again, the file is applied.
    std::fs::remove_file(dir.join("demo.yaml.skip")).expect("remove the skip file");
    eventually(WAIT, "applied after the skip file went", || {
        (greeting(&server).as_deref() == Some("skipped")).then_some(())
    });
}
