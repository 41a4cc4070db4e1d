//! `confab admin`: administration from the server's machine, on the configured store.
//!
//! A command goes where it can reach every connection it concerns:
//!
//! - Without Redis, to the server running on this data directory, through its control
//!   socket (`control`): the server runs it, and its own bus closes the sockets of a
//!   deactivated user at once. The embedded database could not be opened beside it anyway.
//! - With Redis (nodes on PostgreSQL), or when no server answers there, the command opens
//!   the store itself, runs the same use case (`app::admin`), and publishes on Redis what
//!   the store announced (ended sessions), exactly as a node would, so every node closes
//!   the connections concerned.
//!
//! What it prints goes to stdout (a sentence, a table, or JSON with `--json`); logs and
//! errors go to stderr. Exit codes: 0 done, 1 failed (the store or the server could not be
//! reached), 3 no such user, 4 refused (an invalid or taken name, a weak password).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use crate::app::admin::{AccountView, Actor, AdminCommand, AdminOutcome};
use crate::app::events::change_sink;
use crate::app::receipts::ReceiptBatcher;
use crate::app::{App, SEARCH_CURSOR_SECRET, ServerKeys};
use crate::auth::{DEVICE_KEY_SECRET, DeviceKeys};
use crate::bus::{Bus, BusEvent};
use crate::config::Settings;
use crate::control::{ControlRequest, ControlResponse};
use crate::media::blobs::LocalBlobs;
use crate::realtime::Hub;

