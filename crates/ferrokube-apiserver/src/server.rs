//! The HTTPS server: TLS (client certificates optional), HTTP/1.1 and
//! HTTP/2, authentication, the in-flight limit, body limits, and the routes:
//! health and version, discovery, OpenAPI, and every resource through the
//! generic REST storage.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ferrokube_api::registry::{Registry, ResourceDef};
use ferrokube_api::status::ApiError;
use ferrokube_store::Store;
use futures::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::authn::{ClientCertAuthenticator, TokenAuthenticator, UserInfo};
use crate::cert_rotation::{Renewer, ServingCert};
use crate::discovery;
use crate::encoding::{self, ListMeta};
use crate::options::{ListOptions, Query};
use crate::pki::{self, Pki};
use crate::request_info::{self, RequestInfo};
use crate::rest::{cache_error, Filter, Rest};
use crate::table::{self, IncludeObject};
use crate::watchcache::{CacheWatcher, EventType, FieldsFn, WatchCache};

/// Request bodies larger than this get 413.
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// The Kubernetes version served (the minor matches the k8s-openapi types).
pub(crate) const KUBE_VERSION: (&str, &str) = ("1", "33");

pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// Any failure of a request body's source.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the handler reads it: hyper's, from a connection, or
/// any other (the in-process transport's, [`RunningServer::local`]).
pub(crate) type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// Boxes a body for the handler.
fn request_body<B>(body: B) -> RequestBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    body.map_err(|e| std::io::Error::other(e.into()))
        .boxed_unsync()
}

/// The controller manager's kubeconfig, under the data dir (a client
/// certificate for `system:kube-controller-manager`), for `ferrokube
/// controller-manager --kubeconfig`.
pub(crate) const CONTROLLER_MANAGER_KUBECONFIG: &str = "controller-manager.kubeconfig";

/// The user the join token authenticates (in `system:bootstrappers`).
pub(crate) const JOIN_TOKEN_USER: &str = "system:bootstrap:join-token";

/// How the API server is set up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where certificates, tokens and kubeconfigs are kept (created if
    /// missing; reused at the next start).
    pub data_dir: PathBuf,
    /// The address to listen on; the kubeconfigs name `127.0.0.1` when it
    /// is unspecified or loopback.
    pub bind_address: IpAddr,
    /// The HTTPS port (0: any free port, see [`RunningServer::addr`]).
    pub port: u16,
    /// Another path to write the admin kubeconfig to, besides
    /// `DATA_DIR/kubeconfig.yaml`.
    pub write_kubeconfig: Option<PathBuf>,
    /// This node's name: a name of the serving certificate.
    pub node_name: String,
    /// The service network, e.g. `10.43.0.0/16`.
    pub service_cidr: String,
    /// Kubernetes' `--max-requests-inflight`: with
    /// `max_mutating_in_flight`, the seats API priority and fairness
    /// shares among the priority levels (long-running requests aside).
    pub max_in_flight: usize,
    /// Kubernetes' `--max-mutating-requests-inflight` (default 200).
    pub max_mutating_in_flight: usize,
    /// The authorization modes, in order (`--authorization-mode`); the
    /// group `system:masters` is allowed before them.
    pub authorization_modes: Vec<crate::authz::Mode>,
    /// Kubernetes' `--admission-control-config-file`: an
    /// AdmissionConfiguration (the PodSecurity plugin's defaults and
    /// exemptions).
    pub admission_control_config_file: Option<PathBuf>,
    /// k3s' `--tls-san`: more host names and addresses the serving
    /// certificate is valid for (it is issued at every start, so a changed
    /// list is in effect after a restart).
    pub tls_san: Vec<String>,
    /// How long the certificates given to joining nodes last (Kubernetes'
    /// `--cluster-signing-duration`, a year by default; at most a year).
    pub node_cert_lifetime: Duration,
    /// Whether the dashboard is served under `/dashboard/` (with its
    /// sessions; `ferrokube server --disable dashboard` turns it off).
    pub dashboard: bool,
}

impl ServerConfig {
    /// A server for tests and benchmarks: on 127.0.0.1 at a free port,
    /// state in `data_dir`, the node name `test-node`, the service network
    /// `10.43.0.0/16`, Kubernetes' in-flight limits (400/200),
    /// `Node,RBAC` authorization, the dashboard on.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            bind_address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            write_kubeconfig: None,
            node_name: "test-node".into(),
            service_cidr: "10.43.0.0/16".into(),
            max_in_flight: 400,
            max_mutating_in_flight: 200,
            authorization_modes: vec![crate::authz::Mode::Node, crate::authz::Mode::Rbac],
            admission_control_config_file: None,
            tls_san: Vec::new(),
            node_cert_lifetime: NODE_CERT_LIFETIME,
            dashboard: true,
        }
    }
}

/// The default of [`ServerConfig::node_cert_lifetime`]: a year.
pub const NODE_CERT_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// A running API server.
pub struct RunningServer {
    /// The address it listens on (the port chosen when 0 was asked).
    pub addr: SocketAddr,
    /// The cluster's credentials it serves with.
    pub pki: Pki,
    /// The admin kubeconfig it wrote (`DATA_DIR/kubeconfig.yaml`).
    pub kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
    app: Arc<App>,
}

/// Requests to the API server from inside its own process, as `user`: the
/// same handling as over HTTPS (authentication aside, which `user` stands
/// for), without TCP, TLS or HTTP framing. For the components `ferrokube
/// server` runs beside the API server. Upgrades (exec, attach,
/// port-forward) need a connection and are not served.
#[derive(Clone)]
pub struct Local {
    app: Arc<App>,
    user: UserInfo,
}

impl Local {
    /// The same transport, acting as `user`.
    pub fn as_user(&self, user: UserInfo) -> Local {
        Local {
            app: self.app.clone(),
            user,
        }
    }

    /// Serves one request.
    pub async fn call<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError>,
    {
        handle(
            self.app.clone(),
            req.map(request_body),
            Some(self.user.clone()),
        )
        .await
    }
}

impl RunningServer {
    /// The in-process transport, acting as `user`.
    pub fn local(&self, user: UserInfo) -> Local {
        Local {
            app: self.app.clone(),
            user,
        }
    }

    /// The kinds served, which change while serving (custom resources).
    pub fn kinds(&self) -> &crate::served::Kinds {
        &self.app.rest.kinds
    }

    /// Starts the built-in resource metrics collector: every node's
    /// kubelet scraped every `resolution` with the API server's kubelet
    /// client certificate, served as `metrics.k8s.io/v1beta1` (with its
    /// local APIService) until `cancel`. Once; later calls give the first
    /// collector.
    pub async fn start_resource_metrics(
        &self,
        resolution: Duration,
        cancel: CancellationToken,
    ) -> anyhow::Result<Arc<ferrokube_metrics::Collector>> {
        if let Some(c) = self.app.resource_metrics.get() {
            return Ok(c.clone());
        }
        let collector = Arc::new(
            ferrokube_metrics::Collector::new(
                self.node_source(),
                &self.pki.kubelet_client_cert_pem,
                &self.pki.kubelet_client_key_pem,
                ferrokube_metrics::Options::with_resolution(resolution),
            )
            .context("the resource metrics collector")?,
        );
        let served = self.serve_resource_metrics(collector).await;
        tokio::spawn(served.clone().run(cancel));
        Ok(served)
    }

    /// Serves `metrics.k8s.io/v1beta1` from `collector`, which the caller
    /// runs (or feeds: tests and benchmarks). Once; a later call keeps the
    /// first collector, which it returns.
    pub async fn serve_resource_metrics(
        &self,
        collector: Arc<ferrokube_metrics::Collector>,
    ) -> Arc<ferrokube_metrics::Collector> {
        let served = self.app.resource_metrics.get_or_init(|| collector).clone();
        self.app
            .rest
            .kinds
            .set_own(vec![crate::resourcemetrics::discovery()])
            .await;
        served
    }

    /// A [`ferrokube_metrics::NodeSource`] of every Node in this server's
    /// watch cache (their kubelets' addresses as the server reaches them).
    pub fn node_source(&self) -> Arc<dyn ferrokube_metrics::NodeSource> {
        Arc::new(crate::resourcemetrics::CacheNodes {
            cache: self.app.rest.cache.clone(),
        })
    }

