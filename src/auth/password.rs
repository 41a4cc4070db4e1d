//! Password hashing with argon2id, off the async threads and with bounded concurrency.
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB of memory by design. It runs on the
//! blocking pool so that it never stalls the event loop, and a semaphore admits only as
//! many hashes at once as there are cores, so a burst of logins queues instead of
//! exhausting memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a password nobody has, verified when a login names an unknown user, so
    /// that the answer takes as long as for a known one and does not reveal which names
    /// exist.
    decoy: Arc<str>,
}

impl PasswordHasher {
    pub fn new() -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decoy = hash_now("decoy password that matches nothing")?;
        Ok(Self { permits: Arc::new(Semaphore::new(cores)), decoy: decoy.into() })
    }

    /// Hashes a new password into a PHC string (algorithm, parameters, salt and hash).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await
    }

    /// Whether `password` matches `stored`; `None` for `stored` checks the decoy (and
    /// answers false) so that unknown users cost the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let password = password.to_owned();
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.decoy.to_string(), str::to_owned);
        let matches = self.run(move || verify_now(&password, &stored)).await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Error::Unavailable)?;
        // The permit moves into the job: if the request is abandoned, the hash still runs to
        // its end, and it keeps counting against the bound until then.
        let job = move || {
            let _permit = permit;
            work()
        };
        tokio::task::spawn_blocking(job).await.map_err(Error::internal)?
    }
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(e.to_string()))
}

fn verify_now(password: &str, stored: &str) -> Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() -> Result<()> {
        let hasher = PasswordHasher::new()?;
        let first = hasher.hash("correct horse").await?;
        let second = hasher.hash("correct horse").await?;
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second, "each hash has its own salt");
        assert!(hasher.verify("correct horse", Some(&first)).await?);
        assert!(!hasher.verify("wrong horse", Some(&first)).await?);
        assert!(!hasher.verify("correct horse", None).await?);
        Ok(())
    }
}
