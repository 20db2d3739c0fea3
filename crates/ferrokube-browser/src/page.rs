//! A page (tab) attached over the browser's connection, and what tests do
//! with it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::cdp::{Connection, Event};
use crate::Error;

/// What a network log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    /// `Network.requestWillBeSent`: an HTTP request starts (fetch, XHR,
    /// document, script, ...).
    Request,
    /// `Network.webSocketCreated`: a WebSocket opens.
    WebSocket,
    /// `Network.loadingFinished`: a response's body has been read to its end.
    Finished,
    /// `Network.loadingFailed`: a request failed or was cancelled.
    Failed,
    /// `Network.webSocketClosed`.
    WebSocketClosed,
}

/// One entry of a page's network log.
#[derive(Clone, Debug)]
pub struct NetEntry {
    /// What happened.
    pub kind: NetKind,
    /// When this process read the event.
    pub at: Instant,
    /// The same, as wall-clock time.
    pub wall: SystemTime,
    /// The browser's request id (ties a request to its end).
    pub request_id: String,
    /// The URL (for ends, the URL of the request they end, if it was seen).
    pub url: String,
    /// The HTTP method (`GET`, ...); empty for WebSockets and ends.
    pub method: String,
    /// The resource type (`Fetch`, `Document`, `Script`, ...), if given.
    pub resource_type: String,
    /// For a failure, the browser's reason (`net::ERR_...`), and
    /// `(canceled)` when the page itself aborted it.
    pub error: String,
}

impl NetEntry {
    /// Whether this entry starts something: a request or a WebSocket.
    pub fn is_start(&self) -> bool {
        matches!(self.kind, NetKind::Request | NetKind::WebSocket)
    }
}

/// One console message or uncaught exception of the page.
#[derive(Clone, Debug)]
pub struct ConsoleEntry {
    /// `log`, `warning`, `error`, ... or `exception`.
    pub level: String,
    /// The text.
    pub text: String,
}

/// A cookie of the browser (from `Network.getCookies`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The domain it is for.
    #[serde(default)]
    pub domain: String,
    /// The path it is for.
    #[serde(default)]
    pub path: String,
    /// HttpOnly.
    #[serde(default)]
    pub http_only: bool,
    /// Secure.
    #[serde(default)]
    pub secure: bool,
    /// SameSite (`Strict`, `Lax`, `None`), if set.
    #[serde(default)]
    pub same_site: Option<String>,
}

/// A JavaScript string literal for `s` (JSON's escaping is valid JS).
pub fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[derive(Default)]
struct Logs {
    net: Vec<NetEntry>,
    urls: HashMap<String, String>,
    console: Vec<ConsoleEntry>,
}

/// The longest a console log is kept (oldest dropped first).
const MAX_CONSOLE: usize = 10_000;