    /// Waits until the server has stopped (after its token is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

pub(crate) struct App {
    pub(crate) rest: Rest,
    /// Group versions served by extension servers behind APIServices.
    pub(crate) aggregator: crate::aggregator::Aggregator,
    data_dir: PathBuf,
    ca_pem: String,
    /// How long joining nodes' certificates last.
    node_cert_lifetime: Duration,
    tokens: TokenAuthenticator,
    sa_keys: Arc<crate::satoken::TokenKeys>,
    /// API priority and fairness: classifies and queues requests.
    apf: crate::apf::Apf,
    metrics: crate::metrics::Metrics,
    kubelet: crate::streaming::KubeletClient,
    /// Decides what each authenticated request may do (and answers the
    /// review APIs).
    authorizer: Arc<dyn crate::authz::Authorizer>,
    /// Service-account issuer discovery, once the server's address is known.
    issuer_discovery: std::sync::OnceLock<crate::oidc::IssuerDiscovery>,
    /// The built-in resource metrics collector, once started
    /// ([`RunningServer::start_resource_metrics`]): `metrics.k8s.io`.
    resource_metrics: std::sync::OnceLock<Arc<ferrokube_metrics::Collector>>,
    /// The dashboard: its pages, sessions and login codes.
    dashboard: crate::dashboard::Dashboard,
}

pub(crate) fn full(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(
            Full::new(body)
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap_or_else(|_| {
            Response::new(
                Full::new(Bytes::new())
                    .map_err(|never: Infallible| match never {})
                    .boxed(),
            )
        })
}

/// A JSON body as Kubernetes' encoder writes one: Go's escaping (a
/// `Status` with its members in `metav1.Status` order) and a trailing
/// newline.
pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut body = if ferrokube_api::status::is_status(v) {
        ferrokube_api::status::status_json(v)
    } else {
        ferrokube_api::gojson::to_vec(v)
    };
    body.push(b'\n');
    full(status, "application/json", Bytes::from(body))
}

/// JSON bytes already encoded (a cached object) as a response body, with
/// the trailing newline Kubernetes' encoder writes, sent as a second chunk
/// so the shared bytes are not copied.
fn encoded_response(status: StatusCode, json: Bytes) -> Response<Body> {
    let chunks = futures::stream::iter([
        Ok::<_, std::io::Error>(Frame::data(json)),
        Ok(Frame::data(Bytes::from_static(b"\n"))),
    ]);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(StreamBody::new(chunks)))
        .unwrap_or_else(|_| full(status, "application/json", Bytes::new()))
}

/// A value's JSON with Go's escaping (straight to bytes: `to_string` goes
/// through the formatter, which costs more on every response).
fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(ferrokube_api::gojson::to_vec(v))
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, &e.to_status());
    // As Kubernetes: a Retry-After header only when the Status asks the
    // client to wait (client-go then retries by itself).
    let retry_after = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64)
        .filter(|s| *s > 0);
    if let Some(s) = retry_after {
        if let Ok(v) = header::HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    full(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn version_info() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0+ferrokube", KUBE_VERSION.0, KUBE_VERSION.1),
        "gitCommit": "ferrokube",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
    })
}

/// The fields the watch cache indexes for a built-in resource: its
/// strategy's selectable fields.
pub fn fields_fn(def: &ResourceDef) -> FieldsFn {
    let strategy = crate::strategy::builtin(def);
    let def = def.clone();
    Arc::new(move |v: &Value| strategy.selectable_fields(&def, v))
}

/// The watch cache of every resource of `registry`: a resource served in two
/// groups (Events) is cached once, with the selectable fields of its stored
/// (first, core) form.
async fn start_watch_cache(
    registry: &Registry,
    store: Arc<dyn Store>,
    cancel: &CancellationToken,
) -> anyhow::Result<Arc<WatchCache>> {
    let resources = registry
        .all()
        .iter()
        .fold(Vec::<(String, FieldsFn)>::new(), |mut out, d| {
            if !out.iter().any(|(p, _)| p == d.storage_prefix) {
                out.push((d.storage_prefix.to_string(), fields_fn(d)));
            }
            out
        });
    WatchCache::start(
        store,
        "/registry/",
        resources,
        crate::watchcache::DEFAULT_HISTORY,
        cancel.child_token(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting the watch cache: {e}"))
}

/// The bearer tokens the server knows: the join token, the admin token and
/// service accounts' tokens (checked against the objects in `cache`).
fn token_authenticator(
    pki: &Pki,
    sa_keys: &Arc<crate::satoken::TokenKeys>,
    registry: &Registry,
    cache: &Arc<WatchCache>,
) -> TokenAuthenticator {
    let mut tokens = TokenAuthenticator::default();
    if let Some((_, secret)) = ferrokube_pki::jointoken::parse(&pki.join_token) {
        // Agents joining with the token: a bootstrapper, which may only
        // fetch its node's credentials (and make CertificateSigningRequests),
        // as a Kubernetes bootstrap token.
        let joiner = UserInfo::authenticated(JOIN_TOKEN_USER, ["system:bootstrappers"]);
        tokens.add(secret, joiner.clone());
        tokens.add(&pki.join_token, joiner);
    }
    tokens.add(
        &pki.admin_token,
        UserInfo::authenticated("system:admin", ["system:masters"]),
    );
    tokens.with_service_accounts(crate::satoken::ServiceAccountAuthenticator {
        keys: sa_keys.clone(),
        lookup: Arc::new(CacheLookup {
            registry: registry.clone(),
            cache: cache.clone(),
        }),
    });
    tokens
}

/// What a cluster has from its first start: the system namespaces, the
/// `kubernetes` Service, the system PriorityClasses, the mandatory
/// FlowSchemas and the bootstrap RBAC policy.
async fn ensure_cluster_objects(rest: &Rest, port: u16) -> anyhow::Result<()> {
    rest.ensure_namespaces(&["default", "kube-system", "kube-public", "kube-node-lease"])
        .await?;
    rest.ensure_kubernetes_service(port).await?;
    crate::admission::ensure_system_priority_classes(rest).await?;
    crate::apf::ensure_configuration_objects(rest).await?;
    crate::authz::bootstrap::reconcile(rest)
        .await
        .context("reconciling the bootstrap RBAC policy")
}

/// The URL the kubeconfigs name: `127.0.0.1` when listening on every
/// address or loopback, else the bound address.
fn server_url(bind_address: IpAddr, addr: SocketAddr) -> String {
    let host = if bind_address.is_unspecified() || bind_address.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        match bind_address {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    };
    format!("https://{host}:{}", addr.port())
}

/// Writes the admin kubeconfig (`DATA_DIR/kubeconfig.yaml`, and the extra
/// path when configured) and the controller manager's; returns the first.
fn write_kubeconfigs(
    pki: &Pki,
    config: &ServerConfig,
    server_url: &str,
) -> anyhow::Result<PathBuf> {
    let kubeconfig = config.data_dir.join("kubeconfig.yaml");
    pki.write_kubeconfig(&kubeconfig, server_url)?;
    pki.write_controller_manager_kubeconfig(
        &config.data_dir.join(CONTROLLER_MANAGER_KUBECONFIG),
        server_url,
    )?;
    if let Some(extra) = &config.write_kubeconfig {
        pki.write_kubeconfig(extra, server_url)
            .with_context(|| format!("writing {}", extra.display()))?;
    }
    Ok(kubeconfig)
}

/// What runs beside the request handlers: the OpenAPI documents built off
/// the request path (they are built on first use, and kubectl asks for them
/// first), the aggregator, the removal of deleted Nodes' passwords, the
/// CRD controller and the type checker of admission policies.
fn start_background(app: &Arc<App>, cancel: &CancellationToken) {
    let warm = app.clone();
    tokio::task::spawn_blocking(move || warm.rest.kinds.openapi());
    tokio::spawn(crate::aggregator::run(app.clone(), cancel.child_token()));
    crate::nodepassword::start_cleanup(app.clone(), |a| &a.rest, cancel.child_token());
    crate::crd::controller::start(app.clone(), |a| &a.rest, cancel.child_token());
    crate::policy::typecheck::start(app.clone(), |a| &a.rest, cancel.child_token());
}

/// The serving certificate's names: the host's, the `kubernetes`
/// Service's, and `--tls-san`'s.
fn serving_sans(config: &ServerConfig, cidr: &crate::allocator::ServiceCidr) -> Vec<String> {
    let mut sans = pki::serving_names(&config.node_name, Some(IpAddr::V4(cidr.first())));
    sans.extend(config.tls_san.iter().cloned());
    sans.sort();
    sans.dedup();
    sans
}

/// Starts the API server; returns once it listens.
pub async fn start(
    config: ServerConfig,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let cidr =
        crate::allocator::ServiceCidr::parse(&config.service_cidr).map_err(anyhow::Error::msg)?;
    let sans = serving_sans(&config, &cidr);
    let pki = Pki::ensure(&config.data_dir, sans.clone()).context("preparing certificates")?;

    let registry = Registry::default();
    let cache = start_watch_cache(&registry, store.clone(), &cancel).await?;
    let sa_keys = Arc::new(
        crate::satoken::TokenKeys::ensure(&config.data_dir)
            .context("preparing the service-account signing key")?,
    );
    let tokens = token_authenticator(&pki, &sa_keys, &registry, &cache);
    let pod_security = match &config.admission_control_config_file {
        Some(path) => crate::podsecurity::Config::load(path)?,
        None => crate::podsecurity::Config::default(),
    };
    let rbac = Arc::new(crate::authz::rbac::Rbac::new(&cache)?);
    let authorizer: Arc<dyn crate::authz::Authorizer> = Arc::new(crate::authz::modes::chain(
        &config.authorization_modes,
        &rbac,
    ));
    let apf = crate::apf::Apf::new(
        &registry,
        &cache,
        config.max_in_flight + config.max_mutating_in_flight,
    );
    let (tls, client_certs, serving) = tls_config(&pki)?;
    let app = Arc::new(App {
        dashboard: crate::dashboard::Dashboard::new(config.dashboard, client_certs.clone()),
        data_dir: config.data_dir.clone(),
        ca_pem: pki.ca_cert_pem.clone(),
        node_cert_lifetime: config.node_cert_lifetime,
        rest: Rest {
            kinds: crate::served::Kinds::new(registry, cache.clone()),
            allocator: crate::allocator::Allocator::new(store.clone(), cidr),
            store,
            cache,
            event_lease: Default::default(),
            event_ttl_seconds: crate::rest::EVENT_TTL_SECONDS,
            escalation: Some(crate::authz::escalation::Escalation {
                authorizer: authorizer.clone(),
                rbac,
            }),
            pod_security,
            webhooks: Default::default(),
            policies: Default::default(),
        },
        tokens,
        sa_keys,
        apf,
        metrics: Default::default(),
        kubelet: crate::streaming::KubeletClient::new(
            &pki.kubelet_client_cert_pem,
            &pki.kubelet_client_key_pem,
        )
        .context("the kubelet client certificate")?,
        authorizer,
        issuer_discovery: Default::default(),
        resource_metrics: Default::default(),
        aggregator: crate::aggregator::Aggregator::new(&pki),
    });
    ensure_cluster_objects(&app.rest, config.port).await?;
    start_background(&app, &cancel);

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind((config.bind_address, config.port))
        .await
        .with_context(|| format!("listening on {}:{}", config.bind_address, config.port))?;
    let addr = listener.local_addr()?;
    let server_url = server_url(config.bind_address, addr);
    let _ = app
        .issuer_discovery
        .set(crate::oidc::IssuerDiscovery::new(&app.sa_keys, &server_url));
    let kubeconfig = write_kubeconfigs(&pki, &config, &server_url)?;
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "API server listening");

    let renewer = Renewer {
        data_dir: config.data_dir.clone(),
        serving_sans: sans,
        kubeconfigs: std::iter::once(kubeconfig.clone())
            .chain(config.write_kubeconfig.clone())
            .collect(),
        server_url,
        serving,
    };
    tokio::spawn(renewer.run(pki.clone(), cancel.child_token()));

    let task = tokio::spawn(accept_loop(
        listener,
        acceptor,
        client_certs,
        app.clone(),
        cancel,
    ));
    Ok(RunningServer {
        addr,
        pki,
        kubeconfig,
        task,
        app,
    })
}

/// The SelfSubjectReview of `user`: who the server thinks the caller is.
fn self_subject_review(user: &UserInfo) -> Value {
    let info = crate::reviews::user_info(user);
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": info},
    })
}