/// Administration of users, on the configured store (see docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AdminCli {
    /// Create a user. Without --password-stdin, a strong random password is generated and
    /// printed once: hand it to the user over a safe channel.
    CreateUser {
        username: String,
        /// The name others see; the username if not given.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// Make the new user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password and end every session of the user. Without --password-stdin, a
    /// strong random password is generated and printed once.
    ResetPassword {
        username: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign the user out everywhere: every session ends and its sockets close.
    EndSessions { username: String },
    /// Deactivate a user: no more signing in, every session ends and its sockets close.
    /// Their messages and profile stay.
    Deactivate { username: String },
    /// Let a deactivated user sign in again.
    Reactivate { username: String },
    /// List users by username, with their status and administrator flag.
    ListUsers {
        /// Only users whose username or display name starts with this.
        #[arg(long, default_value = "")]
        query: String,
        /// Only users after this username (the `next` of the page before).
        #[arg(long)]
        after: Option<String>,
        /// Users per page (1–200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Every page, not just one.
        #[arg(long)]
        all: bool,
        /// JSON lines, one per user, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a user an administrator (the web client's Administration).
    MakeAdmin { username: String },
    /// Take administration back from a user.
    RevokeAdmin { username: String },
}

/// Runs one `confab admin` command and says how it went.
pub async fn admin(settings: &Settings, command: AdminCli) -> ExitCode {
    match run(settings, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("confab admin: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Why a command did not succeed.
struct Failure {
    message: String,
    exit_code: u8,
}

impl Failure {
    fn failed(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 1 }
    }

    /// A refusal from the application, by its stable code.
    fn refused(code: &str, message: &str, username: Option<&str>) -> Self {
        match (code, username) {
            ("not_found", Some(username)) => {
                Self { message: format!("there is no user named {username:?}."), exit_code: 3 }
            }
            ("internal" | "unavailable", _) => Self::failed(format!("{message} ({code})")),
            _ => Self { message: format!("{message} ({code})"), exit_code: 4 },
        }
    }
}

async fn run(settings: &Settings, command: AdminCli) -> Result<(), Failure> {
    let mut admin = Admin::new(settings);
    let mut out = std::io::stdout();
    match command {
        AdminCli::CreateUser { username, display_name, password_stdin, admin: make_admin } => {
            let password = password_stdin.then(read_password).transpose()?;
            let created = admin
                .one(AdminCommand::CreateUser {
                    username: username.clone(),
                    display_name,
                    password,
                })
                .await?;
            let created = if make_admin {
                let made = admin.one(AdminCommand::SetAdmin { username, admin: true }).await?;
                keep_password(made, &created)
            } else {
                created
            };
            print_account(&mut out, "created", &created)
        }
        AdminCli::ResetPassword { username, password_stdin } => {
            let password = password_stdin.then(read_password).transpose()?;
            let outcome = admin.one(AdminCommand::ResetPassword { username, password }).await?;
            print_account(&mut out, "password reset for", &outcome)
        }
        AdminCli::EndSessions { username } => {
            let outcome = admin.one(AdminCommand::EndSessions { username }).await?;
            print_account(&mut out, "signed out", &outcome)
        }
        AdminCli::Deactivate { username } => {
            let outcome = admin.one(AdminCommand::Deactivate { username }).await?;
            print_account(&mut out, "deactivated", &outcome)
        }
        AdminCli::Reactivate { username } => {
            let outcome = admin.one(AdminCommand::Reactivate { username }).await?;
            print_account(&mut out, "reactivated", &outcome)
        }
        AdminCli::MakeAdmin { username } => {
            let outcome = admin.one(AdminCommand::SetAdmin { username, admin: true }).await?;
            print_account(&mut out, "made an administrator:", &outcome)
        }
        AdminCli::RevokeAdmin { username } => {
            let outcome = admin.one(AdminCommand::SetAdmin { username, admin: false }).await?;
            print_account(&mut out, "no longer an administrator:", &outcome)
        }
        AdminCli::ListUsers { query, after, limit, all, json } => {
            let mut after = after;
            let mut users = Vec::new();
            loop {
                let page = AdminCommand::ListUsers {
                    query: query.clone(),
                    after: after.clone(),
                    limit: Some(limit),
                };
                let AdminOutcome::Accounts { users: found, next } = admin.one(page).await? else {
                    return Err(Failure::failed("the server answered a list with one account"));
                };
                users.extend(found);
                match next {
                    Some(next) if all => after = Some(next),
                    next => {
                        print_users(&mut out, &users, json).map_err(unwritten)?;
                        if let Some(next) = next {
                            eprintln!("more: --after {next}");
                        }
                        break;
                    }
                }
            }
            Ok(())
        }
    }?;
    admin.finish().await
}

/// The first line of stdin, without its line ending.
fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::failed(format!("could not read the password: {error}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// `outcome`, showing the password `created` generated.
fn keep_password(outcome: AdminOutcome, created: &AdminOutcome) -> AdminOutcome {
    match (outcome, created) {
        (
            AdminOutcome::Account { account, sessions_ended, .. },
            AdminOutcome::Account { password, .. },
        ) => AdminOutcome::Account { account, password: password.clone(), sessions_ended },
        (outcome, _) => outcome,
    }
}

fn print_account(out: &mut impl Write, what: &str, outcome: &AdminOutcome) -> Result<(), Failure> {
    let AdminOutcome::Account { account, password, sessions_ended } = outcome else {
        return Err(Failure::failed("the server answered with a list"));
    };
    write_account(out, what, account, password.as_deref(), *sessions_ended).map_err(unwritten)
}

fn write_account(
    out: &mut impl Write,
    what: &str,
    account: &AccountView,
    password: Option<&str>,
    sessions_ended: u64,
) -> std::io::Result<()> {
    writeln!(out, "{what} {} ({})", account.username, status(account))?;
    if sessions_ended > 0 {
        writeln!(out, "sessions ended: {sessions_ended}")?;
    }
    if let Some(password) = password {
        writeln!(out, "one-time password: {password}")?;
    }
    Ok(())
}

fn unwritten(error: std::io::Error) -> Failure {
    Failure::failed(format!("could not write: {error}"))
}

fn status(account: &AccountView) -> String {
    let active = if account.deactivated { "deactivated" } else { "active" };
    if account.admin { format!("{active}, administrator") } else { active.to_owned() }
}

/// JSON lines, or a table of username, display name, status and administrator flag.
fn print_users(out: &mut impl Write, users: &[AccountView], json: bool) -> std::io::Result<()> {
    if json {
        for user in users {
            writeln!(out, "{}", serde_json::to_string(user).map_err(std::io::Error::other)?)?;
        }
        return Ok(());
    }
    let width = users.iter().map(|u| u.username.chars().count()).max().unwrap_or(0).max(8);
    let names = users.iter().map(|u| u.display_name.chars().count()).max().unwrap_or(0);
    let names = names.clamp(12, 40);
    writeln!(out, "{:width$}  {:names$}  {:11}  ADMIN", "USERNAME", "DISPLAY NAME", "STATUS")?;
    for user in users {
        let status = if user.deactivated { "deactivated" } else { "active" };
        let admin = if user.admin { "yes" } else { "no" };
        let name: String = user.display_name.chars().take(names).collect();
        writeln!(out, "{:width$}  {name:names$}  {status:11}  {admin}", user.username)?;
    }
    Ok(())
}

/// Where commands run: a running server's control socket, or the store opened here.
struct Admin<'a> {
    settings: &'a Settings,
    os_user: String,
    /// The application over the store opened here, once a command needed it.
    local: Option<Local>,
}

/// The store opened by this process, and what it announced for the nodes.
struct Local {
    app: App,
    announced: Arc<Announced>,
}

impl<'a> Admin<'a> {
    fn new(settings: &'a Settings) -> Self {
        let os_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Self { settings, os_user, local: None }
    }

    async fn one(&mut self, command: AdminCommand) -> Result<AdminOutcome, Failure> {
        let username = match &command {
            AdminCommand::CreateUser { .. } | AdminCommand::ListUsers { .. } => None,
            AdminCommand::ResetPassword { username, .. }
            | AdminCommand::EndSessions { username }
            | AdminCommand::Deactivate { username }
            | AdminCommand::Reactivate { username }
            | AdminCommand::SetAdmin { username, .. } => Some(username.clone()),
        };
        if self.local.is_none() && self.settings.redis_url.is_none() {
            let path = crate::control::socket_path(&self.settings.data_dir);
            let request = ControlRequest { os_user: self.os_user.clone(), command };
            let answer = crate::control::request(&path, &request).await.map_err(|error| {
                Failure::failed(format!(
                    "the server's control socket {} did not answer: {error}",
                    path.display()
                ))
            })?;
            return match answer {
                Some(ControlResponse::Ok(outcome)) => Ok(outcome),
                Some(ControlResponse::Error { code, message }) => {
                    Err(Failure::refused(&code, &message, username.as_deref()))
                }
                None => self.locally(request.command, username.as_deref()).await,
            };
        }
        self.locally(command, username.as_deref()).await
    }

    async fn locally(
        &mut self,
        command: AdminCommand,
        username: Option<&str>,
    ) -> Result<AdminOutcome, Failure> {
        if self.local.is_none() {
            self.local = Some(open(self.settings).await?);
        }
        let Some(local) = &self.local else { return Err(Failure::failed("no store")) };
        let actor = Actor::Cli { os_user: self.os_user.clone() };
        local
            .app
            .admin_command(&actor, command)
            .await
            .map_err(|error| Failure::refused(error.code(), &error.public_message(), username))
    }

    /// Closes the store opened here (its announcements all made) and publishes them on
    /// Redis for the nodes.
    async fn finish(self) -> Result<(), Failure> {
        let Some(local) = self.local else { return Ok(()) };
        local.app.store().close().await;
        let events = local.announced.take();
        if let (Some(url), false) = (&self.settings.redis_url, events.is_empty()) {
            crate::bus::publish_once(url, events).await.map_err(|error| {
                Failure::failed(format!(
                    "the change is stored, but the nodes could not be told through Redis \
                     ({error}): open connections close within seconds by themselves"
                ))
            })?;
        }
        Ok(())
    }
}

/// Opens the configured store as a server would, with a bus that keeps what the store
/// announces for [`Admin::finish`].
async fn open(settings: &Settings) -> Result<Local, Failure> {
    let database = settings.database.redacted();
    crate::private::dir(&settings.data_dir).map_err(|error| {
        Failure::failed(format!("could not use {}: {error}", settings.data_dir.display()))
    })?;
    let hub = Arc::new(Hub::new());
    let announced = Arc::new(Announced::default());
    let bus: Arc<dyn Bus> = announced.clone();
    let sink = change_sink(bus.clone(), hub.clone(), ReceiptBatcher::new());
    // An operator at a terminal is told at once that the database is out of reach.
    let store = crate::store::open(&settings.database, &settings.data_dir, Duration::ZERO, sink)
        .await
        .map_err(|error| Failure::failed(format!("could not open {database}: {error}")))?;
    let secret = async |name, candidate| {
        store
            .secret(name, candidate)
            .await
            .map_err(|error| Failure::failed(format!("could not read {database}: {error}")))
    };
    let keys = ServerKeys {
        device: secret(DEVICE_KEY_SECRET, DeviceKeys::generate_key()).await?,
        search_cursor: secret(SEARCH_CURSOR_SECRET, rand::random::<[u8; 32]>().to_vec()).await?,
    };
    let media = settings.data_dir.join("media");
    let blobs = LocalBlobs::open(media.clone())
        .map_err(|error| Failure::failed(format!("could not use {}: {error}", media.display())))?;
    let app = App::new(
        store,
        Arc::new(blobs),
        bus,
        hub,
        settings.clone(),
        &keys,
        CancellationToken::new(),
    )
    .map_err(|error| Failure::failed(error.to_string()))?;
    Ok(Local { app, announced })
}

/// The bus of `confab admin`: it keeps what the store announces, to publish on Redis once
/// the store has closed (no connection listens in this process).
#[derive(Default)]
struct Announced {
    events: Mutex<Vec<BusEvent>>,
}

impl Announced {
    fn take(&self) -> Vec<BusEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Bus for Announced {
    fn publish(&self, event: BusEvent) {
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(event);
    }
}
