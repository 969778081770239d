/* Every way out of the session: left, removed, ended, denied. "Leave" always works: the peer
 * connection and the camera are stopped first, whatever the server answers. */

import { api } from "./api.js";
import { addRejoin, endScreen, showTopButtons } from "./screens.js";
import { stopLocal, stopStats, teardownPc } from "./media.js";
import { $, S } from "./state.js";
import { renderTiles } from "./tiles.js";
import { reasonWords } from "./words.js";

export async function leave() {
  if (S.finished) return;
  // Media stops first: leaving works even when the server cannot be reached.
  finish("left");
  try {
    await api("/v1/leave", { token: S.token }, { keepalive: true, signal: AbortSignal.timeout(8000) });
  } catch (err) {
    /* the relay also sees the connection close */
  }
}

/** Best effort on close or reload; the relay notices the closed connection anyway. */
export function leaveOnPageHide() {
  if (S.join && !S.finished && S.screen !== "start") {
    fetch("/v1/leave", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: S.token }),
      credentials: "same-origin",
      keepalive: true,
    }).catch(() => {});
  }
}

export function finish(why) {
  if (S.finished) return;
  S.finished = why || "error";
  if (S.eventsAbort) S.eventsAbort.abort();
  teardownPc();
  stopLocal();
  stopStats();
  S.slotMap = {};
  renderTiles();
  const dialog = $("concern-dialog");
  showTopButtons();
  if (why === "left") {
    endScreen("You have left the session", "Your camera and microphone are off. You can close this page.");
    addRejoin();
  } else if (why === "removed") {
    endScreen("You have been removed from the session", "The host has removed you from this session.");
  } else if (why === "ended" || why === "ended_by_host") {
    endScreen("The session has ended", "Thank you for taking part. You can close this page.");
  } else if (why === "denied") {
    endScreen("You can't join this session right now", "", reasonWords(S.reasons));
  }
  if (dialog.open) $("concern-note").focus();
}
