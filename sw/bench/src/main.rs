//! `make bench-sw`: nudge's ServiceWorker beside Workbox as its users ship it, in the same
//! headless Chromium.
//!
//! Prints a Markdown table: the machine, the Chromium version, each SW's script sizes, the cold
//! start of a first visit (from `register()` to the first response the SW serves), the restart
//! of a stopped SW (DevTools stops every worker, as the browser does with idle ones; then one
//! fetch, timed until its body is read) and the time of a cache hit. The peers are Workbox
//! through its `workbox-sw` loader and `.prod.js` builds, and Workbox bundled into one minified
//! script ([`workbox`]). All SWs have the same routes (the shell precached and served
//! cache-first, `/api/` network-first), are served by this program's own HTTP server
//! ([`server`]) on port 0, and are measured inside the page with `performance.now()`.
//!
//! Each run is a fresh browser profile (nothing registered, nothing cached, no compiled code
//! kept), and the rounds rotate which SW goes first, so none profits from a warmer machine.
//! The machine's load average is printed with the table: on a busy machine, read the spread.
//!
//! Options: `--rounds N` (default 3), `--restarts N` per run (default 5), `--hits N` (default
//! 1000), `--www DIR` (default `www`).

mod browser;
mod server;
mod stats;
mod workbox;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use browser::Driver;
use server::{Server, Site};
use stats::{gzip_len, median, percentile};

/// The URL every SW serves from its precache in every timed fetch: a file of the shell.
const PROBE: &str = "/style.css";

/// One of the ServiceWorkers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sw {
    Nudge,
    WorkboxLoader,
    WorkboxBundle,
}

impl Sw {
    const ALL: [Sw; 3] = [Sw::Nudge, Sw::WorkboxLoader, Sw::WorkboxBundle];

    fn script(self) -> &'static str {
        match self {
            Sw::Nudge => "/sw.js",
            Sw::WorkboxLoader => "/wb-sw.js",
            Sw::WorkboxBundle => "/wb-bundle.js",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Sw::Nudge => "nudge (Rust → wasm)",
            Sw::WorkboxLoader => "Workbox: workbox-sw + .prod.js",
            Sw::WorkboxBundle => "Workbox: one bundle (esbuild, minified)",
        }
    }

    /// Every script the SW evaluates at start, as paths on the benchmark's server.
    fn scripts(self, site: &Site) -> Vec<String> {
        match self {
            Sw::Nudge => [
                "/sw.js",
                "/gen/nudge_sw.js",
                "/gen/nudge_sw_wasm.js",
                "/gen/precache.js",
            ]
            .map(str::to_owned)
            .to_vec(),
            Sw::WorkboxLoader => std::iter::once(self.script().to_owned())
                .chain(site.requested("/wb/"))
                .collect(),
            Sw::WorkboxBundle => vec![self.script().to_owned()],
        }
    }
}

/// What one run in a fresh profile measured.
#[derive(Default)]
struct Run {
    cold_ms: f64,
    restarts_ms: Vec<f64>,
    hits_ms: Vec<f64>,
}

