"""The written policy in plain English, for staff and parents (R11)."""

from __future__ import annotations

from gateway.domain.masking import reserved_titles
from gateway.domain.policy import Policy
from gateway.domain.recording_status import RECORDING_AVAILABLE

DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
STYLE_WORDS = {
    "first_name_initial": 'first name and the initial of their last name (like "Sam R.")',
    "first_name": 'first name only (like "Sam")',
    "role_number": 'role and a number (like "Student 3")',
}


def _days(days: tuple[str, ...]) -> str:
    names = [DAY_NAMES[d] for d in days]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def render_policy(policy: Policy) -> str:
    p = policy
    lines = [
        f"Our policy for live online sessions with children (version {p.version})",
        "",
        "Who can join",
        f"- Only people we have registered can join, each with their own invite link. A link "
        f"works for {p.invites.ttl_hours} hours and only on the first device it is opened on.",
    ]
    if p.invites.password_required:
        lines.append(
            f"- Every session also has a password. After {p.invites.password_max_attempts} wrong "
            f"tries the link is locked for {p.invites.attempt_window_minutes} minutes."
        )
    lines.append(
        f"- One link can be used to join at most {p.invites.joins_per_minute_per_invite} times "
        f"a minute, and one network address at most {p.invites.joins_per_minute_per_source} "
        "times: more is refused for a while."
    )
    lines += [
        f"- Staff use their work email addresses ({', '.join(p.staff.allowed_email_domains)}) "
        "and have an up-to-date safer-recruitment check "
        f"({', '.join(k.replace('_', ' ') for k in p.staff.accepted_vetting_kinds)}).",
        "",
        "Keeping children safe in the session",
        f"- A child waits in a waiting room until at least {p.supervision.min_vetted_adults} "
        "checked adults are in the session. While waiting they cannot see, hear or be seen by "
        "anyone.",
        f"- If an adult leaves and fewer than {p.supervision.min_vetted_adults} remain, "
        + (
            f"children are moved back to the waiting room after {p.supervision.grace_seconds} "
            "seconds"
            if p.supervision.action == "hold_children"
            else f"the session ends after {p.supervision.grace_seconds} seconds"
        )
        + ", and our safeguarding lead is told.",
        f"- Sessions happen {_days(p.hours.days)}, between {p.hours.start} and {p.hours.end} "
        f"({p.hours.time_zone} time)"
        + (
            "."
            if p.hours.out_of_hours == "refuse"
            else "; other times only with our safeguarding lead's approval."
        ),
        f"- Adults are shown by their {STYLE_WORDS[p.display_names.adults]}; children by their "
        f"{STYLE_WORDS[p.display_names.children]}. Nobody can change the name they are shown by.",
        "- Nobody is registered under a role title or a name that begins with one, or anything "
        "that looks like one: "
        + ", ".join(f'"{title}"' for title in reserved_titles(p))
        + ". Names with invisible characters, mixed alphabets that look alike, or piled-up "
        "accents are not accepted either, and two people in a session whose names look alike "
        "are shown with a number to tell them apart.",
        f"- Livestream viewers are shown by their {STYLE_WORDS[p.display_names.viewers]}, "
        "can only watch and listen, and "
        + (
            "cannot see who else is watching."
            if p.livestream.viewers_hidden_from_each_other
            else "can see who else is watching."
        )
        + f" At most {p.livestream.max_viewers} viewers watch at once.",
        "",
        "Consent",
        "- A child takes part only with written consent from a parent or carer"
        + f"; from age {p.consent.child_assent_age} the child's own written agreement is "
        "needed too.",
        "- Written consent means: "
        + ", ".join(e.replace("_", " ") for e in p.consent.accepted_evidence)
        + ".",
        "- Anyone can withdraw consent at any time; it takes effect straight away.",
        "",
        "Recordings",
    ]
    if not p.recording.purposes:
        lines.append("- We do not record sessions.")
    else:
        if not RECORDING_AVAILABLE:
            lines.append(
                "- Recording is not switched on yet: no session is recorded. When it is, these "
                "are the rules it follows."
            )
        lines.append(
            "- A session is recorded only when everyone who would be recorded has given written "
            "consent for that purpose"
            + ("; staff too." if p.consent.staff_consent_required else ".")
        )
        for name, purpose in sorted(p.recording.purposes.items()):
            kind = "sound only" if purpose.audio_only else "sound and video"
            watchers = ["our safeguarding lead"]
            if "admin" in purpose.viewers:
                watchers.append("our admins")
            if "tutor" in purpose.viewers:
                watchers.append("the tutor who ran the session")
            lines.append(
                f"- {name.replace('_', ' ').capitalize()}: {purpose.description} We keep it "
                f"({kind}) for {purpose.retention_days} days, then destroy it. Only "
                + " and ".join(
                    [", ".join(watchers[:-1]), watchers[-1]] if len(watchers) > 1 else watchers
                )
                + " can watch it, each time giving a reason that we keep."
            )
        excluded = p.recording.child_declines == "exclude"
        lines.append(
            "- Only the session's host starts and stops a recording, for one of these purposes. "
            "Each person's own sound and video are recorded separately, and nobody else's."
        )
        lines.append(
            "- Before going in, each child is asked whether they are happy to be recorded that "
            "day. A child who says no, or is not asked, "
            + ("is left out of the recording." if excluded else "stops the recording.")
        )
        lines.append(
            "- Someone who has not agreed in writing and joins while a session is being "
            "recorded "
            + ("is not recorded." if excluded else "stops the recording.")
            + " If someone withdraws their consent during a session, their recording stops "
            "within seconds."
        )
        lines.append(
            "- Everyone in the session sees when a recording is running, and whether they "
            "are in it."
        )
        lines.append(
            "- If a recording is cut short (our system stops or fails while recording), "
            + (
                "what was recorded is kept, marked as incomplete, for as long as its purpose says."
                if p.recording.after_crash == "keep_incomplete"
                else "what was recorded is destroyed, with a record that it was."
            )
        )
        lines.append(f"- Storage: {p.recording.storage}")
        lines.append(f"- Who can watch recordings: {p.recording.access}")
        lines.append(
            "- If consent is withdrawn, every recording with that person in it is destroyed, "
            "unless our safeguarding lead must keep it as evidence of a concern."
        )
    lines += [
        "",
        "If something is wrong",
        "- Every session page has a 'report a concern' button. You can also contact "
        f"{p.contact.safeguarding_contact}.",
        "- When a concern is raised, when a session is left without enough checked adults, or "
        "when an invite is locked, our safeguarding lead is sent a message straight away. "
        + (
            "If it has not reached them within "
            f"{p.contact.escalate_after_minutes} minutes, it is also sent to our second "
            f"contact ({p.contact.second_contact})."
            if p.contact.second_contact
            else "If it has not reached them within "
            f"{p.contact.escalate_after_minutes} minutes, it is also sent to the second "
            "contact the organisation has set up."
        ),
        "- The person running the session is told that a concern was raised and that our "
        "safeguarding lead is being told, "
        + (
            "and who raised it."
            if p.concerns.host_sees_reporter
            else "but not who raised it: only our safeguarding lead is told that."
        ),
    ]
    return "\n".join(lines) + "\n"
