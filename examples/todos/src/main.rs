//! `nudge-todos`: a shared todo list on nudge's public API. Every browser that shows the list
//! sees each change without a reload, a reload offline shows the last list, and a todo added
//! offline goes up once when the network is back. See `README.md`.

mod api;
mod shell;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use nudge::Nudge;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(about = "A shared todo list on nudge")]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// Where the SQLite database lives.
    #[arg(long, default_value = "data/todos")]
    data_dir: PathBuf,
    /// The app's pages (`index.html`, `app.js`, `routes.js`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/www"))]
    www_dir: PathBuf,
    /// nudge's browser side: `nudge/` (the modules), `sw.js` and `gen/` (the compiled SW,
    /// built by `make sw`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../www"))]
    nudge_dir: PathBuf,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let shell = shell::Shell::open(args.www_dir, args.nudge_dir)?;
    let nudge = Nudge::builder()
        .sqlite(&args.data_dir)
        .migrations(api::MIGRATIONS)
        .build()
        .await?;
    let listener = TcpListener::bind(&args.bind)?;
    // The first stdout line is the contract the tests read the port from.
    println!("listening on http://{}", listener.local_addr()?);

    let app = nudge.clone();
    let server = nudge::serve(&nudge, listener, None, move || {
        let shell = shell.clone();
        app.app()
            .configure(api::configure)
            .configure(move |cfg| shell.configure(cfg))
    })?;
    let pruner = tokio::spawn(nudge.clone().prune_periodically(Duration::from_secs(60)));
    let handle = server.handle();
    let stop = nudge.clone();
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.end_streams();
        handle.stop(true).await;
    };
    let (served, ()) = tokio::join!(server, shutdown);
    pruner.abort();
    nudge.close().await;
    Ok(served?)
}
