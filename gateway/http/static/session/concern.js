/* "Report a concern": visible on every screen once the page has an invite. */

import { api } from "./api.js";
import { $, S } from "./state.js";
import { contactWords } from "./words.js";

function openConcern() {
  $("concern-error").textContent = "";
  const dialog = $("concern-dialog");
  if (!dialog.open) dialog.showModal();
  $("concern-note").focus();
}

async function sendConcern(event) {
  event.preventDefault();
  const send = $("concern-send");
  const note = $("concern-note").value.trim();
  send.disabled = true;
  $("concern-error").textContent = "";
  try {
    const body = { token: S.token };
    if (note) body.note = note;
    const data = await api("/v1/live/concern", body);
    S.concerns.push({ incident_id: data && data.incident_id, message: data && data.message });
    $("concern-note").value = "";
    $("concern-dialog").close();
    const confirmation = $("concern-confirmation");
    confirmation.textContent =
      (data && data.message) ||
      "Your concern is recorded and the safeguarding lead is being told.";
    confirmation.hidden = false;
    confirmation.focus();
  } catch (err) {
    $("concern-error").textContent =
      `We could not send this. Please tell ${contactWords()} straight away.`;
  } finally {
    send.disabled = false;
  }
}

export function wireConcern() {
  $("concern-open").addEventListener("click", openConcern);
  $("concern-form").addEventListener("submit", sendConcern);
  $("concern-cancel").addEventListener("click", () => $("concern-dialog").close());
  $("concern-dialog").addEventListener("close", () => {
    if (!$("concern-open").hidden) $("concern-open").focus();
  });
}