impl Logs {
    fn record(&mut self, e: &Event) {
        let p = &e.params;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let id = s(p.get("requestId"));
        let kind = match e.method.as_str() {
            "Network.requestWillBeSent" => NetKind::Request,
            "Network.webSocketCreated" => NetKind::WebSocket,
            "Network.loadingFinished" => NetKind::Finished,
            "Network.loadingFailed" => NetKind::Failed,
            "Network.webSocketClosed" => NetKind::WebSocketClosed,
            "Runtime.consoleAPICalled" => {
                let text = p
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| match v.get("value") {
                                Some(Value::String(s)) => s.clone(),
                                Some(v) => v.to_string(),
                                None => s(v.get("description")),
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                self.console(s(p.get("type")), text);
                return;
            }
            "Runtime.exceptionThrown" => {
                let d = p.get("exceptionDetails");
                let text = d
                    .and_then(|d| d.get("exception"))
                    .and_then(|x| x.get("description"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| s(d.and_then(|d| d.get("text"))));
                self.console("exception".into(), text);
                return;
            }
            _ => return,
        };
        let (url, method) = match kind {
            NetKind::Request => {
                let r = p.get("request");
                let url = s(r.and_then(|r| r.get("url")));
                self.urls.insert(id.clone(), url.clone());
                (url, s(r.and_then(|r| r.get("method"))))
            }
            NetKind::WebSocket => {
                let url = s(p.get("url"));
                self.urls.insert(id.clone(), url.clone());
                (url, String::new())
            }
            _ => (
                self.urls.get(&id).cloned().unwrap_or_default(),
                String::new(),
            ),
        };
        self.net.push(NetEntry {
            kind,
            at: Instant::now(),
            wall: SystemTime::now(),
            request_id: id,
            url,
            method,
            resource_type: s(p.get("type")),
            error: match kind {
                NetKind::Failed => {
                    let canceled = p.get("canceled").and_then(Value::as_bool) == Some(true);
                    format!(
                        "{}{}",
                        s(p.get("errorText")),
                        if canceled { " (canceled)" } else { "" }
                    )
                }
                _ => String::new(),
            },
        });
    }

    fn console(&mut self, level: String, text: String) {
        if self.console.len() >= MAX_CONSOLE {
            self.console.remove(0);
        }
        self.console.push(ConsoleEntry { level, text });
    }
}

/// An attached page.
pub struct Page {
    conn: Arc<Connection>,
    session: String,
    target_id: String,
    timeout: Duration,
    logs: Arc<Mutex<Logs>>,
}

/// How often [`Page::wait_until`] looks again.
const POLL: Duration = Duration::from_millis(25);

impl Page {
    pub(crate) async fn open(
        conn: Arc<Connection>,
        session: String,
        target_id: String,
        timeout: Duration,
    ) -> Result<Page, Error> {
        let logs = Arc::new(Mutex::new(Logs::default()));
        let sink_logs = logs.clone();
        let sink_session = session.clone();
        conn.add_sink(Box::new(move |e: &Event| {
            if e.session_id.as_deref() == Some(sink_session.as_str()) {
                sink_logs.lock().record(e);
            }
        }));
        let page = Page {
            conn,
            session,
            target_id,
            timeout,
            logs,
        };
        for domain in ["Page", "Runtime", "Network", "Performance"] {
            page.call(&format!("{domain}.enable"), json!({})).await?;
        }
        Ok(page)
    }

    /// A command to this page.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.conn
            .call(Some(&self.session), method, params, self.timeout)
            .await
    }

    /// This page's events named `method` (or, ending in `.`, of that domain)
    /// from now on.
    pub fn events(&self, method: &str) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
        self.conn.subscribe(Some(&self.session), method)
    }

