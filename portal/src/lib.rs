//! phr's patient portal: the record in a browser, served by the process that holds the home.
//!
//! The portal is a web application over the engine (`phr-engine`), started by the CLI
//! (`phr portal`, `phr serve --portal`). It listens on loopback only, lets a browser in by a
//! one-time sign-in link, and serves server-rendered pages (askama templates, every word from
//! the Fluent messages of `i18n/`) that work with JavaScript off; htmx, one vendored file, only
//! makes them faster. See docs/ARCHITECTURE.md ("phr-portal") and docs/SECURITY.md ("Portal").

mod assets;
mod confirm;
mod download;
mod error;
mod forms;
mod guard;
mod i18n;
mod live;
mod offers;
mod pages;
mod people;
mod rights;
mod routes;
mod server;
mod sessions;
mod templates;
mod upload;

pub use error::Error;
pub use i18n::Messages;
pub use server::{Config, Portal};
