// The sidebar: who you are, the connection's state, what you can start, and your rooms
// (public rooms, groups, direct messages) with unread and mention badges, a preview of the
// last message (or who is typing there) and, for direct messages, the other person's
// presence.

import { bdi, h, initials, replace } from '../dom.js';
import { filesSummary } from './attachments.js';
import { openAdminDialog } from './admin.js';
import { openBrowseDialog, openCreateDialog, openDmDialog, openProfileDialog } from './dialogs.js';
import { openProfileCard } from './profile-card.js';
import { searchButton } from './search.js';

const CONNECTION_LABELS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

export function renderSidebar(container, model, client, { active, connection }) {
  const me = model.me;
  const head = h('div', { class: 'sidebar-head' },
    h('div', { class: 'me' },
      h('button', { class: 'me-name', title: 'Your profile', attrs: { 'aria-label': 'Your profile: ' + me.display_name }, on: { click: () => openProfileDialog(model, client) } }, bdi(me.display_name)),
      h('div', { class: 'connection', text: CONNECTION_LABELS[connection] || connection, attrs: { 'data-state': connection, role: 'status', 'data-testid': 'connection' } })),
    searchButton(client),
    h('button', { class: 'icon-btn', text: 'Sign out', attrs: { 'aria-label': 'Sign out' }, on: { click: () => client.signOut() } }));

  const actions = h('div', { class: 'sidebar-actions' },
    h('button', { class: 'btn', text: '+ Room', on: { click: () => openCreateDialog(model, client) } }),
    h('button', { class: 'btn', text: 'Browse', on: { click: () => openBrowseDialog(client) } }),
    h('button', { class: 'btn', text: '+ Message', on: { click: () => openDmDialog(client) } }),
    model.admin ? h('button', { class: 'btn', text: 'Administration', attrs: { 'data-testid': 'administration' }, on: { click: () => openAdminDialog(model, client) } }) : null,
    notificationsControl(client));

  const rooms = [...model.rooms.values()].sort((a, b) => lastActivity(b) - lastActivity(a));
  const section = (title, kind) => {
    const items = rooms.filter((room) => room.info.kind === kind).map((room) => h('li', { class: 'room-row' }, roomItem(room, model, client, room.id === active), peerButton(room, model, client)));
    return items.length ? [h('h3', { class: 'room-section', text: title }), h('ul', { class: 'plain', attrs: { role: 'list' } }, items)] : [];
  };
  const list = h('div', { class: 'room-list' },
    section('Rooms', 'public'), section('Groups', 'private'), section('Direct messages', 'dm'),
    rooms.length === 0 ? h('p', { class: 'empty', text: 'No rooms yet. Browse public rooms or start a conversation.' }) : null);
  replace(container, head, actions, list);
}

/** What to do when the browser blocks notifications for the site: only the user can lift
 *  that, in the browser's own settings. */
const BLOCKED_NOTE = "Notifications are blocked for this site: allow them in the browser's site settings (the icon left of the address), then reload.";

/** Whether the note above is shown: after the button is used while notifications are
 *  blocked (kept across re-renders). */
let blockedNoteShown = false;

/** The notifications button, saying the browser's permission: "Enable notifications"
 *  (not asked yet: asks), "Notifications on" (granted), or "Notifications blocked"
 *  (denied: explains how to allow them, as the page cannot ask again). */
function notificationsControl(client) {
  if (!('Notification' in window)) return null;
  const permission = Notification.permission;
  const explain = () => {
    blockedNoteShown = true;
    client.shell.toast(BLOCKED_NOTE);
    client.shell.renderSidebar();
  };
  const labels = { granted: 'Notifications on', denied: 'Notifications blocked' };
  const button = h('button', {
    class: 'btn', type: 'button', text: labels[permission] || 'Enable notifications',
    attrs: { 'data-permission': permission, 'data-testid': 'notifications' },
    on: { click: async () => {
      if (permission === 'granted') return client.shell.toast('Notifications are on. To turn them off, use the browser\'s site settings.');
      if (permission === 'denied') return explain();
      // A browser that blocks without asking (or a prompt closed with Block) answers
      // 'denied' at once.
      if (await client.enableNotifications() === 'denied') explain();
    } },
  });
  const note = permission === 'denied' && blockedNoteShown ? h('p', { class: 'notifications-note', text: BLOCKED_NOTE, attrs: { 'data-testid': 'notifications-note' } }) : null;
  return [button, note];
}

