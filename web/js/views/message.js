// One message of the open conversation, as an element: author and time (or, within a run
// of one person's messages, a time that shows on hover), the quote of what it replies to,
// its body, files, receipt, reactions and actions. The conversation builds an element
// again only when what it shows changed, which `messageKey` sums up.

import { bdi, h, initials, richText, timeLabel } from '../dom.js';
import { icon } from '../icons.js';
import { attachmentList, filesSummary } from './attachments.js';
import { quickEmoji, rememberEmoji } from './emoji-recent.js';
import { openProfileCard } from './profile-card.js';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/** The text of a reply's quote as it stands now: the original's first words if this page
 *  holds it (so an edit or a deletion shows at once), else what the server quoted. */
export function quoted(room, replyTo) {
  const original = room.messages.get(replyTo.message_id) || room.originals.get(replyTo.message_id);
  if (original) {
    if (original.deleted) return 'Message deleted';
    if (original.body) return original.body.slice(0, 100);
    return filesSummary(original) || 'Attachment';
  }
  if (replyTo.deleted) return 'Message deleted';
  if (replyTo.preview) return replyTo.preview;
  return 'Attachment';
}

/** ✓ sent, ✓✓ delivered, blue ✓✓ read in a DM; "Read by N" in a group: as data, so the
 *  conversation can tell whether it changed. */
export function receiptOf(view, room, message) {
  if (room.info.kind === 'dm') {
    const peer = room.info.peer && room.receipts.get(room.info.peer.id);
    const state = peer && peer.read_seq >= message.seq ? 'read' : peer && peer.delivered_seq >= message.seq ? 'delivered' : 'sent';
    return { state, text: state === 'sent' ? '✓' : '✓✓', title: state[0].toUpperCase() + state.slice(1) };
  }
  const readers = [...room.receipts.entries()]
    .filter(([id, r]) => id !== view.model.me.id && r.read_seq >= message.seq)
    .map(([id]) => view.nameOf(id, 'someone'));
  if (readers.length === 0) return { state: 'sent', text: '✓', title: 'Sent' };
  return { state: 'read', text: `Read by ${readers.length}`, title: readers.join(', '), group: true };
}

/** What a message's element shows, besides the message object itself: when this changes
 *  (or the object does), the element is built again. */
export function messageKey(view, room, message, place) {
  const author = view.model.users.get(message.author_id);
  const parts = [
    place.first ? 'F' : '', place.receipt ? JSON.stringify(place.receipt) : '',
    view.nameOf(message.author_id, 'Unknown'), author?.avatar_url || '',
    message.reply_to ? view.nameOf(message.reply_to.author_id, 'Someone') + '\u0000' + quoted(room, message.reply_to) : '',
    view.pickerFor === message.id ? 'P' : '', room.info.role || '',
  ];
  if (message.pending) parts.push(message.body, message.failed || '', message.retrying ? 'R' : '', message.attachments?.length || 0);
  for (const reaction of message.reactions) parts.push(reaction.user_ids.map((id) => view.nameOf(id, 'someone')).join(','));
  return parts.join('\u0001');
}

/** Builds a message's element. `place` says where it stands: `first` of a run (with the
 *  author's name and picture), and `receipt` (for the last of a run of one's own). */
export function messageElement(view, room, message, place) {
  const me = view.model.me;
  const author = view.model.users.get(message.author_id);
  const name = view.nameOf(message.author_id, 'Unknown');
  const own = message.author_id === me.id;
  const classes = ['message'];
  if (place.first) classes.push('first');
  if (own) classes.push('own');
  if (message.deleted) classes.push('deleted');
  if (message.pending) classes.push('pending');
  if (message.failed) classes.push('failed');
  if (!own && message.mentions.includes(me.id)) classes.push('mentions-me');
  const date = new Date(message.created_at);
  const time = (className) => h('time', { class: className, text: timeLabel(date), dateTime: message.created_at, title: date.toLocaleString() });
  // The author's picture and name open their profile card.
  const card = (event) => openProfileCard(view.model, view.client, message.author_id, event.currentTarget);
  const head = place.first ? [
    h('button', { class: 'person', type: 'button', attrs: { 'aria-label': 'Profile of ' + name }, on: { click: card } }, avatar(author, name)),
    h('div', { class: 'head' }, h('button', { class: 'person-name', type: 'button', on: { click: card } }, bdi(name, { class: 'author' })), time('time')),
  ] : [time('time hover-time')];
  const quote = message.reply_to ? h('div', { class: 'quote', attrs: { 'data-quote': message.reply_to.message_id } },
    bdi(view.nameOf(message.reply_to.author_id, 'Someone')), ': ', bdi(quoted(room, message.reply_to))) : null;
  const body = message.deleted
    ? h('div', { class: 'body', text: 'This message was deleted.' })
    : message.body ? h('div', { class: 'body', attrs: { dir: 'auto' } }, richText(message.body, view.usernames || view.model.usernames(), me.username)) : null;
  const meta = [];
  if (message.edited_at && !message.deleted) meta.push(h('span', { class: 'edited', text: ' (edited)' }));
  if (message.pending) meta.push(h('span', { class: 'status', text: message.failed ? 'Not sent: ' + message.failed : message.retrying ? 'Trying again…' : 'Sending…' }));
  else if (place.receipt && !message.deleted) meta.push(receiptElement(place.receipt));
  const reactions = message.reactions.length ? h('div', { class: 'reactions' }, message.reactions.map((reaction) => {
    const mine = reaction.user_ids.includes(me.id);
    const who = reaction.user_ids.map((id) => view.nameOf(id, 'someone')).join(', ');
    return h('button', {
      class: 'reaction' + (mine ? ' mine' : ''), title: who,
      attrs: { 'aria-pressed': mine, 'aria-label': `${reaction.emoji} ${reaction.count}: ${who}` },
      on: { click: () => view.client.toggleReaction(room.id, message.id, reaction.emoji) },
    }, bdi(reaction.emoji), ` ${reaction.count}`);
  })) : null;
  const element = h('article', {
    class: classes.join(' '),
    attrs: { 'data-id': message.id, 'data-seq': message.pending ? null : message.seq, 'aria-label': `${name}, ${timeLabel(date)}`, tabindex: '0' },
  }, head, quote, body, filesOf(view, message), meta, reactions);
  // A message's actions are built when it is first pointed at or focused (before Tab can
  // reach them): a room's page holds many messages, and most are never acted on. A failed
  // message shows its Retry at once.
  const withActions = () => {
    element.removeEventListener('pointerenter', withActions);
    element.removeEventListener('focusin', withActions);
    element.append(actions(view, room, message, own) || '');
  };
  if (message.failed || view.pickerFor === message.id) withActions();
  else {
    element.addEventListener('pointerenter', withActions);
    element.addEventListener('focusin', withActions);
  }
  return element;
}

