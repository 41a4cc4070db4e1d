// The signed-in page: sidebar beside the open conversation, a toast line, and the tab
// title. Renders on the next animation frame after the model changes, once however many
// changes came.

import { h, replace } from '../dom.js';
import { Conversation } from './conversation.js';
import { renderSidebar } from './sidebar.js';

export class Shell {
  constructor(root, model, client) {
    this.model = model;
    this.client = client;
    this.activeRoom = null;
    this.connectionState = 'connecting';
    this.pending = new Set();
    this.sidebar = h('nav', { class: 'sidebar', attrs: { 'aria-label': 'Rooms' } });
    this.conversation = new Conversation(model, client, () => this.toggleSidebar(true));
    this.toastLine = h('div', { class: 'visually-hidden', attrs: { role: 'status', 'aria-live': 'polite' } });
    this.layout = h('div', { class: 'layout' }, this.sidebar, this.conversation.element, this.toastLine);
    replace(root, this.layout);
    setInterval(() => this.conversation.renderTyping(), 1_000);
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
    if (what.has('rooms') || what.has('presence')) this.renderSidebar();
    this.conversation.update(what);
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

  toggleSidebar(open) {
    this.layout.classList.toggle('sidebar-open', open);
  }

  renderSidebar() {
    renderSidebar(this.sidebar, this.model, this.client, { active: this.activeRoom, connection: this.connectionState });
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
