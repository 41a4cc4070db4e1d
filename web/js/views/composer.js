// Writing: Enter sends, Shift+Enter starts a new line, Esc cancels an edit or a reply, the
// Up arrow in an empty composer edits your last message, and `@` suggests the room's
// members. The composer is one element kept across renders, so nothing typed is lost:
// each room keeps its own draft and its own picked files, and a recording goes to the
// room it was started in.

import { upload } from '../api.js';
import { bdi, h, replace } from '../dom.js';
import { filesSummary, pickedFile } from './attachments.js';
import { Recorder } from './recorder.js';

const SUGGESTIONS = 6;

export class Composer {
  constructor(model, client) {
    this.model = model;
    this.client = client;
    this.roomId = null;
    this.mode = null; // { kind: 'reply' | 'edit', message }
    this.drafts = new Map();
    /** Files picked in each room but not sent yet, while another room is open. */
    this.roomFiles = new Map();
    /** What the composer held before an edit began: given back when the edit ends. */
    this.beforeEdit = '';
    /** The smallest file the server refused as too large, and what it said (its limit):
     *  files as large are refused here, before their upload. The server names its limit
     *  only in that refusal. */
    this.refused = { size: Infinity, message: '' };
    this.suggestions = [];
    this.selected = 0;
    this.context = h('div', { class: 'composer-context', hidden: true });
    this.input = h('textarea', {
      rows: 1, placeholder: 'Write a message…',
      attrs: { dir: 'auto', 'aria-label': 'Message', 'aria-autocomplete': 'list', 'aria-controls': 'mention-suggestions', 'data-testid': 'composer' },
      on: { keydown: (event) => this.onKey(event), input: () => this.onInput() },
    });
    this.input.addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (files.length) {
        event.preventDefault();
        this.addFiles(files);
      }
    });
    this.sendButton = h('button', { class: 'btn primary', text: 'Send', on: { click: () => this.submit() } });
    this.list = h('ul', { class: 'suggestions', id: 'mention-suggestions', hidden: true, attrs: { role: 'listbox' } });
    /** Files picked for the next message: { key, name, size, progress, attachment, error,
     *  thumbnail } (`thumbnail`: an object URL of a picture, revoked when it goes). */
    this.files = [];
    this.fileList = h('div', { class: 'composer-files', hidden: true, attrs: { 'aria-live': 'polite' } });
    this.picker = h('input', { type: 'file', multiple: true, hidden: true, attrs: { 'data-testid': 'file-input' }, on: { change: () => { this.addFiles([...this.picker.files]); this.picker.value = ''; } } });
    this.recorder = new Recorder((message) => client.shell.toast(message));
    const attach = h('button', { class: 'icon-btn', text: '📎', title: 'Attach files', attrs: { 'aria-label': 'Attach files' }, on: { click: () => this.picker.click() } });
    const record = h('button', { class: 'icon-btn', text: '🎤', title: 'Record a voice message', attrs: { 'aria-label': 'Record a voice message', 'data-testid': 'record' }, on: { click: () => this.record() } });
    this.element = h('footer', { class: 'composer' }, this.list, this.context, this.fileList, this.recorder.element,
      h('div', { class: 'composer-row' }, attach, record, this.input, this.sendButton, this.picker));
  }

  /** Uploads files for the next message, showing their progress. */
  addFiles(files) {
    for (const file of files) {
      const entry = { key: crypto.randomUUID(), name: file.name || 'pasted file', size: file.size, progress: 0, attachment: null, error: null };
      if (file.type.startsWith('image/')) entry.thumbnail = URL.createObjectURL(file);
      this.files.push(entry);
      if (file.size >= this.refused.size) {
        entry.error = this.refused.message;
        continue;
      }
      upload(file, entry.name, { onProgress: (p) => { entry.progress = p; this.renderFiles(); } })
        .then((attachment) => { entry.attachment = attachment; })
        .catch((error) => { entry.error = this.uploadError(entry, error); })
        .finally(() => this.renderFiles());
    }
    this.renderFiles();
  }

  /** Says why an upload failed; one too large is remembered, so that the next file as
   *  large is refused without sending it all first. */
  uploadError(entry, error) {
    if (error.code === 'payload_too_large' && entry.size < this.refused.size) {
      this.refused = { size: entry.size, message: error.message };
    }
    return error.message;
  }

  renderFiles() {
    this.fileList.hidden = this.files.length === 0;
    replace(this.fileList, this.files.map((entry) => pickedFile(entry, () => {
      this.files = this.files.filter((f) => f !== entry);
      forget([entry]);
      this.renderFiles();
    })));
    const uploading = this.files.some((entry) => !entry.attachment && !entry.error);
    this.sendButton.disabled = uploading;
  }

  /** Records a voice message for the open room; it goes there even if another room is
   *  open by the time it is finished. */
  record() {
    if (!this.roomId) return;
    const roomId = this.roomId;
    const room = this.model.room(roomId);
    const label = room ? (room.info.kind === 'public' ? '#' : '') + room.info.name : null;
    this.recorder.start(label, (blob, name, ms) => this.sendRecording(roomId, blob, name, ms));
  }

  /** A finished voice recording goes out at once, as a message of its own. */
  async sendRecording(roomId, blob, name, durationMs) {
    if (blob.size >= this.refused.size) return this.client.shell.toast(this.refused.message);
    try {
      const attachment = await upload(blob, name, { durationMs });
      this.client.send(roomId, '', null, [attachment]);
    } catch (error) {
      this.client.shell.toast(error.message);
    }
  }

  /** Swaps the draft and the picked files for the room's own. An edit or a reply belongs
   *  to the room left, so it ends first: an edit gives back what was typed before it, which
   *  is that room's draft. */
  setRoom(roomId) {
    this.cancel();
    if (this.roomId) {
      this.drafts.set(this.roomId, this.input.value);
      this.roomFiles.set(this.roomId, this.files);
    }
    this.roomId = roomId;
    this.input.value = this.drafts.get(roomId) || '';
    this.files = this.roomFiles.get(roomId) || [];
    this.roomFiles.delete(roomId);
    this.renderFiles();
    this.resize();
  }

  setConnection(state) {
    this.input.placeholder = state === 'connected' ? 'Write a message…' : 'Write a message (it will be sent when the connection is back)…';
  }

  focus() {
    this.input.focus();
  }

  replyTo(message) {
    // An edit in progress ends first, giving back what was typed before it.
    if (this.mode && this.mode.kind === 'edit') this.cancel();
    this.mode = { kind: 'reply', message };
    this.showContext();
    this.focus();
  }

  edit(message) {
    if (!(this.mode && this.mode.kind === 'edit')) this.beforeEdit = this.input.value;
    this.mode = { kind: 'edit', message };
    this.input.value = message.body;
    this.showContext();
    this.resize();
    this.focus();
  }

  cancel() {
    const wasEditing = this.mode && this.mode.kind === 'edit';
    this.mode = null;
    this.context.hidden = true;
    if (wasEditing) {
      this.input.value = this.beforeEdit;
      this.beforeEdit = '';
      this.resize();
    }
    this.hideSuggestions();
  }

  showContext() {
    const { kind, message } = this.mode;
    const author = this.model.users.get(message.author_id)?.display_name || 'someone';
    const what = kind === 'reply' ? ['Replying to ', bdi(author), ': ', bdi(message.body.slice(0, 80) || filesSummary(message))] : 'Editing your message';
    replace(this.context, h('span', { class: 'what' }, what),
      h('button', { class: 'icon-btn', text: 'Cancel (Esc)', on: { click: () => { this.cancel(); this.focus(); } } }));
    this.context.hidden = false;
  }

  submit() {
    const body = this.input.value.trim();
    if (this.files.some((entry) => !entry.attachment && !entry.error)) return;
    const attachments = this.files.filter((entry) => entry.attachment).map((entry) => entry.attachment);
    if ((!body && attachments.length === 0) || !this.roomId) return;
    if (this.mode && this.mode.kind === 'edit') {
      if (body && body !== this.mode.message.body) this.client.edit(this.roomId, this.mode.message.id, body);
      // Back to what was typed before the edit.
      this.cancel();
      return;
    }
    this.client.send(this.roomId, body, this.mode ? this.mode.message.id : null, attachments);
    forget(this.files);
    this.files = [];
    this.renderFiles();
    this.input.value = '';
    this.drafts.delete(this.roomId);
    this.client.stoppedTyping(this.roomId);
    this.cancel();
    this.resize();
  }

  onKey(event) {
    if (!this.list.hidden) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        this.selected = (this.selected + step + this.suggestions.length) % this.suggestions.length;
        return this.renderSuggestions();
      }
      if (event.key === 'Enter' || event.key === 'Tab') {
        event.preventDefault();
        return this.accept(this.suggestions[this.selected]);
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        return this.hideSuggestions();
      }
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === 'Escape' && this.mode) {
      event.preventDefault();
      this.cancel();
    } else if (event.key === 'ArrowUp' && this.input.value === '') {
      const mine = this.model.messagesOf(this.roomId).filter((m) => m.author_id === this.model.me.id && !m.pending && !m.deleted);
      if (mine.length) {
        event.preventDefault();
        this.edit(mine[mine.length - 1]);
      }
    }
  }

  onInput() {
    this.resize();
    if (this.input.value.trim() && this.roomId && !(this.mode && this.mode.kind === 'edit')) this.client.typing(this.roomId);
    this.suggest();
  }

  resize() {
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(this.input.scrollHeight, 200) + 'px';
  }

  /** Suggests members when the word before the caret starts with `@`. */
  suggest() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const match = before.match(/(^|\s)@([a-z0-9_.-]*)$/i);
    const room = this.roomId && this.model.room(this.roomId);
    if (!match || !room) return this.hideSuggestions();
    const prefix = match[2].toLowerCase();
    this.suggestions = [...room.members.values()]
      .filter((m) => m.id !== this.model.me.id && (m.username.startsWith(prefix) || m.display_name.toLowerCase().startsWith(prefix)))
      .slice(0, SUGGESTIONS);
    this.selected = 0;
    if (this.suggestions.length === 0) return this.hideSuggestions();
    this.renderSuggestions();
  }

  renderSuggestions() {
    replace(this.list, this.suggestions.map((member, index) => h('li', {
      id: 'mention-' + member.id,
      attrs: { role: 'option', 'aria-selected': index === this.selected },
      on: { mousedown: (event) => { event.preventDefault(); this.accept(member); } },
    }, bdi(member.display_name), ` (@${member.username})`)));
    this.list.hidden = false;
    this.input.setAttribute('aria-activedescendant', 'mention-' + this.suggestions[this.selected].id);
  }

  hideSuggestions() {
    this.list.hidden = true;
    this.input.removeAttribute('aria-activedescendant');
  }

  accept(member) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@([a-z0-9_.-]*)$/i, '@' + member.username + ' ');
    this.input.value = before + this.input.value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = before.length;
    this.hideSuggestions();
    this.focus();
  }
}

/** Frees the thumbnails of files picked, once they are removed or sent. */
function forget(entries) {
  for (const entry of entries) if (entry.thumbnail) URL.revokeObjectURL(entry.thumbnail);
}
