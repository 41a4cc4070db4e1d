// Administration, for administrators only (the sidebar shows its button when `GET /me`
// says `admin`): the list of accounts, searched by name and read a page at a time, with
// Deactivate and Reactivate. The server checks every call (403 `not_admin` otherwise).

import { get, post } from '../api.js';
import { bdi, h, replace } from '../dom.js';
import { closeButton, modal } from './dialogs.js';

/** Accounts per page. */
const PAGE = 50;

export function openAdminDialog(model, client) {
  const input = h('input', { type: 'search', placeholder: 'Search accounts by name', attrs: { 'aria-label': 'Search accounts', 'data-testid': 'admin-search' } });
  const list = h('ul', { class: 'pick-list admin-users', attrs: { 'aria-live': 'polite', 'data-testid': 'admin-users' } });
  const more = h('button', { class: 'btn', type: 'button', text: 'More', hidden: true });
  const status = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  /** The accounts shown, by id, and where the next page starts. */
  let shown = [];
  let next = null;
  /** Only the latest search's answer is shown. */
  let ticket = 0;

  const render = () => {
    replace(list, shown.map((user) => accountRow(user, user.id === model.me.id, change)));
    if (!shown.length) list.append(h('li', { class: 'empty', text: 'No accounts match.' }));
    more.hidden = !next;
  };
  const load = async (after) => {
    const mine = ++ticket;
    const query = new URLSearchParams({ q: input.value.trim(), limit: String(PAGE) });
    if (after) query.set('after', after);
    try {
      const page = await get('/admin/users?' + query);
      if (mine !== ticket) return;
      shown = after ? shown.concat(page.users) : page.users;
      next = page.next;
      status.textContent = '';
      render();
    } catch (error) {
      if (mine === ticket) status.textContent = error.message;
    }
  };
  const change = async (user, action) => {
    try {
      const { user: changed } = await post(`/admin/users/${encodeURIComponent(user.id)}/${action}`);
      shown = shown.map((u) => (u.id === changed.id ? changed : u));
      status.textContent = '';
      render();
      client.shell.toast(`${changed.display_name} is ${changed.deactivated ? 'deactivated' : 'active again'}.`);
    } catch (error) {
      status.textContent = error.message;
    }
  };
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(null), 200);
  });
  more.addEventListener('click', () => load(next));

  const dialog = modal('Administration',
    h('p', { class: 'sub', text: 'A deactivated account cannot sign in and is signed out everywhere at once; its messages stay.' }),
    h('div', { class: 'field' }, input), list, more, status);
  dialog.classList.add('admin-dialog');
  dialog.append(h('div', { class: 'dialog-actions' }, closeButton(dialog)));
  load(null);
  input.focus();
}

/** One account: names, status, and the button that changes it (none for yourself). */
function accountRow(user, yourself, change) {
  const badges = [
    user.admin ? h('span', { class: 'chip', text: 'Administrator' }) : null,
    user.deactivated ? h('span', { class: 'chip deactivated', text: 'Deactivated' }) : null,
  ];
  const action = yourself ? null : user.deactivated
    ? h('button', { class: 'btn', type: 'button', text: 'Reactivate', attrs: { 'aria-label': 'Reactivate ' + user.username }, on: { click: () => change(user, 'reactivate') } })
    : h('button', { class: 'btn danger', type: 'button', text: 'Deactivate', attrs: { 'aria-label': 'Deactivate ' + user.username }, on: { click: () => { if (confirm(`Deactivate @${user.username}? They are signed out everywhere at once.`)) change(user, 'deactivate'); } } });
  return h('li', { attrs: { 'data-username': user.username, 'data-status': user.deactivated ? 'deactivated' : 'active' } },
    h('span', { class: 'grow' }, h('div', {}, bdi(user.display_name)), h('div', { class: 'sub', text: '@' + user.username })),
    badges, action);
}
