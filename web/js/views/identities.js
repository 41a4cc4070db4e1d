// The profile dialog's "Sign-in methods": the identity providers linked to the account, each
// with Unlink, and a Link button for each provider the server offers that is not linked yet.
// Shown only when the server offers a provider; the server refuses to unlink the last way
// to sign in, and its message says so.

import { api, get } from '../api.js';
import { bdi, h, replace } from '../dom.js';
import { signInMethods, startWith } from './sso.js';

/** The section, empty and hidden until the server has said what there is. `notice`
 *  (`{text, error}`) is the outcome of linking, shown in it. */
export function signInMethodsSection(notice = null) {
  const list = h('ul', { class: 'pick-list', attrs: { 'data-testid': 'sign-in-methods' } });
  const links = h('div', { class: 'sso-links' });
  const status = h('p', {
    class: notice && notice.error ? 'form-error' : 'notice',
    text: notice ? notice.text : '',
    attrs: { role: notice && notice.error ? 'alert' : 'status', 'data-testid': 'sso-status' },
  });
  const section = h('section', { class: 'sign-in-methods', hidden: true, attrs: { 'aria-labelledby': 'sign-in-methods-title' } },
    h('h3', { id: 'sign-in-methods-title', text: 'Sign-in methods' }), status, list, links);
  let methods = null;
  let shown = false;
  const render = async () => {
    methods ??= await signInMethods();
    section.hidden = methods.providers.length === 0;
    if (section.hidden) return;
    let mine;
    try {
      mine = await get('/me/identities');
    } catch (error) {
      say(status, error.message, true);
      return;
    }
    replace(list,
      mine.password ? passwordRow(methods.password_login) : null,
      mine.identities.map((identity) => identityRow(identity, status, render)),
      mine.password || mine.identities.length ? null : h('li', { class: 'sub', text: 'None.' }));
    const linked = new Set(mine.identities.map((identity) => identity.provider));
    replace(links, methods.providers.filter((provider) => !linked.has(provider.id)).map((provider) => linkButton(provider, status)));
    // Opened to tell how linking went: what it says is in view, below the profile's
    // fields (on a phone, below the fold).
    if (notice && !shown) section.scrollIntoView({ block: 'nearest' });
    shown = true;
  };
  render();
  return section;
}

/** The account's password, which signs in only while the server takes passwords. */
function passwordRow(passwordLogin) {
  const sub = passwordLogin ? 'Your username and password' : 'Not usable now: this server signs in through providers only';
  return h('li', {}, h('span', { class: 'grow' }, h('div', { text: 'Password' }), h('div', { class: 'sub', text: sub })));
}

/** Shows `text` in the section's status line, as an error (announced at once) or not. */
function say(status, text, error) {
  status.className = error ? 'form-error' : 'notice';
  status.setAttribute('role', error ? 'alert' : 'status');
  status.textContent = text;
}

function identityRow(identity, status, render) {
  const label = identity.label || identity.provider || 'A provider no longer offered';
  const unlink = h('button', {
    class: 'btn danger', type: 'button', text: 'Unlink', attrs: { 'aria-label': 'Unlink ' + label },
    on: { click: async () => {
      status.textContent = '';
      unlink.disabled = true;
      try {
        await api('DELETE', `/me/identities/${encodeURIComponent(identity.id)}`);
        say(status, `${label} is no longer linked.`, false);
        await render();
      } catch (error) {
        // 409 last_sign_in_method among others: the server's message says why.
        unlink.disabled = false;
        say(status, error.message, true);
      }
    } },
  });
  return h('li', { attrs: { 'data-identity': identity.id } },
    h('span', { class: 'grow' },
      h('div', {}, bdi(label)),
      identity.email ? h('div', { class: 'sub' }, bdi(identity.email)) : null),
    unlink);
}

function linkButton(provider, status) {
  const button = h('button', {
    class: 'btn', type: 'button', text: 'Link ' + provider.label, attrs: { 'data-provider': provider.id },
    on: { click: async () => {
      status.textContent = '';
      button.disabled = true;
      try {
        await startWith(provider, 'link');
      } catch (error) {
        button.disabled = false;
        say(status, error.message, true);
      }
    } },
  });
  return button;
}