/// The objects service-account tokens name, read from the watch cache.
struct CacheLookup {
    registry: Registry,
    cache: Arc<WatchCache>,
}

impl crate::satoken::ObjectLookup for CacheLookup {
    fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let def = self.registry.get("", "v1", resource)?;
        let obj = self
            .cache
            .resource(def.storage_prefix)?
            .get(&def.key(namespace, name))?;
        serde_json::from_slice(&obj.json).ok()
    }
}

fn tls_config(
    pki: &Pki,
) -> anyhow::Result<(
    rustls::ServerConfig,
    ClientCertAuthenticator,
    Arc<ServingCert>,
)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let client_certs = ClientCertAuthenticator::new(roots, provider.clone())?;
    let serving = Arc::new(ServingCert::new(pki, provider.clone())?);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(client_certs.tls_verifier())
        .with_cert_resolver(serving.clone());
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((cfg, client_certs, serving))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    client_certs: ClientCertAuthenticator,
    app: Arc<App>,
    cancel: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let client_certs = client_certs.clone();
        let app = app.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let chain = tls.get_ref().1.peer_certificates();
            let cert_user = chain.and_then(|chain| client_certs.authenticate(chain));
            let cert_not_after = chain
                .and_then(|c| c.first())
                .filter(|_| cert_user.is_some())
                .and_then(|leaf| crate::authn::not_after(leaf))
                .map(crate::authn::CertNotAfter);
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                let user = cert_user.clone();
                let mut req = req.map(request_body);
                if let Some(n) = cert_not_after {
                    req.extensions_mut().insert(n);
                }
                let gzip = crate::compression::wanted(&req);
                async move {
                    let resp = handle(app, req, user).await;
                    Ok::<_, Infallible>(if gzip {
                        crate::compression::compress(resp).await
                    } else {
                        resp
                    })
                }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn =
                builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

/// The health endpoints, open to everyone as in Kubernetes: `/healthz`,
/// `/livez` and `/readyz` run their checks (`ping`; `etcd`, the store
/// answering, except for `/livez`) and answer `ok`, or with `?verbose` one
/// `[+]name ok` line per check and `<endpoint> check passed`; `?exclude=name`
/// skips a check; `/readyz/etcd` runs one. A failed check makes it a 500
/// naming the check (`[-]etcd failed: reason withheld`). `None`: not a
/// health path.
async fn health(app: &App, path: &str, query: &Query) -> Option<Response<Body>> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or("");
    let only = parts.next();
    let checks: &[&str] = match endpoint {
        "healthz" | "readyz" => &["ping", "etcd"],
        "livez" => &["ping"],
        _ => return None,
    };
    let selected: Vec<&str> = match only {
        None | Some("") => {
            let excluded = query.all("exclude");
            checks
                .iter()
                .copied()
                .filter(|c| !excluded.iter().any(|e| e == c))
                .collect()
        }
        Some(one) => match checks.iter().find(|c| **c == one) {
            Some(c) => vec![*c],
            None => return Some(text(StatusCode::NOT_FOUND, "404 page not found")),
        },
    };
    let mut lines = String::new();
    let mut failed = false;
    for check in &selected {
        let ok = match *check {
            "etcd" => app.rest.store.current_revision().await.is_ok(),
            _ => true,
        };
        if ok {
            lines.push_str(&format!("[+]{check} ok\n"));
        } else {
            failed = true;
            lines.push_str(&format!("[-]{check} failed: reason withheld\n"));
        }
    }
    let body = if failed {
        tracing::warn!(endpoint, "health check failed");
        format!("{lines}{endpoint} check failed\n")
    } else if query.get("verbose").is_some() {
        format!("{lines}{endpoint} check passed\n")
    } else {
        "ok".to_string()
    };
    let status = if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    Some(full(status, "text/plain; charset=utf-8", Bytes::from(body)))
}

fn header_str(req: &Request<RequestBody>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn handle(
    app: Arc<App>,
    mut req: Request<RequestBody>,
    cert_user: Option<UserInfo>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    // Open to everyone.
    if path == "/version" {
        // As Kubernetes' WriteRawJSON: indented, in `version.Info` order,
        // no trailing newline.
        static VERSION_INFO: ferrokube_api::gojson::Order = ferrokube_api::gojson::Order(&[
            ("major", None),
            ("minor", None),
            ("gitVersion", None),
            ("gitCommit", None),
            ("gitTreeState", None),
            ("buildDate", None),
            ("goVersion", None),
            ("compiler", None),
            ("platform", None),
        ]);
        let body = ferrokube_api::gojson::to_vec_ordered_indented(&version_info(), &VERSION_INFO);
        return full(StatusCode::OK, "application/json", Bytes::from(body));
    }
    if path == "/cacerts" {
        // The cluster CA, for agents joining with a token that names its
        // hash (they check it before trusting anything else).
        return full(
            StatusCode::OK,
            "application/x-pem-file",
            Bytes::from(app.ca_pem.clone()),
        );
    }
    if let Some(r) = health(&app, &path, &Query::parse(req.uri().query())).await {
        return r;
    }
    if crate::dashboard::is_dashboard_path(&path) {
        return app.dashboard.serve(&app.tokens, req, cert_user).await;
    }
    let user = match authenticate(&app, &mut req, cert_user) {
        Ok(user) => user,
        Err(e) => {
            drain(req.into_body()).await;
            return error_response(&e);
        }
    };
    // Whatever authenticated it, the session cookie goes no further.
    crate::dashboard::strip_session(req.headers_mut());
    let user = match impersonate(&app, user, req.headers_mut()).await {
        Ok(user) => user,
        Err(refusal) => return impersonation_refused(&req, refusal),
    };
    let query = Query::parse(req.uri().query());
    let watch_flag = matches!(query.get("watch"), Some("true" | "1" | ""));
    let info = request_info::parse(req.method().as_str(), &path, watch_flag);
    // As Kubernetes: priority and fairness after impersonation, before
    // authorization; the seat is held until the response is made (a
    // watch's, until it has started).
    let ticket = match app.apf.admit(&user, &info, &path).await {
        Ok(ticket) => ticket,
        Err(refused) => return refused,
    };
    // For authorization and audit further in: `req.extensions().get::<UserInfo>()`.
    req.extensions_mut().insert(user);
    ticket.finish(admitted(&app, req, &info, &path, &query).await)
}

/// Reads (and drops) what a refused request still sends, a little of it
/// for a short while: an answer before the end of the request resets an
/// HTTP/2 stream, which some clients (curl) report as an error instead of
/// the answer.
pub(crate) async fn drain(body: RequestBody) {
    const DRAINED: usize = 256 * 1024;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        Limited::new(body, DRAINED).collect(),
    )
    .await;
}

