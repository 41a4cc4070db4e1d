// The emoji picker and the emoji data. This module and its data (`web/emoji/data.json`,
// made from GitHub's gemoji by `web/emoji/generate.py`) are loaded only when first needed,
// by `import()` and `fetch`: nothing of them comes with the page.
//
// The picker is a popover beside the button that opened it, appended to the document's
// body so that a re-render of the view around that button leaves it open. Its categories
// are drawn only as they scroll into view, so opening it builds a few hundred buttons, not
// two thousand. Emoji are text: the picker sets them as text content and labels, never as
// markup.

import { h, replace } from '../dom.js';
import { recentEmoji, rememberEmoji, setSkinTone, skinTone } from './emoji-recent.js';

const DATA_URL = new URL('../../emoji/data.json', import.meta.url);
/** Emoji per row; emoji.css sizes the grid to match. */
const COLUMNS = 8;
/** The height of a row in pixels, as in emoji.css: a category not drawn yet takes the room
 *  it will need, so that the scroll bar and the category tabs are right from the start. */
const ROW_HEIGHT = 36;
/** Search shows at most this many matches. */
const RESULTS = 200;
const MODIFIERS = ['', '\u{1F3FB}', '\u{1F3FC}', '\u{1F3FD}', '\u{1F3FE}', '\u{1F3FF}'];
const TONE_NAMES = ['Default skin tone', 'Light skin tone', 'Medium-light skin tone', 'Medium skin tone', 'Medium-dark skin tone', 'Dark skin tone'];
const TAB_ICONS = {
  'Recently used': '🕘', 'Smileys & Emotion': '😀', 'People & Body': '👋', 'Animals & Nature': '🐻', 'Food & Drink': '🍔',
  'Travel & Places': '🚗', 'Activities': '⚽', 'Objects': '💡', 'Symbols': '🔣', 'Flags': '🏁',
};
const TONE_OR_PRESENTATION = /[\u{1F3FB}-\u{1F3FF}\uFE0F]/gu;

let loading = null;

/** The emoji data, fetched once: `{ categories: [{ name, emoji }], byCode, byKey }`, where
 *  each emoji is `{ char, codes, name, tags, words, tones, order }`. A failed fetch is tried
 *  again on the next call. */
export function loadEmoji() {
  if (!loading) {
    loading = fetch(DATA_URL).then((response) => {
      if (!response.ok) throw new Error(`The emoji could not be loaded (${response.status}).`);
      return response.json();
    }).then(build);
    loading.catch(() => { loading = null; });
  }
  return loading;
}

function build(raw) {
  const byCode = new Map();
  const byKey = new Map();
  let order = 0;
  const categories = raw.map(([category, rows]) => ({
    name: category,
    emoji: rows.map(([char, codes, name, tags, tones]) => {
      const emoji = {
        char, codes: codes.split(' '), name, tags, tones: tones === 1, order: order++,
        words: `${codes.replaceAll('_', ' ')} ${name} ${tags}`.toLowerCase().split(/[\s-]+/).filter(Boolean),
      };
      for (const code of emoji.codes) byCode.set(code, emoji);
      byKey.set(keyOf(char), emoji);
      return emoji;
    }),
  }));
  return { categories, byCode, byKey };
}

/** An emoji without skin tone or presentation selector: what finds it in the data again. */
function keyOf(text) {
  return text.replace(TONE_OR_PRESENTATION, '');
}

/** The emoji as written with skin tone `tone` (0 to 5), if it takes one. The modifier goes
 *  after the first person (in place of a presentation selector there), and after the last
 *  too in a sequence of several people (two holding hands, a couple). */
export function withTone(emoji, tone = skinTone()) {
  if (!emoji.tones || !tone) return emoji.char;
  const modifier = MODIFIERS[tone];
  const [first, ...rest] = [...emoji.char];
  if (rest[0] === '\uFE0F') rest.shift();
  const people = emoji.char.split('\u200D').length > 2;
  return first + modifier + rest.join('') + (people ? modifier : '');
}

