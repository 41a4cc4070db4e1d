// Dialogs: create a room or group (and invite people), browse public rooms, find people and
// start a direct conversation, see and manage a room's members, block or unblock someone,
// edit your profile.

import { ApiError, api, get, post, uploadAvatar } from '../api.js';
import { bdi, h, keepingFocus, replace } from '../dom.js';
import { size } from './attachments.js';
import { signInMethodsSection } from './identities.js';
import { openProfileCard } from './profile-card.js';
import { onPresenceTick, presenceLabel, statusOf } from './presence.js';
// A cycle (conversation.js opens the members dialog), harmless: both sides only call each
// other's functions once the page runs, long after both modules are loaded.
import { avatar } from './conversation.js';

/** The largest picture the server takes as an avatar (docs/api.md, `PUT /me/avatar`):
 *  checked here so that a large photo is refused at once, not after its upload. */
const MAX_AVATAR_BYTES = 10 * 1024 * 1024;

/** Opens a modal <dialog> holding `content`; it removes itself when closed. `title` is
 *  text, or nodes when it holds a name (isolated in a <bdi>). */
export function modal(title, ...content) {
  const heading = h('h2', {}, title);
  const dialog = h('dialog', { attrs: { 'aria-label': heading.textContent } }, heading, content);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function closeButton(dialog, text = 'Close') {
  return h('button', { class: 'btn', type: 'button', text, on: { click: () => dialog.close() } });
}

/** A search box over users, calling `onPick(user)` for the one chosen. */
function userSearch(onPick, exclude = () => false) {
  const results = h('ul', { class: 'pick-list', attrs: { 'aria-live': 'polite' } });
  const input = h('input', { type: 'search', placeholder: 'Search people by name', attrs: { 'aria-label': 'Search people' } });
  let timer = null;
  const search = async () => {
    try {
      const { users } = await get('/users?q=' + encodeURIComponent(input.value.trim()));
      replace(results, users.filter((user) => !exclude(user)).map((user) => h('li', {},
        avatar(user, user.display_name),
        h('span', { class: 'grow' }, h('div', { text: user.display_name, attrs: { dir: 'auto' } }), h('div', { class: 'sub', text: '@' + user.username })),
        h('button', { class: 'btn', type: 'button', text: 'Choose', attrs: { 'aria-label': 'Choose ' + user.display_name }, on: { click: () => onPick(user) } }))));
    } catch (error) {
      replace(results, h('li', { text: error.message }));
    }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  search();
  return { element: h('div', { class: 'field' }, input, results), focus: () => input.focus() };
}

export function openCreateDialog(model, client) {
  const invited = new Map();
  const chips = h('div', { class: 'chips' });
  const renderChips = () => replace(chips, [...invited.values()].map((user) => bdi(user.display_name, { class: 'chip' })));
  const nameError = h('div', { class: 'field-error', attrs: { role: 'alert' } });
  const name = h('input', { id: 'room-name', required: true, maxLength: 64, attrs: { dir: 'auto', 'aria-describedby': 'room-name-error' } });
  nameError.id = 'room-name-error';
  const kind = h('select', { id: 'room-kind' },
    h('option', { value: 'public', text: 'Public room: anyone can find and join it' }),
    h('option', { value: 'private', text: 'Private group: only invited people' }));
  const search = userSearch((user) => {
    invited.set(user.id, user);
    renderChips();
  }, (user) => user.id === model.me.id);
  const formError = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  let dialog;
  const form = h('form', {
    on: {
      submit: async (event) => {
        event.preventDefault();
        nameError.textContent = formError.textContent = '';
        try {
          const room = await post('/rooms', { name: name.value, kind: kind.value, member_ids: [...invited.keys()] });
          model.addRoom(room);
          model.changed('rooms');
          dialog.close();
          client.openRoom(room.id);
        } catch (error) {
          (error instanceof ApiError && error.field === 'name' ? nameError : formError).textContent = error.message;
        }
      },
    },
  },
  h('div', { class: 'field' }, h('label', { htmlFor: 'room-name', text: 'Name' }), name, nameError),
  h('div', { class: 'field' }, h('label', { htmlFor: 'room-kind', text: 'Kind' }), kind),
  h('div', { class: 'field' }, h('span', { text: 'Invite people' }), chips, search.element),
  formError,
  h('div', { class: 'dialog-actions' }, h('button', { class: 'btn', type: 'button', text: 'Cancel', on: { click: () => dialog.close() } }), h('button', { class: 'btn primary', type: 'submit', text: 'Create' })));
  dialog = modal('New room or group', form);
  name.focus();
}

export async function openBrowseDialog(client) {
  const list = h('ul', { class: 'pick-list' });
  const input = h('input', { type: 'search', placeholder: 'Filter by name', attrs: { 'aria-label': 'Filter rooms' } });
  const dialog = modal('Public rooms', h('div', { class: 'field' }, input), list);
  dialog.append(h('div', { class: 'dialog-actions' }, closeButton(dialog)));
  const load = async () => {
    try {
      const { rooms } = await get('/rooms/public?q=' + encodeURIComponent(input.value.trim()));
      replace(list, rooms.length ? rooms.map((room) => h('li', {},
        h('span', { class: 'grow' }, h('div', {}, '# ', bdi(room.name)), h('div', { class: 'sub', text: `${room.member_count} members` })),
        h('button', {
          class: 'btn' + (room.joined ? '' : ' primary'), type: 'button', text: room.joined ? 'Open' : 'Join',
          on: { click: async () => {
            try {
              const joined = room.joined ? room : await post(`/rooms/${room.id}/join`);
              client.model.addRoom(joined);
              client.model.changed('rooms');
              dialog.close();
              client.openRoom(joined.id);
            } catch (error) {
              client.shell.toast(error.message);
            }
          } },
        }))) : h('li', { text: 'No public rooms match.' }));
    } catch (error) {
      replace(list, h('li', { text: error.message }));
    }
  };
  input.addEventListener('input', load);
  load();
  input.focus();
}

/** Opens the DM with `user` (the server makes it the first time); resolves to whether it
 *  opened (if not, a toast said why). */
export async function openDm(client, user) {
  try {
    const room = await post(`/dm/${user.id}`);
    client.model.addRoom(room);
    client.model.changed('rooms');
    client.openRoom(room.id);
    return true;
  } catch (error) {
    client.shell.toast(error.message);
    return false;
  }
}

export function openDmDialog(client) {
  let dialog;
  const search = userSearch(async (user) => {
    if (await openDm(client, user)) dialog.close();
  }, (user) => user.id === client.model.me.id);
  dialog = modal('Start a conversation', search.element);
  dialog.append(h('div', { class: 'dialog-actions' }, closeButton(dialog)));
  search.focus();
}

export function openMembersDialog(model, client, roomId) {
  const room = model.room(roomId);
  if (!room) return;
  const list = h('ul', { class: 'members' });
  const owner = room.info.role === 'owner';
  const render = () => keepingFocus(list, 'user', () => replace(list, [...room.members.values()].map((member) => {
    const card = (event) => openProfileCard(model, client, member.id, event.currentTarget);
    return h('li', { attrs: { 'data-user': member.id } },
      h('button', { class: 'person', type: 'button', attrs: { 'aria-label': 'Profile of ' + member.display_name }, on: { click: card } }, avatar(member, member.display_name)),
      h('span', { class: 'presence-dot', attrs: { 'data-status': statusOf(model, member.id), 'aria-hidden': 'true' } }),
      h('span', { class: 'grow' },
        h('div', {}, h('button', { class: 'person-name', type: 'button', on: { click: card } }, bdi(member.display_name)), ` (@${member.username})${member.role === 'owner' ? ' · owner' : ''}`),
        h('div', { class: 'sub', text: presenceLabel(model, member.id), attrs: { 'data-testid': 'presence-label' } }),
        member.bio ? h('div', { class: 'bio', text: member.bio, attrs: { dir: 'auto' } }) : null),
      member.id === model.me.id ? null : blockToggle(model, client, member),
      owner && member.id !== model.me.id && room.info.kind !== 'dm' ? h('button', {
        class: 'btn danger', type: 'button', text: 'Remove',
        on: { click: async () => {
          try {
            await api('DELETE', `/rooms/${roomId}/members/${member.id}`);
            await client.loadMembers(roomId);
            render();
          } catch (error) {
            client.shell.toast(error.message);
          }
        } },
      }) : null);
  })));
  render();
  // "Last seen 5 minutes ago" grows older while it is open.
  const stopTicking = onPresenceTick(render);
  // Names, pictures, presence and the list itself change while it is open.
  let queued = false;
  const stop = model.subscribe((what) => {
    if (queued || !['members', 'presence', 'rooms', 'blocks'].includes(what)) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      if (model.room(roomId)) render();
    });
  });
  const parts = [list];
  let dialog;
  if (room.info.kind !== 'dm') {
    const search = userSearch(async (user) => {
      try {
        await post(`/rooms/${roomId}/members`, { user_id: user.id });
        await client.loadMembers(roomId);
        render();
      } catch (error) {
        client.shell.toast(error.message);
      }
    }, (user) => room.members.has(user.id));
    parts.push(h('h3', { text: 'Invite people' }), search.element);
  }
  dialog = modal(['Members of ', bdi(room.info.name)], parts);
  dialog.addEventListener('close', () => {
    stop();
    stopTicking();
  });
  const leave = room.info.kind === 'dm' ? null : h('button', {
    class: 'btn danger', type: 'button', text: 'Leave room',
    on: { click: async () => {
      try {
        await post(`/rooms/${roomId}/leave`);
        dialog.close();
      } catch (error) {
        client.shell.toast(error.message);
      }
    } },
  });
  dialog.append(h('div', { class: 'dialog-actions' }, leave, closeButton(dialog)));
}