/// Who a request comes from, as Kubernetes' authenticators are tried in
/// turn: the client certificate, the `Authorization` header's bearer token,
/// a WebSocket upgrade's bearer subprotocol; then, with none of these, the
/// dashboard's session cookie (its writes and upgrades checked against
/// CSRF: a 403). None: a 401.
fn authenticate(
    app: &App,
    req: &mut Request<RequestBody>,
    cert_user: Option<UserInfo>,
) -> Result<UserInfo, ApiError> {
    if let Some(user) = cert_user {
        return Ok(user);
    }
    if req.headers().contains_key(header::AUTHORIZATION) {
        return app
            .tokens
            .authenticate(header_str(req, header::AUTHORIZATION))
            .ok_or_else(ApiError::unauthorized);
    }
    match app.tokens.authenticate_websocket(req.headers_mut()) {
        Some(Ok(user)) => return Ok(user),
        Some(Err(why)) => {
            tracing::debug!(?why, "WebSocket bearer subprotocol refused");
            return Err(ApiError::unauthorized());
        }
        None => {}
    }
    app.dashboard
        .authenticate(&app.tokens, req)?
        .ok_or_else(ApiError::unauthorized)
}

/// Serves a request priority and fairness admitted.
async fn admitted(
    app: &Arc<App>,
    req: Request<RequestBody>,
    info: &RequestInfo,
    path: &str,
    query: &Query,
) -> Response<Body> {
    if let Err(e) = authorize(app, request_attributes(&req, info, path, query)).await {
        return error_response(&e);
    }
    if path == "/metrics" {
        let mut text = app.metrics.render(app.rest.cache.revision());
        text.push_str(&app.apf.metrics());
        return full(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            Bytes::from(text),
        );
    }
    if let Some(table) = app.apf.debug_dump(path) {
        return full(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from(table),
        );
    }
    if path == crate::authz::bootstrap::NODE_CREDENTIALS_PATH {
        return match node_credentials(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
    }
    let started = std::time::Instant::now();
    if info.is_resource_request && info.group == crate::resourcemetrics::GROUP {
        if let Some(collector) = app.resource_metrics.get() {
            let accept = header_str(&req, header::ACCEPT).to_string();
            return crate::resourcemetrics::serve(
                &app.rest,
                collector,
                req.method(),
                &accept,
                info,
                query,
            )
            .await
            .unwrap_or_else(|e| error_response(&e));
        }
    }
    if let Some(remote) = app.aggregator.remote_for_path(path) {
        return crate::aggregator::serve(&app.rest, &remote, req)
            .await
            .unwrap_or_else(|e| error_response(&e));
    }
    let result = if info.is_resource_request {
        resource_request(app, req, info, query).await
    } else {
        non_resource(app, &req, path)
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if info.is_resource_request {
        app.metrics.observe(
            &info.verb,
            &info.resource,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    response
}

/// What the request asks, as authorization sees it, by its user (as
/// authenticated, or impersonated). As Kubernetes, a list or watch whose
/// field selector requires one `metadata.name` names that object (so a
/// rule with resourceNames allows watching it).
fn request_attributes(
    req: &Request<RequestBody>,
    info: &RequestInfo,
    path: &str,
    query: &Query,
) -> Result<crate::authz::Attributes, ApiError> {
    let user = req
        .extensions()
        .get::<UserInfo>()
        .ok_or_else(ApiError::unauthorized)?;
    let mut a = crate::authz::Attributes::of_request(user, info, path);
    if a.resource_request && a.name.is_empty() && matches!(a.verb.as_str(), "list" | "watch") {
        if let Some(name) = query
            .get("fieldSelector")
            .and_then(crate::authz::exact_name)
        {
            a.name = name;
        }
    }
    Ok(a)
}

/// Whether the request `a` may be done: Kubernetes' 403 when not.
async fn authorize(
    app: &App,
    a: Result<crate::authz::Attributes, ApiError>,
) -> Result<(), ApiError> {
    let a = a?;
    use crate::authz::Decision;
    match app.authorizer.authorize(&a) {
        Decision::Allow(_) => return Ok(()),
        Decision::NoOpinion(_) => {}
    }
    // Roles and bindings are read from the watch cache, which follows the
    // store: one written a moment ago may not be in it yet. Before
    // refusing, the cache catches up with the store and the request is
    // asked about again.
    let _ = app.rest.cache.sync(Duration::from_secs(2)).await;
    match app.authorizer.authorize(&a) {
        Decision::Allow(_) => Ok(()),
        Decision::NoOpinion(reason) => {
            let refusal = crate::authz::forbidden(&a, &reason);
            // As Kubernetes' RBAC logs its refusals: what a missing rule
            // looks like to an operator.
            tracing::info!(user = %a.user.name, groups = ?a.user.groups, "{}", refusal.message);
            Err(refusal)
        }
    }
}

/// The user the request acts as (see [`crate::impersonation`]). As for
/// any request, a refusal is asked again once the watch cache has caught up
/// with the store (a binding written a moment ago).
async fn impersonate(
    app: &App,
    user: UserInfo,
    headers: &mut http::HeaderMap,
) -> Result<UserInfo, crate::impersonation::Refusal> {
    use crate::impersonation::{act_as, Refusal};
    match act_as(app.authorizer.as_ref(), user.clone(), headers) {
        Err(Refusal::Forbidden(_)) => {
            let _ = app.rest.cache.sync(Duration::from_secs(2)).await;
            act_as(app.authorizer.as_ref(), user, headers)
        }
        decided => decided,
    }
}

/// A refused impersonation, as Kubernetes answers it: a 403 `Status`, or
/// for a malformed request its plain-text 500.
fn impersonation_refused(
    req: &Request<RequestBody>,
    refusal: crate::impersonation::Refusal,
) -> Response<Body> {
    match refusal {
        crate::impersonation::Refusal::Forbidden(e) => error_response(&e),
        crate::impersonation::Refusal::Internal(why) => {
            let uri = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
            full(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from(format!("Internal Server Error: {uri:?}: {why}\n")),
            )
        }
    }
}

/// A joining node's credentials: client certificates for
/// `system:node:<nodeName>` (in `system:nodes`), `system:kube-proxy` and
/// `system:k3s-controller` (its network policy controller), signed by the
/// cluster CA, for the node named in the
/// JSON body (`{"nodeName": ..., "nodePassword": ...}`; see
/// [`crate::nodepassword`]). Authorization lets only the join
/// token's holders (`system:bootstrappers`) and the admins ask.
async fn node_credentials(
    app: &App,
    req: Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let body = read_body(req.into_body()).await?;
    let asked: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let node = asked["nodeName"].as_str().unwrap_or_default();
    let problems = ferrokube_api::validation::is_dns1123_subdomain(node);
    if !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "nodeName {node:?}: {}",
            problems.join(", ")
        )));
    }
    // The node password (k3s' `<program>-Node-Password` header): a name
    // already taken with another password is refused.
    let password = asked["nodePassword"].as_str().unwrap_or_default();
    if password.is_empty() || password.len() > 256 {
        return Err(ApiError::bad_request(
            "nodePassword: the node's password (1 to 256 characters) is required",
        ));
    }
    crate::nodepassword::ensure(&app.rest, node, password).await?;
    let issue = |cn: &str, orgs: &[&str]| {
        let lifetime =
            time::Duration::try_from(app.node_cert_lifetime).unwrap_or(time::Duration::days(365));
        pki::issue_client_certificate_for(&app.data_dir, cn, orgs, lifetime)
            .map(|(certificate, key)| json!({"certificate": certificate, "key": key}))
            .map_err(|e| ApiError::internal(format!("issuing a certificate for {cn}: {e:#}")))
    };
    let answer = json!({
        "kubelet": issue(&format!("system:node:{node}"), &["system:nodes"])?,
        "proxy": issue("system:kube-proxy", &[])?,
        "controller": issue(crate::authz::bootstrap::K3S_CONTROLLER, &[])?,
    });
    tracing::info!(node, "issued a joining node's credentials");
    Ok(json_response(StatusCode::OK, &answer))
}

