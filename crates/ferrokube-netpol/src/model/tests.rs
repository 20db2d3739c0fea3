//! The translation over a table of policy cases: one small cluster (two
//! namespaces, pods on this node `n1` and on `n2`), each case's policies,
//! and the rules each pod of `n1` gets (sets written out, comments dropped).

use super::*;
use serde_json::{json, Value};

fn pod(ns: &str, name: &str, ip: &str, node: &str, labels: Value, ports: Value) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip}
    }))
    .expect("pod");
    PodInfo::from_pod(&p).expect("pod info")
}

fn cluster() -> (Vec<PodInfo>, NamespaceLabels) {
    let pods = vec![
        pod(
            "default",
            "server",
            "10.0.0.2",
            "n1",
            json!({"app": "web"}),
            json!([{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]),
        ),
        pod(
            "default",
            "client",
            "10.0.0.3",
            "n1",
            json!({"role": "client"}),
            json!([]),
        ),
        pod(
            "default",
            "other",
            "10.0.0.4",
            "n1",
            json!({"role": "other"}),
            json!([]),
        ),
        pod(
            "blue",
            "remote",
            "10.0.1.5",
            "n2",
            json!({"role": "client"}),
            json!([{"name": "http", "containerPort": 9090}]),
        ),
    ];
    let ns = |name: &str, extra: Value| {
        let mut labels: BTreeMap<String, String> = serde_json::from_value(extra).expect("labels");
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
        (name.to_string(), labels)
    };
    let namespaces = [
        ns("default", json!({})),
        ns("blue", json!({"team": "blue"})),
    ]
    .into_iter()
    .collect();
    (pods, namespaces)
}

fn policy(name: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": name}, "spec": spec
    }))
    .expect("policy")
}

/// The rules of the pod at `ip` for `dir` (`None`: not isolated), with
/// the sets written out and the comments dropped.
fn rules_of(rs: &Ruleset, ip: &str, dir: Direction) -> Option<Vec<String>> {
    let ip: Ipv4Addr = ip.parse().expect("ip");
    let map = match dir {
        Direction::Ingress => &rs.ingress,
        Direction::Egress => &rs.egress,
    };
    let chain = map.get(&ip)?;
    let (_, rules) = rs.chains.iter().find(|(n, _)| n == chain)?;
    Some(
        rules
            .iter()
            .map(|r| {
                let mut r = r.split(" comment ").next().unwrap_or_default().to_string();
                for (name, members) in &rs.sets {
                    let m: Vec<String> = members.iter().map(Ipv4Addr::to_string).collect();
                    r = r.replace(&format!("@{name}"), &format!("{{{}}}", m.join(",")));
                }
                r
            })
            .collect(),
    )
}

