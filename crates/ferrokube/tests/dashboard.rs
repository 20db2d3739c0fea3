//! The dashboard end to end in a real browser: Debian's headless `chromium`
//! driven over the DevTools protocol (`ferrokube-browser`) against a real
//! server with a real node. It logs in with the admin kubeconfig, sees a
//! Deployment created by kubectl within 1 s and its replicas change live
//! with no request but the open watch, scales and undoes a rollout from the
//! UI (kubectl sees both), follows a pod's logs, runs `echo hello` in a
//! terminal, logs in as a `view` user (Scale disabled, no secret values)
//! and with a one-time code from `ferrokube dashboard url`, and checks that
//! logging out ends the session and that without one every data path
//! answers 401 and the page shows only the login form. Screenshots of the
//! main pages go to `<target>/dashboard-screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{tail, Cluster, NODE_ALONE};
use ferrokube_browser::{js_string, Browser, LaunchOptions, NetKind, Page};
use serde_json::Value;

const NODE: &str = "fk-dash-e2e";

/// How long any one thing the page should do may take (pods starting
/// included); the live-update checks have tighter bounds of their own.
const T: Duration = Duration::from_secs(30);

const SECRET_VALUE: &str = "s3cr3t-dashboard-value";

/// `<target>/dashboard-screenshots`: `$CARGO_TARGET_DIR` if set, else the
/// target directory this test binary was built in (`<target>/debug/deps/`).
fn screenshots_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => common::repo_root().join(d),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
            .unwrap_or_else(|| common::repo_root().join("target")),
    };
    target.join("dashboard-screenshots")
}

/// The browser on the dashboard, with what a failure message needs.
struct Ui<'a> {
    c: &'a Cluster,
    browser: Browser,
    page: Page,
    /// `https://127.0.0.1:<port>`.
    origin: String,
    shots: PathBuf,
}