fn non_resource(
    app: &App,
    req: &Request<RequestBody>,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let accept = header_str(req, header::ACCEPT);
    let d = app.rest.kinds.discovery();
    let aggregated = discovery::wants_aggregated(accept);
    let doc = match path.trim_end_matches('/') {
        "/api" if aggregated => {
            return Ok(full(
                StatusCode::OK,
                discovery::AGGREGATED_CONTENT_TYPE,
                Bytes::from(d.aggregated_core.to_string()),
            ))
        }
        "/apis" if aggregated => {
            return Ok(full(
                StatusCode::OK,
                discovery::AGGREGATED_CONTENT_TYPE,
                Bytes::from(d.aggregated_groups.to_string()),
            ))
        }
        crate::oidc::CONFIG_PATH | crate::oidc::JWKS_PATH => {
            let docs = app
                .issuer_discovery
                .get()
                .ok_or_else(ApiError::no_such_path)?;
            let (content_type, body) = if path.trim_end_matches('/') == crate::oidc::CONFIG_PATH {
                ("application/json", docs.config.clone())
            } else {
                (crate::oidc::JWKS_CONTENT_TYPE, docs.jwks.clone())
            };
            let mut r = full(StatusCode::OK, content_type, body);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static(crate::oidc::CACHE_CONTROL),
            );
            return Ok(r);
        }
        "/api" => d.api_versions.clone(),
        "/apis" => d.api_group_list.clone(),
        "/api/v1" => d
            .resources("v1")
            .cloned()
            .ok_or_else(ApiError::no_such_path)?,
        "/openapi/v3" => {
            let openapi = app.rest.kinds.openapi();
            let doc = openapi.v3_root_document();
            return Ok(full(
                StatusCode::OK,
                "application/json",
                Bytes::from(doc.json.clone()),
            ));
        }
        "/openapi/v2" => {
            if accept.contains("protobuf") {
                let openapi = app.rest.kinds.openapi();
                let (bytes, _) = openapi.v2_protobuf();
                return Ok(full(
                    StatusCode::OK,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    Bytes::copy_from_slice(bytes),
                ));
            }
            let openapi = app.rest.kinds.openapi();
            let doc = openapi.v2();
            return Ok(full(
                StatusCode::OK,
                "application/json",
                Bytes::from(doc.json.clone()),
            ));
        }
        p if p.starts_with("/openapi/v3/") => {
            let openapi = app.rest.kinds.openapi();
            let (bytes, _) = openapi
                .v3_group_version(&p["/openapi/v3/".len()..])
                .ok_or_else(ApiError::no_such_path)?;
            return Ok(full(
                StatusCode::OK,
                "application/json",
                Bytes::copy_from_slice(bytes),
            ));
        }
        p if p.starts_with("/apis/") => {
            let rest = &p["/apis/".len()..];
            match rest.split_once('/') {
                None => d.group(rest).cloned().ok_or_else(ApiError::no_such_path)?,
                Some(_) => d
                    .resources(rest)
                    .cloned()
                    .ok_or_else(ApiError::no_such_path)?,
            }
        }
        _ => return Err(ApiError::no_such_path()),
    };
    Ok(json_response(StatusCode::OK, &doc))
}

pub(crate) async fn read_body(body: RequestBody) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(MAX_BODY))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// Adds the request's warnings as `Warning: 299 - "..."` headers.
fn with_warnings(mut resp: Response<Body>, opts: &crate::options::WriteOptions) -> Response<Body> {
    for w in opts.warnings.lock().iter() {
        let text = format!("299 - {}", Value::String(w.clone()));
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// One object as the client asked for it (a Table, or the object).
/// `encoded` is the object's JSON when the caller already has it.
fn object_response(
    rest: &Rest,
    status: StatusCode,
    def: &ResourceDef,
    obj: &Value,
    encoded: Option<Bytes>,
    accept: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    // A Status (a delete's answer) is sent as it is, whatever the Accept.
    if table::wants_table(accept) && !ferrokube_api::status::is_status(obj) {
        let include = IncludeObject::parse(query.get("includeObject"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Ok(json_response(
            status,
            &table::table(
                rest.strategy(def).as_ref(),
                def,
                std::slice::from_ref(obj),
                rv,
                include,
                None,
                true,
            ),
        ));
    }
    Ok(match encoded {
        Some(json) => encoded_response(status, json),
        None => json_response(status, obj),
    })
}

/// The resource of a request, if its path names one served here in the
/// right scope, and the subresource exists.
fn resource_of(app: &App, info: &RequestInfo) -> Result<ResourceDef, ApiError> {
    let def = app
        .rest
        .kinds
        .get(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::no_such_path)?;
    if !info.subresource.is_empty() && def.subresource(&info.subresource).is_none() {
        return Err(ApiError::no_such_path());
    }
    if def.namespaced
        && info.namespace.is_empty()
        && !matches!(info.verb.as_str(), "list" | "watch")
    {
        return Err(ApiError::no_such_path());
    }
    if !def.namespaced && !info.namespace.is_empty() {
        return Err(ApiError::no_such_path());
    }
    Ok(def)
}

/// Requests served by a handler of their own rather than the generic verbs.
enum Special {
    /// `pods/binding`.
    Binding,
    /// `pods/eviction`.
    Eviction,
    /// `selfsubjectreviews` (authentication.k8s.io).
    SelfSubjectReview,
    /// The access and token reviews.
    Review(crate::reviews::Review),
    /// `serviceaccounts/token`.
    Token,
    /// `pods/log`, `exec`, `attach` and `portforward`.
    Streaming,
    /// The `proxy` subresources of pods, services and nodes.
    Proxy,
    /// The `scale` subresources.
    Scale,
}

/// Which special handler serves a request for `def`, if any.
fn special_of(def: &ResourceDef, sub: &str) -> Option<Special> {
    if def.group == "authentication.k8s.io" && def.plural == "selfsubjectreviews" {
        return Some(Special::SelfSubjectReview);
    }
    if let Some(review) = crate::reviews::Review::of(def.group, def.plural) {
        return Some(Special::Review(review));
    }
    let core = def.group.is_empty();
    Some(match sub {
        "binding" if def.plural == "pods" && core => Special::Binding,
        "eviction" if def.plural == "pods" && core => Special::Eviction,
        "token" if def.plural == "serviceaccounts" && core => Special::Token,
        "log" | "exec" | "attach" | "portforward" if def.plural == "pods" && core => {
            Special::Streaming
        }
        "proxy" if core && matches!(def.plural, "pods" | "services" | "nodes") => Special::Proxy,
        "scale" => Special::Scale,
        _ => return None,
    })
}

/// Refuses any verb but create (POST) on a resource that only creates.
fn only_post(info: &RequestInfo, what: &str) -> Result<(), ApiError> {
    if info.verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "only POST is allowed on {what}"
        )));
    }
    Ok(())
}

/// A JSON body decoded, or Kubernetes' 400 saying it is not JSON.
fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

async fn special_request(
    app: &Arc<App>,
    special: Special,
    def: &ResourceDef,
    req: Request<RequestBody>,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    match special {
        Special::Binding => {
            only_post(info, "pods/binding")?;
            let user_agent = header_str(&req, header::USER_AGENT).to_string();
            let opts = write_options(query, &user_agent)?;
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let binding = decode_json(&body)?;
            app.rest.bind_pod(def, ns, name, &binding, &opts).await?;
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(json_response(StatusCode::CREATED, &status))
        }
        Special::Eviction => {
            only_post(info, "pods/eviction")?;
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let status = crate::eviction::evict(&app.rest, def, ns, name, &body, query).await?;
            let code = status
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::CREATED);
            Ok(json_response(code, &status))
        }
        Special::SelfSubjectReview => {
            only_post(info, "selfsubjectreviews")?;
            let user = req.extensions().get::<UserInfo>().cloned();
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            if !body.is_empty() {
                decode_json(&body)?;
            }
            let user = user.ok_or_else(ApiError::unauthorized)?;
            Ok(json_response(
                StatusCode::CREATED,
                &self_subject_review(&user),
            ))
        }
        Special::Review(review) => review_request(app, review, def, req, info).await,
        Special::Token => {
            only_post(info, "serviceaccounts/token")?;
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let request = decode_json(&body)?;
            let issued =
                crate::satoken::token_request(&app.rest, &app.sa_keys, ns, name, &request).await?;
            Ok(json_response(StatusCode::CREATED, &issued))
        }
        Special::Streaming => {
            crate::streaming::serve(&app.rest, &app.kubelet, info, req, query).await
        }
        Special::Proxy => crate::proxy::serve(&app.rest, &app.kubelet, info, req).await,
        Special::Scale => {
            let accept = header_str(&req, header::ACCEPT).to_string();
            scale_request(app, def, info, req, query, &accept, &content_type).await
        }
    }
}

