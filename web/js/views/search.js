// Message search: a dialog opened by Ctrl/Cmd-K, by "/" when no text field has the focus,
// or by the sidebar's search button (on a phone, in the room list).
// Results come as you type (GET /search, docs/api.md): each request waits for a pause in
// typing, and only the latest one's answer is shown (older ones are aborted, and a ticket
// drops any that still comes). Each result says its room, author and time, with the
// snippet's matches in <mark>, built as elements and text nodes (never markup). More come
// as the list is scrolled to its end, by its `next` cursor. The arrow keys move through
// the results and Enter opens one: its room opens at that message (`Client.openMessage`).

import { get } from '../api.js';
import { bdi, dayLabel, h, replace, timeLabel } from '../dom.js';
import { icon } from '../icons.js';

/** The pause in typing after which a search goes out. */
const DEBOUNCE_MS = 200;
/** Results asked for at once. */
const PAGE = 20;
/** How long to wait after a 429 that did not say (it always should). */
const DEFAULT_RETRY_S = 2;
/** What the server says of a query it will not run: shown as it is, with no "Try again". */
const QUERY_REFUSALS = new Set(['empty_query', 'query_too_long', 'invalid_query_characters', 'invalid_query']);

export class Search {
  constructor(model, client) {
    this.model = model;
    this.client = client;
    /** The results shown, oldest request's first: [{message, snippet}]. */
    this.results = [];
    /** The cursor of the next page of the results shown, or null when there is none. */
    this.next = null;
    /** The index of the result the arrow keys are on, or -1. */
    this.active = -1;
    /** Counts requests: an answer whose ticket is not the latest is dropped. */
    this.ticket = 0;
    /** Aborts the request under way, if any. */
    this.inFlight = null;
    this.timer = null;
    this.retryTimer = null;
    /** The element that had the focus when the dialog opened, given it back on close. */
    this.opener = null;

    this.input = h('input', {
      type: 'text', id: 'search-input', autocomplete: 'off', spellcheck: false, placeholder: 'Search messages',
      attrs: {
        role: 'combobox', 'aria-label': 'Search messages', 'aria-controls': 'search-results', 'aria-expanded': 'false',
        'aria-autocomplete': 'list', enterkeyhint: 'search', dir: 'auto', 'data-testid': 'search-input',
      },
      on: { input: () => this.schedule(), keydown: (event) => this.onKey(event) },
    });
    this.scope = h('input', { type: 'checkbox', id: 'search-scope', on: { change: () => this.search() } });
    this.scopeName = h('span');
    this.scopeLabel = h('label', { class: 'search-scope', attrs: { for: 'search-scope' } }, this.scope, ' Only in ', this.scopeName);
    this.status = h('p', { class: 'search-status', attrs: { role: 'status', 'aria-live': 'polite', 'data-testid': 'search-status' } });
    this.list = h('ul', { class: 'search-results plain', id: 'search-results', attrs: { role: 'listbox', 'aria-label': 'Results' } });
    this.more = h('button', { class: 'btn search-more', type: 'button', text: 'Load more', hidden: true, on: { click: () => this.loadMore() } });
    this.scroller = h('div', { class: 'search-scroller' }, this.list, this.more);
    this.dialog = h('dialog', { class: 'search-dialog', attrs: { 'aria-label': 'Search messages', 'data-testid': 'search' } },
      h('div', { class: 'search-bar' },
        icon('search'), this.input,
        h('button', { class: 'icon-btn', type: 'button', title: 'Close', attrs: { 'aria-label': 'Close search' }, on: { click: () => this.close() } }, icon('close'))),
      this.scopeLabel, this.status, this.scroller);
    this.dialog.addEventListener('close', () => this.closed());
    // A click on the backdrop (the dialog itself, outside its content) closes it.
    this.dialog.addEventListener('click', (event) => { if (event.target === this.dialog) this.close(); });
    document.body.append(this.dialog);
    // Scrolled to the end of the list, the next page comes.
    this.moreSeen = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    }, { root: this.scroller });
    this.moreSeen.observe(this.more);
    document.addEventListener('keydown', (event) => this.onShortcut(event));
  }

  /** Ctrl/Cmd-K anywhere, or "/" outside a text field and any dialog, opens the search. */
  onShortcut(event) {
    if (event.defaultPrevented || event.altKey) return;
    // Another dialog (a profile, the emoji picker) keeps its keys.
    if ([...document.querySelectorAll('dialog[open]')].some((dialog) => dialog !== this.dialog)) return;
    const commandK = (event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === 'k';
    const slash = event.key === '/' && !event.ctrlKey && !event.metaKey && !typing(event.target) && !this.dialog.open;
    if (!commandK && !slash) return;
    event.preventDefault();
    this.open();
  }

  /** Opens the dialog with the last query selected, so that typing replaces it. */
  open() {
    if (!this.dialog.open) {
      this.opener = document.activeElement;
      const room = this.client.activeRoom && this.model.room(this.client.activeRoom);
      this.scopeLabel.hidden = !room;
      if (room) replace(this.scopeName, room.info.kind === 'dm' ? ['your conversation with ', roomLabel(room)] : roomLabel(room));
      else this.scope.checked = false;
      this.dialog.showModal();
      if (this.input.value.trim()) this.search();
    }
    this.input.focus();
    this.input.select();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** The focus goes back where it was (to the search button drawn again in its place, if
   *  the sidebar re-rendered meanwhile); a search under way is dropped. */
  closed() {
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.ticket += 1;
    this.inFlight?.abort();
    this.loading = false;
    const opener = this.opener;
    this.opener = null;
    const target = opener?.isConnected ? opener : opener?.dataset?.testid === 'open-search' ? document.querySelector('[data-testid=open-search]') : null;
    target?.focus({ preventScroll: true });
  }

  /** The model changed: names that were not known yet (an author looked up) show. */
  update(what) {
    if (this.dialog.open && this.guessed && (what.has('messages') || what.has('rooms'))) this.renderResults();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.search(), DEBOUNCE_MS);
  }

  /** Searches for what the box holds now, in place of any search under way. */
  search() {
    clearTimeout(this.timer);
    this.next = null;
    this.request(null);
  }

  loadMore() {
    if (this.next && !this.loading) this.request(this.next);
  }

  /** Asks for the first page of results (`cursor` null) or the next one. Only the latest
   *  request counts: the one before is aborted, and its answer dropped if it still comes. */
  async request(cursor) {
    clearTimeout(this.retryTimer);
    this.inFlight?.abort();
    const ticket = ++this.ticket;
    const query = this.input.value.trim();
    this.more.hidden = true;
    if (!query) {
      this.loading = false;
      this.results = [];
      this.renderResults();
      return this.say('');
    }
    const params = new URLSearchParams({ q: query, limit: String(PAGE) });
    if (this.scope.checked && !this.scopeLabel.hidden && this.client.activeRoom) params.set('room_id', this.client.activeRoom);
    if (cursor) params.set('cursor', cursor);
    const controller = new AbortController();
    this.inFlight = controller;
    this.loading = true;
    this.list.setAttribute('aria-busy', 'true');
    if (!cursor) this.say('Searching…');
    let answered = false;
    try {
      const page = await get('/search?' + params, { signal: controller.signal });
      if (ticket !== this.ticket) return;
      this.results = cursor ? this.results.concat(page.results) : page.results;
      this.next = page.next ?? null;
      if (!cursor) {
        this.active = -1;
        this.scroller.scrollTop = 0;
      }
      this.renderResults();
      this.sayCount(query);
      answered = true;
    } catch (error) {
      if (ticket !== this.ticket || error.name === 'AbortError') return;
      this.failed(error, cursor);
    } finally {
      if (ticket === this.ticket) {
        this.loading = false;
        this.inFlight = null;
        this.list.removeAttribute('aria-busy');
        // After a failure the status line offers the way on (or waits out a 429): a
        // "Load more" in view would ask again at once, and again.
        this.more.hidden = !this.next || !answered;
      }
    }
  }

  /** Says why a search failed; a refusal for searching too fast is tried again as soon as
   *  the server says it may be. */
  failed(error, cursor) {
    // The results of the query before are not this one's.
    if (!cursor) {
      this.results = [];
      this.next = null;
      this.renderResults();
    }
    if (error.code === 'rate_limited') {
      const seconds = error.retryAfter || DEFAULT_RETRY_S;
      this.say(`Searching too fast: trying again in ${seconds} s.`);
      this.retryTimer = setTimeout(() => this.request(cursor), seconds * 1000);
      return;
    }
    if (QUERY_REFUSALS.has(error.code)) return this.say(error.message);
    const retry = h('button', { class: 'btn', type: 'button', text: 'Try again', on: { click: () => this.request(cursor) } });
    this.say(['Search failed: ' + error.message + ' ', retry], 'error');
  }

  say(content, state = null) {
    replace(this.status, content);
    if (state) this.status.dataset.state = state;
    else delete this.status.dataset.state;
  }

  sayCount(query) {
    const count = this.results.length;
    if (count === 0) return this.say(['No messages match ', bdi(query), '.'], 'empty');
    const more = this.next ? ', more below' : '';
    this.say(`${count} ${count === 1 ? 'message' : 'messages'}${more}.`);
  }

  renderResults() {
    this.guessed = false;
    replace(this.list, this.results.map((result, index) => this.resultElement(result, index)));
    this.input.setAttribute('aria-expanded', String(this.results.length > 0));
    this.setActive(Math.min(this.active, this.results.length - 1));
  }

  resultElement({ message, snippet }, index) {
    const room = this.model.room(message.room_id);
    const author = this.model.users.get(message.author_id);
    if (!author) {
      this.guessed = true;
      this.client.lookUpUser(message.author_id);
    }
    const date = new Date(message.created_at);
    const when = dayLabel(date) + ', ' + timeLabel(date);
    return h('li', {
      class: 'search-result', id: 'search-result-' + index,
      attrs: { role: 'option', 'aria-selected': 'false', 'data-testid': 'search-result', 'data-room': message.room_id, 'data-seq': message.seq },
      on: {
        click: () => this.choose(index),
        // The focus stays in the box, where the arrow keys work.
        mousedown: (event) => event.preventDefault(),
      },
    },
    h('div', { class: 'search-result-head' },
      h('span', { class: 'search-room' }, room ? roomLabel(room) : 'A room'),
      h('span', { class: 'search-author' }, bdi(author ? author.display_name : 'Someone')),
      h('time', { class: 'search-time', dateTime: message.created_at, text: when, title: date.toLocaleString() })),
    h('div', { class: 'search-snippet', attrs: { dir: 'auto' } }, highlighted(snippet.text, snippet.highlights)));
  }

  setActive(index) {
    const options = this.list.children;
    for (const option of options) option.setAttribute('aria-selected', 'false');
    this.active = index;
    const option = options[index];
    if (!option) return this.input.removeAttribute('aria-activedescendant');
    option.setAttribute('aria-selected', 'true');
    this.input.setAttribute('aria-activedescendant', option.id);
    option.scrollIntoView({ block: 'nearest' });
    // On the last result, the next page comes.
    if (index === options.length - 1) this.loadMore();
  }

  /** Up and Down move through the results, Enter opens the one chosen (or searches at
   *  once, before the pause, if none is). */
  onKey(event) {
    if (event.isComposing) return;
    const count = this.results.length;
    if (event.key === 'ArrowDown' && count) {
      event.preventDefault();
      this.setActive(Math.min(this.active + 1, count - 1));
    } else if (event.key === 'ArrowUp' && count) {
      event.preventDefault();
      this.setActive(Math.max(this.active - 1, 0));
    } else if (event.key === 'Enter') {
      event.preventDefault();
      if (this.active >= 0) this.choose(this.active);
      else this.search();
    }
  }

  /** Opens a result's room at its message. */
  choose(index) {
    const result = this.results[index];
    if (!result) return;
    const { room_id: roomId, seq } = result.message;
    // The message opened takes the focus, not what had it before the search.
    this.opener = null;
    this.close();
    if (!this.model.room(roomId)) return this.client.shell.toast('You are no longer in that room.');
    this.client.openMessage(roomId, seq);
  }
}

