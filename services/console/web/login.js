// The login page: trades the admin token for an HttpOnly session cookie, then opens the console.
'use strict';

const form = document.getElementById('login');
const error = document.getElementById('login-error');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = document.getElementById('sign-in');
  button.disabled = true;
  error.hidden = true;
  try {
    const response = await fetch('/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: document.getElementById('token').value }) });
    if (response.ok) return location.assign('/');
    const body = await response.json().catch(() => ({}));
    error.textContent = response.status === 429 ? body.error : 'That token is not right.';
    error.hidden = false;
    document.getElementById('token-field').classList.add('invalid');
  } finally {
    button.disabled = false;
  }
});