/// A SubjectAccessReview, its local and self variants, a
/// SelfSubjectRulesReview or a TokenReview.
async fn review_request(
    app: &Arc<App>,
    review: crate::reviews::Review,
    def: &ResourceDef,
    req: Request<RequestBody>,
    info: &RequestInfo,
) -> Result<Response<Body>, ApiError> {
    only_post(info, def.plural)?;
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let user = req.extensions().get::<UserInfo>().cloned();
    let body = json_body(&content_type, read_body(req.into_body()).await?)?;
    let user = user.ok_or_else(ApiError::unauthorized)?;
    if review != crate::reviews::Review::Token {
        // Roles and bindings come from the watch cache: let it hold
        // what the store holds, so an answer reflects every binding
        // written before the question.
        let _ = app.rest.cache.sync(Duration::from_secs(2)).await;
    }
    let with = crate::reviews::Reviewers {
        authorizer: app.authorizer.as_ref(),
        tokens: &app.tokens,
    };
    let answer = crate::reviews::create(review, &with, &user, &info.namespace, &body)?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// Refuses the subresources the generic verbs do not serve, and the verbs
/// `namespaces/finalize` and `pods/ephemeralcontainers` do not allow.
fn check_generic_subresource(def: &ResourceDef, info: &RequestInfo) -> Result<(), ApiError> {
    let sub = info.subresource.as_str();
    let finalize = sub == "finalize" && def.group.is_empty() && def.plural == "namespaces";
    if finalize && !matches!(info.verb.as_str(), "update" | "patch") {
        return Err(ApiError::method_not_allowed(format!(
            "the finalize subresource of namespaces does not allow {}",
            info.verb
        )));
    }
    let ephemeral = sub == "ephemeralcontainers" && def.group.is_empty() && def.plural == "pods";
    if ephemeral && !matches!(info.verb.as_str(), "get" | "update" | "patch") {
        return Err(ApiError::method_not_allowed(format!(
            "the ephemeralcontainers subresource of pods does not allow {}",
            info.verb
        )));
    }
    if !finalize && !ephemeral && !matches!(sub, "" | "status" | "approval") {
        return Err(ApiError::method_not_allowed(format!(
            "the {sub} subresource of {} is not served yet",
            def.plural
        )));
    }
    Ok(())
}

async fn resource_request(
    app: &Arc<App>,
    req: Request<RequestBody>,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let def = resource_of(app, info)?;
    if let Some(special) = special_of(&def, &info.subresource) {
        return special_request(app, special, &def, req, info, query).await;
    }
    check_generic_subresource(&def, info)?;
    if crate::events::is_events_view(&def) {
        return events_view_request(app, &def, req, info, query).await;
    }
    generic_request(app, &def, req, info, query).await
}

/// The generic verbs on a resource or its `status`, `approval`, `finalize`
/// or `ephemeralcontainers` subresource.
async fn generic_request(
    app: &Arc<App>,
    def: &ResourceDef,
    req: Request<RequestBody>,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let accept = header_str(&req, header::ACCEPT).to_string();
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let user_agent = header_str(&req, header::USER_AGENT).to_string();
    let (ns, name, sub) = (
        info.namespace.as_str(),
        info.name.as_str(),
        info.subresource.as_str(),
    );
    let rest = &app.rest;
    match info.verb.as_str() {
        "get" => {
            let obj = rest.get(def, ns, name).await?;
            object_response(rest, StatusCode::OK, def, &obj, None, &accept, query)
        }
        "list" => {
            let opts = query.list_options()?;
            let filter = rest.filter(def, &opts, "")?;
            let res = rest.list(def, ns, &opts, &filter).await?;
            list_response(rest, def, res, &accept, query)
        }
        "watch" => {
            let opts = query.list_options()?;
            let filter = rest.filter(def, &opts, name)?;
            watch_response(app, def, ns, opts, filter, &accept, query).await
        }
        "create" => {
            if !name.is_empty() {
                return Err(ApiError::method_not_allowed(
                    "POST is not allowed on a named object",
                ));
            }
            if let Some(refused) = rest.strategy(def).create_refused(def) {
                return Err(refused);
            }
            let mut opts = write_options(query, &user_agent)?;
            opts.user = req.extensions().get::<UserInfo>().cloned();
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let obj = rest.new_object_from_body(def, ns, &body)?;
            let (created, json) = rest.create_encoded(def, ns, obj, &opts).await?;
            Ok(with_warnings(
                object_response(
                    rest,
                    StatusCode::CREATED,
                    def,
                    &created,
                    json,
                    &accept,
                    query,
                )?,
                &opts,
            ))
        }
        "update" => {
            let mut opts = write_options(query, &user_agent)?;
            opts.user = req.extensions().get::<UserInfo>().cloned();
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let obj = rest.object_from_body(def, ns, &body)?;
            let updated = rest.update(def, ns, name, obj, sub, &opts).await?;
            Ok(with_warnings(
                object_response(rest, StatusCode::OK, def, &updated, None, &accept, query)?,
                &opts,
            ))
        }
        "patch" => {
            let mut opts = write_options(query, &user_agent)?;
            opts.user = req.extensions().get::<UserInfo>().cloned();
            let body = read_body(req.into_body()).await?;
            let patched = rest
                .patch(def, ns, name, &content_type, &body, sub, &opts)
                .await?;
            Ok(with_warnings(
                object_response(rest, StatusCode::OK, def, &patched, None, &accept, query)?,
                &opts,
            ))
        }
        "delete" => {
            let opts = query.delete_options()?;
            let user = req.extensions().get::<UserInfo>().cloned();
            let body = delete_body(&content_type, read_body(req.into_body()).await?)?;
            let mut opts = Rest::delete_options(opts, &body)?;
            opts.user = user;
            crate::admission::refuse_system_priority_class_delete(def, name)?;
            let answer = rest
                .delete_outcome(def, ns, name, &opts)
                .await?
                .answer(def, rest.strategy(def).returns_deleted_object(def));
            object_response(rest, StatusCode::OK, def, &answer, None, &accept, query)
        }
        "deletecollection" => delete_collection_request(app, def, req, info, query).await,
        other => Err(ApiError::method_not_allowed(format!(
            "{other} is not supported"
        ))),
    }
}

/// DELETE of a collection: the objects deleted, as a list.
async fn delete_collection_request(
    app: &Arc<App>,
    def: &ResourceDef,
    req: Request<RequestBody>,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let list_opts = query.list_options()?;
    let opts = query.delete_options()?;
    let user = req.extensions().get::<UserInfo>().cloned();
    let body = delete_body(&content_type, read_body(req.into_body()).await?)?;
    let mut opts = Rest::delete_options(opts, &body)?;
    opts.user = user;
    let filter = app.rest.filter(def, &list_opts, "")?;
    let deleted = app
        .rest
        .delete_collection(def, &info.namespace, &list_opts, &filter, &opts)
        .await?;
    let items: Vec<Bytes> = deleted.iter().map(json_bytes).collect();
    let body = encoding::list_body(
        &def.list_kind(),
        &def.api_version(),
        &ListMeta::default(),
        items.iter().map(|b| b.as_ref()),
    );
    Ok(full(StatusCode::OK, "application/json", body))
}

/// `events.k8s.io/v1` Events: the core Events (one stored resource, as in
/// Kubernetes) read and written through [`crate::events`]' conversion.
async fn events_view_request(
    app: &Arc<App>,
    def: &ResourceDef,
    req: Request<RequestBody>,
    info: &RequestInfo,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    use crate::events::{body_to_core, to_events_v1};
    let rest = &app.rest;
    let core = rest
        .kinds
        .get("", "v1", "events")
        .ok_or_else(ApiError::no_such_path)?;
    let accept = header_str(&req, header::ACCEPT).to_string();
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let user_agent = header_str(&req, header::USER_AGENT).to_string();
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    // Tables have the core Event's columns, as Kubernetes prints both.
    let as_table = table::wants_table(&accept);
    let respond = |status: StatusCode, obj: &Value| {
        if as_table {
            object_response(rest, status, &core, obj, None, &accept, query)
        } else {
            object_response(rest, status, def, &to_events_v1(obj), None, &accept, query)
        }
    };
    match info.verb.as_str() {
        "get" => respond(StatusCode::OK, &rest.get(&core, ns, name).await?),
        "list" => events_v1_list(rest, def, &core, ns, &accept, query).await,
        "watch" => {
            let opts = query.list_options()?;
            let filter = rest.filter(def, &opts, name)?;
            watch_response(app, def, ns, opts, filter, &accept, query).await
        }
        "create" => {
            if !name.is_empty() {
                return Err(ApiError::method_not_allowed(
                    "POST is not allowed on a named object",
                ));
            }
            if let Some(refused) = rest.strategy(def).create_refused(def) {
                return Err(refused);
            }
            let opts = write_options(query, &user_agent)?;
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let mut obj = rest.new_object_from_body(&core, ns, &body_to_core(&body)?)?;
            validate_events_v1_create(&mut obj.value, ns)?;
            let (created, _) = rest.create_encoded(&core, ns, obj, &opts).await?;
            Ok(with_warnings(
                respond(StatusCode::CREATED, &created)?,
                &opts,
            ))
        }
        "update" => {
            let opts = write_options(query, &user_agent)?;
            let body = json_body(&content_type, read_body(req.into_body()).await?)?;
            let obj = rest.object_from_body(&core, ns, &body_to_core(&body)?)?;
            let updated = rest.update(&core, ns, name, obj, "", &opts).await?;
            Ok(with_warnings(respond(StatusCode::OK, &updated)?, &opts))
        }
        "patch" => {
            let opts = write_options(query, &user_agent)?;
            let body = read_body(req.into_body()).await?;
            let media = content_type.split(';').next().unwrap_or_default().trim();
            if media == "application/apply-patch+yaml" {
                // The applied configuration, in core form.
                let patched = rest
                    .patch(
                        &core,
                        ns,
                        name,
                        &content_type,
                        &body_to_core(&body)?,
                        "",
                        &opts,
                    )
                    .await?;
                return Ok(with_warnings(respond(StatusCode::OK, &patched)?, &opts));
            }
            let patch = decode_json(&body)?;
            let updated = patch_as_events_v1(rest, def, &core, info, media, &patch, &opts).await?;
            Ok(with_warnings(respond(StatusCode::OK, &updated)?, &opts))
        }
        "delete" => {
            let opts = query.delete_options()?;
            let body = delete_body(&content_type, read_body(req.into_body()).await?)?;
            let opts = Rest::delete_options(opts, &body)?;
            let deleted = rest.delete_outcome(&core, ns, name, &opts).await?;
            if deleted.removed && !rest.strategy(&core).returns_deleted_object(&core) {
                // The success Status names the resource as requested.
                let answer = deleted.answer(def, false);
                return object_response(rest, StatusCode::OK, def, &answer, None, &accept, query);
            }
            respond(StatusCode::OK, &deleted.object)
        }
        "deletecollection" => {
            let body = delete_body(&content_type, read_body(req.into_body()).await?)?;
            events_v1_delete_collection(rest, def, &core, ns, &body, query).await
        }
        other => Err(ApiError::method_not_allowed(format!(
            "{other} is not supported"
        ))),
    }
}

/// A list of `events.k8s.io` Events: the core Events listed, in this group's
/// form (a Table has the core Event's columns).
async fn events_v1_list(
    rest: &Rest,
    def: &ResourceDef,
    core: &ResourceDef,
    ns: &str,
    accept: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let opts = query.list_options()?;
    // Field names are mapped to the core ones the cache holds.
    let filter = rest.filter(def, &opts, "")?;
    let mut res = rest.list(core, ns, &opts, &filter).await?;
    if table::wants_table(accept) {
        return list_response(rest, core, res, accept, query);
    }
    res.items = res
        .items
        .iter()
        .map(|b| crate::events::bytes_to_events_v1(b))
        .collect::<Result<_, _>>()?;
    list_response(rest, def, res, accept, query)
}

/// DELETE of a collection of `events.k8s.io` Events: the core Events
/// deleted, listed in this group's form.
async fn events_v1_delete_collection(
    rest: &Rest,
    def: &ResourceDef,
    core: &ResourceDef,
    ns: &str,
    body: &[u8],
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let list_opts = query.list_options()?;
    let opts = query.delete_options()?;
    let opts = Rest::delete_options(opts, body)?;
    let filter = rest.filter(def, &list_opts, "")?;
    let deleted = rest
        .delete_collection(core, ns, &list_opts, &filter, &opts)
        .await?;
    let items: Vec<Bytes> = deleted
        .iter()
        .map(|d| json_bytes(&crate::events::to_events_v1(d)))
        .collect();
    let body = encoding::list_body(
        &def.list_kind(),
        &def.api_version(),
        &ListMeta::default(),
        items.iter().map(|b| b.as_ref()),
    );
    Ok(full(StatusCode::OK, "application/json", body))
}

/// The stricter rules for Events made through events.k8s.io, on the core
/// form `obj` to be created in `ns`; the error names the core kind, as
/// Kubernetes' does.
fn validate_events_v1_create(obj: &mut Value, ns: &str) -> Result<(), ApiError> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), json!(ns));
    }
    let errors = crate::events::validate_create(obj);
    if !errors.is_empty() {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str);
        return Err(ApiError::invalid("", "Event", name.unwrap_or(""), &errors));
    }
    Ok(())
}

