//! The benchmark's own HTTP server: one origin serving both ServiceWorkers and what they load.
//!
//! - `/` and every file of `www/`: nudge's shell, its loader (`/sw.js`) and `www/gen/`.
//! - the peers' generated ServiceWorkers (`/wb-sw.js`, `/wb-bundle.js`, see [`crate::workbox`]).
//! - `/wb/<file>`: what the `workbox-sw` loader imports (its own script and each package's
//!   `.prod.js` build), from `node_modules` as published.
//! - `/bench.html`: an empty page for the measurements to run in.
//! - `/__count?path=`: how many requests reached the server for a path, so the benchmark can
//!   prove that every timed response came from the SW, not the network.
//!
//! Every response is cross-origin isolated (COOP/COEP), which gives the page a 5 µs
//! `performance.now()` instead of 100 µs: a cache hit takes well under a millisecond.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;

use crate::workbox;

/// What the server serves from, and what it has seen.
pub struct Site {
    /// nudge's `www/` (with `gen/` built).
    pub www: PathBuf,
    /// `node_modules` holding Workbox.
    pub node_modules: PathBuf,
    /// Generated scripts by path (the peers' ServiceWorkers).
    pub scripts: HashMap<&'static str, String>,
    counts: Mutex<HashMap<String, u64>>,
}

impl Site {
    /// A site over these folders.
    pub fn new(
        www: PathBuf,
        node_modules: PathBuf,
        scripts: HashMap<&'static str, String>,
    ) -> Self {
        Site {
            www,
            node_modules,
            scripts,
            counts: Mutex::default(),
        }
    }

    /// The requests that reached the server for `path`.
    pub fn count(&self, path: &str) -> u64 {
        let counts = self.counts.lock().expect("counts lock");
        counts.get(path).copied().unwrap_or(0)
    }

    /// The paths under `prefix` that browsers asked for, each once.
    pub fn requested(&self, prefix: &str) -> BTreeSet<String> {
        let counts = self.counts.lock().expect("counts lock");
        counts
            .keys()
            .filter(|path| path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The body this server gives for `path`, for the size table.
    pub fn body(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(script) = self.scripts.get(path) {
            return Some(script.clone().into_bytes());
        }
        match path.strip_prefix("/wb/") {
            Some(file) => std::fs::read(workbox::loader_file(&self.node_modules, file)?).ok(),
            None => std::fs::read(inside(&self.www, path.trim_start_matches('/'))?).ok(),
        }
    }
}

/// A running server; stopped with [`Server::stop`].
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    handle: ServerHandle,
    thread: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds 127.0.0.1:0 and serves `site` from a thread of its own (actix runs its own
    /// runtime; the benchmark drives the browser from another).
    pub fn start(site: Arc<Site>) -> anyhow::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(site);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(respond))
                })
                .workers(1)
                .listen(listener)?
                .run();
                let _ = sender.send(server.handle());
                server.await
            })
        });
        let handle = receiver
            .recv()
            .context("the benchmark's server did not start")?;
        Ok(Server {
            base,
            handle,
            thread,
        })
    }

    /// Stops serving and waits for the server's thread.
    pub async fn stop(self) {
        self.handle.stop(false).await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

async fn respond(request: HttpRequest, site: web::Data<Site>) -> HttpResponse {
    let path = request.path().to_owned();
    *site
        .counts
        .lock()
        .expect("counts lock")
        .entry(path.clone())
        .or_default() += 1;
    match path.as_str() {
        "/bench.html" => isolated(
            "text/html",
            b"<!doctype html><title>sw bench</title>".to_vec(),
        ),
        "/__count" => {
            let asked = request.query_string().strip_prefix("path=").unwrap_or("");
            isolated("text/plain", site.count(asked).to_string().into_bytes())
        }
        _ => {
            if let Some(script) = site.scripts.get(path.as_str()) {
                return isolated("text/javascript", script.clone().into_bytes());
            }
            match path.strip_prefix("/wb/") {
                Some(file) => match workbox::loader_file(&site.node_modules, file) {
                    Some(file) => send(&file),
                    None => HttpResponse::NotFound().finish(),
                },
                None => serve_file(&site.www, if path == "/" { "/index.html" } else { &path }),
            }
        }
    }
}

fn serve_file(root: &Path, path: &str) -> HttpResponse {
    match inside(root, path.trim_start_matches('/')) {
        Some(file) => send(&file),
        None => HttpResponse::NotFound().finish(),
    }
}

fn send(file: &Path) -> HttpResponse {
    match std::fs::read(file) {
        Ok(body) => isolated(mime(file), body),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

/// `root/relative`, refusing anything that would climb out of `root`.
fn inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    let plain = relative
        .components()
        .all(|part| matches!(part, Component::Normal(_)));
    plain.then(|| root.join(relative))
}

fn mime(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("html") => "text/html",
        Some("json" | "webmanifest") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn isolated(content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header(("Cross-Origin-Embedder-Policy", "require-corp"))
        .body(body)
}
