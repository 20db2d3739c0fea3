//! The etcd backend: the [`Store`] over a real etcd v3 cluster, through the
//! `etcd-client` crate.
//!
//! Every trait operation is one etcd request: create and update are
//! transactions guarded by `create_revision == 0` and `mod_revision ==
//! expected` whose success branch writes and reads the key back (so the
//! answer carries its counters) and whose failure branch reads the current
//! key (so a conflict carries it). Keys are used as given (the apiserver
//! writes under `/registry/`), so data is laid out as Kubernetes lays it out.
//!
//! A watch is one etcd watch with previous values. When its connection
//! breaks (an endpoint lost), it is opened again from the last revision
//! delivered + 1 on the remaining endpoints, so the caller sees neither a
//! gap nor a duplicate; if that revision has been compacted meanwhile the
//! stream yields [`StoreError::Compacted`] and ends.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    validate_key, validate_prefix, validate_value, DeleteResponse, EventKind, GetResponse,
    KeyValue, LeaseId, RangeRequest, RangeResponse, Result, Revision, Store, StoreError,
    WatchEvent, WatchStream,
};

/// Connection settings of the etcd backend.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a broken watch keeps trying to resume before it gives up.
    pub watch_resume_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            watch_resume_timeout: Duration::from_secs(60),
        }
    }
}

/// The store on a real etcd cluster.
pub struct EtcdStore {
    client: Client,
    opts: EtcdOptions,
}

/// Responses over 4 MiB (tonic's default) are normal here: a list of
/// thousands of objects.
const MAX_RESPONSE: usize = 1 << 30;

fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: String::from_utf8(kv.key().to_vec())
            .map_err(|_| StoreError::Internal("etcd returned a key that is not UTF-8".into()))?,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    })
}

