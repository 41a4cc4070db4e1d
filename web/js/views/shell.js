// The signed-in page: sidebar beside the open conversation, a toast line, and the tab
// title. Renders on the next animation frame after the model changes, once however many
// changes came.

import { h, keepingFocus, replace } from '../dom.js';
import { Conversation } from './conversation.js';
import { Search } from './search.js';
import { renderSidebar, typingSignature } from './sidebar.js';

/** Where the sidebar becomes a drawer over the conversation (app.css says the same). */
const PHONE = window.matchMedia('(max-width: 720px)');

export class Shell {
  constructor(root, model, client) {
    this.model = model;
    this.client = client;
    this.activeRoom = null;
    this.connectionState = 'connecting';
    this.pending = new Set();
    this.sidebar = h('nav', { class: 'sidebar', attrs: { 'aria-label': 'Rooms' } });
    this.conversation = new Conversation(model, client, () => this.openDrawer());
    this.toastLine = h('div', { class: 'visually-hidden', attrs: { role: 'status', 'aria-live': 'polite' } });
    this.layout = h('div', { class: 'layout' }, this.sidebar, this.conversation.element, this.toastLine);
    replace(root, this.layout);
    this.search = new Search(model, client);
    setInterval(() => {
      this.conversation.renderTyping();
      // Typing lapses without a frame saying so: the sidebar's "typing…" goes by the clock.
      if (typingSignature(this.model) !== this.typingShown) this.renderSidebar();
    }, 1_000);
    PHONE.addEventListener('change', () => this.toggleSidebar(this.layout.classList.contains('sidebar-open')));
    // On a phone the open drawer covers most of the conversation: a tap on what shows of it
    // closes the drawer (the conversation is inert meanwhile, so the tap lands on the layout).
    // On pointerdown, not click: the click that opens the drawer must not close it again.
    this.layout.addEventListener('pointerdown', (event) => {
      if (!PHONE.matches || !this.activeRoom || !this.layout.classList.contains('sidebar-open')) return;
      if (!this.sidebar.contains(event.target)) this.toggleSidebar(false);
    });
    // A tapped message keeps the focus, and so its toolbar, until something else takes it;
    // a tap on something that takes no focus (Safari moves none then) leaves it too.
    document.addEventListener('pointerdown', (event) => {
      const message = document.activeElement?.closest?.('.message');
      if (message && !message.contains(event.target)) document.activeElement.blur();
    });
    // On a phone the open drawer covers the conversation: Escape closes it.
    this.sidebar.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !PHONE.matches || !this.activeRoom) return;
      this.toggleSidebar(false);
      this.conversation.element.querySelector('.menu-toggle')?.focus();
    });
  }

  changed(what) {
    this.pending.add(what);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      const what = this.pending;
      this.pending = new Set();
      this.update(what);
    });
  }

  update(what) {
    // 'typing' too: someone starts typing, or a user looked up (an author in a preview)
    // arrives.
    if (what.has('rooms') || what.has('presence') || what.has('typing')) this.renderSidebar();
    this.conversation.update(what);
    this.search.update(what);
    this.renderTitle();
  }

  render() {
    this.renderSidebar();
    this.conversation.show(this.activeRoom);
    this.renderTitle();
  }

  setActive(roomId) {
    this.activeRoom = roomId;
    this.toggleSidebar(false);
    this.render();
  }

  setConnection(state) {
    this.connectionState = state;
    this.renderSidebar();
    this.conversation.setConnection(state);
  }

  /** On a phone, the drawer open covers the conversation, which is then out of reach of
   *  Tab and screen readers (the closed drawer is hidden by app.css). */
  toggleSidebar(open) {
    this.layout.classList.toggle('sidebar-open', open);
    this.conversation.element.inert = open && PHONE.matches;
    // Uncovered, what the conversation shows is being read.
    if (!open) this.conversation.noteSeen();
  }

  /** Opens the drawer from its button, with the focus on the current room. */
  openDrawer() {
    this.toggleSidebar(true);
    const target = this.sidebar.querySelector('.room-item[aria-current="true"]') || this.sidebar.querySelector('button');
    if (target) target.focus();
  }

  renderSidebar() {
    this.typingShown = typingSignature(this.model);
    keepingFocus(this.sidebar, 'room', () => renderSidebar(this.sidebar, this.model, this.client, { active: this.activeRoom, connection: this.connectionState }));
  }

  renderTitle() {
    const total = this.model.totalUnread();
    document.title = total > 0 ? `(${total}) Confab` : 'Confab';
  }

  /** Says something briefly, to sighted users and screen readers alike. */
  toast(message) {
    this.toastLine.textContent = message;
    const visible = h('div', { class: 'toast', text: message, attrs: { 'aria-hidden': 'true' } });
    document.body.append(visible);
    setTimeout(() => visible.remove(), 4_000);
  }
}
