//! Configuration: raw flags and environment variables ([`Config`]), checked once into the
//! [`Settings`] the server runs with. Nothing reads the environment after start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::limits::LimitSettings;

/// Confab: a self-hostable realtime chat server.
///
/// With no configuration it serves HTTP and WebSocket on 127.0.0.1:8080 and keeps its data
/// in ./confab-data. Every flag can also be set by the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(name = "confab", version)]
pub struct Config {
    /// Address to listen on for HTTP and WebSocket.
    #[arg(long, env = "CONFAB_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Directory for uploaded files and the embedded database; created on first start.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./confab-data", global = true)]
    pub data_dir: PathBuf,

    /// The database: unset for the embedded SQLite database in the data directory, or a
    /// PostgreSQL URL such as postgres://confab:secret@db.example.com/confab.
    #[arg(long, env = "CONFAB_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Seconds a starting node keeps trying to reach a database server that refuses or
    /// does not answer yet (one started beside it, say) before it gives up. 0 gives up at
    /// once.
    #[arg(long, env = "CONFAB_DATABASE_WAIT_SECS", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub database_wait_secs: u64,

    /// Where to serve Prometheus metrics (GET /metrics), apart from the public address so
    /// that only the monitoring network reaches them: e.g. 127.0.0.1:9090. Unset, /metrics
    /// is served on --addr with everything else.
    #[arg(long, env = "CONFAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Redis, to run several nodes on one PostgreSQL database behind a load balancer:
    /// e.g. redis://redis.internal:6379. Unset, a node keeps its events to itself.
    #[arg(long, env = "CONFAB_REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Proxies (addresses or networks, comma-separated: 10.0.0.0/8,127.0.0.1) whose
    /// X-Forwarded-For header names the client. From anyone else the header is ignored,
    /// and the client is the connection's far end.
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// The origin browsers use to reach Confab, e.g. https://chat.example.com. WebSocket
    /// upgrades and cookie-authenticated requests from any other origin are refused.
    /// [default: http:// + the listen address]
    #[arg(long, env = "CONFAB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// What to log: a level (error, warn, info, debug, trace) or tracing directives such
    /// as "info,confab=debug".
    #[arg(long, env = "CONFAB_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format: text for people, json for log collectors.
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text,
          global = true)]
    pub log_format: LogFormat,

    /// Seconds between heartbeats on a WebSocket. A connection silent for two and a half
    /// intervals is closed.
    #[arg(long, env = "CONFAB_HEARTBEAT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Days a login session lasts.
    #[arg(long, env = "CONFAB_SESSION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub session_days: u32,

    /// Events a WebSocket connection may have queued before it counts as too slow and is
    /// closed (it then reconnects and catches up).
    #[arg(long, env = "CONFAB_WS_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub ws_queue: u32,

    /// The largest file a user may upload, in megabytes.
    #[arg(long, env = "CONFAB_MAX_UPLOAD_MB", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_upload_mb: u64,

    /// The most connections (HTTP and WebSocket together) the node holds at once; beyond
    /// it new ones are refused with 503 and readiness says the node is full.
    /// [default: the open-files limit less a twentieth, kept for the database and files]
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// The most connections one client address (an IPv6 /64) may hold at once; beyond it
    /// new ones are refused with 429. Trusted proxies are held to --max-connections only.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,

    /// Seconds a client has to send a request's headers once it starts, or to start the
    /// next request on a keep-alive connection, before the connection is closed.
    #[arg(long, env = "CONFAB_HEADER_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_secs: u64,

    /// Change how often one person or address may do something, as NAME=BURST/PERIOD
    /// (BURST at once, refilled at BURST per PERIOD) or NAME=off, comma-separated:
    /// message=30/10s,register=off. The names and defaults: register=20/1h and login=30/1m
    /// per address; message=30/10s, reaction=30/10s, typing=20/10s, room=20/1m,
    /// member=200/10m, upload=30/1m and upload_bytes=2G/1d per user. all=off turns every
    /// one off.
    #[arg(long = "limit", env = "CONFAB_LIMITS", value_delimiter = ',')]
    pub limits: Vec<String>,

    /// A TOML file of OpenID Connect identity providers people may sign in with
    /// ("Sign in with Google"): see docs/deploy.md. Unset, sign-in is by password only.
    #[arg(long, env = "CONFAB_OIDC_PROVIDERS")]
    pub oidc_providers: Option<PathBuf>,

    /// Whether people may sign in with a username and password. Turn it off for teams
    /// that sign in only through their identity provider (it needs one configured).
    #[arg(long, env = "CONFAB_PASSWORD_LOGIN", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub password_login: bool,

    /// Whether people may create accounts with a username and password (off when password
    /// login is). Accounts made by signing in with an identity provider are not affected.
    #[arg(long, env = "CONFAB_PASSWORD_SIGNUP", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub password_signup: bool,

    /// The most WebSocket connections one user may hold at once, over every node (0: no
    /// cap); beyond it new ones are refused with 429.
    #[arg(long, env = "CONFAB_MAX_SOCKETS_PER_USER",
          default_value_t = crate::limits::DEFAULT_SOCKETS_PER_USER as u32)]
    pub max_sockets_per_user: u32,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How many connections a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// All connections together, HTTP and WebSocket; `None` for what the open-files limit
    /// allows when the server starts.
    pub total: Option<usize>,
    /// From one client address (an IPv6 /64), trusted proxies excepted.
    pub per_address: usize,
}

