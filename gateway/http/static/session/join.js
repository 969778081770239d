/* Joining: the one place the page asks the server to join (requestJoin), what it keeps from
 * the answer (acceptJoin), and a fresh media credential when the last one is used or stale. */

import { ApiError, api } from "./api.js";
import { finish } from "./exit.js";
import { showTopButtons } from "./screens.js";
import { $, CREDENTIAL_MAX_AGE_MS, S } from "./state.js";
import { applyState } from "./waiting.js";

/** POST /v1/join with the invite (and the password once asked). Every join, the first and each
 * one for a new media credential, goes through here: a change to how the page joins (another
 * address, a retry) is made in this function only. */
export async function requestJoin() {
  const body = { token: S.token };
  if (S.password) body.password = S.password;
  try {
    return await api("/v1/join", body); // same device cookie each time: the server knows the device
  } catch (err) {
    const location421 = err instanceof ApiError && err.status === 421 && err.details && err.details.location;
    if (location421) {
      // The session runs on another gateway process: continue there (same site, same cookie).
      window.location.replace(
        `${location421}${window.location.pathname}${window.location.search}#${encodeURIComponent(S.token)}`,
      );
      return new Promise(() => {}); // the page is leaving
    }
    throw err;
  }
}

export function acceptJoin(data) {
  S.join = data;
  S.joinedAt = Date.now();
  S.credentialUsed = false;
  S.outcome = data.outcome;
  if (data.outcome !== "deny") S.bound = true;
  S.reasons = data.reasons || [];
  S.grants = data.grants || S.grants;
  S.session = data.session || S.session;
  if (data.participant) {
    S.role = data.participant.role;
    S.identity = data.participant.identity;
    S.displayName = data.participant.display_name;
  }
  if (S.session && S.session.title) {
    $("session-title").textContent = S.session.title;
    document.title = `${S.session.title}: live session`;
  }
  showTopButtons();
}

export async function freshCredential() {
  const stale = S.credentialUsed || Date.now() - S.joinedAt > CREDENTIAL_MAX_AGE_MS;
  if (!stale && S.join && S.join.media) return S.join.media;
  const data = await requestJoin(); // a new credential
  acceptJoin(data);
  if (data.outcome === "deny") {
    finish("denied");
    return null;
  }
  applyState(data.outcome, data.grants, data.reasons, true);
  return data.media || null;
}
