//! The client against a real headless chromium on a `data:` page: evaluate,
//! wait, click, type, keys, a file input, a screenshot, the network log and
//! memory; and that dropping the browser ends its processes and profile.

use std::time::Duration;

use ferrokube_browser::{Browser, LaunchOptions, NetKind};

const PAGE: &str = r#"<!doctype html><title>t</title>
<input id=name><textarea id=area></textarea><input id=file type=file>
<button id=go onclick="document.body.dataset.clicked = (+(document.body.dataset.clicked||0) + 1)">go</button>
<button id=off disabled onclick="document.body.dataset.off = 1">off</button>
<pre id=keys></pre>
<script>
document.addEventListener('keydown', e => { document.getElementById('keys').textContent += e.key + ','; });
document.getElementById('file').addEventListener('change', async e => {
  document.body.dataset.file = await e.target.files[0].text();
});
</script>"#;

fn data_url(html: &str) -> String {
    let mut url = String::from("data:text/html,");
    for b in html.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one page, each helper in turn")]
async fn drives_a_page_in_headless_chromium() {
    let t = Duration::from_secs(10);
    let browser = Browser::launch(LaunchOptions::default())
        .await
        .expect("launch chromium");
    let pid = browser.pid();
    let page = browser.page().await.expect("a page");
    page.navigate(&data_url(PAGE)).await.expect("navigate");

    assert_eq!(page.evaluate("1 + 2").await.expect("eval"), 3);
    assert_eq!(
        page.evaluate("Promise.resolve('later')")
            .await
            .expect("promise"),
        "later"
    );
    let err = page.evaluate("null.x").await.expect_err("a throw");
    assert!(err.to_string().contains("TypeError"), "{err}");
    let [w, h]: [u32; 2] = page
        .evaluate_as("[innerWidth, innerHeight]")
        .await
        .expect("viewport");
    assert!(w >= 1000 && h >= 600, "{w}x{h}");

    // Waits: one that comes true after 200 ms, one that never does.
    page.evaluate("setTimeout(() => document.body.dataset.late = 'yes', 200)")
        .await
        .expect("timer");
    let v = page
        .wait_until("late", "document.body.dataset.late", t)
        .await
        .expect("late");
    assert_eq!(v, "yes");
    let start = std::time::Instant::now();
    let err = page
        .wait_until("never", "false", Duration::from_millis(300))
        .await
        .expect_err("never");
    assert!(start.elapsed() < Duration::from_secs(2), "bounded");
    assert!(err.to_string().contains("never"), "{err}");

    // Mouse clicks; a disabled button takes none.
    page.click("#go").await.expect("click");
    page.click("#go").await.expect("click");
    page.click("#off").await.expect("click disabled");
    assert_eq!(
        page.attribute("body", "data-clicked")
            .await
            .expect("attr")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        page.attribute("body", "data-off").await.expect("attr"),
        None
    );
    assert_eq!(
        page.attribute("#off", "disabled")
            .await
            .expect("attr")
            .as_deref(),
        Some("")
    );

    // Filling, inserting and typing.
    page.fill("#name", "fill'd \"text\"").await.expect("fill");
    assert_eq!(
        page.evaluate("document.querySelector('#name').value")
            .await
            .expect("v"),
        "fill'd \"text\""
    );
    page.insert_text("#area", "line 1\nline 2")
        .await
        .expect("insert");
    assert_eq!(
        page.evaluate("document.querySelector('#area').value")
            .await
            .expect("v"),
        "line 1\nline 2"
    );
    page.fill("#name", "").await.expect("clear");
    page.focus("#name").await.expect("focus");
    page.type_text("echo Hi/2\n").await.expect("type");
    assert_eq!(
        page.evaluate("document.querySelector('#name').value")
            .await
            .expect("v"),
        "echo Hi/2"
    );
    page.press("Escape").await.expect("escape");
    let keys = page.text("#keys").await.expect("keys").unwrap_or_default();
    assert!(keys.ends_with("e,c,h,o, ,H,i,/,2,Enter,Escape,"), "{keys}");
    assert_eq!(page.text("#nothing").await.expect("text"), None);
    assert!(!page.exists("#nothing").await.expect("exists"));

    // A file input.
    let dir = tempfile::tempdir().expect("dir");
    let f = dir.path().join("kubeconfig.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Config\n").expect("write");
    page.set_files("#file", &[f.as_path()])
        .await
        .expect("files");
    let v = page
        .wait_until("the file read", "document.body.dataset.file", t)
        .await
        .expect("file");
    assert_eq!(v, "apiVersion: v1\nkind: Config\n");

    // A screenshot.
    let png = dir.path().join("shots/page.png");
    page.screenshot(&png).await.expect("screenshot");
    let bytes = std::fs::read(&png).expect("png");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000);

    // The network log sees a fetch (here of a data: URL) start and end.
    let mark = page.net_mark().await.expect("mark");
    page.evaluate("fetch('data:text/plain,hello').then(r => r.text())")
        .await
        .expect("fetch");
    let log = page.net_since(mark).await.expect("log");
    assert!(
        log.iter().any(|e| e.kind == NetKind::Request
            && e.url.starts_with("data:text/plain")
            && e.method == "GET"),
        "{log:?}"
    );
    // Console.
    page.evaluate("console.log('from', 'the page')")
        .await
        .expect("log");
    page.sync().await.expect("sync");
    assert!(
        page.console().iter().any(|c| c.text == "from the page"),
        "{:?}",
        page.console()
    );

    // Memory.
    page.collect_garbage().await.expect("gc");
    let heap = page.js_heap_used().await.expect("heap");
    assert!(heap > 100_000, "{heap}");
    let mem = browser.memory();
    assert!(
        mem.processes >= 2 && mem.rss > 50 << 20 && mem.renderer_rss > 0,
        "{mem:?}"
    );
    let under = ferrokube_browser::proc::descendants(pid);
    assert!(!under.is_empty());

    drop(page);
    drop(browser);
    // Everything chromium ran is gone.
    std::thread::sleep(Duration::from_millis(300));
    for p in std::iter::once(pid).chain(under) {
        let alive = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .filter(|s| !s.contains(") Z "));
        assert!(alive.is_none(), "process {p} still there: {alive:?}");
    }
}

#[tokio::test]
async fn a_missing_program_fails_to_launch() {
    let err = Browser::launch(LaunchOptions {
        program: "/nonexistent/chromium".into(),
        ..Default::default()
    })
    .await
    .err()
    .expect("no such program");
    assert!(err.to_string().contains("/nonexistent/chromium"), "{err}");
}

/// In a network namespace of its own, the page reaches a forwarded port of
/// the host's loopback; the namespace goes with the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_browser_reaches_forwarded_ports() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = server.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = server.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "from the host";
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let browser = Browser::launch(LaunchOptions {
        isolated_network: Some(vec![port]),
        ..Default::default()
    })
    .await
    .expect("launch chromium in a namespace");
    let page = browser.page().await.expect("a page");
    page.navigate(&format!("http://127.0.0.1:{port}/"))
        .await
        .expect("navigate");
    assert_eq!(
        page.evaluate("document.body.textContent")
            .await
            .expect("text"),
        "from the host"
    );
    let namespaces = || {
        std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("fk-browser-{}-", std::process::id())))
            .count()
    };
    assert_eq!(namespaces(), 1);
    drop(page);
    drop(browser);
    assert_eq!(namespaces(), 0, "the namespace is deleted");
}
