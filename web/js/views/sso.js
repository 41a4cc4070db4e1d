// Signing in with an identity provider (docs/api.md, "Signing in with an identity
// provider"): what the sign-in screen offers, sending the browser to a provider, reading
// what the provider's return left in the address, and the form that finishes a first
// sign-in. The server does the flow itself; the page only starts it and shows its outcome.

import { ApiError, get, post } from '../api.js';
import { h, replace } from '../dom.js';

/** What a server without providers offers, and what the sign-in screen falls back to when
 *  it cannot ask (an older server): the password form, exactly as before. */
const PASSWORD_ONLY = { password_login: true, password_signup: true, providers: [] };

/** The sentence shown for each `sso_error` code the callback sends back (docs/api.md). */
const ERRORS = {
  sso_denied: 'Signing in was cancelled at the identity provider, so you are not signed in.',
  sso_state: 'That sign-in could not be matched to this browser: it was finished already or started in another browser. Please start again.',
  sso_expired: 'The sign-in took too long and expired. Please start again.',
  sso_token: 'The identity provider’s answer could not be verified, so you are not signed in. Please try again; if it keeps happening, tell whoever runs this server.',
  sso_unavailable: 'The identity provider could not be reached. Please try again in a moment.',
  sso_identity_taken: 'That account at the identity provider is already linked to another Confab account.',
  sso_signed_out: 'Your session ended before linking finished. Sign in, then link again.',
  sso_rate_limited: 'Too many sign-in attempts from here. Please wait a minute and try again.',
  sso_deactivated: 'This account has been deactivated. Ask whoever runs this server.',
  sso_failed: 'Something went wrong on this server while signing you in. Please try again in a moment.',
};
const UNKNOWN_ERROR = 'Signing in with the identity provider did not work. Please try again.';

/** Where the page keeps, across the trip to the provider and back in this tab, the label
 *  of the provider being linked, so that "linked" can name it. */
const LINKING_KEY = 'confab.sso.linking';

/** Said on the sign-in screen when the pending sign-up is gone. */
const EXPIRED = 'Your sign-up expired (it lasts 30 minutes) before it was finished. Sign in with your provider again to start over.';

/** The sentence for an `sso_error` code. */
export function errorSentence(code) {
  return Object.hasOwn(ERRORS, code) ? ERRORS[code] : UNKNOWN_ERROR;
}

/** Ways to sign in the server offers; the password form alone if it cannot say. */
export async function signInMethods() {
  try {
    const methods = await get('/auth/methods');
    return { ...PASSWORD_ONLY, ...methods, providers: methods.providers || [] };
  } catch {
    return PASSWORD_ONLY;
  }
}

/** Reads what a provider's return left in the address (`sso`, `sso_error`) and removes it,
 *  so that a reload does not show it again. Returns `{ outcome, error, linked }`: the
 *  outcome ('signup', 'linked' or null), the error code or null, and for 'linked' the
 *  label of the provider the page set out to link (null if it does not know). */
export function takeSsoReturn() {
  const params = new URLSearchParams(location.search);
  const outcome = params.get('sso');
  const error = params.get('sso_error');
  if (outcome === null && error === null) return { outcome: null, error: null, linked: null };
  params.delete('sso');
  params.delete('sso_error');
  const query = params.toString();
  history.replaceState(history.state, '', location.pathname + (query ? '?' + query : '') + location.hash);
  let linked = null;
  try {
    linked = sessionStorage.getItem(LINKING_KEY);
    sessionStorage.removeItem(LINKING_KEY);
  } catch {
    // Storage may be off; "linked" then names no provider.
  }
  return { outcome, error, linked: outcome === 'linked' ? linked : null };
}

/** Starts a flow with `provider` (`{id, label}`), `intent` 'sign_in' or 'link', and sends
 *  the browser to the provider. Rejects with the server's error (the page stays). */