/// A JSON, merge or strategic merge patch of an `events.k8s.io` Event: the
/// patch applies to the object as this group shows it; the result is
/// written back in core form (compare-and-swap on the version read, retried
/// on conflicts unless the patch pins a resourceVersion). Returns the core
/// Event written.
async fn patch_as_events_v1(
    rest: &Rest,
    def: &ResourceDef,
    core: &ResourceDef,
    info: &RequestInfo,
    media: &str,
    patch: &Value,
    opts: &crate::options::WriteOptions,
) -> Result<Value, ApiError> {
    use crate::events::{to_core, to_events_v1};
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    let pinned = patch.pointer("/metadata/resourceVersion").is_some();
    for _ in 0..8 {
        let (old, kv) = rest.get_kv(core, ns, name).await?;
        let seen = to_events_v1(&old);
        let patched = match media {
            "application/json-patch+json" => ferrokube_api::patch::json_patch(&seen, patch),
            "application/merge-patch+json" => Ok(ferrokube_api::patch::merge_patch(&seen, patch)),
            "application/strategic-merge-patch+json" => {
                ferrokube_api::patch::strategic_merge_patch(&seen, patch)
            }
            other => {
                return Err(ApiError::unsupported_media_type(
                    other,
                    &[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/strategic-merge-patch+json",
                        "application/apply-patch+yaml",
                    ],
                ))
            }
        }
        .map_err(|e| crate::rest::patch_error(def, name, e))?;
        let mut new = to_core(&patched);
        if !pinned {
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
            }
        }
        match rest.update(core, ns, name, new, "", opts).await {
            Ok(v) => return Ok(v),
            Err(e) if e.code == 409 && e.reason == "Conflict" && !pinned => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale(def.group, def.plural, name))
}

/// GET, PUT and PATCH of the `scale` subresource.
async fn scale_request(
    app: &Arc<App>,
    def: &ResourceDef,
    info: &RequestInfo,
    req: Request<RequestBody>,
    query: &Query,
    _accept: &str,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let rest = &app.rest;
    let (ns, name) = (info.namespace.as_str(), info.name.as_str());
    let user_agent = header_str(&req, header::USER_AGENT).to_string();
    let mut opts = write_options(query, &user_agent)?;
    // Who writes, for admission webhooks (`deployments/scale` UPDATE).
    opts.user = req.extensions().get::<UserInfo>().cloned();
    let scale = match info.verb.as_str() {
        "get" => Rest::scale_of(&rest.scale_paths(def)?, &rest.get(def, ns, name).await?),
        "update" => {
            check_json(content_type)?;
            let body = read_body(req.into_body()).await?;
            let scale: Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body of the request could not be decoded as JSON: {e}"
                ))
            })?;
            rest.update_scale(def, ns, name, &scale, &opts).await?
        }
        "patch" => {
            let body = read_body(req.into_body()).await?;
            let patch: Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body of the request could not be decoded as JSON: {e}"
                ))
            })?;
            let paths = rest.scale_paths(def)?;
            let current = Rest::scale_of(&paths, &rest.get(def, ns, name).await?);
            let media = content_type.split(';').next().unwrap_or_default().trim();
            let patched = match media {
                "application/json-patch+json" => ferrokube_api::patch::json_patch(&current, &patch)
                    .map_err(|e| crate::rest::patch_error(def, name, e))?,
                "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml" => {
                    ferrokube_api::patch::merge_patch(&current, &patch)
                }
                other => {
                    return Err(ApiError::unsupported_media_type(
                        other,
                        &[
                            "application/merge-patch+json",
                            "application/json-patch+json",
                        ],
                    ))
                }
            };
            rest.update_scale(def, ns, name, &patched, &opts).await?
        }
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on scale"
            )))
        }
    };
    Ok(json_response(StatusCode::OK, &scale))
}

/// Write options, with the manager named by `fieldManager` or else by the
/// User-Agent up to its first `/`, as Kubernetes names it.
fn write_options(
    query: &Query,
    user_agent: &str,
) -> Result<crate::options::WriteOptions, ApiError> {
    let mut opts = query.write_options()?;
    opts.manager = match &opts.field_manager {
        Some(m) => m.clone(),
        None => manager_from_user_agent(user_agent),
    };
    Ok(opts)
}

/// The manager of a write without `fieldManager`, as Kubernetes'
/// `prefixFromUserAgent` takes it: the User-Agent up to its first `/`,
/// printable characters only, at most 128 bytes (empty without one).
fn manager_from_user_agent(user_agent: &str) -> String {
    let mut out = String::new();
    for c in user_agent.split('/').next().unwrap_or_default().chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// A request body as JSON: JSON as it is, Kubernetes protobuf decoded.
fn json_body(content_type: &str, body: Bytes) -> Result<Bytes, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media == crate::protobuf::CONTENT_TYPE {
        let v = crate::protobuf::decode(&body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?;
        return serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(ApiError::internal);
    }
    match media {
        "" | "application/json" | "*/*" => Ok(body),
        other => Err(ApiError::unsupported_media_type(
            other,
            &["application/json", crate::protobuf::CONTENT_TYPE],
        )),
    }
}

/// A DELETE's optional `DeleteOptions` body as JSON.
fn delete_body(content_type: &str, body: Bytes) -> Result<Bytes, ApiError> {
    if body.is_empty() {
        Ok(body)
    } else {
        json_body(content_type, body)
    }
}

fn check_json(content_type: &str) -> Result<(), ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media.is_empty() || media == "application/json" || media == "*/*" {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(
            media,
            &["application/json"],
        ))
    }
}

