/* Admitted or held: the waiting screen, what this device sends and which tiles show. Applied
 * from the join answer and from every "state" event. */

import { finish } from "./exit.js";
import { updateSending } from "./media.js";
import { $, S } from "./state.js";
import { renderTiles } from "./tiles.js";
import { announce } from "./words.js";

export const WAITING_WORDS =
  "Please wait a moment. We are waiting for a second adult. Nobody can see or hear you.";

export function applyState(outcome, grants, reasons, notify) {
  const before = S.outcome;
  S.outcome = outcome;
  S.grants = grants || { can_publish: false, can_subscribe: false, hidden: false };
  S.reasons = reasons || [];
  if (outcome === "deny") {
    finish("denied");
    return;
  }
  const held = outcome === "hold";
  $("waiting").hidden = !held;
  updateSending();
  renderTiles();
  if (notify && before !== outcome) {
    if (held) {
      if (S.screen === "live") $("waiting").focus();
      announce(WAITING_WORDS);
    } else if (outcome === "admit") {
      announce("The session is ready. You can now see and hear others.");
    }
  }
}
