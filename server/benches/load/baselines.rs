//! The baselines, served by this binary when run with `--role`:
//! - `ceiling`: actix-web parsing the same JSON body and answering 201, storing nothing;
//! - `floor`: a bare tokio server holding event-stream sockets, which writes one event frame to
//!   all of them whenever it gets a POST, and does nothing else;
//! - `actix-stream`: a plain actix-web handler answering every GET with an event stream that
//!   waits on a channel, to show what actix-web itself costs per open stream.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// Runs one baseline server until killed.
pub fn serve(role: &str) -> anyhow::Result<()> {
    match role {
        "ceiling" => actix_web::rt::System::new().block_on(ceiling()),
        "floor" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(floor()),
        "actix-stream" => actix_web::rt::System::new().block_on(actix_stream()),
        other => anyhow::bail!("unknown role {other:?}"),
    }
}

#[derive(Deserialize)]
struct Body {
    author: String,
    text: String,
}

async fn ceiling() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}", listener.local_addr()?);
    let counter = web::Data::new(AtomicI64::new(0));
    HttpServer::new(move || {
        App::new().app_data(counter.clone()).route(
            "/api/rooms/{room}/messages",
            web::post().to(
                |room: web::Path<String>, body: web::Json<Body>, n: web::Data<AtomicI64>| async move {
                    let id = n.fetch_add(1, Ordering::Relaxed) + 1;
                    HttpResponse::Created().json(json!({
                        "id": id, "room": room.as_str(), "author": body.author,
                        "text": body.text, "event_id": id,
                    }))
                },
            ),
        )
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

async fn actix_stream() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}", listener.local_addr()?);
    HttpServer::new(|| {
        App::new().default_service(web::get().to(|| async {
            let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1024);
            let stream = futures_util::stream::unfold((rx, tx), |(mut rx, tx)| async move {
                let frame = rx.recv().await?;
                Some((Ok::<_, std::io::Error>(frame), (rx, tx)))
            });
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(stream)
        }))
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

async fn floor() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Arc<Vec<u8>>>(64);
    let next_id = Arc::new(AtomicI64::new(0));
    loop {
        let (socket, _) = listener.accept().await?;
        let (tx, next_id) = (tx.clone(), next_id.clone());
        tokio::spawn(async move {
            let _ = floor_connection(socket, tx, next_id).await;
        });
    }
}

/// One connection: event-stream GETs are held and fed from the broadcast; every POST
/// broadcasts one frame and answers 201 with its id.
async fn floor_connection(
    socket: TcpStream,
    tx: broadcast::Sender<Arc<Vec<u8>>>,
    next_id: Arc<AtomicI64>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(socket);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut content_length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        if request_line.starts_with("GET ") {
            let mut rx = tx.subscribe();
            let mut socket = reader.into_inner();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\r\nretry: 3000\n\n")
                .await?;
            while let Ok(frame) = rx.recv().await {
                socket.write_all(&frame).await?;
            }
            return Ok(());
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).await?;
        let id = next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let frame = format!(
            "id: {id}\nevent: changed\ndata: {{\"url\":\"/api/rooms/bench/recent\",\"topic\":\"rooms/bench\",\"etag\":\"\\\"{id}\\\"\"}}\n\n"
        );
        let _ = tx.send(Arc::new(frame.into_bytes()));
        let answer = format!("{{\"event_id\":{id}}}");
        let response = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
}
