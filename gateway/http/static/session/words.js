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

// The host of a live session is its tutor: a child knows them by that word.
export const ROLE_WORDS = {
  host: "Tutor",
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

// The supervision states the server sends (services/live/supervision.py): the count says how
// many adults are present, never that one "has left" (at the start nobody has).
export const SUPERVISION_WORDS = {
  supervised: "Enough adults are present: children can take part.",
  grace: "Fewer adults than needed are present: children will be held soon unless another adult joins.",
  breach: "Fewer adults than needed are present: children are held.",
  no_children: "No children are in the session.",
};

function adults(a) {
  return a.required ? ` (${a.vetted_adults} of ${a.required} adults present)` : "";
}

/** Words for each alert kind the server publishes: supervision (services/live/supervision.py),
 * concern (services/incidents.py), invite_locked and invite_other_device (services/attempts.py). */
export const ALERT_WORDS = {
  supervision: (a) => `${SUPERVISION_WORDS[a.state] || "Supervision changed."}${adults(a)}`,
  concern: (a) =>
    `Concern: ${a.display_name ? `${a.display_name} reported a concern` : "a concern was reported"}.` +
    (a.dsl === "being_told" ? " The safeguarding lead is being told." : ""),
  invite_locked: (a) => {
    const minutes = a.retry_after ? Math.max(1, Math.ceil(Number(a.retry_after) / 60)) : null;
    return `${a.display_name || "A participant"}'s link is locked after too many wrong passwords` +
      (minutes ? ` (for about ${minutes} minute${minutes === 1 ? "" : "s"}).` : ".");
  },
  recording: (a) =>
    ({
      stopped: a.reason === "registration_lapsed"
        ? "Recording stopped: the gateway lost touch with its database. What was recorded is kept as incomplete; the session goes on."
        : `Recording stopped${a.reason && a.reason !== "stopped" ? " by the gateway: someone in the session may not be recorded" : ""}.`,
      failed: "A recording could not be written (storage problem). It is kept as incomplete; the session goes on.",
      excluded: `${a.display_name || "Someone"} is not being recorded (no consent or said no today).`,
    })[a.state] || "Recording changed.",
  invite_other_device: (a) =>
    `Someone tried to use the link of ${a.display_name || "a participant"} on another device.`,
};

/** Warning, concern or good news: how an alert looks (a concern never looks like the others). */
export function alertTone(a) {
  if (a.kind === "concern") return "concern";
  if (a.kind === "supervision" && (a.state === "supervised" || a.state === "no_children")) {
    return "resolved";
  }
  return "warning";
}

export function hostWords() {
  const session = S.session || {};
  const host = session.host_display_name;
  return host ? `${host} (tutor)` : "The tutor who invited you";
}

function when(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const day = at.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long" });
  const time = at.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  return `${day} at ${time}`;
}

export function timeWords() {
  const session = S.session || {};
  if (!session.starts_at) return "";
  const start = when(session.starts_at);
  const end = session.ends_at ? new Date(session.ends_at) : null;
  const until = end && !Number.isNaN(end.getTime())
    ? ` until ${end.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" })}`
    : "";
  return `${start}${until}`;
}

export function reasonWords(reasons) {
  const words = [];
  for (const reason of reasons || []) {
    if (String(reason).startsWith("consent:")) continue;
    let text = REASONS[reason] || null;
    if (reason === "session_not_started" && S.session && S.session.starts_at) {
      text = `The session has not started yet. It starts ${timeWords()}. Please come back then.`;
    }
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
