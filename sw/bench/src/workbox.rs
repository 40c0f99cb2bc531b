//! Workbox as its users ship it, installed from the npm registry into `target/workbox/`
//! (git-ignored; used by this benchmark only, never by the product), in two forms:
//!
//! - [`loader_sw`]: the `workbox-sw` loader, which `importScripts` each package's production
//!   build (`workbox-core.prod.js`, …) on first use, as Workbox's own documentation and
//!   `generateSW` ship it.
//! - [`bundle_sw`]: the same routes written against the ES modules and bundled into one
//!   minified classic script with `NODE_ENV=production` (esbuild), as an `injectManifest`
//!   setup's bundler makes it.
//!
//! Both have nudge's routes: the shell precached and served cache-first, `/api/` (but the
//! event stream) network-first with expiration.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::Value;

/// The Workbox release measured; every package at exactly this version.
pub const VERSION: &str = "7.4.1";
/// The bundler for [`bundle_sw`], pinned like Workbox.
const ESBUILD: &str = "0.25.12";
/// The packages the SWs below use (`workbox-sw` loads the others' `.prod.js` builds).
pub const PACKAGES: &[&str] = &[
    "workbox-sw",
    "workbox-core",
    "workbox-routing",
    "workbox-strategies",
    "workbox-precaching",
    "workbox-expiration",
];

/// `npm install`s the pinned packages into `dir` unless they are there; returns its
/// `node_modules`.
pub fn install(dir: &Path) -> anyhow::Result<PathBuf> {
    let node_modules = dir.join("node_modules");
    let have = |name: &str, version: &str| installed_version(&node_modules, name) == version;
    let complete = PACKAGES.iter().all(|p| have(p, VERSION)) && have("esbuild", ESBUILD);
    if !complete {
        eprintln!(
            "installing Workbox {VERSION} and esbuild {ESBUILD} from npm into {}",
            dir.display()
        );
        std::fs::create_dir_all(dir)?;
        let mut specs: Vec<String> = PACKAGES.iter().map(|p| format!("{p}@{VERSION}")).collect();
        specs.push(format!("esbuild@{ESBUILD}"));
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--save-exact",
                "--prefix",
            ])
            .arg(dir)
            .args(&specs)
            .status()
            .context("running npm")?;
        if !status.success() {
            bail!("npm install of Workbox failed ({status})");
        }
    }
    Ok(node_modules)
}

/// The `version` in `node_modules/<name>/package.json`, or an empty string.
pub fn installed_version(node_modules: &Path, name: &str) -> String {
    std::fs::read_to_string(node_modules.join(name).join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Where `/wb/<file>` (what `workbox-sw` asks for with `modulePathPrefix: '/wb/'`) lives:
/// `workbox-core.prod.js` is `workbox-core/build/workbox-core.prod.js`.
pub fn loader_file(node_modules: &Path, file: &str) -> Option<PathBuf> {
    let package = file
        .strip_suffix(".prod.js")
        .or_else(|| file.strip_suffix(".js"))?;
    let known = PACKAGES.contains(&package) && !file.contains('/');
    known.then(|| node_modules.join(package).join("build").join(file))
}

/// The routes, written once for both forms: `{wb}` is how each names Workbox's exports.
fn routes(manifest: &str, wb: impl Fn(&str, &str) -> String) -> String {
    format!(
        "const manifest = {manifest};\n\
         self.skipWaiting();\n\
         {clients_claim}();\n\
         {precache_and_route}(manifest);\n\
         {register_route}(\n\
         \x20 ({{ url }}) => url.origin === self.location.origin && url.pathname.startsWith('/api/')\n\
         \x20   && url.pathname !== '/api/events',\n\
         \x20 new {network_first}({{ cacheName: 'wb-api', plugins: [\n\
         \x20   new {expiration_plugin}({{ maxEntries: 500, maxAgeSeconds: 30 * 24 * 3600 }})] }}),\n\
         );\n",
        clients_claim = wb("core", "clientsClaim"),
        precache_and_route = wb("precaching", "precacheAndRoute"),
        register_route = wb("routing", "registerRoute"),
        network_first = wb("strategies", "NetworkFirst"),
        expiration_plugin = wb("expiration", "ExpirationPlugin"),
    )
}

/// The SW that uses the `workbox-sw` loader and the packages' production builds.
pub fn loader_sw(manifest: &str) -> String {
    format!(
        "// Workbox {VERSION} through workbox-sw and its .prod.js builds, for the benchmark only.\n\
         importScripts('/wb/workbox-sw.js');\n\
         workbox.setConfig({{ modulePathPrefix: '/wb/', debug: false }});\n{}",
        routes(manifest, |module, name| format!("workbox.{module}.{name}"))
    )
}

/// The SW bundled from Workbox's ES modules into one minified script, built in `dir`.
pub fn bundle_sw(dir: &Path, manifest: &str) -> anyhow::Result<String> {
    let imports = [
        ("core", "clientsClaim"),
        ("precaching", "precacheAndRoute"),
        ("routing", "registerRoute"),
        ("strategies", "NetworkFirst"),
        ("expiration", "ExpirationPlugin"),
    ]
    .iter()
    .map(|(module, name)| format!("import {{ {name} }} from 'workbox-{module}';\n"))
    .collect::<String>();
    let entry = dir.join("wb-bundle-entry.mjs");
    let out = dir.join("wb-bundle.js");
    std::fs::write(
        &entry,
        imports + &*routes(manifest, |_, name| name.to_owned()),
    )?;
    let status = Command::new(dir.join("node_modules/.bin/esbuild"))
        .arg(&entry)
        .args([
            "--bundle",
            "--minify",
            "--format=iife",
            "--log-level=warning",
            "--define:process.env.NODE_ENV=\"production\"",
        ])
        .arg(format!("--outfile={}", out.display()))
        .status()
        .context("running esbuild")?;
    if !status.success() {
        bail!("esbuild failed to bundle Workbox ({status})");
    }
    Ok(std::fs::read_to_string(&out)?)
}