/** A Block button for `user`, or Unblock if you block them already. Blocking asks first. */
export function blockToggle(model, client, user) {
  const blocked = model.blocked.has(user.id);
  return h('button', {
    class: 'btn' + (blocked ? '' : ' danger'), type: 'button', text: blocked ? 'Unblock' : 'Block',
    attrs: { 'aria-label': (blocked ? 'Unblock ' : 'Block ') + user.display_name },
    on: { click: () => (blocked ? client.unblock(user).catch((error) => client.shell.toast(error.message)) : openBlockDialog(client, user)) },
  });
}

/** Asks before blocking `user`, saying what it does. */
export function openBlockDialog(client, user) {
  let dialog;
  const confirm = h('button', { class: 'btn danger', type: 'button', text: 'Block', on: { click: async () => {
    try {
      await client.block(user);
      dialog.close();
    } catch (error) {
      client.shell.toast(error.message);
    }
  } } });
  dialog = modal('Block this person?',
    h('p', {}, h('bdi', { text: user.display_name }), ' will no longer be able to message you or add you to groups, and your conversation with them will be hidden until you unblock them. Groups you share stay as they are.'),
    h('div', { class: 'dialog-actions' },
      h('button', { class: 'btn', type: 'button', text: 'Cancel', on: { click: () => dialog.close() } }), confirm));
  confirm.focus();
}

