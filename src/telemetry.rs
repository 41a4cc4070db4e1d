//! Logging: one line per HTTP request and per WebSocket connect and close, human-readable
//! by default, JSON for log collectors.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is a level or a list of tracing directives.
/// The server logs to stdout; `confab admin` logs to stderr (`to_stderr`), so that its
/// stdout holds only what it answers (a table, JSON, a password).
pub fn init(filter: &str, format: LogFormat, to_stderr: bool) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log filter {filter:?}: {e}"))?;
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
        });
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    installed.map_err(|e| e.to_string())
}
