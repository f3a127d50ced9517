//! Starting and stopping the portal: the loopback-only listener, the sign-in link, and the
//! state every request shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use phr_engine::attachment::BlobStore;
use phr_engine::sync::Replica;

use crate::confirm::Attempts;
use crate::error::Error;
use crate::i18n::Messages;
use crate::offers::Offers;
use crate::sessions::Sessions;

/// How the portal is started.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen: a loopback address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// How long a session lasts without a request.
    pub idle: Duration,
    /// The serving process's endpoint, for sharing and pairing from the portal (`None`: those
    /// pages say they are not available).
    pub inviter: Option<phr_engine::sync::pair::Inviter>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            idle: Duration::from_secs(15 * 60),
            inviter: None,
        }
    }
}

/// What every request shares.
pub struct App {
    pub replica: Arc<Replica>,
    pub sessions: Sessions,
    /// `Host` values this portal answers to (DNS rebinding defence).
    pub hosts: Vec<String>,
    /// `Origin` values of its own pages.
    pub origins: Vec<String>,
    /// The name of its session cookie (with the port: cookies do not tell ports apart).
    pub cookie: String,
    pub m: &'static Messages,
    /// Becomes `true` when the portal stops, ending open event streams (`/events`).
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The home's blob store (attached files), opened at the first upload or download.
    pub blobs: tokio::sync::OnceCell<BlobStore>,
    /// Tickets offered from the portal (sharing, devices).
    pub offers: Offers,
    /// Wrong passphrases per client.
    pub attempts: Attempts,
}

impl App {
    /// The home's blob store: the one this process already has open, or opened now.
    pub async fn blobs(&self) -> Result<BlobStore, Error> {
        let home = self.replica.lock().home().to_path_buf();
        let store = self.blobs.get_or_try_init(|| BlobStore::open_home(&home)).await?;
        Ok(store.clone())
    }

    /// Run `draw` (which locks the record) on a blocking thread; an error becomes the
    /// "could not be read or written" page.
    pub async fn blocking<F>(self: &Arc<Self>, draw: F) -> Response
    where
        F: FnOnce(&App) -> Result<Response, Error> + Send + 'static,
    {
        let app = self.clone();
        match tokio::task::spawn_blocking(move || draw(&app)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!("portal: {e}");
                crate::pages::failure(self)
            }
            Err(e) => {
                tracing::error!("portal: a page panicked: {e}");
                crate::pages::failure(self)
            }
        }
    }
}

/// A running portal.
pub struct Portal {
    addr: SocketAddr,
    login: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Portal {
    /// Listen on `config.listen` (loopback only) and serve `replica`'s record.
    pub async fn start(replica: Arc<Replica>, config: Config) -> Result<Portal, Error> {
        if !config.listen.ip().is_loopback() {
            return Err(Error::NotLoopback(config.listen));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let (sessions, token) = Sessions::new(config.idle)?;
        let (stop, closing) = tokio::sync::watch::channel(false);
        let hosts = vec![addr.to_string(), format!("localhost:{}", addr.port())];
        let app = Arc::new(App {
            replica,
            sessions,
            origins: hosts.iter().map(|h| format!("http://{h}")).collect(),
            hosts,
            cookie: format!("phr-session-{}", addr.port()),
            m: Messages::english(),
            closing: closing.clone(),
            blobs: tokio::sync::OnceCell::new(),
            offers: Offers::new(config.inviter),
            attempts: Attempts::default(),
        });
        let watching = app.clone();
        let closed = closing.clone();
        tokio::spawn(async move { watching.offers.watch(closed).await });
        let router = crate::routes::router(app).into_make_service_with_connect_info::<SocketAddr>();
        let mut stopped = closing;
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(Portal {
            login: format!("http://{addr}/login/{token}"),
            addr,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The one-time sign-in link.
    pub fn login_url(&self) -> &str {
        &self.login
    }

    /// Stop serving and wait for open requests to finish.
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r.map_err(Error::Serve),
            Err(e) => Err(Error::Serve(std::io::Error::other(e.to_string()))),
        }
    }
}

/// A page rendered into a response with `status`.
pub fn html(status: axum::http::StatusCode, page: &impl askama::Template) -> Result<Response, Error> {
    Ok((status, axum::response::Html(page.render()?)).into_response())
}
