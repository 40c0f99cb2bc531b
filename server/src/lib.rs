//! nudge server (placeholder)