impl ConnectionLimits {
    /// The overall limit: as configured, or the open-files limit less a twentieth (at
    /// least 128) for the database's connections, files being read and written, and Redis.
    pub fn total(&self) -> usize {
        self.total.unwrap_or_else(|| {
            let files = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map_or(1024, |(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX));
            files.saturating_sub((files / 20).max(128)).max(1)
        })
    }
}

/// What to do instead of serving.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Apply the database's pending migrations and exit, without serving: for operators
    /// who migrate before rolling out a new version. Serving applies them too.
    Migrate,
    /// Administer users: create, reset passwords, sign out, deactivate, list, make
    /// administrators. Uses the same data directory, database and Redis as the server;
    /// with a server running on this data directory, the server carries the command out.
    Admin {
        #[command(subcommand)]
        command: crate::cli::AdminCli,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings the server runs with, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Uploaded files, and the embedded database when there is no other.
    pub data_dir: PathBuf,
    pub database: Database,
    /// How long a starting node waits for a database server it cannot reach yet.
    pub database_wait: Duration,
    /// The bus between nodes (`redis://` URL), if this node is one of several.
    pub redis_url: Option<String>,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `scheme://host[:port]` as browsers send it in the Origin header.
    pub public_origin: String,
    /// Whether the session cookie needs `Secure` (the public origin is https).
    pub secure_cookies: bool,
    /// How often a WebSocket is pinged.
    pub heartbeat_interval: Duration,
    /// How long a WebSocket may stay silent before it is closed.
    pub heartbeat_timeout: Duration,
    pub session_ttl: Duration,
    /// Outbound queue length per WebSocket connection.
    pub ws_queue: usize,
    /// The largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// How long an upload may stay unattached to a message before it is removed.
    pub unattached_ttl: Duration,
    /// How often expired sessions, old login failures and unattached uploads are swept.
    pub housekeeping_interval: Duration,
    pub connection_limits: ConnectionLimits,
    /// How long a client may take to send a request's headers, or leave a keep-alive
    /// connection idle.
    pub header_timeout: Duration,
    /// How often one person or address may act, and how many sockets a user may hold.
    pub limits: LimitSettings,
    /// Identity providers people may sign in with.
    pub oidc_providers: Vec<OidcProvider>,
    /// Whether `POST /auth/login` takes passwords.
    pub password_login: bool,
    /// Whether `POST /auth/register` makes accounts.
    pub password_signup: bool,
    /// Where `/metrics` is served instead of the main listener, so it need not be public.
    pub metrics_addr: Option<SocketAddr>,
}

/// An OpenID Connect identity provider, as the operator configured it.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Names the provider in URLs (`/api/v1/auth/oidc/{id}/…`): a-z, 0-9, `-` and `_`.
    pub id: String,
    /// The button's words: "Sign in with {label}".
    pub label: String,
    /// The issuer URL; its `/.well-known/openid-configuration` describes the provider.
    pub issuer: String,
    pub client_id: String,
    /// The client secret, given here or read from `client_secret_file`.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing)]
    client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides `openid`; by default `email` and `profile`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["email".to_owned(), "profile".to_owned()]
}

