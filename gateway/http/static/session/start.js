/* The start screen: the invite token from the URL fragment (never sent to the server in a URL,
 * dropped from the address bar at once), the password when asked, and the first join. */

import { prepareCheck } from "./check.js";
import { finish } from "./exit.js";
import { acceptJoin, requestJoin } from "./join.js";
import { endScreen } from "./screens.js";
import { $, S, STORAGE_KEY } from "./state.js";
import { INVITE_ERRORS, announce } from "./words.js";

export function readToken() {
  let token = location.hash.length > 1 ? location.hash.slice(1) : "";
  if (token) {
    try {
      token = decodeURIComponent(token);
    } catch (err) {
      /* keep it as it is */
    }
    try {
      sessionStorage.setItem(STORAGE_KEY, token);
    } catch (err) {
      /* storage may be off: the page still works until it is reloaded */
    }
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch (err) {
    return null;
  }
}

export async function onContinue(event) {
  event.preventDefault();
  const button = $("continue");
  const error = $("start-error");
  error.textContent = "";
  if (!$("password-row").hidden) {
    S.password = $("password").value;
    if (!S.password) {
      error.textContent = "Please type the session password.";
      $("password").focus();
      return;
    }
  }
  button.disabled = true;
  try {
    const data = await requestJoin();
    acceptJoin(data);
    if (data.outcome === "deny") {
      finish("denied");
      return;
    }
    prepareCheck();
  } catch (err) {
    startError(err);
  } finally {
    button.disabled = false;
  }
}

function startError(err) {
  const error = $("start-error");
  if (err.code === "password_required") {
    $("password-row").hidden = false;
    $("password").focus();
    error.textContent = S.password ? "Please type the session password." : "";
    announce("This session needs a password.");
  } else if (err.code === "password_wrong") {
    $("password-row").hidden = false;
    error.textContent = "That password is not right. Please check it and try again.";
    $("password").select();
    $("password").focus();
  } else if (err.code === "too_many_attempts") {
    const minutes = Math.max(1, Math.ceil(Number(err.retryAfter || 60) / 60));
    error.textContent =
      `Too many tries. Please wait ${minutes} minute${minutes === 1 ? "" : "s"} and try again.`;
  } else if (INVITE_ERRORS[err.code] || String(err.code).startsWith("invite_")) {
    endScreen("You can't join with this link", INVITE_ERRORS[err.code] || INVITE_ERRORS.invite_invalid);
  } else {
    error.textContent = err.message || "Something went wrong. Please try again.";
  }
}
