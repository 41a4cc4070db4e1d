// Voice messages: records from the microphone with MediaRecorder, showing the time so far,
// until the user sends or cancels.

import { h, replace } from '../dom.js';
import { duration } from './attachments.js';

const MAX_MS = 5 * 60_000;

export class Recorder {
  /** `onDone(blob, name, durationMs)` gets a finished recording. */
  constructor(onDone, onError) {
    this.onDone = onDone;
    this.onError = onError;
    this.element = h('div', { class: 'recorder', hidden: true, attrs: { role: 'status' } });
  }

  async start() {
    if (!navigator.mediaDevices || !window.MediaRecorder) return this.onError('This browser cannot record sound.');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
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
      if (cancelled || chunks.length === 0) return;
      const blob = new Blob(chunks, { type: recorder.mimeType });
      const extension = recorder.mimeType.includes('ogg') ? 'ogg' : recorder.mimeType.includes('mp4') ? 'm4a' : 'webm';
      this.onDone(blob, `voice-message.${extension}`, performance.now() - started);
    });
    const time = h('span', { class: 'elapsed', text: '0:00' });
    replace(this.element,
      h('span', { class: 'recording-dot', attrs: { 'aria-hidden': 'true' } }), 'Recording ', time,
      h('button', { class: 'btn', text: 'Cancel', on: { click: () => { cancelled = true; recorder.stop(); } } }),
      h('button', { class: 'btn primary', text: 'Send voice message', on: { click: () => recorder.stop() } }));
    this.element.hidden = false;
    this.ticker = setInterval(() => {
      const elapsed = performance.now() - started;
      time.textContent = duration(elapsed);
      if (elapsed > MAX_MS) recorder.stop();
    }, 250);
    recorder.start(250);
  }
}