/// Maps an etcd client error to the store's.
fn map_err(e: etcd_client::Error) -> StoreError {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message();
            if msg.contains("required revision has been compacted") {
                StoreError::Compacted {
                    requested: 0,
                    compacted: 0,
                }
            } else if msg.contains("future revision") {
                StoreError::FutureRevision {
                    requested: 0,
                    current: 0,
                }
            } else if msg.contains("request is too large") {
                StoreError::ValueTooLarge {
                    size: 0,
                    limit: crate::MAX_VALUE_BYTES,
                }
            } else if msg.contains("requested lease not found") {
                StoreError::LeaseNotFound(0)
            } else {
                StoreError::Unavailable(format!("etcd: {} ({:?})", msg, status.code()))
            }
        }
        other => StoreError::Unavailable(format!("etcd: {other}")),
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`http://host:port`) and checks
    /// that it answers.
    pub async fn connect(endpoints: &[String], opts: EtcdOptions) -> Result<EtcdStore> {
        if endpoints.is_empty() {
            return Err(StoreError::InvalidRequest("no etcd endpoints given".into()));
        }
        let connect = ConnectOptions::new()
            .with_connect_timeout(opts.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(connect))
            .await
            .map_err(map_err)?;
        let store = EtcdStore { client, opts };
        store.current_revision().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "etcd at {} does not answer: {e}",
                endpoints.join(",")
            ))
        })?;
        Ok(store)
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE)
    }

    async fn timed<T, F>(&self, f: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.opts.request_timeout, f).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "etcd did not answer within {:?}",
                self.opts.request_timeout
            ))),
        }
    }

    /// A read, tried again if an endpoint does not answer (reads are
    /// idempotent; writes are not retried, their outcome would be
    /// ambiguous). The client's balancer may pick a member that just went
    /// down several times before it notices, so the retries span a few
    /// seconds (backoff 50 ms doubling to 800 ms, 8 attempts: about 3 s).
    async fn read(&self, key: &str, opts: GetOptions) -> Result<etcd_client::GetResponse> {
        const ATTEMPTS: u32 = 8;
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.timed(self.kv().get(key, Some(opts.clone()))).await {
                Err(StoreError::Unavailable(msg)) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, error = %msg, "etcd read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(800));
                }
                other => return other,
            }
        }
    }

    /// Fills in the revisions of a Compacted/FutureRevision error.
    async fn detail(&self, err: StoreError, requested: Revision) -> StoreError {
        match err {
            StoreError::Compacted { .. } => StoreError::Compacted {
                requested,
                compacted: self.compacted_revision().await.unwrap_or(0),
            },
            StoreError::FutureRevision { .. } => StoreError::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or(0),
            },
            other => other,
        }
    }

    /// Runs a transaction guarded by `compare` whose success branch is
    /// `then` followed by a read of `key`, and whose failure branch reads
    /// `key`. Returns whether it succeeded, the key as read, and the revision.
    async fn guarded(
        &self,
        key: &str,
        compare: Vec<Compare>,
        then: TxnOp,
    ) -> Result<(bool, Option<KeyValue>, Option<KeyValue>, Revision)> {
        let txn = Txn::new()
            .when(compare)
            .and_then(vec![then, TxnOp::get(key, None)])
            .or_else(vec![TxnOp::get(key, None)]);
        let resp = self.timed(self.kv().txn(txn)).await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let mut read = None;
        let mut prev = None;
        for op in resp.op_responses() {
            match op {
                TxnOpResponse::Get(g) => {
                    if let Some(kv) = g.kvs().first() {
                        read = Some(convert(kv)?);
                    }
                }
                TxnOpResponse::Delete(d) => {
                    if let Some(kv) = d.prev_kvs().first() {
                        prev = Some(convert(kv)?);
                    }
                }
                _ => {}
            }
        }
        Ok((resp.succeeded(), read, prev, revision))
    }

    /// Opens an etcd watch from `from`; fails with Compacted at once if
    /// `from` is compacted.
    async fn open_watch(
        client: &Client,
        prefix: &str,
        from: Revision,
    ) -> Result<etcd_client::WatchStream> {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(from);
        let mut watch = client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE)
            .watch(prefix, Some(opts))
            .await
            .map_err(map_err)?;
        // The first response says whether the watch was created.
        match watch.message().await.map_err(map_err)? {
            Some(resp) if resp.canceled() || resp.compact_revision() > 0 => {
                if resp.compact_revision() > 0 {
                    Err(StoreError::Compacted {
                        requested: from,
                        compacted: resp.compact_revision(),
                    })
                } else {
                    Err(StoreError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    )))
                }
            }
            Some(_) => Ok(watch),
            None => Err(StoreError::Unavailable("etcd closed the watch".into())),
        }
    }
}

