//! Certificates renewed while the server runs. [`crate::pki`] renews leaf
//! certificates at start; a server that is never restarted would still see
//! them expire, so a background task checks them every
//! [`CHECK_INTERVAL`] and, once one has [`crate::pki::RENEW_BEFORE_DAYS`] or
//! fewer left, issues them again, swaps the serving certificate into the TLS
//! layer for new connections ([`ServingCert`]) and rewrites the admin
//! kubeconfigs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::pki::Pki;

/// How often the certificates' remaining validity is checked.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The serving certificate handed to every new TLS connection; replaceable
/// while the server runs.
#[derive(Debug)]
pub(crate) struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

fn certified_key(
    pki: &Pki,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<Arc<CertifiedKey>> {
    // The chain: the serving certificate, then the CA.
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
            .chain(CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()))
            .collect::<Result<_, _>>()
            .context("reading the serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())
        .context("reading the serving key")?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .context("loading the serving key")?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

impl ServingCert {
    /// The serving certificate of `pki`.
    pub(crate) fn new(
        pki: &Pki,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> anyhow::Result<ServingCert> {
        Ok(ServingCert {
            current: RwLock::new(certified_key(pki, &provider)?),
            provider,
        })
    }

    /// Serves `pki`'s serving certificate from now on.
    pub(crate) fn replace(&self, pki: &Pki) -> anyhow::Result<()> {
        let key = certified_key(pki, &self.provider)?;
        *self.current.write() = key;
        Ok(())
    }

    /// The certificate new connections get.
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().clone()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// What renewing needs: where the credentials live, the names the serving
/// certificate carries, and the kubeconfigs to rewrite.
pub(crate) struct Renewer {
    pub data_dir: PathBuf,
    pub serving_sans: Vec<String>,
    pub kubeconfigs: Vec<PathBuf>,
    pub server_url: String,
    pub serving: Arc<ServingCert>,
}

impl Renewer {
    /// Renews the credentials if [`Pki::renewal_due`]: returns the new ones
    /// (now served and written out), or `None` when nothing was due.
    pub(crate) fn renew_if_due(&self, pki: &Pki) -> anyhow::Result<Option<Pki>> {
        if !pki.renewal_due() {
            return Ok(None);
        }
        let fresh = Pki::ensure(&self.data_dir, self.serving_sans.clone())
            .context("renewing certificates")?;
        self.serving.replace(&fresh)?;
        if fresh.admin_cert_pem != pki.admin_cert_pem {
            for path in &self.kubeconfigs {
                fresh
                    .write_kubeconfig(path, &self.server_url)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        tracing::info!(
            dir = %self.data_dir.display(),
            "renewed certificates close to expiry"
        );
        Ok(Some(fresh))
    }

    /// Checks every [`CHECK_INTERVAL`] until `cancel`; a failed renewal is
    /// logged as an error and tried again at the next check.
    pub(crate) async fn run(self, mut pki: Pki, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.renew_if_due(&pki) {
                Ok(Some(fresh)) => pki = fresh,
                Ok(None) => {}
                Err(e) => tracing::error!(error = %format!("{e:#}"), "certificate renewal failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{days_left, issue_for_test, serving_names};

    #[test]
    fn certificates_close_to_expiry_are_renewed_and_served() {
        let dir = tempfile::tempdir().unwrap();
        let sans = serving_names("node-a", None);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut pki = Pki::ensure(dir.path(), sans.clone()).unwrap();
        // A server that has run for eleven months: 30 days left on both.
        let (serving, serving_key) = issue_for_test(dir.path(), true, 30);
        let (admin, admin_key) = issue_for_test(dir.path(), false, 30);
        pki.serving_cert_pem = serving;
        pki.serving_key_pem = serving_key;
        pki.admin_cert_pem = admin.clone();
        pki.admin_key_pem = admin_key;
        std::fs::write(dir.path().join("tls/admin.crt"), &admin).unwrap();
        std::fs::write(dir.path().join("tls/admin.key"), &pki.admin_key_pem).unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        pki.write_kubeconfig(&kubeconfig, "https://127.0.0.1:6443")
            .unwrap();
        let before = std::fs::read_to_string(&kubeconfig).unwrap();

        let served = Arc::new(ServingCert::new(&pki, provider).unwrap());
        let old_der = served.current().cert[0].clone();
        let renewer = Renewer {
            data_dir: dir.path().to_path_buf(),
            serving_sans: sans,
            kubeconfigs: vec![kubeconfig.clone()],
            server_url: "https://127.0.0.1:6443".into(),
            serving: served.clone(),
        };
        let fresh = renewer
            .renew_if_due(&pki)
            .unwrap()
            .expect("renewal was due");
        assert!(days_left(&fresh.serving_cert_pem).unwrap() > 360);
        assert!(days_left(&fresh.admin_cert_pem).unwrap() > 360);
        assert_ne!(
            served.current().cert[0],
            old_der,
            "new connections get the new cert"
        );
        let after = std::fs::read_to_string(&kubeconfig).unwrap();
        assert_ne!(after, before, "the kubeconfig carries the new admin cert");
        assert_eq!(after, fresh.kubeconfig("https://127.0.0.1:6443"));
        assert_eq!(fresh.ca_cert_pem, pki.ca_cert_pem, "same CA");
        // Nothing more is due.
        assert!(renewer.renew_if_due(&fresh).unwrap().is_none());
    }
}