/** The emoji written `:code:`, with the chosen skin tone, or null. */
export function emojiForShortcode(data, code) {
  const emoji = data.byCode.get(code.toLowerCase());
  return emoji ? withTone(emoji) : null;
}

/** Emoji matching `query` (a shortcode, a name or a keyword, in part, any case), best
 *  first: a shortcode exactly, then a shortcode's start, a word's start, anywhere. Several
 *  words must each match. */
export function searchEmoji(data, query, limit = RESULTS) {
  const terms = query.toLowerCase().replace(/^:|:$/g, '').split(/\s+/).filter(Boolean);
  if (terms.length === 0) return [];
  const found = [];
  for (const category of data.categories) {
    for (const emoji of category.emoji) {
      let worst = 0;
      for (const term of terms) {
        const rank = rankOf(emoji, term);
        if (rank < 0) { worst = -1; break; }
        worst = Math.max(worst, rank);
      }
      if (worst >= 0) found.push({ emoji, rank: worst });
    }
  }
  found.sort((a, b) => a.rank - b.rank || a.emoji.order - b.emoji.order);
  return found.slice(0, limit).map((match) => match.emoji);
}

function rankOf(emoji, term) {
  if (emoji.codes.includes(term)) return 0;
  if (emoji.codes.some((code) => code.startsWith(term))) return 1;
  if (emoji.words.some((word) => word.startsWith(term))) return 2;
  if (emoji.codes.some((code) => code.includes(term)) || emoji.name.includes(term) || emoji.tags.includes(term)) return 3;
  return -1;
}

/** The shortcode to show for `emoji` found by `query`: the one that matched, if any. */
export function shortcodeFor(emoji, query) {
  const term = query.toLowerCase();
  return emoji.codes.find((code) => code.startsWith(term)) || emoji.codes.find((code) => code.includes(term)) || emoji.codes[0];
}

/** The open picker, if any: one at a time. */
let open = null;
/** Counts calls, so that a picker whose data arrived after a later call does not open. */
let opening = 0;

/**
 * Opens the emoji picker beside `anchor` (the button that opened it), or closes it if it is
 * already open there. `onPick(emoji)` gets the emoji picked, as text with the chosen skin
 * tone; the picker then closes. `onClose(reason)` is called whenever it closes, with
 * `'pick'`, `'escape'` (focus has gone back to `anchor`, if it is still in the page) or
 * `'outside'` (a click or the focus went elsewhere). Resolves to `{ close() }`, or to null
 * when the call closed the picker instead; rejects if the data cannot be loaded.
 */
export async function pickEmoji(anchor, { onPick, onClose } = {}) {
  const call = ++opening;
  if (open && open.anchor === anchor) {
    open.close('outside');
    return null;
  }
  if (open) open.close('outside');
  const data = await loadEmoji();
  if (call !== opening) return null;
  open = new Picker(anchor, data, onPick, onClose);
  return { close: () => open?.close('outside') };
}

