// What the emoji picker remembers in this browser: the emoji used most recently (first
// first, capped) and the chosen skin tone. Small and free of the emoji data, so that the
// quick reactions can be drawn from it without loading the picker (`emoji.js`).

const RECENT_KEY = 'confab.emoji.recent';
const TONE_KEY = 'confab.emoji.tone';
/** How many recently used emoji are kept: three rows of the picker. */
export const RECENT_LIMIT = 24;

/** The emoji used most recently, most recent first, as they were inserted (with a skin
 *  tone, if one was applied). A storage that cannot be read counts as empty. */
export function recentEmoji() {
  try {
    const recent = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(recent) ? recent.filter((emoji) => typeof emoji === 'string') : [];
  } catch {
    return [];
  }
}

/** Puts `emoji` first among the recently used. */
export function rememberEmoji(emoji) {
  const recent = [emoji, ...recentEmoji().filter((other) => other !== emoji)].slice(0, RECENT_LIMIT);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(recent));
  } catch {
    // A full or refused storage only costs the ordering.
  }
}

/** `count` emoji for a row of quick reactions: the recently used first, then `defaults`. */
export function quickEmoji(defaults, count = defaults.length) {
  return [...new Set([...recentEmoji(), ...defaults])].slice(0, count);
}

/** The chosen skin tone: 0 for none (the yellow default), 1 to 5 for the Fitzpatrick
 *  modifiers U+1F3FB to U+1F3FF. */
export function skinTone() {
  let tone = 0;
  try {
    tone = Number(localStorage.getItem(TONE_KEY)) || 0;
  } catch {
    // As with the recent emoji: no storage, no memory.
  }
  return Number.isInteger(tone) && tone >= 0 && tone <= 5 ? tone : 0;
}

export function setSkinTone(tone) {
  try {
    localStorage.setItem(TONE_KEY, String(tone));
  } catch {
    // The tone still applies until the picker is closed.
  }
}