/// A pod's IP, and its expected ingress and egress rules (`None`: not
/// isolated).
type Expected = (&'static str, Rules, Rules);

/// Expected rules of one direction.
type Rules = Option<Vec<&'static str>>;

/// A case: its policies, and for pod IPs of `n1` the expected ingress and
/// egress rules (`None`: not isolated).
struct Case {
    name: &'static str,
    policies: Vec<Value>,
    expect: Vec<Expected>,
}

const SERVER: &str = "10.0.0.2";
const CLIENT: &str = "10.0.0.3";

fn web(spec: Value) -> Value {
    let mut s = json!({"podSelector": {"matchLabels": {"app": "web"}}});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    s
}

#[expect(clippy::too_many_lines, reason = "the table of cases")]
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no policy isolates nobody",
            policies: vec![],
            expect: vec![(SERVER, None, None), (CLIENT, None, None)],
        },
        Case {
            name: "deny all ingress: every pod of the namespace, ingress only",
            policies: vec![json!({"podSelector": {}, "policyTypes": ["Ingress"]})],
            expect: vec![
                (SERVER, Some(vec!["drop"]), None),
                (CLIENT, Some(vec!["drop"]), None),
            ],
        },
        Case {
            name: "policyTypes left empty: ingress only without egress rules",
            policies: vec![web(json!({}))],
            expect: vec![(SERVER, Some(vec!["drop"]), None), (CLIENT, None, None)],
        },
        Case {
            name: "policyTypes left empty with egress rules: both",
            policies: vec![web(json!({"egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}))],
            expect: vec![(
                SERVER,
                Some(vec!["drop"]),
                Some(vec!["meta l4proto udp th dport 53 return", "drop"]),
            )],
        },
        Case {
            name: "policyTypes Ingress alone ignores egress rules",
            policies: vec![web(json!({"policyTypes": ["Ingress"], "egress": [{}]}))],
            expect: vec![(SERVER, Some(vec!["drop"]), None)],
        },
        Case {
            name: "podSelector peer: pods of the policy's namespace only",
            policies: vec![web(json!({"ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}))],
            expect: vec![(SERVER, Some(vec!["ip saddr {10.0.0.3} return", "drop"]), None)],
        },
        Case {
            name: "namespaceSelector peer: every pod of those namespaces",
            policies: vec![web(json!({"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}))],
            expect: vec![(SERVER, Some(vec!["ip saddr {10.0.1.5} return", "drop"]), None)],
        },
        Case {
            name: "both selectors in one peer: those pods of those namespaces",
            policies: vec![web(json!({"ingress": [{"from": [{
                "namespaceSelector": {},
                "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]}
            }]}]}))],
            expect: vec![(SERVER, Some(vec!["ip saddr {10.0.0.3,10.0.1.5} return", "drop"]), None)],
        },
        Case {
            name: "ipBlock with excepts (the narrower except folded into the wider)",
            policies: vec![web(json!({"ingress": [{"from": [{"ipBlock": {
                "cidr": "10.0.0.0/16", "except": ["10.0.1.0/24", "10.0.1.5/32"]}}]}]}))],
            expect: vec![(
                SERVER,
                Some(vec!["ip saddr 10.0.0.0/16 ip saddr != { 10.0.1.0/24 } return", "drop"]),
                None,
            )],
        },
        Case {
            name: "ports: protocols, a range, a named port of the selected pod, an unknown name",
            policies: vec![web(json!({"ingress": [{"ports": [
                {"port": 80},
                {"port": 53, "endPort": 60, "protocol": "UDP"},
                {"protocol": "SCTP"},
                {"port": "http"},
                {"port": "dns", "protocol": "UDP"},
                {"port": "nope"}
            ]}]}))],
            expect: vec![(
                SERVER,
                Some(vec![
                    "meta l4proto tcp th dport 80 return",
                    "meta l4proto udp th dport 53-60 return",
                    "meta l4proto sctp return",
                    "meta l4proto tcp th dport 8080 return",
                    "meta l4proto udp th dport 53 return",
                    "drop",
                ]),
                None,
            )],
        },
        Case {
            name: "peers and ports of one rule: every pair",
            policies: vec![web(json!({"ingress": [{
                "from": [{"podSelector": {"matchLabels": {"role": "client"}}}, {"ipBlock": {"cidr": "192.168.0.1/24"}}],
                "ports": [{"port": 80}, {"port": 443}]
            }]}))],
            expect: vec![(
                SERVER,
                Some(vec![
                    "ip saddr {10.0.0.3} meta l4proto tcp th dport 80 return",
                    "ip saddr {10.0.0.3} meta l4proto tcp th dport 443 return",
                    "ip saddr 192.168.0.0/24 meta l4proto tcp th dport 80 return",
                    "ip saddr 192.168.0.0/24 meta l4proto tcp th dport 443 return",
                    "drop",
                ]),
                None,
            )],
        },
        Case {
            name: "an empty rule and an empty from allow everything",
            policies: vec![web(json!({"ingress": [{}, {"from": [], "ports": []}]}))],
            expect: vec![(SERVER, Some(vec!["return", "return", "drop"]), None)],
        },
        Case {
            name: "policies add up: deny all, then allow clients",
            policies: vec![
                json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
                web(json!({"ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]})),
            ],
            expect: vec![
                (SERVER, Some(vec!["ip saddr {10.0.0.3} return", "drop"]), None),
                (CLIENT, Some(vec!["drop"]), None),
            ],
        },
        Case {
            name: "egress deny with a DNS exception",
            policies: vec![json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [
                {"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]})],
            expect: vec![(
                CLIENT,
                None,
                Some(vec![
                    "meta l4proto udp th dport 53 return",
                    "meta l4proto tcp th dport 53 return",
                    "drop",
                ]),
            )],
        },
        Case {
            name: "egress to a named port: the peers' own numbers",
            policies: vec![json!({"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]},
                           {"ports": [{"port": "dns", "protocol": "UDP"}]},
                           {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "http"}]}]})],
            expect: vec![(
                CLIENT,
                None,
                Some(vec![
                    "meta l4proto tcp ip daddr . th dport { 10.0.0.2 . 8080, 10.0.1.5 . 9090 } return",
                    "meta l4proto udp ip daddr . th dport { 10.0.0.2 . 53 } return",
                    "drop",
                ]),
            )],
        },
        Case {
            name: "egress to pods and blocks",
            policies: vec![json!({"podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}, {"ipBlock": {"cidr": "10.9.0.0/16"}}]}]})],
            expect: vec![(
                CLIENT,
                None,
                Some(vec!["ip daddr {10.0.0.2} return", "ip daddr 10.9.0.0/16 return", "drop"]),
            )],
        },
    ]
}

#[test]
fn policies_translate_as_kubernetes_defines_them() {
    let (pods, namespaces) = cluster();
    for case in cases() {
        let policies: Vec<NetworkPolicy> = case
            .policies
            .iter()
            .enumerate()
            .map(|(i, s)| policy(&format!("p{i}"), s.clone()))
            .collect();
        let rs = plan("n1", &pods, &namespaces, &policies);
        for (ip, ingress, egress) in &case.expect {
            let want = |v: &Option<Vec<&str>>| {
                v.as_ref()
                    .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            };
            assert_eq!(
                rules_of(&rs, ip, Direction::Ingress),
                want(ingress),
                "{}: ingress of {ip}",
                case.name
            );
            assert_eq!(
                rules_of(&rs, ip, Direction::Egress),
                want(egress),
                "{}: egress of {ip}",
                case.name
            );
        }
        // Pods of other nodes get no chains here.
        assert!(!rs.ingress.contains_key(&"10.0.1.5".parse().expect("ip")));
    }
}

#[test]
fn peer_sets_follow_labels_and_namespaces() {
    let (mut pods, mut namespaces) = cluster();
    let p = [policy(
        "p",
        web(
            json!({"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}),
        ),
    )];
    // The namespace loses its label: the set empties.
    namespaces.get_mut("blue").expect("ns").remove("team");
    let rs = plan("n1", &pods, &namespaces, &p);
    assert_eq!(
        rules_of(&rs, SERVER, Direction::Ingress),
        Some(vec!["ip saddr {} return".to_string(), "drop".to_string()])
    );
    // The selected pod's label goes: it is no longer isolated.
    pods[0].labels.clear();
    let rs = plan("n1", &pods, &namespaces, &p);
    assert_eq!(rules_of(&rs, SERVER, Direction::Ingress), None);
}

#[test]
fn pods_no_policy_applies_to_are_left_out() {
    let host: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "d", "name": "h"},
        "spec": {"nodeName": "n1", "hostNetwork": true, "containers": []},
        "status": {"phase": "Running", "podIP": "192.168.1.1"}
    }))
    .expect("pod");
    assert_eq!(PodInfo::from_pod(&host), None);
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "d", "name": "p"},
        "spec": {"nodeName": "n1", "containers": []},
        "status": {"phase": "Pending"}
    }))
    .expect("pod");
    assert_eq!(PodInfo::from_pod(&pending), None);
    let done: Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "d", "name": "p"},
        "spec": {"nodeName": "n1", "containers": []},
        "status": {"phase": "Succeeded", "podIP": "10.0.0.9"}
    }))
    .expect("pod");
    assert_eq!(PodInfo::from_pod(&done), None);
}

/// The script of every case is one nft accepts (checked with `nft -c`, which
/// applies nothing).
#[test]
fn scripts_are_valid_nft() {
    let (pods, namespaces) = cluster();
    let policies: Vec<NetworkPolicy> = cases()
        .iter()
        .flat_map(|c| c.policies.clone())
        .enumerate()
        .map(|(i, s)| policy(&format!("p{i}"), s))
        .collect();
    let rs = plan("n1", &pods, &namespaces, &policies);
    let s = script("ferrokube-netpol-check", &rs);
    assert!(s.starts_with(
        "add table inet ferrokube-netpol-check\ndelete table inet ferrokube-netpol-check\n"
    ));
    let out = nft_check(&s);
    assert!(
        out.status.success(),
        "{}\n{s}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scale: 1,000 pods (a third on this node) in 10 namespaces and 100
/// policies, each pod selected by two of them for both directions. Prints
/// the time to plan and render, and `nft -c`'s time to check the script
/// (`cargo test -p ferrokube-netpol --release scale -- --nocapture`);
/// fails when planning is far off (quadratic in pods times policies).
#[test]
fn scale_a_thousand_pods_and_a_hundred_policies() {
    let mut pods = Vec::new();
    for i in 0..1000u32 {
        pods.push(pod(
            &format!("ns{}", i % 10),
            &format!("p{i}"),
            &format!("10.40.{}.{}", i / 256, i % 256),
            if i % 3 == 0 { "n1" } else { "n2" },
            json!({"app": format!("a{}", i % 50), "role": if i % 2 == 0 { "client" } else { "server" }}),
            json!([{"name": "http", "containerPort": 8080}]),
        ));
    }
    let namespaces: NamespaceLabels = (0..10)
        .map(|i| {
            let labels = [("team".to_string(), format!("t{}", i % 3))]
                .into_iter()
                .collect();
            (format!("ns{i}"), labels)
        })
        .collect();
    let policies: Vec<NetworkPolicy> = (0..100)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": {"namespace": format!("ns{}", i % 10), "name": format!("np{i}")},
                "spec": {
                    "podSelector": {"matchLabels": {"app": format!("a{}", i % 50)}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [
                        {"podSelector": {"matchLabels": {"role": "client"}}},
                        {"namespaceSelector": {"matchLabels": {"team": format!("t{}", i % 3)}}}
                    ], "ports": [{"port": "http"}, {"port": 443}]}],
                    "egress": [
                        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]},
                        {"ports": [{"port": 53, "protocol": "UDP"}]}
                    ]
                }
            }))
            .expect("policy")
        })
        .collect();
    let started = std::time::Instant::now();
    let rs = plan("n1", &pods, &namespaces, &policies);
    let s = script("ferrokube-netpol-scale", &rs);
    let planned = started.elapsed();
    assert_eq!((rs.ingress.len(), rs.egress.len()), (334, 334));
    let started = std::time::Instant::now();
    let out = nft_check(&s);
    let checked = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "1000 pods, 100 policies: {} sets, {} chains, {} lines; plan and render {planned:?}, nft -c {checked:?}",
        rs.sets.len(),
        rs.chains.len(),
        s.lines().count()
    );
    assert!(planned < std::time::Duration::from_secs(5), "{planned:?}");
}

/// `nft -c` (check, apply nothing) on `script`.
fn nft_check(script: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    child.wait_with_output().expect("nft")
}
