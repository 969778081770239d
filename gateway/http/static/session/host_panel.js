/* The host's panel: supervision line, roster with "Remove", alerts, "End session for everyone". */

import { api } from "./api.js";
import { finish } from "./exit.js";
import { $, S } from "./state.js";
import {
  ALERT_WORDS,
  ROLE_WORDS,
  STATE_WORDS,
  SUPERVISION_WORDS,
  alertTone,
} from "./words.js";

export function renderHost() {
  const sup = S.supervision;
  const line = $("supervision");
  if (sup) {
    line.textContent =
      `${sup.vetted_adults} of ${sup.required} adults present. ${SUPERVISION_WORDS[sup.state] || ""}`.trim();
    line.dataset.state = sup.state || "";
    // The server alerts when supervision falls short; when it is back, the roster says so:
    // the open warnings are resolved then.
    if ((sup.state === "supervised" || sup.state === "no_children") && openSupervision.length) {
      addAlert({ kind: "supervision", ...sup, at: new Date() });
    }
  }
  // Rows are keyed by identity and updated in place: a roster event every few seconds must
  // not take keyboard focus away or undo a half-confirmed "Remove".
  const body = $("roster");
  const rows = new Map();
  for (const row of Array.from(body.rows)) rows.set(row.dataset.identity, row);
  const seen = new Set();
  for (const person of S.roster) {
    const key = String(person.identity);
    seen.add(key);
    let row = rows.get(key);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.identity = key;
      for (let i = 0; i < 4; i++) row.append(document.createElement("td"));
    }
    body.append(row); // keeps the server's order
    const texts = [
      person.display_name || "Participant",
      ROLE_WORDS[person.role] || person.role || "",
      STATE_WORDS[person.state] || person.state || "",
    ];
    texts.forEach((text, i) => {
      if (row.cells[i].textContent !== String(text)) row.cells[i].textContent = String(text);
    });
    const actions = row.cells[3];
    const removable =
      person.identity !== S.identity && person.state !== "left" && person.state !== "invited";
    let button = actions.querySelector("button");
    if (removable && !button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "button button-small";
      button.textContent = "Remove";
      button.setAttribute("aria-label", `Remove ${person.display_name || "participant"}`);
      button.addEventListener("click", () => askRemove(button, person));
      actions.append(button);
    } else if (!removable && button) {
      button.remove();
    }
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) row.remove();
  }
}

// "Remove" is a deliberate step in a dialog that says it is permanent (a double-click on the
// roster cannot do it: the first click only opens the dialog, whose default button is "No").
let removing = null;

function askRemove(button, person) {
  const name = person.display_name || "this participant";
  removing = { button, person };
  $("remove-title").textContent = `Remove ${name}?`;
  $("remove-text").textContent =
    `${name} will leave the session at once and cannot come back with their link.`;
  $("remove-dialog").showModal();
  $("remove-no").focus();
}

async function removeConfirmed() {
  const { button, person } = removing || {};
  $("remove-dialog").close();
  if (!person) return;
  const name = person.display_name || "participant";
  button.disabled = true;
  $("host-error").textContent = "";
  try {
    await api("/v1/live/remove", { token: S.token, identity: person.identity });
    $("host-note").textContent =
      `${name} has been removed for good: they cannot come back into this session. If it was ` +
      "a mistake, tell the safeguarding lead or an administrator.";
  } catch (err) {
    $("host-error").textContent = `Could not remove ${name}: ${err.message}`;
    button.disabled = false;
  }
}

// The alert log only ever adds a line (never rebuilt, so a screen reader reads only the new
// one). A supervision alert that is over is marked resolved in place when enough adults are
// back; the line saying so is the one that is read.
let openSupervision = [];

export function addAlert(alert) {
  const log = $("alerts");
  const tone = alertTone(alert);
  if (alert.kind === "supervision") {
    if (tone === "resolved") {
      if (!openSupervision.length) return; // nothing was wrong: nothing to say
      for (const line of openSupervision) {
        line.className = "alert-resolved";
        line.dataset.resolved = "1";
        line.append(" (resolved)");
      }
      openSupervision = [];
    }
  }
  const line = document.createElement("p");
  line.className = `alert-${tone}`;
  line.dataset.kind = String(alert.kind || "");
  const words = ALERT_WORDS[alert.kind];
  const text = words ? words(alert) : "Something needs your attention.";
  line.textContent = `${alert.at.toLocaleTimeString()}: ${text}`;
  log.append(line);
  if (alert.kind === "supervision" && tone === "warning") openSupervision.push(line);
  $("alerts-empty").hidden = true;
}

async function endForEveryone() {
  $("host-error").textContent = "";
  $("end-yes").disabled = true;
  try {
    await api("/v1/live/end", { token: S.token });
    finish("ended_by_host");
  } catch (err) {
    $("host-error").textContent = `Could not end the session: ${err.message}`;
    $("end-yes").disabled = false;
  }
}

export function wireHostPanel() {
  $("end-session").addEventListener("click", () => {
    $("end-confirm").hidden = false;
    $("end-no").focus();
  });
  $("end-no").addEventListener("click", () => {
    $("end-confirm").hidden = true;
    $("end-session").focus();
  });
  $("end-yes").addEventListener("click", endForEveryone);
  $("remove-yes").addEventListener("click", removeConfirmed);
  $("remove-no").addEventListener("click", () => $("remove-dialog").close());
  $("remove-dialog").addEventListener("close", () => {
    const { button } = removing || {};
    removing = null;
    if (button && button.isConnected && !button.disabled) button.focus();
  });
}
