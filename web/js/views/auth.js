// Signing in and registering. The server's validation messages are shown beside the field
// they concern.

import { ApiError, post } from '../api.js';
import { h, replace } from '../dom.js';

/** Shows the sign-in screen in `root`; calls `onSignedIn(user)` once the user is in. */
export function showAuth(root, onSignedIn) {
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
    replace(root, h('main', { class: 'auth' },
      h('section', { class: 'auth-card', attrs: { 'aria-label': 'Sign in to Confab' } },
        h('h1', { text: 'Confab' }),
        h('p', { class: 'tagline', text: 'Chat that keeps up.' }),
        h('div', { class: 'tabs', attrs: { role: 'tablist' } }, tab('login', 'Sign in'), tab('register', 'Register')),
        form)));
    root.querySelector('#auth-username').focus();
  };
  render();
}