/** The people you block, each with Unblock; kept up to date while shown. */
function blockedList(model, client) {
  const list = h('ul', { class: 'pick-list', attrs: { 'data-testid': 'blocked-users' } });
  const render = () => keepingFocus(list, 'user', () => replace(list, model.blocked.size === 0
    ? h('li', { class: 'sub', text: 'You block nobody.' })
    : [...model.blocked.values()].map((user) => h('li', { attrs: { 'data-user': user.id } },
      avatar(user, user.display_name),
      h('span', { class: 'grow' }, h('bdi', { text: user.display_name }), h('div', { class: 'sub', text: '@' + user.username })),
      blockToggle(model, client, user)))));
  render();
  const stop = model.subscribe((what) => { if (what === 'blocks') render(); });
  return { element: list, stop };
}

/** Your profile: display name, a few words about you, your picture, and the ways you sign
 *  in. `ssoNotice` (`{text, error}`), the outcome of linking a provider just now, is shown
 *  beside the ways you sign in. */
export function openProfileDialog(model, client, { ssoNotice = null } = {}) {
  const me = model.me;
  const errors = new Map();
  const field = (name, label, input) => {
    const error = h('div', { class: 'field-error', id: 'profile-' + name + '-error', attrs: { role: 'alert' } });
    errors.set(name, error);
    input.id = 'profile-' + name;
    input.setAttribute('aria-describedby', error.id);
    return h('div', { class: 'field' }, h('label', { htmlFor: input.id, text: label }), input, error);
  };
  const name = h('input', { value: me.display_name, maxLength: 64, attrs: { dir: 'auto' } });
  const bio = h('textarea', { value: me.bio || '', maxLength: 300, rows: 3, attrs: { dir: 'auto' } });
  // A picture picked, or its removal, is only a preview until Save: `pictureChange` is the
  // file to upload, `'remove'`, or null (no change); Cancel forgets it.
  let pictureChange = null;
  let previewUrl = null;
  const preview = h('span', { class: 'avatar-preview', attrs: { 'data-testid': 'avatar-preview' } });
  const showPicture = (url, pending) => {
    if (previewUrl && previewUrl !== url) URL.revokeObjectURL(previewUrl);
    previewUrl = pending && url ? url : null;
    preview.classList.toggle('pending', pending);
    replace(preview, url ? h('img', { src: url, alt: pending ? 'Your new picture (not saved yet)' : 'Your picture' }) : h('span', { text: 'No picture' }));
  };
  showPicture(me.avatar_url, false);
  const picture = h('input', { type: 'file', accept: 'image/*', attrs: { 'data-testid': 'avatar-input' } });
  picture.addEventListener('change', () => {
    const file = picture.files[0];
    if (!file) return;
    errors.get('file').textContent = '';
    if (file.size > MAX_AVATAR_BYTES) {
      errors.get('file').textContent = `Avatars may be at most 10 MB; this picture is ${size(file.size)}.`;
      return;
    }
    pictureChange = file;
    showPicture(URL.createObjectURL(file), true);
  });
  const remove = h('button', { class: 'btn', type: 'button', text: 'Remove picture', on: { click: () => {
    errors.get('file').textContent = '';
    picture.value = '';
    pictureChange = me.avatar_url ? 'remove' : null;
    showPicture(null, pictureChange !== null);
  } } });
  /** Sends the picture change, if any; the profile's other fields follow. */
  const savePicture = async () => {
    if (pictureChange === null) return;
    try {
      const user = pictureChange === 'remove' ? await api('DELETE', '/me/avatar') : await uploadAvatar(pictureChange);
      model.updateUser(user);
      pictureChange = null;
      showPicture(user.avatar_url, false);
    } catch (error) {
      error.field = 'file';
      throw error;
    }
  };
  let dialog;
  const form = h('form', { on: { submit: async (event) => {
    event.preventDefault();
    for (const error of errors.values()) error.textContent = '';
    try {
      await savePicture();
      await client.saveProfile({ display_name: name.value, bio: bio.value });
      dialog.close();
    } catch (error) {
      const target = error instanceof ApiError && error.field && errors.get(error.field);
      (target || errors.get('display_name')).textContent = error.message;
    }
  } } },
  h('div', { class: 'profile-picture' }, preview, field('file', 'Picture', picture), remove),
  field('display_name', 'Display name', name),
  field('bio', 'About you', bio),
  h('div', { class: 'dialog-actions' },
    h('button', { class: 'btn', type: 'button', text: 'Cancel', on: { click: () => dialog.close() } }),
    h('button', { class: 'btn primary', type: 'submit', text: 'Save' })));
  const blocked = blockedList(model, client);
  dialog = modal('Your profile', form, signInMethodsSection(ssoNotice), h('h3', { text: 'Blocked people' }), blocked.element);
  dialog.addEventListener('close', () => {
    blocked.stop();
    showPicture(null, false);
  });
  name.focus();
}
