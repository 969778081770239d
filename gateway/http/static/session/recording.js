/* Recording (R7, R8, R10): a child's answer on the day ("Are you happy to be recorded
 * today?"), the indicator everyone sees while a recording runs (and whether they are in it),
 * and the host's Start / Stop with the list of who has not agreed. Names come from the server
 * already masked and are only ever set as text. */

import { api } from "./api.js";
import { $, S } from "./state.js";

/** Check screen: ask a child (when the session may be recorded), show the host's control. */
export function prepareRecordingCheck() {
  const session = S.session || {};
  $("recording-today").hidden = !session.recording_ask_today;
  showRecording(session.recording || { active: false });
  const purposes = session.recording_purposes || [];
  const controls = $("recording-controls");
  controls.hidden = S.role !== "host" || purposes.length === 0;
  const select = $("recording-purpose");
  if (!controls.hidden && select.options.length === 0) {
    for (const purpose of purposes) {
      const option = document.createElement("option");
      option.value = purpose.name;
      option.textContent = `${purpose.name.replace(/_/g, " ")}${purpose.audio_only ? " (sound only)" : ""}`;
      option.title = purpose.why || "";
      select.append(option);
    }
  }
}

export function wireRecording() {
  for (const input of document.querySelectorAll('input[name="recording-today"]')) {
    input.addEventListener("change", onAnswer);
  }
  $("recording-start").addEventListener("click", onStart);
  $("recording-stop").addEventListener("click", onStop);
}

async function onAnswer(event) {
  const answer = event.target.value;
  const note = $("recording-today-note");
  note.textContent = "";
  try {
    const status = await api("/v1/live/recording/today", { token: S.token, answer });
    note.textContent = answer === "yes"
      ? "Thank you. If the session is recorded, you may be in it. You can change your mind here."
      : "Thank you. You will not be recorded today. You can change your mind here.";
    showRecording(status);
  } catch (err) {
    note.textContent = "Your answer could not be saved. Please try again, or tell an adult in the session.";
  }
}

/** The indicator on the live screen, and the host's buttons, from a `recording` event. */
export function showRecording(status) {
  S.recording = status;
  const indicator = $("recording-indicator");
  // `active: null`: this page cannot tell (the recording state could not be read). Shown as
  // possibly recording: the page never says "not recording" when it does not know.
  const unknown = Boolean(status) && status.active === null;
  const active = Boolean(status && status.active) || unknown;
  indicator.hidden = !active;
  indicator.dataset.you = active ? String(status.you || "") : "";
  if (unknown) {
    indicator.textContent =
      "Recording: we cannot tell right now whether this session is being recorded. It may be.";
  } else if (active) {
    const what = status.audio_only ? "sound" : "sound and video";
    indicator.textContent =
      status.you === "recorded"
        ? `Recording: this session is being recorded, and you are in it (your ${what}).`
        : status.you === "excluded" || status.you === "not_recorded"
          ? "Recording: this session is being recorded, but you are not being recorded."
          : "Recording: this session is being recorded.";
  } else {
    indicator.textContent = "";
  }
  $("recording-start").hidden = active;
  $("recording-purpose-row").hidden = active;
  $("recording-stop").hidden = !active;
  $("recording-state").textContent = unknown
    ? "Recording state unknown: it may be on."
    : active
      ? `Recording is on (${String(status.purpose || "").replace(/_/g, " ")}).`
      : "Recording is off.";
}

async function onStart() {
  const button = $("recording-start");
  const refusal = $("recording-refusal");
  button.disabled = true;
  $("recording-error").textContent = "";
  refusal.replaceChildren();
  try {
    const started = await api("/v1/live/recording/start", {
      token: S.token,
      purpose: $("recording-purpose").value,
    });
    showRecording({ ...started, you: started.recorded.includes(S.identity) ? "recorded" : "excluded" });
    const left = (started.excluded || []).length;
    $("recording-note").textContent =
      `Recording started. ${left ? `${left} ${left === 1 ? "person is" : "people are"} left out, as the policy says.` : ""}`.trim();
  } catch (err) {
    $("recording-error").textContent = `Recording did not start: ${err.code === "recording_consent_missing" ? "not everyone has agreed." : err.message}`;
    const lacking = (err.details && err.details.error && err.details.error.lacking) || [];
    for (const lack of lacking) {
      const item = document.createElement("li");
      item.textContent = String(lack.says || lack.display_name || "");
      refusal.append(item);
    }
  } finally {
    button.disabled = false;
  }
}

async function onStop() {
  const button = $("recording-stop");
  button.disabled = true;
  $("recording-error").textContent = "";
  try {
    await api("/v1/live/recording/stop", { token: S.token });
    showRecording({ active: false });
    $("recording-note").textContent = "Recording stopped.";
  } catch (err) {
    $("recording-error").textContent = `Could not stop the recording: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}