    /// The browser's id of this page.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// Loads `url`; for a new document, waits (bounded) for its load event.
    pub async fn navigate(&self, url: &str) -> Result<(), Error> {
        let mut loaded = self.events("Page.loadEventFired");
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            return Err(Error::Protocol {
                method: "Page.navigate".into(),
                message: format!("{url}: {err}"),
            });
        }
        if r.get("loaderId").is_some() {
            tokio::time::timeout(self.timeout, loaded.recv())
                .await
                .map_err(|_| Error::Timeout(format!("{url} did not load")))?
                .ok_or(Error::Closed)?;
        }
        Ok(())
    }

    /// Runs `expression` in the page (awaiting a promise it gives) and
    /// returns its value as JSON (`null` for `undefined`).
    pub async fn evaluate(&self, expression: &str) -> Result<Value, Error> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "returnByValue": true,
                    "awaitPromise": true,
                    "userGesture": true,
                }),
            )
            .await?;
        if let Some(d) = r.get("exceptionDetails") {
            let text = d
                .get("exception")
                .and_then(|x| x.get("description"))
                .and_then(Value::as_str)
                .or_else(|| d.get("text").and_then(Value::as_str))
                .unwrap_or("an exception");
            return Err(Error::Script(text.to_string()));
        }
        Ok(r.get("result")
            .and_then(|r| r.get("value"))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// As [`Page::evaluate`], the value parsed as `T`.
    pub async fn evaluate_as<T: serde::de::DeserializeOwned>(
        &self,
        expression: &str,
    ) -> Result<T, Error> {
        let v = self.evaluate(expression).await?;
        serde_json::from_value(v.clone())
            .map_err(|e| Error::Unexpected(format!("{expression} gave {v}: {e}")))
    }

    /// Evaluates `predicate` every 25 ms until it gives a truthy value
    /// (anything but `false`, `null`, `0`, `""`), which it returns; fails
    /// after `timeout` saying `what` and the last value or exception.
    pub async fn wait_until(
        &self,
        what: &str,
        predicate: &str,
        timeout: Duration,
    ) -> Result<Value, Error> {
        self.wait_until_every(what, predicate, timeout, POLL).await
    }

    /// As [`Page::wait_until`], looking every `interval` (at least 1 ms).
    pub async fn wait_until_every(
        &self,
        what: &str,
        predicate: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<Value, Error> {
        let deadline = Instant::now() + timeout;
        let interval = interval.max(Duration::from_millis(1));
        loop {
            let last = match self.evaluate(predicate).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(v) => format!("last value {v}"),
                Err(Error::Script(e)) => format!("last exception {e}"),
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{what} within {timeout:?} ({last})"
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Waits until an element matches `selector`.
    pub async fn wait_for(&self, selector: &str, timeout: Duration) -> Result<(), Error> {
        self.wait_until(
            &format!("an element {selector}"),
            &format!("document.querySelector({}) !== null", js_string(selector)),
            timeout,
        )
        .await
        .map(|_| ())
    }

    /// Whether an element matches `selector` now.
    pub async fn exists(&self, selector: &str) -> Result<bool, Error> {
        Ok(self
            .evaluate(&format!(
                "document.querySelector({}) !== null",
                js_string(selector)
            ))
            .await?
            == Value::Bool(true))
    }

    /// The text content of the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> Result<Option<String>, Error> {
        self.evaluate_as(&format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.textContent : null; }})()",
            js_string(selector)
        ))
        .await
    }

    /// An attribute of the first element matching `selector` (none if the
    /// element or the attribute is missing).
    pub async fn attribute(&self, selector: &str, name: &str) -> Result<Option<String>, Error> {
        self.evaluate_as(&format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.getAttribute({}) : null; }})()",
            js_string(selector),
            js_string(name)
        ))
        .await
    }

    /// Clicks the middle of the first element matching `selector` with the
    /// mouse (scrolled into view first), as a user would: a disabled button
    /// does nothing, an element on top gets the click.
    pub async fn click(&self, selector: &str) -> Result<(), Error> {
        self.wait_for(selector, self.timeout).await?;
        let (x, y): (f64, f64) = self
            .evaluate_as(&format!(
                "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center', inline: 'center'}}); \
                 const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
                js_string(selector)
            ))
            .await?;
        for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": if kind == "mouseMoved" { "none" } else { "left" },
                       "buttons": buttons, "clickCount": 1}),
            )
            .await?;
        }
        Ok(())
    }

    /// Focuses the first element matching `selector`.
    pub async fn focus(&self, selector: &str) -> Result<(), Error> {
        self.wait_for(selector, self.timeout).await?;
        self.evaluate(&format!(
            "document.querySelector({}).focus()",
            js_string(selector)
        ))
        .await
        .map(|_| ())
    }

    /// Sets the value of an input, textarea or select matching `selector`
    /// as typing would leave it (through the element's own value setter),
    /// then fires `input` and `change`.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<(), Error> {
        self.wait_for(selector, self.timeout).await?;
        self.evaluate(&format!(
            "(() => {{ const e = document.querySelector({}); e.focus(); \
             const proto = Object.getPrototypeOf(e); \
             const set = Object.getOwnPropertyDescriptor(proto, 'value').set; set.call(e, {}); \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            js_string(selector),
            js_string(text)
        ))
        .await
        .map(|_| ())
    }

    /// Focuses `selector`, selects what it holds and inserts `text` as an
    /// input method would (`Input.insertText`: `beforeinput`/`input` events).
    pub async fn insert_text(&self, selector: &str, text: &str) -> Result<(), Error> {
        self.focus(selector).await?;
        self.evaluate(&format!(
            "(() => {{ const e = document.querySelector({}); if (e.select) e.select(); }})()",
            js_string(selector)
        ))
        .await?;
        self.call("Input.insertText", json!({"text": text}))
            .await
            .map(|_| ())
    }

    /// Types `text` into the focused element key by key (`\n` is Enter,
    /// `\t` Tab): keydown, keypress/input and keyup for each.
    pub async fn type_text(&self, text: &str) -> Result<(), Error> {
        for c in text.chars() {
            match c {
                '\n' | '\r' => self.press("Enter").await?,
                '\t' => self.press("Tab").await?,
                c => self.press(&c.to_string()).await?,
            }
        }
        Ok(())
    }

    /// Presses and releases one key: a character (`a`, `/`, `J`) or a
    /// named key (`Enter`, `Escape`, `Tab`, `Backspace`, `ArrowUp`,
    /// `ArrowDown`, `ArrowLeft`, `ArrowRight`, `Home`, `End`, `Delete`).
    pub async fn press(&self, key: &str) -> Result<(), Error> {
        let k = key_info(key).ok_or_else(|| Error::Unexpected(format!("no such key {key:?}")))?;
        let mut down = json!({
            "type": if k.text.is_some() { "keyDown" } else { "rawKeyDown" },
            "key": k.key,
            "code": k.code,
            "windowsVirtualKeyCode": k.vk,
            "nativeVirtualKeyCode": k.vk,
        });
        if let Some(t) = &k.text {
            down["text"] = Value::String(t.clone());
            down["unmodifiedText"] = Value::String(t.clone());
        }
        if k.shift {
            down["modifiers"] = json!(8);
        }
        self.call("Input.dispatchKeyEvent", down).await?;
        let mut up = json!({
            "type": "keyUp",
            "key": k.key,
            "code": k.code,
            "windowsVirtualKeyCode": k.vk,
            "nativeVirtualKeyCode": k.vk,
        });
        if k.shift {
            up["modifiers"] = json!(8);
        }
        self.call("Input.dispatchKeyEvent", up).await.map(|_| ())
    }

    /// Puts `files` into the file input matching `selector` (which fires
    /// its `change` event).
    pub async fn set_files(&self, selector: &str, files: &[&Path]) -> Result<(), Error> {
        self.wait_for(selector, self.timeout).await?;
        let doc = self.call("DOM.getDocument", json!({"depth": 0})).await?;
        let root = doc
            .get("root")
            .and_then(|r| r.get("nodeId"))
            .and_then(Value::as_i64)
            .ok_or_else(|| Error::Unexpected(format!("DOM.getDocument: {doc}")))?;
        let found = self
            .call(
                "DOM.querySelector",
                json!({"nodeId": root, "selector": selector}),
            )
            .await?;
        let node = found
            .get("nodeId")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
            .ok_or_else(|| Error::Unexpected(format!("no element {selector}")))?;
        let files: Vec<String> = files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": node, "files": files}),
        )
        .await
        .map(|_| ())
    }

    /// Saves a PNG of the viewport at `path` (its directory made if needed).
    pub async fn screenshot(&self, path: &Path) -> Result<(), Error> {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = r
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unexpected("a screenshot without data".into()))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| Error::Unexpected(format!("a screenshot's base64: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// The cookies the browser would send to `url`, HttpOnly ones too.
    pub async fn cookies(&self, url: &str) -> Result<Vec<Cookie>, Error> {
        let r = self
            .call("Network.getCookies", json!({"urls": [url]}))
            .await?;
        serde_json::from_value(r.get("cookies").cloned().unwrap_or(json!([])))
            .map_err(|e| Error::Unexpected(format!("Network.getCookies: {e}")))
    }

    /// The page's performance metrics (`Performance.getMetrics`: `JSHeapUsedSize`,
    /// `JSHeapTotalSize`, `Nodes`, ...).
    pub async fn metrics(&self) -> Result<HashMap<String, f64>, Error> {
        let r = self.call("Performance.getMetrics", json!({})).await?;
        Ok(r.get("metrics")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        Some((
                            m.get("name")?.as_str()?.to_string(),
                            m.get("value")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The bytes of JavaScript heap in use (`JSHeapUsedSize`).
    pub async fn js_heap_used(&self) -> Result<u64, Error> {
        let m = self.metrics().await?;
        m.get("JSHeapUsedSize")
            .map(|v| *v as u64)
            .ok_or_else(|| Error::Unexpected("no JSHeapUsedSize metric".into()))
    }

    /// Runs the garbage collector (`HeapProfiler.collectGarbage`), for
    /// heap figures that hold only what is reachable.
    pub async fn collect_garbage(&self) -> Result<(), Error> {
        self.call("HeapProfiler.collectGarbage", json!({}))
            .await
            .map(|_| ())
    }

    /// Makes sure every event the browser sent before now is in the logs
    /// (a round trip: events come before the answer on the connection).
    pub async fn sync(&self) -> Result<(), Error> {
        self.evaluate("0").await.map(|_| ())
    }

    /// The network log so far.
    pub async fn net_log(&self) -> Result<Vec<NetEntry>, Error> {
        self.sync().await?;
        Ok(self.logs.lock().net.clone())
    }

    /// A mark in the network log: [`Page::net_since`] gives what came after.
    pub async fn net_mark(&self) -> Result<usize, Error> {
        self.sync().await?;
        Ok(self.logs.lock().net.len())
    }

    /// The network log's entries after `mark`.
    pub async fn net_since(&self, mark: usize) -> Result<Vec<NetEntry>, Error> {
        self.sync().await?;
        Ok(self.logs.lock().net.iter().skip(mark).cloned().collect())
    }

    /// The requests and WebSockets started and not (yet) ended.
    pub async fn net_open(&self) -> Result<Vec<NetEntry>, Error> {
        self.sync().await?;
        let logs = self.logs.lock();
        let ended: std::collections::HashSet<&str> = logs
            .net
            .iter()
            .filter(|e| !e.is_start())
            .map(|e| e.request_id.as_str())
            .collect();
        Ok(logs
            .net
            .iter()
            .filter(|e| e.is_start() && !ended.contains(e.request_id.as_str()))
            .cloned()
            .collect())
    }

    /// The console messages and uncaught exceptions so far.
    pub fn console(&self) -> Vec<ConsoleEntry> {
        self.logs.lock().console.clone()
    }
}

/// JavaScript's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

struct Key {
    key: String,
    code: String,
    vk: u32,
    text: Option<String>,
    shift: bool,
}

/// What `Input.dispatchKeyEvent` needs for a key of a US keyboard.
fn key_info(key: &str) -> Option<Key> {
    let named = |key: &str, vk: u32, text: Option<&str>| Key {
        key: key.into(),
        code: key.into(),
        vk,
        text: text.map(str::to_string),
        shift: false,
    };
    let k = match key {
        "Enter" => named("Enter", 13, Some("\r")),
        "Tab" => named("Tab", 9, None),
        "Escape" => named("Escape", 27, None),
        "Backspace" => named("Backspace", 8, None),
        "Delete" => named("Delete", 46, None),
        "Home" => named("Home", 36, None),
        "End" => named("End", 35, None),
        "ArrowLeft" => named("ArrowLeft", 37, None),
        "ArrowUp" => named("ArrowUp", 38, None),
        "ArrowRight" => named("ArrowRight", 39, None),
        "ArrowDown" => named("ArrowDown", 40, None),
        _ => {
            let mut chars = key.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            let (code, vk, shift) = char_code(c);
            Key {
                key: c.to_string(),
                code,
                vk,
                text: Some(c.to_string()),
                shift,
            }
        }
    };
    Some(k)
}

/// The `code`, Windows virtual key code and shift state of a character on
/// a US keyboard (`Unidentified`, 0 for others: their text still goes).
fn char_code(c: char) -> (String, u32, bool) {
    if c.is_ascii_lowercase() {
        return (
            format!("Key{}", c.to_ascii_uppercase()),
            c.to_ascii_uppercase() as u32,
            false,
        );
    }
    if c.is_ascii_uppercase() {
        return (format!("Key{c}"), c as u32, true);
    }
    if c.is_ascii_digit() {
        return (format!("Digit{c}"), c as u32, false);
    }
    let (code, vk, shift) = match c {
        ' ' => ("Space", 32, false),
        '-' => ("Minus", 189, false),
        '_' => ("Minus", 189, true),
        '=' => ("Equal", 187, false),
        '+' => ("Equal", 187, true),
        '/' => ("Slash", 191, false),
        '?' => ("Slash", 191, true),
        '.' => ("Period", 190, false),
        '>' => ("Period", 190, true),
        ',' => ("Comma", 188, false),
        '<' => ("Comma", 188, true),
        ';' => ("Semicolon", 186, false),
        ':' => ("Semicolon", 186, true),
        '\'' => ("Quote", 222, false),
        '"' => ("Quote", 222, true),
        '[' => ("BracketLeft", 219, false),
        '{' => ("BracketLeft", 219, true),
        ']' => ("BracketRight", 221, false),
        '}' => ("BracketRight", 221, true),
        '\\' => ("Backslash", 220, false),
        '|' => ("Backslash", 220, true),
        '`' => ("Backquote", 192, false),
        '~' => ("Backquote", 192, true),
        '!' => ("Digit1", 49, true),
        '@' => ("Digit2", 50, true),
        '#' => ("Digit3", 51, true),
        '$' => ("Digit4", 52, true),
        '%' => ("Digit5", 53, true),
        '^' => ("Digit6", 54, true),
        '&' => ("Digit7", 55, true),
        '*' => ("Digit8", 56, true),
        '(' => ("Digit9", 57, true),
        ')' => ("Digit0", 48, true),
        _ => ("Unidentified", 0, false),
    };
    (code.to_string(), vk, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_strings_are_quoted() {
        assert_eq!(js_string("a'b\"c\n"), r#""a'b\"c\n""#);
        assert_eq!(js_string("[data-testid=x]"), r#""[data-testid=x]""#);
    }

    #[test]
    fn truthiness() {
        assert!(!truthy(&json!(null)));
        assert!(!truthy(&json!(false)));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!("")));
        assert!(truthy(&json!(1)));
        assert!(truthy(&json!("x")));
        assert!(truthy(&json!([])));
        assert!(truthy(&json!({})));
    }

    #[test]
    fn keys() {
        let e = key_info("Enter").expect("Enter");
        assert_eq!((e.vk, e.text.as_deref()), (13, Some("\r")));
        let a = key_info("a").expect("a");
        assert_eq!((a.code.as_str(), a.vk, a.shift), ("KeyA", 65, false));
        let big = key_info("J").expect("J");
        assert_eq!((big.code.as_str(), big.vk, big.shift), ("KeyJ", 74, true));
        let slash = key_info("/").expect("/");
        assert_eq!((slash.code.as_str(), slash.vk), ("Slash", 191));
        assert_eq!(key_info("é").map(|k| k.vk), Some(0));
        assert!(key_info("NoSuchKey").is_none());
        assert!(key_info("").is_none());
    }

    fn ev(method: &str, params: Value) -> Event {
        Event {
            method: method.into(),
            params,
            session_id: Some("S".into()),
        }
    }

    #[test]
    fn the_network_log_records_starts_and_ends() {
        let mut logs = Logs::default();
        logs.record(&ev(
            "Network.requestWillBeSent",
            json!({"requestId": "1", "request": {"url": "https://h/api/v1/pods?watch=1", "method": "GET"}, "type": "Fetch"}),
        ));
        logs.record(&ev(
            "Network.webSocketCreated",
            json!({"requestId": "2", "url": "wss://h/exec"}),
        ));
        logs.record(&ev("Network.loadingFinished", json!({"requestId": "1"})));
        logs.record(&ev("Network.dataReceived", json!({"requestId": "1"})));
        logs.record(&ev(
            "Network.loadingFailed",
            json!({"requestId": "2", "errorText": "net::ERR_ABORTED", "canceled": true}),
        ));
        logs.record(&ev(
            "Runtime.consoleAPICalled",
            json!({"type": "error", "args": [{"type": "string", "value": "boom"}, {"type": "number", "value": 3}]}),
        ));
        logs.record(&ev(
            "Runtime.exceptionThrown",
            json!({"exceptionDetails": {"text": "Uncaught", "exception": {"description": "TypeError: x"}}}),
        ));
        assert_eq!(logs.net.len(), 4);
        assert_eq!(logs.net[3].error, "net::ERR_ABORTED (canceled)");
        assert_eq!(logs.net[3].url, "wss://h/exec");
        assert_eq!(logs.net[0].kind, NetKind::Request);
        assert_eq!(logs.net[0].method, "GET");
        assert_eq!(logs.net[0].resource_type, "Fetch");
        assert_eq!(logs.net[1].kind, NetKind::WebSocket);
        assert_eq!(logs.net[2].kind, NetKind::Finished);
        assert_eq!(logs.net[2].url, "https://h/api/v1/pods?watch=1");
        assert!(!logs.net[2].is_start());
        assert_eq!(logs.console.len(), 2);
        assert_eq!(logs.console[0].text, "boom 3");
        assert_eq!(logs.console[1].level, "exception");
        assert_eq!(logs.console[1].text, "TypeError: x");
    }
}