impl Ui<'_> {
    /// Fails the test saying `what` went wrong, with the page's text and
    /// console, chromium's stderr and the server's log; a screenshot of the
    /// page is saved as `failure.png`.
    async fn fail(&self, what: &str, err: impl std::fmt::Display) -> ! {
        let text = self
            .page
            .evaluate("document.body ? document.body.innerText : ''")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let hash = self
            .page
            .evaluate("location.href")
            .await
            .unwrap_or_default();
        let _ = self.page.screenshot(&self.shots.join("failure.png")).await;
        let console: Vec<String> = self
            .page
            .console()
            .iter()
            .map(|c| format!("{}: {}", c.level, c.text))
            .collect();
        panic!(
            "{what}: {err}\n--- page {hash} ---\n{}\n--- console ---\n{}\n--- chromium ---\n{}\n--- server log ---\n{}",
            tail(&text, 40),
            tail(&console.join("\n"), 30),
            self.browser.stderr_tail(10),
            tail(&self.c.log(), 30)
        );
    }

    async fn wait(&self, what: &str, js: &str, within: Duration) -> Value {
        match self.page.wait_until(what, js, within).await {
            Ok(v) => v,
            Err(e) => self.fail(what, e).await,
        }
    }

    async fn eval(&self, js: &str) -> Value {
        match self.page.evaluate(js).await {
            Ok(v) => v,
            Err(e) => self.fail(js, e).await,
        }
    }

    async fn click(&self, selector: &str) {
        if let Err(e) = self.page.click(selector).await {
            self.fail(&format!("click {selector}"), e).await
        }
    }

    async fn fill(&self, selector: &str, text: &str) {
        if let Err(e) = self.page.fill(selector, text).await {
            self.fail(&format!("fill {selector}"), e).await
        }
    }

    async fn present(&self, selector: &str) {
        self.wait(
            &format!("{selector} on the page"),
            &format!("document.querySelector({}) !== null", js_string(selector)),
            T,
        )
        .await;
    }

    /// Waits until the button `selector` is there and enabled (the
    /// SelfSubjectAccessReview answered yes), then clicks it.
    async fn click_enabled(&self, selector: &str) {
        self.wait(
            &format!("{selector} enabled"),
            &format!(
                "(() => {{ const b = document.querySelector({}); return b !== null && !b.disabled; }})()",
                js_string(selector)
            ),
            T,
        )
        .await;
        self.click(selector).await;
    }

    /// Goes to a route of the dashboard (`#/...`), loading the page first
    /// if it is not there.
    async fn route(&self, hash: &str) {
        let here = self.eval("location.origin + location.pathname").await;
        if here.as_str() != Some(&format!("{}/dashboard/", self.origin)) {
            let url = format!("{}/dashboard/{hash}", self.origin);
            if let Err(e) = self.page.navigate(&url).await {
                self.fail(&format!("load {url}"), e).await
            }
        } else {
            self.eval(&format!("location.hash = {}", js_string(hash)))
                .await;
        }
    }

    async fn shot(&self, name: &str) {
        // A moment for layout and fonts after the last change.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = self.shots.join(format!("{name}.png"));
        if let Err(e) = self.page.screenshot(&path).await {
            self.fail(&format!("screenshot {name}"), e).await
        }
    }

    /// Logs in by the login form's field `field` (`login-token`,
    /// `login-kubeconfig`, `login-code`) and waits for the user's name in
    /// the header, which it returns.
    async fn login_with(&self, field: &str, secret: &str) -> String {
        self.present("[data-testid=login-submit]").await;
        self.fill(&format!("[data-testid={field}]"), secret).await;
        self.click("[data-testid=login-submit]").await;
        self.logged_in().await
    }

    async fn logged_in(&self) -> String {
        let v = self
            .wait(
                "the user's name in the header",
                "(() => { const e = document.querySelector('[data-testid=user-name]'); return e && e.textContent.trim(); })()",
                T,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn logout(&self) {
        self.click("[data-testid=logout]").await;
        self.present("[data-testid=login-submit]").await;
    }

    /// The session cookie's value.
    async fn session_cookie(&self) -> String {
        let cookies = match self.page.cookies(&format!("{}/", self.origin)).await {
            Ok(c) => c,
            Err(e) => self.fail("read cookies", e).await,
        };
        let Some(c) = cookies.iter().find(|c| c.name == "ferrokube-session") else {
            self.fail("the session cookie", format!("not among {cookies:?}"))
                .await
        };
        assert!(
            c.http_only && c.secure && c.same_site.as_deref() == Some("Strict"),
            "the session cookie is HttpOnly, Secure, SameSite=Strict: {c:?}"
        );
        c.value.clone()
    }

    /// Checks the page shows the login form and nothing of the cluster.
    async fn only_login_form(&self) {
        self.present("[data-testid=login-submit]").await;
        let shown = self
            .eval(
                "['list-table', 'user-name', 'logout', 'namespace-select', 'detail-yaml', 'list-count']\
                 .filter(t => document.querySelector(`[data-testid=${t}]`) !== null)",
            )
            .await;
        assert_eq!(shown, Value::Array(vec![]), "only the login form shows");
        for field in ["login-token", "login-kubeconfig", "login-code"] {
            self.present(&format!("[data-testid={field}]")).await;
        }
    }
}

/// The row of a list for `ns/name`.
fn row(ns: &str, name: &str) -> String {
    format!("tr[data-name=\"{name}\"][data-namespace=\"{ns}\"]")
}

/// JS: the text of the cell `col` of the row `ns/name` (null if absent).
fn cell_js(ns: &str, name: &str, col: &str) -> String {
    format!(
        "(() => {{ const c = document.querySelector({}); return c ? c.textContent.trim() : null; }})()",
        js_string(&format!("{} td[data-col=\"{col}\"]", row(ns, name)))
    )
}

/// The HTTP status of a GET of `path` on the cluster with curl (trusting
/// the cluster CA), carrying `cookie` as the session cookie if given and
/// nothing else.
fn status_of(c: &Cluster, path: &str, cookie: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("--cacert")
    .arg(c.data_dir().join("tls/ca.crt"));
    if let Some(v) = cookie {
        cmd.args(["-H", &format!("Cookie: ferrokube-session={v}")]);
    }
    let out = cmd
        .arg(format!("https://127.0.0.1:{}{path}", c.port))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The data paths a session would reach, none of which may answer without one.
const DATA_PATHS: &[&str] = &[
    "/api",
    "/apis",
    "/api/v1/namespaces",
    "/api/v1/pods",
    "/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    "/apis/apps/v1/namespaces/default/deployments",
    "/api/v1/namespaces/default/secrets",
    "/api/v1/namespaces/default/pods/ticker/log?follow=true",
    "/apis/metrics.k8s.io/v1beta1/pods",
    "/dashboard/session",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_a_real_browser() {
    let c = Cluster::start_ready_node(NODE, NODE_ALONE);
    let origin = format!("https://127.0.0.1:{}", c.port);
    // Chromium in a network namespace of its own that reaches only the API
    // server's port: the node's new pods add interfaces (IPv6 addresses) to
    // the host, and a browser that sees that drops its connections
    // (`net::ERR_NETWORK_CHANGED`).
    let options = LaunchOptions {
        isolated_network: Some(vec![c.port]),
        ..Default::default()
    };
    let browser = match Browser::launch(options).await {
        Ok(b) => b,
        Err(e) => panic!("chromium: {e} (scripts/install-deps.sh installs it)"),
    };
    let page = browser.page().await.expect("a page");
    let shots = screenshots_dir();
    let _ = std::fs::create_dir_all(&shots);
    let _ = std::fs::remove_file(shots.join("failure.png"));
    let ui = Ui {
        c: &c,
        browser,
        page,
        origin: origin.clone(),
        shots,
    };

    // Without a session: the login form only, and every data path 401.
    ui.route("#/r/apps/v1/deployments").await;
    ui.only_login_form().await;
    for path in DATA_PATHS {
        assert_eq!(status_of(&c, path, None), 401, "{path} without a session");
    }
    ui.shot("login").await;

    // The admin kubeconfig (a client certificate and key), pasted.
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let admin = ui.login_with("login-kubeconfig", &kubeconfig).await;
    let whoami = c.kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    if whoami.status.success() {
        assert_eq!(
            admin,
            String::from_utf8_lossy(&whoami.stdout),
            "the header shows the admin"
        );
    }
    let admin_cookie = ui.session_cookie().await;
    ui.route("#/").await;
    ui.wait(
        "the overview to count the node, ready",
        "/nodes\\s*1\\s*\\/\\s*1/i.test(document.body.innerText)",
        T,
    )
    .await;
    ui.shot("overview").await;

    deployments_live(&ui).await;
    scale_and_undo_from_the_ui(&ui).await;
    secrets_as_admin(&ui).await;
    logs_and_terminal(&ui).await;

    // Logging out ends the session: the old cookie no longer works.
    assert_eq!(
        status_of(&c, "/api/v1/namespaces/default/pods", Some(&admin_cookie)),
        200,
        "the live session's cookie works"
    );
    ui.logout().await;
    ui.only_login_form().await;
    for path in ["/api/v1/namespaces/default/pods", "/dashboard/session"] {
        assert_eq!(
            status_of(&c, path, Some(&admin_cookie)),
            401,
            "{path} with the cookie of a session logged out"
        );
    }

    view_user(&ui).await;
    one_time_code(&ui, &admin).await;

    // The end: logged out, the page shows only the login form, and every
    // data path answers 401, from the page (no cookie left) as from curl.
    ui.logout().await;
    ui.route("#/r/core/v1/pods").await;
    ui.only_login_form().await;
    let paths: Vec<String> = DATA_PATHS.iter().map(|p| js_string(p)).collect();
    let statuses = ui
        .eval(&format!(
            "Promise.all([{}].map(p => fetch(p).then(r => r.status)))",
            paths.join(",")
        ))
        .await;
    let want: Vec<u16> = DATA_PATHS.iter().map(|_| 401).collect();
    assert_eq!(
        statuses,
        serde_json::json!(want),
        "{DATA_PATHS:?} from the page"
    );
    for path in DATA_PATHS {
        assert_eq!(status_of(&c, path, None), 401, "{path} at the end");
    }
    drop(ui);
    let _ = c.kubectl(&[
        "delete",
        "pod",
        "ticker",
        "--grace-period=1",
        "--wait=false",
    ]);
}

/// The Deployments page: a Deployment kubectl creates shows within 1 s;
/// `kubectl scale` changes its row live with no request but the open watch.
async fn deployments_live(ui: &Ui<'_>) {
    let c = ui.c;
    ui.route("#/r/apps/v1/deployments?ns=default").await;
    ui.present("[data-testid=list-table]").await;
    ui.wait(
        "the list's complete count",
        "document.querySelector('[data-testid=list-count]')?.getAttribute('data-count') === '0'",
        T,
    )
    .await;
    let started = Instant::now();
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.35",
        "--replicas=1",
        "--",
        "sleep",
        "3600",
    ]);
    let created = Instant::now();
    let web = row("default", "web");
    ui.wait(
        "the new Deployment's row within 1 s",
        &format!("document.querySelector({}) !== null", js_string(&web)),
        Duration::from_secs(1),
    )
    .await;
    eprintln!(
        "the Deployment's row showed {:?} after kubectl returned ({:?} after it started)",
        created.elapsed(),
        started.elapsed()
    );
    ui.wait(
        "the count to follow",
        "document.querySelector('[data-testid=list-count]')?.getAttribute('data-count') === '1'",
        T,
    )
    .await;
    ui.wait(
        "the Deployment ready 1/1",
        &format!("{} === '1/1'", cell_js("default", "web", "Ready")),
        T,
    )
    .await;
    ui.shot("deployments").await;

    // Live: kubectl scales, the row changes, and the browser sent nothing.
    let open = ui.page.net_open().await.expect("open requests");
    assert!(
        open.iter().any(|e| e.url.contains("/apis/apps/v1/")
            && e.url.contains("deployments")
            && e.url.contains("watch")),
        "an open watch of Deployments: {open:#?}"
    );
    let mark = ui.page.net_mark().await.expect("mark");
    let t = Instant::now();
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=2"]);
    ui.wait(
        "the row to show 2 replicas",
        &format!(
            "({} || '').endsWith('/2')",
            cell_js("default", "web", "Ready")
        ),
        Duration::from_secs(2),
    )
    .await;
    eprintln!("kubectl scale showed in the row after {:?}", t.elapsed());
    ui.wait(
        "the Deployment ready 2/2",
        &format!("{} === '2/2'", cell_js("default", "web", "Ready")),
        T,
    )
    .await;
    let sent: Vec<_> = ui
        .page
        .net_since(mark)
        .await
        .expect("log")
        .into_iter()
        .filter(|e| e.is_start())
        .collect();
    assert!(
        sent.is_empty(),
        "no request while the list followed kubectl scale, only the open watch: {sent:#?}"
    );
}

/// Scale and rollout undo from the Deployment's page; kubectl sees both.
async fn scale_and_undo_from_the_ui(ui: &Ui<'_>) {
    let c = ui.c;
    ui.route("#/r/apps/v1/deployments/default/web").await;
    ui.wait(
        "the YAML of web, managedFields hidden",
        "(() => { const y = document.querySelector('[data-testid=detail-yaml]'); \
         return y && y.textContent.includes('name: web') && !y.textContent.includes('managedFields'); })()",
        T,
    )
    .await;
    ui.shot("deployment-detail").await;

    ui.click_enabled("[data-testid=action-scale]").await;
    ui.present("[data-testid=scale-input]").await;
    ui.fill("[data-testid=scale-input]", "3").await;
    ui.click("[data-testid=scale-confirm]").await;
    wait_kubectl(ui, "kubectl to report 3 replicas", || {
        c.kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ]) == "3"
    })
    .await;

    // A second revision (an env var in the template), then undo to the
    // first from the UI.
    c.kubectl_ok(&["set", "env", "deployment/web", "STAGE=two"]);
    wait_kubectl(ui, "revision 2", || {
        c.kubectl_ok(&["rollout", "history", "deployment/web"])
            .lines()
            .any(|l| l.trim_start().starts_with('2'))
    })
    .await;
    // The page follows the Deployment to revision 2 (the dialog offers the
    // revisions other than the current one).
    ui.wait(
        "the page at revision 2",
        "/deployment\\.kubernetes\\.io\\/revision: [\"']?2/.test(document.querySelector('[data-testid=detail-yaml]').textContent)",
        T,
    )
    .await;
    ui.click_enabled("[data-testid=action-undo]").await;
    ui.present("[data-testid=undo-revision]").await;
    let chosen = ui
        .wait(
            "revision 1 among the choices",
            "(() => { const s = document.querySelector('[data-testid=undo-revision]'); \
             const o = [...s.options].find(o => o.value === '1') || [...s.options].find(o => /(^|\\D)1(\\D|$)/.test(o.textContent)); \
             if (!o) return null; s.value = o.value; s.dispatchEvent(new Event('input', {bubbles: true})); \
             s.dispatchEvent(new Event('change', {bubbles: true})); return o.value; })()",
            T,
        )
        .await;
    ui.click("[data-testid=undo-confirm]").await;
    wait_kubectl(
        ui,
        "the first template back (no STAGE), as revision 3",
        || {
            let env = c.kubectl_ok(&[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].env}",
            ]);
            let history = c.kubectl_ok(&["rollout", "history", "deployment/web"]);
            let revisions: Vec<&str> = history
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                .collect();
            env.is_empty() && revisions == ["2", "3"]
        },
    )
    .await;
    eprintln!("rollout undo to revision {chosen} from the UI");
}

