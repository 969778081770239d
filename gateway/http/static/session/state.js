/* The page's one state object and the small helpers every module uses.
 *
 * Every module reads and writes the same `S`: the page is one participant in one session, so
 * there is exactly one of each thing (one join answer, one peer connection, one event stream).
 */

export const STORAGE_KEY = "sgw.invite";
// The server forgets a seat that has not connected media within ~30 s of its join.
export const CREDENTIAL_MAX_AGE_MS = 20 * 1000;

export const S = {
  token: null,
  password: null,
  join: null,
  bound: false, // this device holds the invite (a join was accepted): concerns can be sent
  joinedAt: 0,
  credentialUsed: false,
  screen: "start",
  outcome: null,
  grants: { can_publish: false, can_subscribe: false, hidden: false },
  reasons: [],
  role: null,
  identity: null,
  displayName: null,
  session: null,
  pc: null,
  livekitRoom: null, // the LiveKit room, when the session's media is on LiveKit (livekit.js)
  senders: { audio: null, video: null },
  slots: [],
  slotMap: {},
  localStream: null,
  micOn: true,
  camOn: true,
  devices: { audio: null, video: null }, // chosen deviceIds (null: the browser's default)
  meter: null,
  eventsAbort: null,
  eventsConnected: false,
  eventsCount: 0,
  reconnecting: false,
  finished: null,
  roster: [],
  supervision: null,
  alerts: [],
  concerns: [],
  framesBase: 0,
  framesNow: 0,
  statsTimer: null,
};

export const $ = (id) => document.getElementById(id);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everyone but a livestream viewer sends a camera and microphone (once admitted). */
export function publishes() {
  return S.role !== "viewer";
}
