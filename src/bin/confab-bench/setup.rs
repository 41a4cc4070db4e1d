//! Users and rooms for a run, made over Confab's HTTP API as any client would make them.
//!
//! Connection `i` belongs to room `i mod R`. Within a room, every `per_user` connections
//! share one user (as one person's tabs and devices do): registering costs the server an
//! argon2 hash, and a run of 50,000 connections should not spend minutes on accounts.
//! The first connection of each room is the room's sender.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

/// How connections are spread over rooms and users.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub connections: usize,
    pub rooms: usize,
    pub per_user: usize,
}

impl Layout {
    /// A layout with at least one connection in every room and every user.
    pub fn checked(connections: usize, rooms: usize, per_user: usize) -> Result<Self> {
        if rooms == 0 || connections < rooms || per_user == 0 {
            bail!("need at least one connection per room, and one connection per user");
        }
        Ok(Self { connections, rooms, per_user })
    }

    pub fn room_of(&self, connection: usize) -> usize {
        connection % self.rooms
    }

    /// The connection's place among its room's connections.
    fn rank_in_room(&self, connection: usize) -> usize {
        connection / self.rooms
    }

    pub fn members_of(&self, room: usize) -> usize {
        (self.connections + self.rooms - 1 - room) / self.rooms
    }

    fn users_of(&self, room: usize) -> usize {
        self.members_of(room).div_ceil(self.per_user)
    }

    pub fn is_sender(&self, connection: usize) -> bool {
        self.rank_in_room(connection) == 0
    }
}

/// What a connection needs to open its socket.
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: usize,
    /// The connection's place among its room's connections (0 is the sender).
    pub rank: usize,
    pub room_id: String,
    /// The user's session token (Confab only).
    pub token: Option<String>,
}

/// Every connection's seat, in connection order.
pub struct Plan {
    pub seats: Vec<Seat>,
    /// Each room's id, by room number.
    pub room_ids: Vec<String>,
    /// A token of a member of each room, for HTTP requests in its name.
    pub room_tokens: Vec<Option<String>>,
}

/// The ceiling needs no accounts: rooms are named by number.
pub fn ceiling(layout: Layout) -> Plan {
    let room_ids: Vec<String> = (0..layout.rooms).map(|room| format!("r{room}")).collect();
    let seats = (0..layout.connections)
        .map(|i| {
            let room = layout.room_of(i);
            Seat {
                room,
                rank: layout.rank_in_room(i),
                room_id: room_ids[room].clone(),
                token: None,
            }
        })
        .collect();
    Plan { seats, room_tokens: vec![None; layout.rooms], room_ids }
}

/// Registers the users, creates one public room per room number and has every user join
/// its room.
pub async fn confab(http: &reqwest::Client, base: &str, layout: Layout) -> Result<Plan> {
    let run: String = (0..5).map(|_| char::from(b'a' + rand::random_range(0..26u8))).collect();
    let users: Vec<(usize, usize)> = (0..layout.rooms)
        .flat_map(|room| (0..layout.users_of(room)).map(move |u| (room, u)))
        .collect();
    // The server hashes one password per core at a time; a few more in flight keep it busy.
    let tokens: Vec<String> = stream::iter(users.iter().copied())
        .map(|(room, user)| register(http, base, format!("b{run}r{room}u{user}")))
        .buffered(8)
        .try_collect()
        .await?;
    let tokens: HashMap<(usize, usize), String> = users.iter().copied().zip(tokens).collect();
    let token_of = |room: usize, user: usize| -> &String { &tokens[&(room, user)] };

    let mut room_ids = Vec::with_capacity(layout.rooms);
    for room in 0..layout.rooms {
        let created = post(
            http,
            base,
            token_of(room, 0),
            "/api/v1/rooms",
            json!({ "name": format!("bench {run} {room}"), "kind": "public" }),
        )
        .await?;
        room_ids.push(text(&created, "id")?);
    }
    let joins: Vec<(usize, usize)> = users.iter().copied().filter(|&(_, user)| user > 0).collect();
    stream::iter(joins)
        .map(|(room, user)| {
            let path = format!("/api/v1/rooms/{}/join", room_ids[room]);
            let token = token_of(room, user).clone();
            async move { post(http, base, &token, &path, json!({})).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;

    let seats = (0..layout.connections)
        .map(|i| {
            let room = layout.room_of(i);
            let user = layout.rank_in_room(i) / layout.per_user;
            Seat {
                room,
                rank: layout.rank_in_room(i),
                room_id: room_ids[room].clone(),
                token: Some(token_of(room, user).clone()),
            }
        })
        .collect();
    let room_tokens = (0..layout.rooms).map(|room| Some(token_of(room, 0).clone())).collect();
    Ok(Plan { seats, room_ids, room_tokens })
}

/// Registers `username` and returns its session token.
pub async fn register(http: &reqwest::Client, base: &str, username: String) -> Result<String> {
    let url = format!("{base}/api/v1/auth/register");
    let body = json!({ "username": username, "password": "bench password" });
    let reply = http.post(url).json(&body).send().await.context("registering")?;
    let value = checked(reply).await.with_context(|| format!("registering {username}"))?;
    text(&value, "token")
}

pub async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let reply = http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await?;
    checked(reply).await.with_context(|| format!("POST {path}"))
}

async fn checked(reply: reqwest::Response) -> Result<Value> {
    let status = reply.status();
    let value: Value = reply.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}

fn text(value: &Value, key: &str) -> Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {key:?} in {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_spread_evenly_over_rooms_and_users() {
        let layout = Layout { connections: 10, rooms: 3, per_user: 2 };
        assert_eq!((0..3).map(|r| layout.members_of(r)).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!((0..3).map(|r| layout.users_of(r)).collect::<Vec<_>>(), vec![2, 2, 2]);
        let senders: Vec<usize> = (0..10).filter(|&i| layout.is_sender(i)).collect();
        assert_eq!(senders, vec![0, 1, 2]);
    }
}