fn list_response(
    rest: &Rest,
    def: &ResourceDef,
    res: crate::rest::ListResult,
    accept: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let rv = res.revision.to_string();
    if table::wants_table(accept) {
        let include = IncludeObject::parse(query.get("includeObject"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let objects: Vec<Value> = res
            .items
            .iter()
            .map(|b| serde_json::from_slice(b).map_err(ApiError::internal))
            .collect::<Result<_, _>>()?;
        return Ok(json_response(
            StatusCode::OK,
            &table::table(
                rest.strategy(def).as_ref(),
                def,
                &objects,
                &rv,
                include,
                res.continue_token.as_deref(),
                true,
            ),
        ));
    }
    let meta = ListMeta {
        resource_version: rv,
        continue_token: res.continue_token,
        remaining_item_count: res.remaining,
    };
    let body = encoding::list_body(
        &def.list_kind(),
        &def.api_version(),
        &meta,
        res.items.iter().map(|b| b.as_ref()),
    );
    Ok(full(StatusCode::OK, "application/json", body))
}

/// The objects a watch sends first, its watcher, or the error it sends
/// instead.
type WatchStart = (
    Vec<Arc<crate::watchcache::CachedObject>>,
    Option<CacheWatcher>,
    Option<ApiError>,
);

/// What a watch sends first (the objects at its start, when the client asked
/// for them), the watcher for what follows, or, for a resourceVersion older
/// than the cache's history, the 410 Gone to send as its only event.
async fn watch_start(
    app: &App,
    cache: &Arc<crate::watchcache::ResourceCache>,
    prefix: &str,
    opts: &ListOptions,
) -> Result<WatchStart, ApiError> {
    let send_initial = opts.send_initial_events.unwrap_or(false);
    Ok(match opts.resource_version.as_deref() {
        None | Some("0") => {
            if opts.resource_version.is_none() {
                app.rest
                    .cache
                    .sync(Duration::from_secs(3))
                    .await
                    .map_err(cache_error)?;
            }
            let rev = app.rest.cache.revision();
            let (objs, w) = cache.snapshot_and_watch(prefix, rev);
            (objs, Some(w), None)
        }
        Some(rv) => {
            let rev = crate::options::parse_resource_version(rv)?;
            if send_initial {
                app.rest
                    .cache
                    .wait_for(rev, Duration::from_secs(3))
                    .await
                    .map_err(cache_error)?;
                let (objs, w) = cache.snapshot_and_watch(prefix, app.rest.cache.revision());
                (objs, Some(w), None)
            } else {
                match cache.watch_from(rev) {
                    Ok(w) => (Vec::new(), Some(w), None),
                    Err(e) => (Vec::new(), None, Some(cache_error(e))),
                }
            }
        }
    })
}

/// How a watch encodes each event of an object: a JSON watch event, or a
/// Table row for kubectl's `get -w`.
fn watch_encoder(
    rest: &Rest,
    def: &ResourceDef,
    as_table: bool,
    include: IncludeObject,
) -> impl Fn(EventType, &Bytes) -> Bytes + Send + 'static {
    // events.k8s.io Events are stored as core ones: converted (their
    // strategy prints them with the core Event's columns, as Kubernetes
    // prints both).
    let events_view = crate::events::is_events_view(def);
    let strategy = rest.strategy(def);
    let def = def.clone();
    // As Kubernetes' watch encoder: only the first Table carries the
    // column definitions (`columnDefinitions: null` after it), since they
    // never change within a watch.
    let columns_sent = std::sync::atomic::AtomicBool::new(false);
    move |t: EventType, json: &Bytes| -> Bytes {
        let converted;
        let json = if events_view && !as_table {
            converted = crate::events::bytes_to_events_v1(json).unwrap_or_else(|_| json.clone());
            &converted
        } else {
            json
        };
        if as_table {
            let v: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
            let rv = v
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let first = !columns_sent.swap(true, std::sync::atomic::Ordering::Relaxed);
            let t_obj = table::table(strategy.as_ref(), &def, &[v], &rv, include, None, first);
            encoding::watch_frame(t, t_obj.to_string().as_bytes())
        } else {
            encoding::watch_frame(t, json)
        }
    }
}

/// The error event of a watch whose object cannot be converted (as
/// Kubernetes' watch of a custom resource: an error, then the end).
fn conversion_failed(e: crate::crd::conversion::ConversionError) -> Bytes {
    let status = ApiError {
        code: 500,
        reason: "InternalError",
        message: e.to_string(),
        details: None,
    };
    encoding::error_frame(&status.status_json())
}

/// What one watch sees: its resource in the version asked, under its
/// prefix, through its selectors.
struct WatchView {
    app: Arc<App>,
    strategy: Arc<dyn crate::strategy::Strategy>,
    def: ResourceDef,
    filter: Filter,
    prefix: String,
}

impl WatchView {
    fn new(app: &Arc<App>, def: &ResourceDef, filter: Filter, prefix: String) -> WatchView {
        WatchView {
            app: app.clone(),
            strategy: app.rest.strategy(def),
            def: def.clone(),
            filter,
            prefix,
        }
    }

    /// The objects the watch starts with that it selects, in its version
    /// (a custom resource's converted in one go).
    async fn initial(
        &self,
        initial: &[Arc<crate::watchcache::CachedObject>],
    ) -> Result<Vec<Bytes>, crate::crd::conversion::ConversionError> {
        let (strategy, filter) = (self.strategy.as_ref(), &self.filter);
        match strategy.converter() {
            None => Ok(initial
                .iter()
                .filter(|o| filter.matches(o))
                .map(|o| o.json.clone())
                .collect()),
            Some(c) => {
                let rest = &self.app.rest;
                crate::crd::conversion::convert_initial(
                    rest, c, strategy, &self.def, filter, initial,
                )
                .await
            }
        }
    }

    /// What the watch sees of `ev`: its type and object in the watch's
    /// version (a custom resource's converted), if anything.
    async fn seen(
        &self,
        ev: &crate::watchcache::CacheEvent,
    ) -> Result<Option<(EventType, Bytes)>, crate::crd::conversion::ConversionError> {
        let (strategy, filter, prefix) = (self.strategy.as_ref(), &self.filter, &self.prefix);
        match strategy.converter() {
            None => Ok(ev
                .filtered(|o| filter.matches(o) && o.key.starts_with(prefix.as_str()))
                .map(|(t, o)| (t, o.json.clone()))),
            Some(c) => {
                let (rest, def) = (&self.app.rest, &self.def);
                crate::crd::conversion::convert_watch_event(
                    rest, c, strategy, def, filter, prefix, ev,
                )
                .await
            }
        }
    }
}

/// Streams a watch: the initial state where asked, then every change, as
/// newline-delimited JSON events (Tables for kubectl's `get -w`).
async fn watch_response(
    app: &Arc<App>,
    def: &ResourceDef,
    ns: &str,
    opts: ListOptions,
    filter: Filter,
    accept: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let cache = app
        .rest
        .cache
        .resource(def.storage_prefix)
        .ok_or_else(|| ApiError::internal("no watch cache"))?
        .clone();
    let prefix = def.list_prefix(ns);
    let as_table = table::wants_table(accept);
    let include = IncludeObject::parse(query.get("includeObject"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let send_initial = opts.send_initial_events.unwrap_or(false);
    let (initial, watcher, too_old) = watch_start(app, &cache, &prefix, &opts).await?;
    let skip_initial = opts.resource_version.is_some() && !send_initial;
    let kind = def.kind;
    let api_version = def.api_version();
    let encode_obj = watch_encoder(&app.rest, def, as_table, include);
    let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or(1800).min(3600));
    let bookmarks = opts.allow_watch_bookmarks;
    let cache_all = app.rest.cache.clone();
    // A custom resource's objects are sent in the watch's version.
    let view = WatchView::new(app, def, filter, prefix);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(256);
    tokio::spawn(async move {
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(Frame::data(b))).await.is_ok() }
        };
        if let Some(e) = too_old {
            let _ = send(encoding::error_frame(&e.status_json())).await;
            return;
        }
        let Some(mut watcher) = watcher else { return };
        if !skip_initial {
            let objects = match view.initial(&initial).await {
                Ok(o) => o,
                Err(e) => {
                    let _ = send(conversion_failed(e)).await;
                    return;
                }
            };
            for json in &objects {
                if !send(encode_obj(EventType::Added, json)).await {
                    return;
                }
            }
            if send_initial {
                let rv = watcher.last_revision().to_string();
                if !send(encoding::bookmark_frame(kind, &api_version, &rv, true)).await {
                    return;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bookmark_tick = tokio::time::interval(Duration::from_secs(30));
        bookmark_tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = bookmark_tick.tick(), if bookmarks => {
                    let rv = cache_all.revision().max(watcher.last_revision()).to_string();
                    if !send(encoding::bookmark_frame(kind, &api_version, &rv, false)).await {
                        return;
                    }
                }
                ev = watcher.next() => match ev {
                    Ok(ev) => {
                        match view.seen(&ev).await {
                            Ok(Some((t, json))) => {
                                if !send(encode_obj(t, &json)).await {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let _ = send(conversion_failed(e)).await;
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = send(encoding::error_frame(&cache_error(e).status_json())).await;
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = StreamBody::new(stream.map(|r| r));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(BodyExt::boxed(body))
        .map_err(ApiError::internal)
}