/// Follows a watch, resuming after connection losses, until the receiver is
/// dropped.
async fn pump(
    client: Client,
    prefix: String,
    mut watch: etcd_client::WatchStream,
    mut next: Revision,
    tx: mpsc::Sender<Result<WatchEvent>>,
    resume_timeout: Duration,
) {
    loop {
        let msg = tokio::select! {
            _ = tx.closed() => return,
            msg = watch.message() => msg,
        };
        match msg {
            Ok(Some(resp)) => {
                if resp.canceled() {
                    let err = if resp.compact_revision() > 0 {
                        StoreError::Compacted {
                            requested: next,
                            compacted: resp.compact_revision(),
                        }
                    } else {
                        StoreError::Unavailable(format!(
                            "etcd cancelled the watch: {}",
                            resp.cancel_reason()
                        ))
                    };
                    let _ = tx.send(Err(err)).await;
                    return;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let event = (|| -> Result<WatchEvent> {
                        Ok(WatchEvent {
                            kind: match ev.event_type() {
                                EventType::Put => EventKind::Put,
                                EventType::Delete => EventKind::Delete,
                            },
                            kv: convert(kv)?,
                            prev: ev.prev_kv().map(convert).transpose()?,
                        })
                    })();
                    // Already delivered before a resume. (One revision can
                    // carry several events, e.g. a lease revoke; etcd sends
                    // them in one response, so `next` moves per response.)
                    if kv.mod_revision() < next {
                        continue;
                    }
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if let Some(last) = resp
                    .events()
                    .iter()
                    .filter_map(|e| e.kv())
                    .map(|kv| kv.mod_revision())
                    .max()
                {
                    next = next.max(last + 1);
                }
            }
            Ok(None) | Err(_) => {
                // The connection broke: resume on the endpoints left.
                let deadline = tokio::time::Instant::now() + resume_timeout;
                let mut backoff = Duration::from_millis(50);
                loop {
                    if tx.is_closed() {
                        return;
                    }
                    match EtcdStore::open_watch(&client, &prefix, next).await {
                        Ok(w) => {
                            tracing::info!(prefix = %prefix, revision = next, "etcd watch resumed");
                            watch = w;
                            break;
                        }
                        Err(e @ StoreError::Compacted { .. }) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Err(e) if tokio::time::Instant::now() >= deadline => {
                            let _ = tx
                                .send(Err(StoreError::Unavailable(format!(
                                    "etcd watch could not resume within {resume_timeout:?}: {e}"
                                ))))
                                .await;
                            return;
                        }
                        Err(_) => {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                        }
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse> {
        validate_key(key)?;
        let mut opts = GetOptions::new();
        if let Some(r) = revision.filter(|&r| r > 0) {
            opts = opts.with_revision(r);
        }
        let resp = match self.read(key, opts).await {
            Ok(r) => r,
            Err(e) => return Err(self.detail(e, revision.unwrap_or(0)).await),
        };
        Ok(GetResponse {
            kv: resp.kvs().first().map(convert).transpose()?,
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        })
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        validate_prefix(&req.prefix)?;
        let start = match &req.start {
            Some(s) if !s.starts_with(&req.prefix) => {
                return Err(StoreError::InvalidRequest(format!(
                    "range start {s:?} is not under the prefix {:?}",
                    req.prefix
                )))
            }
            Some(s) => s.clone(),
            None => req.prefix.clone(),
        };
        let mut opts = GetOptions::new().with_range(prefix_end(&req.prefix));
        if req.limit > 0 {
            opts = opts.with_limit(req.limit as i64);
        }
        if let Some(r) = req.revision.filter(|&r| r > 0) {
            opts = opts.with_revision(r);
        }
        if req.count_only {
            opts = opts.with_count_only();
        }
        let resp = match self.read(&start, opts).await {
            Ok(r) => r,
            Err(e) => return Err(self.detail(e, req.revision.unwrap_or(0)).await),
        };
        let current = resp.header().map(|h| h.revision()).unwrap_or(0);
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(convert).collect::<Result<_>>()?,
            more: resp.more(),
            count: resp.count(),
            revision: req.revision.filter(|&r| r > 0).unwrap_or(current),
        })
    }

    async fn count(&self, prefix: &str) -> Result<(i64, Revision)> {
        let r = self
            .range(RangeRequest {
                prefix: prefix.to_string(),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok((r.count, r.revision))
    }

    async fn create(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<KeyValue> {
        validate_key(key)?;
        validate_value(&value)?;
        let put = put_options(lease);
        let (ok, read, _, _) = self
            .guarded(
                key,
                vec![Compare::create_revision(key, CompareOp::Equal, 0)],
                TxnOp::put(key, value.to_vec(), Some(put)),
            )
            .await
            .map_err(|e| with_lease(e, lease))?;
        match (ok, read) {
            (true, Some(kv)) => Ok(kv),
            (false, _) => Err(StoreError::AlreadyExists {
                key: key.to_string(),
            }),
            (true, None) => Err(StoreError::Internal(format!(
                "etcd created {key:?} but did not return it"
            ))),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        lease: Option<LeaseId>,
    ) -> Result<KeyValue> {
        validate_key(key)?;
        validate_value(&value)?;
        let put = put_options(lease);
        let (ok, read, _, _) = self
            .guarded(
                key,
                vec![Compare::mod_revision(
                    key,
                    CompareOp::Equal,
                    expected_mod_revision,
                )],
                TxnOp::put(key, value.to_vec(), Some(put)),
            )
            .await
            .map_err(|e| with_lease(e, lease))?;
        match (ok, read) {
            (true, Some(kv)) => Ok(kv),
            (true, None) => Err(StoreError::Internal(format!(
                "etcd updated {key:?} but did not return it"
            ))),
            (false, None) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            (false, Some(current)) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected: expected_mod_revision,
                current: Some(Box::new(current)),
            }),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<DeleteResponse> {
        validate_key(key)?;
        let compare = match expected_mod_revision {
            Some(r) => vec![Compare::mod_revision(key, CompareOp::Equal, r)],
            // Guard on existence, so a missing key takes the failure branch.
            None => vec![Compare::create_revision(key, CompareOp::Greater, 0)],
        };
        let (ok, read, prev, revision) = self
            .guarded(
                key,
                compare,
                TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key())),
            )
            .await?;
        match (ok, prev, read) {
            (true, Some(prev), _) => Ok(DeleteResponse { prev, revision }),
            (true, None, _) | (false, _, None) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            (false, _, Some(current)) => Err(StoreError::Conflict {
                key: key.to_string(),
                expected: expected_mod_revision.unwrap_or(0),
                current: Some(Box::new(current)),
            }),
        }
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        validate_prefix(prefix)?;
        let from = if start_revision <= 0 {
            self.current_revision().await? + 1
        } else {
            // etcd reports a compacted start only after the watch is
            // created; a read at that revision fails at once instead.
            let opts = GetOptions::new()
                .with_count_only()
                .with_revision(start_revision);
            match self.read("/", opts).await {
                Ok(_) | Err(StoreError::FutureRevision { .. }) => {}
                Err(e) => return Err(self.detail(e, start_revision).await),
            }
            start_revision
        };
        let watch = Self::open_watch(&self.client, prefix, from).await?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(pump(
            self.client.clone(),
            prefix.to_string(),
            watch,
            from,
            tx,
            self.opts.watch_resume_timeout,
        ));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self.read("/", GetOptions::new().with_count_only()).await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self
            .timed(
                self.kv()
                    .compact(revision, Some(CompactionOptions::new().with_physical())),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.detail(e, revision).await),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        // etcd 3.4 does not report its compaction point directly; a read at
        // revision r fails exactly when r is below it, so search for it.
        let current = self.current_revision().await?;
        let readable = |r: Revision| async move {
            let opts = GetOptions::new().with_count_only().with_revision(r);
            match self.read("/", opts).await {
                Ok(_) => Ok(true),
                Err(StoreError::Compacted { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        };
        if current <= 1 || readable(1).await? {
            return Ok(0);
        }
        // Invariant: lo is not readable, hi is.
        let (mut lo, mut hi) = (1, current);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if readable(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseId> {
        if ttl_seconds <= 0 {
            return Err(StoreError::InvalidRequest(format!(
                "lease TTL must be positive, got {ttl_seconds}"
            )));
        }
        let mut lease = self.client.lease_client();
        let resp = self.timed(lease.grant(ttl_seconds, None)).await?;
        Ok(resp.id())
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        let mut client = self.client.lease_client();
        self.timed(client.revoke(lease))
            .await
            .map(|_| ())
            .map_err(|e| with_lease(e, Some(lease)))
    }

    fn backend_name(&self) -> &'static str {
        "etcd"
    }
}

/// Put options attaching `lease`, if any.
fn put_options(lease: Option<LeaseId>) -> PutOptions {
    match lease.filter(|&l| l != 0) {
        Some(l) => PutOptions::new().with_lease(l),
        None => PutOptions::new(),
    }
}

/// Puts the lease id into a LeaseNotFound error.
fn with_lease(e: StoreError, lease: Option<LeaseId>) -> StoreError {
    match e {
        StoreError::LeaseNotFound(_) => StoreError::LeaseNotFound(lease.unwrap_or(0)),
        other => other,
    }
}
