// Building DOM nodes. User content only ever becomes text nodes or attribute values set
// through the DOM, never HTML: nothing here parses markup.
//
// And it is isolated from the text around it: a name set among other text goes in a
// <bdi> (`bdi`), a block of someone's text (a message, a bio) gets `dir="auto"`, so that a
// right-to-left name, or one ending in digits, cannot reorder what follows it.

import { formatted } from './format.js';

/** Creates an element. `props` may hold `class`, `text`, `on` (event handlers), `attrs`
 *  (set with setAttribute), and any other element property; children are nodes, strings
 *  (as text), arrays of them, or null (skipped). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'text') element.textContent = value;
    else if (key === 'on') for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    else if (key === 'attrs') for (const [name, v] of Object.entries(value)) { if (v !== null && v !== undefined && v !== false) element.setAttribute(name, String(v)); }
    else element[key] = value;
  }
  append(element, children);
  return element;
}

/** User-provided text set inline among other text (a name, a file name, an emoji):
 *  isolated in a <bdi>, which takes its direction from its own first strong letter and
 *  leaves the line around it as it was. */
export function bdi(text, props = {}) {
  return h('bdi', { ...props, text });
}

/** The same isolation in plain text, for what is drawn outside the page (a notification's
 *  title): FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE, the characters a <bdi> stands
 *  for. */
export function isolated(text) {
  return '\u2068' + text + '\u2069';
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Runs `render()`, which rebuilds `container`, and puts the focus back where it was: a
 *  re-render (a receipt, a presence change) must not throw a keyboard user out of a list.
 *  The focused item is found again by its `data-<key>` attribute, and a control by its
 *  label (within its item, if it is in one). */
export function keepingFocus(container, key, render) {
  const focused = document.activeElement;
  if (!focused || focused === container || !container.contains(focused)) return render();
  const item = focused.closest(`[data-${key}]`);
  const wanted = item && container.contains(item) ? item.dataset[key] : null;
  const label = focused === item ? null : labelOf(focused);
  render();
  const scope = wanted === null ? container : [...container.querySelectorAll(`[data-${key}]`)].find((element) => element.dataset[key] === wanted);
  if (!scope) return;
  const control = label === null ? null : [...scope.querySelectorAll(CONTROLS)].find((element) => labelOf(element) === label);
  const target = control || (wanted === null ? null : scope);
  if (target) target.focus({ preventScroll: true });
}

const CONTROLS = 'button, a, input, textarea, select, audio, video';

function labelOf(element) {
  return element.tagName + ':' + (element.getAttribute('aria-label') || element.textContent);
}

/** A message body as nodes: rich text as people type it (`format.js` has the rules), with
 *  links (http, https and mailto only, opened safely) and mentions of `usernames` (a Set of
 *  lower-case names; `me` is highlighted apart). Plain text comes back as text nodes, links
 *  and mentions; formatting adds inline elements and blocks (pre, blockquote, ul, ol), so
 *  the body goes in a block container. */
export function richText(text, usernames, me) {
  return formatted(text, usernames, me);
}

/** Initials for an avatar. */
export function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** "Today", "Yesterday", or a date, for day separators. */
export function dayLabel(date, now = new Date()) {
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const difference = Math.round((day(now) - day(date)) / 86_400_000);
  if (difference === 0) return 'Today';
  if (difference === 1) return 'Yesterday';
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: sameYear ? undefined : 'numeric' });
}

export function timeLabel(date) {
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
