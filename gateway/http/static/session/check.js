/* The check screen ("Before you go in"): what the session is, whether it is recorded, who to
 * tell, the camera preview; then "Go in" starts the live screen. */

import { connectMedia, reconnectMedia } from "./connection.js";
import { startEvents } from "./events.js";
import { startCamera, startStats } from "./media.js";
import { show } from "./screens.js";
import { $, S, publishes } from "./state.js";
import { applyState } from "./waiting.js";
import { contactWords } from "./words.js";

export function prepareCheck() {
  const session = S.session || {};
  $("fact-title").textContent = session.title || "Live session";
  $("fact-name").textContent = S.displayName || "";
  $("fact-recording").textContent = recordingWords();
  $("fact-contact").textContent =
    `Press "Report a concern" at the top of the page at any time, or tell ${contactWords()}.`;
  $("check-hold-note").hidden = S.outcome !== "hold";
  $("device-check").hidden = !publishes();
  $("host-panel").hidden = S.role !== "host";
  show("check");
  if (publishes()) startCamera();
}

function recordingWords() {
  const session = S.session || {};
  if (!session.recording_purpose) return "This session is not recorded.";
  if (session.recording_notice === "This session is not being recorded.") return session.recording_notice;
  const notice = session.recording_notice ||
    `This session is recorded by the organisation (reason: ${session.recording_purpose}).`;
  return `${notice} If you do not want to be recorded, you can leave now and tell ${contactWords()}.`;
}

export async function onEnter() {
  const button = $("enter");
  button.disabled = true;
  $("check-error").textContent = "";
  $("self-name").textContent = S.displayName || "";
  show("live");
  applyState(S.outcome, S.grants, S.reasons, false);
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
