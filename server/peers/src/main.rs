//! `nudge-bench-peers --role actix-web-lab`: the SSE broadcaster of actix-web-lab as its
//! documentation and the actix examples show it (a `Vec` of per-client channels of 10 behind a
//! mutex, every broadcast sent to each in turn), serving the same wire as nudge's benchmark
//! client speaks: `GET` anything opens a stream, `POST /api/rooms/{room}/messages` stores
//! nothing, broadcasts one `changed` event to every stream and answers 201 with its id.
//!
//! The first line on stdout is `listening on http://ADDR`, as for every server the benchmark
//! starts.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use actix_web::{web, App, HttpResponse, HttpServer, Responder};
use actix_web_lab::sse::{self, Sse};
use serde_json::json;
use tokio::sync::mpsc;

/// Each client's channel, as in the examples.
const CLIENT_BUFFER: usize = 10;

#[derive(Default)]
struct Broadcaster {
    clients: Mutex<Vec<mpsc::Sender<sse::Event>>>,
    next_id: AtomicI64,
}

impl Broadcaster {
    async fn new_client(&self) -> impl Responder {
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        let _ = tx.send(sse::Data::new("connected").into()).await;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        Sse::from_infallible_receiver(rx)
    }

    async fn broadcast(&self, event: sse::Data) {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let sends = clients
            .iter()
            .map(|client| client.send(event.clone().into()));
        futures_util::future::join_all(sends).await;
    }
}

async fn events(broadcaster: web::Data<Broadcaster>) -> impl Responder {
    broadcaster.new_client().await
}

async fn post(room: web::Path<String>, broadcaster: web::Data<Broadcaster>) -> HttpResponse {
    let id = broadcaster.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let data = json!({
        "url": format!("/api/rooms/{room}/recent"),
        "topic": format!("rooms/{room}"),
        "etag": format!("\"{id}\""),
    });
    let event = sse::Data::new(data.to_string())
        .id(id.to_string())
        .event("changed");
    broadcaster.broadcast(event).await;
    HttpResponse::Created().json(json!({ "event_id": id }))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .skip_while(|a| *a != "--role")
        .nth(1)
        .map(String::as_str)
    {
        Some("actix-web-lab") => actix_web::rt::System::new().block_on(serve()),
        other => anyhow::bail!("unknown role {other:?}: use --role actix-web-lab"),
    }
}

async fn serve() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}", listener.local_addr()?);
    let broadcaster = web::Data::new(Broadcaster::default());
    HttpServer::new(move || {
        App::new()
            .app_data(broadcaster.clone())
            .route("/api/rooms/{room}/messages", web::post().to(post))
            .default_service(web::get().to(events))
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}
