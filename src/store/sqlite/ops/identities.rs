//! Identities at identity providers, and sign-in flows.

use rusqlite::{Connection, OptionalExtension, params};

use super::super::writer::{ApplyError, Operation};
use super::{execute, optional};
use crate::domain::{IdentityId, Timestamp, UserId};
use crate::store::{Change, Linked, NewIdentity, PendingFlow, SignInWays, Unlinked};

/// Links `identity` to `user`, unless it is linked to someone: call it inside the
/// operation that needs it, after checking nothing else can refuse.
pub(super) fn insert_identity(
    db: &Connection,
    user: UserId,
    identity: &NewIdentity,
) -> Result<Linked, ApplyError> {
    let owner: Option<i64> = optional(
        db,
        "SELECT user_id FROM identities WHERE issuer = ?1 AND subject = ?2",
        [&identity.issuer, &identity.subject],
    )?;
    match owner {
        Some(owner) if owner == user.as_i64() => return Ok(Linked::Already),
        Some(_) => return Ok(Linked::Elsewhere),
        None => {}
    }
    execute(
        db,
        "INSERT INTO identities (id, issuer, subject, user_id, provider, email, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            identity.id.as_i64(),
            identity.issuer,
            identity.subject,
            user.as_i64(),
            identity.provider,
            identity.email,
            identity.created_at.as_millis(),
        ],
    )?;
    Ok(Linked::Linked)
}

/// Whether an identity is linked to anyone.
pub(super) fn identity_taken(db: &Connection, identity: &NewIdentity) -> Result<bool, ApplyError> {
    let taken: Option<i64> = optional(
        db,
        "SELECT 1 FROM identities WHERE issuer = ?1 AND subject = ?2",
        [&identity.issuer, &identity.subject],
    )?;
    Ok(taken.is_some())
}

pub(in crate::store::sqlite) struct LinkIdentity {
    pub user: UserId,
    pub identity: NewIdentity,
}

impl Operation for LinkIdentity {
    type Output = Linked;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<Linked, ApplyError> {
        insert_identity(db, self.user, &self.identity)
    }
}

pub(in crate::store::sqlite) struct UnlinkIdentity {
    pub user: UserId,
    pub identity: IdentityId,
    pub ways: SignInWays,
}

impl Operation for UnlinkIdentity {
    type Output = Unlinked;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<Unlinked, ApplyError> {
        // The writer applies one operation at a time: nothing can link or unlink between
        // the count and the delete.
        let providers =
            serde_json::to_string(&self.ways.providers).unwrap_or_else(|_| "[]".to_owned());
        let (mine, others, password): (i64, i64, i64) = db
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM identities WHERE user_id = ?1 AND id = ?2),
                        (SELECT COUNT(*) FROM identities WHERE user_id = ?1 AND id <> ?2
                            AND provider IN (SELECT value FROM json_each(?3))),
                        (SELECT COUNT(*) FROM users WHERE id = ?1 AND password_hash <> '')",
            )?
            .query_row(params![self.user.as_i64(), self.identity.as_i64(), providers], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        if mine == 0 {
            return Ok(Unlinked::NotFound);
        }
        if others == 0 && !(self.ways.password && password > 0) {
            return Ok(Unlinked::LastWay);
        }
        execute(db, "DELETE FROM identities WHERE id = ?1", [self.identity.as_i64()])?;
        Ok(Unlinked::Unlinked)
    }
}

pub(in crate::store::sqlite) struct PutFlow(pub PendingFlow);

impl Operation for PutFlow {
    type Output = ();

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<(), ApplyError> {
        let flow = &self.0;
        execute(
            db,
            "INSERT INTO sign_in_flows (key_hash, flow, expires_at) VALUES (?1, ?2, ?3)",
            params![&flow.key_hash[..], flow.flow, flow.expires_at.as_millis()],
        )?;
        Ok(())
    }
}

pub(in crate::store::sqlite) struct TakeFlow(pub [u8; 32]);

impl Operation for TakeFlow {
    type Output = Option<(String, Timestamp)>;

    fn apply(
        &mut self,
        db: &Connection,
        _: &mut Vec<Change>,
    ) -> Result<Option<(String, Timestamp)>, ApplyError> {
        let taken: Option<(String, i64)> = db
            .prepare_cached(
                "DELETE FROM sign_in_flows WHERE key_hash = ?1 RETURNING flow, expires_at",
            )?
            .query_row([&self.0[..]], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(taken.map(|(flow, expires_at)| (flow, Timestamp::from_millis(expires_at))))
    }
}