export async function startWith(provider, intent) {
  const { authorization_url: url } = await post(`/auth/oidc/${encodeURIComponent(provider.id)}/start`, { intent });
  if (intent === 'link') {
    try {
      sessionStorage.setItem(LINKING_KEY, provider.label);
    } catch {
      // Only the notice after linking names the provider less precisely.
    }
  }
  location.assign(url);
}

/** A "Sign in with {label}" button per provider; a refusal to start is shown in `errorLine`. */
export function providerButtons(providers, errorLine) {
  return providers.map((provider) => {
    const button = h('button', {
      class: 'btn sso-button', type: 'button', text: 'Sign in with ' + provider.label,
      attrs: { 'data-provider': provider.id },
      on: { click: async () => {
        errorLine.textContent = '';
        button.disabled = true;
        try {
          await startWith(provider, 'sign_in');
        } catch (error) {
          button.disabled = false;
          errorLine.textContent = error.message;
        }
      } },
    });
    return button;
  });
}

/** Shows "Finish creating your account" in `root` for the pending sign-up the provider's
 *  return left: a username and display name proposed from the identity, to change. Calls
 *  `onSignedIn(user)` once the account exists, as registering does, or `onBack(notice)` to
 *  go back to the sign-in screen: with a sentence saying why when there is no pending
 *  sign-up (it lasts 30 minutes), with null when the person cancels. */
export async function showSsoSignup(root, onSignedIn, onBack) {
  let pending;
  try {
    pending = await get('/auth/oidc/signup');
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return onBack(EXPIRED);
    throw error;
  }
  const errors = new Map();
  const field = (name, label, value, autocomplete) => {
    const input = h('input', {
      id: 'sso-' + name, name, type: 'text', value: value || '', required: name === 'username', autocomplete,
      attrs: { 'aria-describedby': 'sso-' + name + '-error', dir: name === 'display_name' ? 'auto' : null },
    });
    const error = h('div', { class: 'field-error', id: 'sso-' + name + '-error', attrs: { role: 'alert' } });
    errors.set(name, error);
    return h('div', { class: 'field' }, h('label', { htmlFor: input.id, text: label }), input, error);
  };
  const formError = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  const submit = h('button', { class: 'btn primary', type: 'submit', text: 'Create account' });
  const form = h('form', {
    attrs: { novalidate: true, 'aria-labelledby': 'sso-signup-title' },
    on: { submit: async (event) => {
      event.preventDefault();
      for (const error of errors.values()) error.textContent = '';
      formError.textContent = '';
      const data = Object.fromEntries(new FormData(form));
      if (!data.display_name.trim()) delete data.display_name;
      submit.disabled = true;
      try {
        const answer = await post('/auth/oidc/signup', data);
        onSignedIn(answer.user);
      } catch (error) {
        submit.disabled = false;
        if (error instanceof ApiError && error.status === 404) return onBack(EXPIRED);
        const target = error instanceof ApiError && error.field && errors.get(error.field);
        (target || formError).textContent = error.message;
      }
    } },
  },
  field('username', 'Username', pending.username, 'username'),
  field('display_name', 'Display name (optional)', pending.display_name, 'name'),
  formError,
  submit);
  const identity = pending.email
    ? ['You are signing up with ', h('strong', { text: pending.provider.label }), ' as ', h('bdi', { text: pending.email }), '.']
    : ['You are signing up with ', h('strong', { text: pending.provider.label }), '.'];
  replace(root, h('main', { class: 'auth' },
    h('section', { class: 'auth-card', attrs: { 'aria-labelledby': 'sso-signup-title' } },
      h('h1', { id: 'sso-signup-title', text: 'Finish creating your account' }),
      h('p', { class: 'tagline', attrs: { 'data-testid': 'sso-identity' } }, identity),
      h('p', { class: 'sub', text: 'Choose the username people will know you by; you can change your display name later.' }),
      form,
      h('button', { class: 'link-button', type: 'button', text: 'Cancel and go back to sign in', on: { click: () => onBack(null) } }))));
  root.querySelector('#sso-username').focus();
}
