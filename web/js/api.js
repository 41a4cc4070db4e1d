// The HTTP API, as docs/api.md describes it. The session cookie authenticates every call.

export class ApiError extends Error {
  /** `retryAfter`: the seconds a refusal (429, 503) asks to wait, when it says. */
  constructor(status, code, message, field, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** Calls `path` under /api/v1; resolves to the JSON answer (or null), rejects with an
 *  ApiError carrying the server's code, message and field. An AbortSignal in `signal`
 *  cancels the request: it then rejects with the browser's AbortError, not an ApiError. */
export async function api(method, path, body, { signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: {}, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch('/api/v1' + path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: 'http_' + response.status, message: response.statusText };
    const wait = error.retry_after ?? (Number(response.headers.get('retry-after')) || null);
    throw new ApiError(response.status, error.code, error.message, error.field, wait);
  }
  return data;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body = {}) => api('POST', path, body);

/** Uploads a file (a File or a Blob with a name), reporting progress from 0 to 1; resolves
 *  to the attachment the server made of it. XMLHttpRequest, because fetch cannot report
 *  upload progress. */
export function upload(file, name, { durationMs, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const query = durationMs ? `?duration_ms=${Math.round(durationMs)}` : '';
    request.open('POST', '/api/v1/media' + query);
    request.withCredentials = true;
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(request.responseText);
      } catch {
        // Not JSON: answered below with the status.
      }
      if (request.status === 201) return resolve(data);
      const error = data && data.error ? data.error : { code: 'http_' + request.status, message: 'The upload failed.' };
      reject(new ApiError(request.status, error.code, error.message, error.field));
    });
    request.addEventListener('error', () => reject(new ApiError(0, 'network', 'The upload broke off.')));
    const form = new FormData();
    form.append('file', file, name);
    request.send(form);
  });
}

/** Sends a picture as the user's avatar; resolves to the updated user. */
export async function uploadAvatar(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'avatar');
  const response = await fetch('/api/v1/me/avatar', { method: 'PUT', body: form, credentials: 'same-origin' });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: 'http_' + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message, error.field);
  }
  return data;
}
