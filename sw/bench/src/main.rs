//! `make bench-sw`: nudge's ServiceWorker beside Workbox 7, in the same headless Chromium.
//!
//! Prints a Markdown table: the machine, the Chromium version, the SWs' code sizes, the cold
//! start (from `register()` to the first response the SW serves) and the time to serve 1,000
//! cache hits, for both SWs and as a ratio. Both SWs have the same routes (the shell
//! precached and served cache-first, `/api/` network-first), are served by this program's
//! own HTTP server ([`server`]) on port 0, and are measured inside the page with
//! `performance.now()`.
//!
//! Each run is a fresh browser profile (nothing registered, nothing cached, no compiled code
//! kept), and the rounds alternate which SW goes first, so neither profits from a warmer
//! machine. Workbox comes from the npm registry into `target/workbox/` (git-ignored), used by
//! this benchmark only, never by the product.
//!
//! Options: `--rounds N` (default 3), `--hits N` (default 1000), `--www DIR` (default `www`).

mod browser;
mod server;
mod stats;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use browser::Driver;
use server::{Server, Site};
use stats::{gzip_len, median, percentile};

/// The URL both SWs serve from their precache in every timed fetch: a file of the shell.
const PROBE: &str = "/style.css";

/// The Workbox packages the benchmark installs, and which the SW below imports.
const WORKBOX_PACKAGES: &[&str] = &[
    "workbox-core@7",
    "workbox-routing@7",
    "workbox-strategies@7",
    "workbox-precaching@7",
    "workbox-expiration@7",
];

/// One of the two ServiceWorkers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sw {
    Nudge,
    Workbox,
}

impl Sw {
    fn script(self) -> &'static str {
        match self {
            Sw::Nudge => "/sw.js",
            Sw::Workbox => "/wb-sw.js",
        }
    }

    fn module(self) -> bool {
        self == Sw::Workbox
    }
}

/// What one run in a fresh profile measured.
struct Run {
    cold_ms: f64,
    hits_ms: Vec<f64>,
}

struct Options {
    rounds: usize,
    hits: usize,
    www: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        rounds: 3,
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
            "--hits" => options.hits = value.parse()?,
            "--www" => options.www = value.into(),
            _ => bail!("unknown option {flag} (--rounds N, --hits N, --www DIR)"),
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
    let node_modules = install_workbox(Path::new("target/workbox"))?;
    let site = Arc::new(Site::new(
        options.www.clone(),
        node_modules.clone(),
        workbox_sw(&precache)?,
    ));
    let server = Server::start(Arc::clone(&site))?;
    let driver = Driver::start().await?;

    let mut nudge = Vec::new();
    let mut workbox = Vec::new();
    for round in 0..options.rounds {
        let order = if round % 2 == 0 {
            [Sw::Nudge, Sw::Workbox]
        } else {
            [Sw::Workbox, Sw::Nudge]
        };
        for sw in order {
            eprint!("round {}/{}: {sw:?}… ", round + 1, options.rounds);
            let _ = std::io::stderr().flush();
            let run = measure(&driver, &server.base, &site, sw, options.hits).await?;
            eprintln!(
                "cold start {:.1} ms, hit median {:.3} ms",
                run.cold_ms,
                median(&run.hits_ms)
            );
            match sw {
                Sw::Nudge => nudge.push(run),
                Sw::Workbox => workbox.push(run),
            }
        }
    }
    let workbox_code = site.workbox_modules();
    driver.stop().await;
    server.stop().await;

