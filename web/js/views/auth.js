// Signing in and registering. The server's validation messages are shown beside the field
// they concern. The password form and the Register tab show only while the server allows
// them, beside a button per identity provider it offers (sso.js).

import { ApiError, post } from '../api.js';
import { h, replace } from '../dom.js';
import { providerButtons, signInMethods } from './sso.js';

/** Shows the sign-in screen in `root`; calls `onSignedIn(user)` once the user is in.
 *  `notice` is a sentence to show above it (why signing in with a provider failed). */
export async function showAuth(root, onSignedIn, { notice = null } = {}) {
  const methods = await signInMethods();
  // An account made with a password no one may sign in with would be a trap: without
  // password login there is no Register either.
  const tabs = methods.password_login && methods.password_signup;
  let mode = 'login';
  const render = () => {
    const errors = new Map();
    const field = (name, label, type, autocomplete) => {
      const input = h('input', { id: 'auth-' + name, name, type, required: name !== 'display_name', autocomplete, attrs: { 'aria-describedby': 'auth-' + name + '-error' } });
      const error = h('div', { class: 'field-error', id: 'auth-' + name + '-error', attrs: { role: 'alert' } });
      errors.set(name, error);
      return h('div', { class: 'field' }, h('label', { htmlFor: input.id, text: label }), input, error);
    };
    const formError = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    const fields = [field('username', 'Username', 'text', 'username')];
    if (mode === 'register') fields.push(field('display_name', 'Display name (optional)', 'text', 'name'));
    fields.push(field('password', 'Password', 'password', mode === 'login' ? 'current-password' : 'new-password'));
    const submit = h('button', { class: 'btn primary', type: 'submit', text: mode === 'login' ? 'Sign in' : 'Create account' });
    const form = h('form', {
      attrs: { novalidate: true },
      on: {
        submit: async (event) => {
          event.preventDefault();
          for (const error of errors.values()) error.textContent = '';
          formError.textContent = '';
          const data = Object.fromEntries(new FormData(form));
          if (!data.display_name) delete data.display_name;
          submit.disabled = true;
          try {
            const answer = await post(mode === 'login' ? '/auth/login' : '/auth/register', data);
            onSignedIn(answer.user);
          } catch (error) {
            submit.disabled = false;
            const target = error instanceof ApiError && error.field && errors.get(error.field);
            (target || formError).textContent = error.message;
          }
        },
      },
    }, fields, formError, submit);
    const tab = (name, label) => h('button', {
      type: 'button', text: label, attrs: { role: 'tab', 'aria-selected': mode === name },
      on: { click: () => { mode = name; render(); } },
    });
    const password = methods.password_login;
    const providers = methods.providers.length > 0 ? ssoBlock(methods.providers, password) : null;
    replace(root, h('main', { class: 'auth' },
      h('section', { class: 'auth-card', attrs: { 'aria-label': 'Sign in to Confab' } },
        h('h1', { text: 'Confab' }),
        h('p', { class: 'tagline', text: 'Chat that keeps up.' }),
        notice ? h('p', { class: 'form-error sso-notice', text: notice, attrs: { role: 'alert', 'data-testid': 'sso-notice' } }) : null,
        providers,
        tabs ? h('div', { class: 'tabs', attrs: { role: 'tablist' } }, tab('login', 'Sign in'), tab('register', 'Register')) : null,
        password ? form : null,
        password || providers ? null : h('p', { text: 'This server offers no way to sign in at the moment.' }))));
    (root.querySelector('#auth-username') || root.querySelector('.sso-button'))?.focus();
  };
  render();
}

/** The provider buttons, with a line for a refusal to start, and "or" before the password
 *  form when there is one. */
function ssoBlock(providers, password) {
  const error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  return h('div', { class: 'sso-providers' },
    providerButtons(providers, error),
    error,
    password ? h('div', { class: 'sso-or', attrs: { 'aria-hidden': 'true' } }, h('span', { text: 'or' })) : null);
}
