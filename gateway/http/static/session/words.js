/* Every sentence the page says to a person, and the screen-reader announcer. */

import { $, S } from "./state.js";

export const REASONS = {
  awaiting_supervision: "Two adults from the organisation need to be in the session first.",
  no_participation_consent:
    "We do not have permission from your parent or carer for you to take part yet.",
  session_not_started: "The session has not started yet. Please try again nearer the time.",
  session_over: "The session has finished.",
  session_ended: "The session has finished.",
  outside_session_hours: "Sessions can only happen during the organisation's usual hours.",
  vetting_missing: "Your safety checks need to be recorded before you can take this part.",
  vetting_expired: "Your safety checks have expired and need renewing.",
  vetting_not_yet_valid: "Your safety checks are not valid yet.",
  vetting_kind_not_accepted: "Your safety checks are not the kind this session needs.",
  staff_role_not_allowed: "Your role does not allow you to take this part in the session.",
  role_mismatch: "This invite does not match this session.",
  participant_mismatch: "This invite does not match this session.",
  org_mismatch: "This invite does not match this session.",
  viewer_not_in_livestream: "This invite does not match this session.",
  livestream_full: "This livestream is full right now. Try again in a little while.",
};

export const INVITE_ERRORS = {
  invite_expired: "This invite has expired. Please ask the person who invited you for a new link.",
  invite_revoked: "This invite has been withdrawn. Please ask the person who invited you.",
  invite_other_device:
    "This link has already been used on another device. Please use the device you first " +
    "joined on, or ask the person who invited you for a new link.",
  invite_invalid: "This link does not work. Please check you copied all of it, or ask for a new one.",
};

export const ROLE_WORDS = {
  host: "Host",
  observer: "Observer",
  child: "Young person",
  guardian: "Parent or carer",
  viewer: "Viewer",
};

export const STATE_WORDS = {
  admitted: "In the session",
  present: "In the session",
  held: "Waiting (held)",
  left: "Left",
  invited: "Not joined yet",
};

const SUPERVISION_WORDS = {
  supervised: "Enough adults are present again.",
  grace: "An adult has left. Children will be held soon unless an adult returns.",
  breach: "Not enough adults are present: children are held.",
  no_children: "No children are in the session.",
};

export const ALERT_WORDS = {
  supervision: (a) => {
    const count = a.required ? ` (${a.vetted_adults} of ${a.required} adults present)` : "";
    return `${SUPERVISION_WORDS[a.state] || "Supervision changed."}${count}`;
  },
  invite_other_device: (a) =>
    `Someone tried to use the invite of ${a.display_name || "a participant"} on another device.`,
  supervision_grace: () => "An adult has left. Children will be held unless an adult returns.",
  supervision_breach: () => "Fewer adults than needed are present: children are held.",
  adult_left: (a) => `${a.display_name || "An adult"} has left.`,
  concern: (a) => `${a.display_name || "Someone"} reported a concern.`,
  concern_reported: (a) => `${a.display_name || "Someone"} reported a concern.`,
};

export function reasonWords(reasons) {
  const words = [];
  for (const reason of reasons || []) {
    if (String(reason).startsWith("consent:")) continue;
    const text = REASONS[reason] || null;
    if (text && !words.includes(text)) words.push(text);
  }
  if (!words.length && (reasons || []).length) {
    words.push("This session is not available to you right now.");
  }
  return words;
}

export function contactWords() {
  const contact = S.session && S.session.safeguarding_contact;
  return contact || "the adult running the session, or your parent or carer";
}

export function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  // A fresh text node after a tick makes screen readers announce repeats too.
  setTimeout(() => { el.textContent = text; }, 50);
}