function receiptElement(receipt) {
  const read = receipt.state === 'read' && !receipt.group;
  return h('span', {
    class: 'status' + (read ? ' read' : ''), text: receipt.text, title: receipt.title,
    attrs: { 'aria-label': receipt.group ? `${receipt.text}: ${receipt.title}` : receipt.state, 'data-receipt': receipt.state },
  });
}

/** A message's files, built once and moved into every element built for it: a new
 *  reaction must not restart a playing voice message or video, or reload a picture. */
function filesOf(view, message) {
  if (message.deleted || !message.attachments?.length) return null;
  let files = view.fileViews.get(message.id);
  if (!files) {
    files = attachmentList(message.attachments);
    view.fileViews.set(message.id, files);
  }
  return files;
}

function actions(view, room, message, own) {
  if (message.pending) {
    if (!message.failed) return null;
    const clientId = message.id.slice('pending-'.length);
    return h('div', { class: 'actions' },
      h('button', { class: 'icon-btn', text: 'Retry', on: { click: () => view.client.retryPending(clientId) } }),
      h('button', { class: 'icon-btn', text: 'Discard', on: { click: () => view.client.discardPending(clientId) } }));
  }
  if (message.deleted) return null;
  const canDelete = own || (room.info.role === 'owner' && room.info.kind !== 'dm');
  // An administrator deletes anything in a public room, through the administration API.
  const adminDelete = !canDelete && view.client.model.admin && room.info.kind === 'public';
  // The quick row is the emoji used most recently (today's six until there are some);
  // "More reactions" opens the full picker, loaded then.
  const react = (emoji) => { view.pickerFor = null; picker.hidden = true; rememberEmoji(emoji); view.client.toggleReaction(room.id, message.id, emoji); };
  const more = (event) => {
    const button = event.currentTarget;
    // A re-render while the picker was open replaced its button: Escape goes back to the new one.
    const refocus = (reason) => { if (reason === 'escape' && !button.isConnected) view.list.querySelector(`.message[data-id="${CSS.escape(message.id)}"] [data-testid=more-reactions]`)?.focus(); };
    import('./emoji.js').then(({ pickEmoji }) => pickEmoji(button, { onPick: react, onClose: refocus })).catch((error) => view.client.shell.toast(error.message));
  };
  const picker = h('span', { class: 'picker', hidden: view.pickerFor !== message.id }, quickEmoji(QUICK_REACTIONS).map((emoji) => h('button', {
    class: 'icon-btn', text: emoji, attrs: { 'aria-label': 'React ' + emoji },
    on: { click: () => react(emoji) },
  })), h('button', { class: 'icon-btn', title: 'More reactions', attrs: { 'aria-label': 'More reactions', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'data-testid': 'more-reactions' }, on: { click: more } }, icon('plus')));
  const togglePicker = () => {
    picker.hidden = !picker.hidden;
    view.pickerFor = picker.hidden ? null : message.id;
  };
  return h('div', { class: 'actions' },
    h('button', { class: 'icon-btn', title: 'Reply', attrs: { 'aria-label': 'Reply' }, on: { click: () => view.composer.replyTo(message) } }, icon('reply')),
    h('button', { class: 'icon-btn', title: 'React', attrs: { 'aria-label': 'Add reaction', 'aria-expanded': String(view.pickerFor === message.id) }, on: { click: (event) => { togglePicker(); event.currentTarget.setAttribute('aria-expanded', String(!picker.hidden)); } } }, icon('smile')),
    picker,
    own ? h('button', { class: 'icon-btn', title: 'Edit', attrs: { 'aria-label': 'Edit' }, on: { click: () => view.composer.edit(message) } }, icon('edit')) : null,
    canDelete ? h('button', { class: 'icon-btn', title: 'Delete', attrs: { 'aria-label': 'Delete' }, on: { click: () => { if (confirm('Delete this message for everyone?')) view.client.remove(room.id, message.id); } } }, icon('trash')) : null,
    adminDelete ? h('button', { class: 'icon-btn', title: 'Delete as administrator', attrs: { 'aria-label': 'Delete as administrator' }, on: { click: () => { if (confirm('Delete this message for everyone, as an administrator?')) view.client.removeAsAdmin(room.id, message.id); } } }, icon('trash')) : null);
}

/** A user's picture, or their initials. */
export function avatar(user, name) {
  if (user && user.avatar_url) return h('img', { class: 'avatar', src: user.avatar_url, alt: '', attrs: { 'aria-hidden': 'true' } });
  return h('span', { class: 'avatar', text: initials(name), attrs: { 'aria-hidden': 'true' } });
}
