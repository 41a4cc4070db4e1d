// Files in messages: pictures and videos inline (a picture opens larger on click), sound
// with a player and its length, anything else as a named download with its size.

import { h } from '../dom.js';

export function attachmentList(attachments) {
  if (!attachments || attachments.length === 0) return null;
  return h('div', { class: 'attachments' }, attachments.map(attachment));
}

function attachment(file) {
  switch (file.kind) {
    case 'image': {
      const image = h('img', {
        src: file.thumbnail_url || file.url, alt: file.name, loading: 'lazy',
        width: file.width ? Math.min(file.width, 320) : undefined,
      });
      return h('button', { class: 'attachment picture', attrs: { 'aria-label': 'Open picture ' + file.name }, on: { click: () => viewPicture(file) } }, image);
    }
    case 'video':
      return h('video', { class: 'attachment', src: file.url, controls: true, preload: 'metadata', attrs: { 'aria-label': file.name } });
    case 'audio':
      return h('div', { class: 'attachment sound' },
        h('audio', { src: file.url, controls: true, preload: 'metadata', attrs: { 'aria-label': 'Voice message ' + file.name } }),
        file.duration_ms ? h('span', { class: 'duration', text: duration(file.duration_ms) }) : null);
    default:
      return h('a', { class: 'attachment file', href: file.url, download: file.name },
        h('span', { class: 'file-name', text: file.name }), h('span', { class: 'file-size', text: size(file.size) }));
  }
}

/** The full picture, in a dialog. */
function viewPicture(file) {
  const dialog = h('dialog', { class: 'viewer', attrs: { 'aria-label': file.name } },
    h('img', { src: file.url, alt: file.name }),
    h('div', { class: 'dialog-actions' },
      h('a', { class: 'btn', href: file.url, download: file.name, text: 'Download' }),
      h('button', { class: 'btn', text: 'Close', on: { click: () => dialog.close() } })));
  dialog.addEventListener('close', () => dialog.remove());
  dialog.addEventListener('click', (event) => { if (event.target === dialog) dialog.close(); });
  document.body.append(dialog);
  dialog.showModal();
}

export function duration(ms) {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export function size(bytes) {
  if (bytes < 1024) return bytes + ' B';
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + ' KB';
  return (bytes / 1024 / 1024).toFixed(1) + ' MB';
}
