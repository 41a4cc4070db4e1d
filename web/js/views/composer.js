// Writing: Enter sends, Shift+Enter starts a new line, Esc cancels an edit or a reply, the
// Up arrow in an empty composer edits your last message, `@` suggests the room's members,
// and `:` and two letters suggest emoji by shortcode (a whole `:shortcode:` becomes its
// emoji); the emoji button opens the picker. The emoji module and its data are loaded on
// first use. The composer is one element kept across renders, so nothing typed is lost:
// each room keeps its own draft and its own picked files, and a recording goes to the
// room it was started in. Its buttons are icons (icons.js) with labels, and "Aa" beside it
// shows the formatting people can type (format-help.js).

import { upload } from '../api.js';
import { bdi, h, replace } from '../dom.js';
import { icon } from '../icons.js';
import { filesSummary, pickedFile } from './attachments.js';
import { rememberEmoji } from './emoji-recent.js';
import { FormatHelp } from './format-help.js';
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
    /** What the list under the caret offers: { id, content, accept() }, members or emoji. */
    this.suggestions = [];
    this.selected = 0;
    /** The emoji module and its data once loaded ({ module, data }), and the loading. */
    this.emoji = null;
    this.emojiLoading = null;
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
    this.sendButton = h('button', { class: 'btn primary with-icon send', type: 'button', on: { click: () => this.submit() } }, icon('send'), h('span', { class: 'label', text: 'Send' }));
    this.list = h('ul', { class: 'suggestions', id: 'mention-suggestions', hidden: true, attrs: { role: 'listbox' } });
    /** Files picked for the next message: { key, name, size, progress, attachment, error,
     *  thumbnail } (`thumbnail`: an object URL of a picture, revoked when it goes). */
    this.files = [];
    this.fileList = h('div', { class: 'composer-files', hidden: true, attrs: { 'aria-live': 'polite' } });
    this.picker = h('input', { type: 'file', multiple: true, hidden: true, attrs: { 'data-testid': 'file-input' }, on: { change: () => { this.addFiles([...this.picker.files]); this.picker.value = ''; } } });
    this.recorder = new Recorder((message) => client.shell.toast(message));
    const attach = h('button', { class: 'icon-btn', type: 'button', title: 'Attach files', attrs: { 'aria-label': 'Attach files' }, on: { click: () => this.picker.click() } }, icon('attach'));
    const record = h('button', { class: 'icon-btn', type: 'button', title: 'Record a voice message', attrs: { 'aria-label': 'Record a voice message', 'data-testid': 'record' }, on: { click: () => this.record() } }, icon('mic'));
    this.emojiButton = h('button', { class: 'icon-btn', type: 'button', title: 'Emoji', attrs: { 'aria-label': 'Insert emoji', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'data-testid': 'emoji-button' }, on: { click: () => this.openEmoji() } }, icon('smile'));
    this.help = new FormatHelp();
    this.element = h('footer', { class: 'composer' }, this.list, this.context, this.fileList, this.recorder.element,
      h('div', { class: 'composer-row' }, attach, record, this.emojiButton, this.input, this.help.element, this.sendButton, this.picker));
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
        return this.suggestions[this.selected].accept();
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

  /** Suggests members when the word before the caret starts with `@`, and emoji when it
   *  starts with `:`; turns a whole `:shortcode:` into its emoji. */
  suggest() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const mention = before.match(/(^|\s)@([a-z0-9_.-]*)$/i);
    if (mention) return this.suggestMembers(mention[2].toLowerCase());
    const shortcode = before.match(/(^|\s):([a-z0-9_+-]+):$/i);
    if (shortcode && this.replaceShortcode(before, shortcode[2])) return this.hideSuggestions();
    const partial = before.match(/(^|\s):([a-z0-9_+-]{2,})$/i);
    if (partial) return this.suggestEmoji(partial[2].toLowerCase());
    this.hideSuggestions();
  }

  suggestMembers(prefix) {
    const room = this.roomId && this.model.room(this.roomId);
    if (!room) return this.hideSuggestions();
    const members = [...room.members.values()]
      .filter((m) => m.id !== this.model.me.id && (m.username.startsWith(prefix) || m.display_name.toLowerCase().startsWith(prefix)))
      .slice(0, SUGGESTIONS);
    this.showSuggestions(members.map((member) => ({
      id: 'mention-' + member.id,
      content: [bdi(member.display_name), ` (@${member.username})`],
      accept: () => this.acceptMember(member),
    })));
  }

  suggestEmoji(query) {
    const emoji = this.loadEmoji();
    if (!emoji) return this.hideSuggestions();
    const { module, data } = emoji;
    this.showSuggestions(module.searchEmoji(data, query, SUGGESTIONS).map((found, index) => {
      const text = module.withTone(found);
      const code = module.shortcodeFor(found, query);
      return {
        id: 'emoji-suggestion-' + index,
        content: [h('span', { class: 'suggestion-emoji', text }), ` :${code}:`],
        accept: () => this.acceptEmoji(text),
      };
    }));
  }

  /** Replaces a whole `:shortcode:` just typed with its emoji; false if it is none. */
  replaceShortcode(before, code) {
    const emoji = this.loadEmoji();
    const text = emoji && emoji.module.emojiForShortcode(emoji.data, code);
    if (!text) return false;
    this.replaceBeforeCaret(before.length - code.length - 2, text);
    rememberEmoji(text);
    return true;
  }

  /** The emoji module and data if loaded; otherwise starts loading them and, once they are
   *  here, suggests again for what is typed then. */
  loadEmoji() {
    if (this.emoji) return this.emoji;
    if (!this.emojiLoading) {
      this.emojiLoading = import('./emoji.js')
        .then(async (module) => {
          this.emoji = { module, data: await module.loadEmoji() };
          if (document.activeElement === this.input) this.suggest();
        })
        .catch(() => { this.emojiLoading = null; });
    }
    return null;
  }

  showSuggestions(suggestions) {
    this.suggestions = suggestions;
    this.selected = 0;
    if (suggestions.length === 0) return this.hideSuggestions();
    this.renderSuggestions();
  }

  renderSuggestions() {
    replace(this.list, this.suggestions.map((suggestion, index) => h('li', {
      id: suggestion.id,
      attrs: { role: 'option', 'aria-selected': index === this.selected },
      on: { mousedown: (event) => { event.preventDefault(); suggestion.accept(); } },
    }, suggestion.content)));
    this.list.hidden = false;
    this.input.setAttribute('aria-activedescendant', this.suggestions[this.selected].id);
  }

  hideSuggestions() {
    this.list.hidden = true;
    this.input.removeAttribute('aria-activedescendant');
  }

  acceptMember(member) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@([a-z0-9_.-]*)$/i, '@' + member.username + ' ');
    this.input.value = before + this.input.value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = before.length;
    this.hideSuggestions();
    this.focus();
  }

  acceptEmoji(text) {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const partial = before.match(/:([a-z0-9_+-]*)$/i);
    if (partial) this.replaceBeforeCaret(partial.index, text);
    rememberEmoji(text);
    this.hideSuggestions();
    this.focus();
  }

  /** Replaces what lies between `start` and the caret with `text`, the caret after it. */
  replaceBeforeCaret(start, text) {
    const caret = this.input.selectionStart;
    this.input.value = this.input.value.slice(0, start) + text + this.input.value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = start + text.length;
    this.resize();
  }

  /** Opens the emoji picker; the emoji picked goes where the caret (or the selection) was
   *  when it opened. */
  async openEmoji() {
    const start = this.input.selectionStart;
    const end = this.input.selectionEnd;
    try {
      const { pickEmoji } = await import('./emoji.js');
      await pickEmoji(this.emojiButton, {
        onPick: (text) => {
          const value = this.input.value;
          this.input.value = value.slice(0, Math.min(start, value.length)) + text + value.slice(Math.min(end, value.length));
          this.input.selectionStart = this.input.selectionEnd = Math.min(start, value.length) + text.length;
          this.focus();
          this.onInput();
        },
      });
    } catch (error) {
      this.client.shell.toast(error.message);
    }
  }
}

/** Frees the thumbnails of files picked, once they are removed or sent. */
function forget(entries) {
  for (const entry of entries) if (entry.thumbnail) URL.revokeObjectURL(entry.thumbnail);
}
