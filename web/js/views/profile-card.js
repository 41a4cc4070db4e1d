// The profile card: a small card over the page for someone whose name or picture was
// clicked, with their picture, names, bio, presence (kept live) and a Message button; for
// yourself, Edit profile instead.

import { bdi, h, keepingFocus, replace } from '../dom.js';
// Cycles (conversation.js and dialogs.js use this module), harmless: every side only calls
// the others' functions once the page runs, long after all are loaded.
import { avatar } from './conversation.js';
import { openDm, openProfileDialog } from './dialogs.js';
import { onPresenceTick, presenceLabel, statusOf } from './presence.js';

/** What re-renders an open card: a user looked up or updated, presence, member lists. */
const RENDER_ON = new Set(['messages', 'rooms', 'presence', 'members']);

/** Opens the card of `userId` beside `anchor` (the element clicked, for its position; the
 *  focus goes back to it when the card closes). A user the model does not hold yet is looked
 *  up, and shown once they arrive. Returns the card's <dialog>. */
export function openProfileCard(model, client, userId, anchor) {
  document.querySelector('dialog.profile-card')?.close();
  const body = h('div', { class: 'profile-card-body' });
  const dialog = h('dialog', { class: 'profile-card', attrs: { 'aria-label': 'Profile', 'data-testid': 'profile-card' } }, body);
  const render = () => keepingFocus(body, 'card', () => renderCard(body, dialog, model, client, userId));
  render();
  let queued = false;
  const stopModel = model.subscribe((what) => {
    if (queued || !RENDER_ON.has(what)) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  });
  const stopTicking = onPresenceTick(render);
  // A click outside the card (on its backdrop) closes it; the card itself has no padding,
  // so a click on the <dialog> element is one outside its content.
  dialog.addEventListener('click', (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener('close', () => {
    stopModel();
    stopTicking();
    dialog.remove();
    if (anchor && anchor.isConnected) anchor.focus({ preventScroll: true });
  });
  document.body.append(dialog);
  dialog.showModal();
  place(dialog, anchor);
  return dialog;
}

function renderCard(body, dialog, model, client, userId) {
  const user = model.users.get(userId);
  if (!user) {
    client.lookUpUser(userId);
    replace(body, h('p', { class: 'sub', text: 'Loading…' }),
      h('div', { class: 'dialog-actions' }, h('button', { class: 'btn', type: 'button', text: 'Close', on: { click: () => dialog.close() } })));
    return;
  }
  dialog.setAttribute('aria-label', 'Profile of ' + user.display_name);
  const me = userId === model.me.id;
  const action = me
    ? h('button', { class: 'btn', type: 'button', text: 'Edit profile', on: { click: () => { dialog.close(); openProfileDialog(model, client); } } })
    : h('button', { class: 'btn primary', type: 'button', text: 'Message', attrs: { 'aria-label': 'Message ' + user.display_name }, on: { click: () => message(client, user) } });
  replace(body,
    h('div', { class: 'profile-card-head' },
      avatar(user, user.display_name),
      h('div', { class: 'grow' },
        h('h2', {}, bdi(user.display_name)),
        h('div', { class: 'sub', text: '@' + user.username }))),
    user.bio ? h('p', { class: 'bio', text: user.bio, attrs: { dir: 'auto' } }) : null,
    me ? null : h('p', { class: 'presence-line' },
      h('span', { class: 'presence-dot', attrs: { 'data-status': statusOf(model, userId), 'aria-hidden': 'true' } }),
      h('span', { text: presenceLabel(model, userId), attrs: { 'data-testid': 'presence-label' } })),
    h('div', { class: 'dialog-actions' }, action));
}

/** Opens the DM with `user`; every dialog open (the card, a member list under it) closes,
 *  as the conversation takes their place. */
function message(client, user) {
  for (const open of document.querySelectorAll('dialog[open]')) open.close();
  openDm(client, user);
}

/** Puts the card just below its anchor, kept on screen; on a narrow screen, or without an
 *  anchor, it stays where dialogs go (the middle). */
function place(dialog, anchor) {
  if (!anchor || !anchor.isConnected || window.innerWidth < 560) return;
  const at = anchor.getBoundingClientRect();
  const margin = 8;
  const width = dialog.offsetWidth;
  const height = dialog.offsetHeight;
  const left = Math.min(Math.max(margin, at.left), window.innerWidth - width - margin);
  const below = at.bottom + 4;
  const top = below + height + margin <= window.innerHeight ? below : Math.max(margin, at.top - height - 4);
  dialog.style.margin = '0';
  dialog.style.left = left + 'px';
  dialog.style.top = top + 'px';
}