impl OidcProvider {
    /// A provider with the default scopes, for tests and callers that build settings.
    pub fn new(id: &str, label: &str, issuer: &str, client_id: &str, secret: &str) -> Self {
        Self {
            id: id.to_owned(),
            label: label.to_owned(),
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: Some(secret.to_owned()),
            client_secret_file: None,
            scopes: default_scopes(),
        }
    }
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The providers file: `[[provider]]` tables.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    #[serde(default)]
    provider: Vec<OidcProvider>,
}

/// Reads and checks the providers file.
fn oidc_providers(path: &std::path::Path) -> Result<Vec<OidcProvider>, ConfigError> {
    let named =
        |what: String| ConfigError(format!("CONFAB_OIDC_PROVIDERS ({}): {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| named(e.to_string()))?;
    let file: ProvidersFile = toml::from_str(&text).map_err(|e| named(e.to_string()))?;
    let mut providers = file.provider;
    for provider in &mut providers {
        if let Some(secret_file) = provider.client_secret_file.take() {
            if provider.client_secret.is_some() {
                return Err(named(format!(
                    "provider {:?} has both client_secret and client_secret_file",
                    provider.id
                )));
            }
            let secret = std::fs::read_to_string(&secret_file)
                .map_err(|e| named(format!("{}: {e}", secret_file.display())))?;
            provider.client_secret = Some(secret.trim().to_owned());
        }
    }
    check_providers(&providers).map_err(named)?;
    Ok(providers)
}

/// Whether `host[:port]` names this machine: localhost, or a loopback address.
fn loopback_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Ids unique and fit for URLs, labels present, issuers http(s) URLs (http on loopback
/// only: the flow's secrets cross that connection).
pub fn check_providers(providers: &[OidcProvider]) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for provider in providers {
        let id = &provider.id;
        let fits = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !fits {
            return Err(format!("provider id {id:?}: 1 to 32 of a-z, 0-9, - and _"));
        }
        if !ids.insert(id) {
            return Err(format!("provider id {id:?} is given twice"));
        }
        if provider.label.trim().is_empty() || provider.label.chars().count() > 64 {
            return Err(format!("provider {id:?}: a label of 1 to 64 characters"));
        }
        if provider.client_id.is_empty() {
            return Err(format!("provider {id:?}: client_id is empty"));
        }
        let secure = match origin_of(&provider.issuer) {
            Some(origin) if origin.starts_with("https://") => true,
            Some(origin) => loopback_host(&origin["http://".len()..]),
            None => false,
        };
        if !secure {
            return Err(format!(
                "provider {id:?}: the issuer must be an https:// URL (http:// only on \
                 loopback), not {:?}",
                provider.issuer
            ));
        }
    }
    Ok(())
}

/// Where the server keeps its records.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// SQLite, in `confab.db` under the data directory.
    Embedded,
    /// A PostgreSQL server, by URL (which may hold a password: see [`Database::redacted`]).
    Postgres(String),
}

impl Database {
    /// Parses `CONFAB_DATABASE_URL`: absent means the embedded database.
    pub fn from_url(url: Option<&str>) -> Result<Self, ConfigError> {
        let Some(url) = url.filter(|url| !url.trim().is_empty()) else {
            return Ok(Self::Embedded);
        };
        let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(Self::Postgres(url.to_owned())),
            _ => Err(ConfigError(format!(
                "CONFAB_DATABASE_URL must be a postgres:// URL (or unset for the embedded \
                 database), not {:?}",
                redact(url)
            ))),
        }
    }

    /// How to name the database in logs and errors: the URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Embedded => "the embedded database".to_owned(),
            Self::Postgres(url) => redact(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A URL with the password of its user info (`user:password@`) and of a `password=`
/// query parameter replaced by `***`. The user info ends at the last `@`: a host never
/// holds one, and a password typed without escaping may hold `/`, `?` or `#`.
pub fn redact(url: &str) -> String {
    let mut url = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        url = format!("{scheme}://{user}:***@{host}");
    }
    match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => url,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let public_url =
            config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.addr));
        let public_origin = origin_of(&public_url).ok_or_else(|| {
            ConfigError(format!(
                "CONFAB_PUBLIC_URL must look like http(s)://host[:port], not {public_url:?}"
            ))
        })?;
        let heartbeat_interval = Duration::from_secs(config.heartbeat_secs);
        let database = Database::from_url(config.database_url.as_deref())?;
        let redis_url = config.redis_url.clone().filter(|url| !url.trim().is_empty());
        if let Some(url) = &redis_url {
            if !url.starts_with("redis://") && !url.starts_with("redis+unix://") {
                return Err(ConfigError(format!(
                    "CONFAB_REDIS_URL must be a redis:// URL, not {:?}",
                    redact(url)
                )));
            }
            if database == Database::Embedded {
                return Err(ConfigError(
                    "CONFAB_REDIS_URL joins nodes that share one PostgreSQL database: set \
                     CONFAB_DATABASE_URL too (the embedded database serves one node)"
                        .to_owned(),
                ));
            }
        }
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "CONFAB_TRUSTED_PROXIES holds addresses or networks such as \
                             10.0.0.0/8, not {text:?}"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let oidc_providers = match &config.oidc_providers {
            Some(path) => oidc_providers(path)?,
            None => Vec::new(),
        };
        if !config.password_login && oidc_providers.is_empty() {
            return Err(ConfigError(
                "CONFAB_PASSWORD_LOGIN=false leaves no way to sign in: configure an identity \
                 provider (CONFAB_OIDC_PROVIDERS) too"
                    .to_owned(),
            ));
        }
        Ok(Self {
            data_dir: config.data_dir.clone(),
            database,
            database_wait: Duration::from_secs(config.database_wait_secs),
            redis_url,
            trusted_proxies,
            secure_cookies: public_origin.starts_with("https://"),
            public_origin,
            heartbeat_interval,
            heartbeat_timeout: heartbeat_interval.mul_f32(2.5),
            session_ttl: Duration::from_secs(u64::from(config.session_days) * 86_400),
            ws_queue: config.ws_queue as usize,
            max_upload_bytes: config.max_upload_mb * 1024 * 1024,
            unattached_ttl: Duration::from_secs(24 * 3600),
            housekeeping_interval: Duration::from_secs(3600),
            connection_limits: ConnectionLimits {
                total: config.max_connections.map(|n| n as usize),
                per_address: config.max_connections_per_address as usize,
            },
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            limits: limit_settings(config)?,
            oidc_providers,
            password_login: config.password_login,
            password_signup: config.password_signup && config.password_login,
            metrics_addr: config.metrics_addr,
        })
    }

    /// Settings for a server in `data_dir` reached at `public_url`, with every other value
    /// at its default. Tests start servers this way.
    pub fn with_defaults(data_dir: PathBuf, public_url: &str) -> Self {
        let config = Config::parse_from(["confab", "--public-url", public_url]);
        let mut settings = Self::from_config(&config)
            .expect("the default configuration with a caller-chosen URL is valid");
        settings.data_dir = data_dir;
        settings
    }
}

