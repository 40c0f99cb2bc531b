//! The static side: the app's pages at `/`, nudge's browser modules at `/nudge/`, the compiled
//! ServiceWorker at `/sw.js` and `/gen/`, with a precache manifest of this app's own shell.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};
use anyhow::Context;
use sha2::{Digest, Sha256};

/// Where the files are, and the manifest made from them at startup.
#[derive(Clone)]
pub struct Shell {
    www: PathBuf,
    nudge: PathBuf,
    precache: web::Bytes,
}

impl Shell {
    /// Checks that both directories hold what is served, and hashes the shell.
    pub fn open(www: PathBuf, nudge: PathBuf) -> anyhow::Result<Self> {
        for needed in [www.join("index.html"), nudge.join("gen/nudge_sw.js")] {
            anyhow::ensure!(
                needed.is_file(),
                "{} is missing (the compiled SW is built by `make sw`)",
                needed.display()
            );
        }
        let mut entries = Vec::new();
        manifest(&www, "", &mut entries)?;
        manifest(&nudge.join("nudge"), "/nudge", &mut entries)?;
        let precache = format!(
            "// This app's shell, hashed by nudge-todos at startup.\nself.NUDGE_PRECACHE = {};\n",
            serde_json::Value::Array(entries)
        );
        Ok(Self {
            www,
            nudge,
            precache: precache.into(),
        })
    }

    /// Every file `no-cache` with a validator, so a browser (and the SW's update check) sees a
    /// new version at once.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let precache = self.precache.clone();
        let sw = self.nudge.join("sw.js");
        cfg.service(
            web::scope("")
                .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-cache")))
                // Before `/gen/`, which holds Watercooler's manifest beside the SW.
                .route(
                    "/gen/precache.js",
                    web::get().to(move || {
                        let body = precache.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("text/javascript; charset=utf-8")
                                .body(body)
                        }
                    }),
                )
                .route(
                    "/sw.js",
                    web::get().to(move || {
                        let sw = sw.clone();
                        async move { NamedFile::open(sw) }
                    }),
                )
                .service(Files::new("/gen", self.nudge.join("gen")).use_etag(true))
                .service(Files::new("/nudge", self.nudge.join("nudge")).use_etag(true))
                .service(
                    Files::new("/", &self.www)
                        .index_file("index.html")
                        .use_etag(true)
                        .default_handler(web::to(nudge::error::not_found)),
                ),
        );
    }
}

/// `{url, revision}` of every file under `dir`, served at `prefix`; `index.html` is `/`.
fn manifest(dir: &Path, prefix: &str, out: &mut Vec<serde_json::Value>) -> anyhow::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    names.sort_by_key(|entry| entry.file_name());
    for entry in names {
        let name = entry.file_name().to_string_lossy().into_owned();
        let url = format!("{prefix}/{name}");
        if name.starts_with('.') || name.ends_with(".md") {
            continue;
        } else if entry.file_type()?.is_dir() {
            manifest(&entry.path(), &url, out)?;
        } else {
            let digest = Sha256::digest(std::fs::read(entry.path())?);
            let revision: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let url = if url == "/index.html" {
                "/".into()
            } else {
                url
            };
            out.push(serde_json::json!({ "url": url, "revision": revision }));
        }
    }
    Ok(())
}