struct Options {
    rounds: usize,
    restarts: usize,
    hits: usize,
    www: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        rounds: 3,
        restarts: 5,
        hits: 1000,
        www: PathBuf::from("www"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rounds" => options.rounds = value.parse()?,
            "--restarts" => options.restarts = value.parse()?,
            "--hits" => options.hits = value.parse()?,
            "--www" => options.www = value.into(),
            _ => bail!("unknown option {flag} (--rounds N, --restarts N, --hits N, --www DIR)"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let gen = options.www.join("gen");
    let precache = std::fs::read_to_string(gen.join("precache.js"))
        .context("www/gen/precache.js is missing: run `make sw` first")?;
    let manifest = manifest(&precache)?;
    let dir = Path::new("target/workbox");
    let node_modules = workbox::install(dir)?;
    let scripts = HashMap::from([
        (Sw::WorkboxLoader.script(), workbox::loader_sw(manifest)),
        (
            Sw::WorkboxBundle.script(),
            workbox::bundle_sw(dir, manifest)?,
        ),
    ]);
    let site = Arc::new(Site::new(
        options.www.clone(),
        node_modules.clone(),
        scripts,
    ));
    let load = load_average();
    let server = Server::start(Arc::clone(&site))?;
    let driver = Driver::start().await?;

    let mut runs: HashMap<Sw, Vec<Run>> = HashMap::new();
    for round in 0..options.rounds {
        let mut order = Sw::ALL;
        order.rotate_left(round % Sw::ALL.len());
        for sw in order {
            eprint!("round {}/{}: {sw:?}… ", round + 1, options.rounds);
            let _ = std::io::stderr().flush();
            let run = measure(&driver, &server.base, &site, sw, &options).await?;
            eprintln!(
                "cold start {:.1} ms, restart median {:.1} ms, hit median {:.3} ms",
                run.cold_ms,
                median(&run.restarts_ms),
                median(&run.hits_ms)
            );
            runs.entry(sw).or_default().push(run);
        }
    }
    driver.stop().await;
    server.stop().await;

    let wasm = wasm_bytes(&gen.join("nudge_sw_wasm.js"))?;
    let sizes = Sw::ALL.map(|sw| {
        let bodies: Vec<Vec<u8>> = sw
            .scripts(&site)
            .iter()
            .filter_map(|p| site.body(p))
            .collect();
        ScriptSizes {
            files: bodies.len(),
            raw: bodies.iter().map(Vec::len).sum(),
            gz: bodies.iter().map(|b| gzip_len(b)).sum(),
        }
    });
    let header = Header {
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load: format!("{load} → {}", load_average()),
        chromium: chromium_version(),
        workbox: workbox::installed_version(&node_modules, "workbox-core"),
        rounds: options.rounds,
        restarts: options.restarts,
        hits: options.hits,
    };
    let results = Sw::ALL.map(|sw| runs.remove(&sw).unwrap_or_default());
    print!(
        "{}",
        report(&header, (wasm.len(), gzip_len(&wasm)), &sizes, &results)
    );
    Ok(())
}

/// One run: a fresh profile registers `sw`, waits for its first response, times `hits`
/// sequential fetches of [`PROBE`] served from its precache, then stops the SW `restarts`
/// times and times the fetch that starts it again.
async fn measure(
    driver: &Driver,
    base: &str,
    site: &Site,
    sw: Sw,
    options: &Options,
) -> anyhow::Result<Run> {
    let before = site.count(PROBE);
    let session = driver.session().await?;
    let result = async {
        session.goto(&format!("{base}/bench.html")).await?;
        let cold = session
            .execute_async(
                include_str!("cold_start.js"),
                vec![json!(sw.script()), json!(PROBE)],
            )
            .await?;
        let cold = checked(&cold, "cold start")?;
        let hits = session
            .execute_async(
                include_str!("hits.js"),
                vec![json!(PROBE), json!(options.hits)],
            )
            .await?;
        let hits = checked(&hits, "cache hits")?;
        let mut restarts = Vec::new();
        for _ in 0..options.restarts {
            session.stop_service_workers().await?;
            let restart = session
                .execute_async(include_str!("restart.js"), vec![json!(PROBE)])
                .await?;
            let restart = checked(&restart, "restart")?;
            restarts.push(restart["ms"].as_f64().context("restart: no ms")?);
        }
        anyhow::Ok((cold, hits, restarts))
    }
    .await;
    session.quit().await?;
    let (cold, hits, restarts_ms) = result?;
    // Install fetched the probe once; any other request means a timed fetch was not a hit.
    let reached = site.count(PROBE) - before;
    if reached != 1 {
        bail!("{sw:?}: the server saw {reached} requests for {PROBE}, expected only install's");
    }
    Ok(Run {
        cold_ms: cold["ms"].as_f64().context("cold start: no ms")?,
        restarts_ms,
        hits_ms: hits["times"]
            .as_array()
            .context("cache hits: no times")?
            .iter()
            .filter_map(Value::as_f64)
            .collect(),
    })
}

/// The page's answer, or the error it reported.
fn checked(value: &Value, what: &str) -> anyhow::Result<Value> {
    match value.get("error") {
        Some(error) => bail!("{what} failed in the page: {error}"),
        None => Ok(value.clone()),
    }
}

/// The manifest array of `www/gen/precache.js`, which the peers precache too.
fn manifest(precache_js: &str) -> anyhow::Result<&str> {
    let (start, end) = (precache_js.find('['), precache_js.rfind(']'));
    let (Some(start), Some(end)) = (start, end) else {
        bail!("www/gen/precache.js holds no manifest array");
    };
    Ok(&precache_js[start..=end])
}

/// The wasm module that `www/gen/nudge_sw_wasm.js` carries as base64: its last `'…'` string.
fn wasm_bytes(file: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(file)?;
    let end = text.rfind('\'').context("no base64 in nudge_sw_wasm.js")?;
    let start = text[..end]
        .rfind('\'')
        .context("no base64 in nudge_sw_wasm.js")?
        + 1;
    stats::base64_decode(&text[start..end]).context("bad base64 in nudge_sw_wasm.js")
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown CPU".to_owned(),
            |(_, model)| model.trim().to_owned(),
        )
}

fn chromium_version() -> String {
    Command::new(browser::CHROMIUM)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned())
}

