// The sidebar: who you are, the connection's state, what you can start, and your rooms
// (public rooms, groups, direct messages) with unread and mention badges, a preview of the
// last message and, for direct messages, the other person's presence.

import { bdi, h, initials, replace } from '../dom.js';
import { filesSummary } from './attachments.js';
import { openBrowseDialog, openCreateDialog, openDmDialog, openProfileDialog } from './dialogs.js';

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
    h('button', { class: 'icon-btn', text: 'Sign out', attrs: { 'aria-label': 'Sign out' }, on: { click: () => client.signOut() } }));

  const actions = h('div', { class: 'sidebar-actions' },
    h('button', { class: 'btn', text: '+ Room', on: { click: () => openCreateDialog(model, client) } }),
    h('button', { class: 'btn', text: 'Browse', on: { click: () => openBrowseDialog(client) } }),
    h('button', { class: 'btn', text: '+ Message', on: { click: () => openDmDialog(client) } }),
    client.notificationsAllowed() || !('Notification' in window) ? null :
      h('button', { class: 'btn', text: 'Enable notifications', on: { click: () => client.enableNotifications() } }));

  const rooms = [...model.rooms.values()].sort((a, b) => lastActivity(b) - lastActivity(a));
  const section = (title, kind) => {
    const items = rooms.filter((room) => room.info.kind === kind).map((room) => roomItem(room, model, client, room.id === active));
    return items.length ? [h('h3', { class: 'room-section', text: title }), h('ul', { class: 'plain', attrs: { role: 'list' } }, items.map((item) => h('li', {}, item)))] : [];
  };
  const list = h('div', { class: 'room-list' },
    section('Rooms', 'public'), section('Groups', 'private'), section('Direct messages', 'dm'),
    rooms.length === 0 ? h('p', { class: 'empty', text: 'No rooms yet. Browse public rooms or start a conversation.' }) : null);
  replace(container, head, actions, list);
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
  const preview = last ? (last.deleted ? 'Message deleted' : [authorPrefix(last, model), bdi(last.body.split('\n')[0] || filesSummary(last))]) : '';
  const badges = h('span', { class: 'badges' },
    room.mentions > 0 ? h('span', { class: 'badge mention', text: '@' + room.mentions, attrs: { 'aria-label': room.mentions + ' mentions' } }) : null,
    room.unread > 0 ? h('span', { class: 'badge', text: String(room.unread), attrs: { 'aria-label': room.unread + ' unread', 'data-testid': 'unread' } }) : null);
  const label = info.name + presenceText + (room.unread ? `, ${room.unread} unread` : '');
  return h('button', {
    class: 'room-item' + (room.unread ? ' unread' : ''),
    attrs: { 'aria-current': current ? 'true' : 'false', 'aria-label': label, 'data-room': info.id },
    on: { click: () => client.openRoom(info.id) },
  }, glyph, bdi(info.name, { class: 'name' }), badges, h('span', { class: 'preview' }, preview));
}

function authorPrefix(message, model) {
  if (message.author_id === model.me.id) return 'You: ';
  const author = model.users.get(message.author_id);
  return author ? [bdi(author.display_name), ': '] : '';
}