/// Waits (bounded by [`T`]) until `ok` (which runs kubectl) holds.
async fn wait_kubectl(ui: &Ui<'_>, what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + T;
    while !ok() {
        if Instant::now() >= deadline {
            ui.fail(what, format!("not within {T:?}")).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// As the admin, a secret's value is masked until revealed.
async fn secrets_as_admin(ui: &Ui<'_>) {
    ui.c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "topsecret",
        &format!("--from-literal=password={SECRET_VALUE}"),
    ]);
    ui.route("#/r/core/v1/secrets/default/topsecret").await;
    let value = "[data-testid=secret-value][data-key=password]";
    ui.present(value).await;
    let masked = ui.page.text(value).await.expect("text").unwrap_or_default();
    assert!(
        masked.contains("••••••") && !masked.contains(SECRET_VALUE),
        "masked until revealed: {masked:?}"
    );
    ui.click("[data-testid=secret-reveal]").await;
    ui.wait(
        "the value revealed",
        &format!(
            "document.querySelector({}).textContent.includes({})",
            js_string(value),
            js_string(SECRET_VALUE)
        ),
        T,
    )
    .await;
}

/// Follows the logs of a pod printing a line a second, then runs `echo
/// hello` in a terminal into it.
async fn logs_and_terminal(ui: &Ui<'_>) {
    let c = ui.c;
    c.kubectl_ok(&[
        "run",
        "ticker",
        "--image=busybox:1.35",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done",
    ]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/ticker",
        "--timeout=60s",
    ]);
    ui.route("#/r/core/v1/pods/default/ticker/logs?container=ticker")
        .await;
    let last_tick = "(() => { const o = document.querySelector('[data-testid=logs-output]'); \
                     const n = o ? [...o.textContent.matchAll(/tick (\\d+)/g)].map(m => +m[1]) : []; \
                     return n.length ? Math.max(...n) : 0; })()";
    let first = ui.wait("the first lines of the logs", last_tick, T).await;
    let first = first.as_u64().unwrap_or(0);
    let follow = ui
        .eval("document.querySelector('[data-testid=logs-follow]')?.checked")
        .await;
    assert_eq!(follow, Value::Bool(true), "follow is on by default");
    let mark = ui.page.net_mark().await.expect("mark");
    ui.wait(
        "new lines as the pod prints them",
        &format!("{last_tick} >= {}", first + 3),
        Duration::from_secs(10),
    )
    .await;
    let again: Vec<_> = ui
        .page
        .net_since(mark)
        .await
        .expect("log")
        .into_iter()
        .filter(|e| e.is_start() && e.url.contains("/log"))
        .collect();
    let log = ui.page.net_log().await.expect("log");
    if !again.is_empty() {
        let t0 = log.first().map(|e| e.at).unwrap_or_else(Instant::now);
        let streams: Vec<String> = log
            .iter()
            .filter(|e| e.url.contains("/log"))
            .map(|e| format!("{:?} {:?} {} {}", e.at - t0, e.kind, e.url, e.error))
            .collect();
        ui.fail(
            "the new lines came over the open stream",
            format!("yet the page asked again: {again:#?}\nthe log streams: {streams:#?}"),
        )
        .await;
    }
    assert!(
        log.iter().any(|e| e.kind == NetKind::Request
            && e.url.contains("/pods/ticker/log")
            && e.url.contains("follow=true")),
        "a following log stream"
    );
    ui.shot("pod-logs").await;

    ui.route("#/r/core/v1/pods/default/ticker/exec?container=ticker")
        .await;
    let term = "[data-testid=terminal]";
    ui.present(term).await;
    ui.wait(
        "the shell's prompt",
        "document.querySelector('[data-testid=terminal]').textContent.includes('#')",
        T,
    )
    .await;
    ui.click(term).await;
    if let Err(e) = ui.page.focus(term).await {
        ui.fail("focus the terminal", e).await;
    }
    if let Err(e) = ui.page.type_text("echo hello\n").await {
        ui.fail("type into the terminal", e).await;
    }
    ui.wait(
        "hello on a line of its own",
        "document.querySelector('[data-testid=terminal]').textContent.split('\\n').some(l => l.trim() === 'hello')",
        Duration::from_secs(10),
    )
    .await;
    let log = ui.page.net_log().await.expect("log");
    assert!(
        log.iter()
            .any(|e| e.kind == NetKind::WebSocket && e.url.contains("/pods/ticker/exec")),
        "the terminal is a WebSocket exec"
    );
    ui.shot("terminal").await;
}

