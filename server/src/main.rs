//! The `nudge` binary: reads its configuration and runs the server until SIGTERM or Ctrl-C.

use tracing_subscriber::EnvFilter;
use watercooler::{Application, Config};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::load()?;
    let app = Application::build(config).await?;
    // The first line on stdout is a contract: tests and scripts read the address from it.
    println!("listening on http://{}", app.local_addr());
    if let Some(tls) = app.tls_addr() {
        println!("listening on https://localhost:{} (HTTP/2)", tls.port());
    }
    app.run_until_stopped().await
}