/** The button that opens message search (views/search.js), with its shortcuts named. */
export function searchButton(client) {
  return h('button', {
    class: 'icon-btn', type: 'button', title: 'Search messages (Ctrl+K or /)',
    attrs: { 'aria-label': 'Search messages', 'aria-keyshortcuts': 'Control+K Meta+K /', 'data-testid': 'open-search' },
    on: { click: () => client.shell.search.open() },
  }, icon('search'));
}

/** Whether a key press goes into a text field (where "/" is typed, not a shortcut). */
function typing(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color', 'file'].includes(target.type);
}

/** How a room is named in a result: "# name" for a public room, the group's name, or the
 *  other person's name for a DM. */
function roomLabel(room) {
  const info = room.info;
  if (info.kind === 'dm') return bdi(info.peer ? info.peer.display_name : info.name);
  return [info.kind === 'public' ? '# ' : '', bdi(info.name)];
}

/** A snippet as text nodes, with each highlighted range ([start, end) in UTF-16 code
 *  units, as JavaScript indexes strings) in a <mark>. Ranges out of order, overlapping or
 *  past the end are clipped rather than trusted. */
export function highlighted(text, ranges) {
  const nodes = [];
  let at = 0;
  for (const [from, to] of ranges || []) {
    const start = Math.max(at, Math.min(from, text.length));
    const end = Math.min(to, text.length);
    if (end <= start) continue;
    if (start > at) nodes.push(text.slice(at, start));
    nodes.push(h('mark', { text: text.slice(start, end) }));
    at = end;
  }
  if (at < text.length) nodes.push(text.slice(at));
  return nodes;
}
