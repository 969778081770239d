/* The check screen ("Before you go in"): what the session is, whether it is recorded, who to
 * tell, the camera preview; then "Go in" starts the live screen. */

import { connectMedia, reconnectMedia } from "./connection.js";
import { startEvents } from "./events.js";
import { applyStartChoices, startCamera, startStats, stopMeter } from "./media.js";
import { prepareRecordingCheck } from "./recording.js";
import { show } from "./screens.js";
import { $, S, publishes } from "./state.js";
import { WAITING_WORDS, applyState } from "./waiting.js";
import { announce, contactWords, hostWords, timeWords } from "./words.js";

export function prepareCheck() {
  const session = S.session || {};
  $("fact-title").textContent = session.title || "Live session";
  $("fact-name").textContent = S.displayName || "";
  $("fact-host").textContent = hostWords();
  $("fact-time").textContent = timeWords();
  $("fact-recording").textContent = recordingWords();
  $("fact-contact").textContent =
    `Press "Report a concern" at the top of the page at any time, or tell ${contactWords()}.`;
  $("check-hold-note").hidden = S.outcome !== "hold";
  $("device-check").hidden = !publishes();
  $("host-panel").hidden = S.role !== "host";
  prepareRecordingCheck();
  show("check");
  if (publishes()) startCamera();
}

/** Short, plain words a child can follow: whether, why, and what they can do about it. */
function recordingWords() {
  const session = S.session || {};
  if (session.recording && session.recording.active) {
    return "This session is being recorded now, only for people who have said yes. " +
      `If you do not want that, you can say so below, or leave and tell ${contactWords()}.`;
  }
  if (!session.recording_purpose) {
    return session.recording_ask_today
      ? "Nobody is recording this session now. If the host starts a recording, only people " +
          "who have said yes are recorded."
      : "Nobody is recording this session.";
  }
  if (session.recording_notice === "This session is not being recorded.") {
    return "Nobody is recording this session.";
  }
  const why = String(session.recording_why || session.recording_purpose.replace(/_/g, " "))
    .replace(/[.\s]+$/, "");
  return `This session may be recorded, but only if everyone has said yes. Why: ${why}. ` +
    (session.recording_ask_today
      ? "If you do not want to be recorded, say so below."
      : `If you do not want that, you can leave and tell ${contactWords()}.`);
}

export async function onEnter() {
  const button = $("enter");
  button.disabled = true;
  $("check-error").textContent = "";
  $("self-name").textContent = S.displayName || "";
  stopMeter();
  applyStartChoices();
  // The state first, then the screen: a held child's focus lands on the waiting message.
  applyState(S.outcome, S.grants, S.reasons, false);
  show("live");
  if (S.outcome === "hold") announce(WAITING_WORDS);
  startEvents();
  startStats();
  try {
    await connectMedia();
  } catch (err) {
    if (!S.finished) reconnectMedia();
  } finally {
    button.disabled = false;
  }
}
