//! # transport::reload: certificate rotation without a restart
//!
//! Owns [`ReloadableTls`], the handle a TLS or WSS accept loop asks for the configuration to use
//! on each new connection. A watcher task re-reads the listener's PEM files every few seconds;
//! when their bytes change it builds a new `ServerConfig` and swaps it in. Connections already
//! running keep the configuration they were accepted with (rustls holds its own `Arc`), so
//! rotation never disturbs them. A file that does not build is refused with a WARN line and the
//! configuration in force stays.
//! Must not touch: sockets, MQTT. Start at [`ReloadableTls::reload_if_changed`].
//!
//! Why compare contents rather than modification times: the files are a few KiB, and a content
//! check also catches a rotation within one mtime tick, a `cp -p` that keeps the old time, and a
//! Kubernetes secret whose symlink flips to a directory with older timestamps.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::transport::tls::{self, PemFiles, TlsError, TlsSettings};

/// How often the watcher looks at the files unless told otherwise.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// A cheap-clone handle to a listener's current TLS configuration.
#[derive(Clone)]
pub struct ReloadableTls {
    inner: Arc<Inner>,
}

struct Inner {
    settings: TlsSettings,
    /// Read on every accept, written on a rotation: a `parking_lot` lock held only for an `Arc`
    /// clone, never across an await.
    current: RwLock<Arc<ServerConfig>>,
    /// The file bytes last tried (whether they built or not), so a refused file is reported once
    /// and not on every poll, and a fixed file is picked up on the next poll.
    last_seen: Mutex<Seen>,
}

struct Seen {
    files: Option<PemFiles>,
    /// Text of the last read failure, so a missing file is warned about once, not every poll.
    read_error: Option<String>,
}

/// What one look at the files did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Same bytes as last time; nothing to do.
    Unchanged,
    /// New files built and are now used for new connections.
    Reloaded,
    /// New files did not build (or could not be read); the old configuration stays in force.
    Refused(TlsError),
}

impl ReloadableTls {
    /// Reads and builds the configuration once. At start a bad file is an error, not a warning:
    /// the hub must not come up with a TLS listener that cannot serve.
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let files = PemFiles::read(&settings)?;
        let config = tls::build_from_pem(&settings, &files)?;
        Ok(ReloadableTls {
            inner: Arc::new(Inner {
                settings,
                current: RwLock::new(config),
                last_seen: Mutex::new(Seen {
                    files: Some(files),
                    read_error: None,
                }),
            }),
        })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.inner.settings
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.inner.current.read().clone()
    }

    /// An acceptor over [`Self::current`].
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current())
    }

    /// Re-reads the files; if their bytes changed, builds and swaps in a new configuration.
    /// Blocking file I/O: call from a blocking context (the watcher uses `spawn_blocking`).
    pub fn reload_if_changed(&self) -> ReloadOutcome {
        let settings = &self.inner.settings;
        let files = match PemFiles::read(settings) {
            Ok(files) => files,
            Err(err) => {
                // Mid-rotation a file can be briefly missing; warn once per distinct failure.
                let mut seen = self.inner.last_seen.lock();
                let text = err.to_string();
                if seen.read_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(cert = %settings.cert.display(), error = %err,
                        "TLS files unreadable; keeping the certificate in force");
                    seen.read_error = Some(text);
                }
                return ReloadOutcome::Refused(err);
            }
        };
        let mut seen = self.inner.last_seen.lock();
        seen.read_error = None;
        if seen.files.as_ref() == Some(&files) {
            return ReloadOutcome::Unchanged;
        }
        let built = tls::build_from_pem(settings, &files);
        seen.files = Some(files);
        match built {
            Ok(config) => {
                *self.inner.current.write() = config;
                tracing::info!(cert = %settings.cert.display(), "TLS certificate reloaded");
                ReloadOutcome::Reloaded
            }
            Err(err) => {
                tracing::warn!(cert = %settings.cert.display(), error = %err,
                    "new TLS files refused; keeping the certificate in force");
                ReloadOutcome::Refused(err)
            }
        }
    }

    /// Polls the files every `every` until `shutdown` is cancelled.
    pub fn spawn_watcher(&self, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate and the files were just loaded
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let this = this.clone();
                // A panic in the build is a bug, but it must not end rotation for the listener.
                if let Err(err) =
                    tokio::task::spawn_blocking(move || this.reload_if_changed()).await
                {
                    tracing::error!(error = %err, "TLS reload task failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::test_pki::{Pki, client_config, handshake_in_memory, write};
    use std::path::Path;

    fn setup(dir: &Path, pki: &Pki, cn: &str) -> (TlsSettings, Vec<u8>) {
        let settings = TlsSettings {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: None,
            require_client_cert: false,
            use_identity_as_username: false,
        };
        let leaf = pki.leaf(cn);
        write(&settings.cert, &leaf.cert_pem);
        write(&settings.key, &leaf.key_pem);
        (settings, leaf.der)
    }

    #[tokio::test]
    async fn rotation_swaps_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("CA");
        let (settings, first_der) = setup(dir.path(), &pki, "first");
        let tls = ReloadableTls::load(settings.clone()).unwrap();
        let before = tls.current();
        assert!(matches!(tls.reload_if_changed(), ReloadOutcome::Unchanged));
        assert!(Arc::ptr_eq(&before, &tls.current()));

        let (_, second_der) = setup(dir.path(), &pki, "second");
        assert!(matches!(tls.reload_if_changed(), ReloadOutcome::Reloaded));
        assert!(!Arc::ptr_eq(&before, &tls.current()));
        let client = client_config(&pki.cert_pem, None);
        assert_eq!(
            handshake_in_memory(before, client.clone()).await.unwrap(),
            first_der
        );
        assert_eq!(
            handshake_in_memory(tls.current(), client.clone())
                .await
                .unwrap(),
            second_der
        );

        write(
            &settings.cert,
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        );
        let in_force = tls.current();
        assert!(matches!(tls.reload_if_changed(), ReloadOutcome::Refused(_)));
        assert!(
            Arc::ptr_eq(&in_force, &tls.current()),
            "old config must stay after a bad file"
        );
        // The same bad bytes are not re-tried (and re-warned) on every poll.
        assert!(matches!(tls.reload_if_changed(), ReloadOutcome::Unchanged));

        std::fs::remove_file(&settings.key).unwrap();
        assert!(matches!(
            tls.reload_if_changed(),
            ReloadOutcome::Refused(TlsError::Read { .. })
        ));
        assert!(Arc::ptr_eq(&in_force, &tls.current()));
        assert_eq!(
            handshake_in_memory(tls.current(), client).await.unwrap(),
            second_der
        );
    }

    #[tokio::test]
    async fn watcher_picks_up_a_change_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("CA");
        let (settings, _) = setup(dir.path(), &pki, "first");
        let tls = ReloadableTls::load(settings).unwrap();
        let before = tls.current();
        let shutdown = CancellationToken::new();
        let watcher = tls.spawn_watcher(Duration::from_millis(20), shutdown.clone());
        setup(dir.path(), &pki, "second");
        // tokio's test-util (paused time) is not enabled in Cargo.toml: a short real interval.
        let mut swapped = false;
        for _ in 0..250 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !Arc::ptr_eq(&before, &tls.current()) {
                swapped = true;
                break;
            }
        }
        assert!(swapped, "watcher never swapped in the new certificate");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), watcher)
            .await
            .unwrap()
            .unwrap();
    }
}
