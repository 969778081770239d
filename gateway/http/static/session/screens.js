/* Which screen is showing (start, check, live, end), the top buttons, and the end screen. */

import { $, S } from "./state.js";
import { contactWords } from "./words.js";

export function show(screen) {
  S.screen = screen;
  for (const name of ["start", "check", "live", "end"]) {
    $(`screen-${name}`).hidden = name !== screen;
  }
  const heading = { start: "start-title", check: "check-title", live: "live-title", end: "end-title" };
  const target = screen === "live" && S.outcome === "hold" ? $("waiting-title") : $(heading[screen]);
  if (target) target.focus({ preventScroll: false });
}

export function showTopButtons() {
  $("concern-open").hidden = !S.token;
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
  $("end-contact").textContent =
    `If something is worrying you, press "Report a concern" or tell ${contactWords()}.`;
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