/// A service account bound to `view` logs in with a token: the Scale
/// button is disabled and no secret's value reaches the page.
async fn view_user(ui: &Ui<'_>) {
    let c = ui.c;
    c.kubectl_ok(&["create", "serviceaccount", "viewer"]);
    c.kubectl_ok(&[
        "create",
        "rolebinding",
        "viewer-view",
        "--clusterrole=view",
        "--serviceaccount=default:viewer",
    ]);
    let token = c.kubectl_ok(&["create", "token", "viewer"]);
    let name = ui.login_with("login-token", token.trim()).await;
    assert_eq!(name, "system:serviceaccount:default:viewer");

    ui.route("#/r/apps/v1/deployments/default/web").await;
    ui.present("[data-testid=detail-yaml]").await;
    // Disabled once the access review answered (and never clickable).
    ui.wait(
        "Scale disabled for a view user",
        "document.querySelector('[data-testid=action-scale]')?.disabled === true",
        T,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ui.eval("document.querySelector('[data-testid=action-scale]').disabled")
            .await,
        Value::Bool(true),
        "Scale stays disabled"
    );

    for route in [
        "#/r/core/v1/secrets?ns=default",
        "#/r/core/v1/secrets/default/topsecret",
    ] {
        ui.route(route).await;
        ui.wait(
            "the API's 403 message",
            "(() => { const f = document.querySelector('[data-testid=forbidden]'); return f && /forbidden/i.test(f.textContent); })()",
            T,
        )
        .await;
        let leaked = ui
            .eval(&format!(
                "(() => {{ const h = document.documentElement.outerHTML; return [{}, {}].filter(v => h.includes(v)); }})()",
                js_string(SECRET_VALUE),
                js_string(&base64_of(SECRET_VALUE)),
            ))
            .await;
        assert_eq!(leaked, Value::Array(vec![]), "no secret value on {route}");
        assert!(
            !ui.page
                .exists("[data-testid=secret-value]")
                .await
                .expect("exists"),
            "no secret values on {route}"
        );
    }
    ui.shot("view-user-secrets").await;
    ui.logout().await;
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `ferrokube dashboard url` prints a URL whose one-time code logs in (as
/// the kubeconfig's user), once.
async fn one_time_code(ui: &Ui<'_>, admin: &str) {
    let c = ui.c;
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokube"))
        .args(["dashboard", "url", "--kubeconfig"])
        .arg(c.kubeconfig())
        .env_remove("KUBECONFIG")
        .output()
        .expect("run ferrokube dashboard url");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferrokube dashboard url: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout
        .split_whitespace()
        .find(|w| w.starts_with("https://") && w.contains("/dashboard/#code="))
        .unwrap_or_else(|| panic!("a URL with a code in {stdout:?}"))
        .to_string();
    assert!(
        url.starts_with(&format!("{}/dashboard/", ui.origin)),
        "{url}"
    );
    for (go, what) in [("about:blank", "blank"), (url.as_str(), "the code's URL")] {
        if let Err(e) = ui.page.navigate(go).await {
            ui.fail(&format!("load {what}"), e).await;
        }
    }
    let name = ui.logged_in().await;
    assert_eq!(name, admin, "the code logs in as its maker");
    // Once only.
    ui.logout().await;
    let _ = ui.page.navigate("about:blank").await;
    if let Err(e) = ui.page.navigate(&url).await {
        ui.fail("load the code's URL again", e).await;
    }
    ui.wait(
        "a used code refused",
        "(() => { const e = document.querySelector('[data-testid=login-error]'); return e && e.textContent.trim().length > 0; })()",
        T,
    )
    .await;
    ui.only_login_form().await;
    // Logged in again for the last logout of the scenario.
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    ui.login_with("login-kubeconfig", &kubeconfig).await;
}
