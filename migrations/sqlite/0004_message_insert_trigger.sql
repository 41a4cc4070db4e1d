-- A new message moves its room's last seq to its own, and counts as its author having read
-- and received everything up to it. The insert does both through this trigger, inside the
-- same statement, so that storing a plain message is one round trip to SQLite (each round
-- trip is a hand-off between threads, and the writer's cost is their sum). The insert itself
-- takes `rooms.last_seq + 1` and checks membership (store/sqlite/ops/messages.rs).
CREATE TRIGGER messages_take_their_seq AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = NEW.seq WHERE id = NEW.room_id;
    UPDATE memberships
    SET last_read_seq = MAX(last_read_seq, NEW.seq), delivered_seq = MAX(delivered_seq, NEW.seq)
    WHERE room_id = NEW.room_id AND user_id = NEW.author_id;
END;
