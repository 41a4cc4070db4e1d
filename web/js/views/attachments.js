// Files in messages: pictures and videos inline (a picture opens larger on click), sound
// with a player and its length, anything else as a named download with its size.

import { bdi, h } from '../dom.js';
import { icon } from '../icons.js';

/** The box a picture is shown in, at most this big. */
const BOX = { width: 320, height: 240 };

export function attachmentList(attachments) {
  if (!attachments || attachments.length === 0) return null;
  return h('div', { class: 'attachments' }, attachments.map(attachment));
}

function attachment(file) {
  switch (file.kind) {
    case 'image': {
      // Its size is known before it loads: reserving it keeps the list from jumping (and
      // the view at the bottom) as pictures arrive.
      const fitted = fit(file.width, file.height);
      const image = h('img', {
        src: file.thumbnail_url || file.url, alt: file.name, loading: 'lazy',
        attrs: fitted ? { width: fitted.width, height: fitted.height } : {},
      });
      return h('button', { class: 'attachment picture', attrs: { 'aria-label': 'Open picture ' + file.name }, on: { click: () => viewPicture(file) } }, image);
    }
    case 'video':
      // A video's size is not known until it loads: it plays in a fixed box (see app.css).
      return h('video', { class: 'attachment', src: file.url, controls: true, preload: 'metadata', attrs: { 'aria-label': file.name } });
    case 'audio':
      return h('div', { class: 'attachment sound' },
        h('audio', { src: file.url, controls: true, preload: 'metadata', attrs: { 'aria-label': 'Voice message ' + file.name } }),
        file.duration_ms ? h('span', { class: 'duration', text: duration(file.duration_ms) }) : null);
    default:
      return h('a', { class: 'attachment file', href: file.url, download: file.name },
        bdi(file.name, { class: 'file-name' }), h('span', { class: 'file-size', text: size(file.size) }));
  }
}

/** A picture's size scaled down (never up) to fit the box, or null if unknown. */
function fit(width, height) {
  if (!width || !height) return null;
  const scale = Math.min(1, BOX.width / width, BOX.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A file picked for the next message, in the composer: a picture as a thumbnail (its
 *  `thumbnail` object URL), anything else by name; its progress or error, and a button
 *  calling `onRemove`. */
export function pickedFile(entry, onRemove) {
  const state = entry.error ? entry.error : entry.attachment ? size(entry.size) : `${Math.round(entry.progress * 100)}%`;
  const remove = h('button', { class: 'icon-btn', type: 'button', attrs: { 'aria-label': 'Remove ' + entry.name }, on: { click: onRemove } }, icon('close'));
  const failed = entry.error ? ' failed' : '';
  if (entry.thumbnail) {
    return h('span', { class: 'chip file-chip thumb' + failed, title: entry.name, attrs: { 'data-testid': 'picked-picture' } },
      h('img', { src: entry.thumbnail, alt: entry.name }),
      h('span', { class: 'sub', text: state }), remove);
  }
  return h('span', { class: 'chip file-chip' + failed }, bdi(entry.name), ' ', h('span', { class: 'sub', text: state }), remove);
}

/** What a message without text carries, in a few words: for previews and quotes. */
export function filesSummary(message) {
  const files = message.attachments || [];
  if (files.length === 0) return '';
  if (files.length > 1) return `${files.length} files`;
  const kind = files[0].kind;
  return kind === 'audio' ? 'Voice message' : kind === 'image' ? 'Picture' : kind === 'video' ? 'Video' : files[0].name;
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

/** m:ss, in whole seconds counted down as media players count them, so the label beside
 *  a player says what the player says. */
export function duration(ms) {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export function size(bytes) {
  if (bytes < 1024) return bytes + ' B';
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + ' KB';
  return (bytes / 1024 / 1024).toFixed(1) + ' MB';
}