fn limit_settings(config: &Config) -> Result<LimitSettings, ConfigError> {
    let mut limits = LimitSettings::default();
    for setting in config.limits.iter().filter(|text| !text.trim().is_empty()) {
        limits.apply(setting).map_err(|why| ConfigError(format!("CONFAB_LIMITS: {why}")))?;
    }
    limits.sockets_per_user = Some(config.max_sockets_per_user as usize).filter(|&cap| cap > 0);
    Ok(limits)
}

/// The origin (`scheme://host[:port]`, lower case, default port left out) of an http or
/// https URL, as a browser would send it.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let host = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings from a providers file holding `toml`, with `extra` flags.
    fn with_providers(toml: &str, extra: &[&str]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("secret"), "from-a-file\n").expect("write the secret");
        let toml = toml.replace("SECRET_FILE", &dir.path().join("secret").display().to_string());
        let file = dir.path().join("providers.toml");
        std::fs::write(&file, toml).expect("write the file");
        let mut args = vec!["confab", "--oidc-providers", file.to_str().expect("UTF-8")];
        args.extend_from_slice(extra);
        Settings::from_config(&Config::parse_from(args))
    }

    #[test]
    fn identity_providers_come_from_a_checked_file() {
        let settings = with_providers(
            r#"
            [[provider]]
            id = "google"
            label = "Google"
            issuer = "https://accounts.google.com"
            client_id = "abc.apps.googleusercontent.com"
            client_secret = "inline"

            [[provider]]
            id = "corp_sso"
            label = "Example Corp"
            issuer = "https://sso.example.com/realms/example"
            client_id = "confab"
            client_secret_file = "SECRET_FILE"
            scopes = ["email"]
            "#,
            &["--password-login", "false"],
        )
        .expect("valid");
        let [google, corp] = &settings.oidc_providers[..] else { panic!("two providers") };
        assert_eq!(google.client_secret.as_deref(), Some("inline"));
        assert_eq!(google.scopes, ["email", "profile"], "the default scopes");
        assert_eq!(corp.client_secret.as_deref(), Some("from-a-file"), "read and trimmed");
        assert_eq!(corp.scopes, ["email"]);
        assert!(!format!("{google:?}").contains("inline"), "Debug hides the secret");
        assert!(!settings.password_login);
        assert!(!settings.password_signup, "no password sign-up without password login");

        let provider = |id: &str, issuer: &str| {
            format!(
                "[[provider]]\nid = {id:?}\nlabel = \"L\"\nissuer = {issuer:?}\nclient_id = \"c\"\n"
            )
        };
        let refused = [
            provider("Google", "https://accounts.google.com"),
            provider("a", "http://sso.example.com"),
            provider("a", "http://127.evil.example"),
            provider("a", "http://localhost.evil.example"),
            provider("a", "ftp://sso.example.com"),
            provider("a", "https://x.example") + &provider("a", "https://y.example"),
            provider("a", "https://x.example")
                + "client_secret = \"s\"\nclient_secret_file = \"SECRET_FILE\"\n",
            provider("a", "https://x.example") + "colour = \"blue\"\n",
        ];
        for toml in refused {
            assert!(with_providers(&toml, &[]).is_err(), "refused: {toml}");
        }
        for loopback in
            ["http://127.0.0.1:9000", "http://localhost:8080/realms/x", "http://[::1]:80"]
        {
            assert!(with_providers(&provider("a", loopback), &[]).is_ok(), "{loopback}");
        }
        let no_way_in =
            Settings::from_config(&Config::parse_from(["confab", "--password-login", "false"]));
        assert!(no_way_in.is_err(), "password login off with no provider leaves no way in");
    }

    #[test]
    fn origins_are_normalized_like_browsers_do() {
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(
            origin_of("HTTPS://Chat.Example.com:443/app/").as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(origin_of("http://example.com:80").as_deref(), Some("http://example.com"));
        assert_eq!(origin_of("ftp://example.com"), None);
        assert_eq!(origin_of("example.com"), None);
        assert_eq!(origin_of("http://user@example.com"), None);
    }

    #[test]
    fn database_urls_are_postgres_or_nothing_and_never_shown_with_their_password() {
        assert_eq!(Database::from_url(None).expect("valid"), Database::Embedded);
        assert_eq!(Database::from_url(Some("")).expect("valid"), Database::Embedded);
        let url = "postgres://confab:s3cr3t@db.example.com:5432/chat?sslmode=require";
        let database = Database::from_url(Some(url)).expect("valid");
        assert_eq!(database, Database::Postgres(url.to_owned()));
        assert_eq!(
            database.redacted(),
            "postgres://confab:***@db.example.com:5432/chat?sslmode=require"
        );
        assert!(!format!("{database:?}").contains("s3cr3t"));
        assert_eq!(
            redact("postgresql://u@h/db?user=x&password=hunter2"),
            "postgresql://u@h/db?user=x&password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        for unescaped in ["p#ssw0rd", "a/b?c", "x@y:z"] {
            let url = format!("postgres://confab:{unescaped}@db:5432/chat");
            assert_eq!(redact(&url), "postgres://confab:***@db:5432/chat", "{unescaped}");
        }
        let error = Database::from_url(Some("mysql://root:pw@h/db")).expect_err("refused");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }

    #[test]
    fn defaults_follow_the_listen_address() {
        let config = Config::parse_from(["confab", "--addr", "127.0.0.1:9000"]);
        let settings = Settings::from_config(&config).expect("valid");
        assert_eq!(settings.public_origin, "http://127.0.0.1:9000");
        assert!(!settings.secure_cookies);
        assert_eq!(settings.heartbeat_timeout, Duration::from_secs(75));
    }
}