function lastActivity(room) {
  const last = room.info.last_message;
  return Date.parse(last ? last.created_at : room.info.created_at) || 0;
}

function roomItem(room, model, client, current) {
  const info = room.info;
  const picture = info.kind === 'dm' && info.peer && info.peer.avatar_url;
  const glyph = h('span', { class: 'glyph' + (info.kind === 'private' ? ' private' : ''), attrs: { 'aria-hidden': 'true' } },
    picture ? h('img', { src: picture, alt: '' }) : info.kind === 'public' ? '#' : initials(info.name));
  let presenceText = info.kind === 'private' ? ', private group' : '';
  if (info.kind === 'dm' && info.peer) {
    const status = model.presence.get(info.peer.id) || 'offline';
    glyph.append(h('span', { class: 'presence-dot', attrs: { 'data-status': status } }));
    presenceText = ', ' + status;
  }
  const last = info.last_message;
  const typing = typingLine(room, model, client);
  const preview = typing || (last ? (last.deleted ? 'Message deleted' : [authorPrefix(last, model, client), bdi(last.body.split('\n')[0] || filesSummary(last))]) : '');
  const badges = h('span', { class: 'badges' },
    room.mentions > 0 ? h('span', { class: 'badge mention', text: '@' + room.mentions, attrs: { 'aria-label': room.mentions + ' mentions' } }) : null,
    room.unread > 0 ? h('span', { class: 'badge', text: String(room.unread), attrs: { 'aria-label': room.unread + ' unread', 'data-testid': 'unread' } }) : null);
  const label = info.name + presenceText + (room.unread ? `, ${room.unread} unread` : '');
  return h('button', {
    class: 'room-item' + (room.unread ? ' unread' : ''),
    attrs: { 'aria-current': current ? 'true' : 'false', 'aria-label': label, 'data-room': info.id },
    on: { click: () => client.openRoom(info.id) },
  }, glyph, bdi(info.name, { class: 'name' }), badges, h('span', { class: 'preview' + (typing ? ' typing' : ''), attrs: { 'data-testid': 'preview' } }, preview));
}

/** In a DM's row, a button over the other person's picture that opens their profile card
 *  (a button cannot sit inside the row's own button, which opens the room). */
function peerButton(room, model, client) {
  const peer = room.info.kind === 'dm' && room.info.peer;
  if (!peer) return null;
  return h('button', {
    class: 'person peer-card', type: 'button', title: 'Profile of ' + peer.display_name,
    attrs: { 'aria-label': 'Profile of ' + peer.display_name },
    on: { click: (event) => openProfileCard(model, client, peer.id, event.currentTarget) },
  });
}

/** "typing…" in a DM, "Ann is typing…" in a room, or null when nobody is. */
function typingLine(room, model, client) {
  const typing = model.typingIn(room.id);
  if (typing.length === 0) return null;
  if (room.info.kind === 'dm') return 'typing…';
  if (typing.length > 1) return 'several people are typing…';
  return [bdi(nameOf(typing[0], model, client) || 'Someone'), ' is typing…'];
}

function authorPrefix(message, model, client) {
  if (message.author_id === model.me.id) return 'You: ';
  const name = nameOf(message.author_id, model, client);
  return name ? [bdi(name), ': '] : '';
}

/** A user's name, or null while they are looked up (the sidebar re-renders when they
 *  arrive). */
function nameOf(userId, model, client) {
  const user = model.users.get(userId);
  if (user) return user.display_name;
  client.lookUpUser(userId);
  return null;
}

/** Which rooms someone is typing in, as a string that changes when that does: the shell
 *  re-renders the sidebar when typing starts or lapses. */
export function typingSignature(model) {
  return [...model.rooms.keys()].filter((id) => model.typingIn(id).length > 0).join(',');
}
