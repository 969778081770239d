/* The join page: one page for every participant of a live session. This module wires the
 * page's buttons to the modules next to it and starts.
 *
 * Flow, one module per step: start.js reads the invite token from the URL fragment and joins
 * (join.js: requestJoin is the only place the page asks to join); check.js shows what the
 * session is and whether it is recorded, and checks the camera (media.js); then connection.js
 * connects to the embedded relay, events.js follows POST /v1/live/events, waiting.js applies
 * admitted or held, tiles.js shows others, host_panel.js is the host's panel, concern.js
 * "Report a concern", exit.js every way out. state.js holds the page's one state object.
 *
 * Safety rules this page keeps on its side (the server enforces them anyway):
 *  - while held, no local track is attached to the peer connection: nothing leaves the device;
 *  - remote tiles are shown only while admitted with can_subscribe, labelled with the masked
 *    display name from the server (textContent only, never HTML);
 *  - "Report a concern" is visible on every screen once the page has an invite;
 *  - "Leave" always works: the peer connection is closed first, whatever the server answers.
 */

import { onEnter } from "./check.js";
import { wireConcern } from "./concern.js";
import { leave, leaveOnPageHide } from "./exit.js";
import { wireHostPanel } from "./host_panel.js";
import { chooseDevice, previewChoice, startCamera, toggle } from "./media.js";
import { endScreen, show, showTopButtons } from "./screens.js";
import { wireRecording } from "./recording.js";
import { onContinue, readToken } from "./start.js";
import { $, S } from "./state.js";
import { installTestHook } from "./test_hook.js";

function boot() {
  S.token = readToken();
  $("start-form").addEventListener("submit", onContinue);
  $("enter").addEventListener("click", onEnter);
  $("device-retry").addEventListener("click", startCamera);
  $("leave").addEventListener("click", leave);
  $("toggle-mic").addEventListener("click", () => toggle("audio"));
  $("toggle-cam").addEventListener("click", () => toggle("video"));
  $("start-cam").addEventListener("change", previewChoice);
  $("start-mic").addEventListener("change", previewChoice);
  $("camera-choice").addEventListener("change", (e) => chooseDevice("video", e.target.value));
  $("mic-choice").addEventListener("change", (e) => chooseDevice("audio", e.target.value));
  wireConcern();
  wireHostPanel();
  wireRecording();
  window.addEventListener("pagehide", leaveOnPageHide);
  showTopButtons();
  if (!S.token) {
    endScreen(
      "This link is not complete",
      "Please open the whole link from your invitation. If it still does not work, ask the " +
        "person who invited you for a new one.",
    );
    return;
  }
  show("start");
  $("continue").disabled = false; // ready: "Continue" joins through this script only
}

installTestHook();
// A module runs after the document is parsed; the check is kept for a page that loads it late.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
