//! The benchmark's own HTTP server: one origin serving both ServiceWorkers and what they load.
//!
//! - `/` and every file of `www/`: nudge's shell, its loader (`/sw.js`) and `www/gen/`.
//! - `/wb-sw.js`: the Workbox 7 module ServiceWorker with the same routes as nudge's.
//! - `/node_modules/…`: Workbox's ES modules, with their bare imports (`workbox-core/…`,
//!   `idb`) made absolute and `process.env.NODE_ENV` set to `"production"`, which a bundler
//!   would do; workers have no import maps, so this is the only way to load them unbundled.
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

/// What the server serves from, and what it has seen.
pub struct Site {
    /// nudge's `www/` (with `gen/` built).
    pub www: PathBuf,
    /// `node_modules` holding Workbox.
    pub node_modules: PathBuf,
    /// The Workbox ServiceWorker's source.
    pub workbox_sw: String,
    counts: Mutex<HashMap<String, u64>>,
    modules: Mutex<BTreeSet<PathBuf>>,
}

impl Site {
    /// A site over these folders.
    pub fn new(www: PathBuf, node_modules: PathBuf, workbox_sw: String) -> Self {
        Site {
            www,
            node_modules,
            workbox_sw,
            counts: Mutex::default(),
            modules: Mutex::default(),
        }
    }

    /// The requests that reached the server for `path`.
    pub fn count(&self, path: &str) -> u64 {
        let counts = self.counts.lock().expect("counts lock");
        counts.get(path).copied().unwrap_or(0)
    }

    /// Workbox's module files that browsers loaded, with their bodies as served.
    pub fn workbox_modules(&self) -> Vec<Vec<u8>> {
        let modules = self.modules.lock().expect("modules lock").clone();
        modules
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .map(|source| rewrite_module(&source).into_bytes())
            .collect()
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
        "/wb-sw.js" => isolated("text/javascript", site.workbox_sw.clone().into_bytes()),
        "/__count" => {
            let asked = request.query_string().strip_prefix("path=").unwrap_or("");
            isolated("text/plain", site.count(asked).to_string().into_bytes())
        }
        _ => match path.strip_prefix("/node_modules/") {
            Some(module) => serve_module(&site, module),
            None => serve_file(&site.www, if path == "/" { "/index.html" } else { &path }),
        },
    }
}

fn serve_module(site: &Site, module: &str) -> HttpResponse {
    let Some(file) = inside(&site.node_modules, module) else {
        return HttpResponse::NotFound().finish();
    };
    match std::fs::read_to_string(&file) {
        Ok(source) => {
            site.modules.lock().expect("modules lock").insert(file);
            isolated("text/javascript", rewrite_module(&source).into_bytes())
        }
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

/// What a bundler would do to Workbox's sources: resolve bare imports, fix the build mode.
fn rewrite_module(source: &str) -> String {
    source
        .replace("from 'workbox-", "from '/node_modules/workbox-")
        .replace("import 'workbox-", "import '/node_modules/workbox-")
        .replace("from 'idb'", "from '/node_modules/idb/build/index.js'")
        .replace("process.env.NODE_ENV", "\"production\"")
}

fn serve_file(root: &Path, path: &str) -> HttpResponse {
    let Some(file) = inside(root, path.trim_start_matches('/')) else {
        return HttpResponse::NotFound().finish();
    };
    match std::fs::read(&file) {
        Ok(body) => isolated(mime(&file), body),
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
