/* Which screen is showing (start, check, live, end), the top buttons, and the end screen. */

import { $, S } from "./state.js";
import { contactWords } from "./words.js";

export function show(screen) {
  S.screen = screen;
  for (const name of ["start", "check", "live", "end"]) {
    $(`screen-${name}`).hidden = name !== screen;
  }
  // What the last screen said (e.g. "This session needs a password") is not said again here.
  $("announcer").textContent = "";
  const heading = { start: "start-title", check: "check-title", live: "live-title", end: "end-title" };
  const target = screen === "live" && S.outcome === "hold" ? $("waiting") : $(heading[screen]);
  if (target) target.focus({ preventScroll: false });
}

/** "Report a concern" needs this device bound to an invite (a join the server accepted): before
 * that (a broken or refused link) sending cannot work, so the page names who to tell instead. */
export function showTopButtons() {
  const canReport = Boolean(S.token && S.bound);
  $("concern-open").hidden = !canReport;
  const contact = $("concern-contact");
  contact.hidden = canReport;
  contact.textContent = `Worried about something? Tell ${contactWords()}.`;
  $("leave").hidden = !(S.join && !S.finished);
}

export function endScreen(title, text, reasons) {
  $("end-title").textContent = title;
  $("end-text").textContent = text || "";
  const list = $("end-reasons");
  list.textContent = "";
  for (const reason of reasons || []) {
    const item = document.createElement("li");
    item.textContent = reason;
    list.append(item);
  }
  $("end-contact").textContent = S.bound
    ? `If something is worrying you, press "Report a concern" or tell ${contactWords()}.`
    : `If something is worrying you, tell ${contactWords()}.`;
  showTopButtons();
  show("end");
}

export function addRejoin() {
  if ($("rejoin")) return;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "rejoin";
  button.className = "button";
  button.textContent = "Join again";
  button.addEventListener("click", () => location.reload());
  $("screen-end").append(button);
}
