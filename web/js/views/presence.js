// Presence in words: "Online", "Away", "Last seen 5 minutes ago", "Offline"; and one shared
// ticker that views re-render on, so that "5 minutes ago" becomes "6 minutes ago" without a
// reload. Everything comes from the model: `presence` frames and member lists carry the
// status and, for people offline, `last_seen_at` (docs/api.md, "Presence and typing").

import { timeLabel } from '../dom.js';

/** How often labels that depend on the time are brought up to date. */
const TICK_MS = 30_000;

const ticking = new Set();
let timer = null;

/** Calls `listener()` every 30 s (and when the page comes back into view, as timers of a
 *  hidden page are slowed), for as long as anyone listens; returns a function that stops
 *  it. One timer serves every listener. */
export function onPresenceTick(listener) {
  ticking.add(listener);
  if (timer === null) timer = setInterval(tickPresence, TICK_MS);
  return () => {
    ticking.delete(listener);
    if (ticking.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}

/** Brings every time-dependent label up to date now. */
export function tickPresence() {
  for (const listener of [...ticking]) listener();
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') tickPresence();
});

/** A user's status: 'online', 'away' or 'offline'. */
export function statusOf(model, userId) {
  const known = model.presence.get(userId);
  if (known) return known;
  for (const room of model.rooms.values()) {
    const member = room.members.get(userId);
    if (member && member.presence) return member.presence.status;
  }
  return 'offline';
}

/** When a user who is offline was last seen (an ISO time), or null if not known. */
export function lastSeenAt(model, userId) {
  let latest = model.lastSeen ? model.lastSeen.get(userId) || null : null;
  for (const room of model.rooms.values()) {
    const seen = room.members.get(userId)?.presence?.last_seen_at;
    if (seen && (!latest || Date.parse(seen) > Date.parse(latest))) latest = seen;
  }
  return latest;
}

/** "Online", "Away", "Last seen 5 minutes ago" or "Offline" (never seen, or not known). */
export function presenceLabel(model, userId, now = new Date()) {
  const status = statusOf(model, userId);
  if (status === 'online') return 'Online';
  if (status === 'away') return 'Away';
  const seen = lastSeenAt(model, userId);
  return seen ? 'Last seen ' + lastSeenLabel(new Date(seen), now) : 'Offline';
}

/** "just now", "5 minutes ago", "today at 14:05", "yesterday at 14:05", "on Monday at
 *  14:05", "on 3 March" (with the year when it is not this one). */
export function lastSeenLabel(seen, now = new Date()) {
  const minutes = Math.floor((now - seen) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return minutes === 1 ? 'a minute ago' : `${minutes} minutes ago`;
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((day(now) - day(seen)) / 86_400_000);
  if (days === 0) return 'today at ' + timeLabel(seen);
  if (days === 1) return 'yesterday at ' + timeLabel(seen);
  if (days < 7) return 'on ' + seen.toLocaleDateString(undefined, { weekday: 'long' }) + ' at ' + timeLabel(seen);
  const sameYear = seen.getFullYear() === now.getFullYear();
  return 'on ' + seen.toLocaleDateString(undefined, { day: 'numeric', month: 'long', year: sameYear ? undefined : 'numeric' });
}
