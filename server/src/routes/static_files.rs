//! The static web app (Watercooler). Every file is served `no-cache` with a validator, so a
//! browser revalidates it and a new ServiceWorker build is picked up on the next check.

use std::path::Path;

use actix_files::Files;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// Mounts the files of `www_dir` at `/`, with `index.html` for directories.
pub fn configure(cfg: &mut web::ServiceConfig, www_dir: &Path) {
    cfg.service(
        web::scope("")
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-cache")))
            .service(
                Files::new("/", www_dir)
                    .index_file("index.html")
                    .use_etag(true)
                    .use_last_modified(true)
                    .default_handler(web::to(crate::error::not_found)),
            ),
    );
}
