//! nudge ServiceWorker (placeholder)
