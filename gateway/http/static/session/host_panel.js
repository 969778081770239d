/* The host's panel: supervision line, roster with "Remove", alerts, "End session for everyone". */

import { api } from "./api.js";
import { finish } from "./exit.js";
import { $, S } from "./state.js";
import { ALERT_WORDS, ROLE_WORDS, STATE_WORDS, announce } from "./words.js";

export function renderHost() {
  const sup = S.supervision;
  const line = $("supervision");
  if (sup) {
    const words = {
      supervised: "Children can take part.",
      grace: "An adult has left: children will be held soon unless an adult returns.",
      breach: "Not enough adults: children are held.",
      no_children: "No children are in the session.",
    };
    line.textContent =
      `${sup.vetted_adults} of ${sup.required} adults present. ${words[sup.state] || ""}`.trim();
    line.dataset.state = sup.state || "";
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
      button.addEventListener("click", () => removeClicked(button, person));
      actions.append(button);
    } else if (!removable && button) {
      button.remove();
    }
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) row.remove();
  }
}

async function removeClicked(button, person) {
  const name = person.display_name || "participant";
  if (button.dataset.confirm !== "1") {
    button.dataset.confirm = "1";
    button.textContent = "Confirm remove";
    button.setAttribute("aria-label", `Confirm: remove ${name} from the session`);
    setTimeout(() => {
      if (button.isConnected && button.dataset.confirm === "1") {
        button.dataset.confirm = "";
        button.textContent = "Remove";
        button.setAttribute("aria-label", `Remove ${name}`);
      }
    }, 6000);
    return;
  }
  button.disabled = true;
  $("host-error").textContent = "";
  try {
    await api("/v1/live/remove", { token: S.token, identity: person.identity });
    announce(`${name} has been removed.`);
  } catch (err) {
    $("host-error").textContent = `Could not remove ${name}: ${err.message}`;
    button.disabled = false;
  }
}

export function renderAlerts() {
  const list = $("alerts");
  list.textContent = "";
  for (const alert of S.alerts.slice(0, 50)) {
    const item = document.createElement("li");
    const words = ALERT_WORDS[alert.kind];
    const text = words ? words(alert) : String(alert.kind || "alert").replace(/_/g, " ");
    item.textContent = `${alert.at.toLocaleTimeString()}: ${text}`;
    list.append(item);
  }
  $("alerts-empty").hidden = S.alerts.length > 0;
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
}