class Picker {
  constructor(anchor, data, onPick, onClose) {
    this.anchor = anchor;
    this.data = data;
    this.onPick = onPick;
    this.onClose = onClose;
    this.tone = skinTone();
    this.closed = false;
    this.search = h('input', {
      type: 'search', placeholder: 'Search emoji',
      attrs: { 'aria-label': 'Search emoji', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'emoji-search' },
      on: { input: () => this.filter() },
    });
    this.toneButton = h('button', {
      type: 'button', class: 'emoji-tone-button', title: 'Skin tone',
      attrs: { 'aria-haspopup': 'true', 'aria-expanded': 'false', 'data-testid': 'emoji-tone' },
      on: { click: () => this.toggleTones() },
    });
    this.toneChoices = h('div', { class: 'emoji-tones', hidden: true, attrs: { role: 'group', 'aria-label': 'Skin tone' } },
      MODIFIERS.map((modifier, tone) => h('button', {
        type: 'button', text: '✋' + modifier,
        attrs: { 'aria-label': TONE_NAMES[tone], 'data-tone': tone },
        on: { click: () => this.setTone(tone) },
      })));
    this.tabs = h('nav', { class: 'emoji-tabs', attrs: { 'aria-label': 'Emoji categories' } });
    this.body = h('div', { class: 'emoji-body' });
    this.preview = h('div', { class: 'emoji-preview', attrs: { 'aria-hidden': 'true' } });
    this.element = h('div', { class: 'emoji-picker', attrs: { role: 'dialog', 'aria-label': 'Emoji' } },
      h('div', { class: 'emoji-top' }, this.search, this.toneButton), this.toneChoices, this.tabs, this.body, this.preview);

    this.body.addEventListener('click', (event) => {
      const cell = event.target.closest('.emoji-cell');
      if (cell) this.pick(cell);
    });
    this.body.addEventListener('scroll', () => this.markTab(), { passive: true });
    for (const event of ['mouseover', 'focusin']) {
      this.body.addEventListener(event, (e) => { const cell = e.target.closest('.emoji-cell'); if (cell) this.show(cell); });
    }
    this.element.addEventListener('keydown', (event) => this.onKey(event));
    this.element.addEventListener('focusout', (event) => {
      const to = event.relatedTarget;
      // The anchor is left out: a click on it closes the picker by calling pickEmoji again.
      if (to && !this.element.contains(to) && !this.anchor.contains(to)) this.close('outside');
    });
    this.outside = (event) => {
      if (!this.element.contains(event.target) && !this.anchor.contains(event.target)) this.close('outside');
    };
    this.reposition = () => this.place();
    document.addEventListener('pointerdown', this.outside, true);
    window.addEventListener('resize', this.reposition);

    // Categories are drawn as they come near the visible part of the list.
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) this.fill(entry.target.section);
    }, { root: this.body, rootMargin: '200px 0px' });
    this.categories = this.makeSections();
    this.sections = this.categories;
    this.updateToneButton();
    this.showCategories();
    document.body.append(this.element);
    this.anchor.setAttribute('aria-expanded', 'true');
    this.place();
    this.markTab();
    this.search.focus({ preventScroll: true });
  }

  /** The recently used emoji (as they were used), then every category. */
  makeSections() {
    const recent = recentEmoji().map((text) => ({ text, emoji: this.data.byKey.get(keyOf(text)) })).filter((item) => item.emoji);
    const sections = [];
    if (recent.length) sections.push(this.section('Recently used', recent, 'emoji-recent'));
    for (const category of this.data.categories) sections.push(this.section(category.name, category.emoji.map((emoji) => ({ emoji }))));
    return sections;
  }

  /** A titled grid of `items` ({ emoji, text? }: `text` is fixed, otherwise the emoji takes
   *  the chosen skin tone), left empty, at its full height, until `fill`. */
  section(name, items, testid = null) {
    const grid = h('div', { class: 'emoji-grid', attrs: { role: 'group', 'aria-label': name } });
    const element = h('section', { class: 'emoji-section', attrs: { 'data-testid': testid } }, h('h3', { text: name }), grid);
    const section = { name, items, element, grid, cells: null };
    grid.section = section;
    grid.style.height = Math.ceil(items.length / COLUMNS) * ROW_HEIGHT + 'px';
    return section;
  }

  fill(section) {
    if (section.cells) return;
    section.cells = section.items.map((item, index) => h('button', {
      type: 'button', class: 'emoji-cell', tabIndex: -1, text: item.text || withTone(item.emoji, this.tone),
      attrs: { 'aria-label': item.emoji.name, 'data-emoji': item.emoji.char },
      emojiItem: item, emojiSection: section, emojiIndex: index,
    }));
    replace(section.grid, section.cells);
    section.grid.style.height = '';
    this.observer.unobserve(section.grid);
    if (!this.body.querySelector('.emoji-cell[tabindex="0"]') && section === this.sections[0]) this.rove(section.cells[0]);
  }

  showCategories() {
    this.sections = this.categories;
    replace(this.body, this.sections.map((section) => section.element));
    for (const section of this.sections) if (!section.cells) this.observer.observe(section.grid);
    replace(this.tabs, this.sections.map((section) => h('button', {
      type: 'button', class: 'emoji-tab', text: TAB_ICONS[section.name] || section.name[0], title: section.name,
      attrs: { 'aria-label': section.name },
      on: { click: () => this.jumpTo(section) },
    })));
    this.tabs.hidden = false;
    this.fill(this.sections[0]);
    this.rove(this.sections[0].cells[0]);
    this.markTab();
  }

  filter() {
    const query = this.search.value.trim().replace(/^:+|:+$/g, '');
    if (!query) {
      this.body.scrollTop = 0;
      return this.showCategories();
    }
    const found = searchEmoji(this.data, query);
    this.tabs.hidden = true;
    if (found.length === 0) {
      this.sections = [];
      replace(this.body, h('p', { class: 'emoji-none', text: 'No emoji found.' }));
      return;
    }
    const results = this.section('Search results', found.map((emoji) => ({ emoji })), 'emoji-results');
    this.sections = [results];
    replace(this.body, results.element);
    this.fill(results);
    this.rove(results.cells[0]);
    this.body.scrollTop = 0;
  }

  jumpTo(section) {
    this.fill(section);
    this.body.scrollTop = section.element.offsetTop;
    this.rove(section.cells[0]);
    this.markTab();
  }

  /** Marks the tab of the category at the top of the list. */
  markTab() {
    if (this.tabs.hidden) return;
    let current = 0;
    this.sections.forEach((section, index) => { if (section.element.offsetTop <= this.body.scrollTop + 4) current = index; });
    [...this.tabs.children].forEach((tab, index) => tab.setAttribute('aria-current', String(index === current)));
  }

  /** Makes `cell` the grid's one stop for Tab. */
  rove(cell) {
    if (!cell) return;
    for (const other of this.body.querySelectorAll('.emoji-cell[tabindex="0"]')) other.tabIndex = -1;
    cell.tabIndex = 0;
  }

  show(cell) {
    const { emoji } = cell.emojiItem;
    replace(this.preview, h('span', { class: 'emoji-preview-char', text: cell.textContent }),
      h('span', { class: 'emoji-preview-name', text: emoji.name }), h('span', { class: 'emoji-preview-code', text: `:${emoji.codes[0]}:` }));
  }

  onKey(event) {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      if (!this.toneChoices.hidden) return this.toggleTones();
      return this.close('escape');
    }
    if (event.target === this.search) {
      if (event.key === 'ArrowDown') {
        event.preventDefault();
        this.focusCell(0, 0);
      } else if (event.key === 'Enter') {
        // Enter in the search box takes the best match.
        event.preventDefault();
        const section = this.sections[0];
        if (this.search.value.trim() && section && section.cells && section.cells[0]) this.pick(section.cells[0]);
      }
      return;
    }
    const cell = event.target.closest('.emoji-cell');
    if (!cell) return;
    const target = this.neighbour(this.sections.indexOf(cell.emojiSection), cell.emojiIndex, event.key);
    if (target) {
      event.preventDefault();
      this.focusCell(...target);
    } else if (event.key === 'ArrowUp') {
      // Up from the first row goes back to the search box.
      event.preventDefault();
      this.search.focus();
    } else if (event.key.length === 1 && event.key !== ' ' && !event.ctrlKey && !event.metaKey && !event.altKey) {
      // Typing in the grid searches: the key goes on into the search box.
      this.search.focus();
    }
  }

  /** The [section, index] an arrow key moves to from `index` in section `s`, or null. Up
   *  and Down keep the column, going on into the next or previous category. */
  neighbour(s, index, key) {
    const count = (k) => this.sections[k].items.length;
    const last = this.sections.length - 1;
    if (key === 'ArrowRight') {
      if (index + 1 < count(s)) return [s, index + 1];
      return s < last ? [s + 1, 0] : null;
    }
    if (key === 'ArrowLeft') {
      if (index > 0) return [s, index - 1];
      return s > 0 ? [s - 1, count(s - 1) - 1] : null;
    }
    const column = index % COLUMNS;
    if (key === 'ArrowDown') {
      if (index + COLUMNS < count(s)) return [s, index + COLUMNS];
      // A shorter last row: its last emoji, if the current one is not on that row already.
      if (Math.floor(index / COLUMNS) < Math.floor((count(s) - 1) / COLUMNS)) return [s, count(s) - 1];
      return s < last ? [s + 1, Math.min(column, count(s + 1) - 1)] : null;
    }
    if (key === 'ArrowUp') {
      if (index >= COLUMNS) return [s, index - COLUMNS];
      if (s === 0) return null;
      const lastRow = Math.floor((count(s - 1) - 1) / COLUMNS) * COLUMNS;
      return [s - 1, Math.min(lastRow + column, count(s - 1) - 1)];
    }
    return null;
  }

  focusCell(s, index) {
    const section = this.sections[s];
    if (!section) return;
    this.fill(section);
    const cell = section.cells[index];
    if (!cell) return;
    this.rove(cell);
    cell.focus();
  }

  toggleTones() {
    this.toneChoices.hidden = !this.toneChoices.hidden;
    this.toneButton.setAttribute('aria-expanded', String(!this.toneChoices.hidden));
    if (!this.toneChoices.hidden) this.toneChoices.children[this.tone].focus();
    else this.toneButton.focus();
  }

  /** Applies skin tone `tone` to every emoji that takes one (not to the recently used,
   *  which stay as they were used), and remembers it. */
  setTone(tone) {
    this.tone = tone;
    setSkinTone(tone);
    for (const section of [...this.categories, ...this.sections]) {
      for (const cell of section.cells || []) {
        const item = cell.emojiItem;
        if (!item.text && item.emoji.tones) cell.textContent = withTone(item.emoji, tone);
      }
    }
    this.updateToneButton();
    this.toggleTones();
  }

  updateToneButton() {
    this.toneButton.textContent = '✋' + MODIFIERS[this.tone];
    this.toneButton.setAttribute('aria-label', 'Skin tone: ' + TONE_NAMES[this.tone]);
    for (const choice of this.toneChoices.children) choice.setAttribute('aria-pressed', String(Number(choice.dataset.tone) === this.tone));
  }

  pick(cell) {
    const text = cell.textContent;
    rememberEmoji(text);
    this.close('pick');
    if (this.onPick) this.onPick(text);
  }

  /** Above the anchor if there is room, otherwise below it; within the window. */
  place() {
    const margin = 8;
    const anchor = this.anchor.getBoundingClientRect();
    const { offsetWidth: width, offsetHeight: height } = this.element;
    let top = anchor.top - height - 4;
    if (top < margin) top = Math.min(anchor.bottom + 4, window.innerHeight - height - margin);
    const left = Math.min(anchor.left, window.innerWidth - width - margin);
    this.element.style.top = Math.max(margin, top) + 'px';
    this.element.style.left = Math.max(margin, left) + 'px';
  }

  close(reason) {
    if (this.closed) return;
    this.closed = true;
    if (open === this) open = null;
    this.observer.disconnect();
    document.removeEventListener('pointerdown', this.outside, true);
    window.removeEventListener('resize', this.reposition);
    this.element.remove();
    this.anchor.setAttribute('aria-expanded', 'false');
    if (reason === 'escape' && this.anchor.isConnected) this.anchor.focus();
    if (this.onClose) this.onClose(reason);
  }
}
