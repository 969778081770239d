/* The host's panel: supervision line, roster with "Remove" and "Let back in", alerts, "End session for everyone". */

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
    renderActions(row.cells[3], person);
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) row.remove();
  }
}

// Who this host removed (identity -> person) and the new links they were given: a removed
// person's row offers "Let back in" until they are back in the session.
const removedByHost = new Map();
const newLinks = new Map();

// The row's action cell holds one thing at a time (Remove, Let back in, its confirmation, or
// the new link); it is rebuilt only when that changes, so a roster event never undoes a
// half-made choice or moves keyboard focus.
function renderActions(cell, person) {
  const key = String(person.identity);
  const inSession = person.state !== "left" && person.state !== "invited";
  if (inSession && newLinks.has(key)) {
    // back in through the new link: they are an ordinary participant again
    removedByHost.delete(key);
    newLinks.delete(key);
  }
  let mode = "";
  if (person.identity !== S.identity && inSession) mode = "remove";
  else if (newLinks.has(key)) mode = "link";
  else if (removedByHost.has(key)) mode = cell.dataset.mode === "confirm" ? "confirm" : "letback";
  if (cell.dataset.mode === mode) return;
  cell.dataset.mode = mode;
  cell.replaceChildren();
  const name = person.display_name || "participant";
  if (mode === "remove") {
    const button = smallButton("Remove", `Remove ${name}`);
    button.addEventListener("click", () => askRemove(button, person));
    cell.append(button);
  } else if (mode === "letback") {
    const button = smallButton("Let back in", `Let ${name} back in`);
    button.addEventListener("click", () => {
      renderConfirm(cell, person);
    });
    cell.append(button);
  } else if (mode === "confirm") {
    renderConfirm(cell, person);
  } else if (mode === "link") {
    renderLink(cell, person, newLinks.get(key));
  }
}

function smallButton(text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-small";
  button.textContent = text;
  if (label) button.setAttribute("aria-label", label);
  return button;
}

// Letting someone back is deliberate too: a second step that says what it does.
function renderConfirm(cell, person) {
  const name = person.display_name || "this participant";
  cell.dataset.mode = "confirm";
  cell.replaceChildren();
  const box = document.createElement("div");
  box.className = "confirm letback-confirm";
  const text = document.createElement("p");
  text.id = `letback-text-${person.identity}`;
  text.textContent =
    `Let ${name} back in? They get a new link (the old one stays blocked) and join again ` +
    "like anyone else: children still wait until enough adults are here.";
  const yes = smallButton("Yes, let them back in");
  yes.classList.add("letback-yes");
  yes.setAttribute("aria-describedby", text.id);
  const no = smallButton("No");
  no.classList.add("letback-no");
  no.addEventListener("click", () => {
    cell.dataset.mode = "";
    renderActions(cell, person);
    cell.querySelector("button")?.focus();
  });
  yes.addEventListener("click", () => letBackIn(cell, person, yes));
  box.append(text, yes, no);
  cell.append(box);
  no.focus();
}

async function letBackIn(cell, person, yes) {
  const key = String(person.identity);
  const name = person.display_name || "participant";
  yes.disabled = true;
  $("host-error").textContent = "";
  try {
    const answer = await api("/v1/live/let-back-in", { token: S.token, identity: person.identity });
    newLinks.set(key, answer.link);
    cell.dataset.mode = "";
    renderActions(cell, person);
    $("host-note").textContent =
      `${name} may come back: give them the new link (their old one stays blocked).`;
    cell.querySelector("input")?.focus();
  } catch (err) {
    $("host-error").textContent = `Could not let ${name} back in: ${err.message}`;
    yes.disabled = false;
  }
}

function renderLink(cell, person, link) {
  const name = person.display_name || "participant";
  const box = document.createElement("div");
  box.className = "letback-link";
  const field = document.createElement("input");
  field.type = "text";
  field.readOnly = true;
  field.value = link;
  field.setAttribute("aria-label", `New link for ${name}`);
  field.addEventListener("focus", () => field.select());
  const copy = smallButton("Copy link", `Copy the new link for ${name}`);
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
      $("host-note").textContent = `The new link for ${name} is copied.`;
    } catch {
      field.focus();
      field.select();
      $("host-note").textContent = "Select the link and copy it.";
    }
  });
  box.append(field, copy);
  cell.append(box);
}

// "Remove" is a deliberate step in a dialog that says what it does (a double-click on the
// roster cannot do it: the first click only opens the dialog, whose default button is "No").
let removing = null;

function askRemove(button, person) {
  const name = person.display_name || "this participant";
  removing = { button, person };
  $("remove-title").textContent = `Remove ${name}?`;
  $("remove-text").textContent =
    `${name} will leave the session at once and cannot come back unless you let them back in.`;
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
    removedByHost.set(String(person.identity), person);
    $("host-note").textContent =
      `${name} has been removed: they cannot come back unless you let them back in ` +
      "(their row offers it).";
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
