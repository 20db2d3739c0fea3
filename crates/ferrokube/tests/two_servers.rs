//! Two `ferrokube server` processes on one etcd
//! ([`common::servers::TwoServers`]): they serve one cluster. What one
//! writes the other reads, either's admin kubeconfig works with both
//! (one CA), and the join token is the same.

mod common;

use common::servers::TwoServers;

#[test]
fn two_servers_on_one_etcd_serve_one_cluster() {
    let two = TwoServers::start(&[], &[]);
    let (a, b) = (&two.servers[0], &two.servers[1]);
    a.kubectl_ok(&[
        "create",
        "configmap",
        "written-through-a",
        "--from-literal=k=v",
    ]);
    let got = b.kubectl_ok(&[
        "get",
        "configmap",
        "written-through-a",
        "-o",
        "jsonpath={.data.k}",
    ]);
    assert_eq!(got, "v");
    // The first server's kubeconfig pointed at the second server.
    let out = common::kubectl_with(
        &a.kubeconfig(),
        &[
            &format!("--server=https://127.0.0.1:{}", b.port),
            "get",
            "configmap",
            "written-through-a",
            "-o",
            "name",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/written-through-a"
    );
    let token = |c: &common::Cluster| std::fs::read_to_string(c.data_dir().join("token")).unwrap();
    assert_eq!(token(a), token(b), "one join token");
}
