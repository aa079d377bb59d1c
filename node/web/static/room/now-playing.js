// What the player bar and the lock screen say about the room you are in. Pure functions (no
// DOM), tested on their own (tests/browser/player.test.mjs).

/** A level above this draws a speaking ring (room view) and counts as speaking (bar). */
export const SPEAKING_LEVEL = 0.05;

const MOST_NAMES = 3;

function nameOf(person) {
  return person.display_name || person.user;
}

/** "A", "A and B", "A, B and C", "A, B, C and 2 others". */
export function listNames(names) {
  if (names.length <= 1) return names.join("");
  if (names.length <= MOST_NAMES) return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  const rest = names.length - MOST_NAMES;
  return `${names.slice(0, MOST_NAMES).join(", ")} and ${rest} ${rest === 1 ? "other" : "others"}`;
}

/** The people on stage whose level says they are speaking now, in stage order. */
export function speakingNow(room, levels) {
  if (!room) return [];
  return (room.speakers || []).filter((p) => Number((levels || {})[p.user] || 0) > SPEAKING_LEVEL);
}

/** The bar's second line: who is speaking, else who is on stage. */
export function speakingLine(room, levels) {
  if (!room) return "";
  const speaking = speakingNow(room, levels);
  if (speaking.length) return `Speaking: ${listNames(speaking.map(nameOf))}`;
  const stage = (room.speakers || []).map(nameOf);
  return stage.length ? `On stage: ${listNames(stage)}` : "Nobody is on stage";
}

/**
 * Media Session metadata for the lock screen: the room's title, the people on stage (else the
 * host) as the artist, the node as the album.
 */
export function mediaFields(room, nodeName) {
  const stage = (room.speakers || []).map(nameOf);
  const host = room.host_display_name || room.host || "";
  return {
    title: room.title || "Salon room",
    artist: stage.length ? listNames(stage) : host,
    album: room.node || nodeName || "",
  };
}

/** Whether two room sources (room/source.js) are the same room (invite tokens aside). */
export function sameRoom(a, b) {
  if (!a || !b || a.remote !== b.remote) return false;
  return a.remote ? Boolean(a.url) && a.url === b.url : Boolean(a.id) && a.id === b.id;
}