struct Header {
    cpu: String,
    cores: usize,
    load: String,
    chromium: String,
    workbox: String,
    rounds: usize,
    restarts: usize,
    hits: usize,
}

/// The scripts a SW evaluates at start.
struct ScriptSizes {
    files: usize,
    raw: usize,
    gz: usize,
}

/// `median (min–max)` of `values`, in ms.
fn spread(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.digits$} ({min:.digits$}–{max:.digits$})",
        median(values)
    )
}

fn report(
    header: &Header,
    wasm: (usize, usize),
    sizes: &[ScriptSizes; 3],
    runs: &[Vec<Run>; 3],
) -> String {
    let cold = |r: &[Run]| r.iter().map(|r| r.cold_ms).collect::<Vec<_>>();
    let restarts = |r: &[Run]| {
        r.iter()
            .flat_map(|r| r.restarts_ms.clone())
            .collect::<Vec<_>>()
    };
    let hits = |r: &[Run]| r.iter().flat_map(|r| r.hits_ms.clone()).collect::<Vec<_>>();
    // One row: each SW's cell, then nudge's median over each peer's.
    let row = |name: &str, values: &dyn Fn(&[Run]) -> Vec<f64>, digits: usize| {
        let all: Vec<Vec<f64>> = runs.iter().map(|r| values(r)).collect();
        let cells: Vec<String> = all.iter().map(|v| spread(v, digits)).collect();
        let ratios: Vec<String> = all[1..]
            .iter()
            .map(|peer| format!("{:.2}", median(&all[0]) / median(peer)))
            .collect();
        format!(
            "| {name} | {} | {} |\n",
            cells.join(" | "),
            ratios.join(" / ")
        )
    };
    let mut out = String::new();
    out += "### ServiceWorker: nudge (Rust → wasm) beside Workbox as its users ship it\n\n";
    out += &format!(
        "{} ({} cores, load average {}), {}, Workbox {}; {} rounds in fresh profiles, order \
         rotating; per run: one first visit, {} restarts of the stopped SW, {} sequential cache \
         hits of `{PROBE}` (precached). Times in ms: median (min–max) over all runs.\n\n",
        header.cpu,
        header.cores,
        header.load,
        header.chromium,
        header.workbox,
        header.rounds,
        header.restarts,
        header.hits
    );
    out += &format!(
        "| | {} | nudge ÷ each Workbox |\n| --- |{}\n",
        Sw::ALL.map(Sw::label).join(" | "),
        " ---: |".repeat(Sw::ALL.len() + 1)
    );
    out += &format!(
        "| wasm, raw / gzipped | {} B / {} B | — | — | — |\n",
        wasm.0, wasm.1
    );
    let size_cells: Vec<String> = sizes
        .iter()
        .map(|s| format!("{} B / {} B ({} files)", s.raw, s.gz, s.files))
        .collect();
    let size_ratios: Vec<String> = sizes[1..]
        .iter()
        .map(|peer| format!("{:.2}", sizes[0].gz as f64 / peer.gz as f64))
        .collect();
    out += &format!(
        "| SW scripts evaluated at start, raw / gzipped | {} | {} gz |\n",
        size_cells.join(" | "),
        size_ratios.join(" / ")
    );
    out += &row(
        "first visit: register() → first controlled response",
        &cold,
        1,
    );
    out += &row(
        "restart of a stopped SW: next fetch → response",
        &restarts,
        1,
    );
    out += &row("cache hit", &hits, 3);
    out += &row(
        "cache hit, p90 of each run",
        &|r: &[Run]| r.iter().map(|r| percentile(&r.hits_ms, 0.9)).collect(),
        3,
    );
    out
}
