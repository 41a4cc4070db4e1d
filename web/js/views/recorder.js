// Voice messages: records from the microphone with MediaRecorder, showing the time so far
// and the room it is for, until the user sends or cancels. One recording at a time.

import { bdi, h, replace } from '../dom.js';
import { icon } from '../icons.js';
import { duration } from './attachments.js';

const MAX_MS = 5 * 60_000;

export class Recorder {
  constructor(onError) {
    this.onError = onError;
    /** Set from the moment a recording is asked for (the microphone may take a while to
     *  answer) until it ends: a second press must not start a second recorder. */
    this.busy = false;
    this.element = h('div', { class: 'recorder', hidden: true, attrs: { role: 'status' } });
  }

  /** Records for the room named `label`; `onDone(blob, name, durationMs)` gets the
   *  finished recording. Pressed again while recording, it brings the focus back to it. */
  async start(label, onDone) {
    if (this.busy) {
      this.element.querySelector('button.primary')?.focus();
      return;
    }
    if (!navigator.mediaDevices || !window.MediaRecorder) return this.onError('This browser cannot record sound.');
    this.busy = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      this.busy = false;
      return this.onError('The microphone is not available.');
    }
    const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'].find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const chunks = [];
    let cancelled = false;
    const started = performance.now();
    recorder.addEventListener('dataavailable', (event) => chunks.push(event.data));
    recorder.addEventListener('stop', () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(this.ticker);
      this.element.hidden = true;
      this.busy = false;
      if (cancelled || chunks.length === 0) return;
      const blob = new Blob(chunks, { type: recorder.mimeType });
      const extension = recorder.mimeType.includes('ogg') ? 'ogg' : recorder.mimeType.includes('mp4') ? 'm4a' : 'webm';
      onDone(blob, `voice-message.${extension}`, performance.now() - started);
    });
    // The time is for the eyes: read out every second, it would drown everything else.
    const time = h('span', { class: 'elapsed', text: '0:00', attrs: { 'aria-live': 'off' } });
    replace(this.element,
      h('span', { class: 'recording-dot', attrs: { 'aria-hidden': 'true' } }), label ? ['Recording for ', bdi(label), ' '] : 'Recording ', time,
      h('button', { class: 'btn with-icon', type: 'button', on: { click: () => { cancelled = true; recorder.stop(); } } }, icon('close'), 'Cancel'),
      h('button', { class: 'btn primary with-icon', type: 'button', on: { click: () => recorder.stop() } }, icon('send'), 'Send voice message'));
    this.element.hidden = false;
    this.ticker = setInterval(() => {
      const elapsed = performance.now() - started;
      if (time.textContent !== duration(elapsed)) time.textContent = duration(elapsed);
      if (elapsed > MAX_MS) recorder.stop();
    }, 250);
    recorder.start(250);
  }
}