    let wasm = wasm_bytes(&gen.join("nudge_sw_wasm.js"))?;
    let nudge_scripts: Vec<Vec<u8>> = ["sw.js", "gen/nudge_sw.js", "gen/nudge_sw_wasm.js"]
        .iter()
        .map(|file| std::fs::read(options.www.join(file)))
        .collect::<Result<_, _>>()?;
    let sizes = Sizes {
        wasm_raw: wasm.len(),
        wasm_gz: gzip_len(&wasm),
        nudge_raw: nudge_scripts.iter().map(Vec::len).sum(),
        nudge_gz: nudge_scripts.iter().map(|s| gzip_len(s)).sum(),
        workbox_files: workbox_code.len(),
        workbox_raw: workbox_code.iter().map(Vec::len).sum(),
        workbox_gz: workbox_code.iter().map(|s| gzip_len(s)).sum(),
    };
    let header = Header {
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        chromium: chromium_version(),
        workbox: workbox_version(&node_modules),
        rounds: options.rounds,
        hits: options.hits,
    };
    print!("{}", report(&header, &sizes, &nudge, &workbox));
    Ok(())
}

/// One run: a fresh profile registers `sw`, waits for its first response, then times `hits`
/// sequential fetches of [`PROBE`] served from its precache.
async fn measure(
    driver: &Driver,
    base: &str,
    site: &Site,
    sw: Sw,
    hits: usize,
) -> anyhow::Result<Run> {
    let before = site.count(PROBE);
    let session = driver.session().await?;
    let result = async {
        session.goto(&format!("{base}/bench.html")).await?;
        let cold = session
            .execute_async(
                include_str!("cold_start.js"),
                vec![json!(sw.script()), json!(sw.module()), json!(PROBE)],
            )
            .await?;
        let cold = checked(&cold, "cold start")?;
        let hits = session
            .execute_async(include_str!("hits.js"), vec![json!(PROBE), json!(hits)])
            .await?;
        let hits = checked(&hits, "cache hits")?;
        anyhow::Ok((cold, hits))
    }
    .await;
    session.quit().await?;
    let (cold, hits) = result?;
    // Install fetched the probe once; any other request means a timed fetch was not a hit.
    let reached = site.count(PROBE) - before;
    if reached != 1 {
        bail!("{sw:?}: the server saw {reached} requests for {PROBE}, expected only install's");
    }
    Ok(Run {
        cold_ms: cold["ms"].as_f64().context("cold start: no ms")?,
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

/// `npm install`s Workbox 7 into `dir` unless it is there; returns its `node_modules`.
fn install_workbox(dir: &Path) -> anyhow::Result<PathBuf> {
    let node_modules = dir.join("node_modules");
    let complete = WORKBOX_PACKAGES.iter().all(|package| {
        let name = package.trim_end_matches("@7");
        node_modules.join(name).join("package.json").exists()
    });
    if !complete {
        eprintln!("installing Workbox 7 from npm into {}", dir.display());
        std::fs::create_dir_all(dir)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .args(WORKBOX_PACKAGES)
            .status()
            .context("running npm")?;
        if !status.success() {
            bail!("npm install of Workbox failed ({status})");
        }
    }
    Ok(node_modules)
}

/// The Workbox ServiceWorker: nudge's routes in Workbox's terms, over nudge's own manifest.
fn workbox_sw(precache_js: &str) -> anyhow::Result<String> {
    let (start, end) = (precache_js.find('['), precache_js.rfind(']'));
    let (Some(start), Some(end)) = (start, end) else {
        bail!("www/gen/precache.js holds no manifest array");
    };
    let manifest = &precache_js[start..=end];
    Ok(format!(
        "// Workbox 7 with nudge's routes, for the benchmark only.\n\
         {}\nconst manifest = {manifest};\n{}",
        "import { clientsClaim } from '/node_modules/workbox-core/index.js';\n\
         import { precacheAndRoute } from '/node_modules/workbox-precaching/index.js';\n\
         import { registerRoute } from '/node_modules/workbox-routing/index.js';\n\
         import { NetworkFirst } from '/node_modules/workbox-strategies/index.js';\n\
         import { ExpirationPlugin } from '/node_modules/workbox-expiration/index.js';",
        "self.skipWaiting();\n\
         clientsClaim();\n\
         precacheAndRoute(manifest);\n\
         registerRoute(\n\
           ({ url }) => url.origin === self.location.origin && url.pathname.startsWith('/api/')\n\
             && url.pathname !== '/api/events',\n\
           new NetworkFirst({ cacheName: 'wb-api', plugins: [\n\
             new ExpirationPlugin({ maxEntries: 500, maxAgeSeconds: 30 * 24 * 3600 })] }),\n\
         );\n"
    ))
}

/// The wasm module that `www/gen/nudge_sw_wasm.js` carries as base64.
fn wasm_bytes(file: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(file)?;
    let start = text
        .find("atob('")
        .context("no base64 in nudge_sw_wasm.js")?
        + 6;
    let end = start + text[start..].find('\'').context("unterminated base64")?;
    stats::base64_decode(&text[start..end]).context("bad base64 in nudge_sw_wasm.js")
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

fn workbox_version(node_modules: &Path) -> String {
    let manifest = std::fs::read_to_string(node_modules.join("workbox-core/package.json"));
    manifest
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "7".to_owned())
}

struct Header {
    cpu: String,
    cores: usize,
    chromium: String,
    workbox: String,
    rounds: usize,
    hits: usize,
}

struct Sizes {
    wasm_raw: usize,
    wasm_gz: usize,
    nudge_raw: usize,
    nudge_gz: usize,
    workbox_files: usize,
    workbox_raw: usize,
    workbox_gz: usize,
}

fn report(header: &Header, sizes: &Sizes, nudge: &[Run], workbox: &[Run]) -> String {
    let cold = |runs: &[Run]| median(&runs.iter().map(|r| r.cold_ms).collect::<Vec<_>>());
    let pooled = |runs: &[Run]| {
        runs.iter()
            .flat_map(|r| r.hits_ms.clone())
            .collect::<Vec<_>>()
    };
    let total = |runs: &[Run]| {
        median(
            &runs
                .iter()
                .map(|r| r.hits_ms.iter().sum())
                .collect::<Vec<_>>(),
        )
    };
    let (nudge_hits, workbox_hits) = (pooled(nudge), pooled(workbox));
    let row = |name: &str, n: f64, w: f64, unit: &str, digits: usize| {
        format!(
            "| {name} | {n:.digits$} {unit} | {w:.digits$} {unit} | {:.2} |\n",
            n / w
        )
    };
    let mut out = String::new();
    out += "### ServiceWorker: nudge (Rust → wasm) beside Workbox\n\n";
    out += &format!(
        "{} ({} cores), {}, Workbox {}; {} rounds in fresh profiles, order alternating; \
         {} sequential cache hits of `{PROBE}` (precached) per run.\n\n",
        header.cpu, header.cores, header.chromium, header.workbox, header.rounds, header.hits
    );
    out += "| | nudge | Workbox | nudge / Workbox |\n| --- | ---: | ---: | ---: |\n";
    out += &format!(
        "| wasm, raw / gzipped | {} B / {} B | — | — |\n",
        sizes.wasm_raw, sizes.wasm_gz
    );
    out += &format!(
        "| SW scripts loaded, raw / gzipped | {} B / {} B (loader, glue, wasm as base64) | \
         {} B / {} B ({} modules, unminified) | {:.2} gz |\n",
        sizes.nudge_raw,
        sizes.nudge_gz,
        sizes.workbox_raw,
        sizes.workbox_gz,
        sizes.workbox_files,
        sizes.nudge_gz as f64 / sizes.workbox_gz as f64
    );
    out += &row(
        "cold start: register() → first response, median",
        cold(nudge),
        cold(workbox),
        "ms",
        1,
    );
    out += &row(
        "cache hit, median",
        median(&nudge_hits),
        median(&workbox_hits),
        "ms",
        3,
    );
    out += &row(
        "cache hit, p90",
        percentile(&nudge_hits, 0.9),
        percentile(&workbox_hits, 0.9),
        "ms",
        3,
    );
    out += &row(
        &format!("{} hits, total (median run)", header.hits),
        total(nudge),
        total(workbox),
        "ms",
        0,
    );
    out
}
