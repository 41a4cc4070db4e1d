// The composer's formatting help: an "Aa" button that shows, beside the composer, what can
// be typed and how it looks. The examples are drawn by format.js itself, so the help cannot
// drift from what messages show. A disclosure, not a dialog: the panel follows its button
// in the tab order, Escape or a click elsewhere closes it, and the focus goes back to the
// button when it was inside.

import { h } from '../dom.js';
import { parse, render } from '../format.js';

/** What the help lists: the syntax as typed, and a word on it where the result alone does
 *  not say enough. */
const EXAMPLES = [
  ['*bold* or **bold**'],
  ['_italic_'],
  ['~strike~'],
  ['`code`'],
  ['```js\ncode block\n```', 'A language after the fence is optional'],
  ['> quote'],
  ['- item', 'or * item'],
  ['1. item'],
  ['www.example.com', 'Links: http, https, www. and mailto:'],
  ['@name', 'Mentions someone in the room'],
];

export class FormatHelp {
  constructor() {
    this.toggle = h('button', {
      class: 'icon-btn format-toggle', type: 'button', text: 'Aa', title: 'Formatting help',
      attrs: { 'aria-label': 'Formatting help', 'aria-expanded': 'false', 'aria-controls': 'format-help', 'data-testid': 'format-help-toggle' },
      on: { click: () => this.show(this.panel.hidden) },
    });
    const rows = EXAMPLES.map(([typed, note]) => h('tr', {},
      h('td', {}, h('code', { class: 'fmt-typed', text: typed })),
      h('td', { class: 'fmt-result' }, render(parse(typed, new Set(['name'])), null, { copyButton: false }), note ? h('div', { class: 'sub', text: note }) : null)));
    this.panel = h('div', {
      id: 'format-help', class: 'format-help', hidden: true,
      attrs: { role: 'region', 'aria-label': 'Formatting help', 'data-testid': 'format-help' },
    },
    h('div', { class: 'format-help-head' },
      h('strong', { text: 'Formatting' }),
      h('button', { class: 'icon-btn', type: 'button', text: 'Close', on: { click: () => this.show(false, true) } })),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Type' }), h('th', { text: 'To get' }))), h('tbody', {}, rows)),
    h('p', { class: 'sub', text: 'Nothing is formatted inside code, and only code blocks span lines. Shift+Enter starts a new line.' }));
    this.element = h('div', { class: 'format-help-anchor' }, this.toggle, this.panel);
    this.element.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || this.panel.hidden) return;
      event.preventDefault();
      event.stopPropagation();
      this.show(false, true);
    });
    this.outside = (event) => {
      if (!this.element.contains(event.target)) this.show(false);
    };
  }

  /** Opens or closes the panel; `refocus` puts the focus back on the button. */
  show(open, refocus = false) {
    this.panel.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) document.addEventListener('pointerdown', this.outside);
    else document.removeEventListener('pointerdown', this.outside);
    if (refocus) this.toggle.focus();
  }
}
