//! Connections over time: heartbeats, shutdown, restarts.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{each_store, spawn_app, spawn_app_with};

#[each_store]
async fn a_ping_frame_is_answered_with_a_pong_echoing_its_id() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    ws.send_json(json!({ "type": "ping", "id": 42 })).await;
    assert_eq!(ws.recv().await, json!({ "type": "pong", "id": 42 }));
    ws.send_json(json!({ "type": "ping" })).await;
    assert_eq!(ws.recv().await, json!({ "type": "pong" }));
}

#[each_store]
async fn a_connection_that_stops_answering_is_closed_after_the_heartbeat_timeout() {
    let app = spawn_app_with(|settings| {
        settings.heartbeat_interval = Duration::from_millis(100);
        settings.heartbeat_timeout = Duration::from_millis(400);
    })
    .await;
    let alice = app.register("alice").await;
    let mut silent = app.connect(&alice).await;
    let mut lively = app.connect(&alice).await;

    // The lively client keeps reading, which answers the server's pings; the silent one
    // reads nothing, so it sends no pongs, like a peer whose network vanished.
    lively.expect_silence(Duration::from_millis(1200)).await;
    lively.send_json(json!({ "type": "ping", "id": "still here" })).await;
    assert_eq!(lively.recv().await["type"], "pong");
    assert_eq!(app.connection_count().await, 1, "only the silent connection was dropped");

    // What the silent client finds when it finally reads: the server's pings and its close
    // frame (code 4002), or, as the server has dropped the socket, an error when the
    // client tries to answer the pings. Either way, the connection is over.
    let mut pings = 0;
    loop {
        match silent.stream.next().await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(4002));
                break;
            }
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => break,
        }
    }
    assert!(pings <= 12, "pinged a few times, then gave up");
}

#[each_store]
async fn shutting_down_closes_websockets_with_going_away() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    app.stop().await;
    assert_eq!(ws.expect_close().await, Some(1012), "reconnect now");
}

#[each_store]
async fn a_restarted_server_keeps_sessions_and_messages_and_clients_resume() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.open_dm(&alice, &bob).await;
    app.send(&alice, &room, "before the restart").await;
    let mut bob_ws = app.connect(&bob).await;
    assert_eq!(bob_ws.ready_seq(&room), 1);

    let app = app.restart().await;
    assert!(bob_ws.expect_close().await.is_some(), "the old socket is closed");
    app.send(&alice, &room, "after the restart").await;

    // The same token still works, and the reconnected client catches up.
    let mut bob_ws = app.connect(&bob).await;
    assert_eq!(bob_ws.ready_seq(&room), 2);
    bob_ws.send_json(json!({ "type": "sync", "since": { room.as_str(): 1 } })).await;
    let missed = bob_ws.recv().await;
    assert_eq!(missed["seq"], 2);
    assert_eq!(missed["message"]["body"], "after the restart");
    assert_eq!(bob_ws.recv().await["type"], "receipts");
    assert_eq!(bob_ws.recv().await["type"], "sync.done");
}

#[each_store]
async fn a_close_from_the_client_is_answered_with_a_close() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.connect(&alice).await;
    ws.send_raw(Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    })))
    .await;
    loop {
        match ws.stream.next().await {
            Some(Ok(Message::Close(_))) | None => break,
            // Frames already on their way (who is around, say) come first.
            Some(Ok(Message::Text(_))) => continue,
            other => panic!("expected the close to be echoed, got {other:?}"),
        }
    }
}

#[each_store]
async fn a_stalled_request_does_not_keep_the_server_from_stopping() {
    use tokio::io::AsyncWriteExt;
    let mut app = spawn_app().await;
    let mut stalled = tokio::net::TcpStream::connect(app.address).await.expect("connect");
    // Headers promise a body that never comes.
    stalled
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"user")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    app.stop().await;
    assert!(started.elapsed() < Duration::from_secs(8), "stopped in {:?}", started.elapsed());
}

#[each_store]
async fn leaving_and_rejoining_at_once_keeps_the_rooms_live_events() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&alice, "general", "public", &[&bob]).await;
    let mut bob_ws = app.connect(&bob).await;
    for _ in 0..5 {
        app.post(&bob, &format!("/rooms/{room}/leave"), json!({})).await;
        app.post(&bob, &format!("/rooms/{room}/join"), json!({})).await;
    }
    app.send(&alice, &room, "still here?").await;
    let mut kinds = Vec::new();
    loop {
        let frame = bob_ws.recv().await;
        if frame["type"] == "message.created" {
            assert_eq!(frame["message"]["body"], "still here?");
            break;
        }
        kinds.push(frame["type"].as_str().expect("type").to_owned());
    }
    // A join that the next leave overtook before the connection read the room is passed
    // over, and that leave with it (the client never had the room back): pairs may fold,
    // but what is said alternates and ends with the room back.
    assert!(!kinds.is_empty() && kinds.len() <= 10 && kinds.len() % 2 == 0, "{kinds:?}");
    for pair in kinds.chunks(2) {
        assert_eq!(pair, ["room.removed", "room.added"], "{kinds:?}");
    }
}
